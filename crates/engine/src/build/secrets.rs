//! What a build hands to `RUN --mount=type=secret` and `--mount=type=ssh`:
//! the `--secret` and `--ssh` options (BuildKit's syntax), by id. Only
//! where a secret comes from is kept here; its value is read when a step
//! that mounts it runs, and is never part of a cache key, a layer, the
//! history or the image config.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// BuildKit's limit on a secret's size.
const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// Where a secret's value comes from (`--secret id=NAME,src=FILE` or
/// `--secret id=NAME,env=VAR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The content of a file, read when a step mounts the secret.
    File(PathBuf),
    /// The value of an environment variable of this process.
    Env(String),
}

impl SecretSource {
    /// Parses docker's `--secret` value: `id=NAME[,type=file|env][,src=FILE|,env=VAR]`
    /// (`source` for `src`). Without a source, the variable named `NAME` is
    /// used when it is set, else the file `NAME`, as buildx does.
    pub fn parse(spec: &str) -> Result<(String, SecretSource)> {
        let bad = |why: String| Error::BuildOption {
            message: format!("--secret {spec}: {why}"),
        };
        let mut id = None;
        let mut kind = None;
        let mut file = None;
        let mut env = None;
        for field in spec.split(',') {
            let Some((key, value)) = field.split_once('=') else {
                return Err(bad(format!(
                    "invalid field '{field}' must be a key=value pair"
                )));
            };
            match key.to_ascii_lowercase().as_str() {
                "type" if value == "file" || value == "env" => kind = Some(value.to_owned()),
                "type" => return Err(bad(format!("unsupported secret type {value:?}"))),
                "id" => id = Some(value.to_owned()),
                "source" | "src" => file = Some(value.to_owned()),
                "env" => env = Some(value.to_owned()),
                other => return Err(bad(format!("unexpected key '{other}' in '{field}'"))),
            }
        }
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| bad("id= is required".to_owned()))?;
        if kind.as_deref() == Some("env") && env.is_none() {
            env = file.take().or_else(|| Some(id.clone()));
        }
        let source = match (file, env) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "a secret cannot have both a file and an env source".to_owned()
                ));
            }
            (Some(file), None) => SecretSource::File(PathBuf::from(file)),
            (None, Some(var)) => SecretSource::Env(var),
            (None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
            (None, None) => SecretSource::File(PathBuf::from(&id)),
        };
        Ok((id, source))
    }

    /// The value (at most 500 KiB, as BuildKit); `None` when the variable
    /// of an env secret is not set (the secret is then missing).
    pub(crate) fn read(&self) -> std::result::Result<Option<Vec<u8>>, SecretReadError> {
        match self {
            SecretSource::Env(var) => Ok(std::env::var_os(var).map(|v| v.into_encoded_bytes())),
            SecretSource::File(path) => {
                let unreadable = |source| SecretReadError::Read {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::open(path).map_err(unreadable)?;
                let mut value = Vec::new();
                file.take(MAX_SECRET_SIZE + 1)
                    .read_to_end(&mut value)
                    .map_err(unreadable)?;
                if value.len() as u64 > MAX_SECRET_SIZE {
                    return Err(SecretReadError::TooLarge { path: path.clone() });
                }
                Ok(Some(value))
            }
        }
    }
}

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretReadError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_SECRET_SIZE} bytes", path.display())]
    TooLarge { path: PathBuf },
}

/// Parses docker's `--ssh` value: `ID[=SOCKET]` (`default` alone takes
/// `$SSH_AUTH_SOCK`). Only agent sockets are supported, not key files.
pub fn parse_ssh(spec: &str) -> Result<(String, PathBuf)> {
    let bad = |why: &str| Error::BuildOption {
        message: format!("--ssh {spec}: {why}"),
    };
    let (id, path) = match spec.split_once('=') {
        Some((id, path)) => (id, Some(path)),
        None => (spec, None),
    };
    if id.is_empty() || id.contains(',') {
        return Err(bad(
            "expected ID[=SOCKET], e.g. default or default=$SSH_AUTH_SOCK",
        ));
    }
    let path = match path {
        Some(path) if path.contains(',') => {
            return Err(bad(
                "only one agent socket per id is supported (key files are not)",
            ));
        }
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => std::env::var_os("SSH_AUTH_SOCK")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| bad("SSH_AUTH_SOCK is not set: give a socket path, ID=SOCKET"))?,
    };
    Ok((id.to_owned(), path))
}

/// The secrets and SSH agents of one build, by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets {
    pub secrets: BTreeMap<String, SecretSource>,
    pub ssh: BTreeMap<String, PathBuf>,
}

impl Secrets {
    /// Checks up front that every file secret is a readable file and every
    /// agent a socket, so a typo fails the build before any step runs.
    pub(crate) fn check(&self) -> Result<()> {
        for (id, source) in &self.secrets {
            if let SecretSource::File(path) = source {
                let meta = std::fs::metadata(path).map_err(|e| Error::BuildOption {
                    message: format!("--secret id={id}: {}: {e}", path.display()),
                })?;
                if !meta.is_file() {
                    return Err(Error::BuildOption {
                        message: format!("--secret id={id}: {} is not a file", path.display()),
                    });
                }
            }
        }
        for (id, path) in &self.ssh {
            check_socket(id, path)?;
        }
        Ok(())
    }
}

fn check_socket(id: &str, path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::BuildOption {
        message: format!("--ssh {id}={}: {e}", path.display()),
    })?;
    if !meta.file_type().is_socket() {
        return Err(Error::BuildOption {
            message: format!(
                "--ssh {id}={}: not a socket; only ssh-agent sockets are supported (run ssh-agent and ssh-add the key)",
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs() {
        assert_eq!(
            SecretSource::parse("id=tok,src=/a/b").unwrap(),
            ("tok".to_owned(), SecretSource::File("/a/b".into()))
        );
        assert_eq!(
            SecretSource::parse("id=tok,source=/a/b,type=file").unwrap(),
            ("tok".to_owned(), SecretSource::File("/a/b".into()))
        );
        assert_eq!(
            SecretSource::parse("id=tok,env=TOKEN").unwrap(),
            ("tok".to_owned(), SecretSource::Env("TOKEN".into()))
        );
        assert_eq!(
            SecretSource::parse("type=env,id=TOK2").unwrap(),
            ("TOK2".to_owned(), SecretSource::Env("TOK2".into()))
        );
        assert_eq!(
            SecretSource::parse("type=env,id=x,src=VAR").unwrap(),
            ("x".to_owned(), SecretSource::Env("VAR".into()))
        );
        for (spec, want) in [
            ("src=/a", "id= is required"),
            ("id=a,src=/a,env=B", "both a file and an env"),
            ("id=a,type=ssh", "unsupported secret type"),
            ("id=a,dst=/x", "unexpected key 'dst'"),
            ("id=a,src", "must be a key=value pair"),
        ] {
            let err = SecretSource::parse(spec).unwrap_err().to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn ssh_specs() {
        assert_eq!(
            parse_ssh("default=/tmp/agent.sock").unwrap(),
            ("default".to_owned(), PathBuf::from("/tmp/agent.sock"))
        );
        assert!(parse_ssh("=/x").is_err());
        assert!(parse_ssh("a=/k1,/k2").is_err());
    }
}
