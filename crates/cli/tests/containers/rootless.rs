//! Rootless buildr as a real unprivileged user, set up the way a
//! distribution does (scripts/rootless-user.sh: the user, its /etc/subuid
//! and /etc/subgid ranges, /dev/net/tun for slirp4netns, and for the limits
//! test a delegated cgroup). Every command runs as that user with no flags
//! beyond the docker ones: the default build network, the default (bridge)
//! run network, published ports, volumes, exec, logs, healthchecks, `-it`,
//! stop, rm; the same build as root and as the user gives the same image;
//! limits apply with delegation and fail clearly without; state is the
//! user's own. Needs root (to make the user) and the packages of
//! scripts/install-deps.sh; under CI=true their absence fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::container_common::{
    Tmux, check, failed, first_document, missing, remove_all_containers, succeeded, workspace,
};
use buildr_testkit::registry::free_port;

const USER: &str = "buildr-rootless";
const IMAGE: &str = "buildr-fixtures/busybox:latest";

/// The user, its ids, the binary it runs, its delegated cgroups.
struct User {
    uid: u32,
    gid: u32,
    home: PathBuf,
    bin: PathBuf,
    delegated: Vec<PathBuf>,
}

fn user(test: &str) -> Option<&'static User> {
    static USER_SETUP: OnceLock<Result<User, String>> = OnceLock::new();
    let setup = USER_SETUP.get_or_init(|| {
        if !nix_is_root() {
            return Err("needs root to create the test user".into());
        }
        for tool in ["slirp4netns", "newuidmap", "setfacl", "nft", "runuser"] {
            if !["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists())
            {
                return Err(format!("needs {tool} (scripts/install-deps.sh)"));
            }
        }
        let out = Command::new("bash")
            .arg(workspace().join("scripts/rootless-user.sh"))
            .args([USER, "--delegate"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "scripts/rootless-user.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let delegated = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, USER]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let home = PathBuf::from(format!("/home/{USER}"));
        // The user's own copy of the binary (the build tree may not be
        // readable by others), one path for every run: renamed into place,
        // so a holder still running the last copy keeps its own inode.
        let dir = PathBuf::from("/tmp/buildr-rootless-bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("buildr");
        let tmp = dir.join(format!("buildr.{}", std::process::id()));
        std::fs::copy(env!("CARGO_BIN_EXE_buildr"), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &bin).unwrap();
        let user = User {
            uid: id("-u"),
            gid: id("-g"),
            home,
            bin,
            delegated,
        };
        restart_holder(&user)?;
        Ok(user)
    });
    match setup {
        Ok(user) => Some(user),
        Err(why) => {
            missing(test, why);
            None
        }
    }
}

/// The user's holder record.
fn holder(user: &User) -> Option<serde_json::Value> {
    let path = format!("/dev/shm/buildr-{}/buildr/rootless/holder.json", user.uid);
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Kills the user's holder if one runs (an earlier run's, maybe of another
/// binary), then has a command start a new one through a shell that leaks
/// a descriptor (fd 7, a copy of stdout, without close-on-exec): the
/// command's output ends only if the holder, which lives on, dropped it.
fn restart_holder(user: &User) -> Result<(), String> {
    if let Some(pid) = holder(user).and_then(|h| h["pid"].as_u64()) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next().map(str::to_string));
        if owner == Some(user.uid.to_string()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exec 7>&1; exec \"$0\" images"])
        .arg(&user.bin)
        .current_dir("/")
        .env_clear()
        .env("HOME", &user.home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("SECRET_OF_THE_CALLER", "must-not-reach-the-holder")
        .uid(user.uid)
        .gid(user.gid)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().unwrap();
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = done.send(text);
    });
    let status = child.wait().map_err(|e| e.to_string())?;
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    if !status.success() {
        return Err(format!("the first command as {USER} failed: {stderr}"));
    }
    ended.recv_timeout(Duration::from_secs(20)).map_err(|_| {
        "the holder kept a descriptor it inherited (stdout never ended)".to_string()
    })?;
    Ok(())
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A test's own store (XDG_DATA_HOME) and work dir, owned by the user.
struct Session {
    user: &'static User,
    dir: tempfile::TempDir,
}

impl Session {
    fn new(user: &'static User) -> Session {
        let dir = tempfile::Builder::new()
            .prefix("buildr-rootless-")
            .tempdir_in("/tmp")
            .unwrap();
        for sub in ["", "data", "ctx"] {
            let path = dir.path().join(sub);
            std::fs::create_dir_all(&path).unwrap();
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
        }
        let session = Session { user, dir };
        let tar = crate::container_common::busybox_tar(session.dir.path());
        std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).unwrap();
        session.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        session
    }

    fn ctx(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The user's store (the default one under XDG_DATA_HOME).
    fn store(&self) -> PathBuf {
        self.data().join("buildr")
    }

    /// A login-like environment of the user's, with this test's store.
    fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("HOME", self.user.home.clone().into()),
            ("USER", USER.into()),
            ("LOGNAME", USER.into()),
            (
                "PATH",
                "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
            ),
            ("XDG_DATA_HOME", self.data().into()),
        ]
    }

    /// `program` as the user, in the context dir, with [`Self::env`].
    fn as_user(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.ctx())
            .env_clear()
            .envs(self.env())
            .uid(self.user.uid)
            .gid(self.user.gid);
        cmd
    }

    /// `buildr ARGS` as the user, no `--root`: the defaults are tested.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.as_user(&self.user.bin);
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(&self.run(args), args)
    }

    fn fails(&self, args: &[&str]) -> String {
        failed(&self.run(args), args)
    }

    /// Writes a file of the context, readable by the user.
    fn write(&self, name: &str, text: &str) {
        let path = self.ctx().join(name);
        std::fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(self.user.uid), Some(self.user.gid)).unwrap();
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        first_document(&self.ok(&["container", "inspect", name]))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        remove_all_containers(|args| self.run(args));
    }
}

