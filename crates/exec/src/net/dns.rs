//! The DNS server of a user-defined network: containers on the network
//! resolve each other by container name, alias and short id through it, as
//! through Docker's embedded resolver; every other question goes to the
//! host's resolvers and the answer comes back unchanged.
//!
//! There is no daemon: the first container to join a network with DNS
//! starts the server (one process per network, as aardvark-dns serves
//! podman's networks), the last to leave stops it. The process is this
//! program run again in [`DNS_MODE`], detached (double fork, own session),
//! serving UDP and TCP port 53 on the bridge's gateway address; the
//! sockets are bound by the starting process, so a port that cannot be had
//! fails the container's start, with the reason, instead of a background
//! process nobody watches. The names come from the network's lease file
//! (written atomically under its lock), read again whenever it changes.
//!
//! Only the question of a query is parsed (header, one name, type, class):
//! a name this network knows gets its A record (and an empty answer for
//! other types, so resolvers do not wait for an upstream that cannot know
//! it), anything else is relayed as bytes. That small parse is written
//! here rather than taken from a DNS library (hickory-proto would bring
//! async machinery and a dozen crates for the 80 lines below); it is
//! bounds-checked throughout, as queries come from containers.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::ipam::{Leases, ProcessRecord};
use crate::error::{Error, Result};

/// The init mode that turns this program into a network's DNS server.
pub(crate) const DNS_MODE: &str = "network-dns";
/// The network's state dir (its lease file names the hosts).
const DIR_ENV: &str = "_BUILDR_DNS_DIR";
/// Comma-separated upstream resolvers; empty: the host's resolv.conf.
const UPSTREAM_ENV: &str = "_BUILDR_DNS_UPSTREAM";
/// Where the listening sockets arrive in the server.
const UDP_FD: i32 = 3;
const TCP_FD: i32 = 4;
/// Docker's embedded resolver answers with this TTL.
const TTL: u32 = 600;
/// Bounds on concurrent upstream relays and TCP clients.
const MAX_IN_FLIGHT: usize = 256;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts the DNS server of the network whose state is in `state_dir`,
/// listening on `listen` port 53 (the bridge's gateway, which must be
/// configured), relaying to `upstream` (empty: the host's resolvers).
/// Call in the network's namespace; returns the detached server.
pub(crate) fn start(
    state_dir: &Path,
    listen: Ipv4Addr,
    upstream: &[IpAddr],
) -> Result<ProcessRecord> {
    let sys = |op: String| move |source| Error::Sys { op, source };
    let udp =
        UdpSocket::bind((listen, 53)).map_err(sys(format!("bind DNS (udp) on {listen}:53")))?;
    let tcp =
        TcpListener::bind((listen, 53)).map_err(sys(format!("bind DNS (tcp) on {listen}:53")))?;
    let exe = std::env::current_exe().map_err(sys(
        "find this program to start the network's DNS server".into(),
    ))?;
    let upstream: Vec<String> = upstream.iter().map(IpAddr::to_string).collect();
    let log = state_dir.join("dns.log");
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(crate::error::io("open", &log))?;
    let mut cmd = Command::new(&exe);
    cmd.env_clear()
        .env(crate::init::INIT_ENV, DNS_MODE)
        .env(DIR_ENV, state_dir)
        .env(UPSTREAM_ENV, upstream.join(","))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    crate::sys::map_fds_on_spawn(
        &mut cmd,
        [(udp.as_raw_fd(), UDP_FD), (tcp.as_raw_fd(), TCP_FD)],
        false,
    );
    let mut child = cmd
        .spawn()
        .map_err(sys(format!("start the DNS server {}", exe.display())))?;
    // The child forks the server and exits, reporting the server's pid:
    // the server belongs to no one's process tree then, and is never a
    // zombie of a long-lived caller.
    // One line: the server keeps the pipe open, so no reading to EOF.
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
    }
    let _ = child.wait();
    let server = line
        .trim()
        .strip_prefix("pid ")
        .and_then(|pid| pid.parse().ok())
        .and_then(ProcessRecord::of);
    server.ok_or_else(|| Error::Sys {
        op: format!("start the DNS server for {listen} (see {})", log.display()),
        source: std::io::Error::other(format!("it reported {:?}", line.trim())),
    })
}

