//! Real namespaces, as root, over a busybox rootfs; each fact is asserted
//! from inside the sandbox by busybox commands reading /proc and /sys.
//!
//! Needs root and busybox-static (/bin/busybox). Without them the tests say
//! so loudly and pass; with CI=true they fail.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use buildr_exec::{
    BindMount, Cancel, Change, ChangeKind, Error, ExitStatus, Limits, Network, Outcome, Rootfs,
    RootfsMode, Sandbox, SpawnSpec, Stream, TmpfsMount, diff,
};
use buildr_testkit::prereq::{need_root, need_tool, need_tools};

const INIT: &str = env!("CARGO_BIN_EXE_buildr-sandbox");
const MODES: [RootfsMode; 2] = [RootfsMode::Overlay, RootfsMode::Copy];

/// Sandbox tests run one at a time: they compare host-wide state
/// (processes, cgroups, mounts) before and after.
static SERIAL: Mutex<()> = Mutex::new(());

fn prerequisites() -> Option<MutexGuard<'static, ()>> {
    let test = "sandbox test";
    let ready = need_root(test) && need_tool(test, "/bin/busybox");
    ready.then(|| SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A busybox rootfs (the lower), plus upper and work dirs.
struct Fixture {
    _tmp: tempfile::TempDir,
    lower: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    mode: RootfsMode,
    mounts_before: BTreeSet<String>,
}

/// Host mounts that could be ours: anything naming a state dir, the CLI's
/// scratch dirs or a tempfile dir (fixtures live there). Other programs on
/// the machine mount and unmount things meanwhile; those are ignored.
fn host_mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            ["buildr-exec-", "buildr-sandbox-", "/.tmp"]
                .iter()
                .any(|m| l.contains(m))
        })
        .map(str::to_string)
        .collect()
}

fn busybox_rootfs(lower: &Path) {
    for dir in ["bin", "etc", "tmp", "var/old/deep", "home/app"] {
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
    std::fs::write(
        lower.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        lower.join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\n",
    )
    .unwrap();
    std::fs::write(lower.join("var/old/deep/file"), "old").unwrap();
    std::fs::write(lower.join("tmp/doomed"), "x").unwrap();
    // In a user namespace mapping only root (the rootless run of this
    // binary) uid 1000 does not exist; the home dir stays root's.
    if !rootless() {
        std::os::unix::fs::chown(lower.join("home/app"), Some(1000), Some(1000)).unwrap();
    }
}

/// Whether this test binary runs as root of a user namespace (e.g. under
/// `unshare --user --map-root-user`) rather than as real root. Tests that
/// need cgroups, other uids or privileges over the host then skip loudly:
/// the rest is the rootless subset.
fn rootless() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

fn skip_rootless(what: &str) -> bool {
    if rootless() {
        eprintln!("!!! SKIPPING {what}: needs real root (cgroups or more than one mapped uid) !!!");
        return true;
    }
    false
}

impl Fixture {
    fn new(mode: RootfsMode) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper, work) = (
            tmp.path().join("lower"),
            tmp.path().join("upper"),
            tmp.path().join("work"),
        );
        for dir in [&lower, &upper, &work] {
            std::fs::create_dir_all(dir).unwrap();
        }
        busybox_rootfs(&lower);
        Self {
            _tmp: tmp,
            lower,
            upper,
            work,
            mode,
            mounts_before: host_mounts(),
        }
    }

    fn spec(&self, script: &str) -> SpawnSpec {
        SpawnSpec {
            rootfs: Rootfs {
                lowers: vec![self.lower.clone()],
                upper: self.upper.clone(),
                work: self.work.clone(),
                mode: self.mode,
            },
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            hostname: "probe-host".into(),
            ..SpawnSpec::default()
        }
    }

    fn run_spec(&self, spec: &SpawnSpec) -> (buildr_exec::Result<Outcome>, String, String) {
        let cancel = Cancel::new().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = Sandbox::new()
            .with_init_exe(INIT)
            .run(spec, &cancel, |stream, chunk| match stream {
                Stream::Stdout => out.extend_from_slice(chunk),
                Stream::Stderr => err.extend_from_slice(chunk),
            });
        self.assert_clean();
        (
            result,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// Runs a script that must succeed; returns its stdout.
    fn run_ok(&self, spec: &SpawnSpec) -> String {
        let (result, out, err) = self.run_spec(spec);
        let outcome =
            result.unwrap_or_else(|e| panic!("{:?} run failed: {}", self.mode, chain(&e)));
        assert!(
            outcome.success(),
            "{:?}: {} stdout={out} stderr={err}",
            self.mode,
            outcome.describe()
        );
        out
    }

    /// Nothing of the run is left on the host.
    fn assert_clean(&self) {
        assert_eq!(host_mounts(), self.mounts_before, "host mounts changed");
        let ours = format!("buildr-{}-", std::process::id());
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            for entry in walk_cgroups(Path::new(root)) {
                assert!(!entry.contains(&ours), "cgroup left behind: {entry}");
            }
        }
        let state: Vec<_> = [std::env::temp_dir(), buildr_exec::default_state_root()]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).unwrap())
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("buildr-exec-{}-", std::process::id()))
            })
            .map(|e| e.path())
            .collect();
        assert!(state.is_empty(), "state dirs left behind: {state:?}");
        if self.mode == RootfsMode::Copy {
            assert_eq!(
                std::fs::read_dir(&self.work).unwrap().count(),
                0,
                "copy snapshot not emptied"
            );
        }
    }
}

