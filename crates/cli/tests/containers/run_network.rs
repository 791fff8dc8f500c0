//! `buildr run`'s default network is docker's: the bridge. A container run
//! without `--network` gets an eth0 with an address in buildr's range and a
//! default route through the bridge; two containers reach each other by
//! address (ping, and busybox httpd fetched with wget; its `-T` crashes
//! Debian's busybox-static, so `timeout` bounds it); `-p
//! 127.0.0.1:PORT:80` publishes busybox httpd to curl; after `rm` (and
//! `--rm`) no veth, lease or /run/netns entry is left while the bridge and
//! its table stay (as docker0); a bridge that cannot be set up fails the
//! run with an error that names the failing step and `--network none`.
//! User-defined networks (`network create`): containers resolve each other
//! by name and alias through the network's DNS, from busybox's nslookup
//! and from glibc's resolver, names they do not know go to the host's
//! resolvers, other networks cannot reach them, `--ip`, `--add-host` and
//! `--dns` land where docker puts them, and `network rm` leaves nothing.
//!
//! Everything runs in a network and mount namespace of the test's own (a
//! "lab": `unshare`, a tmpfs runtime dir for the leases), so the bridge,
//! its NAT table and `ip_forward` are the test's alone: no traffic leaves
//! it, concurrent tests and the host's own network are untouched, and
//! "nothing left" can be checked exactly. Needs root, busybox, unshare,
//! nsenter, ip, nft and curl: under CI=true their absence fails the
//! test, otherwise it says loudly that it skips.

