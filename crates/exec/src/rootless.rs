//! Rootless mode: every buildr process of an ordinary user runs in one user
//! namespace of that user's, where it is root (the user mapped to 0, its
//! /etc/subuid and /etc/subgid ranges to 1..), as rootless podman does.
//!
//! Why one namespace per user and not one per command: what one command
//! creates must be usable by the next. A container started by `run -d` is
//! entered by `exec`, stopped by `stop`, and reached by the other
//! containers on the user's network; namespaces made in a sibling user
//! namespace would be out of reach (joining them needs privilege in the
//! namespace that owns them).
//!
//! The namespace is held by a small *holder* process (this binary,
//! re-executed, see [`enter`]) that also holds the user's *network home*:
//! a network namespace connected to the outside by slirp4netns, where the
//! user's bridge network lives (containers' veths, NAT to slirp's tap).
//! The holder lives until it is killed; slirp4netns exits with it (its
//! exit pipe). Commands find it through `holder.json` in the user's
//! runtime directory, under a lock, and join its user namespace with
//! `setns` before they start any thread.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::idmap::{apply_maps, caller_name, in_initial_userns, subordinate_maps};

/// The `_BUILDR_EXEC_INIT` value that makes a re-executed binary a holder.
pub(crate) const HOLDER_MODE: &str = "rootless-holder";

/// What [`enter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Root on the host: nothing to do.
    Root,
    /// Already root in a user namespace (a child of a rootless command, or
    /// an embedder that made its own): nothing to do.
    Inside,
    /// Joined the user's namespace, held by the holder with this pid.
    Joined(u32),
}

/// The uid this process has on the host: its euid, mapped out through
/// `/proc/self/uid_map` when it runs in a user namespace.
pub fn host_uid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    outside_id(&map, euid).unwrap_or(euid)
}

/// `id` mapped out through a uid_map/gid_map text (`inside outside count`
/// per line).
fn outside_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let id = u64::from(id);
        (inside <= id && id < inside + count)
            .then(|| u32::try_from(outside + (id - inside)).ok())
            .flatten()
    })
}

/// Whether this process works for an ordinary user: not root, or root in
/// the user's namespace that [`enter`] joined (found by its holder). Root
/// in some other user namespace (a container, a pod with user namespaces)
/// is root as far as buildr's paths and networks go, as before.
pub fn is_rootless() -> bool {
    static ROOTLESS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOTLESS.get_or_init(|| {
        !nix::unistd::geteuid().is_root()
            || (!in_initial_userns()
                && live_holder(&runtime_dir_path().join(HOLDER_SUBDIR), true).is_some())
    })
}

/// Where the user's runtime directory is (see [`user_runtime_dir`]),
/// without creating anything.
fn runtime_dir_path() -> PathBuf {
    let me = nix::unistd::geteuid().as_raw();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && dir.is_absolute()
        && std::fs::metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == me)
    {
        return dir;
    }
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("buildr-{}", host_uid()))
}

/// The user's private runtime directory for rootless state:
/// `$XDG_RUNTIME_DIR` when it is set and the user's, else
/// `/dev/shm/buildr-<uid>` (a tmpfs), else `<tmp>/buildr-<uid>`, created
/// mode 0700. Refuses a directory someone else owns or others can enter
/// (a planted directory would let them read or swap the user's state).
pub fn user_runtime_dir() -> Result<PathBuf> {
    let me = nix::unistd::geteuid().as_raw();
    let dir = runtime_dir_path();
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|x| dir == Path::new(&x)) {
        return Ok(dir);
    }
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(Error::Io {
                op: "create the runtime directory",
                path: dir,
                source,
            });
        }
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|source| Error::Io {
        op: "inspect the runtime directory",
        path: dir.clone(),
        source,
    })?;
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Rootless(format!(
            "{} is not a private directory of this user (owner uid {}, mode {:o}); remove it or set XDG_RUNTIME_DIR",
            dir.display(),
            meta.uid(),
            meta.permissions().mode() & 0o7777
        )));
    }
    Ok(dir)
}

/// The holder's record in the runtime directory.
#[derive(Debug, Serialize, Deserialize)]
struct HolderRecord {
    pid: u32,
    /// The network home, as a path any process of the namespace can open.
    netns: PathBuf,
}

/// The holder's directory under the runtime directory.
const HOLDER_SUBDIR: &str = "buildr/rootless";

