//! The handle that kills a running sandbox or signals its command.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::fcntl::OFlag;

use crate::error::{Result, sys};

/// Kills a running sandbox's whole process tree at once, or passes a
/// signal to its command (through the init), from any thread.
#[derive(Debug, Clone)]
pub struct Cancel {
    pub(crate) inner: Arc<CancelInner>,
}

#[derive(Debug)]
pub(crate) struct CancelInner {
    pub(crate) cancelled: AtomicBool,
    /// A signal to forward to the command; 0 when none is pending.
    pub(crate) signal: AtomicI32,
    /// The sandbox's pid 1 (host pid) once known; 0 before.
    pub(crate) pid1: AtomicI32,
    pub(crate) wake_read: OwnedFd,
    wake_write: OwnedFd,
}

impl Cancel {
    /// A fresh, untriggered handle.
    pub fn new() -> Result<Self> {
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(sys("create cancel pipe"))?;
        Ok(Self {
            inner: Arc::new(CancelInner {
                cancelled: AtomicBool::new(false),
                signal: AtomicI32::new(0),
                pid1: AtomicI32::new(0),
                wake_read,
                wake_write,
            }),
        })
    }

    /// Requests cancellation; the run kills everything and returns.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let _ = nix::unistd::write(&self.inner.wake_write, b"x");
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the command: the launcher
    /// passes it to the init, which forwards it. One signal may be pending
    /// at a time; a newer one replaces it.
    pub fn send_signal(&self, signal: i32) {
        self.inner.signal.store(signal, Ordering::SeqCst);
        let _ = nix::unistd::write(&self.inner.wake_write, b"s");
    }

    /// The running sandbox's pid 1 as the host sees it (for
    /// [`crate::Sandbox::exec_in`]), once its command has started (so the
    /// rootfs is in place); for an exec, the exec'd process. `None` before.
    pub fn pid1(&self) -> Option<i32> {
        let pid = self.inner.pid1.load(Ordering::SeqCst);
        (pid > 0).then_some(pid)
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }
}
