//! Shared harness of the container tests (`run_*.rs`): the root and
//! busybox prerequisites (a loud skip, or a failure under `CI=true`), and a
//! fresh store with the busybox fixture imported, driven through the real
//! binary. Every container still running when the store drops is removed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use buildr_testkit::prereq::missing;
use buildr_testkit::prereq::{need_root, need_tool};
pub use buildr_testkit::workspace;

pub const IMAGE: &str = "buildr-fixtures/busybox:latest";

/// Root and /bin/busybox.
pub fn prerequisites(test: &str) -> bool {
    need_root(test) && need_tool(test, "/bin/busybox")
}

pub fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the busybox fixture's root filesystem as `DIR/busybox-rootfs.tar`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let tar = dir.join("busybox-rootfs.tar");
    let out = Command::new("bash")
        .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
        .arg(&tar)
        .output()
        .unwrap();
    check(&out, "busybox-rootfs.sh");
    tar
}

/// A store with the busybox fixture imported as [`IMAGE`].
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let tar = busybox_tar(env.dir.path());
        env.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        env
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `buildr --root ROOT ARGS...`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_buildr"));
        cmd.env_remove("BUILDR_ROOT")
            .arg("--root")
            .arg(self.root())
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `input` on stdin (written by a thread: a command that
    /// fails early must not leave the writer blocked).
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // A command that stops reading early closes the pipe: not an error here.
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(&self.run(args), args)
    }

    /// stderr of a command that must fail.
    pub fn fails(&self, args: &[&str]) -> String {
        failed(&self.run(args), args)
    }

    /// `container inspect NAME`'s document.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        first_document(&self.ok(&["container", "inspect", name]))
    }
}

/// stdout of `buildr ARGS` that must have succeeded.
pub fn succeeded(out: &Output, args: &[&str]) -> String {
    check(out, &format!("buildr {args:?}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of `buildr ARGS` that must have failed.
pub fn failed(out: &Output, args: &[&str]) -> String {
    assert!(
        !out.status.success(),
        "buildr {args:?} should fail:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first document of an `inspect` array.
pub fn first_document(text: &str) -> serde_json::Value {
    let docs: serde_json::Value = serde_json::from_str(text).unwrap();
    docs[0].clone()
}

/// Removes every container `run` (`buildr ARGS` on some store) lists:
/// detached containers must not outlive a test.
pub fn remove_all_containers(run: impl Fn(&[&str]) -> Output) {
    let ids = run(&["ps", "-aq", "--no-trunc"]);
    for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
        let _ = run(&["rm", "-f", id]);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        remove_all_containers(|args| self.run(args));
    }
}

/// A tmux session running a command in a pty, driven like a user would.
pub struct Tmux {
    session: String,
}

impl Tmux {
    pub fn start(command: &str) -> Tmux {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let session = format!("buildr-attach-{}-{nanos}", std::process::id());
        // `; sleep` keeps the pane (and its last screen) after the exit.
        let script = format!("{command}; echo EXITED=$?; sleep 60");
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "100", "-y", "30"])
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session failed");
        Tmux { session }
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen has a line equal (trimmed) to `line`.
    pub fn wait_line(&self, line: &str) {
        self.wait_for(&format!("{line:?}"), |l| l.trim() == line);
    }

    /// Waits until the screen has a line for which `found` holds; returns
    /// the screen.
    pub fn wait_for(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.lines().any(&found) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never saw {what}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn resize(&self, cols: u32, rows: u32) {
        let status = Command::new("tmux")
            .args(["resize-window", "-t", &self.session])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Types `command` into the attached shell and waits for `output`;
    /// the shell may still be starting, so the command is retyped while
    /// nothing came back.
    pub fn interact(&self, command: &str, output: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.keys(&[command, "Enter"]);
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                if self.screen().lines().any(|l| l.trim() == output) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                Instant::now() < deadline,
                "never saw {output:?}:\n{}",
                self.screen()
            );
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}
