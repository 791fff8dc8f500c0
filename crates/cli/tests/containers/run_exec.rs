//! `buildr exec`, `-i` and `--read-only` on the busybox fixture: exec sees
//! the container's filesystem and processes, gets Docker's capabilities
//! (none for a non-root user), only fds 0-2, the container's hostname, and
//! propagates its exit code; `-i` pipes stdin to `run` and `exec`;
//! `--read-only` makes the root read-only while volumes and tmpfs stay
//! writable. Root and busybox are needed: under CI=true their absence fails
//! the test, otherwise it says loudly that it skips.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::container_common::{Env, IMAGE, Tmux, check, missing, prerequisites};

/// Docker's default capability set as /proc/PID/status prints it.
const DOCKER_CAP_HEX: &str = "00000000a80425fb";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of `field` (e.g. `CapEff`) in a /proc/PID/status text.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
}

#[test]
fn read_only_root_keeps_volumes_and_tmpfs_writable() {
    let test = "read_only_root_keeps_volumes_and_tmpfs_writable";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let host = env.dir.path().join("data");
    let volume = format!("{}:/data", host.display());
    let out = env.run(&[
        "run", "--rm", "--read-only", "-v", &volume, "--mount", "type=tmpfs,target=/scratch",
        IMAGE, "sh", "-c",
        "touch /x; echo root=$?; touch /data/ok; echo volume=$?; touch /scratch/ok; echo tmpfs=$?; grep ' / ' /proc/mounts",
    ]);
    check(&out, "run --read-only");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("root=1"), "root writable: {stdout}");
    assert!(stdout.contains("volume=0"), "volume not writable: {stdout}");
    assert!(stdout.contains("tmpfs=0"), "tmpfs not writable: {stdout}");
    let root_line = stdout.lines().find(|l| l.contains(" / ")).unwrap();
    assert!(
        root_line.contains(" ro,") || root_line.contains(" ro "),
        "{root_line}"
    );
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        host.join("ok").exists(),
        "the volume write did not reach the host"
    );

    // Without the flag, the same write succeeds: the test can fail.
    let out = env.run(&["run", "--rm", IMAGE, "sh", "-c", "touch /x && echo root=$?"]);
    check(&out, "run without --read-only");
    assert!(text(&out.stdout).contains("root=0"));

    // The flag is recorded and shown by inspect.
    let id = env.ok(&["create", "--read-only", IMAGE, "true"]);
    let inspect = env.ok(&["container", "inspect", id.trim()]);
    let doc: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(doc[0]["HostConfig"]["ReadonlyRootfs"], true, "{inspect}");
    let out = env.run(&["start", "-a", id.trim()]);
    check(&out, "start -a of a read-only container");
}

