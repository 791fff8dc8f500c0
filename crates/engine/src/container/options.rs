//! Docker's `run`/`create` flag syntaxes as types: [`Mount`] (`-v` and
//! `--mount`), [`EnvVar`] (`-e`), [`Label`] (`--label`), sizes and signals.
//! An embedder builds these values directly; the CLI parses its flags with
//! `FromStr` (or [`Mount::from_volume_spec`]) and hands over the same types.

use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::volume::valid_name;
use crate::error::{Error, Result};

pub(super) fn option_error(message: impl Into<String>) -> Error {
    Error::ContainerOption {
        message: message.into(),
    }
}

/// A mount a container asks for, before volumes are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A host directory or file at `target`; a missing host directory is
    /// created, as docker's `-v /host:/dst` does.
    Bind {
        /// Absolute host path.
        source: PathBuf,
        /// Absolute container path.
        target: String,
        readonly: bool,
    },
    /// A named volume, or (`name: None`) a new anonymous one; an empty
    /// volume starts with what the image has at `target`.
    Volume {
        name: Option<String>,
        target: String,
        readonly: bool,
    },
    /// A tmpfs of `size` bytes (the kernel's default when `None`).
    Tmpfs { target: String, size: Option<u64> },
}

impl Mount {
    /// Where the mount appears in the container.
    pub fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. }
            | Mount::Volume { target, .. }
            | Mount::Tmpfs { target, .. } => target,
        }
    }

    /// Parses docker's `-v` syntax: `/HOST:DST[:ro|rw]`, `NAME:DST[:MODE]`,
    /// `DST` (an anonymous volume).
    pub fn from_volume_spec(spec: &str) -> Result<Mount> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, dest, mode) = match parts.as_slice() {
            [dest] => (None, *dest, None),
            [src, dest] => (Some(*src), *dest, None),
            [src, dest, mode] => (Some(*src), *dest, Some(*mode)),
            _ => {
                return Err(option_error(format!(
                    "invalid volume specification {spec:?}"
                )));
            }
        };
        let mut readonly = false;
        for opt in mode
            .unwrap_or_default()
            .split(',')
            .filter(|o| !o.is_empty())
        {
            match opt {
                "ro" => readonly = true,
                "rw" => readonly = false,
                "z" | "Z" | "rprivate" | "private" => {}
                other => {
                    return Err(option_error(format!(
                        "invalid mode {other:?} in volume specification {spec:?}"
                    )));
                }
            }
        }
        let target = container_path(dest, "volume destination")?;
        match source {
            None => Ok(Mount::Volume {
                name: None,
                target,
                readonly,
            }),
            Some(src) if src.starts_with('/') => Ok(Mount::Bind {
                source: PathBuf::from(src),
                target,
                readonly,
            }),
            Some(name) if valid_name(name) => Ok(Mount::Volume {
                name: Some(name.to_owned()),
                target,
                readonly,
            }),
            Some(other) => Err(option_error(format!(
                "{other:?} includes invalid characters for a local volume name; to bind a host directory use an absolute path"
            ))),
        }
    }

    /// The same mount with its target normalized, checked as the parsers
    /// check it: an embedder's hand-built value gets no less scrutiny.
    pub(super) fn checked(self) -> Result<Mount> {
        match self {
            Mount::Bind {
                source,
                target,
                readonly,
            } => {
                if !source.is_absolute() {
                    return Err(option_error(format!(
                        "bind source {} must be an absolute path",
                        source.display()
                    )));
                }
                Ok(Mount::Bind {
                    source,
                    target: container_path(&target, "bind target")?,
                    readonly,
                })
            }
            Mount::Volume {
                name,
                target,
                readonly,
            } => {
                if let Some(name) = &name
                    && !valid_name(name)
                {
                    return Err(option_error(format!("invalid volume name {name:?}")));
                }
                Ok(Mount::Volume {
                    name,
                    target: container_path(&target, "volume destination")?,
                    readonly,
                })
            }
            Mount::Tmpfs { target, size } => Ok(Mount::Tmpfs {
                target: container_path(&target, "tmpfs target")?,
                size,
            }),
        }
    }
}

