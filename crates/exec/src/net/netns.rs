//! Network namespaces held by a descriptor, optionally pinned to a path.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::sched::CloneFlags;

use crate::error::{Error, Result, io, sys};

/// A network namespace owned by this process.
///
/// It lives as long as the value (plus whatever processes sit in it):
/// dropping it unpins it and closes the descriptor, so a crash of the
/// process leaves nothing behind unless the namespace was [pinned](Self::pin).
/// [`NetNs::path`] names it for [`crate::Network::Join`].
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    id: u64,
    pinned: Option<PathBuf>,
}

impl NetNs {
    /// A fresh network namespace with loopback up, made on a short-lived
    /// thread so the calling thread's own namespace is untouched.
    pub fn new() -> Result<Self> {
        let made = std::thread::Builder::new()
            .name("buildr-netns".into())
            .spawn(|| -> Result<OwnedFd> {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(sys("unshare a network namespace"))?;
                let path = "/proc/thread-self/ns/net";
                let file = File::open(path).map_err(io("open", path))?;
                crate::sys::loopback_up().map_err(|source| Error::Sys {
                    op: "bring up loopback in a new network namespace".into(),
                    source,
                })?;
                Ok(file.into())
            })
            .map_err(|source| Error::Sys {
                op: "start a thread for a network namespace".into(),
                source,
            })?
            .join()
            .map_err(|_| Error::Sys {
                op: "create a network namespace".into(),
                source: std::io::Error::other("thread panicked"),
            })??;
        Self::from_fd(made)
    }

    /// Takes an existing namespace: an nsfs bind mount or `/proc/PID/ns/net`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io("open network namespace", path))?;
        Self::from_fd(file.into())
    }

    fn from_fd(fd: OwnedFd) -> Result<Self> {
        let stat = nix::sys::stat::fstat(fd.as_fd()).map_err(sys("stat a network namespace"))?;
        Ok(Self {
            fd,
            id: stat.st_ino,
            pinned: None,
        })
    }

    /// The namespace's inode number, as in `net:[ID]` of `/proc/PID/ns/net`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A path that names the namespace for [`crate::Network::Join`] or
    /// tools (`nsenter --net=PATH`): the pin if there is one, else
    /// `/proc/PID/fd/N` of this process (valid while `self` lives, and
    /// openable by the launcher's children as root).
    pub fn path(&self) -> PathBuf {
        match &self.pinned {
            Some(path) => path.clone(),
            None => PathBuf::from(format!(
                "/proc/{}/fd/{}",
                std::process::id(),
                self.fd.as_raw_fd()
            )),
        }
    }

    /// Keeps the namespace reachable at `path` (a new file) by an nsfs bind
    /// mount, as `ip netns add` does, until `self` is dropped. For holders
    /// that other processes must find by name; the mount outlives a crash.
    pub fn pin(&mut self, path: &Path) -> Result<()> {
        if self.pinned.is_some() {
            return Err(Error::Spec(format!(
                "network namespace net:[{}] is already pinned",
                self.id
            )));
        }
        File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io("create namespace pin", path))?;
        let source = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let mounted = nix::mount::mount(
            Some(source.as_str()),
            path,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
        if let Err(errno) = mounted {
            let _ = std::fs::remove_file(path);
            return Err(sys(format!("bind network namespace to {}", path.display()))(errno));
        }
        self.pinned = Some(path.to_path_buf());
        Ok(())
    }

    /// Runs `f` on a thread that has entered the namespace; processes it
    /// spawns start inside it too.
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("buildr-netns-enter".into())
                .spawn_scoped(scope, || -> Result<R> {
                    nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
                        .map_err(sys(format!("enter network namespace net:[{}]", self.id)))?;
                    Ok(f())
                })
                .map_err(|source| Error::Sys {
                    op: "start a thread to enter a network namespace".into(),
                    source,
                })?;
            thread.join().map_err(|_| Error::Sys {
                op: format!("run code in network namespace net:[{}]", self.id),
                source: std::io::Error::other("thread panicked"),
            })?
        })
    }

    /// Runs a command (e.g. `ip addr add ...`) inside the namespace and
    /// fails with its stderr when it does not succeed.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.enter(|| run_tool(program, args))?
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Some(path) = self.pinned.take() {
            let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Runs a host tool, turning failure into an error that quotes its stderr.
pub(crate) fn run_tool(program: &str, args: &[&str]) -> Result<Output> {
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Sys {
            op: format!("run {program} {}", args.join(" ")),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Sys {
            op: format!("run {program} {}", args.join(" ")),
            source: std::io::Error::other(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        });
    }
    Ok(output)
}

/// Finds `program` in `PATH` (and the sbin dirs, which root's tools live
/// in but a minimal environment may lack).
pub(crate) fn find_tool(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| {
            nix::unistd::access(candidate.as_path(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
}
