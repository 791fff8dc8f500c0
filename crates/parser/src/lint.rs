//! Lint warnings, as BuildKit's `linter` rules name them. Only collected,
//! never printed; `# check=skip=<rules>` turns rules off and
//! `# check=error=true` turns warnings into errors, as in BuildKit.

use crate::diag::Pos;
use crate::instructions::Problem;

/// The rules this crate checks, with BuildKit's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    MaintainerDeprecated,
    StageNameCasing,
    FromAsCasing,
    JsonArgsRecommended,
    ReservedStageName,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
}

impl Rule {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::JsonArgsRecommended => "JSONArgsRecommended",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
        }
    }

    fn url_slug(self) -> &'static str {
        match self {
            Rule::MaintainerDeprecated => "maintainer-deprecated",
            Rule::StageNameCasing => "stage-name-casing",
            Rule::FromAsCasing => "from-as-casing",
            Rule::JsonArgsRecommended => "json-args-recommended",
            Rule::ReservedStageName => "reserved-stage-name",
            Rule::NoEmptyContinuation => "no-empty-continuation",
            Rule::ConsistentInstructionCasing => "consistent-instruction-casing",
            Rule::MultipleInstructionsDisallowed => "multiple-instructions-disallowed",
            Rule::LegacyKeyValueFormat => "legacy-key-value-format",
        }
    }
}

/// The `# check=` directive: which rules are off, whether warnings fail.
#[derive(Debug, Default)]
pub(crate) struct CheckConfig {
    skip: Vec<String>,
    skip_all: bool,
    pub(crate) error: bool,
}

impl CheckConfig {
    /// Parse `skip=A,B;error=true`; unknown keys are ignored as BuildKit
    /// ignores them.
    pub(crate) fn parse(value: Option<&str>) -> CheckConfig {
        let mut config = CheckConfig::default();
        for part in value.unwrap_or_default().split(';') {
            let Some((key, val)) = part.split_once('=') else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for rule in val.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if rule.eq_ignore_ascii_case("all") {
                            config.skip_all = true;
                        }
                        config.skip.push(rule.to_ascii_lowercase());
                    }
                }
                "error" => config.error = val.trim().eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        config
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.skip_all
            && !self
                .skip
                .iter()
                .any(|s| s == &rule.name().to_ascii_lowercase())
    }
}

/// A warning of `rule` at `pos`: the message, then a help line with the fix
/// and the rule's documentation.
pub(crate) fn warning(rule: Rule, pos: Pos, message: String, fix: &str) -> Problem {
    let url = format!(
        "https://docs.docker.com/go/dockerfile/rule/{}/",
        rule.url_slug()
    );
    let help = if fix.is_empty() {
        format!("{} ({url})", rule.name())
    } else {
        format!("{fix} [{} {url}]", rule.name())
    };
    Problem::new(pos, message).help(help)
}

pub(crate) fn maintainer(pos: Pos) -> Problem {
    warning(
        Rule::MaintainerDeprecated,
        pos,
        "maintainer instruction is deprecated in favor of using label".to_string(),
        "use `LABEL org.opencontainers.image.authors=\"...\"`",
    )
}

pub(crate) fn stage_name_casing(pos: Pos, written: &str) -> Problem {
    warning(
        Rule::StageNameCasing,
        pos,
        format!("stage name '{written}' should be lowercase"),
        &format!("write `{}`", written.to_lowercase()),
    )
}

/// `FROM x as y` / `from x AS y`: `as` must follow the keyword's casing
/// when the keyword is all upper or all lower case.
pub(crate) fn from_as_casing(pos: Pos, from_kw: &str, as_kw: &str) -> Option<Problem> {
    let lower = from_kw == from_kw.to_lowercase();
    let upper = from_kw == from_kw.to_uppercase();
    let matches = if lower {
        as_kw == as_kw.to_lowercase()
    } else if upper {
        as_kw == as_kw.to_uppercase()
    } else {
        true
    };
    if matches {
        return None;
    }
    let want = if lower { "as" } else { "AS" };
    Some(warning(
        Rule::FromAsCasing,
        pos,
        format!("'{as_kw}' and '{from_kw}' keywords' casing do not match"),
        &format!("write `{want}`"),
    ))
}