fn walk_cgroups(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            found.push(entry.path().display().to_string());
            if found.len() < 10_000 {
                found.extend(walk_cgroups(&entry.path()));
            }
        }
    }
    found
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

fn fact<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("probe did not report {key}: {out}"))
        .trim()
}

/// Runs `ls -l /proc/self/fd` as the command itself (no shell in between,
/// whose redirections hold descriptors of their own): only 0-2 plus the
/// directory ls is reading may be open.
fn assert_only_stdio(fixture: &Fixture, user: &str) {
    let mut spec = fixture.spec("");
    spec.argv = vec!["/bin/ls".into(), "-l".into(), "/proc/self/fd".into()];
    spec.user = user.into();
    let out = fixture.run_ok(&spec);
    // Lines look like "lr-x------ 1 root root 64 Nov 22 23:13 0 -> /dev/null";
    // ls's own directory descriptor may show without a target (closed by then).
    let fds: Vec<(&str, Option<&str>)> = out
        .lines()
        .filter(|l| l.starts_with('l'))
        .map(|l| match l.split_once(" -> ") {
            Some((left, target)) => (left.rsplit(' ').next().unwrap_or(""), Some(target)),
            None => (l.rsplit(' ').next().unwrap_or(""), None),
        })
        .collect();
    let numbers: Vec<&str> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        ["0", "1", "2", "3"],
        "{:?} user {user:?}: {out}",
        fixture.mode
    );
    assert!(
        fds[3]
            .1
            .is_none_or(|t| t.starts_with("/proc/") && t.ends_with("/fd")),
        "fd 3 is not ls's own: {out}"
    );
}

const PROBE: &str = r#"
echo "pid=$$"
echo "init=$(cat /proc/1/cmdline | tr '\0' ' ')"
echo "pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
echo "hostname=$(hostname)"
echo "uid=$(id -u) gid=$(id -g)"
echo "groups=$(id -G)"
echo "umask=$(umask)"
grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/$$/status | tr -d '\t' | sed 's/:/=/'
echo "netdevs=$(ls /sys/class/net | tr '\n' ' ')"
echo "loflags=$(cat /sys/class/net/lo/flags)"
echo "nofile=$(ulimit -n)"
echo "mounts=$(cut -d' ' -f5 /proc/self/mountinfo | sort | tr '\n' ' ')"
echo "home=$HOME"
echo "cwd=$(pwd)"
echo "resolv=$(cat /etc/resolv.conf | head -1)"
echo "etc_hostname=$(cat /etc/hostname)"
echo "nnp=$(grep NoNewPrivs /proc/$$/status | tr -d '\t' | cut -d: -f2)"
if echo x > /proc/sysrq-trigger 2>/dev/null; then echo sysrq=writable; else echo sysrq=blocked; fi
if touch /proc/sys/kernel/hostname 2>/dev/null && echo evil > /proc/sys/kernel/hostname 2>/dev/null; then echo procsys=writable; else echo procsys=blocked; fi
if [ -s /proc/kcore ]; then echo kcore=visible; else echo kcore=masked; fi
ls -l /dev | awk '{print $NF}' | tr '\n' ' ' | sed 's/^/devs=/'; echo
"#;

