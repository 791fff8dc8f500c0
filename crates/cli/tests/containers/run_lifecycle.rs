//! The real `buildr` binary running containers of the busybox fixture:
//! `run` honours the image config and propagates exit codes (128+signal,
//! 127, 137 on OOM); `--rm` leaves no directory, cgroup, mount or state
//! dir behind; `-d` + `logs -f` + `stop` (a process that traps SIGTERM
//! exits cleanly, one that ignores it is killed after `-t`); a killed
//! supervisor is reported as exited, not running; `--pids-limit` stops a
//! fork loop; named volumes keep data across containers and anonymous ones
//! go with `rm -v`; `create` + `start -a` + `wait` + `logs`; `kill -s`.
//! Root and busybox are needed: under CI=true their absence fails the test,
//! otherwise it says loudly that it skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::container_common::{Env, IMAGE, check, missing, prerequisites};
use buildr_testkit::prereq::need_tool;

fn memory_cgroup(test: &str) -> bool {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"));
    v2 || Path::new("/sys/fs/cgroup/memory").is_dir()
        || missing(test, "needs the memory cgroup controller")
}

impl Env {
    /// Names of the entries of `<root>/containers` (the lock file aside).
    fn container_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.root().join("containers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_honours_the_image_config_and_propagates_exit_codes() {
    let test = "run_honours_the_image_config_and_propagates_exit_codes";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "-e",
        "FOO=bar",
        "-w",
        "/home/app",
        "-u",
        "app",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; echo $FOO; pwd; id -u; hostname; echo $PATH; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "out\nbar\n/home/app\n1000\nbox1\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    assert_eq!(stderr(&out), "err\n");

    // Killed by a signal: 128 + signal, like docker.
    let out = env.run(&["run", "--rm", IMAGE, "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    // A missing command: 127 and docker's reason.
    let out = env.run(&["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    // --entrypoint replaces the entrypoint; arguments follow it.
    let out = env.ok(&["run", "--rm", "--entrypoint", "/bin/echo", IMAGE, "a", "b"]);
    assert_eq!(out, "a b\n");
    // --env-file, with -e winning for the same key.
    let file = env.dir.path().join("env");
    std::fs::write(&file, "# comment\nA=1\nB=2\n").unwrap();
    let out = env.ok(&[
        "run",
        "--rm",
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "B=3",
        IMAGE,
        "sh",
        "-c",
        "echo $A$B",
    ]);
    assert_eq!(out, "13\n");
    // The image has no Cmd: docker's error.
    let out = env.run(&["run", "--rm", IMAGE]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no command specified"),
        "{}",
        stderr(&out)
    );
    // Options not supported yet are refused, never ignored.
    for flag in [&["--network", "none", "-p", "8080:80"][..], &["-d", "-i"]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flag);
        args.extend([IMAGE, "true"]);
        let out = env.run(&args);
        assert!(!out.status.success(), "{flag:?} was accepted");
    }
    assert!(
        env.container_dirs().is_empty(),
        "{:?}",
        env.container_dirs()
    );
}

#[test]
fn rm_leaves_nothing_behind() {
    let test = "rm_leaves_nothing_behind";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let root = env.root();
    let child = env
        .command(&[
            "run",
            "--rm",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "-v",
            "/anon",
            "--mount",
            "type=tmpfs,target=/scratch",
            IMAGE,
            "sh",
            "-c",
            "echo x > /anon/f; echo y > /scratch/g; echo z > /written",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The foreground run is the supervisor: its cgroup is named after it.
    let supervisor = child.id();
    let out = child.wait_with_output().unwrap();
    check(&out, "run --rm");
    assert!(
        env.container_dirs().is_empty(),
        "{:?}",
        env.container_dirs()
    );
    // The anonymous volume went with the container.
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(root.to_str().unwrap()),
        "a mount under the store is left:\n{mountinfo}"
    );
    let find = format!("find /sys/fs/cgroup -maxdepth 3 -name 'buildr-{supervisor}-*'");
    let cgroups = Command::new("sh").args(["-c", &find]).output().unwrap();
    assert_eq!(stdout(&cgroups), "", "cgroups left behind");
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "store tmp/ not empty: {tmp:?}");
}

#[test]
fn detached_logs_follow_and_stop() {
    let test = "detached_logs_follow_and_stop";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let id = env
        .ok(&[
            "run", "-d", "--name", "ticker", IMAGE, "sh", "-c",
            "trap 'echo got term; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    // The supervisor outlives the CLI: it is running after `run -d` returned.
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");
    assert_eq!(env.ok(&["ps", "-q"]).trim(), &id[..12]);

    // logs -f streams new lines as they come.
    let mut follow = env
        .command(&["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(lines.next().unwrap().unwrap());
    }
    assert_eq!(seen[..3], ["tick 0", "tick 1", "tick 2"]);

    let started = Instant::now();
    assert_eq!(env.ok(&["stop", "-t", "5", "ticker"]).trim(), "ticker");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "trapped TERM must end it at once"
    );
    // logs -f ends with the container, its last line the trap's.
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(follow.wait().unwrap().success());
    assert_eq!(
        rest.last().map(String::as_str),
        Some("got term"),
        "{rest:?}"
    );

    let doc = env.inspect("ticker");
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["ExitCode"], 0);
    let tail = env.ok(&["logs", "--tail", "1", "ticker"]);
    assert_eq!(tail, "got term\n");
    let stamped = env.ok(&["logs", "-t", "-n", "1", "ticker"]);
    assert!(
        stamped.starts_with("20") && stamped.contains("Z got term"),
        "{stamped}"
    );
    assert!(
        env.ok(&["ps"]).lines().count() == 1,
        "stopped is not listed without -a"
    );
    assert!(env.ok(&["ps", "-a"]).contains("Exited (0)"));

    // One that ignores TERM is killed after -t.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        IMAGE,
        "sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for_log(&env, "stubborn", "ready");
    let started = Instant::now();
    env.ok(&["stop", "-t", "1", "stubborn"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "killed before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(env.inspect("stubborn")["State"]["ExitCode"], 137);

    // rm refuses a running container without -f.
    env.ok(&["run", "-d", "--name", "busy", IMAGE, "sleep", "60"]);
    let out = env.run(&["rm", "busy"]);
    assert!(
        !out.status.success() && stderr(&out).contains("running"),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "-f", "busy", "ticker", "stubborn"]);
    assert!(
        env.container_dirs().is_empty(),
        "{:?}",
        env.container_dirs()
    );
}

fn wait_for_log(env: &Env, name: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.ok(&["logs", name]).contains(text) {
        assert!(Instant::now() < deadline, "{name} never logged {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dead_supervisor_is_not_reported_as_running() {
    let test = "a_dead_supervisor_is_not_reported_as_running";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let id = env
        .ok(&["run", "-d", IMAGE, "sleep", "60"])
        .trim()
        .to_owned();
    let state_path = env.root().join("containers").join(&id).join("state.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let pid = state["supervisor_pid"]
        .as_u64()
        .expect("supervisor pid recorded");
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The sandbox dies with its supervisor; ps must not say "Up".
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ps = env.ok(&["ps", "-a"]);
        if ps.contains("Exited (255) (supervisor died)") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still reported as running:\n{ps}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.ok(&["ps", "-q"]), "");
    // The killed sandbox's state files are gone too.
    let runtime = std::env::var("XDG_RUNTIME_DIR").unwrap_or_default();
    for tmpfs in [runtime.as_str(), "/run", "/dev/shm"] {
        let left = Path::new(tmpfs).join("buildr/containers").join(&id);
        assert!(
            tmpfs.is_empty() || !left.exists(),
            "{} left",
            left.display()
        );
    }
    let doc = env.inspect(&id);
    assert_eq!(doc["State"]["Running"], false);
    assert!(
        doc["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("supervisor")
    );
    env.ok(&["rm", &id]);
}

#[test]
fn memory_over_use_is_reported_as_oom() {
    let test = "memory_over_use_is_reported_as_oom";
    if !prerequisites(test) || !memory_cgroup(test) {
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        IMAGE,
        "sh",
        "-c",
        "x=a; while true; do x=\"$x$x\"; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(env.ok(&["ps", "-a"]).contains("Exited (137) (OOM)"));
    let doc = env.inspect("hog");
    assert_eq!(doc["State"]["OOMKilled"], true);
    assert_eq!(doc["HostConfig"]["Memory"], 32 << 20);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let test = "pids_limit_stops_a_fork_loop";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let started = Instant::now();
    let out = env.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "20",
        IMAGE,
        "sh",
        "-c",
        "for i in $(seq 1 200); do sleep 30 & done; wait",
    ]);
    assert!(!out.status.success(), "200 children under a limit of 20");
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the children outlived the shell"
    );
    // Without the limit the same loop works.
    let out = env.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "for i in $(seq 1 50); do true & done; wait; echo ok",
    ]);
    assert_eq!(stdout(&out), "ok\n", "{}", stderr(&out));
}

#[test]
fn volumes_keep_data_and_binds_respect_ro() {
    let test = "volumes_keep_data_and_binds_respect_ro";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data,target=/d",
        IMAGE,
        "cat",
        "/d/f",
    ]);
    assert_eq!(out, "kept\n");
    let out = env.run(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        IMAGE,
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(!out.status.success(), "wrote through a read-only volume");
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "data\n");
    let doc: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "data"])).unwrap();
    let mountpoint = PathBuf::from(doc[0]["Mountpoint"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f")).unwrap(),
        "kept\n"
    );

    // A volume in use is kept; rm -v takes anonymous volumes only.
    env.ok(&[
        "run",
        "--name",
        "user",
        "-v",
        "data:/data",
        "-v",
        "/anon",
        IMAGE,
        "true",
    ]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    assert!(!env.run(&["volume", "rm", "data"]).status.success());
    env.ok(&["rm", "-v", "user"]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "data\n");
    env.ok(&["volume", "rm", "data"]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");
    assert!(!mountpoint.exists());

    // An empty volume starts with the image's content at its path (owner
    // kept); a non-empty one is left as it is.
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "homes:/home",
        IMAGE,
        "sh",
        "-c",
        "stat -c '%u %n' /home/app; echo mine > /home/app/new",
    ]);
    assert_eq!(out, "1000 /home/app\n");
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "homes:/home",
        IMAGE,
        "cat",
        "/home/app/new",
    ]);
    assert_eq!(out, "mine\n");
    let out = env.ok(&["run", "--rm", "-v", "/etc", IMAGE, "sh", "-c", "id -u app"]);
    assert_eq!(out, "1000\n", "/etc volume without the image's passwd");
    env.ok(&["volume", "rm", "homes"]);

    // Host binds: read-write and read-only.
    let host = env.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let spec = format!("{}:/h", host.display());
    env.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        IMAGE,
        "sh",
        "-c",
        "echo from-container > /h/out",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-container\n"
    );
    let spec = format!("{}:/h:ro", host.display());
    let out = env.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        IMAGE,
        "sh",
        "-c",
        "echo x > /h/out",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-container\n"
    );
}

