//! Sandbox networking: joined namespaces, the build network (slirp4netns),
//! bridge networks with NAT and published ports.
//!
//! Traffic only ever goes to loopback or to namespaces these tests create:
//! "the outside" is a namespace of the test's own behind a veth pair with
//! addresses from 10.199.77.0/30, serving one line over TCP.
//!
//! The root tests need root, /bin/busybox, iproute2, slirp4netns and
//! nftables (scripts/install-deps.sh). Without them they say so loudly
//! and pass; with CI=true they fail.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use buildr_exec::{
    BridgeConfig, BridgeNetwork, BuildNetwork, Cancel, NetNs, Network, Outcome, PortMapping,
    PortProxy, Protocol, Rootfs, Sandbox, SpawnSpec, Stream,
};
use buildr_testkit::prereq::{is_root, missing, need_tools};

const INIT: &str = env!("CARGO_BIN_EXE_buildr-sandbox");

/// Root tests run one at a time: they compare host-wide state (links,
/// firewall rules) before and after.
static SERIAL: Mutex<()> = Mutex::new(());

fn prerequisites(tools: &[&str]) -> Option<MutexGuard<'static, ()>> {
    let test = "network test";
    let real_root =
        is_root() && !(rootless() && std::env::var_os("BUILDR_NET_TEST_OWN_NETNS").is_none());
    let ready = (real_root || missing(test, "needs real root"))
        && need_tools(test, &[&["/bin/busybox"], tools].concat());
    ready.then(|| SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

fn rootless() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// A busybox root shared by every run of a test; each run gets its own
/// upper and work dirs so runs may overlap.
struct BusyboxRoot {
    tmp: tempfile::TempDir,
    lower: PathBuf,
}

fn busybox_root() -> BusyboxRoot {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    for dir in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(lower.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", lower.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", lower.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(lower.join("etc/group"), "root:x:0:\n").unwrap();
    BusyboxRoot { tmp, lower }
}

impl BusyboxRoot {
    fn spec(&self, script: &str, network: Network) -> SpawnSpec {
        let scratch = tempfile::tempdir_in(self.tmp.path()).unwrap().keep();
        let (upper, work) = (scratch.join("upper"), scratch.join("work"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        SpawnSpec {
            rootfs: Rootfs {
                lowers: vec![self.lower.clone()],
                upper,
                work,
                ..Rootfs::default()
            },
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            network,
            timeout: Some(Duration::from_secs(60)),
            ..SpawnSpec::default()
        }
    }

    /// Runs a script; returns its outcome, stdout and stderr.
    fn run(&self, script: &str, network: Network, cancel: &Cancel) -> (Outcome, String, String) {
        let spec = self.spec(script, network);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = Sandbox::new()
            .with_init_exe(INIT)
            .run(&spec, cancel, |stream, chunk| match stream {
                Stream::Stdout => out.extend_from_slice(chunk),
                Stream::Stderr => err.extend_from_slice(chunk),
            })
            .unwrap_or_else(|e| panic!("sandbox run failed: {}", chain(&e)));
        (
            outcome,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// Runs a script that must succeed; returns its stdout.
    fn run_ok(&self, script: &str, network: Network) -> String {
        let (outcome, out, err) = self.run(script, network, &Cancel::new().unwrap());
        assert!(
            outcome.success(),
            "{script}: {} stdout={out} stderr={err}",
            outcome.describe()
        );
        out
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn command(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What networking may leave behind on the host.
#[derive(Debug, PartialEq, Eq)]
struct HostNet {
    links: BTreeSet<String>,
    ruleset: String,
    ip_forward: String,
    netns_mounts: BTreeSet<String>,
}

fn host_net() -> HostNet {
    // Names from netlink: /sys/class/net may show another namespace's.
    let links = command("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|name| {
            name.trim()
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let netns_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains("nsfs") || l.contains("net:["))
        .map(str::to_string)
        .collect();
    HostNet {
        links,
        ruleset: command("nft", &["list", "ruleset"]),
        ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        netns_mounts,
    }
}

fn link_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Whether any process still sits in (or holds) namespace `net:[id]`.
fn netns_in_use(id: u64) -> bool {
    let want = format!("net:[{id}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.filter_map(|e| e.ok()).any(|entry| {
        let dir = entry.path();
        let in_ns =
            std::fs::read_link(dir.join("ns/net")).is_ok_and(|l| l.to_string_lossy() == want);
        let holds = std::fs::read_dir(dir.join("fd")).is_ok_and(|fds| {
            fds.filter_map(|f| f.ok())
                .any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.to_string_lossy() == want))
        });
        in_ns || holds
    })
}

/// A host "outside" the build: its own namespace behind a veth pair
/// (host side 10.199.77.1, outside 10.199.77.2), serving one line per TCP
/// connection and recording who connected.
struct Outside {
    netns: NetNs,
    veth: String,
    port: u16,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

const OUTSIDE_HOST: &str = "10.199.77.1";
const OUTSIDE: &str = "10.199.77.2";

impl Outside {
    fn new() -> Self {
        let netns = NetNs::new().unwrap();
        let veth = format!("bxo{}", std::process::id() % 100_000);
        let peer = netns.path();
        command(
            "ip",
            &[
                "link",
                "add",
                &veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &peer.to_string_lossy(),
            ],
        );
        command(
            "ip",
            &["addr", "add", &format!("{OUTSIDE_HOST}/30"), "dev", &veth],
        );
        command("ip", &["link", "set", &veth, "up"]);
        netns
            .run(
                "ip",
                &["addr", "add", &format!("{OUTSIDE}/30"), "dev", "eth0"],
            )
            .unwrap();
        netns.run("ip", &["link", "set", "eth0", "up"]).unwrap();
        let listener = netns
            .enter(|| TcpListener::bind((OUTSIDE, 0)))
            .unwrap()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (peers, stop) = (
            Arc::<Mutex<Vec<SocketAddr>>>::default(),
            Arc::<AtomicBool>::default(),
        );
        // A DNS server on udp/53 answering every A query with 10.1.2.3.
        let dns = netns
            .enter(|| UdpSocket::bind((OUTSIDE, 53)))
            .unwrap()
            .unwrap();
        dns.set_nonblocking(true).unwrap();
        let (seen, stopped) = (Arc::clone(&peers), Arc::clone(&stop));
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stopped.load(Ordering::SeqCst) {
                let mut idle = true;
                if let Ok((mut conn, peer)) = listener.accept() {
                    idle = false;
                    seen.lock().unwrap().push(peer);
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.write_all(b"hello-from-outside\n");
                }
                if let Ok((n, peer)) = dns.recv_from(&mut buf) {
                    idle = false;
                    if let Some(answer) = dns_answer(&buf[..n]) {
                        let _ = dns.send_to(&answer, peer);
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Self {
            netns,
            veth,
            port,
            peers,
            stop,
            server: Some(server),
        }
    }
}

/// Answers a one-question DNS query with an A record 10.1.2.3 (and
/// refuses anything else, such as AAAA, with an empty answer).
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += usize::from(query[end]) + 1;
    }
    let question = query.get(12..end + 5)?;
    let is_a = question[question.len() - 4..] == [0, 1, 0, 1];
    let mut answer = query[..2].to_vec();
    answer.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    answer.extend_from_slice(question);
    if is_a {
        answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
    }
    Some(answer)
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = &self.netns;
    }
}

fn ns_link(out: &str) -> &str {
    out.lines().next().unwrap_or_default().trim()
}

#[test]
fn steps_join_one_namespace() {
    let Some(_serial) = prerequisites(&["ip"]) else {
        return;
    };
    let root = busybox_root();
    let netns = NetNs::new().unwrap();
    let join = Network::Join {
        netns: netns.path(),
        nameservers: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))],
    };
    let want = format!("net:[{}]", netns.id());
    let script = "readlink /proc/self/ns/net; cat /etc/resolv.conf; ip -o link show lo";
    let first = root.run_ok(script, join.clone());
    let second = root.run_ok(script, join.clone());
    assert_eq!(ns_link(&first), want, "{first}");
    assert_eq!(ns_link(&second), want, "{second}");
    assert!(first.contains("nameserver 192.0.2.53"), "{first}");
    assert!(
        !first.contains("nameserver 10.255"),
        "host resolver leaked: {first}"
    );
    assert!(
        first.contains("UP"),
        "loopback of the joined namespace: {first}"
    );
    // None still makes a fresh one per step, different from the host's.
    let fresh = root.run_ok("readlink /proc/self/ns/net", Network::None);
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(ns_link(&fresh), want);
    assert_ne!(ns_link(&fresh), host.to_string_lossy());
    // A pinned namespace is joined by path as `ip netns` names it.
    let mut pinned = NetNs::new().unwrap();
    let pin = root.tmp.path().join("pinned-netns");
    pinned.pin(&pin).unwrap();
    let out = root.run_ok(
        "readlink /proc/self/ns/net",
        Network::Join {
            netns: pin.clone(),
            nameservers: Vec::new(),
        },
    );
    assert_eq!(ns_link(&out), format!("net:[{}]", pinned.id()));
    let id = pinned.id();
    drop(pinned);
    assert!(!pin.exists(), "pin left behind");
    assert!(!netns_in_use(id), "pinned namespace still alive");
    // A missing namespace is an error naming it, not a run in another one.
    let spec = root.spec(
        "true",
        Network::Join {
            netns: "/nonexistent/netns".into(),
            nameservers: Vec::new(),
        },
    );
    let err = Sandbox::new()
        .with_init_exe(INIT)
        .run(&spec, &Cancel::new().unwrap(), |_, _| {})
        .unwrap_err();
    assert!(
        chain(&err).contains("/nonexistent/netns"),
        "{}",
        chain(&err)
    );
}

#[test]
fn build_network_reaches_the_outside_but_not_the_host() {
    let Some(_serial) = prerequisites(&["ip", "slirp4netns", "nft"]) else {
        return;
    };
    let root = busybox_root();
    let outside = Outside::new();
    let before = host_net();

    // Services only the host should reach: a loopback TCP port and an
    // abstract unix socket.
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    local.set_nonblocking(true).unwrap();
    let local_port = local.local_addr().unwrap().port();
    let abstract_name = format!("buildr-net-test-{}", std::process::id());
    let abstract_addr =
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let _abstract = std::os::unix::net::UnixListener::bind_addr(&abstract_addr).unwrap();
    std::os::unix::net::UnixStream::connect_addr(&abstract_addr)
        .expect("control: the host reaches its own abstract socket");

    let started = Instant::now();
    let network = BuildNetwork::new().unwrap_or_else(|e| panic!("{}", chain(&e)));
    let setup = started.elapsed();
    eprintln!("build network setup: {setup:?}");
    let (netns_id, helper) = (network.netns().id(), network.helper_pid().unwrap());

    let script = format!(
        "readlink /proc/self/ns/net; cat /etc/resolv.conf; \
         echo outside=$(nc -w 5 {OUTSIDE} {port} </dev/null); \
         if nc -w 2 10.0.2.2 {local_port} </dev/null; then echo host-alias=open; else echo host-alias=closed; fi; \
         if nc -w 2 127.0.0.1 {local_port} </dev/null; then echo loopback=open; else echo loopback=closed; fi; \
         echo abstract=$(grep -c {abstract_name} /proc/net/unix); \
         nslookup -type=a pkg.example {OUTSIDE}",
        port = outside.port
    );
    let out = root.run_ok(&script, network.network());
    assert_eq!(ns_link(&out), format!("net:[{netns_id}]"), "{out}");
    let Network::Join { nameservers, .. } = network.network() else {
        panic!("the build network is joined");
    };
    assert!(!nameservers.is_empty());
    for server in &nameservers {
        assert!(!server.is_loopback(), "{server}");
        assert!(out.contains(&format!("nameserver {server}\n")), "{out}");
    }
    assert_eq!(
        out.matches("nameserver ").count(),
        nameservers.len(),
        "{out}"
    );
    assert!(out.contains("outside=hello-from-outside"), "{out}");
    assert!(out.contains("host-alias=closed"), "{out}");
    assert!(out.contains("loopback=closed"), "{out}");
    assert!(out.contains("abstract=0"), "{out}");
    // DNS over UDP through slirp4netns, as `apt-get update` needs.
    assert!(out.contains("Address: 10.1.2.3"), "{out}");
    assert!(
        matches!(local.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's loopback service was reached"
    );
    // The namespace steps share cannot connect to the host's abstract socket.
    let reached = network
        .netns()
        .enter(|| std::os::unix::net::UnixStream::connect_addr(&abstract_addr).is_ok())
        .unwrap();
    assert!(
        !reached,
        "host abstract unix socket reachable from the build network"
    );
    // A second step shares it and still gets out.
    let again = root.run_ok(
        &format!("nc -w 5 {OUTSIDE} {} </dev/null", outside.port),
        network.network(),
    );
    assert_eq!(again.trim(), "hello-from-outside");
    assert!(outside.peers.lock().unwrap().len() >= 2);

    let stopping = Instant::now();
    drop(network);
    eprintln!("build network teardown: {:?}", stopping.elapsed());
    assert!(
        !Path::new(&format!("/proc/{helper}")).exists(),
        "slirp4netns outlived the build network"
    );
    assert!(!netns_in_use(netns_id), "build namespace still alive");
    assert_eq!(host_net(), before, "host network state changed");
}

#[test]
fn build_network_failure_leaves_nothing() {
    let Some(_serial) = prerequisites(&["ip", "nft"]) else {
        return;
    };
    let before = host_net();
    let options = buildr_exec::BuildNetworkOptions {
        slirp4netns: Some("/bin/false".into()),
        ..Default::default()
    };
    let err = BuildNetwork::with_options(&options).unwrap_err();
    assert!(chain(&err).contains("slirp4netns"), "{}", chain(&err));
    assert_eq!(host_net(), before);
}

#[test]
fn bridge_containers_talk_publish_ports_and_masquerade() {
    let Some(_serial) = prerequisites(&["ip", "nft"]) else {
        return;
    };
    let root = busybox_root();
    let outside = Outside::new();
    let before = host_net();
    let state = tempfile::tempdir().unwrap();
    let config = BridgeConfig {
        name: format!("buildrt{}", std::process::id() % 10_000),
        subnet: "10.89.0.0/24".parse().unwrap(),
        nat: true,
        state_dir: state.path().to_path_buf(),
        nameservers: Vec::new(),
        home: None,
        internal: false,
        dns: false,
    };
    let bridge = BridgeNetwork::new(config.clone()).unwrap();
    let a = bridge
        .attach("container-a")
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    let b = bridge.attach("container-b").unwrap();
    assert_eq!(a.ip(), Ipv4Addr::new(10, 89, 0, 2));
    assert_eq!(b.ip(), Ipv4Addr::new(10, 89, 0, 3));
    let twice = bridge.attach("container-a").map(|e| e.ip());
    assert!(twice.is_err(), "attached container-a twice: {twice:?}");
    assert!(link_exists(&config.name));

    // Container A serves; B and the host (through -p) connect to it.
    let cancel_a = Cancel::new().unwrap();
    let server = {
        let (cancel, spec_net) = (cancel_a.clone(), a.network());
        let root = &root;
        std::thread::scope(|scope| {
            let server = scope.spawn(move || {
                root.run("nc -ll -p 8080 -e /bin/echo pong-from-a", spec_net, &cancel)
            });
            let out = root.run_ok(
                &format!(
                    "for i in $(seq 100); do out=$(nc -w 2 {} 8080 </dev/null) && [ -n \"$out\" ] && {{ echo \"$out\"; break; }}; sleep 0.1; done; \
                     echo outside=$(nc -w 5 {OUTSIDE} {} </dev/null)",
                    a.ip(),
                    outside.port
                ),
                b.network(),
            );
            assert!(out.contains("pong-from-a"), "b could not reach a: {out}");
            assert!(
                out.contains("outside=hello-from-outside"),
                "no way out: {out}"
            );

            let mapping: PortMapping = "127.0.0.1:0:8080".parse().unwrap();
            let proxy = a.publish(&mapping).unwrap();
            let mut answer = String::new();
            TcpStream::connect(proxy.local_addr())
                .unwrap()
                .read_to_string(&mut answer)
                .unwrap();
            assert_eq!(answer.trim(), "pong-from-a");
            drop(proxy);
            cancel_a.cancel();
            server.join().unwrap()
        })
    };
    assert!(
        server.0.cancelled,
        "server should end by cancel: {}",
        server.0.describe()
    );
    // The outside saw the host's address: masqueraded, not 10.89.0.3.
    let peers = outside.peers.lock().unwrap().clone();
    assert!(
        peers.iter().any(|p| p.ip().to_string() == OUTSIDE_HOST),
        "not masqueraded: {peers:?}"
    );

    let (veth_a, ns_a) = (a.host_veth().to_string(), a.netns().id());
    drop(a);
    assert!(!link_exists(&veth_a));
    assert!(!netns_in_use(ns_a));
    assert!(
        link_exists(&config.name),
        "bridge removed while b is attached"
    );
    b.detach().unwrap();
    // The bridge stays for the next container, as docker0 does, until
    // removed; removing it while attached is refused.
    assert!(
        link_exists(&config.name),
        "bridge gone with its last endpoint"
    );
    let c = bridge.attach("container-c").unwrap();
    let refused = bridge.remove();
    assert!(refused.is_err(), "removed a bridge with an endpoint");
    drop(c);
    bridge.remove().unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(host_net(), before, "host network state changed");
    let leases = std::fs::read_to_string(state.path().join("leases.json")).unwrap();
    assert!(!leases.contains("container-"), "{leases}");
}

#[test]
fn bridge_attach_failure_leaves_nothing() {
    let Some(_serial) = prerequisites(&["ip", "nft"]) else {
        return;
    };
    let before = host_net();
    let state = tempfile::tempdir().unwrap();
    // A /30 has two host addresses: the gateway and one container.
    let config = BridgeConfig {
        name: format!("buildrf{}", std::process::id() % 10_000),
        subnet: "10.89.1.0/30".parse().unwrap(),
        nat: false,
        state_dir: state.path().to_path_buf(),
        nameservers: Vec::new(),
        home: None,
        internal: false,
        dns: false,
    };
    let bridge = BridgeNetwork::new(config).unwrap();
    let only = bridge.attach("one").unwrap();
    let err = bridge.attach("two").unwrap_err();
    assert!(chain(&err).contains("no free address"), "{}", chain(&err));
    drop(only);
    bridge.remove().unwrap();
    assert_eq!(host_net(), before);
    for bad in ["", "much-too-long-name", "bad name", "a/b"] {
        let config = BridgeConfig {
            name: bad.into(),
            ..BridgeConfig::new(state.path())
        };
        assert!(BridgeNetwork::new(config).is_err(), "{bad:?}");
    }
}

#[test]
fn port_mappings_parse_like_docker() {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    type Want = Option<(IpAddr, u16, u16, Protocol)>;
    let cases: &[(&str, Want)] = &[
        ("80", Some((any, 0, 80, Protocol::Tcp))),
        ("8080:80", Some((any, 8080, 80, Protocol::Tcp))),
        ("8080:80/tcp", Some((any, 8080, 80, Protocol::Tcp))),
        ("5353:53/udp", Some((any, 5353, 53, Protocol::Udp))),
        ("127.0.0.1:8080:80", Some((lo, 8080, 80, Protocol::Tcp))),
        ("127.0.0.1::80", Some((lo, 0, 80, Protocol::Tcp))),
        (
            "[::1]:8080:80/udp",
            Some(("::1".parse().unwrap(), 8080, 80, Protocol::Udp)),
        ),
        ("8080:80/sctp", None),
        ("8080:0", None),
        ("70000:80", None),
        ("x:80", None),
        ("1.2.3:8080:80", None),
        ("::1:8080:80", None),
        ("[::1:8080:80", None),
        ("", None),
        ("8080-8090:80", None),
    ];
    for (text, want) in cases {
        let got = text.parse::<PortMapping>();
        match want {
            Some((ip, host, ctr, proto)) => {
                let got = got.unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(
                    (got.host_ip, got.host_port, got.container_port, got.protocol),
                    (*ip, *host, *ctr, *proto),
                    "{text}"
                );
            }
            None => {
                let err = got.expect_err(text);
                assert!(
                    err.to_string().contains(text),
                    "{err} should quote {text:?}"
                );
            }
        }
    }
}

#[test]
fn port_proxy_forwards_tcp_with_half_close_and_udp_per_client() {
    // Loopback only: an echo server stands in for the container.
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in echo.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut data = Vec::new();
                let _ = conn.read_to_end(&mut data);
                let _ = conn.write_all(b"echo:");
                let _ = conn.write_all(&data);
            });
        }
    });
    let mapping = PortMapping {
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        host_port: 0,
        container_port: echo_addr.port(),
        protocol: Protocol::Tcp,
    };
    let proxy = PortProxy::start(&mapping, echo_addr.ip()).unwrap();
    assert_ne!(proxy.local_addr().port(), 0);
    assert_eq!(proxy.mapping().host_port, proxy.local_addr().port());
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, big) = (proxy.local_addr(), big.clone());
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                let mut writer = conn.try_clone().unwrap();
                let sender = std::thread::spawn(move || {
                    writer.write_all(&big).unwrap();
                    writer.shutdown(Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                conn.read_to_end(&mut got).unwrap();
                sender.join().unwrap();
                got
            })
        })
        .collect();
    for client in clients {
        let got = client.join().unwrap();
        assert_eq!(&got[..5], b"echo:");
        assert!(got[5..] == big[..], "payload corrupted through the proxy");
    }
    let addr = proxy.local_addr();
    drop(proxy);
    let listening = match TcpStream::connect(addr) {
        Err(_) => false,
        // A connect to a free port of the ephemeral range can pick that
        // very port as its source and connect to itself (TCP simultaneous
        // open): nobody listens then.
        Ok(conn) if conn.local_addr().ok() == conn.peer_addr().ok() => false,
        // Another test's listener may have been given the freed port: only
        // the proxy would answer through the echo server.
        Ok(mut conn) => {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = conn.write_all(b"x");
            let _ = conn.shutdown(Shutdown::Write);
            let mut got = Vec::new();
            let _ = conn.read_to_end(&mut got);
            got.starts_with(b"echo:")
        }
    };
    assert!(!listening, "still listening after drop");

    // UDP: replies go back to the client that asked.
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = upstream.recv_from(&mut buf) {
            let mut reply = b"re:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = upstream.send_to(&reply, from);
        }
    });
    let mapping = PortMapping {
        protocol: Protocol::Udp,
        container_port: upstream_addr.port(),
        ..mapping
    };
    let proxy = PortProxy::start(&mapping, upstream_addr.ip()).unwrap();
    for name in ["one", "two", "three"] {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(name.as_bytes(), proxy.local_addr()).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, proxy.local_addr());
        assert_eq!(&buf[..n], format!("re:{name}").as_bytes());
    }
    drop(proxy);
}