#[test]
fn probe_sees_an_isolated_world() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let out = fixture.run_ok(&fixture.spec(PROBE));
        // The command is pid 2 under our init (pid 1); no host pid is visible.
        assert_eq!(fact(&out, "pid"), "2", "{out}");
        assert!(
            fact(&out, "init").contains("/proc/self/exe") || fact(&out, "init").contains("buildr"),
            "{out}"
        );
        let pids: Vec<u32> = fact(&out, "pids")
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(
            pids.iter().all(|p| *p < 20) && pids.contains(&1) && pids.contains(&2),
            "{out}"
        );
        assert_eq!(fact(&out, "hostname"), "probe-host");
        assert_eq!(fact(&out, "etc_hostname"), "probe-host");
        assert!(
            fact(&out, "resolv").starts_with("nameserver")
                || fact(&out, "resolv").starts_with("search")
        );
        assert_only_stdio(&fixture, "");
        // Exec'd directly (a shell would change them): no signal ignored or
        // blocked, though the init's Rust runtime ignores SIGPIPE.
        let mut spec = fixture.spec("");
        spec.argv = ["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]
            .map(String::from)
            .to_vec();
        let sigs = fixture
            .run_ok(&spec)
            .replace([':', '\t'], "=")
            .replace("==", "=");
        assert_eq!(
            fact(&sigs, "SigIgn"),
            "0000000000000000",
            "{mode:?}: ignored signals"
        );
        assert_eq!(
            fact(&sigs, "SigBlk"),
            "0000000000000000",
            "{mode:?}: blocked signals"
        );
        assert_eq!(fact(&out, "uid"), "0 gid=0");
        assert_eq!(fact(&out, "umask"), "0022");
        assert_eq!(fact(&out, "CapInh"), "0000000000000000");
        assert_eq!(fact(&out, "CapAmb"), "0000000000000000");
        assert_eq!(
            fact(&out, "CapBnd"),
            "00000000a80425fb",
            "docker's 14 capabilities"
        );
        assert_eq!(fact(&out, "CapEff"), "00000000a80425fb");
        assert_eq!(fact(&out, "CapPrm"), "00000000a80425fb");
        assert_eq!(
            u64::from_str_radix("a80425fb", 16).unwrap(),
            buildr_exec::DOCKER_CAPS
        );
        assert_eq!(fact(&out, "netdevs"), "lo", "network none has only lo");
        assert_eq!(
            fact(&out, "loflags"),
            "0x9",
            "lo is up (IFF_UP | IFF_LOOPBACK)"
        );
        assert_eq!(fact(&out, "home"), "/root");
        assert_eq!(fact(&out, "cwd"), "/");
        assert_eq!(fact(&out, "nnp"), "0");
        assert_eq!(fact(&out, "sysrq"), "blocked");
        assert_eq!(fact(&out, "procsys"), "blocked");
        assert_eq!(fact(&out, "kcore"), "masked");
        let mounts: BTreeSet<&str> = fact(&out, "mounts").split_whitespace().collect();
        let allowed: BTreeSet<&str> = [
            "/",
            "/proc",
            "/sys",
            "/dev",
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/hostname",
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap",
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]
        .into();
        assert!(
            mounts.is_subset(&allowed),
            "{mode:?}: unexpected mounts {:?}",
            mounts.difference(&allowed)
        );
        for must in [
            "/",
            "/proc",
            "/sys",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/etc/hosts",
        ] {
            assert!(mounts.contains(must), "{mode:?}: {must} not mounted");
        }
        let devs = fact(&out, "devs");
        for dev in [
            "null", "zero", "full", "random", "urandom", "tty", "pts/ptmx", "pts", "shm", "mqueue",
        ] {
            assert!(
                devs.split_whitespace().any(|d| d == dev),
                "{mode:?}: /dev lacks {dev}: {devs}"
            );
        }
    }
}

#[test]
fn user_resolved_from_the_image_with_supplementary_groups() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if skip_rootless("the USER test") {
        return;
    }
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let mut spec = fixture.spec(PROBE);
        spec.user = "app".into();
        spec.cwd = "/home/app/work".into();
        spec.no_new_privs = true;
        spec.rlimits = vec![buildr_exec::Rlimit {
            resource: buildr_exec::RlimitResource::Nofile,
            soft: 123,
            hard: 456,
        }];
        let out = fixture.run_ok(&spec);
        assert_eq!(fact(&out, "nofile"), "123");
        assert_eq!(fact(&out, "uid"), "1000 gid=1000");
        assert_eq!(fact(&out, "groups"), "1000 10");
        assert_eq!(fact(&out, "home"), "/home/app");
        assert_eq!(fact(&out, "cwd"), "/home/app/work");
        assert_eq!(fact(&out, "CapEff"), "0000000000000000");
        assert_eq!(fact(&out, "CapBnd"), "00000000a80425fb");
        assert_eq!(fact(&out, "nnp"), "1");

        spec.user = "4242:77".into();
        spec.cwd = "/".into();
        let out = fixture.run_ok(&spec);
        assert_eq!(fact(&out, "uid"), "4242 gid=77");
        assert_eq!(fact(&out, "home"), "/");

        spec.user = "nobody".into();
        let (result, _, _) = fixture.run_spec(&spec);
        let err = result.unwrap_err();
        assert!(
            chain(&err).contains("unable to find user nobody"),
            "{}",
            chain(&err)
        );
    }
}

