//! Registry credentials the way docker keeps them: `~/.docker/config.json`
//! (`$DOCKER_CONFIG/config.json`) with `auths` (base64 `user:pass`),
//! `credsStore` and `credHelpers` (programs `docker-credential-<name>`
//! spoken to over stdin/stdout).
//!
//! Login and logout rewrite the file atomically (temp file in the same
//! directory, fsync, rename), mode 0600, keeping every field this module does
//! not know. Secrets never appear in `Debug` output.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::reference::DEFAULT_DOMAIN;
use buildr_fs::atomic::AtomicWrite;

/// The key docker uses for Docker Hub in `auths` and with helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
const MAX_CONFIG_BYTES: u64 = 4 << 20;
const MAX_HELPER_OUTPUT: usize = 1 << 20;

/// A user name and secret (password or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    secret: String,
    identity_token: bool,
}

impl Credentials {
    /// Basic credentials.
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_owned(),
            secret: password.to_owned(),
            identity_token: false,
        }
    }

    /// An OAuth2 refresh token (docker's `identitytoken`).
    pub fn identity_token(token: &str) -> Credentials {
        Credentials {
            username: "<token>".to_owned(),
            secret: token.to_owned(),
            identity_token: true,
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether the secret is a refresh token rather than a password.
    pub fn is_identity_token(&self) -> bool {
        self.identity_token
    }

    /// The `Authorization: Basic` value.
    pub(crate) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            B64.encode(format!("{}:{}", self.username, self.secret))
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("identity_token", &self.identity_token)
            .finish()
    }
}

/// Where credentials come from.
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// Credentials for `host` (`docker.io`, `host:5000`), if any.
    fn get(&self, host: &str) -> Result<Option<Credentials>>;
}

/// No credentials at all: anonymous access only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn get(&self, _host: &str) -> Result<Option<Credentials>> {
        Ok(None)
    }
}

/// A fixed set of credentials, by host (for embedders and tests).
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials(pub std::collections::BTreeMap<String, Credentials>);

impl CredentialSource for StaticCredentials {
    fn get(&self, host: &str) -> Result<Option<Credentials>> {
        Ok(self.0.get(host).cloned())
    }
}