#[test]
fn create_start_wait_kill() {
    let test = "create_start_wait_kill";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let id = env.ok(&[
        "create",
        "--name",
        "c1",
        IMAGE,
        "sh",
        "-c",
        "echo hello; exit 7",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert!(env.ok(&["ps", "-a"]).contains("Created"));
    let out = env.run(&["start", "-a", "c1"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "hello\n");
    // Started again, detached; the writable layer is kept between runs.
    env.ok(&["start", "c1"]);
    assert_eq!(env.ok(&["wait", "c1"]), "7\n");
    assert_eq!(env.ok(&["logs", "c1"]), "hello\nhello\n");
    // Duplicate names are refused.
    let out = env.run(&["create", "--name", "c1", IMAGE, "true"]);
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));

    // The writable layer persists across start.
    env.ok(&[
        "create",
        "--name",
        "layer",
        IMAGE,
        "sh",
        "-c",
        "cat /count 2>/dev/null; echo run >> /count",
    ]);
    env.ok(&["start", "-a", "layer"]);
    assert_eq!(env.ok(&["start", "-a", "layer"]), "run\n");

    env.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        IMAGE,
        "sh",
        "-c",
        "trap 'echo usr1; exit 5' USR1; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for_log(&env, "sig", "ready");
    env.ok(&["kill", "-s", "USR1", "sig"]);
    assert_eq!(env.ok(&["wait", "sig"]), "5\n");
    env.ok(&["run", "-d", "--name", "k9", IMAGE, "sleep", "60"]);
    env.ok(&["kill", "k9"]);
    assert_eq!(env.ok(&["wait", "k9"]), "137\n");
    // Signalled the moment `run -d` returns: the control fifo exists
    // before the state says running.
    for i in 0..5 {
        let name = format!("quick{i}");
        env.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "60"]);
        env.ok(&["kill", &name]);
        assert_eq!(env.ok(&["wait", &name]), "137\n");
        env.ok(&["rm", &name]);
    }
    let out = env.run(&["kill", "k9"]);
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    // -d --rm: the supervisor removes it when it exits.
    let id = env
        .ok(&["run", "-d", "--rm", IMAGE, "true"])
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.container_dirs().iter().any(|d| d.contains(&id)) {
        assert!(Instant::now() < deadline, "-d --rm container left behind");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pruned = env.ok(&["container", "prune"]);
    assert_eq!(pruned.lines().count(), 1 + 4, "{pruned}");
    assert!(
        env.container_dirs().is_empty(),
        "{:?}",
        env.container_dirs()
    );
}

