//! Published ports (`-p [IP:]HOST:CTR[/tcp|udp]`): a userspace proxy that
//! listens on the host and forwards each TCP connection, and each UDP
//! flow, to the container's address, as Docker's `docker-proxy` does.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::netns::NetNs;
use crate::error::{Error, Result, sys};

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// One `-p` publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// Host address to listen on; `0.0.0.0` when not given.
    pub host_ip: IpAddr,
    /// Host port; 0 picks a free one (`-p 80`, `-P`).
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl FromStr for PortMapping {
    type Err = Error;

    /// Parses Docker's syntax: `CTR`, `HOST:CTR`, `IP:HOST:CTR`, `IP::CTR`,
    /// `[IPV6]:HOST:CTR`, each optionally followed by `/tcp` or `/udp`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Spec(format!("invalid port publication {text:?}: {why}"));
        let (spec, protocol) = match text.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some(_) => return Err(bad("protocol must be tcp or udp")),
            None => (text, Protocol::Tcp),
        };
        let (host_ip, rest) = if let Some(v6) = spec.strip_prefix('[') {
            let (ip, rest) = v6.split_once("]:").ok_or_else(|| bad("unclosed [ipv6]"))?;
            let ip = ip.parse().map_err(|_| bad("bad IPv6 address"))?;
            (Some(ip), rest)
        } else {
            match spec.matches(':').count() {
                0 | 1 => (None, spec),
                2 => {
                    let (ip, rest) = spec.split_once(':').unwrap_or_default();
                    let ip = if ip.is_empty() {
                        None
                    } else {
                        Some(ip.parse().map_err(|_| bad("bad host address"))?)
                    };
                    (ip, rest)
                }
                _ => return Err(bad("too many ':' (write IPv6 addresses in brackets)")),
            }
        };
        let port = |p: &str, what: &str| -> Result<u16> {
            p.parse::<u16>()
                .map_err(|_| bad(&format!("{what} port {p:?} is not a number in 0-65535")))
        };
        let (host_port, container_port) = match rest.split_once(':') {
            Some(("", ctr)) => (0, port(ctr, "container")?),
            Some((host, ctr)) => (port(host, "host")?, port(ctr, "container")?),
            None => (0, port(rest, "container")?),
        };
        if container_port == 0 {
            return Err(bad("container port 0"));
        }
        Ok(Self {
            host_ip: host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            host_port,
            container_port,
            protocol,
        })
    }
}

impl PortMapping {
    /// Docker's `-p` syntax for this publication (`[IP:][HOST:]CTR/PROTO`),
    /// which [`FromStr`] reads back to the same mapping.
    pub fn spec(&self) -> String {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let ctr = self.container_port;
        let host = match self.host_port {
            0 => String::new(),
            port => port.to_string(),
        };
        match self.host_ip {
            IpAddr::V4(ip) if ip.is_unspecified() && host.is_empty() => format!("{ctr}/{proto}"),
            IpAddr::V4(ip) if ip.is_unspecified() => format!("{host}:{ctr}/{proto}"),
            IpAddr::V4(ip) => format!("{ip}:{host}:{ctr}/{proto}"),
            IpAddr::V6(ip) => format!("[{ip}]:{host}:{ctr}/{proto}"),
        }
    }
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let host = SocketAddr::new(self.host_ip, self.host_port);
        write!(f, "{host}->{}/{proto}", self.container_port)
    }
}

/// How long an idle UDP flow keeps its upstream socket.
const UDP_IDLE: Duration = Duration::from_secs(60);

/// A running publication. Dropping it stops listening and closes every
/// forwarded connection.
#[derive(Debug)]
pub struct PortProxy {
    mapping: PortMapping,
    local: SocketAddr,
    shared: Arc<Shared>,
    wake_write: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    next_id: AtomicU64,
    /// Open TCP connections (both ends), shut down on stop.
    tcp: Mutex<HashMap<u64, [TcpStream; 2]>>,
    /// Per-connection or per-flow worker threads.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl PortProxy {
    /// Listens on `mapping`'s host side and forwards to
    /// `target:container_port` (the container's address on its bridge).
    pub fn start(mapping: &PortMapping, target: IpAddr) -> Result<Self> {
        Self::start_to(mapping, target, None)
    }