/// A docker `config.json`, kept whole so unknown fields survive a rewrite.
#[derive(Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The document holds secrets: show only where it is and its keys.
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("keys", &self.doc.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME")
            .filter(|d| !d.is_empty())
            .map(|home| PathBuf::from(home).join(".docker/config.json"))
    }

    /// Loads the default file (an empty config when there is none).
    pub fn load_default() -> Result<DockerConfig> {
        match DockerConfig::default_path() {
            Some(path) => DockerConfig::load(&path),
            None => Ok(DockerConfig {
                path: PathBuf::from(".docker/config.json"),
                doc: Map::new(),
            }),
        }
    }

    /// Loads `path`; a missing or empty file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let bad = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(bad(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let doc = if bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(bad("not a json object".into())),
                Err(e) => return Err(bad(e.to_string())),
            }
        };
        Ok(DockerConfig {
            path: path.to_owned(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper for `host`: `credHelpers` first, then `credsStore`.
    fn helper_for(&self, host: &str) -> Option<String> {
        let helpers = self.doc.get("credHelpers").and_then(Value::as_object);
        let key = server_key(host);
        if let Some(h) = helpers.and_then(|m| m.get(host).or_else(|| m.get(&key))) {
            return h.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        }
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// Credentials for `host` from a helper or from `auths`.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        // docker falls back to the file when the helper has nothing.
        if let Some(helper) = self.helper_for(host)
            && let Some(c) = helper_get(&helper, &server_key(host))?
        {
            return Ok(Some(c));
        }
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let Some(entry) = auths
            .iter()
            .find(|(k, _)| normalize_key(k) == host)
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        self.decode_entry(host, entry)
    }

    fn decode_entry(&self, host: &str, entry: &Value) -> Result<Option<Credentials>> {
        let bad = |reason: String| Error::Config {
            path: self.path.clone(),
            reason: format!("auths entry for {host}: {reason}"),
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credentials::identity_token(token)));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let raw = B64
                .decode(auth.trim())
                .map_err(|_| bad("auth is not base64".into()))?;
            let text = String::from_utf8(raw).map_err(|_| bad("auth is not utf-8".into()))?;
            let Some((user, pass)) = text.split_once(':') else {
                return Err(bad("auth is not user:password".into()));
            };
            return Ok(Some(Credentials::new(user, pass.trim_end_matches('\0'))));
        }
        let user = entry.get("username").and_then(Value::as_str);
        let pass = entry.get("password").and_then(Value::as_str);
        Ok(match (user, pass) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials::new(u, p)),
            _ => None,
        })
    }

    /// Stores `creds` for `host` (through the helper if one is configured,
    /// else in `auths`) and writes the file.
    pub fn login(&mut self, host: &str, creds: &Credentials) -> Result<()> {
        let key = server_key(host);
        if let Some(helper) = self.helper_for(host) {
            let input = serde_json::json!({
                "ServerURL": key,
                "Username": creds.username,
                "Secret": creds.secret,
            });
            helper_call(&helper, "store", input.to_string().as_bytes())?;
            // The file keeps an empty entry, as docker does, so that
            // `auths` lists the registry.
            self.auths_mut()?.insert(key, Value::Object(Map::new()));
        } else {
            self.remove_auths(host)?;
            let mut entry = Map::new();
            if creds.identity_token {
                entry.insert("identitytoken".into(), creds.secret.clone().into());
            } else {
                entry.insert(
                    "auth".into(),
                    B64.encode(format!("{}:{}", creds.username, creds.secret))
                        .into(),
                );
            }
            self.auths_mut()?.insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Forgets the credentials of `host`; returns whether there were any.
    pub fn logout(&mut self, host: &str) -> Result<bool> {
        let mut had = false;
        if let Some(helper) = self.helper_for(host) {
            had |= helper_call(&helper, "erase", server_key(host).as_bytes()).is_ok();
        }
        had |= self.remove_auths(host)?;
        self.save()?;
        Ok(had)
    }

    fn remove_auths(&mut self, host: &str) -> Result<bool> {
        let auths = self.auths_mut()?;
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize_key(k) == host)
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        Ok(!keys.is_empty())
    }

    fn auths_mut(&mut self) -> Result<&mut Map<String, Value>> {
        let entry = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(map) => Ok(map),
            _ => Err(Error::Config {
                path: self.path.clone(),
                reason: "auths is not an object".into(),
            }),
        }
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        let bytes = serde_json::to_vec_pretty(&self.doc).map_err(|e| Error::Config {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let path = &self.path;
        AtomicWrite::new()
            .prefix(".config.json-")
            .mode(0o600)
            .with(path, |file| {
                file.write_all(&bytes)
                    .and_then(|()| file.write_all(b"\n"))
                    .map_err(|e| Error::io("write", path, e))
            })
    }
}

impl CredentialSource for DockerConfig {
    fn get(&self, host: &str) -> Result<Option<Credentials>> {
        self.credentials(host)
    }
}

/// The key docker writes for `host`.
fn server_key(host: &str) -> String {
    if host == DEFAULT_DOMAIN {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// The registry host an `auths` key means: scheme and path dropped, the
/// Docker Hub aliases mapped to `docker.io`.
fn normalize_key(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_DOMAIN.to_owned(),
        h => h.to_owned(),
    }
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let out = match helper_call(helper, "get", server.as_bytes()) {
        Ok(out) => out,
        Err(Error::CredentialHelper { reason, .. }) if reason.contains("credentials not found") => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let bad = |reason: String| Error::CredentialHelper {
        helper: helper.to_owned(),
        reason,
    };
    let v: Value = serde_json::from_slice(&out).map_err(|e| bad(format!("bad json: {e}")))?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credentials::identity_token(secret)
    } else {
        Credentials::new(user, secret)
    }))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn helper_call(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>> {
    let err = |reason: String| Error::CredentialHelper {
        helper: helper.to_owned(),
        reason,
    };
    if helper.contains(['/', '\0']) {
        return Err(err("helper names may not contain '/'".into()));
    }
    let program = format!("docker-credential-{helper}");
    let mut cmd = Command::new(&program);
    #[cfg(test)]
    if let Some(path) = tests::HELPER_PATH.with(|p| p.borrow().clone()) {
        cmd.env("PATH", path);
    }
    let mut child = cmd
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE: its exit status
        // tells what happened.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for {program}: {e}")))?;
    if !out.status.success() {
        // Helpers print the reason on stdout (docker's protocol); it never
        // holds the secret.
        let mut msg = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        }
        msg.truncate(300);
        return Err(err(format!("{action}: {} ({msg})", out.status)));
    }
    if out.stdout.len() > MAX_HELPER_OUTPUT {
        return Err(err("output too large".into()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_auths_in_docker_forms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let text = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": B64.encode("hub:s3cr3t-pass")},
                "http://localhost:5000": {"auth": B64.encode("u:p:with:colons")},
                "r.example": {"username": "a", "password": "b"},
                "t.example": {"identitytoken": "refresh"},
                "bad.example": {"auth": "!!!"}
            },
            "psFormat": "table"
        });
        fs::write(&path, text.to_string()).unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        let hub = cfg.credentials("docker.io").unwrap().unwrap();
        assert_eq!((hub.username(), hub.secret()), ("hub", "s3cr3t-pass"));
        let local = cfg.credentials("localhost:5000").unwrap().unwrap();
        assert_eq!(local.secret(), "p:with:colons");
        assert_eq!(cfg.credentials("r.example").unwrap().unwrap().secret(), "b");
        assert!(
            cfg.credentials("t.example")
                .unwrap()
                .unwrap()
                .is_identity_token()
        );
        assert!(cfg.credentials("none.example").unwrap().is_none());
        assert!(cfg.credentials("bad.example").is_err());
        // Neither the secret nor its encoding; the text is long enough that
        // the random temp path in the Debug output cannot hold it by chance.
        let debug = format!("{:?} {:?}", hub, cfg);
        assert!(
            !debug.contains("s3cr3t-pass") && !debug.contains(&B64.encode("hub:s3cr3t-pass")),
            "{debug}"
        );
    }

    #[test]
    fn login_logout_rewrites_atomically_and_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        let mut cfg = DockerConfig::load(&path).unwrap();
        cfg.login("docker.io", &Credentials::new("me", "s3cret"))
            .unwrap();
        cfg.login("localhost:5000", &Credentials::new("x", "y"))
            .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut doc: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert!(doc["auths"][DOCKER_HUB_KEY]["auth"].is_string());
        doc["detachKeys"] = "ctrl-x".into();
        fs::write(&path, doc.to_string()).unwrap();

        let mut cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(
            cfg.credentials("docker.io").unwrap().unwrap().secret(),
            "s3cret"
        );
        assert!(cfg.logout("docker.io").unwrap());
        assert!(!cfg.logout("docker.io").unwrap());
        let cfg = DockerConfig::load(&path).unwrap();
        assert!(cfg.credentials("docker.io").unwrap().is_none());
        assert_eq!(
            cfg.credentials("localhost:5000").unwrap().unwrap().secret(),
            "y"
        );
        let doc: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["detachKeys"], "ctrl-x");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn credential_helper_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let script = bin.join("docker-credential-buildrtest");
        let store = dir.path().join("store.json");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n get) read s; if [ -f {st} ]; then cat {st}; else echo 'credentials not found in native keychain'; exit 1; fi;;\n store) cat > {st};;\n erase) rm -f {st};;\nesac\n",
                st = store.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        // The helper is found through the child's PATH (the process
        // environment is left alone).
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(&old));
        let path_var = std::env::join_paths(paths).unwrap();
        let cfg_path = dir.path().join("config.json");
        fs::write(&cfg_path, r#"{"credsStore":"buildrtest"}"#).unwrap();
        let mut cfg = DockerConfig::load(&cfg_path).unwrap();
        with_path(&path_var, || {
            assert!(cfg.credentials("h.example").unwrap().is_none());
            cfg.login("h.example", &Credentials::new("hu", "helper-secret"))
                .unwrap();
            let c = cfg.credentials("h.example").unwrap().unwrap();
            assert_eq!((c.username(), c.secret()), ("hu", "helper-secret"));
            let saved = fs::read_to_string(&cfg_path).unwrap();
            assert!(!saved.contains("helper-secret"), "{saved}");
            assert!(cfg.logout("h.example").unwrap());
            assert!(cfg.credentials("h.example").unwrap().is_none());
        });
    }

    fn with_path(path: &std::ffi::OsStr, f: impl FnOnce()) {
        HELPER_PATH.with(|p| *p.borrow_mut() = Some(path.to_owned()));
        f();
        HELPER_PATH.with(|p| *p.borrow_mut() = None);
    }

    thread_local! {
        pub(super) static HELPER_PATH: std::cell::RefCell<Option<std::ffi::OsString>> =
            const { std::cell::RefCell::new(None) };
    }
}
