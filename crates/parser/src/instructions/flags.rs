//! Typed flag parsing for one instruction, with the rules of BuildKit's
//! `BFlags`: unknown and duplicate flags are errors, string flags need
//! `=value`, boolean flags take `true`/`false` or nothing.

use super::{Problem, Req, Result};
use crate::ast::Flag;
use crate::diag::Span;
use crate::suggest::{buildkit_hint, did_you_mean};

/// What a flag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--link`, `--link=true`, `--link=false`.
    Bool,
    /// `--from=x`, at most once.
    String,
    /// `--exclude=x`, repeatable.
    Strings,
}

/// Flags valid on instructions other than the one being parsed, to say
/// where a misplaced flag belongs.
const ELSEWHERE: &[(&str, &str)] = &[
    ("from", "COPY"),
    ("parents", "COPY"),
    ("checksum", "ADD"),
    ("keep-git-dir", "ADD"),
    ("unpack", "ADD"),
    ("platform", "FROM"),
    ("mount", "RUN"),
    ("network", "RUN"),
    ("security", "RUN"),
    ("device", "RUN"),
    ("interval", "HEALTHCHECK"),
    ("timeout", "HEALTHCHECK"),
    ("start-period", "HEALTHCHECK"),
    ("start-interval", "HEALTHCHECK"),
    ("retries", "HEALTHCHECK"),
    ("chown", "COPY and ADD"),
    ("chmod", "COPY and ADD"),
    ("link", "COPY and ADD"),
    ("exclude", "COPY and ADD"),
];

/// The flags of one instruction after checking.
#[derive(Debug)]
pub(crate) struct Flags<'a> {
    used: Vec<(&'static str, &'a Flag)>,
}

impl<'a> Flags<'a> {
    /// Check `req`'s flags against `specs` (name without dashes, kind).
    pub(crate) fn parse(req: &Req<'a>, specs: &[(&'static str, Kind)]) -> Result<Flags<'a>> {
        let mut used: Vec<(&'static str, &'a Flag)> = Vec::new();
        for flag in &req.node.flags {
            let pos = flag.span.start;
            let shown = format!("--{}", flag.name);
            let Some(&(name, kind)) = specs.iter().find(|(n, _)| *n == flag.name) else {
                return Err(unknown(req, flag, specs));
            };
            if kind != Kind::Strings && used.iter().any(|(n, _)| *n == name) {
                return Err(
                    Problem::new(pos, format!("duplicate flag specified: {shown}"))
                        .help(format!("{shown} may be given only once")),
                );
            }
            match (kind, flag.value.as_deref()) {
                (Kind::Bool, Some("")) => {
                    return Err(
                        Problem::new(pos, format!("missing a value on flag: {shown}"))
                            .help(format!("write {shown}, {shown}=true or {shown}=false")),
                    );
                }
                (Kind::Bool, Some(v)) if parse_flag_bool(v).is_none() => {
                    return Err(Problem::new(
                        pos,
                        format!("expecting boolean value for flag {shown}, not: {v}"),
                    )
                    .help("expected `true` or `false`"));
                }
                (Kind::String | Kind::Strings, None) => {
                    return Err(
                        Problem::new(pos, format!("missing a value on flag: {shown}"))
                            .help(format!("expected {shown}=<value>")),
                    );
                }
                _ => {}
            }
            used.push((name, flag));
        }
        Ok(Flags { used })
    }

    /// The value of a string flag, if given.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|f| f.value.clone())
    }

    /// The value of a boolean flag, if given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.get(name)
            .map(|f| f.value.as_deref().map_or(Some(true), parse_flag_bool) == Some(true))
    }

    /// Every value of a repeatable flag, in order, with its flag.
    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a Flag> + 's {
        self.used
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    pub(crate) fn span(&self, name: &str) -> Option<Span> {
        self.get(name).map(|f| f.span)
    }

    fn get(&self, name: &str) -> Option<&'a Flag> {
        self.used.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

/// BuildKit lower-cases bool flag values and accepts `true`/`false` only.
fn parse_flag_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn unknown(req: &Req<'_>, flag: &Flag, specs: &[(&'static str, Kind)]) -> Problem {
    let shown = format!("--{}", flag.name);
    let message = format!("unknown flag: {shown}");
    let names: Vec<&str> = specs.iter().map(|(n, _)| *n).collect();
    if let Some(best) = did_you_mean(&flag.name, &names, true) {
        return Problem::new(flag.span.start, message + &buildkit_hint(&best))
            .help(format!("did you mean `--{best}`?"));
    }
    let problem = Problem::new(flag.span.start, message);
    if let Some((_, owner)) = ELSEWHERE.iter().find(|(n, _)| *n == flag.name) {
        return problem.help(format!(
            "{shown} is a flag of {owner}, not of {}",
            req.upper
        ));
    }
    if names.is_empty() {
        return problem.help(format!("{} takes no flags", req.upper));
    }
    let list: Vec<String> = names.iter().map(|n| format!("--{n}")).collect();
    problem.help(format!("{} accepts {}", req.upper, list.join(", ")))
}
