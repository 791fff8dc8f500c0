//! RUN: the command, heredocs, and the typed `--mount`, `--network`,
//! `--security` and `--device` flags.

use super::flags::{Flags, Kind};
use super::mount::{Mount, MountError, bad, bad_help, go_bool, parse_mount, split_csv};
use super::{CommandLine, Problem, Req, Result};
use crate::ast::Heredoc;
use crate::diag::Span;
use crate::suggest::{buildkit_hint, did_you_mean};

/// `RUN [flags] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// Heredoc bodies referenced by the command (`RUN <<EOF`).
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<Mount>,
    pub network: Network,
    pub security: Security,
    pub devices: Vec<Device>,
}

/// `--network=default|none|host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    #[default]
    Default,
    None,
    Host,
}

/// `--security=sandbox|insecure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

/// `--device=name[,required]`: a CDI device for the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub required: bool,
}

/// BuildKit's `ParseDevice`: fields `name=x` or a bare name, `required`.
fn parse_device(spec: &str) -> std::result::Result<Device, MountError> {
    let mut name: Option<String> = None;
    let mut required = false;
    for field in split_csv(spec)? {
        match field.split_once('=') {
            None if field.eq_ignore_ascii_case("required") => required = true,
            None if name.is_none() => name = Some(field),
            None => {
                return Err(bad(format!(
                    "invalid field '{field}' must be a key=value pair"
                )));
            }
            Some((key, value)) => match key.to_ascii_lowercase().as_str() {
                "name" if name.is_some() => {
                    return Err(bad(format!(
                        "device name already set to {}",
                        name.unwrap_or_default()
                    )));
                }
                "name" => name = Some(value.to_string()),
                "required" => required = go_bool("required", value)?,
                _ if name.is_none() => name = Some(field.clone()),
                other => {
                    let e = format!("unexpected key '{other}' in '{field}'");
                    return Err(match did_you_mean(other, &["name", "required"], true) {
                        Some(m) => bad_help(e + &buildkit_hint(&m), format!("did you mean `{m}`?")),
                        None => bad_help(e, "valid keys: name, required"),
                    });
                }
            },
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or_else(|| {
        bad_help(
            "device name is empty",
            "expected --device=<vendor>/<class>=<name>",
        )
    })?;
    Ok(Device { name, required })
}

const FLAGS: &[(&str, Kind)] = &[
    ("mount", Kind::Strings),
    ("network", Kind::String),
    ("security", Kind::String),
    ("device", Kind::Strings),
];

pub(crate) fn parse(req: &Req<'_>) -> Result<Run> {
    let flags = Flags::parse(req, FLAGS)?;
    let at = |span: Span, e: MountError| Problem {
        pos: span.start,
        message: e.message,
        help: e.help,
    };
    let mut mounts = Vec::new();
    for flag in flags.all("mount") {
        let spec = flag.value.as_deref().unwrap_or_default();
        mounts.push(parse_mount(spec, None).map_err(|e| at(flag.span, e))?);
    }
    let mut devices = Vec::new();
    for flag in flags.all("device") {
        let spec = flag.value.as_deref().unwrap_or_default();
        devices.push(parse_device(spec).map_err(|e| at(flag.span, e))?);
    }
    let network = match flags.string("network").as_deref() {
        None | Some("default") => Network::Default,
        Some("none") => Network::None,
        Some("host") => Network::Host,
        Some(other) => {
            let pos = flags.span("network").unwrap_or_default().start;
            return Err(Problem::new(pos, format!("invalid network mode {other:?}"))
                .help("expected default, none or host"));
        }
    };
    let security = match flags.string("security").as_deref() {
        None | Some("sandbox") => Security::Sandbox,
        Some("insecure") => Security::Insecure,
        Some(other) => {
            let pos = flags.span("security").unwrap_or_default().start;
            return Err(
                Problem::new(pos, format!("security {other:?} is not valid"))
                    .help("expected sandbox or insecure"),
            );
        }
    };
    let (words, json) = req.words();
    let command = if json {
        CommandLine::Exec(words)
    } else {
        CommandLine::Shell(words.join(" "))
    };
    Ok(Run {
        command,
        heredocs: req.heredocs().to_vec(),
        mounts,
        network,
        security,
        devices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        assert_eq!(
            parse_device("vendor.com/gpu=all,required").unwrap(),
            Device {
                name: "vendor.com/gpu=all".into(),
                required: true
            }
        );
        assert_eq!(parse_device("name=x,required=false").unwrap().name, "x");
        assert!(parse_device("").is_err());
    }
}
