//! The reference builders the comparison tests call through a docker
//! client: the modern one, dockerd 26.1 with BuildKit 0.13 (what "swap it
//! in for BuildKit" means today), set up by `scripts/modern-buildkit.sh`
//! from the shared bench scripts; and any other daemon a test names (the
//! BuildKit 0.8 of Debian's dockerd 20.10).
//!
//! [`modern`] finds the modern daemon, or starts it with
//! `scripts/modern-buildkit.sh ensure`, and returns a [`Docker`] handle
//! (`$MODERN_STATE/bin/docker`, default `/tmp/anchors/modern/bin/docker`,
//! with `MODERN_DOCKER_HOST`). [`Docker::load_base`] gives the daemon the
//! very busybox image buildr's tests build FROM, so both builders start
//! from the same bytes. Under `CI=true` a missing prerequisite fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::build_common::{Env, workspace};

/// The busybox base both builders start FROM.
use buildr_testkit::prereq::missing;

pub const BASE: &str = "buildr-fixtures/busybox:latest";

/// A docker client bound to one daemon.
#[derive(Clone, Debug)]
pub struct Docker {
    pub client: PathBuf,
    /// Environment the client runs with (the daemon's address, BuildKit on).
    pub vars: Vec<(String, String)>,
    /// For messages: "modern BuildKit", "BuildKit 0.8".
    pub name: String,
    /// Whether `docker build` needs `--provenance=false` (the containerd
    /// image store writes an attestation index otherwise).
    pub provenance_flag: bool,
}

impl Docker {
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.client);
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run docker")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}: docker {args:?} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker build` with the flags every comparison uses: no network, a
    /// single-manifest image.
    pub fn build_args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["build", "--network", "none"];
        if self.provenance_flag {
            args.push("--provenance=false");
        }
        args.extend_from_slice(extra);
        args
    }

    /// Tags buildr's busybox base (in `env`'s store) as `name`, saves it as
    /// a docker archive and loads it into this daemon under that name: both
    /// builders then have the very same image under a name no other test
    /// run retags (each store's import has its own `created`, so the shared
    /// [`BASE`] name flips between runs on a shared daemon).
    pub fn load_base(&self, env: &Env, name: &str) {
        let out = env.buildr(&["tag", BASE, name]);
        assert!(
            out.status.success(),
            "buildr tag of the base: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let archive = env.dir.path().join("base-docker.tar");
        env.save("docker", name, &archive);
        self.ok(&["load", "-i", archive.to_str().unwrap()]);
    }

    /// Untags what [`Docker::load_base`] loaded.
    pub fn forget_base(&self, name: &str) {
        let _ = self.run(&["image", "rm", name]);
    }
}

/// A base image name for this test process alone: `prefix/busybox:PID-NANOS`.
pub fn private_base_name(prefix: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{prefix}/busybox:{}-{}", std::process::id(), now.as_nanos())
}

/// Rewrites [`BASE`] to `name` in the Dockerfiles (`*Dockerfile`) at the top
/// of `dir`, so a case written against the shared name builds FROM the
/// private one with every builder.
pub fn rewrite_base(dir: &std::path::Path, name: &str) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_dockerfile = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("Dockerfile"));
        if !is_dockerfile || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        if text.contains(BASE) {
            std::fs::write(&path, text.replace(BASE, name))?;
        }
    }
    Ok(())
}

fn modern_state() -> PathBuf {
    std::env::var_os("MODERN_STATE")
        .map_or_else(|| PathBuf::from("/tmp/anchors/modern"), PathBuf::from)
}

/// The modern reference daemon, started when it does not answer. `None`
/// (after a loud message) when it cannot be had and `CI` is not `true`.
pub fn modern(test: &str) -> Option<Docker> {
    let script = workspace().join("scripts/modern-buildkit.sh");
    // `host` answers in milliseconds when the daemon is up; `ensure` runs
    // the bench scripts (a minute or more on a clean machine).
    let mut out = Command::new("bash").arg(&script).arg("host").output();
    if !out.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("{test}: starting the modern BuildKit (scripts/modern-buildkit.sh ensure)");
        out = Command::new("bash").arg(&script).arg("ensure").output();
    }
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            missing(test, &format!("run {}: {e}", script.display()));
            return None;
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        missing(
            test,
            &format!("the modern BuildKit is not available:\n{}", tail.join("\n")),
        );
        return None;
    }
    let host = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let client = modern_state().join("bin/docker");
    let docker = Docker {
        client,
        vars: vec![
            ("MODERN_DOCKER_HOST".to_owned(), host),
            ("DOCKER_BUILDKIT".to_owned(), "1".to_owned()),
        ],
        name: "modern BuildKit".to_owned(),
        provenance_flag: true,
    };
    let version = docker.run(&["version", "--format", "{{.Server.Version}}"]);
    if !version.status.success() {
        missing(
            test,
            &format!(
                "the modern docker client does not reach its daemon: {}",
                String::from_utf8_lossy(&version.stderr)
            ),
        );
        return None;
    }
    Some(docker)
}