/// The whole file again inside a user namespace of its own (mapped root,
/// as a rootless embedder runs) with its own network and mount
/// namespaces standing in for the host's: slirp4netns, joining, bridges,
/// NAT and the proxy must all work without privileges over the real host.
/// As nobody when /dev/net/tun is open to all (Debian's udev rule makes it
/// 0666); where it is root-only, as uid 0 mapped into the namespace.
#[test]
fn rootless_run_of_this_suite() {
    if std::env::var_os("BUILDR_NET_TEST_OWN_NETNS").is_some() {
        return; // already the rerun
    }
    let Some(_serial) = prerequisites(&["ip", "nft", "slirp4netns", "unshare", "setpriv"]) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let tun_for_all =
        std::fs::metadata("/dev/net/tun").is_ok_and(|m| m.permissions().mode() & 0o006 == 0o006);
    let me = std::env::current_exe().unwrap();
    let mut cmd = if tun_for_all {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
        ]);
        cmd
    } else {
        eprintln!(
            "!!! /dev/net/tun is not open to all users here: the rootless rerun keeps uid 0, mapped into its user namespace !!!"
        );
        std::process::Command::new("unshare")
    };
    let output = cmd
        .args(["--user", "--map-root-user", "--net", "--mount", "sh", "-c"])
        .arg("ip link set lo up && exec \"$0\" \"$@\"")
        .arg(&me)
        .args([
            "--test-threads",
            "1",
            "--nocapture",
            "--skip",
            "rootless_run_of_this_suite",
        ])
        .env("BUILDR_NET_TEST_OWN_NETNS", "1")
        .current_dir("/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rootless run failed:\n{out}\n{err}"
    );
    assert!(
        !err.contains("SKIPPING") && !out.contains("SKIPPING"),
        "{err}"
    );
    for test in [
        "steps_join_one_namespace",
        "build_network_reaches_the_outside_but_not_the_host",
        "bridge_containers_talk_publish_ports_and_masquerade",
        "a_killed_build_leaves_no_helper",
    ] {
        assert!(out.contains(&format!("{test} ... ok")), "{test}: {out}");
    }
}

