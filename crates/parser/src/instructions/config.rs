//! The instructions that set image configuration or stage state:
//! ENV, LABEL, MAINTAINER, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL, ARG,
//! SHELL, CMD, ENTRYPOINT.

use super::flags::Flags;
use super::{ArgDecl, ArgInstruction, CommandLine, KeyValue, Problem, Req, Result};
use crate::ast::Args;

/// ENV and LABEL: `key=value` pairs (or the legacy `key value`).
pub(crate) fn key_values(req: &Req<'_>) -> Result<Vec<KeyValue>> {
    Flags::parse(req, &[])?;
    let name = &req.upper;
    let Args::Pairs(pairs) = &req.node.args else {
        return Err(Problem::new(
            req.after_keyword(),
            format!("{name} requires key=value pairs"),
        )
        .help(format!("expected `{name} key=value ...`")));
    };
    if pairs.is_empty() {
        return Err(at_least_one(req));
    }
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        if pair.key.is_empty() {
            return Err(Problem::new(
                req.pos_of(&format!("={}", pair.value.as_deref().unwrap_or_default())),
                format!("{name} names can not be blank"),
            )
            .help("expected key=value with a non-empty key"));
        }
        let Some(value) = &pair.value else {
            return Err(Problem::new(
                req.pos_of(&pair.key),
                format!("{name} {} has no value", pair.key),
            )
            .help(format!("expected `{name} {}=<value>`", pair.key)));
        };
        out.push(KeyValue {
            key: pair.key.clone(),
            value: value.clone(),
            legacy: pair.sep.is_empty(),
        });
    }
    Ok(out)
}

/// MAINTAINER, USER, WORKDIR: exactly one word.
pub(crate) fn exactly_one(req: &Req<'_>) -> Result<String> {
    let (words, _) = req.words();
    if words.len() != 1 {
        let pos = words.get(1).map_or(req.after_keyword(), |w| req.pos_of(w));
        return Err(
            Problem::new(pos, format!("{} requires exactly one argument", req.upper)).help(
                format!(
                    "expected `{} <{}>`",
                    req.upper,
                    match req.upper.as_str() {
                        "USER" => "user[:group]",
                        "WORKDIR" => "path",
                        "STOPSIGNAL" => "signal",
                        _ => "value",
                    }
                ),
            ),
        );
    }
    if req.upper != "STOPSIGNAL" {
        // BuildKit does not look at STOPSIGNAL's flags.
        Flags::parse(req, &[])?;
    }
    Ok(words.into_iter().next().unwrap_or_default())
}

/// EXPOSE: one or more ports, sorted as BuildKit sorts them.
pub(crate) fn expose(req: &Req<'_>) -> Result<Vec<String>> {
    let (mut words, _) = req.words();
    if words.is_empty() {
        return Err(at_least_one(req));
    }
    Flags::parse(req, &[])?;
    words.sort();
    Ok(words)
}

/// VOLUME: JSON array or words; none may be blank.
pub(crate) fn volume(req: &Req<'_>) -> Result<Vec<String>> {
    let (words, _) = req.words();
    if words.is_empty() {
        return Err(at_least_one(req));
    }
    Flags::parse(req, &[])?;
    let mut out = Vec::with_capacity(words.len());
    for word in words {
        let trimmed = word.trim();
        if trimmed.is_empty() {
            return Err(Problem::new(
                req.after_keyword(),
                "VOLUME specified can not be an empty string",
            )
            .help("expected one or more paths"));
        }
        out.push(trimmed.to_string());
    }
    Ok(out)
}

/// ARG: one or more `name[=default]`. BuildKit does not look at its flags.
pub(crate) fn arg(req: &Req<'_>) -> Result<ArgInstruction> {
    let mut args = Vec::new();
    match &req.node.args {
        Args::Pairs(pairs) => {
            for pair in pairs {
                args.push(ArgDecl {
                    name: pair.key.clone(),
                    default: pair.value.clone(),
                });
            }
        }
        _ => {
            for word in req.words().0 {
                args.push(match word.split_once('=') {
                    Some((k, v)) => ArgDecl {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        name: word,
                        default: None,
                    },
                });
            }
        }
    }
    if args.is_empty() {
        return Err(at_least_one(req));
    }
    if let Some(blank) = args.iter().find(|a| a.name.is_empty()) {
        let pos = req.pos_of(&format!(
            "={}",
            blank.default.as_deref().unwrap_or_default()
        ));
        return Err(
            Problem::new(pos, "ARG names can not be blank").help("expected `ARG name[=default]`")
        );
    }
    Ok(ArgInstruction { args })
}

/// SHELL: JSON form only, not empty.
pub(crate) fn shell(req: &Req<'_>) -> Result<Vec<String>> {
    Flags::parse(req, &[])?;
    let (words, json) = req.words();
    if words.is_empty() || (!json && words.iter().all(|w| w.trim().is_empty())) {
        return Err(at_least_one(req).help("expected `SHELL [\"executable\", \"parameters\"]`"));
    }
    if !json {
        return Err(Problem::new(
            req.pos_of(&words[0]),
            "SHELL requires the arguments to be in JSON form",
        )
        .help(format!(
            "write it as a JSON array: SHELL {}",
            json_hint(&words)
        )));
    }
    Ok(words)
}

/// CMD and ENTRYPOINT: exec form or shell form; no flags.
pub(crate) fn command(req: &Req<'_>) -> Result<CommandLine> {
    Flags::parse(req, &[])?;
    let (words, json) = req.words();
    Ok(if json {
        CommandLine::Exec(words)
    } else {
        CommandLine::Shell(words.join(" "))
    })
}

fn at_least_one(req: &Req<'_>) -> Problem {
    Problem::new(
        req.after_keyword(),
        format!("{} requires at least one argument", req.upper),
    )
}

/// `["a", "b"]` from shell words split on whitespace, for help texts; a
/// generic example when the command uses quotes, variables or shell syntax
/// (splitting it would not be the same command).
pub(crate) fn json_hint(words: &[String]) -> String {
    const SHELL_SYNTAX: &[char] = &[
        '"', '\'', '\\', '$', '`', '|', '&', ';', '<', '>', '(', ')', '*', '?', '~', '#',
    ];
    if words.iter().any(|w| w.contains(SHELL_SYNTAX)) {
        return "[\"executable\", \"param1\", \"param2\"]".to_string();
    }
    let parts: Vec<String> = words
        .iter()
        .flat_map(|w| w.split_whitespace())
        .map(|w| serde_json::Value::String(w.to_string()).to_string())
        .collect();
    format!("[{}]", parts.join(", "))
}
