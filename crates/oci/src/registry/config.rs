//! The registry config file: mirrors and insecure registries.
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["127.0.0.1:5001", "https://mirror.example"]
//!
//! [registry."myregistry:5000"]
//! insecure = true          # plain http allowed, tls not verified
//! ca = "/etc/buildr/myregistry-ca.pem"
//! ```
//!
//! Looked up at `$XDG_CONFIG_HOME/buildr/config.toml` (else
//! `~/.config/buildr/config.toml`), then `/etc/buildr/config.toml`; the
//! first that exists wins. Other top-level tables are left to other parts of
//! buildr and ignored here.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Settings of all registries, by host (`docker.io`, `host:5000`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    pub registries: BTreeMap<String, RegistryHost>,
}

/// Settings of one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryHost {
    /// Tried in order before the registry itself when pulling. Each is
    /// `host[:port]` or `http(s)://host[:port]`.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP allowed and TLS certificates not verified.
    #[serde(default)]
    pub insecure: bool,
    /// A PEM file of extra CA certificates for this host.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

#[derive(Deserialize)]
struct FileShape {
    #[serde(default)]
    registry: BTreeMap<String, RegistryHost>,
}

impl RegistryConfig {
    /// Parses the TOML text of a config file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RegistryConfig> {
        let shape: FileShape = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: e.to_string().trim().to_owned(),
        })?;
        for (host, settings) in &shape.registry {
            if host.is_empty() || host.contains('/') {
                return Err(Error::Config {
                    path: path.to_owned(),
                    reason: format!("registry key {host:?} must be a host[:port]"),
                });
            }
            for mirror in &settings.mirrors {
                Endpoint::parse(mirror).map_err(|reason| Error::Config {
                    path: path.to_owned(),
                    reason: format!("mirror {mirror:?} of {host}: {reason}"),
                })?;
            }
        }
        Ok(RegistryConfig {
            registries: shape.registry,
        })
    }

    /// Loads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<RegistryConfig> {
        match read_small(path)? {
            Some(text) => RegistryConfig::parse(&text, path),
            None => Ok(RegistryConfig::default()),
        }
    }

    /// Loads the first existing default config file (see the module docs).
    pub fn load_default() -> Result<RegistryConfig> {
        for path in default_paths() {
            if let Some(text) = read_small(&path)? {
                return RegistryConfig::parse(&text, &path);
            }
        }
        Ok(RegistryConfig::default())
    }

    /// The settings of `host`, default when not configured.
    pub fn host(&self, host: &str) -> RegistryHost {
        self.registries.get(host).cloned().unwrap_or_default()
    }
}

/// The config files looked at, in order.
pub fn default_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        paths.push(PathBuf::from(dir).join("buildr/config.toml"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        paths.push(PathBuf::from(home).join(".config/buildr/config.toml"));
    }
    paths.push(PathBuf::from("/etc/buildr/config.toml"));
    paths
}

fn read_small(path: &Path) -> Result<Option<String>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::Config {
            path: path.to_owned(),
            reason: format!("larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Config {
            path: path.to_owned(),
            reason: "not utf-8".into(),
        })
}

/// Where requests for a registry go: `host[:port]` and, when forced by a
/// mirror URL, the scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Endpoint {
    pub host: String,
    pub scheme: Option<Scheme>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A mirror that is not `host[:port]` with an optional scheme.
#[derive(Debug, thiserror::Error)]
#[error("expected host[:port], optionally with http:// or https://")]
pub(crate) struct BadEndpoint;

impl Endpoint {
    pub fn parse(input: &str) -> std::result::Result<Endpoint, BadEndpoint> {
        let (scheme, rest) = if let Some(r) = input.strip_prefix("https://") {
            (Some(Scheme::Https), r)
        } else if let Some(r) = input.strip_prefix("http://") {
            (Some(Scheme::Http), r)
        } else {
            (None, input)
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(BadEndpoint);
        }
        Ok(Endpoint {
            host: host.to_owned(),
            scheme,
        })
    }
}

/// Whether `host` (`name[:port]`, `[v6]:port`) is loopback, where docker
/// allows plain HTTP without configuration.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = split_port(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn split_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mirrors_and_insecure() {
        let text = r#"
            [build]
            something = 1
            [registry."docker.io"]
            mirrors = ["127.0.0.1:5001", "https://m.example"]
            [registry."r:5000"]
            insecure = true
        "#;
        let cfg = RegistryConfig::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(cfg.host("docker.io").mirrors.len(), 2);
        assert!(cfg.host("r:5000").insecure);
        assert!(!cfg.host("other").insecure);
        let bad = [
            "[registry.\"docker.io\"]\nmirrors = [\"http://a/b\"]",
            "[registry.\"a/b\"]\ninsecure = true",
            "[registry.\"x\"]\ninsecur = true",
            "registry = 3",
            "[registry",
        ];
        for text in bad {
            let err = RegistryConfig::parse(text, Path::new("c.toml")).unwrap_err();
            assert!(err.to_string().contains("c.toml"), "{err}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.3.4.5:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example",
            "[::2]:1",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