#[test]
fn exec_joins_the_running_container() {
    let test = "exec_joins_the_running_container";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    // Not running yet: exec refuses.
    env.ok(&[
        "create",
        "--name",
        "execd",
        IMAGE,
        "sh",
        "-c",
        "echo data > /from-main; exec sleep 100",
    ]);
    let out = env.run(&["exec", "execd", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["start", "execd"]);

    // The main process's file is visible (retry while it starts).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.run(&["exec", "execd", "cat", "/from-main"]);
        if out.status.success() && text(&out.stdout) == "data\n" {
            break;
        }
        assert!(Instant::now() < deadline, "file never visible: {out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A file written by exec is visible to the main process's filesystem.
    env.ok(&["exec", "execd", "sh", "-c", "echo back > /from-exec"]);
    let out = env.ok(&["exec", "execd", "cat", "/from-exec"]);
    assert_eq!(out, "back\n");

    // Same pid namespace: ps shows the main process, with small pids.
    let ps = env.ok(&["exec", "execd", "ps", "-o", "pid,args"]);
    let sleep = ps
        .lines()
        .find(|l| l.contains("sleep 100"))
        .unwrap_or_else(|| panic!("main process not seen: {ps}"));
    let pid: u32 = sleep.split_whitespace().next().unwrap().parse().unwrap();
    assert!(pid < 10, "not the container's pid namespace: {ps}");

    // Same hostname as the main process.
    let hostname = env.ok(&["exec", "execd", "hostname"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["container", "inspect", "execd"])).unwrap();
    assert_eq!(
        hostname.trim(),
        inspect[0]["Config"]["Hostname"].as_str().unwrap()
    );
    assert!(inspect[0]["State"]["Pid"].as_i64().unwrap() > 1);

    // Exit codes propagate.
    let out = env.run(&["exec", "execd", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let out = env.run(&["exec", "execd", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );

    // Docker's capabilities for root, nothing inherited or ambient; none
    // at all for another user.
    let status = env.ok(&["exec", "execd", "cat", "/proc/self/status"]);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            status_field(&status, field),
            DOCKER_CAP_HEX,
            "{field}: {status}"
        );
    }
    for field in ["CapInh", "CapAmb"] {
        assert_eq!(status_field(&status, field), "0000000000000000", "{field}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
    let status = env.ok(&["exec", "-u", "1000", "execd", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "CapPrm"), "0000000000000000");
    assert!(status_field(&status, "Uid").starts_with("1000"), "{status}");

    // Only 0-2 reach the process (CVE-2024-21626).
    // `; true` keeps sh from exec-ing ls: the listing is of sh itself.
    let fds = env.ok(&["exec", "execd", "sh", "-c", "ls /proc/$$/fd; true"]);
    assert_eq!(
        fds.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2"],
        "{fds}"
    );

    // -e, -w, -u.
    let out = env.ok(&[
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "app",
        "execd",
        "sh",
        "-c",
        "echo $FOO; pwd; id -un",
    ]);
    assert_eq!(out, "bar\n/tmp\napp\n");

    // Stopped again: exec refuses.
    env.ok(&["stop", "-t", "1", "execd"]);
    let out = env.run(&["exec", "execd", "true"]);
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn interactive_stdin_reaches_run_and_exec() {
    let test = "interactive_stdin_reaches_run_and_exec";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let out = env.run_with_input(&["run", "--rm", "-i", IMAGE, "cat"], b"hi\nthere\n");
    check(&out, "run -i cat");
    assert_eq!(text(&out.stdout), "hi\nthere\n");
    // create + start -a -i.
    let id = env.ok(&["create", IMAGE, "sh", "-c", "tr a-z A-Z"]);
    let out = env.run_with_input(&["start", "-a", "-i", id.trim()], b"shout\n");
    check(&out, "start -a -i");
    assert_eq!(text(&out.stdout), "SHOUT\n");
    // Without -i the container's stdin is empty.
    let out = env.run_with_input(&["run", "--rm", IMAGE, "cat"], b"hi\n");
    check(&out, "run cat");
    assert_eq!(text(&out.stdout), "");

    env.ok(&["run", "-d", "--name", "execd", IMAGE, "sleep", "100"]);
    let out = env.run_with_input(&["exec", "-i", "execd", "sh", "-c", "wc -l"], b"1\n2\n3\n");
    check(&out, "exec -i");
    assert_eq!(text(&out.stdout).trim(), "3");
    let out = env.run_with_input(&["exec", "execd", "cat"], b"ignored\n");
    check(&out, "exec cat");
    assert_eq!(text(&out.stdout), "");
}

/// Drives a shell on a pty: arithmetic, `tty`, `stty size` before and after
/// a resize, ctrl-c interrupting `sleep 100`, the exit code.
fn drive_shell(tmux: &Tmux) {
    tmux.wait_for("the prompt", |l| l.starts_with("/ #"));
    tmux.keys(&["echo $((6*7)); tty; stty size", "Enter"]);
    tmux.wait_for("42", |l| l.trim() == "42");
    tmux.wait_for("a pts tty", |l| l.trim().starts_with("/dev/pts/"));
    tmux.wait_for("the initial size", |l| l.trim() == "30 100");
    tmux.resize(120, 40);
    std::thread::sleep(Duration::from_millis(200));
    tmux.keys(&["stty size", "Enter"]);
    tmux.wait_for("the new size", |l| l.trim() == "40 120");
    tmux.keys(&["sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    tmux.keys(&["C-c"]);
    tmux.keys(&["echo status-$?", "Enter"]);
    tmux.wait_for("sleep interrupted by SIGINT", |l| l.trim() == "status-130");
    assert!(interrupted.elapsed() < Duration::from_secs(10));
    tmux.keys(&["exit 3", "Enter"]);
    tmux.wait_for("the exit code", |l| l.trim() == "EXITED=3");
}

#[test]
fn tty_drives_a_shell_in_run_and_exec() {
    let test = "tty_drives_a_shell_in_run_and_exec";
    if !prerequisites(test) {
        return;
    }
    let tmux_present = Command::new("tmux").arg("-V").output().is_ok();
    if !tmux_present && !missing(test, "needs tmux (scripts/install-deps.sh)") {
        return;
    }
    let env = Env::new();
    let buildr = env!("CARGO_BIN_EXE_buildr");
    let root = env.dir.path().join("root");
    let tmux = Tmux::start(&format!(
        "{buildr} --root {} run --rm -it {IMAGE} sh",
        root.display()
    ));
    drive_shell(&tmux);
    drop(tmux);

    env.ok(&["run", "-d", "--name", "execd", IMAGE, "sleep", "100"]);
    let tmux = Tmux::start(&format!(
        "{buildr} --root {} exec -it execd sh",
        root.display()
    ));
    drive_shell(&tmux);
}