/// Stops a server [`start`] made, if it still runs.
/// Waits (a second at most, then SIGKILL) until it is gone, so that the
/// next container's server can bind the port at once.
pub(crate) fn stop(server: &ProcessRecord) {
    use nix::sys::signal::{Signal, kill};
    if !server.alive() {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.pid).unwrap_or(i32::MAX));
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while server.alive() {
        if std::time::Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The server process ([`DNS_MODE`]): forks the server proper, reports
/// its pid and exits; the server serves until it is signalled or its
/// network's state goes away.
pub(crate) fn run_server() -> Result<i32> {
    let udp = crate::sys::take_inherited_fd(UDP_FD).map_err(|source| Error::Sys {
        op: "take the DNS server's udp socket".into(),
        source,
    })?;
    let tcp = crate::sys::take_inherited_fd(TCP_FD).map_err(|source| Error::Sys {
        op: "take the DNS server's tcp socket".into(),
        source,
    })?;
    let dir = std::env::var_os(DIR_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| Error::Spec(format!("{DIR_ENV} is not set")))?;
    let upstream = upstream_resolvers(&std::env::var(UPSTREAM_ENV).unwrap_or_default());
    // The starter (a supervisor) may block or ignore signals, which exec
    // keeps: the server must die of the SIGTERM that stops it.
    let signals = crate::sys::reset_signal_dispositions().and_then(|()| {
        nix::sys::signal::SigSet::empty()
            .thread_set_mask()
            .map_err(std::io::Error::from)
    });
    signals.map_err(|source| Error::Sys {
        op: "reset the DNS server's signals".into(),
        source,
    })?;
    // Nothing else runs yet in this process: forking it is safe.
    let fork = crate::sys::fork_single_threaded().map_err(|source| Error::Sys {
        op: "fork the DNS server".into(),
        source,
    })?;
    if let nix::unistd::ForkResult::Parent { child } = fork {
        println!("pid {child}");
        return Ok(0);
    }
    let _ = nix::unistd::setsid();
    let server = Arc::new(Server {
        records: Records::new(dir.join("leases.json")),
        upstream,
        in_flight: AtomicUsize::new(0),
    });
    let tcp = TcpListener::from(tcp);
    {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.serve_tcp(&tcp));
    }
    server.serve_udp(&UdpSocket::from(udp));
    Ok(0)
}

/// The resolvers to relay to: the given list, or the host's resolv.conf
/// (loopback ones included: the server runs in the host's namespace).
fn upstream_resolvers(given: &str) -> Vec<SocketAddr> {
    let mut found: Vec<IpAddr> = given.split(',').filter_map(|a| a.parse().ok()).collect();
    if found.is_empty() {
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        found = conf
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("nameserver")).then(|| words.next()?.parse().ok())?
            })
            .collect();
    }
    found
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The lease file's modification time and length when last read.
type Stamp = Option<(SystemTime, u64)>;

/// The names of the network, reloaded when the lease file changes.
struct Records {
    path: PathBuf,
    cache: Mutex<(Stamp, HashMap<String, Ipv4Addr>)>,
}

impl Records {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new((None, HashMap::new())),
        }
    }

    /// The address of `name` (lower case, no trailing dot), if the
    /// network knows it. `None` for the outer option when the network's
    /// state is gone (the server should end).
    fn lookup(&self, name: &str) -> Option<Option<Ipv4Addr>> {
        let meta = std::fs::metadata(&self.path).ok()?;
        let stamp = meta.modified().ok().map(|m| (m, meta.len()));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0.is_none() || cache.0 != stamp {
            let leases: Leases = std::fs::read(&self.path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            let mut names = HashMap::new();
            for (ip, owned) in &leases.names {
                for name in owned {
                    names.insert(name.to_ascii_lowercase(), *ip);
                }
            }
            *cache = (stamp, names);
        }
        Some(cache.1.get(name).copied())
    }
}

struct Server {
    records: Records,
    upstream: Vec<SocketAddr>,
    in_flight: AtomicUsize,
}

/// What to do with a query.
enum Action {
    Reply(Vec<u8>),
    Relay,
    Ignore,
}