/// GET / over a plain TcpStream; the whole response.
fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

#[test]
fn bridge_publishes_a_port_to_the_host() {
    let test = "bridge_publishes_a_port_to_the_host";
    if !prerequisites(test) || !need_tool(test, "ip") || !need_tool(test, "nft") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--name", "web", "--network", "bridge", "-p", "127.0.0.1:0:8080", IMAGE,
        "sh", "-c",
        "mkdir /www; echo hello-from-container > /www/index.html; echo ready; exec httpd -f -p 8080 -h /www",
    ]);
    wait_for_log(&env, "web", "ready");
    let doc = env.inspect("web");
    // Docker's shapes: bound ports and the asked bindings by container port.
    let ports = doc["NetworkSettings"]["Ports"]["8080/tcp"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .clone();
    assert_eq!(ports.len(), 1, "{doc}");
    assert_eq!(ports[0]["HostIp"], "127.0.0.1", "{doc}");
    let port: u16 = ports[0]["HostPort"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad port in {doc}"));
    assert_eq!(
        doc["HostConfig"]["PortBindings"]["8080/tcp"],
        serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": ""}]),
        "{doc}"
    );
    let published = format!("127.0.0.1:{port}->8080/tcp");
    assert!(env.ok(&["ps"]).contains(&published));
    // The same through a template, as scripts ask.
    let format =
        "{{range $p, $b := .NetworkSettings.Ports}}{{$p}} {{range $b}}{{.HostPort}}{{end}}{{end}}";
    assert_eq!(
        env.ok(&["inspect", "-f", format, "web"]).trim(),
        format!("8080/tcp {port}")
    );
    assert_eq!(
        env.ok(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Status}} {{.Name}}",
            "web"
        ])
        .trim(),
        "running /web"
    );
    let ip = doc["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip.starts_with("10.88."), "{ip}");
    // httpd may take a moment to listen after `ready`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        match http_get(port) {
            Ok(body) if body.contains("200") => break body,
            other => {
                assert!(Instant::now() < deadline, "no answer on {port}: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(response.contains("hello-from-container"), "{response}");
    // The host side of its veth pair, by index: the address (and so the
    // name) may go to another test's container as soon as this one is gone.
    let addr: std::net::Ipv4Addr = ip.parse().unwrap();
    let veth = format!("bv{:08x}", u32::from(addr));
    let ifindex = |veth: &str| {
        let out = Command::new("ip")
            .args(["-o", "link", "show", veth])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success()).then(|| text.split(':').next().unwrap_or_default().trim().to_owned())
    };
    let ours = ifindex(&veth).unwrap_or_else(|| panic!("no veth {veth} for {ip}"));
    env.ok(&["stop", "-t", "2", "web"]);
    // The publication ends with the container.
    assert!(
        http_get(port).is_err(),
        "port {port} still answers after stop"
    );
    env.ok(&["rm", "web"]);
    // The host side of its veth pair is gone.
    assert_ne!(
        ifindex(&veth),
        Some(ours),
        "veth {veth} of {ip} left behind"
    );
    // -p without a bridge is refused.
    let out = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080",
        IMAGE,
        "true",
    ]);
    assert!(
        stderr(&out).contains("needs a bridge network"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn commit_produces_an_image_that_runs() {
    let test = "commit_produces_an_image_that_runs";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "cm",
        "-e",
        "GREETING=hi",
        IMAGE,
        "sh",
        "-c",
        "echo committed > /etc/motd; rm /bin/vi; mkdir -p /opt/x",
    ]);
    let id = env.ok(&["commit", "cm", "mine:v1"]).trim().to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert!(env.ok(&["images"]).contains("mine"));
    let out = env.run(&[
        "run",
        "--rm",
        "mine:v1",
        "sh",
        "-c",
        "cat /etc/motd; test -e /bin/vi && echo vi-still-there; echo $GREETING; ls -d /opt/x",
    ]);
    assert_eq!(stdout(&out), "committed\nhi\n/opt/x\n", "{}", stderr(&out));
    // The base image is untouched.
    let out = env.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/motd 2>/dev/null; ls /bin/vi",
    ]);
    assert_eq!(out, "/bin/vi\n");
    // A running container is refused (no pause yet).
    env.ok(&["run", "-d", "--name", "live", IMAGE, "sleep", "60"]);
    let out = env.run(&["commit", "live", "nope"]);
    assert!(stderr(&out).contains("is running"), "{}", stderr(&out));
    env.ok(&["rm", "-f", "live", "cm"]);
}