    /// As [`PortProxy::start`], with the connections to the container
    /// made from network namespace `upstream_ns` (the bridge's, when it is
    /// not this process's: rootless), while the listener stays here.
    pub fn start_to(
        mapping: &PortMapping,
        target: IpAddr,
        upstream_ns: Option<NetNs>,
    ) -> Result<Self> {
        let upstream_ns = upstream_ns.map(Arc::new);
        let bind = SocketAddr::new(mapping.host_ip, mapping.host_port);
        let upstream = SocketAddr::new(target, mapping.container_port);
        let listen_err = |source| Error::Sys {
            op: format!("listen on {bind} to publish {mapping}"),
            source,
        };
        let (wake_read, wake_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create port proxy wake pipe"))?;
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let (local, body): (SocketAddr, Box<dyn FnOnce() + Send>) = match mapping.protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(bind).map_err(listen_err)?;
                let local = listener.local_addr().map_err(listen_err)?;
                (
                    local,
                    Box::new(move || {
                        let upstream = Upstream {
                            addr: upstream,
                            netns: upstream_ns,
                        };
                        tcp_accept_loop(&listener, &upstream, &wake_read, &worker);
                    }),
                )
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(bind).map_err(listen_err)?;
                let local = socket.local_addr().map_err(listen_err)?;
                (
                    local,
                    Box::new(move || {
                        let upstream = Upstream {
                            addr: upstream,
                            netns: upstream_ns,
                        };
                        udp_loop(&socket, &upstream, &wake_read, &worker);
                    }),
                )
            }
        };
        let thread = std::thread::Builder::new()
            .name(format!("buildr-proxy-{}", local.port()))
            .spawn(body)
            .map_err(|source| Error::Sys {
                op: format!("start the proxy thread for {mapping}"),
                source,
            })?;
        Ok(Self {
            mapping: PortMapping {
                host_port: local.port(),
                ..*mapping
            },
            local,
            shared,
            wake_write: Some(wake_write),
            thread: Some(thread),
        })
    }

    /// The address actually listened on (the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The publication, with the host port actually bound.
    pub fn mapping(&self) -> PortMapping {
        self.mapping
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(wake) = self.wake_write.take() {
            let _ = nix::unistd::write(&wake, b"x");
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Ok(tcp) = self.shared.tcp.lock() {
            for [a, b] in tcp.values() {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
        }
        let workers = self
            .shared
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// Waits until `socket` is readable or the wake pipe fires; false on stop.
fn wait_readable(socket: &impl AsFd, wake: &OwnedFd, shared: &Shared) -> bool {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
        let woken = fds[1].revents().is_some_and(|r| !r.is_empty());
        if woken || shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return true;
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>, name: String, work: impl FnOnce() + Send + 'static) {
    if let Ok(handle) = std::thread::Builder::new().name(name).spawn(work)
        && let Ok(mut workers) = shared.workers.lock()
    {
        workers.retain(|w| !w.is_finished());
        workers.push(handle);
    }
}

/// Where forwarded traffic goes: the container's address, reached from a
/// network namespace of its own when given.
#[derive(Debug, Clone)]
struct Upstream {
    addr: SocketAddr,
    netns: Option<Arc<NetNs>>,
}

impl Upstream {
    /// Runs `open` (which makes a socket) in the upstream namespace.
    fn open<T: Send>(&self, open: impl FnOnce() -> std::io::Result<T> + Send) -> Option<T> {
        match &self.netns {
            None => open().ok(),
            Some(ns) => ns.enter(open).ok()?.ok(),
        }
    }
}

fn tcp_accept_loop(
    listener: &TcpListener,
    upstream: &Upstream,
    wake: &OwnedFd,
    shared: &Arc<Shared>,
) {
    while wait_readable(listener, wake, shared) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::WouldBlock => {
                continue;
            }
            // Out of descriptors and the like: back off, keep serving.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let conn = Arc::clone(shared);
        let upstream = upstream.clone();
        spawn_worker(shared, "buildr-proxy-conn".into(), move || {
            forward_tcp(client, &upstream, &conn);
        });
    }
}

/// Pipes one client connection to the container both ways; each side's
/// end of stream is passed on as a half-close.
fn forward_tcp(client: TcpStream, upstream: &Upstream, shared: &Shared) {
    let addr = upstream.addr;
    let connect = move || TcpStream::connect_timeout(&addr, Duration::from_secs(5));
    let Some(server) = upstream.open(connect) else {
        return; // The client sees its connection closed, as with docker-proxy.
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    if let Ok(mut tcp) = shared.tcp.lock() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        tcp.insert(id, [c3, s3]);
    }
    let back = std::thread::Builder::new()
        .name("buildr-proxy-back".into())
        .spawn(move || pipe_tcp(s2, c2));
    pipe_tcp(client, server);
    if let Ok(back) = back {
        let _ = back.join();
    }
    if let Ok(mut tcp) = shared.tcp.lock() {
        tcp.remove(&id);
    }
}

fn pipe_tcp(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// One UDP flow per client address, each with its own upstream socket
/// whose replies go back to that client; idle flows expire.
fn udp_loop(socket: &UdpSocket, upstream: &Upstream, wake: &OwnedFd, shared: &Arc<Shared>) {
    let flows: Arc<Mutex<HashMap<SocketAddr, (UdpSocket, Instant)>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    while wait_readable(socket, wake, shared) {
        let (len, client) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(_) => continue,
        };
        let Ok(mut table) = flows.lock() else { return };
        let flow = match table.entry(client) {
            Entry::Occupied(flow) => flow.into_mut(),
            Entry::Vacant(slot) => {
                let Some((up, reader, replier)) = open_flow(socket, upstream) else {
                    continue;
                };
                let (flows, stop) = (Arc::clone(&flows), Arc::clone(shared));
                spawn_worker(shared, "buildr-proxy-udp".into(), move || {
                    udp_replies(&reader, &replier, client, &flows, &stop);
                });
                slot.insert((up, Instant::now()))
            }
        };
        flow.1 = Instant::now();
        let _ = flow.0.send(&buf[..len]);
    }
}

/// An upstream socket connected to the container, a clone to read its
/// replies from, and a clone of the listening socket to answer through.
fn open_flow(socket: &UdpSocket, upstream: &Upstream) -> Option<(UdpSocket, UdpSocket, UdpSocket)> {
    let addr = upstream.addr;
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let up = upstream.open(move || {
        let up = UdpSocket::bind(any)?;
        up.connect(addr)?;
        Ok(up)
    })?;
    up.set_read_timeout(Some(Duration::from_millis(250))).ok()?;
    let reader = up.try_clone().ok()?;
    let replier = socket.try_clone().ok()?;
    Some((up, reader, replier))
}

fn udp_replies(
    upstream: &UdpSocket,
    socket: &UdpSocket,
    client: SocketAddr,
    flows: &Mutex<HashMap<SocketAddr, (UdpSocket, Instant)>>,
    shared: &Shared,
) {
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::SeqCst) {
        match upstream.recv(&mut buf) {
            Ok(len) => {
                let _ = socket.send_to(&buf[..len], client);
                if let Ok(mut table) = flows.lock()
                    && let Some((_, last)) = table.get_mut(&client)
                {
                    *last = Instant::now();
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let Ok(mut table) = flows.lock() else { return };
                let idle = table
                    .get(&client)
                    .is_none_or(|(_, last)| last.elapsed() > UDP_IDLE);
                if idle {
                    table.remove(&client);
                    return;
                }
            }
            // ICMP port unreachable from the container: keep the flow.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_back_to_the_same_mapping() {
        for (text, spec) in [
            ("80", "80/tcp"),
            ("8080:80", "8080:80/tcp"),
            ("127.0.0.1:8080:80/udp", "127.0.0.1:8080:80/udp"),
            ("127.0.0.1::80", "127.0.0.1::80/tcp"),
            ("[::1]:9000:90", "[::1]:9000:90/tcp"),
            ("[::1]::90/udp", "[::1]::90/udp"),
        ] {
            let mapping: PortMapping = text.parse().unwrap();
            assert_eq!(mapping.spec(), spec, "{text}");
            assert_eq!(spec.parse::<PortMapping>().unwrap(), mapping, "{spec}");
        }
        for bad in ["", "x", "80/sctp", "1:2:3:4", "70000:80", "8080:0"] {
            assert!(bad.parse::<PortMapping>().is_err(), "{bad:?} parsed");
        }
    }
}
