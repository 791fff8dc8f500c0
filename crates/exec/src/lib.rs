//! `buildr-exec`: the sandbox.
//!
//! Runs a RUN step, and later a container, as an isolated process tree —
//! mount, pid, uts, ipc, cgroup and net namespaces (the host's with
//! [`Network::Host`], an existing one with [`Network::Join`]), plus a user
//! namespace when not root (the caller mapped to 0, and its /etc/subuid
//! ranges through newuidmap/newgidmap when present) —
//! over a root filesystem assembled from layer snapshots with overlayfs (or,
//! where overlay is unavailable or [`RootfsMode::Copy`] is asked, a copy whose
//! changes are written back in overlay format), with cgroup limits (v1 or v2,
//! detected at runtime), a minimal init as pid 1, Docker's default
//! capabilities, runc's masked paths, and streamed output.
//!
//! What it is not: it does not know images, layers or Dockerfiles; it is
//! handed directories and a process description ([`SpawnSpec`]). There is
//! no seccomp filter yet.
//!
//! # Spawn design
//!
//! The launcher ([`Sandbox::run`]) re-executes a binary — by default the
//! running program, `/proc/self/exe` — whose `main` calls
//! [`init_main_if_requested`] first. The spawn is `std::process::Command`,
//! whose pre-exec hook only calls async-signal-safe `fcntl`/`dup2`/`prctl`,
//! so nothing forks a multi-threaded (e.g. rayon) process except std's
//! spawn. Every later fork happens in the fresh, single-threaded init (and
//! is refused if it ever has a second thread). The init stays as pid 1 and
//! makes itself non-dumpable before the command exists, so the command,
//! which lacks `CAP_SYS_PTRACE`, cannot open `/proc/1/exe` — the host binary
//! (CVE-2019-5736). Descriptors other than the two protocol pipes are closed
//! on entry to the init, and everything above 2 is close-on-exec before the
//! command's `chdir` (CVE-2024-21626).
//!
//! # Invariants
//!
//! - The host never sees a mount of a sandbox: all are made in the
//!   sandbox's private mount namespace and vanish with it.
//! - When the command exits, pid 1 kills everything left in the pid
//!   namespace; nothing a step starts outlives it.
//! - The upper dir holds only the command's changes: mountpoints made for
//!   /etc/hosts, /etc/resolv.conf, /etc/hostname, binds and tmpfs are removed.
//! - Every exit path (error, cancel, timeout, panic in the output callback)
//!   kills the tree, removes the cgroup and the state dir.
//! - `unsafe` lives in `sys.rs` only.
//!
//! A second process joins a running sandbox with [`Sandbox::exec_in`]
//! ([`ExecSpec`]; the sandbox's pid 1 from [`Cancel::pid1`]).
//!
//! Main types: [`Sandbox`], [`SpawnSpec`], [`Outcome`], [`Cancel`], [`diff`];
//! networking: [`BuildNetwork`] (one per build, joined by every step through
//! [`Network::Join`]), [`BridgeNetwork`] / [`Endpoint`] / [`PortProxy`] for
//! containers.
//!
//! ```no_run
//! use buildr_exec::{Cancel, Limits, Rootfs, Sandbox, SpawnSpec, Stream};
//!
//! fn main() -> buildr_exec::Result<()> {
//!     buildr_exec::init_main_if_requested(); // first thing: may become the init
//!     let spec = SpawnSpec {
//!         rootfs: Rootfs {
//!             lowers: vec!["/snapshots/2".into(), "/snapshots/1".into()],
//!             upper: "/snapshots/3/upper".into(),
//!             work: "/snapshots/3/work".into(),
//!             ..Rootfs::default()
//!         },
//!         argv: vec!["/bin/sh".into(), "-c".into(), "apk add curl".into()],
//!         user: "app:app".into(),
//!         limits: Limits { memory: Some(256 << 20), ..Limits::default() },
//!         ..SpawnSpec::default()
//!     };
//!     let cancel = Cancel::new()?;
//!     let outcome = Sandbox::new().run(&spec, &cancel, |stream, chunk| {
//!         let _ = (stream == Stream::Stderr, chunk); // forward as progress
//!     })?;
//!     if !outcome.success() {
//!         eprintln!("RUN failed: {}", outcome.describe());
//!     }
//!     let changes = buildr_exec::diff(&spec.rootfs.lowers, &spec.rootfs.upper)?;
//!     println!("{} paths changed", changes.len());
//!     Ok(())
//! }
//! ```

mod cancel;
mod cgroup;
mod enter;
mod error;
mod idmap;
mod init;
mod launch;
mod mounts;
mod net;
mod oci_config;
mod outcome;
mod pty;
mod pump;
mod rootfs;
pub mod rootless;
mod spec;
mod state_root;
mod sys;
mod user;

pub use cancel::Cancel;
pub use cgroup::{CgroupStats, ContainerCgroup};
pub use enter::is_sandbox_pid1;
pub use error::{Error, Result};
pub use init::{DOCKER_CAPS, init_main_if_requested};
pub use launch::Sandbox;
pub use mounts::{MASKED as MASKED_PATHS, READONLY as READONLY_PATHS};
pub use net::{
    AttachOptions, BridgeConfig, BridgeNetwork, BuildNetwork, BuildNetworkOptions, Endpoint, NetNs,
    PortMapping, PortProxy, Protocol, SLIRP_DNS, Subnet,
};
pub use oci_config::{Bundle, capability_names, docker_capability_names};
pub use outcome::{ExitStatus, Outcome, Stream, Timings};
pub use pty::{copy_window_size, pty_socketpair, receive_pty};
pub use rootfs::{Change, ChangeKind, diff, overlay_available};
pub use spec::{
    BindMount, CgroupPolicy, ExecSpec, Limits, Network, Rlimit, RlimitResource, Rootfs, RootfsMode,
    SpawnSpec, TmpfsMount,
};
pub use state_root::default_state_root;
pub use user::{Identity, resolve as resolve_user};