/// A build whose process is SIGKILLed leaves no slirp4netns and no
/// namespace behind: the helper exits when its exit pipe closes.
#[test]
fn a_killed_build_leaves_no_helper() {
    if std::env::var_os("BUILDR_NET_TEST_HOLDER").is_some() {
        // The victim: start a build network, say where it is, wait to die.
        let network = BuildNetwork::new().unwrap();
        println!(
            "holder slirp={} netns={}",
            network.helper_pid().unwrap(),
            network.netns().id()
        );
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        panic!("the holder was not killed");
    }
    let Some(_serial) = prerequisites(&["ip", "slirp4netns"]) else {
        return;
    };
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_killed_build_leaves_no_helper", "--nocapture"])
        .env("BUILDR_NET_TEST_HOLDER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(holder.stdout.take().unwrap());
    let (slirp, netns) = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
            panic!("the holder exited before starting its build network");
        }
        if let Some(rest) = line.trim().strip_prefix("holder slirp=") {
            let (slirp, netns) = rest.split_once(" netns=").unwrap();
            break (slirp.parse::<u32>().unwrap(), netns.parse::<u64>().unwrap());
        }
    };
    assert!(netns_in_use(netns));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(slirp) || netns_in_use(netns)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(slirp),
        "slirp4netns {slirp} outlived its killed holder"
    );
    assert!(
        !netns_in_use(netns),
        "the build namespace outlived its killed holder"
    );
}