/// The sandbox's /dev nodes are its own: root in a step that chmods or
/// touches /dev/null (or zero, tty) changes nothing on the host. They used
/// to be binds of the host's nodes, the very host inodes (seen: a build left
/// the host's /dev/null at 0644, and every unprivileged writer failed).
#[test]
fn device_nodes_are_the_sandboxs_own() {
    use std::os::unix::fs::MetadataExt;
    let Some(_serial) = prerequisites() else {
        return;
    };
    let devices = ["/dev/null", "/dev/zero", "/dev/tty"];
    let before: Vec<(u32, i64)> = devices
        .iter()
        .map(|d| {
            let meta = std::fs::metadata(d).unwrap();
            (meta.mode(), meta.mtime())
        })
        .collect();
    for mode in MODES {
        let fixture = Fixture::new(mode);
        // In a user namespace (the rootless re-run) the chmods fail: fine.
        let script = "for d in null zero tty; do chmod 600 /dev/$d 2>/dev/null; \
                      touch -d 2001-01-01 /dev/$d 2>/dev/null; done; \
                      echo still > /dev/null && head -c 4 /dev/zero | wc -c";
        let out = fixture.run_ok(&fixture.spec(script));
        assert_eq!(out.trim(), "4", "{mode:?}: {out}");
    }
    let mut changed = Vec::new();
    for (device, (mode, mtime)) in devices.iter().zip(&before) {
        let meta = std::fs::metadata(device).unwrap();
        if (meta.mode(), meta.mtime()) != (*mode, *mtime) {
            changed.push(format!(
                "{device}: mode {:o} -> {:o}, mtime {mtime} -> {}",
                mode,
                meta.mode(),
                meta.mtime()
            ));
            // Put the host right before failing, so one bad run does not
            // break every later test on the machine.
            let _ = std::fs::set_permissions(
                device,
                std::os::unix::fs::PermissionsExt::from_mode(*mode & 0o7777),
            );
        }
    }
    assert!(
        changed.is_empty(),
        "the sandbox changed host devices: {changed:?}"
    );
}

#[test]
fn upper_holds_exactly_the_changes() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let script = "echo new > /created && echo more >> /etc/passwd && rm /tmp/doomed \
                      && mkdir -p /home/keep && rm -r /home && mkdir -p /home/fresh \
                      && rm -r /var/old && mkdir -p /opt/x && echo hi > /etc/motd && cat /etc/hosts >/dev/null";
        fixture.run_ok(&fixture.spec(script));
        let got = diff(std::slice::from_ref(&fixture.lower), &fixture.upper).unwrap();
        let change = |p: &str, kind| Change {
            path: p.into(),
            kind,
        };
        let want = vec![
            change("created", ChangeKind::Added),
            change("etc/motd", ChangeKind::Added),
            change("etc/passwd", ChangeKind::Modified),
            change("home/app", ChangeKind::Deleted),
            change("home/fresh", ChangeKind::Added),
            change("opt", ChangeKind::Added),
            change("opt/x", ChangeKind::Added),
            change("tmp/doomed", ChangeKind::Deleted),
            change("var/old", ChangeKind::Deleted),
        ];
        assert_eq!(got, want, "{mode:?}");
        for name in ["resolv.conf", "hosts", "hostname"] {
            assert!(
                !fixture.upper.join("etc").join(name).exists(),
                "{mode:?}: etc/{name} in the diff"
            );
        }
        assert!(
            std::fs::read_to_string(fixture.upper.join("etc/passwd"))
                .unwrap()
                .ends_with("more\n")
        );

        // A command that touches nothing leaves an empty upper dir, even
        // though /etc/hosts and friends had to be created as mountpoints.
        let fixture = Fixture::new(mode);
        fixture.run_ok(&fixture.spec("cat /etc/hosts /etc/resolv.conf /etc/hostname > /dev/null"));
        let left: Vec<_> = std::fs::read_dir(&fixture.upper)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{mode:?}: upper not empty: {left:?}");
    }
}

fn sleepers() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| c.starts_with(b"sleep\x00713713"))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn a_background_daemon_does_not_outlive_the_step() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let started = Instant::now();
        let out = fixture.run_ok(
            &fixture.spec("sleep 713713 & sleep 713713 </dev/null >/dev/null 2>&1 & echo forked"),
        );
        assert_eq!(out.trim(), "forked");
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(sleepers(), 0, "{mode:?}: the daemon survived");
    }
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let cases = [
            ("exit 0", ExitStatus::Code(0)),
            ("exit 7", ExitStatus::Code(7)),
            ("false", ExitStatus::Code(1)),
            ("kill -KILL $$", ExitStatus::Signal(9)),
            ("kill -SEGV $$", ExitStatus::Signal(11)),
            ("kill -TERM $$", ExitStatus::Signal(15)),
        ];
        for (script, want) in cases {
            let (result, _, err) = fixture.run_spec(&fixture.spec(script));
            let outcome = result.unwrap();
            assert_eq!(outcome.status, want, "{mode:?} {script}: {err}");
            assert!(!outcome.oom_killed);
        }
        let mut spec = fixture.spec("");
        spec.argv = vec!["/no/such/program".into()];
        let err = fixture.run_spec(&spec).0.unwrap_err();
        assert!(
            matches!(err, Error::Setup(_)) && chain(&err).contains("/no/such/program"),
            "{}",
            chain(&err)
        );
        spec.argv = vec!["no-such-program".into()];
        let err = fixture.run_spec(&spec).0.unwrap_err();
        assert!(
            chain(&err).contains("executable file not found in $PATH"),
            "{}",
            chain(&err)
        );
    }
}

