//! `Sandbox::exec_in` against a real running sandbox (root and busybox
//! needed; under CI=true their absence fails, otherwise a loud skip): the
//! joined process sees the sandbox's files, processes and hostname, has
//! Docker's capabilities (none for another user), only fds 0-2, joins the
//! cgroup, dies when cancelled; a `tty` exec gets a pty of the sandbox's
//! devpts; `readonly_rootfs` makes the root read-only; a container's
//! cgroup (`CgroupPolicy::Always`) is counted, frozen, thawed and given new
//! limits from its pid, and the v2 freezer works on a `buildr-*` v2 cgroup.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use buildr_exec::{
    Cancel, Error, ExecSpec, ExitStatus, Limits, Outcome, Rootfs, Sandbox, SpawnSpec, Stream,
};
use buildr_testkit::prereq::{need_root, need_tool};

const INIT: &str = env!("CARGO_BIN_EXE_buildr-sandbox");
const DOCKER_CAP_HEX: &str = "00000000a80425fb";

fn prerequisites(test: &str) -> bool {
    need_root(test) && need_tool(test, "/bin/busybox")
}

struct Fixture {
    _tmp: tempfile::TempDir,
    lower: PathBuf,
    upper: PathBuf,
    work: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper, work) = (
            tmp.path().join("lower"),
            tmp.path().join("upper"),
            tmp.path().join("work"),
        );
        for dir in [
            &lower,
            &upper,
            &work,
            &lower.join("bin"),
            &lower.join("etc"),
            &lower.join("tmp"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
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
        std::fs::write(
            lower.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(lower.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        Fixture {
            _tmp: tmp,
            lower,
            upper,
            work,
        }
    }

    fn spec(&self, script: &str) -> SpawnSpec {
        SpawnSpec {
            rootfs: Rootfs {
                lowers: vec![self.lower.clone()],
                upper: self.upper.clone(),
                work: self.work.clone(),
                ..Rootfs::default()
            },
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            hostname: "enter-host".into(),
            ..SpawnSpec::default()
        }
    }
}

/// A sandbox running `script` in a thread until cancelled.
struct Running {
    cancel: Cancel,
    pid1: i32,
    done: mpsc::Receiver<buildr_exec::Result<Outcome>>,
}

impl Running {
    fn start(spec: SpawnSpec) -> Running {
        let cancel = Cancel::new().unwrap();
        let (tx, done) = mpsc::channel();
        let handle = cancel.clone();
        std::thread::spawn(move || {
            let outcome = Sandbox::new()
                .with_init_exe(INIT)
                .run(&spec, &handle, |_, _| {});
            let _ = tx.send(outcome);
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid1 = loop {
            if let Some(pid) = cancel.pid1() {
                break pid;
            }
            assert!(Instant::now() < deadline, "pid 1 never reported");
            std::thread::sleep(Duration::from_millis(5));
        };
        Running { cancel, pid1, done }
    }

    fn exec(&self, spec: &ExecSpec) -> (buildr_exec::Result<Outcome>, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let cancel = Cancel::new().unwrap();
        let outcome = Sandbox::new().with_init_exe(INIT).exec_in(
            self.pid1,
            spec,
            None,
            &cancel,
            |stream, chunk| match stream {
                Stream::Stdout => out.extend_from_slice(chunk),
                Stream::Stderr => err.extend_from_slice(chunk),
            },
        );
        (
            outcome,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// Stdout of a script that must exit 0.
    fn sh(&self, script: &str, user: &str) -> String {
        let spec = ExecSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            user: user.into(),
            ..ExecSpec::default()
        };
        let (outcome, out, err) = self.exec(&spec);
        let outcome = outcome.unwrap();
        assert_eq!(outcome.status, ExitStatus::Code(0), "{script}: {out}{err}");
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
        let _ = self.done.recv_timeout(Duration::from_secs(20));
    }
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name}"))
        .trim()
}

#[test]
fn exec_joins_namespaces_cgroup_and_drops_privileges() {
    let test = "exec_joins_namespaces_cgroup_and_drops_privileges";
    if !prerequisites(test) {
        return;
    }
    let fixture = Fixture::new();
    let mut spec = fixture.spec("echo marker > /m; exec sleep 60");
    spec.limits = Limits {
        pids: Some(64),
        ..Limits::default()
    };
    let running = Running::start(spec);
    let deadline = Instant::now() + Duration::from_secs(10);
    while running
        .exec(&ExecSpec {
            argv: vec!["test".into(), "-f".into(), "/m".into()],
            ..ExecSpec::default()
        })
        .0
        .map(|o| o.status)
        .ok()
        != Some(ExitStatus::Code(0))
    {
        assert!(Instant::now() < deadline, "/m never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running.sh("cat /m", ""), "marker\n");
    assert_eq!(running.sh("hostname", ""), "enter-host\n");
    let ps = running.sh("ps -o pid,args", "");
    let sleep = ps
        .lines()
        .find(|l| l.ends_with("sleep 60"))
        .unwrap_or_else(|| panic!("{ps}"));
    let pid: u32 = sleep.split_whitespace().next().unwrap().parse().unwrap();
    assert!(pid < 10, "not the sandbox's pid namespace: {ps}");
    // The same cgroup as pid 1, not the host's.
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let theirs = std::fs::read_to_string(format!("/proc/{}/cgroup", running.pid1)).unwrap();
    assert_ne!(
        ours, theirs,
        "the sandbox has a cgroup of its own (pids limit)"
    );
    let inside = running.sh("cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup", "");
    let (own, init) = inside.split_once("---\n").unwrap();
    assert_eq!(own, init, "exec'd process not in pid 1's cgroup");
    let status = running.sh("cat /proc/self/status", "");
    for name in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(&status, name), DOCKER_CAP_HEX, "{name}");
    }
    for name in ["CapInh", "CapAmb"] {
        assert_eq!(field(&status, name), "0000000000000000", "{name}");
    }
    let status = running.sh("cat /proc/self/status; id -un; echo $HOME", "app");
    assert_eq!(field(&status, "CapEff"), "0000000000000000");
    assert!(field(&status, "Uid").starts_with("1000"));
    assert!(status.ends_with("app\n/tmp\n"), "{status}");
    let fds = running.sh("ls /proc/$$/fd; true", "");
    assert_eq!(fds.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"]);

    // Exit code, missing program.
    let spec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "exit 9".into()],
        ..ExecSpec::default()
    };
    assert_eq!(running.exec(&spec).0.unwrap().status, ExitStatus::Code(9));
    let spec = ExecSpec {
        argv: vec!["no-such".into()],
        ..ExecSpec::default()
    };
    match running.exec(&spec).0 {
        Err(Error::Setup(message)) => assert!(message.contains("not found"), "{message}"),
        other => panic!("expected a setup error, got {other:?}"),
    }

    // A cancelled exec takes its process with it; the sandbox lives on.
    let cancel = Cancel::new().unwrap();
    let handle = cancel.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        handle.cancel();
    });
    let spec = ExecSpec {
        argv: vec!["sleep".into(), "77".into()],
        ..ExecSpec::default()
    };
    let outcome = Sandbox::new()
        .with_init_exe(INIT)
        .exec_in(running.pid1, &spec, None, &cancel, |_, _| {})
        .unwrap();
    killer.join().unwrap();
    assert!(outcome.cancelled);
    std::thread::sleep(Duration::from_millis(200));
    let ps = running.sh("ps -o args", "");
    assert!(!ps.contains("sleep 77"), "{ps}");
    assert!(ps.contains("sleep 60"), "{ps}");
}

#[test]
fn tty_exec_gets_a_pty_of_the_sandbox() {
    let test = "tty_exec_gets_a_pty_of_the_sandbox";
    if !prerequisites(test) {
        return;
    }
    let fixture = Fixture::new();
    let running = Running::start(fixture.spec("exec sleep 60"));
    let (ours, theirs) = buildr_exec::pty_socketpair().unwrap();
    let reader = std::thread::spawn(move || {
        let master = buildr_exec::receive_pty(ours.as_fd()).unwrap();
        let mut file = std::fs::File::from(master);
        file.write_all(b"tty; echo fds $(ls /proc/$$/fd | wc -l); exit 5\n")
            .unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let spec = ExecSpec {
        argv: vec!["sh".into()],
        tty: true,
        ..ExecSpec::default()
    };
    let mut piped = Vec::new();
    let outcome = Sandbox::new()
        .with_init_exe(INIT)
        .exec_in(
            running.pid1,
            &spec,
            Some(theirs),
            &Cancel::new().unwrap(),
            |_, c| piped.extend_from_slice(c),
        )
        .unwrap();
    assert_eq!(outcome.status, ExitStatus::Code(5));
    let screen = reader.join().unwrap();
    assert!(screen.contains("\n/dev/pts/0\r\n"), "{screen:?}");
    assert!(piped.is_empty(), "output bypassed the pty: {piped:?}");
}

#[test]
fn readonly_rootfs_is_read_only() {
    let test = "readonly_rootfs_is_read_only";
    if !prerequisites(test) {
        return;
    }
    let fixture = Fixture::new();
    let mut spec = fixture.spec("touch /x; echo root=$?; touch /dev/shm/y; echo shm=$?");
    spec.readonly_rootfs = true;
    let mut out = Vec::new();
    let outcome = Sandbox::new()
        .with_init_exe(INIT)
        .run(&spec, &Cancel::new().unwrap(), |s, c| {
            if s == Stream::Stdout {
                out.extend_from_slice(c)
            }
        })
        .unwrap();
    assert_eq!(outcome.status, ExitStatus::Code(0));
    assert_eq!(String::from_utf8_lossy(&out), "root=1\nshm=0\n");
    assert!(!fixture.upper.join("x").exists());
}

/// A container's cgroup (`CgroupPolicy::Always`, no limits) reached from
/// its pid 1: counted, frozen (a counter in the upper dir stops) and
/// thawed, given new limits while running.
#[test]
fn container_cgroup_freezes_counts_and_takes_new_limits() {
    let test = "container_cgroup_freezes_counts_and_takes_new_limits";
    if !prerequisites(test) {
        return;
    }
    let fixture = Fixture::new();
    let mut spec = fixture.spec("i=0; while :; do i=$((i+1)); echo $i > /n; sleep 0.02; done");
    spec.cgroup = buildr_exec::CgroupPolicy::Always;
    let running = Running::start(spec);
    let counter = fixture.upper.join("n");
    let read = || -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(n) = std::fs::read_to_string(&counter)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "no counter in {}",
                counter.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let cgroup = buildr_exec::ContainerCgroup::of_pid(running.pid1).unwrap();
    assert!(cgroup.pids().contains(&running.pid1));
    let stats = cgroup.stats();
    assert!(stats.memory_usage.is_some_and(|m| m > 0), "{stats:?}");
    assert!(stats.pids.is_some_and(|p| p >= 2), "{stats:?}");
    assert!(stats.cpu_nanos.is_some_and(|c| c > 0), "{stats:?}");
    assert_eq!(stats.memory_limit, None, "{stats:?}");

    read();
    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen());
    let frozen = read();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), frozen, "the counter moved while frozen");
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen());
    let deadline = Instant::now() + Duration::from_secs(10);
    while read() <= frozen {
        assert!(Instant::now() < deadline, "the counter did not resume");
        std::thread::sleep(Duration::from_millis(20));
    }

    cgroup
        .set_limits(&Limits {
            memory: Some(80 << 20),
            pids: Some(40),
            ..Limits::default()
        })
        .unwrap();
    assert_eq!(cgroup.stats().memory_limit, Some(80 << 20));
    // Frozen at the end: the run's teardown thaws before it kills.
    cgroup.freeze().unwrap();
    running.cancel.cancel();
    let outcome = running
        .done
        .recv_timeout(Duration::from_secs(20))
        .expect("a frozen sandbox was not torn down");
    assert!(outcome.is_ok(), "{outcome:?}");
}

/// The v2 freezer (`cgroup.freeze`) on a process in a `buildr-*` v2
/// cgroup made here (on a hybrid host, beside the v1 hierarchies).
#[test]
fn v2_cgroup_freezes_through_cgroup_freeze() {
    let test = "v2_cgroup_freezes_through_cgroup_freeze";
    if !need_root(test) {
        return;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(mount) = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
    }) else {
        buildr_testkit::prereq::missing(test, "needs a cgroup v2 hierarchy");
        return;
    };
    let dir = mount.join(format!("buildr-test-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    let result = std::panic::catch_unwind(|| {
        let cgroup = buildr_exec::ContainerCgroup::of_pid(pid).unwrap();
        assert_eq!(cgroup.pids(), [pid]);
        cgroup.freeze().unwrap();
        let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
        assert!(events.contains("frozen 1"), "{events}");
        assert!(cgroup.is_frozen());
        cgroup.thaw().unwrap();
        assert!(!cgroup.is_frozen());
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