#[test]
fn a_lazy_build_network_starts_its_helper_only_when_a_step_joins() {
    let Some(_serial) = prerequisites(&["ip", "slirp4netns"]) else {
        return;
    };
    let root = busybox_root();
    let network = BuildNetwork::lazy(&buildr_exec::BuildNetworkOptions::default())
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    // A fully cached build never joins: no helper process is started.
    assert_eq!(network.helper_pid(), None, "started before any step joined");
    let netns_id = network.netns().id();
    let out = root.run_ok(
        "readlink /proc/self/ns/net; ip -o link show tap0",
        network.network(),
    );
    assert_eq!(ns_link(&out), format!("net:[{netns_id}]"), "{out}");
    assert!(
        out.contains("tap0"),
        "slirp4netns did not configure tap0: {out}"
    );
    let helper = network
        .helper_pid()
        .expect("the first joining step starts slirp4netns");
    // Later steps share the same helper.
    root.run_ok("true", network.network());
    assert_eq!(network.helper_pid(), Some(helper));
    drop(network);
    assert!(
        !Path::new(&format!("/proc/{helper}")).exists(),
        "slirp4netns {helper} outlived its network"
    );
    assert!(!netns_in_use(netns_id), "namespace still alive");
}

/// Bridge plumbing made over netlink matches what `ip` would make (checked
/// with `ip` and `nft`), the fast path for a shared bridge still wires
/// containers fully, and a first lease heals a bridge a crash left behind
/// (down and bare, or up without its NAT table).
#[test]
fn bridge_setup_over_netlink_heals_a_half_made_bridge() {
    let Some(_serial) = prerequisites(&["ip", "nft"]) else {
        return;
    };
    let before = host_net();
    let state = tempfile::tempdir().unwrap();
    let name = format!("buildrh{}", std::process::id() % 10_000);
    let table = format!("buildr_{name}");
    let config = BridgeConfig {
        name: name.clone(),
        subnet: "10.89.2.0/24".parse().unwrap(),
        nat: true,
        state_dir: state.path().to_path_buf(),
        nameservers: Vec::new(),
        home: None,
        internal: false,
        dns: false,
    };
    let bridge = BridgeNetwork::new(config).unwrap();
    let has_table = || {
        std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap()
            .status
            .success()
    };
    let check_wired = |endpoint: &buildr_exec::Endpoint, addr: &str| {
        let veth = endpoint.host_veth();
        let host = command("ip", &["-o", "link", "show", "dev", veth]);
        assert!(host.contains(&format!("master {name}")), "{host}");
        assert!(host.contains(",UP") || host.contains("<UP"), "{host}");
        let ns = endpoint.netns();
        let out = |args: &[&str]| {
            String::from_utf8_lossy(&ns.run("ip", args).unwrap().stdout).into_owned()
        };
        let eth0 = out(&["-o", "-4", "addr", "show", "dev", "eth0"]);
        assert!(eth0.contains(&format!("inet {addr}/24")), "{eth0}");
        let link = out(&["-o", "link", "show", "dev", "eth0"]);
        assert!(link.contains(",UP"), "eth0 not up: {link}");
        let route = out(&["route", "show", "default"]);
        assert!(route.contains("default via 10.89.2.1 dev eth0"), "{route}");
    };
    let check_bridge = || {
        let addr = command("ip", &["-o", "-4", "addr", "show", "dev", &name]);
        assert!(addr.contains("inet 10.89.2.1/24"), "{addr}");
        let link = command("ip", &["-o", "link", "show", "dev", &name]);
        assert!(link.contains(",UP"), "bridge not up: {link}");
        assert!(has_table(), "no NAT table {table}");
    };

    // A crash after creating the bridge, before setting it up.
    command("ip", &["link", "add", &name, "type", "bridge"]);
    let one = bridge
        .attach("one")
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    check_bridge();
    check_wired(&one, "10.89.2.2");
    // A second container takes the shared bridge as it is.
    let two = bridge.attach("two").unwrap();
    check_wired(&two, "10.89.2.3");
    let ping = one
        .netns()
        .run("/bin/busybox", &["ping", "-c", "1", "-W", "5", "10.89.2.3"]);
    assert!(ping.is_ok(), "one cannot reach two: {ping:?}");
    drop(one);
    check_bridge();
    two.detach().unwrap();
    check_bridge();
    bridge.remove().unwrap();
    assert!(!link_exists(&name));
    assert!(!has_table(), "NAT table {table} left behind");

    // A crash that left the bridge up but no lease and no NAT table.
    command("ip", &["link", "add", &name, "type", "bridge"]);
    command("ip", &["link", "set", &name, "up"]);
    let three = bridge.attach("three").unwrap();
    check_bridge();
    check_wired(&three, "10.89.2.2");
    three.detach().unwrap();
    bridge.remove().unwrap();
    assert_eq!(host_net(), before, "host network state changed");
}