#[test]
fn memory_over_the_limit_is_reported_as_oom() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if skip_rootless("the OOM test") {
        return;
    }
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let mut spec = fixture.spec("dd if=/dev/zero of=/dev/null bs=256M count=1; echo survived");
        spec.limits = Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        };
        let (result, out, err) = fixture.run_spec(&spec);
        let outcome = result.unwrap();
        assert!(
            outcome.oom_killed,
            "{mode:?}: not reported as OOM: {outcome:?} {out} {err}"
        );
        assert_eq!(outcome.describe(), "killed: out of memory, limit 32 MiB");
        assert!(!outcome.success());
    }
}

#[test]
fn a_fork_bomb_under_a_pids_limit_fails_cleanly() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if skip_rootless("the pids-limit test") {
        return;
    }
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let mut spec =
            fixture.spec("i=0; while [ $i -lt 200 ]; do sleep 713713 & i=$((i+1)); done; wait");
        spec.limits = Limits {
            pids: Some(32),
            cpus: Some(0.5),
            ..Limits::default()
        };
        spec.timeout = Some(Duration::from_secs(20));
        let started = Instant::now();
        let (result, _, err) = fixture.run_spec(&spec);
        let outcome = result.unwrap();
        assert!(
            err.contains("fork"),
            "{mode:?}: the shell should fail to fork: {err}"
        );
        assert!(!outcome.success());
        assert!(
            !outcome.timed_out,
            "{mode:?}: the bomb did not end by itself"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(sleepers(), 0);
    }
}

/// Directory descriptors leaked into the launcher (not close-on-exec),
/// numbered 3.. as in CVE-2024-21626.
fn leak_dir_fds() -> Vec<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    (0..12)
        .map(|i| {
            let dir = if i % 2 == 0 { "/" } else { "/sys/fs/cgroup" };
            open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
        })
        .collect()
}

#[test]
fn leaked_fds_and_the_host_binary_are_out_of_reach() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let leaked = leak_dir_fds();
    assert!(leaked.iter().any(|fd| fd.as_raw_fd() < 64));
    let binary_before = std::fs::read(INIT).unwrap();
    for mode in MODES {
        let fixture = Fixture::new(mode);
        for n in 3..64 {
            let mut spec = fixture.spec("pwd; ls /");
            spec.cwd = format!("/proc/self/fd/{n}");
            let (result, out, _) = fixture.run_spec(&spec);
            assert!(
                result.is_err(),
                "{mode:?}: cwd /proc/self/fd/{n} was accepted: {out}"
            );
        }
        let attack = r#"
            for target in /proc/1/exe /proc/2/exe; do
              if echo pwned > $target 2>/dev/null; then echo "wrote=$target"; fi
              if cat $target > /dev/null 2>&1; then echo "read=$target"; fi
            done
            ls -l /proc/1/ 2>&1 | grep -q exe && echo listed
                        echo "initfds=$(ls /proc/1/fd 2>&1 | tr '\n' ' ')"
        "#;
        let users: &[&str] = if rootless() { &[""] } else { &["", "app"] };
        for &user in users {
            let mut spec = fixture.spec(attack);
            spec.user = user.into();
            let out = fixture.run_ok(&spec);
            assert!(!out.contains("wrote="), "{mode:?} user {user:?}: {out}");
            assert!(
                !out.contains("read=/proc/1/exe"),
                "{mode:?} user {user:?}: {out}"
            );
            assert_only_stdio(&fixture, user);
        }
    }
    assert!(
        std::fs::read(INIT).unwrap() == binary_before,
        "the host init binary changed"
    );
    drop(leaked);
}

#[test]
fn binds_tmpfs_and_network_choices() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("input"), "from host").unwrap();
        let rw = tempfile::tempdir().unwrap();
        let mut spec = fixture.spec(
            "cat /mnt/ro/input; if echo x > /mnt/ro/x 2>/dev/null; then echo ro-writable; fi; \
             echo out > /mnt/rw/result; echo t > /scratch/t; grep -q ' /scratch ' /proc/self/mountinfo && echo tmpfs-ok; \
             ls /sys/class/net | tr '\\n' ' '",
        );
        spec.binds = vec![
            BindMount {
                src: host.path().to_path_buf(),
                dst: "/mnt/ro".into(),
                readonly: true,
                subpath: None,
            },
            BindMount {
                src: rw.path().to_path_buf(),
                dst: "/mnt/rw".into(),
                readonly: false,
                subpath: None,
            },
        ];
        spec.tmpfs = vec![TmpfsMount {
            dst: "/scratch".into(),
            size: Some(1 << 20),
        }];
        spec.network = Network::Host;
        let out = fixture.run_ok(&spec);
        assert!(out.starts_with("from host"), "{out}");
        assert!(!out.contains("ro-writable"), "{out}");
        assert!(out.contains("tmpfs-ok"), "{out}");
        assert!(
            out.split_whitespace().count() > 3,
            "host network shows host devices: {out}"
        );
        assert_eq!(
            std::fs::read_to_string(rw.path().join("result")).unwrap(),
            "out\n"
        );
        // Mountpoints made for binds and tmpfs are not part of the diff.
        let left: Vec<_> = std::fs::read_dir(&fixture.upper)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{mode:?}: upper not empty: {left:?}");
    }
}