fn holder_dir() -> Result<PathBuf> {
    let dir = user_runtime_dir()?.join(HOLDER_SUBDIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| Error::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

fn ns_id(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The live holder recorded in `dir`, if it is one: the pid runs as this
/// user, in another user namespace than ours (we are outside it) or in
/// ours (we are inside), and its network home is a network namespace.
fn live_holder(dir: &Path, inside: bool) -> Option<HolderRecord> {
    let text = std::fs::read(dir.join("holder.json")).ok()?;
    let record: HolderRecord = serde_json::from_slice(&text).ok()?;
    let proc = PathBuf::from(format!("/proc/{}", record.pid));
    let holder_ns = ns_id(proc.join("ns/user"))?;
    let own_ns = ns_id("/proc/self/ns/user")?;
    let same_ns = holder_ns == own_ns;
    let net = ns_id(&record.netns)?;
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let holder_uid: u32 = uid_line.split_whitespace().nth(2)?.parse().ok()?;
    let euid = nix::unistd::geteuid().as_raw();
    (same_ns == inside && net.starts_with("net:[") && holder_uid == euid).then_some(record)
}

/// The user's network home (a path naming its network namespace) when
/// this process runs in the user's namespace: where the user's bridge
/// network lives. `None` otherwise (root: the bridge is in the host's
/// namespace).
pub fn network_home() -> Result<Option<PathBuf>> {
    if !is_rootless() {
        return Ok(None);
    }
    let dir = holder_dir()?;
    match live_holder(&dir, true) {
        Some(record) => Ok(Some(record.netns)),
        None => Err(Error::Rootless(format!(
            "no holder of this user's namespace is recorded in {}: run buildr as the user (it starts one), not from inside another user namespace",
            dir.display()
        ))),
    }
}

/// Puts this process into the calling user's rootless namespace, starting
/// its holder first if none runs. Call it first thing in `main`, before
/// any thread starts (`setns` into a user namespace needs a
/// single-threaded process). For root, or a process already in a user
/// namespace, it does nothing.
pub fn enter() -> Result<Entered> {
    if nix::unistd::geteuid().is_root() {
        return Ok(if in_initial_userns() {
            Entered::Root
        } else {
            Entered::Inside
        });
    }
    if !in_initial_userns() {
        return Err(Error::Rootless(
            "running as a non-root user inside a user namespace that is not buildr's; run buildr from the user's own shell".into(),
        ));
    }
    let threads = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_string()));
    if threads.as_deref() != Some("1") {
        return Err(Error::Rootless(
            "enter() must run before any thread starts (joining a user namespace needs a single-threaded process)".into(),
        ));
    }
    let dir = holder_dir()?;
    let lock_path = dir.join("holder.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|source| Error::Io {
            op: "open",
            path: lock_path.clone(),
            source,
        })?;
    let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, errno)| Error::Io {
            op: "lock",
            path: lock_path.clone(),
            source: errno.into(),
        },
    )?;
    let record = match live_holder(&dir, false) {
        Some(record) => record,
        None => start_holder(&dir)?,
    };
    drop(lock);
    let path = format!("/proc/{}/ns/user", record.pid);
    let ns = File::open(&path).map_err(|source| Error::Io {
        op: "open the user namespace",
        path: path.clone().into(),
        source,
    })?;
    nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|errno| Error::Sys {
        op: format!(
            "join the user namespace of buildr's holder (pid {})",
            record.pid
        ),
        source: errno.into(),
    })?;
    Ok(Entered::Joined(record.pid))
}

