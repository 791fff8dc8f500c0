//! `-t` for foreground runs and execs: the pty master, received from the
//! sandbox, relayed to this process's own stdin and stdout; window size
//! changes (SIGWINCH) copied to it. Raw mode of the caller's terminal is
//! the caller's business (the CLI sets it).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::error::Result;

/// A running relay; [`Relay::finish`] waits for the output to drain.
#[derive(Debug)]
pub(super) struct Relay {
    done: mpsc::Receiver<()>,
}

impl Relay {
    /// Blocks SIGWINCH in the calling thread (call before starting other
    /// threads), makes the socketpair and starts relaying as soon as the
    /// master arrives. Returns the relay and the socket end to hand to the
    /// sandbox as stdin.
    pub(super) fn start() -> Result<(Relay, OwnedFd)> {
        let (ours, theirs) = buildr_exec::pty_socketpair()?;
        let mut winch = SigSet::empty();
        winch.add(Signal::SIGWINCH);
        let _ = winch.thread_block();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok(master) = buildr_exec::receive_pty(ours.as_fd()) else {
                let _ = tx.send(());
                return;
            };
            drop(ours);
            let stdin = std::io::stdin();
            let _ = buildr_exec::copy_window_size(stdin.as_fd(), master.as_fd());
            if let Ok(resize) = master.try_clone() {
                std::thread::spawn(move || {
                    while winch.wait().is_ok() {
                        let _ =
                            buildr_exec::copy_window_size(std::io::stdin().as_fd(), resize.as_fd());
                    }
                });
            }
            if let Ok(input) = master.try_clone() {
                std::thread::spawn(move || {
                    let mut input = std::fs::File::from(input);
                    let mut buf = [0u8; 4096];
                    let mut stdin = std::io::stdin().lock();
                    loop {
                        match stdin.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if input.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
            let mut output = std::fs::File::from(master);
            let mut stdout = std::io::stdout();
            let mut buf = [0u8; 4096];
            // EIO once every slave is closed: the command and its tree ended.
            while let Ok(n) = output.read(&mut buf) {
                if n == 0
                    || stdout
                        .write_all(&buf[..n])
                        .and_then(|()| stdout.flush())
                        .is_err()
                {
                    break;
                }
            }
            let _ = tx.send(());
        });
        Ok((Relay { done }, theirs))
    }

    /// Waits (briefly: a background process may hold the pty) for the
    /// output to drain once the command has exited.
    pub(super) fn finish(self) {
        let _ = self.done.recv_timeout(Duration::from_millis(500));
    }
}