#[test]
fn cancel_kills_the_whole_tree() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let spec = fixture.spec("sleep 713713 & sleep 713713");
        let cancel = Cancel::new().unwrap();
        let trigger = cancel.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            trigger.cancel();
        });
        let started = Instant::now();
        let outcome = Sandbox::new()
            .with_init_exe(INIT)
            .run(&spec, &cancel, |_, _| {})
            .unwrap();
        killer.join().unwrap();
        assert!(outcome.cancelled && !outcome.success(), "{outcome:?}");
        assert_eq!(outcome.describe(), "killed: cancelled");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(sleepers(), 0);
        fixture.assert_clean();

        let mut spec = fixture.spec("sleep 713713");
        spec.timeout = Some(Duration::from_millis(300));
        let outcome = Sandbox::new()
            .with_init_exe(INIT)
            .run(&spec, &cancel_never(), |_, _| {})
            .unwrap();
        assert!(outcome.timed_out, "{outcome:?}");
        assert_eq!(sleepers(), 0);
        fixture.assert_clean();
    }
}

fn cancel_never() -> Cancel {
    Cancel::new().unwrap()
}

#[test]
fn a_panicking_output_callback_leaves_nothing_behind() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if skip_rootless("the panicking-callback test (uses a cgroup)") {
        return;
    }
    for mode in MODES {
        let fixture = Fixture::new(mode);
        let mut spec = fixture.spec("sleep 713713 & echo boom; sleep 713713");
        spec.limits = Limits {
            pids: Some(100),
            ..Limits::default()
        };
        let result = std::panic::catch_unwind(|| {
            let cancel = Cancel::new().unwrap();
            Sandbox::new()
                .with_init_exe(INIT)
                .run(&spec, &cancel, |_, _| panic!("callback panicked"))
        });
        assert!(result.is_err());
        assert_eq!(sleepers(), 0);
        fixture.assert_clean();
    }
}

#[test]
fn output_is_streamed_as_it_arrives() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let fixture = Fixture::new(RootfsMode::Overlay);
    let spec = fixture.spec("echo first; sleep 1; echo second >&2");
    let started = Instant::now();
    let mut seen = Vec::new();
    let cancel = Cancel::new().unwrap();
    Sandbox::new()
        .with_init_exe(INIT)
        .run(&spec, &cancel, |stream, chunk| {
            seen.push((stream, started.elapsed(), chunk.to_vec()))
        })
        .unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, Stream::Stdout);
    assert_eq!(seen[1].0, Stream::Stderr);
    assert!(
        seen[1].1 - seen[0].1 > Duration::from_millis(800),
        "first chunk arrived late: {seen:?}"
    );
}