/// The image id a build printed ("writing image sha256:... done").
fn image_id(build_stderr: &str) -> String {
    build_stderr
        .lines()
        .find_map(|l| l.split("writing image ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no image id in:\n{build_stderr}"))
        .to_string()
}

/// This host's address on its default route (not loopback): what a
/// container reaches through user-mode networking.
fn host_address() -> Ipv4Addr {
    let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
    probe
        .connect("192.0.2.1:9")
        .or_else(|_| probe.connect("10.255.255.1:9"))
        .expect("a route out of this host (a non-loopback address) for the network tests");
    match probe.local_addr().unwrap().ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() => ip,
        other => panic!("no non-loopback IPv4 address on the default route: {other}"),
    }
}

/// A one-reply HTTP server on every address of the host, for builds and
/// containers to fetch from through slirp4netns.
fn serve(body: &'static str) -> u16 {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    port
}

/// The user's live processes (zombies are dead: this machine's pid 1 may
/// not reap orphans) other than its namespace holder and the holder's
/// slirp4netns, which live on by design.
fn user_processes(user: &User) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        let uid: u32 = field("Uid:").parse().unwrap_or(u32::MAX);
        if uid != user.uid || field("State:") == "Z" {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let holder =
            String::from_utf8_lossy(&environ).contains("_BUILDR_EXEC_INIT=rootless-holder");
        let holders_slirp = cmdline.starts_with("/usr/bin/slirp4netns")
            && field("PPid:").parse::<u32>().ok().is_some_and(|ppid| {
                std::fs::read(format!("/proc/{ppid}/environ"))
                    .map(|e| String::from_utf8_lossy(&e).contains("rootless-holder"))
                    .unwrap_or(false)
            });
        if !holder && !holders_slirp {
            found.push(format!("{pid} {cmdline}"));
        }
    }
    found
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A GET through a published port; empty when the connection fails or
/// is closed early (the proxy closes it while the server is not up yet,
/// so waiting loops retry instead of failing on a broken pipe).
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if write!(conn, "GET {path} HTTP/1.0\r\n\r\n").is_err() {
        return String::new();
    }
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    reply
}