impl FromStr for Mount {
    type Err = Error;

    /// Parses docker's `--mount` syntax:
    /// `type=bind|volume|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..]`.
    fn from_str(spec: &str) -> Result<Mount> {
        let mut kind = "volume";
        let (mut source, mut target, mut readonly, mut size) = (None, None, false, None);
        for field in spec.split(',') {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (field, None),
            };
            match (key, value) {
                ("type", Some(v)) => kind = v,
                ("source" | "src", Some(v)) => source = Some(v.to_owned()),
                ("target" | "destination" | "dst", Some(v)) => target = Some(v.to_owned()),
                ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
                ("readonly" | "ro", Some("false" | "0")) => readonly = false,
                ("tmpfs-size", Some(v)) => size = Some(parse_bytes(v)?),
                _ => {
                    return Err(option_error(format!(
                        "unexpected field {field:?} in --mount {spec:?}"
                    )));
                }
            }
        }
        let target =
            target.ok_or_else(|| option_error(format!("--mount {spec:?}: target is required")))?;
        let target = container_path(&target, "mount target")?;
        match kind {
            "bind" => {
                let src = source
                    .ok_or_else(|| option_error(format!("--mount {spec:?}: source is required")))?;
                if !src.starts_with('/') {
                    return Err(option_error(format!(
                        "--mount {spec:?}: bind source must be an absolute path"
                    )));
                }
                if !Path::new(&src).exists() {
                    return Err(option_error(format!(
                        "--mount {spec:?}: bind source path does not exist: {src}"
                    )));
                }
                Ok(Mount::Bind {
                    source: src.into(),
                    target,
                    readonly,
                })
            }
            "volume" => {
                if let Some(name) = &source
                    && !valid_name(name)
                {
                    return Err(option_error(format!(
                        "--mount {spec:?}: invalid volume name {name:?}"
                    )));
                }
                Ok(Mount::Volume {
                    name: source,
                    target,
                    readonly,
                })
            }
            "tmpfs" => Ok(Mount::Tmpfs { target, size }),
            other => Err(option_error(format!(
                "--mount {spec:?}: unknown type {other:?} (bind, volume or tmpfs)"
            ))),
        }
    }
}

/// `-e KEY=VALUE`, or `-e KEY`: the caller's own value, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    /// `None` for a bare `KEY`.
    pub value: Option<String>,
}

impl EnvVar {
    /// The variable as a pair; a bare `KEY` takes this process's value and
    /// is dropped (`None`) when there is none, as docker's client does.
    pub fn resolve(self) -> Option<(String, String)> {
        match self.value {
            Some(value) => Some((self.key, value)),
            None => std::env::var(&self.key).ok().map(|value| (self.key, value)),
        }
    }
}

impl FromStr for EnvVar {
    type Err = Error;

    fn from_str(text: &str) -> Result<EnvVar> {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (text, None),
        };
        if key.is_empty() {
            return Err(option_error(format!(
                "invalid environment variable {text:?}"
            )));
        }
        Ok(EnvVar {
            key: key.to_owned(),
            value,
        })
    }
}

/// `--label KEY=VALUE`, or `--label KEY` (an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

impl FromStr for Label {
    type Err = Error;

    fn from_str(text: &str) -> Result<Label> {
        let (key, value) = text.split_once('=').unwrap_or((text, ""));
        if key.is_empty() {
            return Err(option_error(format!(
                "invalid label {text:?}: expected KEY=VALUE"
            )));
        }
        Ok(Label {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// A container path: absolute, no `..`, normalized.
pub(super) fn container_path(text: &str, what: &str) -> Result<String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(option_error(format!(
            "{what} {text:?} must be an absolute path"
        )));
    }
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                return Err(option_error(format!("{what} {text:?} must not contain ..")));
            }
            _ => {}
        }
    }
    Ok(out.to_string_lossy().into_owned())
}

