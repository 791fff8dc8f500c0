//! What to run and how: the configuration handed to [`crate::Sandbox::run`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the root filesystem is assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RootfsMode {
    /// Overlay when the kernel offers it, copy otherwise.
    #[default]
    Auto,
    /// Always overlayfs; an error where it is unavailable.
    Overlay,
    /// Always the copy fallback: the lowers are copied into `work`, the
    /// command runs there, and the changes are then written into `upper` in
    /// overlay form (whiteouts for deletions), so callers see one format.
    Copy,
    /// No layers: `upper` is a complete root filesystem (an OCI bundle's
    /// `rootfs`) bound as the root, changes made in place; `lowers` must be
    /// empty and `work` is not used.
    Direct,
}

/// The root filesystem: read-only lower snapshots plus a writable upper dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rootfs {
    /// Lower directories, topmost first. May be empty (a scratch root).
    pub lowers: Vec<PathBuf>,
    /// Receives the changes the command makes (overlay upper-dir format).
    pub upper: PathBuf,
    /// Overlay work dir (same filesystem as `upper`); the snapshot dir in copy mode.
    pub work: PathBuf,
    /// Overlay, copy, or automatic choice.
    pub mode: RootfsMode,
}

/// Network namespace choice.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// A fresh, empty network namespace with only loopback, up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// An existing network namespace, joined instead of creating one: a
    /// build's [`crate::BuildNetwork`] or a container's
    /// [`crate::Endpoint`] (which hand out this variant), an nsfs bind
    /// mount (`/run/netns/NAME`) or `/proc/PID/ns/net` of a holder. Nothing
    /// is configured in it by the sandbox, loopback included. Joining needs
    /// `CAP_SYS_ADMIN` over the namespace (root, or the user namespace
    /// that owns it): a rootless launcher that must make its own user
    /// namespace cannot join.
    Join {
        /// Path of the namespace file.
        netns: PathBuf,
        /// `nameserver` lines of the sandbox's /etc/resolv.conf; empty
        /// means the host's resolvers, loopback ones left out.
        nameservers: Vec<std::net::IpAddr>,
    },
}

/// A bind mount from the host into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path (file or directory).
    pub src: PathBuf,
    /// Absolute path inside the sandbox; created if missing.
    pub dst: PathBuf,
    /// Mount read-only.
    pub readonly: bool,
    /// Bind this path under `src` instead of `src` itself, resolved by the
    /// kernel with `src` as its root: `..` and absolute symlinks stop at
    /// `src`, so nothing planted in it (a cache shared between builds) can
    /// lead the bind out, even while it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<PathBuf>,
}

/// A tmpfs mounted inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// Absolute path inside the sandbox; created if missing.
    pub dst: PathBuf,
    /// Size limit in bytes; `None` is the kernel default (half of RAM).
    pub size: Option<u64>,
}

/// Resource limits enforced through cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (swap included where the kernel lets us say so).
    pub memory: Option<u64>,
    /// Maximum number of tasks.
    pub pids: Option<u64>,
    /// CPU bandwidth in CPUs (0.5 = half of one CPU).
    pub cpus: Option<f64>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none() && self.cpus.is_none()
    }
}

/// A POSIX resource limit (`setrlimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// Which resource.
    pub resource: RlimitResource,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The resources an [`Rlimit`] can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum RlimitResource {
    Core,
    Cpu,
    Data,
    Fsize,
    Memlock,
    Nofile,
    Nproc,
    Stack,
    As,
}