#[test]
fn rootless_build_and_run_flow_with_default_networks() {
    let test = "rootless_build_and_run_flow_with_default_networks";
    let Some(user) = user(test) else { return };
    let s = Session::new(user);
    let host = host_address();
    let port = serve("hello from the host\n");

    // Build: the default build network reaches out (slirp4netns inside the
    // user's namespace), RUN mounts of every kind work.
    s.write("note.txt", "context file\n");
    s.write("tok", "s3cret\n");
    s.write(
        "Dockerfile",
        &format!(
            "FROM {IMAGE}\n\
             RUN wget -q -O /fetched http://{host}:{port}/\n\
             RUN --mount=type=cache,target=/cache echo cached > /cache/c && cp /cache/c /from-cache\n\
             RUN --mount=type=secret,id=tok cp /run/secrets/tok /secret-seen\n\
             RUN --mount=type=bind,source=note.txt,target=/mnt/note cp /mnt/note /from-bind\n\
             RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && echo tmpfs-ok > /from-tmpfs\n\
             RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo ssh-ok > /from-ssh\n"
        ),
    );
    let agent = s.ctx().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    std::os::unix::fs::chown(&agent, Some(user.uid), Some(user.gid)).unwrap();
    let ssh = format!("default={}", agent.display());
    s.ok(&[
        "build",
        "-t",
        "app",
        "--secret",
        "id=tok,src=tok",
        "--ssh",
        &ssh,
        ".",
    ]);
    let out = s.ok(&[
        "run",
        "--rm",
        "app",
        "cat",
        "/fetched",
        "/from-cache",
        "/secret-seen",
        "/from-bind",
        "/from-tmpfs",
        "/from-ssh",
    ]);
    assert_eq!(
        out,
        "hello from the host\ncached\ns3cret\ncontext file\ntmpfs-ok\nssh-ok\n"
    );

    // Run: the default network reaches out too.
    let url = format!("http://{host}:{port}/");
    assert_eq!(
        s.ok(&["run", "--rm", "app", "wget", "-q", "-O-", &url]),
        "hello from the host\n"
    );

    // A published port, a bind mount and a named volume.
    let published = free_port();
    let vol = s.dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(user.uid), Some(user.gid)).unwrap();
    let bind = format!("{}:/data", vol.display());
    let publish = format!("{published}:8080");
    s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "-v",
        &bind,
        "-v",
        "keep:/keep",
        "--health-cmd",
        "test -f /www/index.html",
        "--health-interval",
        "1s",
        "app",
        "sh",
        "-c",
        "mkdir -p /www && echo served > /www/index.html && echo hostfile > /data/out && echo kept > /keep/k && echo web-started && exec httpd -f -p 8080 -h /www",
    ]);
    wait_for("the published port", || {
        TcpStream::connect(("127.0.0.1", published))
            .is_ok_and(|_| http_get(published, "/index.html").ends_with("served\n"))
    });
    // Files the container wrote through the bind mount are the user's.
    let meta = std::fs::metadata(vol.join("out")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    assert_eq!(
        s.ok(&["run", "--rm", "-v", "keep:/keep", "app", "cat", "/keep/k"]),
        "kept\n"
    );

    // Containers of the user reach each other on the shared network.
    let ip = s.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("http://{ip}:8080/index.html");
    assert_eq!(
        s.ok(&["run", "--rm", "app", "wget", "-q", "-O-", &url]),
        "served\n"
    );

    assert_eq!(s.ok(&["exec", "web", "cat", "/www/index.html"]), "served\n");
    assert_eq!(s.ok(&["exec", "web", "id", "-u"]), "0\n");
    assert!(s.ok(&["logs", "web"]).contains("web-started"));
    wait_for("a healthy healthcheck", || {
        s.inspect("web")["State"]["Health"]["Status"] == "healthy"
    });

    s.ok(&["stop", "web"]);
    assert_eq!(s.inspect("web")["State"]["Status"], "exited");
    s.ok(&["rm", "web"]);
    wait_for("the user's processes to end", || {
        user_processes(user).is_empty()
    });
    // The port is free again.
    assert!(TcpStream::connect(("127.0.0.1", published)).is_err());

    // Nothing in the user's store belongs to root.
    let out = Command::new("find")
        .arg(s.store())
        .args(["-uid", "0", "-o", "-gid", "0"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "root-owned files in the store"
    );
}

#[test]
fn rootless_and_root_build_the_same_image() {
    let test = "rootless_and_root_build_the_same_image";
    let Some(user) = user(test) else { return };
    let s = Session::new(user);
    // One base for both: imported by root, saved, loaded by the user
    // (`import` stamps the time, so two imports differ).
    let root_store = s.dir.path().join("root-store");
    let root = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_buildr"))
            .arg("--root")
            .arg(&root_store)
            .args(args)
            .current_dir(s.ctx())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        check(&out, &format!("buildr {args:?} as root"));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let tar = s.dir.path().join("busybox-rootfs.tar");
    let base = "buildr-fixtures/busybox:shared";
    root(&["import", tar.to_str().unwrap(), base]);
    let saved = s.dir.path().join("base.tar");
    root(&["save", "-o", saved.to_str().unwrap(), base]);
    std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.ok(&["load", "-i", saved.to_str().unwrap()]);

    s.write("f.txt", "data\n");
    s.write(
        "Dockerfile",
        &format!(
            "FROM {base}\n\
             COPY --chown=1000:1000 f.txt /app/f.txt\n\
             COPY --chown=4242:4343 f.txt /app/g.txt\n\
             RUN mkdir -p /data && echo y > /data/y && chown -R 1000:1000 /data && chown 123:456 /app \
             && touch /odd && chown 65534:65534 /odd\n\
             RUN rm -rf /home/app && mkdir /home/app && echo new > /home/app/n\n\
             RUN test \"$(ls -A /home/app)\" = n\n\
             USER app\n"
        ),
    );
    let out = s
        .command(&["build", "-t", "same", "."])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    check(&out, "rootless build");
    let as_user = image_id(&String::from_utf8_lossy(&out.stderr));

    // The same context and base as root, in root's store.
    let as_root = image_id(&root(&["build", "-t", "same", "."]));
    assert_eq!(as_user, as_root, "the same build as root and as {USER}");

    // In-image owners survive: uid 0 inside is the user outside, the rest
    // map through the subordinate range.
    let listing = s.ok(&[
        "run",
        "--rm",
        "--user",
        "0",
        "same",
        "ls",
        "-ln",
        "/app/f.txt",
        "/app/g.txt",
        "/odd",
    ]);
    let owners: Vec<(String, String)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2].to_string(), f[3].to_string())
        })
        .collect();
    assert_eq!(
        owners,
        [("1000", "1000"), ("4242", "4343"), ("65534", "65534")]
            .map(|(u, g)| (u.to_string(), g.to_string()))
    );
}