/// The rootless subset: the CLI (same library) run (a) as root of a user
/// namespace made by `unshare --user --map-root-user`, and (b) as an
/// unprivileged user (65534) over a rootfs it owns, where the sandbox makes
/// its own user namespace mapping the caller to 0. No cgroup limits here.
#[test]
fn rootless_subset() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if skip_rootless("the nested rootless runs") {
        return;
    }
    if !need_tools("rootless_subset", &["unshare", "setpriv"]) {
        return;
    }
    let script = "echo \"pid=$$\"; echo \"uid=$(id -u)\"; echo \"hostname=$(hostname)\"; \
        grep -E '^Cap(Bnd|Inh|Amb)' /proc/$$/status | tr -d '\\t' | sed 's/:/=/'; \
        echo \"netdevs=$(ls /sys/class/net | tr '\\n' ' ')\"; \
        echo \"pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' ')\"; \
        sleep 713713 & echo new > /created; rm /tmp/doomed";
    for (how, owner) in [("userns-root", 0u32), ("unprivileged", 65534)] {
        for copy in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let (lower, upper, work) = (
                tmp.path().join("lower"),
                tmp.path().join("upper"),
                tmp.path().join("work"),
            );
            busybox_rootfs(&lower);
            for dir in [&upper, &work] {
                std::fs::create_dir(dir).unwrap();
            }
            let chown = std::process::Command::new("chown")
                .args(["-R", &format!("{owner}:{owner}")])
                .arg(tmp.path())
                .status()
                .unwrap();
            assert!(chown.success());
            std::fs::set_permissions(
                tmp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            let mut cmd = match how {
                "userns-root" => {
                    let mut c = std::process::Command::new("unshare");
                    c.args(["--user", "--map-root-user"]);
                    c
                }
                _ => {
                    let mut c = std::process::Command::new("setpriv");
                    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
                    c
                }
            };
            cmd.arg(INIT);
            if copy {
                cmd.arg("--copy");
            }
            cmd.arg("--upper")
                .arg(&upper)
                .arg("--work")
                .arg(&work)
                .arg(&lower);
            cmd.args(["--", "/bin/sh", "-c", script]).current_dir("/");
            let before = host_mounts();
            let output = cmd.output().unwrap();
            let out = String::from_utf8_lossy(&output.stdout).into_owned();
            let label = format!("{how} copy={copy}");
            assert!(
                output.status.success(),
                "{label}: {out} {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(fact(&out, "pid"), "2", "{label}");
            assert_eq!(fact(&out, "uid"), "0", "{label}");
            assert_eq!(fact(&out, "hostname"), "buildr", "{label}");
            assert_eq!(fact(&out, "CapBnd"), "00000000a80425fb", "{label}");
            assert_eq!(fact(&out, "CapInh"), "0000000000000000", "{label}");
            assert_eq!(fact(&out, "CapAmb"), "0000000000000000", "{label}");
            assert_eq!(fact(&out, "netdevs"), "lo", "{label}");
            assert!(
                fact(&out, "pids")
                    .split_whitespace()
                    .all(|p| p.parse::<u32>().unwrap() < 20),
                "{label}: {out}"
            );
            assert_eq!(sleepers(), 0, "{label}: daemon survived");
            assert_eq!(host_mounts(), before, "{label}");
            let got = diff(std::slice::from_ref(&lower), &upper).unwrap();
            let want = vec![
                Change {
                    path: "created".into(),
                    kind: ChangeKind::Added,
                },
                Change {
                    path: "tmp/doomed".into(),
                    kind: ChangeKind::Deleted,
                },
            ];
            assert_eq!(got, want, "{label}");
        }
    }
    // Host network in a user namespace: sysfs cannot be mounted fresh, the
    // host's is bound, and every mount under it must be read-only.
    let tmp = tempfile::tempdir().unwrap();
    busybox_rootfs(tmp.path());
    let output = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", INIT, "--net-host"])
        .arg(tmp.path())
        .args([
            "--",
            "/bin/sh",
            "-c",
            "grep ' /sys' /proc/self/mountinfo | cut -d' ' -f5,6",
        ])
        .current_dir("/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.lines().count() >= 1, "{out}");
    for line in out.lines() {
        assert!(
            line.contains(" ro"),
            "writable sysfs mount in a rootless sandbox: {line}"
        );
    }
}

#[test]
fn init_forwards_signals_and_reaps_orphans() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let fixture = Fixture::new(RootfsMode::Overlay);
    let spec = fixture.spec("trap 'echo got-term; exit 3' TERM; echo ready; sleep 713713 & wait");
    let cancel = Cancel::new().unwrap();
    let control = cancel.clone();
    let mut out = String::new();
    let mut sent = false;
    let outcome = Sandbox::new()
        .with_init_exe(INIT)
        .run(&spec, &cancel, |_, chunk| {
            out.push_str(&String::from_utf8_lossy(chunk));
            // Once: a second TERM landing inside the trap made the shell
            // run it again and again under load.
            if out.contains("ready") && !sent {
                sent = true;
                control.send_signal(libc::SIGTERM);
            }
        })
        .unwrap();
    assert_eq!(outcome.status, ExitStatus::Code(3), "{out}");
    assert!(out.contains("got-term"), "{out}");
    assert!(!outcome.cancelled);
    assert_eq!(sleepers(), 0);
    fixture.assert_clean();

    // A double-forked child is reparented to our init, which reaps it.
    let out = fixture.run_ok(&fixture.spec(
        "(sleep 0.1 &); sleep 1; echo \"zombies=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)\"",
    ));
    assert_eq!(fact(&out, "zombies"), "0", "{out}");
}

