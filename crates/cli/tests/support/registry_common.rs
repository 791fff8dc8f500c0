//! One CI machine of the registry tests: its own store, docker config dir
//! and XDG config dir (the registry itself is `buildr_testkit::registry`).

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// One machine of a test: its own store, docker config dir and an empty
/// XDG config dir (no registry config file from the host).
pub struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    pub fn new() -> Machine {
        let m = Machine {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(m.path("xdg")).unwrap();
        m
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `buildr` binary on this machine's store and configs.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_buildr"));
        cmd.env_remove("BUILDR_ROOT")
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .arg("--root")
            .arg(self.path("root"))
            .args(args);
        cmd
    }

    /// Runs buildr without asserting.
    pub fn try_buildr(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }
}
