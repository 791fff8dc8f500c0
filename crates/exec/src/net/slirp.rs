//! The build network: one isolated namespace per build, connected to the
//! outside by slirp4netns (user-mode TCP/IP).
//!
//! Why user-mode: it needs no bridge, no iptables rule, no sysctl and no
//! address plan on the host, works rootless, and the host's loopback is
//! out of reach by construction (`--disable-host-loopback`), its abstract
//! unix sockets too (they are per network namespace). The cost: every
//! packet crosses a userspace TCP stack, so throughput is lower than a
//! veth + NAT (fine for package downloads), and starting slirp4netns takes
//! a few milliseconds once per build. Steps join the namespace
//! ([`crate::Network::Join`]), so they pay nothing per step.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::netns::{NetNs, find_tool};
use crate::error::{Error, Result};
use crate::spec::Network;

/// Where slirp4netns puts its DNS forwarder (the default 10.0.2.0/24 plan).
pub const SLIRP_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// How a [`BuildNetwork`] is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildNetworkOptions {
    /// The slirp4netns binary; `None` looks it up in `PATH`.
    pub slirp4netns: Option<PathBuf>,
    /// MTU of the namespace's tap device (larger is faster; max 65521).
    pub mtu: u32,
    /// How long slirp4netns may take to say it is ready.
    pub ready_timeout: Duration,
}