/// Rootless with subordinate ids: an unprivileged caller (65534) with
/// entries in /etc/subuid and /etc/subgid gets them mapped by newuidmap and
/// newgidmap, so a non-root `USER` of the image works. The entries are
/// bind-mounted over the real files in a private mount namespace, so the
/// host's configuration is neither needed nor touched.
#[test]
fn rootless_with_subordinate_ids() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if skip_rootless("the subordinate-id test") {
        return;
    }
    let tools = [
        "/usr/bin/newuidmap",
        "/usr/bin/newgidmap",
        "/etc/subuid",
        "/etc/subgid",
    ];
    if !need_tools("rootless_with_subordinate_ids", &tools) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    busybox_rootfs(&lower);
    let (subuid, subgid) = (tmp.path().join("subuid"), tmp.path().join("subgid"));
    std::fs::write(&subuid, "nobody:200000:65536\n").unwrap();
    std::fs::write(&subgid, "nobody:200000:65536\n").unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let script = "mount --bind \"$1\" /etc/subuid && mount --bind \"$2\" /etc/subgid && shift 2 && exec \"$@\"";
    let output = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&subuid)
        .arg(&subgid)
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            INIT,
            "--user",
            "app",
        ])
        .arg(&lower)
        .args([
            "--",
            "/bin/sh",
            "-c",
            "echo \"uid=$(id -u) gid=$(id -g)\"; echo \"groups=$(id -G)\"; cat /proc/self/uid_map",
        ])
        .current_dir("/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(fact(&out, "uid"), "1000 gid=1000", "{out}");
    assert_eq!(fact(&out, "groups"), "1000 10", "{out}");
    assert!(
        out.contains("200000"),
        "subordinate range not mapped: {out}"
    );
    let left: Vec<_> = std::fs::read_dir(buildr_exec::default_state_root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("buildr-sandbox-")
        })
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "the unprivileged CLI left scratch dirs: {left:?}"
    );
}

#[test]
fn a_second_run_continues_from_the_upper_dir() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for mode in MODES {
        let fixture = Fixture::new(mode);
        fixture.run_ok(&fixture.spec("echo a > /f1 && rm /tmp/doomed"));
        let out = fixture.run_ok(
            &fixture.spec("cat /f1 && test ! -e /tmp/doomed && echo b > /f2 && rm /f1 && echo ok"),
        );
        assert_eq!(out, "a\nok\n", "{mode:?}");
        let got = diff(std::slice::from_ref(&fixture.lower), &fixture.upper).unwrap();
        let want = vec![
            Change {
                path: "f2".into(),
                kind: ChangeKind::Added,
            },
            Change {
                path: "tmp/doomed".into(),
                kind: ChangeKind::Deleted,
            },
        ];
        assert_eq!(got, want, "{mode:?}");
    }
}

/// Many layers: absolute lowerdir options would overflow the kernel's page
/// of mount data; the init mounts with paths relative to their common dir
/// (short per-layer names, as snapshotters use, under a long common prefix).
#[test]
fn many_lower_layers_mount() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let fixture = Fixture::new(RootfsMode::Overlay);
    let base = fixture
        .lower
        .parent()
        .unwrap()
        .join("x".repeat(100))
        .join("y".repeat(100));
    let mut lowers = Vec::new();
    for i in 0..80 {
        let layer = base.join(i.to_string());
        std::fs::create_dir_all(layer.join("layers")).unwrap();
        std::fs::write(layer.join("layers").join(i.to_string()), "").unwrap();
        lowers.push(layer);
    }
    busybox_rootfs(&base.join("busybox"));
    lowers.push(base.join("busybox"));
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096, "the test must exceed a page: {total}");
    let mut spec = fixture.spec("ls /layers | wc -l");
    spec.rootfs.lowers = lowers;
    spec.rootfs.upper = base.join("upper");
    spec.rootfs.work = base.join("work");
    for dir in [&spec.rootfs.upper, &spec.rootfs.work] {
        std::fs::create_dir(dir).unwrap();
    }
    assert_eq!(fixture.run_ok(&spec).trim(), "80");
}

/// The rootless subset of this very suite: re-runs this test binary as an
/// unprivileged user (65534) inside `unshare --user --map-root-user`, where
/// the sandbox has no real root; only the tests that need cgroups or more
/// than one uid skip (loudly), every other one must pass.
#[test]
fn rootless_run_of_this_suite() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    if rootless() {
        return; // already the rootless run
    }
    let me = std::env::current_exe().unwrap();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user"])
        .arg(&me)
        .args([
            "--test-threads",
            "1",
            "--nocapture",
            "--skip",
            "rootless_run_of_this_suite",
        ])
        .env_remove("CI")
        .current_dir("/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "rootless run failed:\n{out}\n{err}"
    );
    let allowed = [
        "the USER test",
        "the OOM test",
        "the pids-limit test",
        "the panicking-callback test (uses a cgroup)",
        "the nested rootless runs",
        "the subordinate-id test",
    ];
    let skipped: Vec<&str> = err
        .lines()
        .chain(out.lines())
        .filter_map(|l| l.strip_prefix("!!! SKIPPING ")?.split(':').next())
        .collect();
    for what in &skipped {
        assert!(
            allowed.contains(what),
            "unexpected skip in the rootless run: {what}\n{err}"
        );
    }
    let passed: usize = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("test result: ok. ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no test summary:\n{out}"));
    assert!(
        passed - skipped.len() >= 10,
        "too few tests really ran rootless: {passed} passed, {} skipped",
        skipped.len()
    );
}
