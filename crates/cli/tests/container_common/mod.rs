//! Shared harness of the container tests (`run_*.rs`): the root and
//! busybox prerequisites (a loud skip, or a failure under `CI=true`), and a
//! fresh store with the busybox fixture imported, driven through the real
//! binary. Every container still running when the store drops is removed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const IMAGE: &str = "buildr-fixtures/busybox:latest";

/// Reports a missing prerequisite: a panic under `CI=true`, else a loud
/// skip (`false`).
pub fn missing(test: &str, what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: prerequisite missing under CI=true: {what}");
    }
    eprintln!("\n!!! SKIPPING {test}: {what} !!!\n");
    false
}

/// Root and /bin/busybox.
pub fn prerequisites(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return missing(test, "needs root");
    }
    Path::new("/bin/busybox").exists()
        || missing(test, "needs /bin/busybox (scripts/install-deps.sh)")
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
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

/// A store with the busybox fixture imported as [`IMAGE`].
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let tar = env.dir.path().join("busybox-rootfs.tar");
        let out = Command::new("bash")
            .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
            .arg(&tar)
            .output()
            .unwrap();
        check(&out, "busybox-rootfs.sh");
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

    /// stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        check(&out, &format!("buildr {args:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// stderr of a command that must fail.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "buildr {args:?} should fail:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `container inspect NAME`'s document.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.ok(&["container", "inspect", name]);
        let docs: serde_json::Value = serde_json::from_str(&text).unwrap();
        docs[0].clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Detached containers must not outlive the test.
        let ids = self.run(&["ps", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
    }
}
