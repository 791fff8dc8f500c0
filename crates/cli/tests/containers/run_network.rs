//! `buildr run`'s default network is docker's: the bridge. A container run
//! without `--network` gets an eth0 with an address in buildr's range and a
//! default route through the bridge; two containers reach each other by
//! address (ping, and busybox httpd fetched with wget; its `-T` crashes
//! Debian's busybox-static, so `timeout` bounds it); `-p
//! 127.0.0.1:PORT:80` publishes busybox httpd to curl; after `rm` (and
//! `--rm`) no veth, bridge, NAT table, lease or /run/netns entry is left;
//! a bridge that cannot be set up fails the run with an error that names
//! the failing step and `--network none`.
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
    let forward_before = text(&lab.tool("cat", &["/proc/sys/net/ipv4/ip_forward"]).stdout);

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

    // After rm: nothing of the network is left.
    let links = text(&lab.tool("ip", &["-o", "link"]).stdout);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default())
        .collect();
    assert_eq!(names, ["lo"], "links left: {links}");
    let rules = lab.tool("nft", &["list", "ruleset"]);
    check(&rules, "nft list ruleset");
    assert_eq!(text(&rules.stdout).trim(), "", "nftables rules left");
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
    let forward = lab.tool("cat", &["/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(
        text(&forward.stdout),
        forward_before,
        "ip_forward of the lab not restored"
    );
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