#[test]
fn foreground_run_forwards_signals() {
    let test = "foreground_run_forwards_signals";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let mut child = env
        .command(&[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert_eq!(lines.next().unwrap().unwrap(), "got-int");
    assert_eq!(
        child.wait().unwrap().code(),
        Some(9),
        "the CLI died of the signal"
    );
    assert!(
        env.container_dirs().is_empty(),
        "{:?}",
        env.container_dirs()
    );
}

#[test]
fn exit_statuses_term_and_names_are_dockers() {
    let test = "exit_statuses_term_and_names_are_dockers";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let code = |args: &[&str]| env.run(args).status.code();
    // 125: buildr's own failure; 126: the command cannot be invoked;
    // 127: it is not found (docker run's contract scripts rely on).
    assert_eq!(code(&["run", "--rm", "no-such-image:1", "true"]), Some(125));
    let none = ["run", "--rm", "--network", "none", IMAGE];
    assert_eq!(code(&[&none[..], &["no-such-command"]].concat()), Some(127));
    assert_eq!(code(&[&none[..], &["/etc/passwd"]].concat()), Some(126));
    // TERM=xterm under -t only, unless the container sets its own.
    let term = |extra: &[&str]| {
        let args = [&none[..4], extra, &[IMAGE, "sh", "-c", "echo \"[$TERM]\""]].concat();
        stdout(&env.run(&args)).trim().to_owned()
    };
    assert_eq!(term(&[]), "[]");
    assert_eq!(term(&["-t"]), "[xterm]");
    assert_eq!(term(&["-t", "-e", "TERM=vt100"]), "[vt100]");
    // An unnamed container gets two words, as docker's.
    env.ok(&["create", "--network", "none", IMAGE, "true"]);
    let names = env.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let name = names.trim();
    let (adjective, rest) = name.split_once('_').unwrap_or_else(|| panic!("{name}"));
    assert!(
        !adjective.is_empty()
            && adjective.chars().all(|c| c.is_ascii_lowercase())
            && !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{name}"
    );
}

#[test]
fn rename_restart_and_port_work_as_dockers() {
    let test = "rename_restart_and_port_work_as_dockers";
    if !prerequisites(test) || !need_tool(test, "ip") || !need_tool(test, "nft") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "bridge",
        "-p",
        "127.0.0.1:0:8080",
        IMAGE,
        "sleep",
        "300",
    ]);
    // rename: the new name is the container's, the old one is free again.
    env.ok(&["rename", "first", "second"]);
    assert_eq!(env.inspect("second")["Name"], "/second");
    assert!(env.fails(&["inspect", "first"]).contains("first"));
    assert!(
        env.fails(&["rename", "second", "second"])
            .contains("current name")
    );
    assert!(
        env.fails(&["rename", "second", "bad/name"])
            .contains("invalid container name")
    );
    // port: every publication, or the host side of one.
    let all = env.ok(&["port", "second"]);
    let host = all
        .trim()
        .strip_prefix("8080/tcp -> ")
        .unwrap_or_else(|| panic!("{all}"))
        .to_owned();
    assert!(host.starts_with("127.0.0.1:"), "{all}");
    assert_eq!(env.ok(&["port", "second", "8080"]).trim(), host);
    assert_eq!(env.ok(&["port", "second", "8080/tcp"]).trim(), host);
    assert!(env.fails(&["port", "second", "9999"]).contains("9999/tcp"));
    // restart: stopped and started again, a new start time, still running.
    let started = env.inspect("second")["State"]["StartedAt"].clone();
    env.ok(&["restart", "-t", "1", "second"]);
    let state = env.inspect("second")["State"].clone();
    assert_eq!(state["Status"], "running", "{state}");
    assert_ne!(state["StartedAt"], started, "{state}");
    env.ok(&["rm", "-f", "second"]);
}
