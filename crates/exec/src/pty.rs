//! Pseudo-terminals for `-t`: made inside the sandbox (its /dev/ptmx, so
//! the slave lives in the sandbox's own devpts instance), the master sent
//! back to the launcher over a unix socket with `SCM_RIGHTS`.
//!
//! The launcher hands one end of a socketpair as the init's stdin; the
//! init (pid 1 for a run, the exec helper for an exec) opens the pty,
//! sends the master on that socket, and gives the command the slave as
//! 0, 1 and 2 and as its controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::error::{Error, Result, sys};
use crate::init::{InitError, Res, ctx};

/// A socketpair for [`crate::Sandbox::run_with_stdin`] /
/// [`crate::Sandbox::exec_in`] with `tty` set: `(ours, theirs)`; hand
/// `theirs` as stdin, then take the master from `ours` with [`receive_pty`].
pub fn pty_socketpair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("create pty socketpair"))
}

/// Waits for the sandbox to send its pty master on `socket`.
pub fn receive_pty(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(std::os::fd::RawFd);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive pty master"))?;
    let mut received = None;
    for cmsg in msg.cmsgs().map_err(sys("read pty control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // The kernel installed it for us: we are its only owner.
                let owned = crate::sys::own_received_fd(fd);
                if received.is_none() {
                    received = Some(owned);
                }
            }
        }
    }
    received.ok_or_else(|| Error::Init("the sandbox sent no pty master".into()))
}

/// Copies the window size of terminal `from` to terminal `to` (a pty master).
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<()> {
    let size = crate::sys::window_size(from.as_raw_fd())
        .map_err(|e| Error::Init(format!("read window size: {e}")))?;
    crate::sys::set_window_size(to.as_raw_fd(), &size)
        .map_err(|e| Error::Init(format!("set window size: {e}")))
}

/// In the sandbox: opens a pty from its /dev/ptmx, sends the master on
/// `socket`, returns the slave.
pub(crate) fn make_and_send(socket: BorrowedFd<'_>) -> Res<OwnedFd> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(ctx("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(ctx("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(ctx("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(ctx("ptsname"))?;
    if !name.starts_with("/dev/pts/") {
        return Err(InitError::Refused(format!("unexpected pty name {name}")));
    }
    let slave: OwnedFd = std::fs::File::options()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open(&name)
        .map_err(ctx(format!("open {name}")))?
        .into();
    let fds = [master.as_fd().as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(ctx("send pty master"))?;
    Ok(slave)
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY)
    }
}
