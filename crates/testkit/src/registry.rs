//! A `docker-registry` (Debian's distribution 2.x registry) on a free
//! loopback port for the tests that talk to a registry.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::prereq::need_tool;

/// The registry binary the tests start.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// How a [`Registry`] is started.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options<'a> {
    /// `(user, password)`: basic auth through an htpasswd file.
    pub htpasswd: Option<(&'a str, &'a str)>,
    /// `(certificate, key)`: serve HTTPS.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// Keep the access log, for [`Registry::requests`].
    pub access_log: bool,
}

/// A `docker-registry` on 127.0.0.1, storage in a temp dir, killed on drop.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its config, logs and storage (`data/`).
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Starts a registry, with basic auth when `htpasswd` is given. `None`
    /// (after a loud skip) when the binary is missing outside CI.
    pub fn start(test: &str, htpasswd: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(
            test,
            Options {
                htpasswd,
                ..Options::default()
            },
        )
    }

    /// As [`Registry::start`], with every option.
    pub fn start_with(test: &str, options: Options<'_>) -> Option<Registry> {
        if !need_tool(test, REGISTRY_BIN) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let cfg = dir.path().join("config.yml");
        fs::write(&cfg, config(dir.path(), &addr, &options)).expect("write registry config");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("access.log")).expect("access.log"))
            .stderr(fs::File::create(dir.path().join("registry.log")).expect("registry.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("{test}: cannot start {REGISTRY_BIN}: {e}"));
        let mut registry = Registry { addr, dir, child };
        registry.wait_ready(test);
        Some(registry)
    }

    /// The access-log lines of requests whose line contains `needle`
    /// (e.g. `"GET /v2/app/blobs/`); empty unless started with
    /// [`Options::access_log`].
    pub fn requests(&self, needle: &str) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    fn wait_ready(&mut self, test: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 8];
                // A TLS listener answers plain HTTP with a 400 too.
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1") {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
                panic!("{test}: registry exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "{test}: registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The registry's YAML configuration.
fn config(dir: &Path, addr: &str, options: &Options<'_>) -> String {
    let mut auth = String::new();
    if let Some((user, pass)) = options.htpasswd {
        let path = dir.join("htpasswd");
        let hash = bcrypt::hash(pass, 4).expect("bcrypt");
        fs::write(&path, format!("{user}:{hash}\n")).expect("write htpasswd");
        auth = format!(
            "auth:\n  htpasswd:\n    realm: buildr-test\n    path: {}\n",
            path.display()
        );
    }
    let tls = match options.tls {
        Some((cert, key)) => format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ),
        None => String::new(),
    };
    format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{tls}{auth}",
        !options.access_log,
        dir.join("data").display()
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
