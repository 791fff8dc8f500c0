//! `-t`: the pty master, received from the sandbox. For foreground runs
//! and execs ([`Relay`]) it is relayed to this process's own stdin and
//! stdout, window size changes (SIGWINCH) copied to it; raw mode of the
//! caller's terminal is the caller's business (the CLI sets it). For a
//! detached container ([`Server`]) the supervisor holds it: its output goes
//! to the log and to every client connected to the container's attach
//! socket, and what clients send goes to it (with `-i`).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use super::logs::{LogStream, LogWriter};
use crate::error::{Error, Result};

/// The container log, shared by the output paths of one run.
pub(super) type SharedLog = Arc<Mutex<LogWriter>>;

fn log_output(log: Option<&SharedLog>, chunk: &[u8]) {
    if let Some(log) = log
        && let Ok(mut log) = log.lock()
    {
        log.write(LogStream::Stdout, chunk);
    }
}

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
        Relay::start_logged(None)
    }

    /// As [`Relay::start`]; with `log`, the output is also logged (`docker
    /// logs` shows it).
    pub(super) fn start_logged(log: Option<SharedLog>) -> Result<(Relay, OwnedFd)> {
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
                log_output(log.as_ref(), &buf[..n]);
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

/// A detached container's pty, served on a unix socket; see the module doc.
#[derive(Debug)]
pub(super) struct Server {
    done: mpsc::Receiver<()>,
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
    clients: Clients,
}

type Clients = Arc<Mutex<Vec<UnixStream>>>;

impl Server {
    /// Listens on `path` (mode 0600) and starts serving as soon as the
    /// master arrives. Returns the server and the socket end to hand to
    /// the sandbox as stdin.
    pub(super) fn start(path: &Path, log: SharedLog, stdin: bool) -> Result<(Server, OwnedFd)> {
        let io = |action: &'static str| {
            let path = path.to_owned();
            move |source| Error::Io {
                action,
                path,
                source,
            }
        };
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(io("listen on attach socket"))?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io("restrict attach socket"))?;
        let (ours, theirs) = buildr_exec::pty_socketpair()?;
        let clients: Clients = Arc::default();
        let clients_left = clients.clone();
        let (master_tx, master_rx) = mpsc::channel::<Arc<OwnedFd>>();
        let stopping = Arc::new(AtomicBool::new(false));
        let accept = {
            let (clients, stopping) = (clients.clone(), stopping.clone());
            std::thread::spawn(move || {
                let mut master: Option<Arc<OwnedFd>> = None;
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    if master.is_none() {
                        master = master_rx.recv().ok();
                    }
                    let Some(master) = master.clone() else { return };
                    // A client that stops reading is dropped, never
                    // allowed to stall the container's output.
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    if let Ok(out) = stream.try_clone()
                        && let Ok(mut list) = clients.lock()
                    {
                        list.push(out);
                    }
                    if stdin {
                        std::thread::spawn(move || client_input(stream, &master));
                    }
                }
            })
        };
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok(master) = buildr_exec::receive_pty(ours.as_fd()) else {
                let _ = tx.send(());
                return;
            };
            drop(ours);
            let master = Arc::new(master);
            let _ = master_tx.send(master.clone());
            let Ok(output) = master.try_clone() else {
                let _ = tx.send(());
                return;
            };
            let mut output = std::fs::File::from(output);
            let mut buf = [0u8; 4096];
            // EIO once every slave is closed: the command and its tree ended.
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log_output(Some(&log), &buf[..n]);
                if let Ok(mut list) = clients.lock() {
                    list.retain_mut(|client| client.write_all(&buf[..n]).is_ok());
                }
            }
            // Clients see end-of-file: the container is gone.
            if let Ok(mut list) = clients.lock() {
                for client in list.drain(..) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                }
            }
            let _ = tx.send(());
        });
        let server = Server {
            done,
            path: path.to_owned(),
            stopping,
            accept: Some(accept),
            clients: clients_left,
        };
        Ok((server, theirs))
    }

    /// Waits briefly for the output to drain, stops accepting and removes
    /// the socket.
    pub(super) fn finish(mut self) {
        let _ = self.done.recv_timeout(Duration::from_millis(500));
        self.stop();
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = UnixStream::connect(&self.path);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        // Those that came after the end, too.
        if let Ok(mut list) = self.clients.lock() {
            for client in list.drain(..) {
                let _ = client.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

/// Copies what one client sends to the pty until it hangs up.
fn client_input(mut stream: UnixStream, master: &OwnedFd) {
    let Ok(input) = master.try_clone() else {
        return;
    };
    let mut input = std::fs::File::from(input);
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || input.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