impl Server {
    fn serve_udp(self: &Arc<Self>, socket: &UdpSocket) {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let query = &buf[..len];
            match self.decide(query) {
                None => std::process::exit(0),
                Some(Action::Reply(answer)) => {
                    let _ = socket.send_to(&answer, peer);
                }
                Some(Action::Ignore) => {}
                Some(Action::Relay) => {
                    let Some(guard) = self.admit() else {
                        let _ = socket.send_to(&failure(query, RCODE_SERVFAIL), peer);
                        continue;
                    };
                    let (server, query) = (Arc::clone(self), query.to_vec());
                    let Ok(socket) = socket.try_clone() else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _guard = guard;
                        let answer = server
                            .relay(&query)
                            .unwrap_or_else(|| failure(&query, RCODE_SERVFAIL));
                        let _ = socket.send_to(&answer, peer);
                    });
                }
            }
        }
    }

    fn serve_tcp(self: &Arc<Self>, listener: &TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Some(guard) = self.admit() else { continue };
            let server = Arc::clone(self);
            std::thread::spawn(move || {
                let _guard = guard;
                server.serve_connection(stream);
            });
        }
    }

    /// Length-prefixed queries on one connection, until it closes or idles.
    fn serve_connection(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        loop {
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).is_err() {
                return;
            }
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if stream.read_exact(&mut query).is_err() {
                return;
            }
            let answer = match self.decide(&query) {
                None => std::process::exit(0),
                Some(Action::Reply(answer)) => answer,
                Some(Action::Ignore) => return,
                Some(Action::Relay) => self
                    .relay(&query)
                    .unwrap_or_else(|| failure(&query, RCODE_SERVFAIL)),
            };
            let Ok(len) = u16::try_from(answer.len()) else {
                return;
            };
            if stream.write_all(&len.to_be_bytes()).is_err() || stream.write_all(&answer).is_err() {
                return;
            }
        }
    }

    /// A slot for a relay or connection thread, freed when dropped.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(self)))
    }

    /// `None` when the network's state is gone.
    fn decide(&self, query: &[u8]) -> Option<Action> {
        let Some(question) = Question::parse(query) else {
            return Some(if query.len() >= 12 && query[2] & 0x80 == 0 {
                Action::Reply(failure(query, RCODE_FORMERR))
            } else {
                Action::Ignore
            });
        };
        let known = self.records.lookup(&question.name)?;
        Some(match known {
            Some(ip) => Action::Reply(question.answer(query, ip)),
            None if self.upstream.is_empty() => Action::Reply(failure(query, RCODE_SERVFAIL)),
            None => Action::Relay,
        })
    }

    /// Asks the upstream resolvers in turn; the first answer with the
    /// query's id comes back as it is.
    fn relay(&self, query: &[u8]) -> Option<Vec<u8>> {
        for upstream in &self.upstream {
            let local: SocketAddr = match upstream {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let Ok(socket) = UdpSocket::bind(local) else {
                continue;
            };
            if socket.connect(upstream).is_err()
                || socket.set_read_timeout(Some(UPSTREAM_TIMEOUT)).is_err()
                || socket.send(query).is_err()
            {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            while let Ok(len) = socket.recv(&mut buf) {
                if len >= 12 && buf[..2] == query[..2] {
                    buf.truncate(len);
                    return Some(buf);
                }
            }
        }
        None
    }
}

struct Slot(Arc<Server>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

const RCODE_FORMERR: u8 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NOTIMP: u8 = 4;
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;

/// The one question of a standard query.
#[derive(Debug, PartialEq, Eq)]
struct Question {
    /// Lower case, dot-separated, no trailing dot.
    name: String,
    qtype: u16,
    qclass: u16,
    /// Where the question ends in the query.
    end: usize,
}

impl Question {
    /// `None` for anything but a standard query with exactly one
    /// uncompressed question.
    fn parse(query: &[u8]) -> Option<Self> {
        let header = query.get(..12)?;
        let is_query = header[2] & 0x80 == 0;
        let opcode = (header[2] >> 3) & 0x0f;
        let questions = u16::from_be_bytes([header[4], header[5]]);
        if !is_query || opcode != 0 || questions != 1 {
            return None;
        }
        let mut at = 12;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(*query.get(at)?);
            at += 1;
            if len == 0 {
                break;
            }
            // 0xc0 and up are compression pointers: not in a question.
            if len > 63 {
                return None;
            }
            let label = query.get(at..at + len)?;
            labels.push(std::str::from_utf8(label).ok()?.to_ascii_lowercase());
            at += len;
            if at - 12 > 255 {
                return None;
            }
        }
        let fixed = query.get(at..at + 4)?;
        Some(Self {
            name: labels.join("."),
            qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
            end: at + 4,
        })
    }

    /// The authoritative answer for a name this network holds at `ip`:
    /// its A record, or no record for other types.
    fn answer(&self, query: &[u8], ip: Ipv4Addr) -> Vec<u8> {
        let a = self.qtype == TYPE_A && self.qclass == CLASS_IN;
        let mut out = Vec::with_capacity(self.end + 16);
        out.extend_from_slice(&query[..2]);
        // QR, AA, RD as asked, RA; NOERROR.
        out.push(0x84 | (query[2] & 0x01));
        out.push(0x80);
        out.extend_from_slice(&[0, 1, 0, u8::from(a), 0, 0, 0, 0]);
        out.extend_from_slice(&query[12..self.end]);
        if a {
            // The name as a pointer to the question's (offset 12).
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
        out
    }
}

/// A reply to `query` with `rcode` and no records (the question echoed
/// when it parses).
fn failure(query: &[u8], rcode: u8) -> Vec<u8> {
    let id = query.get(..2).unwrap_or(&[0, 0]);
    let rd = query.get(2).map_or(0, |flags| flags & 0x01);
    let opcode = query.get(2).map_or(0, |flags| flags & 0x78);
    let rcode = if opcode != 0 { RCODE_NOTIMP } else { rcode };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(id);
    out.push(0x80 | opcode | rd);
    out.push(0x80 | rcode);
    match Question::parse(query) {
        Some(question) => {
            out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&query[12..question.end]);
        }
        None => out.extend_from_slice(&[0; 8]),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn a_question_parses_lower_cased_and_answers_with_its_a_record() {
        let q = query(0x1234, "Web.Example", TYPE_A);
        let question = Question::parse(&q).unwrap();
        assert_eq!(question.name, "web.example");
        assert_eq!(question.end, q.len());
        let answer = question.answer(&q, Ipv4Addr::new(10, 89, 0, 2));
        assert_eq!(&answer[..2], &[0x12, 0x34]);
        assert_eq!(answer[2] & 0x80, 0x80, "not a response");
        assert_eq!(answer[3] & 0x0f, 0, "not NOERROR");
        assert_eq!(&answer[6..8], &[0, 1], "one answer");
        assert_eq!(&answer[answer.len() - 4..], &[10, 89, 0, 2]);
        // AAAA for a known name: no record, no error.
        let q6 = query(7, "web", 28);
        let answer = Question::parse(&q6)
            .unwrap()
            .answer(&q6, Ipv4Addr::LOCALHOST);
        assert_eq!(&answer[6..8], &[0, 0]);
        assert_eq!(answer.len(), q6.len());
    }

    #[test]
    fn hostile_queries_never_panic_and_get_errors_or_silence() {
        let good = query(1, "a.b", TYPE_A);
        // Every truncation, and garbage of every small length.
        for len in 0..good.len() {
            let cut = &good[..len];
            assert!(Question::parse(cut).is_none(), "{len}");
            let _ = failure(cut, RCODE_FORMERR);
        }
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = Question::parse(&junk);
            let _ = failure(&junk, RCODE_FORMERR);
        }
        // A compression pointer, a response, two questions, a long label.
        let mut pointer = good.clone();
        pointer[12] = 0xc0;
        assert!(Question::parse(&pointer).is_none());
        let mut response = good.clone();
        response[2] |= 0x80;
        assert!(Question::parse(&response).is_none());
        let mut two = good.clone();
        two[5] = 2;
        assert!(Question::parse(&two).is_none());
        let long = query(1, &"x".repeat(63), TYPE_A);
        assert!(Question::parse(&long).is_some());
        let name = vec!["y".repeat(60); 5].join(".");
        assert!(Question::parse(&query(1, &name, TYPE_A)).is_none(), "> 255");
        // An unknown opcode is NOTIMP.
        let mut notify = good;
        notify[2] = 0x20;
        assert_eq!(failure(&notify, RCODE_FORMERR)[3] & 0x0f, RCODE_NOTIMP);
    }

    #[test]
    fn upstreams_come_from_the_list_or_resolv_conf() {
        let got = upstream_resolvers("10.0.2.3,bad,::1");
        assert_eq!(
            got,
            vec![
                "10.0.2.3:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