impl Default for BuildNetworkOptions {
    fn default() -> Self {
        Self {
            slirp4netns: None,
            mtu: 65520,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// An isolated network namespace that reaches the outside, shared by every
/// RUN step of a build. Dropping it stops slirp4netns and frees the
/// namespace: no process, mount, interface or firewall rule remains (even
/// if this process dies: slirp4netns exits when its exit pipe closes).
///
/// A network made by [`BuildNetwork::lazy`] has its namespace at once but
/// starts slirp4netns only when a sandbox first joins it, so a build whose
/// RUN steps all hit the cache never starts a helper process.
#[derive(Debug)]
pub struct BuildNetwork {
    shared: Arc<Shared>,
    nameservers: Vec<IpAddr>,
}

#[derive(Debug)]
struct Shared {
    netns: NetNs,
    options: BuildNetworkOptions,
    slirp: Mutex<Slirp>,
}

#[derive(Debug, Default)]
struct Slirp {
    child: Option<Child>,
    /// Closing it tells slirp4netns to exit.
    exit_write: Option<OwnedFd>,
    /// Set once a start was tried: later joins get the same answer.
    outcome: Option<std::result::Result<(), Arc<SlirpError>>>,
}

/// Why slirp4netns did not start; the source of the [`Error::Sys`] every
/// join of the network gets.
#[derive(Debug, thiserror::Error)]
enum SlirpError {
    #[error("{what} pipe")]
    Pipe {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("start {}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What went wrong, then what slirp4netns said on stderr (it names
    /// the cause, such as `/dev/net/tun`, so it ends the message).
    #[error("{}: {stderr}", crate::error::error_chain(why))]
    NotReady { why: ReadyError, stderr: String },
}

/// Why slirp4netns's ready byte did not come.
#[derive(Debug, thiserror::Error)]
enum ReadyError {
    #[error("not ready after {0:?}")]
    Timeout(Duration),
    #[error("poll ready pipe")]
    Poll(#[source] nix::Error),
    #[error("unexpected ready byte {0:?}")]
    Byte(u8),
    #[error("exited before it was ready")]
    Exited,
    #[error("read ready pipe")]
    Read(#[source] nix::Error),
}

/// Lazily started build networks, by namespace path, for
/// [`ensure_started`]. Entries are removed when their network drops.
static LAZY: Mutex<Vec<(PathBuf, std::sync::Weak<Shared>)>> = Mutex::new(Vec::new());

/// Starts slirp4netns for the lazily started build network whose namespace
/// is `netns`, if there is one and it has not started yet. Called by the
/// sandbox before it joins a namespace.
pub(crate) fn ensure_started(netns: &std::path::Path) -> Result<()> {
    let shared = {
        let lazy = LAZY.lock().unwrap_or_else(PoisonError::into_inner);
        lazy.iter()
            .find(|(path, _)| path == netns)
            .and_then(|(_, weak)| weak.upgrade())
    };
    match shared {
        Some(shared) => shared.start(),
        None => Ok(()),
    }
}

impl BuildNetwork {
    /// Starts a build network with default options.
    pub fn new() -> Result<Self> {
        Self::with_options(&BuildNetworkOptions::default())
    }

    /// Starts a build network: a fresh namespace, then slirp4netns attached
    /// to it (`--configure --disable-host-loopback --enable-sandbox
    /// --enable-seccomp`); returns once the interface is up and routed.
    pub fn with_options(options: &BuildNetworkOptions) -> Result<Self> {
        let network = Self::make(options)?;
        network.shared.start()?;
        Ok(network)
    }

    /// A build network whose namespace exists now and whose slirp4netns
    /// starts when the first sandbox joins it (see the type's docs). A
    /// missing slirp4netns binary is still reported here, at once.
    pub fn lazy(options: &BuildNetworkOptions) -> Result<Self> {
        let network = Self::make(options)?;
        let mut lazy = LAZY.lock().unwrap_or_else(PoisonError::into_inner);
        lazy.retain(|(_, weak)| weak.strong_count() > 0);
        lazy.push((network.shared.netns.path(), Arc::downgrade(&network.shared)));
        Ok(network)
    }

    fn make(options: &BuildNetworkOptions) -> Result<Self> {
        let program = match &options.slirp4netns {
            Some(path) => path.clone(),
            None => find_tool("slirp4netns").ok_or_else(|| Error::Sys {
                op: "find slirp4netns for the build network".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not in PATH (Debian package slirp4netns)",
                ),
            })?,
        };
        let options = BuildNetworkOptions {
            slirp4netns: Some(program),
            ..options.clone()
        };
        Ok(Self {
            shared: Arc::new(Shared {
                netns: NetNs::new()?,
                options,
                slirp: Mutex::new(Slirp::default()),
            }),
            nameservers: build_nameservers(),
        })
    }

    /// The choice to put in [`crate::SpawnSpec::network`] for every step.
    /// Its resolv.conf names the host's resolvers when they are reachable
    /// from a namespace (not loopback ones: /etc/resolv.conf, else
    /// systemd-resolved's upstream list), else slirp4netns's forwarder.
    pub fn network(&self) -> Network {
        Network::Join {
            netns: self.shared.netns.path(),
            nameservers: self.nameservers.clone(),
        }
    }

    /// The namespace itself.
    pub fn netns(&self) -> &NetNs {
        &self.shared.netns
    }

    /// Host pid of slirp4netns (for checks that it is gone afterwards);
    /// `None` while a lazy network has not started.
    pub fn helper_pid(&self) -> Option<u32> {
        let slirp = self
            .shared
            .slirp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slirp.child.as_ref().map(Child::id)
    }
}

impl Shared {
    /// Starts slirp4netns once; later calls return the first outcome.
    fn start(&self) -> Result<()> {
        let mut slirp = self.slirp.lock().unwrap_or_else(PoisonError::into_inner);
        if slirp.outcome.is_none() {
            let outcome = self.spawn(&mut slirp).map_err(Arc::new);
            slirp.outcome = Some(outcome);
        }
        match &slirp.outcome {
            Some(Err(why)) => Err(Error::Sys {
                op: "start slirp4netns for the build network".into(),
                source: std::io::Error::other(Arc::clone(why)),
            }),
            _ => Ok(()),
        }
    }

    fn spawn(&self, slirp: &mut Slirp) -> std::result::Result<(), SlirpError> {
        let program = self.options.slirp4netns.clone().unwrap_or_default();
        let pipe = |what| {
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| SlirpError::Pipe { what, source })
        };
        let (ready_read, ready_write) = pipe("ready")?;
        let (exit_read, exit_write) = pipe("exit")?;
        let mut cmd = Command::new(&program);
        cmd.args([
            "--configure",
            &format!("--mtu={}", self.options.mtu),
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            "--ready-fd=3",
            "--exit-fd=4",
            "--netns-type=path",
        ])
        .arg(self.netns.path())
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        // No parent-death signal: it would fire when the spawning *thread*
        // ends; the exit pipe covers the death of the whole process.
        crate::sys::map_fds_on_spawn(
            &mut cmd,
            [(ready_write.as_raw_fd(), 3), (exit_read.as_raw_fd(), 4)],
            false,
        );
        let mut child = cmd
            .spawn()
            .map_err(|source| SlirpError::Spawn { program, source })?;
        drop((ready_write, exit_read));
        let (stderr, drainer) = drain(child.stderr.take());
        slirp.child = Some(child);
        slirp.exit_write = Some(exit_write);
        if let Err(why) = wait_ready(&ready_read, self.options.ready_timeout) {
            slirp.stop();
            if let Some(drainer) = drainer {
                let _ = drainer.join();
            }
            let said = stderr.lock().map(|s| s.clone()).unwrap_or_default();
            return Err(SlirpError::NotReady {
                why,
                stderr: String::from_utf8_lossy(&said).trim().to_owned(),
            });
        }
        Ok(())
    }
}

impl Slirp {
    /// slirp4netns keeps no state worth a graceful exit: it is killed and
    /// reaped at once (closing the exit pipe alone costs tens of ms).
    fn stop(&mut self) {
        self.exit_write = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for BuildNetwork {
    fn drop(&mut self) {
        let mut lazy = LAZY.lock().unwrap_or_else(PoisonError::into_inner);
        lazy.retain(|(_, weak)| {
            weak.strong_count() > 0 && !std::ptr::eq(weak.as_ptr(), Arc::as_ptr(&self.shared))
        });
        drop(lazy);
        self.shared
            .slirp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop();
    }
}

/// The host's resolvers that a namespace can reach, else slirp's forwarder.
fn build_nameservers() -> Vec<IpAddr> {
    for file in ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let found = reachable_nameservers(&text);
        if !found.is_empty() {
            return found;
        }
    }
    vec![IpAddr::V4(SLIRP_DNS)]
}

/// `nameserver` addresses of a resolv.conf text, loopback ones left out.
fn reachable_nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .filter(|addr| !addr.is_loopback() && !addr.is_unspecified())
        .collect()
}

/// Waits for slirp4netns to write its ready byte.
fn wait_ready(ready: &OwnedFd, timeout: Duration) -> std::result::Result<(), ReadyError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadyError::Timeout(timeout));
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ReadyError::Poll(e)),
        }
        let mut byte = [0u8; 1];
        return match nix::unistd::read(ready, &mut byte) {
            Ok(1) if byte[0] == b'1' => Ok(()),
            Ok(1) => Err(ReadyError::Byte(byte[0])),
            Ok(_) => Err(ReadyError::Exited),
            Err(e) => Err(ReadyError::Read(e)),
        };
    }
}