use buildr_testkit::prereq::{need_root, need_tools};
use buildr_testkit::workspace;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "buildr-fixtures/busybox:latest";
const BIN: &str = env!("CARGO_BIN_EXE_buildr");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A private network + mount namespace, held by a `sleep`, with a tmpfs
/// runtime dir (`XDG_RUNTIME_DIR`: sandbox state and bridge leases) and a
/// store with the busybox fixture. Commands run inside through nsenter.
struct Lab {
    dir: tempfile::TempDir,
    holder: Child,
    /// Created containers, removed on drop whatever happened.
    containers: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--mount", "--net", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o mode=0700 buildr-lab \"$0\" && ip link set lo up && echo ready && exec sleep 3600",
            )
            .arg(&runtime)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the lab namespace did not come up");
        let lab = Lab {
            dir,
            holder,
            containers: Vec::new(),
        };
        let tar = lab.dir.path().join("busybox-rootfs.tar");
        let out = Command::new("bash")
            .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
            .arg(&tar)
            .output()
            .unwrap();
        check(&out, "busybox-rootfs.sh");
        lab.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        lab
    }

    /// `program args...` inside the lab's namespaces.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["--mount", "--net", "--"])
            .arg("env")
            .arg(format!(
                "XDG_RUNTIME_DIR={}",
                self.dir.path().join("run").display()
            ))
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    fn tool(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }

    fn buildr(&self, args: &[&str]) -> Output {
        self.command(BIN)
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.buildr(args);
        check(&out, &format!("buildr {args:?}"));
        text(&out.stdout)
    }

    /// `run -d`, remembered for cleanup.
    fn detached(&mut self, args: &[&str]) -> String {
        let mut full = vec!["run", "-d"];
        full.extend_from_slice(args);
        let id = self.ok(&full).trim().to_owned();
        self.containers.push(id.clone());
        id
    }

    /// The bridge address `inspect` reports, once the supervisor set it.
    fn ip_of(&self, id: &str) -> Ipv4Addr {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.ok(&["container", "inspect", id]);
            let docs: serde_json::Value = serde_json::from_str(&out).unwrap();
            let ip = docs[0]["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap_or_default();
            if let Ok(ip) = ip.parse() {
                return ip;
            }
            assert!(Instant::now() < deadline, "{id} got no address: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Retries `program args` in the lab until it succeeds (generous bound).
    fn until_ok(&self, program: &str, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.tool(program, args);
            if out.status.success() {
                return text(&out.stdout);
            }
            assert!(
                Instant::now() < deadline,
                "{program} {args:?} kept failing: {}",
                text(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The bridge's lease file, read inside the lab (its tmpfs is mounted
    /// only there); empty when absent.
    fn leases(&self) -> String {
        let file = self
            .dir
            .path()
            .join("run/buildr/network/buildr0/leases.json");
        let out = self.tool(
            "sh",
            &[
                "-c",
                "cat \"$0\" 2>/dev/null || true",
                &file.to_string_lossy(),
            ],
        );
        text(&out.stdout)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self.buildr(&["rm", "-f", id]);
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn veth_of(ip: Ipv4Addr) -> String {
    format!("bv{:08x}", u32::from(ip))
}

fn in_buildr_range(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    (a, b) == (10, 88) && ip != Ipv4Addr::new(10, 88, 0, 1)
}

fn host_netns_entries() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A busybox httpd on port 80 serving `body`.
fn httpd(body: &str) -> String {
    format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www")
}

#[test]
fn containers_default_to_the_bridge_and_leave_nothing_behind() {
    let test = "containers_default_to_the_bridge_and_leave_nothing_behind";
    if !prerequisites(test) {
        return;
    }
    let mut lab = Lab::new();

    // No --network: eth0 with an address of buildr's range, a default route.
    let out = lab.buildr(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route",
    ]);
    check(&out, "run --rm without --network");
    let stdout = text(&out.stdout);
    let addr: Ipv4Addr = stdout
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 address on eth0: {stdout}"));
    assert!(in_buildr_range(addr), "{addr} is not in 10.88.0.0/16");
    assert!(
        stdout.contains("default via 10.88.0.1"),
        "no default route through the bridge: {stdout}"
    );
    // --rm: its veth is gone as soon as run returns.
    let links = text(&lab.tool("ip", &["-o", "link"]).stdout);
    assert!(!links.contains(&veth_of(addr)), "veth left: {links}");

    // Two containers reach each other by address.
    let server = lab.detached(&["--name", "server", IMAGE, "sh", "-c", &httpd("from-server")]);
    let server_ip = lab.ip_of(&server);
    assert!(in_buildr_range(server_ip), "{server_ip}");
    let script = format!(
        "ping -c 1 -W 5 {server_ip} >/dev/null && echo ping-ok; \
         for i in $(seq 1 100); do timeout 5 wget -q -O - http://{server_ip}/ && exit 0; sleep 0.2; done; exit 1"
    );
    let out = lab.buildr(&["run", "--rm", IMAGE, "sh", "-c", &script]);
    check(&out, "client container");
    assert_eq!(text(&out.stdout), "ping-ok\nfrom-server\n");

    // -p 127.0.0.1:PORT:80 answers curl on the (lab's) loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let published = lab.detached(&[
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMAGE,
        "sh",
        "-c",
        &httpd("published"),
    ]);
    let published_ip = lab.ip_of(&published);
    let body = lab.until_ok(
        "curl",
        &[
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/"),
        ],
    );
    assert_eq!(body, "published\n");

    // While containers run: bridge, veths, NAT table and leases exist
    // (so the checks below can tell).
    let links = text(&lab.tool("ip", &["-o", "link"]).stdout);
    for veth in [veth_of(server_ip), veth_of(published_ip)] {
        assert!(links.contains(&veth), "no {veth}: {links}");
    }
    assert!(links.contains("buildr0"), "{links}");
    let rules = text(&lab.tool("nft", &["list", "ruleset"]).stdout);
    assert!(rules.contains("masquerade"), "no NAT rule: {rules}");
    assert!(lab.leases().contains(&server_ip.to_string()));

    let ids = [server.clone(), published.clone()];
    for id in &ids {
        lab.ok(&["rm", "-f", id]);
    }
    lab.containers.clear();

    // After rm: no veth, lease, port or netns entry is left; the bridge
    // and its table stay up for the next container, as docker0 does.
    let links = text(&lab.tool("ip", &["-o", "link"]).stdout);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default())
        .collect();
    assert_eq!(names, ["lo", "buildr0"], "links left: {links}");
    let rules = lab.tool("nft", &["list", "tables"]);
    check(&rules, "nft list tables");
    assert_eq!(text(&rules.stdout).trim(), "table ip buildr_buildr0");
    let leases = lab.leases();
    for ip in [server_ip, published_ip] {
        assert!(!leases.contains(&ip.to_string()), "lease left: {leases}");
    }
    let port_free = lab.tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "2",
            &format!("http://127.0.0.1:{port}/"),
        ],
    );
    assert!(!port_free.status.success(), "port {port} still answers");
    let netns = host_netns_entries();
    for id in &ids {
        assert!(
            !netns.iter().any(|n| n.contains(&id[..12])),
            "/run/netns entry left for {id}: {netns:?}"
        );
    }
}

#[test]
fn a_bridge_that_cannot_be_set_up_fails_clearly() {
    let test = "a_bridge_that_cannot_be_set_up_fails_clearly";
    if !prerequisites(test) {
        return;
    }
    let lab = Lab::new();
    // Something that is not a bridge already holds the bridge's name.
    let out = lab.tool(
        "ip",
        &[
            "link",
            "add",
            "buildr0",
            "type",
            "veth",
            "peer",
            "name",
            "notabridge",
        ],
    );
    check(&out, "ip link add");
    let out = lab.buildr(&["run", "--rm", IMAGE, "echo", "should-not-run"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "ran without a network: {stderr}");
    assert!(!text(&out.stdout).contains("should-not-run"));
    assert!(
        stderr.contains("cannot connect it to the bridge network")
            && stderr.contains("master buildr0")
            && stderr.contains("--network none"),
        "unclear error: {stderr}"
    );
    // --rm still removed it, and the failed attach released its lease.
    assert_eq!(lab.ok(&["ps", "-aq"]).trim(), "");
    let leases: serde_json::Value = serde_json::from_str(&lab.leases()).unwrap();
    assert_eq!(leases["leases"], serde_json::json!({}), "{leases}");
    // --network none does without the bridge.
    let out = lab.buildr(&["run", "--rm", "--network", "none", IMAGE, "echo", "fine"]);
    check(&out, "run --network none");
    assert_eq!(text(&out.stdout), "fine\n");
}

fn prerequisites(test: &str) -> bool {
    need_root(test)
        && need_tools(
            test,
            &["/bin/busybox", "unshare", "nsenter", "ip", "nft", "curl"],
        )
}

/// An upstream resolver for the lab (python, on 127.0.0.1:53): every A
/// question gets 192.0.2.7, so a relayed answer is recognisable.
const UPSTREAM_DNS: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    end += 5
    head = q[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
    answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 7])
    s.sendto(head + q[12:end] + answer, peer)
"#;

/// An image of Debian's glibc `getent` (the host's binary and libraries),
/// so names resolve the way a Debian-based image resolves them.
fn import_getent_image(lab: &Lab) -> &'static str {
    let root = lab.dir.path().join("getent-root");
    let copy = |from: &str| {
        let to = root.join(from.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    };
    copy("/usr/bin/getent");
    let ldd = Command::new("ldd").arg("/usr/bin/getent").output().unwrap();
    check(&ldd, "ldd getent");
    for lib in text(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        copy(lib);
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n").unwrap();
    let tar = lab.dir.path().join("getent.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    check(&out, "tar getent image");
    lab.ok(&[
        "import",
        tar.to_str().unwrap(),
        "buildr-fixtures/getent:latest",
    ]);
    "buildr-fixtures/getent:latest"
}

#[test]
fn user_networks_resolve_names_and_isolate() {
    let test = "user_networks_resolve_names_and_isolate";
    if !prerequisites(test) || !need_tools(test, &["python3", "ldd", "tar", "mount"]) {
        return;
    }
    let mut lab = Lab::new();
    // The lab's own resolv.conf, naming the python resolver.
    let conf = lab.dir.path().join("resolv.conf");
    std::fs::write(&conf, "nameserver 127.0.0.1\n").unwrap();
    check(
        &lab.tool(
            "mount",
            &["--bind", conf.to_str().unwrap(), "/etc/resolv.conf"],
        ),
        "bind resolv.conf",
    );
    let mut upstream = lab
        .command("python3")
        .args(["-c", UPSTREAM_DNS])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(upstream.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let getent = import_getent_image(&lab);

    lab.ok(&["network", "create", "appnet"]);
    lab.ok(&["network", "create", "--subnet", "172.30.9.0/24", "other"]);
    let listed = lab.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(
        listed,
        "bridge bridge\nhost host\nnone null\nappnet bridge\nother bridge\n"
    );
    let web = lab.detached(&[
        "--name",
        "web",
        "--network",
        "appnet",
        "--network-alias",
        "www",
        IMAGE,
        "sleep",
        "600",
    ]);
    let far = lab.detached(&["--name", "far", "--network", "other", IMAGE, "sleep", "600"]);
    let (web_ip, far_ip) = (lab.ip_of(&web), lab.ip_of(&far));
    assert_eq!(far_ip.octets()[..3], [172, 30, 9], "{far_ip}");
    let inspect: serde_json::Value =
        serde_json::from_str(&lab.ok(&["network", "inspect", "appnet"])).unwrap();
    let subnet = inspect[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    assert_eq!(
        inspect[0]["Containers"][&web]["IPv4Address"],
        format!("{web_ip}/24"),
        "{inspect}"
    );

    // Names on the network, by busybox's resolver and by glibc's.
    let client = |args: &[&str]| {
        let mut full = vec!["run", "--rm", "--network", "appnet"];
        full.extend_from_slice(args);
        lab.buildr(&full)
    };
    for name in ["web", "www", "WEB", &web[..12]] {
        let out = client(&[IMAGE, "nslookup", name]);
        check(&out, &format!("nslookup {name}"));
        assert!(
            text(&out.stdout).contains(&web_ip.to_string()),
            "{name}: {}",
            text(&out.stdout)
        );
    }
    let out = client(&[getent, "/usr/bin/getent", "hosts", "www"]);
    check(&out, "getent hosts www");
    assert_eq!(
        text(&out.stdout).split_whitespace().next(),
        Some(web_ip.to_string().as_str())
    );
    // Other names go to the host's resolver; another network's are unknown.
    let out = client(&[getent, "/usr/bin/getent", "hosts", "upstream.example"]);
    check(&out, "getent hosts upstream.example");
    assert!(
        text(&out.stdout).starts_with("192.0.2.7"),
        "{}",
        text(&out.stdout)
    );
    let gateway = inspect[0]["IPAM"]["Config"][0]["Gateway"].as_str().unwrap();
    let out = lab.buildr(&[
        "run",
        "--rm",
        "--network",
        "other",
        IMAGE,
        "nslookup",
        "web",
        gateway,
    ]);
    assert!(
        !text(&out.stdout).contains(&web_ip.to_string()),
        "another network asked appnet's DNS: {}",
        text(&out.stdout)
    );
    let out = client(&[IMAGE, "nslookup", "far"]);
    assert!(
        !text(&out.stdout).contains(&far_ip.to_string()),
        "far resolved: {}",
        text(&out.stdout)
    );

    // Reachable on the network, not across networks.
    let ping = |ip: Ipv4Addr| client(&[IMAGE, "ping", "-c", "1", "-W", "2", &ip.to_string()]);
    check(&ping(web_ip), "ping web from appnet");
    assert!(
        !ping(far_ip).status.success(),
        "appnet reached {far_ip} on other"
    );

    // --ip, --add-host, --dns.
    let network_part = subnet
        .split('/')
        .next()
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0;
    let fixed: Ipv4Addr = format!("{network_part}.77").parse().unwrap();
    let out = client(&[
        "--ip",
        &fixed.to_string(),
        IMAGE,
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    check(&out, "run --ip");
    assert!(
        text(&out.stdout).contains(&format!("inet {fixed}/24")),
        "{}",
        text(&out.stdout)
    );
    let out = client(&[
        "--add-host",
        "db.local:10.1.2.3",
        "--dns",
        "10.9.9.9",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    check(&out, "run --add-host --dns");
    let files = text(&out.stdout);
    assert!(files.contains("10.1.2.3\tdb.local\n"), "{files}");
    assert!(
        files.contains("nameserver 10.9.9.9\n") && !files.contains("nameserver 172."),
        "{files}"
    );

    // Errors as docker's.
    let out = lab.buildr(&["run", "--rm", "--network", "nope", IMAGE, "true"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("network nope not found"),
        "{}",
        text(&out.stderr)
    );
    let out = lab.buildr(&["run", "--rm", "--network-alias", "x", IMAGE, "true"]);
    assert!(
        text(&out.stderr).contains("user-defined networks"),
        "{}",
        text(&out.stderr)
    );
    let out = lab.buildr(&["network", "rm", "appnet"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("active endpoints"),
        "{}",
        text(&out.stderr)
    );
    let out = lab.buildr(&["network", "rm", "bridge"]);
    assert!(
        text(&out.stderr).contains("pre-defined"),
        "{}",
        text(&out.stderr)
    );

    // Removing the containers stops the DNS servers; rm leaves nothing.
    let dns_pids: Vec<String> = ["appnet", "other"]
        .iter()
        .map(|name| {
            let doc: serde_json::Value =
                serde_json::from_str(&lab.ok(&["network", "inspect", name])).unwrap();
            let bridge = doc[0]["Options"]["com.docker.network.bridge.name"]
                .as_str()
                .unwrap()
                .to_owned();
            let leases = lab.tool(
                "cat",
                &[&format!(
                    "{}/run/buildr/network/{bridge}/leases.json",
                    lab.dir.path().display()
                )],
            );
            let leases: serde_json::Value = serde_json::from_slice(&leases.stdout).unwrap();
            leases["dns"]["pid"].to_string()
        })
        .collect();
    for id in [&web, &far] {
        lab.ok(&["rm", "-f", id]);
    }
    lab.containers.clear();
    for pid in &dns_pids {
        // Gone, or a zombie its reaper has not collected yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, after)| after.trim_start().chars().next());
            if matches!(state, None | Some('Z')) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "DNS server {pid} still runs: {stat}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(
        lab.ok(&["network", "rm", "appnet", "other"]),
        "appnet\nother\n"
    );
    let links = text(&lab.tool("ip", &["-o", "link"]).stdout);
    assert_eq!(links.lines().count(), 1, "links left: {links}");
    let tables = lab.tool("nft", &["list", "tables"]);
    assert_eq!(text(&tables.stdout).trim(), "", "tables left");
    let _ = upstream.kill();
    let _ = upstream.wait();
}

/// `network connect`/`disconnect`: a running container joins a second
/// network as eth1 (resolvable there by its alias, reaching containers
/// on it), a stopped one joins at its next start; disconnect takes the
/// interface and the name away; the first network cannot be taken.
#[test]
fn network_connect_and_disconnect_running_and_stopped_containers() {
    let test = "network_connect_and_disconnect_running_and_stopped_containers";
    if !prerequisites(test) {
        return;
    }
    let mut lab = Lab::new();
    lab.ok(&["network", "create", "front"]);
    lab.ok(&["network", "create", "back"]);
    let app = lab.detached(&["--name", "app", "--network", "front", IMAGE, "sleep", "600"]);
    let db = lab.detached(&["--name", "db", "--network", "back", IMAGE, "sleep", "600"]);
    let db_ip = lab.ip_of(&db);
    let reach_db = |lab: &Lab| {
        lab.buildr(&[
            "exec",
            "app",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            &db_ip.to_string(),
        ])
        .status
        .success()
    };
    assert!(!reach_db(&lab), "front reached back before connect");

    lab.ok(&["network", "connect", "--alias", "api", "back", "app"]);
    let again = lab.buildr(&["network", "connect", "back", "app"]);
    assert!(
        text(&again.stderr).contains("already exists in network back"),
        "{}",
        text(&again.stderr)
    );
    let addrs = lab.ok(&["exec", "app", "ip", "-4", "-o", "addr"]);
    assert!(addrs.contains("eth1"), "{addrs}");
    assert!(reach_db(&lab), "app cannot reach db after connect");
    let doc: serde_json::Value = serde_json::from_str(&lab.ok(&["inspect", "app"])).unwrap();
    let back_ip = doc[0]["NetworkSettings"]["Networks"]["back"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(addrs.contains(&format!("inet {back_ip}/")), "{addrs}");
    let out = lab.ok(&["run", "--rm", "--network", "back", IMAGE, "nslookup", "api"]);
    assert!(out.contains(&back_ip), "{out}");
    let members = lab.ok(&["network", "inspect", "-f", "{{json .Containers}}", "back"]);
    assert!(members.contains(&app) && members.contains(&db), "{members}");

    // A stopped container joins at its next start.
    lab.ok(&[
        "create",
        "--name",
        "worker",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "600",
    ]);
    lab.containers.push("worker".into());
    lab.ok(&["network", "connect", "back", "worker"]);
    lab.ok(&["start", "worker"]);
    let worker_addrs = lab.ok(&["exec", "worker", "ip", "-4", "-o", "addr"]);
    assert!(worker_addrs.contains("eth1"), "{worker_addrs}");

    // Disconnect: the interface, the name and the route go.
    lab.ok(&["network", "disconnect", "back", "app"]);
    let addrs = lab.ok(&["exec", "app", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("eth1"), "{addrs}");
    assert!(!reach_db(&lab), "app still reaches db after disconnect");
    let out = lab.buildr(&["run", "--rm", "--network", "back", IMAGE, "nslookup", "api"]);
    assert!(
        !text(&out.stdout).contains(&back_ip),
        "{}",
        text(&out.stdout)
    );
    let first = lab.buildr(&["network", "disconnect", "front", "app"]);
    assert!(!first.status.success(), "took the first network");

    for id in lab.containers.clone() {
        lab.ok(&["rm", "-f", &id]);
    }
    lab.containers.clear();
    assert_eq!(lab.ok(&["network", "rm", "front", "back"]), "front\nback\n");
    let links = text(&lab.tool("ip", &["-o", "link"]).stdout);
    assert_eq!(links.lines().count(), 1, "links left: {links}");
}