/// Starts the holder: it makes the user namespace and says so, we map the
/// ids with newuidmap/newgidmap, it makes the network home, starts
/// slirp4netns for it and reports its path; we record it.
fn start_holder(dir: &Path) -> Result<HolderRecord> {
    let user = caller_name().unwrap_or_else(|| nix::unistd::geteuid().to_string());
    // Without subordinate ids the user alone is mapped (as 0): images whose
    // files belong to other ids cannot be unpacked, and say so by name.
    let maps = subordinate_maps();
    if maps.is_none() {
        eprintln!(
            "buildr: warning: rootless: user {user} has no subordinate ids, so only uid and gid 0 exist in images (files owned by others cannot be unpacked): add a range to /etc/subuid and /etc/subgid (e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`) and install newuidmap/newgidmap (Debian package uidmap)"
        );
    }
    let exe = std::env::current_exe().map_err(|source| Error::Sys {
        op: "find this program to start the rootless holder".into(),
        source,
    })?;
    // Nothing of the caller's environment (a CI job's secrets) lives on in
    // the holder: PATH only, for slirp4netns.
    let mut child = Command::new(&exe)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(crate::init::INIT_ENV, HOLDER_MODE)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Sys {
            op: format!("start the rootless holder {}", exe.display()),
            source,
        })?;
    let pid = child.id();
    let fail = |child: &mut std::process::Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(Error::Rootless(why))
    };
    let (Some(mut to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
        return fail(&mut child, "holder has no pipes".into());
    };
    let mut from = BufReader::new(from);
    let mut line = String::new();
    let _ = from.read_line(&mut line);
    if line.trim() != "userns" {
        let why = line.trim().strip_prefix("error ").unwrap_or(line.trim());
        return fail(
            &mut child,
            format!("the holder could not make a user namespace: {why}"),
        );
    }
    let pid_i32 = i32::try_from(pid).unwrap_or(i32::MAX);
    match &maps {
        Some(maps) if !apply_maps(pid_i32, maps) => {
            return fail(
                &mut child,
                format!(
                    "newuidmap/newgidmap refused to map user {user}'s ranges (uid map {}, gid map {}): check /etc/subuid and /etc/subgid and that both tools are setuid root",
                    maps.0.join(" "),
                    maps.1.join(" ")
                ),
            );
        }
        Some(_) => {
            let _ = to.write_all(b"go\n");
        }
        // The holder maps itself: its own ids only.
        None => {
            let _ = to.write_all(b"self\n");
        }
    }
    line.clear();
    let _ = from.read_line(&mut line);
    let Some(netns) = line.trim().strip_prefix("ready ") else {
        let why = line.trim().strip_prefix("error ").unwrap_or(line.trim());
        let why = if why.is_empty() { "it exited" } else { why };
        return fail(
            &mut child,
            format!("the holder could not start the user's network: {why}"),
        );
    };
    let record = HolderRecord {
        pid,
        netns: PathBuf::from(netns),
    };
    let json = serde_json::to_vec(&record).map_err(|e| Error::Rootless(e.to_string()))?;
    let tmp = dir.join("holder.json.tmp");
    let dest = dir.join("holder.json");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &dest))
        .map_err(|source| Error::Io {
            op: "write",
            path: dest,
            source,
        })?;
    // Not waited for: it runs until killed, reparented to init when we exit.
    drop(child);
    Ok(record)
}

/// The holder's main (see the module docs); never returns while it works.
pub(crate) fn run_holder() -> i32 {
    let _ = nix::unistd::setsid();
    // Descriptors the caller leaked (opened without close-on-exec) would
    // stay open as long as the holder: a CI job waiting for a pipe's end
    // would wait forever.
    close_inherited_fds();
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let say = |text: &str| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    };
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER) {
        say(&format!("error unshare a user namespace: {e}"));
        return 1;
    }
    say("userns");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    match line.trim() {
        "go" => {}
        "self" => {
            let maps = [
                ("/proc/self/setgroups", "deny".to_string()),
                ("/proc/self/uid_map", format!("0 {uid} 1\n")),
                ("/proc/self/gid_map", format!("0 {gid} 1\n")),
            ];
            for (file, text) in maps {
                if let Err(e) = std::fs::write(file, text) {
                    say(&format!("error write {file}: {e}"));
                    return 1;
                }
            }
        }
        _ => return 1,
    }
    // The network home: a namespace with slirp4netns, no loopback of the
    // host's reachable; it lives as long as this process.
    let network = match crate::net::BuildNetwork::new() {
        Ok(network) => network,
        Err(e) => {
            let mut why = crate::error::error_chain(&e);
            if why.contains("/dev/net/tun") {
                why.push_str(
                    " (user-mode networking needs /dev/net/tun open to this user: mode 0666, as Debian's udev rules set it, or an ACL such as `setfacl -m u:USER:rw /dev/net/tun`)",
                );
            }
            say(&format!("error {why}"));
            return 1;
        }
    };
    say(&format!("ready {}", network.netns().path().display()));
    // Nothing more to say: stdio goes to /dev/null so the parent's pipes close.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    loop {
        nix::unistd::pause();
    }
}

/// Closes every descriptor above stderr.
fn close_inherited_fds() {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_ids_out_of_a_namespace() {
        let map = "         0       1001          1\n         1     200000      65536\n";
        assert_eq!(outside_id(map, 0), Some(1001));
        assert_eq!(outside_id(map, 1), Some(200000));
        assert_eq!(outside_id(map, 1000), Some(200999));
        assert_eq!(outside_id(map, 65537), None);
        assert_eq!(outside_id("0 0 4294967295\n", 5), Some(5));
        assert_eq!(outside_id("garbage\n", 0), None);
    }
}