/// Keeps the last 4 KiB a child writes to stderr, so the pipe never fills.
fn drain(
    stderr: Option<std::process::ChildStderr>,
) -> (Arc<Mutex<Vec<u8>>>, Option<std::thread::JoinHandle<()>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let Some(mut stderr) = stderr else {
        return (kept, None);
    };
    let sink = Arc::clone(&kept);
    let drainer = std::thread::Builder::new()
        .name("buildr-slirp-stderr".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut kept) = sink.lock() {
                    kept.extend_from_slice(&buf[..n]);
                    let excess = kept.len().saturating_sub(4096);
                    kept.drain(..excess);
                }
            }
        })
        .ok();
    (kept, drainer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_left_out() {
        let cases: &[(&str, &[&str])] = &[
            (
                "nameserver 192.0.2.53\nnameserver 127.0.0.53\n",
                &["192.0.2.53"],
            ),
            ("nameserver 127.0.0.53\noptions edns0 trust-ad\n", &[]),
            (
                "# comment\nnameserver ::1\nnameserver 2001:db8::53\n",
                &["2001:db8::53"],
            ),
            (
                "nameserver not-an-address\nnameserver\nsearch example\n",
                &[],
            ),
            ("nameserver 0.0.0.0\n", &[]),
        ];
        for (text, want) in cases {
            let got: Vec<String> = reachable_nameservers(text)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, *want, "{text:?}");
        }
    }
}