/// One process run in a fresh sandbox.
///
/// Build with struct update syntax over `Default`:
/// `SpawnSpec { argv: vec!["/bin/true".into()], rootfs, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpawnSpec {
    /// The root filesystem.
    pub rootfs: Rootfs,
    /// Program and arguments; `argv[0]` is looked up in `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// Environment, `KEY=value`. `HOME` is added from the image's passwd when absent.
    pub env: Vec<String>,
    /// Working directory inside the sandbox, created if missing.
    pub cwd: String,
    /// `USER` as in a Dockerfile: `name`, `uid`, `name:group`, `uid:gid`;
    /// resolved against the image's /etc/passwd and /etc/group. Empty is root.
    pub user: String,
    /// Hostname inside the sandbox.
    pub hostname: String,
    /// Network namespace choice.
    pub network: Network,
    /// Bind mounts, applied in order.
    pub binds: Vec<BindMount>,
    /// Tmpfs mounts, applied after binds.
    pub tmpfs: Vec<TmpfsMount>,
    /// Cgroup limits.
    pub limits: Limits,
    /// POSIX rlimits for the process.
    pub rlimits: Vec<Rlimit>,
    /// Set `no_new_privs` before exec (setuid binaries no longer elevate).
    pub no_new_privs: bool,
    /// Kill everything after this long (reported as a timeout).
    pub timeout: Option<Duration>,
    /// Mount the root filesystem read-only (`--read-only`); binds, tmpfs,
    /// /dev, /etc/hosts and the like keep their own flags.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// `-t`: the stdin handed to the launcher is one end of a
    /// [`crate::pty_socketpair`]; the command gets a pty made in the
    /// sandbox, whose master comes back on that socket.
    #[serde(default)]
    pub tty: bool,
    /// The capability set (a mask of kernel bit numbers) a root command
    /// gets as bounding, permitted and effective set; `None` is Docker's
    /// default ([`crate::DOCKER_CAPS`]). A non-root command gets none either way.
    #[serde(default)]
    pub capabilities: Option<u64>,
    /// When the run gets a cgroup of its own: only for limits (builds), or
    /// always (containers: `pause`, `stats` and `update` act on it).
    #[serde(default)]
    pub cgroup: CgroupPolicy,
    /// `--add-host`: more lines of /etc/hosts, a name and its address each.
    #[serde(default)]
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--dns`: the nameservers of /etc/resolv.conf, instead of the
    /// network's and the host's.
    #[serde(default)]
    pub dns: Vec<std::net::IpAddr>,
}

/// When a run gets a cgroup of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CgroupPolicy {
    /// Only when [`SpawnSpec::limits`] sets a limit: without one the pid
    /// namespace alone bounds the tree.
    #[default]
    ForLimits,
    /// Always, with every controller the host mounts that a container's
    /// life uses (memory, pids, cpu, cpuacct, freezer, blkio; v2: the
    /// directory with what the parent delegates). Best effort without
    /// limits: a host that refuses one (an ordinary user without a
    /// delegated cgroup) runs without it.
    Always,
}

impl Default for SpawnSpec {
    fn default() -> Self {
        Self {
            rootfs: Rootfs::default(),
            argv: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: "buildr".into(),
            network: Network::None,
            binds: Vec::new(),
            tmpfs: Vec::new(),
            limits: Limits::default(),
            rlimits: Vec::new(),
            no_new_privs: false,
            timeout: None,
            readonly_rootfs: false,
            tty: false,
            capabilities: None,
            cgroup: CgroupPolicy::ForLimits,
            extra_hosts: Vec::new(),
            dns: Vec::new(),
        }
    }
}

/// One more process in a running sandbox ([`crate::Sandbox::exec_in`]):
/// it joins the namespaces and cgroup of the sandbox's pid 1 and gets the
/// same treatment as the first command (user lookup in the sandbox's
/// /etc/passwd, Docker's capabilities, rlimits, umask, only fds 0-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Program and arguments; `argv[0]` is looked up in `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// Environment, `KEY=value`. `HOME` is added from the passwd when absent.
    pub env: Vec<String>,
    /// Working directory inside the sandbox; must exist.
    pub cwd: String,
    /// `USER` as in a Dockerfile; empty is root.
    pub user: String,
    /// POSIX rlimits for the process.
    pub rlimits: Vec<Rlimit>,
    /// Set `no_new_privs` before exec.
    pub no_new_privs: bool,
    /// As [`SpawnSpec::tty`]: stdin is a [`crate::pty_socketpair`] end.
    #[serde(default)]
    pub tty: bool,
}

impl Default for ExecSpec {
    fn default() -> Self {
        let spawn = SpawnSpec::default();
        Self {
            argv: Vec::new(),
            env: spawn.env,
            cwd: spawn.cwd,
            user: String::new(),
            rlimits: Vec::new(),
            no_new_privs: false,
            tty: false,
        }
    }
}

impl ExecSpec {
    /// The same process description in the form the init's exec path takes.
    pub(crate) fn as_spawn(&self) -> SpawnSpec {
        SpawnSpec {
            argv: self.argv.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            rlimits: self.rlimits.clone(),
            no_new_privs: self.no_new_privs,
            tty: self.tty,
            ..SpawnSpec::default()
        }
    }
}
