//! ONBUILD triggers: the expressions a base records (in an image config's
//! `OnBuild` list, or as `ONBUILD` lines of a stage of the same Dockerfile)
//! parsed back into instructions that run first in the stage built on it,
//! located at that stage's `FROM` line (as BuildKit does).

use buildr_parser::{Dockerfile, Instruction, Span, Spanned, Stage};

use crate::error::Result;

/// The trigger expressions `stage` records with its own `ONBUILD` lines
/// (what a stage `FROM` it runs; triggers it inherited already ran in it).
pub(crate) fn recorded(stage: &Stage) -> Vec<String> {
    stage
        .instructions
        .iter()
        .filter_map(|i| match &i.value {
            Instruction::Onbuild(onbuild) => Some(onbuild.expression.clone()),
            _ => None,
        })
        .collect()
}

/// Parses `triggers` as instructions located at `at` (the FROM line).
pub(crate) fn parse(
    dockerfile: &Dockerfile,
    triggers: &[String],
    at: Span,
) -> Result<Vec<Spanned<Instruction>>> {
    let mut parsed = Vec::new();
    for trigger in triggers {
        let text = format!("FROM scratch\n{trigger}\n");
        let file = buildr_parser::parse(&dockerfile.file, text.as_bytes())?;
        for stage in file.stages {
            parsed.extend(stage.instructions.into_iter().map(|i| Spanned {
                value: i.value,
                span: at,
                source: i.source,
            }));
        }
    }
    Ok(parsed)
}

/// The triggers a stage built FROM the stage `base` runs; parse errors are
/// left for lowering to report (this serves the dependency walk).
pub(crate) fn of_stage(dockerfile: &Dockerfile, base: usize) -> Vec<Spanned<Instruction>> {
    let Some(stage) = dockerfile.stages.get(base) else {
        return Vec::new();
    };
    parse(dockerfile, &recorded(stage), stage.span).unwrap_or_default()
}
