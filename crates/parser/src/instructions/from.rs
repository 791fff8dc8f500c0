//! FROM: base, `AS name` (validated, lower-cased), `--platform`.

use super::flags::{Flags, Kind};
use super::{Problem, Req, Result};

/// What a FROM line says.
#[derive(Debug)]
pub(crate) struct From {
    pub(crate) base: String,
    pub(crate) name: Option<String>,
    /// The name as written (for the casing lint).
    pub(crate) written_name: Option<String>,
    /// The `AS` keyword as written (for the casing lint).
    pub(crate) written_as: Option<String>,
    pub(crate) platform: Option<String>,
}

pub(crate) fn parse(req: &Req<'_>) -> Result<From> {
    let (words, _) = req.words();
    let (base, written_as, written_name) = match words.as_slice() {
        [base] => (base.clone(), None, None),
        [base, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            (base.clone(), Some(as_kw.clone()), Some(name.clone()))
        }
        _ => {
            let pos = match words.as_slice() {
                [] => req.after_keyword(),
                [_, second, ..] => req.pos_of(second),
                [first] => req.pos_of(first),
            };
            return Err(
                Problem::new(pos, "FROM requires either one or three arguments")
                    .help("expected `FROM [--platform=<platform>] <image> [AS <name>]`"),
            );
        }
    };
    let name = match &written_name {
        Some(written) => {
            let lower = written.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(Problem::new(
                    req.pos_of(written),
                    format!(
                        "invalid name for build stage: {written:?}, name can't start with a number or contain symbols"
                    ),
                )
                .help("a stage name starts with a letter, then letters, digits, '-', '_' or '.'"));
            }
            Some(lower)
        }
        None => None,
    };
    let flags = Flags::parse(req, &[("platform", Kind::String)])?;
    Ok(From {
        base,
        name,
        written_name,
        written_as,
        platform: flags.string("platform"),
    })
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$` (on the lower-cased name).
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stage_names() {
        for (name, ok) in [
            ("build", true),
            ("b-1_x.y", true),
            ("1abc", false),
            ("", false),
            ("a/b", false),
            ("a b", false),
            ("é", false),
        ] {
            assert_eq!(super::valid_stage_name(name), ok, "{name}");
        }
    }
}