/// `512`, `64k`, `256m`, `1g` (also `kb`, `mb`, `gb`; binary units, as docker).
pub fn parse_bytes(text: &str) -> Result<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 10),
        Some((i, 'm')) => (&lower[..i], 20),
        Some((i, 'g')) => (&lower[..i], 30),
        Some((i, 't')) => (&lower[..i], 40),
        _ => (lower, 0),
    };
    let bad = || {
        option_error(format!(
            "invalid size {text:?}: expected a number with an optional k, m, g or t suffix"
        ))
    };
    let value: f64 = digits.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let bytes = value * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `SIGTERM`, `TERM`, `15` -> 15.
pub fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(num) = text.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(num)
            .map(|s| s as i32)
            .map_err(|_| option_error(format!("invalid signal {text:?}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| option_error(format!("invalid signal {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let cases: &[(&str, Option<Mount>)] = &[
            (
                "/host:/data:ro",
                Some(Mount::Bind {
                    source: "/host".into(),
                    target: "/data".into(),
                    readonly: true,
                }),
            ),
            (
                "vol:/data/",
                Some(Mount::Volume {
                    name: Some("vol".into()),
                    target: "/data".into(),
                    readonly: false,
                }),
            ),
            (
                "/anon",
                Some(Mount::Volume {
                    name: None,
                    target: "/anon".into(),
                    readonly: false,
                }),
            ),
            ("vol:relative", None),
            ("vol:/a/../b", None),
            ("../x:/data", None),
            ("a:/b:c:d", None),
            ("/h:/d:rx", None),
        ];
        for (spec, want) in cases {
            match (Mount::from_volume_spec(spec), want) {
                (Ok(got), Some(want)) => assert_eq!(&got, want, "{spec}"),
                (Err(_), None) => {}
                (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn mount_flags() {
        assert_eq!(
            "type=tmpfs,target=/scratch,tmpfs-size=64m"
                .parse::<Mount>()
                .unwrap(),
            Mount::Tmpfs {
                target: "/scratch".into(),
                size: Some(64 << 20),
            }
        );
        assert_eq!(
            "type=volume,source=v1,target=/v,readonly"
                .parse::<Mount>()
                .unwrap(),
            Mount::Volume {
                name: Some("v1".into()),
                target: "/v".into(),
                readonly: true,
            }
        );
        for bad in [
            "type=bind,source=relative,target=/x",
            "type=bind,target=/x",
            "type=nfs,target=/x",
            "type=volume,source=v",
            "type=volume,target=/x,bogus=1",
        ] {
            assert!(bad.parse::<Mount>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_signals() {
        let cases = [
            ("512", 512),
            ("64k", 64 << 10),
            ("256m", 256 << 20),
            ("1g", 1 << 30),
            ("2MB", 2 << 20),
            ("1.5k", 1536),
        ];
        for (text, want) in cases {
            assert_eq!(parse_bytes(text).unwrap(), want, "{text}");
        }
        for bad in ["", "m", "-1m", "12x", "nan"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn env_vars_and_labels() {
        let var: EnvVar = "A=b=c".parse().unwrap();
        assert_eq!(var.clone().resolve(), Some(("A".into(), "b=c".into())));
        let bare: EnvVar = "BUILDR_SURELY_UNSET_VARIABLE".parse().unwrap();
        assert_eq!(bare.value, None);
        assert_eq!(bare.resolve(), None);
        assert!("=x".parse::<EnvVar>().is_err());
        let label: Label = "k".parse().unwrap();
        assert_eq!((label.key.as_str(), label.value.as_str()), ("k", ""));
        assert!("=v".parse::<Label>().is_err());
    }

    #[test]
    fn hand_built_mounts_are_checked_like_parsed_ones() {
        let relative = Mount::Bind {
            source: "rel".into(),
            target: "/x".into(),
            readonly: false,
        };
        assert!(relative.checked().is_err());
        let escaping = Mount::Tmpfs {
            target: "/a/../b".into(),
            size: None,
        };
        assert!(escaping.checked().is_err());
        let volume = Mount::Volume {
            name: Some("vol".into()),
            target: "/data/".into(),
            readonly: true,
        };
        assert_eq!(volume.checked().unwrap().target(), "/data");
    }
}