pub(crate) fn json_args(pos: Pos, keyword: &str, hint: &str) -> Problem {
    warning(
        Rule::JsonArgsRecommended,
        pos,
        format!(
            "json arguments recommended for {keyword} to prevent unintended behavior related to os signals"
        ),
        &format!("write `{keyword} {hint}`"),
    )
}

pub(crate) fn reserved_stage_name(pos: Pos, name: &str) -> Option<Problem> {
    if name != "scratch" && name != "context" {
        return None;
    }
    Some(warning(
        Rule::ReservedStageName,
        pos,
        format!("stage name should not use the same name as reserved stage {name:?}"),
        "pick another stage name",
    ))
}

/// A second CMD, ENTRYPOINT or HEALTHCHECK in one stage: reported at the
/// earlier one, which has no effect (as BuildKit reports it).
pub(crate) fn multiple_instructions(earlier: Pos, keyword: &str) -> Problem {
    warning(
        Rule::MultipleInstructionsDisallowed,
        earlier,
        format!(
            "multiple {keyword} instructions should not be used in the same stage because only the last one will be used"
        ),
        &format!("remove this {keyword}"),
    )
}

/// `ENV key value` / `LABEL key value`.
pub(crate) fn legacy_key_value(pos: Pos, keyword: &str) -> Problem {
    warning(
        Rule::LegacyKeyValueFormat,
        pos,
        format!(
            "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
        ),
        &format!("write `{keyword} key=value`"),
    )
}

/// Keywords should all be upper case or all lower case, following the
/// majority (ties count as upper case), as BuildKit checks stage keywords.
pub(crate) fn instruction_casing(keywords: &[(&str, Pos)]) -> Vec<Problem> {
    let lower = keywords
        .iter()
        .filter(|(k, _)| *k == k.to_lowercase())
        .count();
    let upper = keywords
        .iter()
        .filter(|(k, _)| *k == k.to_uppercase() && *k != k.to_lowercase())
        .count();
    let majority_lower = lower > upper;
    keywords
        .iter()
        .filter(|(k, _)| {
            if majority_lower {
                *k != k.to_lowercase()
            } else {
                *k != k.to_uppercase()
            }
        })
        .map(|(k, pos)| {
            let (casing, want) = if majority_lower {
                ("lowercase", k.to_lowercase())
            } else {
                ("uppercase", k.to_uppercase())
            };
            warning(
                Rule::ConsistentInstructionCasing,
                *pos,
                format!("command '{k}' should match the case of the command majority ({casing})"),
                &format!("write `{want}`"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive() {
        let c = CheckConfig::parse(Some("skip=StageNameCasing, FromAsCasing;error=true"));
        assert!(c.error);
        assert!(!c.enabled(Rule::StageNameCasing));
        assert!(!c.enabled(Rule::FromAsCasing));
        assert!(c.enabled(Rule::MaintainerDeprecated));
        assert!(!CheckConfig::parse(Some("skip=all")).enabled(Rule::MaintainerDeprecated));
        assert!(CheckConfig::parse(None).enabled(Rule::JsonArgsRecommended));
    }

    #[test]
    fn as_casing() {
        let p = Pos { line: 1, col: 1 };
        assert!(from_as_casing(p, "FROM", "AS").is_none());
        assert!(from_as_casing(p, "from", "as").is_none());
        assert!(from_as_casing(p, "From", "as").is_none());
        assert!(from_as_casing(p, "FROM", "as").is_some());
        assert!(from_as_casing(p, "from", "As").is_some());
    }

    #[test]
    fn instruction_casing_follows_majority() {
        let p = |col| Pos { line: 1, col };
        let w = instruction_casing(&[("FROM", p(1)), ("run", p(2)), ("COPY", p(3)), ("Cmd", p(4))]);
        let cols: Vec<u32> = w.iter().map(|w| w.pos.col).collect();
        assert_eq!(cols, [2, 4]);
        let w = instruction_casing(&[("from", p(1)), ("run", p(2)), ("COPY", p(3))]);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("(lowercase)"));
        // A tie counts as upper case.
        assert_eq!(
            instruction_casing(&[("from", p(1)), ("RUN", p(2))]).len(),
            1
        );
    }
}
