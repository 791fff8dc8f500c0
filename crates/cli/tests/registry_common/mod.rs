//! A `docker-registry` (Debian's distribution registry) on a free
//! loopback port for the tests that talk to a registry.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry` on a free loopback port, storage in a temp dir,
/// optionally behind htpasswd basic auth; killed on drop.
pub struct Registry {
    pub addr: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(test: &str, htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(test, htpasswd, false)
    }

    /// Started with its access log on: [`Registry::requests`] reads it.
    pub fn start_logged(test: &str) -> Registry {
        Registry::start_with(test, None, true)
    }

    /// The access-log lines of requests whose line contains `needle`
    /// (e.g. `"GET /v2/app/blobs/`).
    pub fn requests(&self, needle: &str) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    fn start_with(test: &str, htpasswd: Option<(&str, &str)>, access_log: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((user, pass)) = htpasswd {
            let path = dir.path().join("htpasswd");
            let hash = bcrypt::hash(pass, 4).unwrap();
            fs::write(&path, format!("{user}:{hash}\n")).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: buildr-test\n    path: {}\n",
                path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            !access_log,
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        fs::write(&cfg, config).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdout(fs::File::create(dir.path().join("access.log")).unwrap())
            .stderr(fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{test}: cannot start {REGISTRY_BIN}: {e}"));
        let mut registry = Registry { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(&registry.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 8];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1") {
                    break;
                }
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                let log = fs::read_to_string(registry.dir.path().join("registry.log"))
                    .unwrap_or_default();
                panic!("{test}: registry exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "{test}: registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