/// Starts `buildr ARGS` as the user inside the delegated cgroups: the
/// process stops itself, root moves it, then it goes on.
fn run_delegated(s: &Session, args: &[&str]) -> Output {
    let mut script = String::from("kill -STOP $$; exec \"$0\"");
    for n in 1..=args.len() {
        script.push_str(&format!(" \"${{{n}}}\""));
    }
    let mut sh = s.as_user(Path::new("/bin/sh"));
    sh.arg("-c")
        .arg(&script)
        .arg(&s.user.bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = sh.spawn().unwrap();
    let pid = child.id();
    wait_for("the shell to stop itself", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('T'))
        })
    });
    for dir in &s.user.delegated {
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
    Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn rootless_limits_apply_with_delegation_and_fail_clearly_without() {
    let test = "rootless_limits_apply_with_delegation_and_fail_clearly_without";
    let Some(user) = user(test) else { return };
    let s = Session::new(user);

    // Without a delegated cgroup: a clear error, not a run without limits.
    for limit in [
        ["--memory", "64m"],
        ["--pids-limit", "20"],
        ["--cpus", "0.5"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(limit);
        args.extend([IMAGE, "true"]);
        let err = s.fails(&args);
        assert!(
            err.contains(limit[0]) && err.contains("not delegated") && err.contains("Delegate=yes"),
            "{limit:?}: {err}"
        );
    }

    // With one: the memory limit kills a hog (137), the pids limit stops a
    // fork bomb, the cpu limit is accepted.
    let hog = run_delegated(
        &s,
        &[
            "run",
            "--rm",
            "--memory",
            "16m",
            IMAGE,
            "sh",
            "-c",
            "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}",
        ],
    );
    assert_eq!(
        hog.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&hog.stderr)
    );
    let pids = run_delegated(
        &s,
        &[
            "run",
            "--rm",
            "--pids-limit",
            "8",
            IMAGE,
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait; echo done",
        ],
    );
    let said = String::from_utf8_lossy(&pids.stderr);
    assert!(
        said.contains("can't fork") || said.contains("Resource temporarily unavailable"),
        "pids limit not applied: {}\n{said}",
        pids.status
    );
    let cpus = run_delegated(&s, &["run", "--rm", "--cpus", "0.5", IMAGE, "true"]);
    check(&cpus, "--cpus 0.5 in a delegated cgroup");
}

#[test]
fn rootless_state_is_the_users_own() {
    let test = "rootless_state_is_the_users_own";
    let Some(user) = user(test) else { return };
    let s = Session::new(user);
    // Root runs first (making its own runtime state), then the user: the
    // failure of old, where root's /dev/shm/buildr blocked the user.
    let root_store = s.dir.path().join("root-store");
    let tar = s.dir.path().join("busybox-rootfs.tar");
    let root = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_buildr"))
            .arg("--root")
            .arg(&root_store)
            .args(args)
            .output()
            .unwrap();
        check(&out, &format!("buildr {args:?} as root"));
    };
    root(&["import", tar.to_str().unwrap(), IMAGE]);
    root(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    s.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    s.ok(&["run", "--rm", "--network", "host", IMAGE, "true"]);

    // The runtime directory is private to the user.
    let runtime = PathBuf::from(format!("/dev/shm/buildr-{}", user.uid));
    let meta = std::fs::symlink_metadata(&runtime).unwrap();
    assert_eq!(meta.uid(), user.uid);
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    // The holder keeps nothing of its caller's environment.
    let pid = holder(user).and_then(|h| h["pid"].as_u64()).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&environ)
        .split('\0')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    names.sort();
    assert_eq!(names, ["PATH", "_BUILDR_EXEC_INIT"]);
    // The store is where XDG says, and the user's.
    let meta = std::fs::metadata(s.store()).unwrap();
    assert_eq!(meta.uid(), user.uid);

    // A layer with device nodes (as a Debian base has) unpacks: the nodes
    // are skipped, as dockerd does in a user namespace.
    let tree = s.dir.path().join("devtree");
    std::fs::create_dir_all(tree.join("dev")).unwrap();
    std::fs::write(tree.join("file"), "x").unwrap();
    let made = Command::new("mknod")
        .arg(tree.join("dev/full"))
        .args(["c", "1", "7"])
        .status()
        .unwrap();
    assert!(made.success());
    let devtar = s.dir.path().join("dev.tar");
    let tarred = Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .arg("-cf")
        .arg(&devtar)
        .arg(".")
        .status()
        .unwrap();
    assert!(tarred.success());
    std::fs::set_permissions(&devtar, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.ok(&["import", devtar.to_str().unwrap(), "with-devices:1"]);
    s.ok(&["verify"]);

    // An XDG_RUNTIME_DIR that is not the user's is not used: the private
    // default is.
    let planted = s.dir.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = s
        .command(&["images"])
        .env("XDG_RUNTIME_DIR", &planted)
        .output()
        .unwrap();
    check(&out, "images with a foreign XDG_RUNTIME_DIR");
}

#[test]
fn rootless_interactive_run() {
    let test = "rootless_interactive_run";
    let Some(user) = user(test) else { return };
    if Command::new("tmux").arg("-V").output().is_err() {
        missing(test, "needs tmux (scripts/install-deps.sh)");
        return;
    }
    let s = Session::new(user);
    let tmux = Tmux::start(&format!(
        "runuser -u {USER} -- env -i HOME={} PATH=/usr/bin:/bin:/usr/sbin:/sbin XDG_DATA_HOME={} TERM=xterm {} run -it --rm {IMAGE} sh",
        user.home.display(),
        s.data().display(),
        user.bin.display()
    ));
    tmux.interact("[ -t 0 ] && echo tty-$((6*7))", "tty-42");
    tmux.keys(&["exit 3", "Enter"]);
    tmux.wait_line("EXITED=3");
}

/// A user-defined network rootless: its bridge and DNS server live in the
/// user's network home, containers on it resolve each other by name.
#[test]
fn rootless_user_network_resolves_names() {
    let test = "rootless_user_network_resolves_names";
    let Some(user) = user(test) else { return };
    let s = Session::new(user);
    s.ok(&["network", "create", "rlnet"]);
    let web = s.ok(&[
        "run",
        "-d",
        "--name",
        "rlweb",
        "--network",
        "rlnet",
        IMAGE,
        "sleep",
        "600",
    ]);
    let web = web.trim();
    let mut ip = String::new();
    wait_for("an address for rlweb", || {
        ip = s.inspect(web)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        !ip.is_empty()
    });
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "rlnet",
        IMAGE,
        "nslookup",
        "rlweb",
    ]);
    assert!(out.contains(&ip), "rlweb is {ip}: {out}");
    let refused = s.fails(&["network", "rm", "rlnet"]);
    assert!(refused.contains("active endpoints"), "{refused}");
    s.ok(&["rm", "-f", web]);
    assert_eq!(s.ok(&["network", "rm", "rlnet"]), "rlnet\n");
}

/// `cp` both ways, running and stopped, as the user (the running
/// container's root is reached through its pid as the user's namespace
/// sees it).
#[test]
fn rootless_cp_in_and_out() {
    let test = "rootless_cp_in_and_out";
    let Some(user) = user(test) else { return };
    let s = Session::new(user);
    s.write("greeting.txt", "hello from the host\n");
    let id = s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "rlcp",
        IMAGE,
        "sleep",
        "600",
    ]);
    let id = id.trim();
    s.ok(&["cp", "greeting.txt", "rlcp:/tmp/greeting.txt"]);
    assert_eq!(
        s.ok(&["exec", id, "cat", "/tmp/greeting.txt"]),
        "hello from the host\n"
    );
    s.ok(&["exec", id, "sh", "-c", "echo made inside > /made.txt"]);
    s.ok(&["cp", "rlcp:/made.txt", "out-running.txt"]);
    let out = std::fs::read_to_string(s.ctx().join("out-running.txt")).unwrap();
    assert_eq!(out, "made inside\n");
    s.ok(&["stop", "-t", "1", id]);
    s.ok(&["cp", "rlcp:/tmp/greeting.txt", "out-stopped.txt"]);
    let out = std::fs::read_to_string(s.ctx().join("out-stopped.txt")).unwrap();
    assert_eq!(out, "hello from the host\n");
    s.ok(&["rm", id]);
}
