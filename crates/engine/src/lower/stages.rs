//! Which stages a build needs: the target (`--target` or the last stage)
//! and, transitively, every stage it names in `FROM`, `COPY --from` or
//! `RUN --mount=from=`, its own or in the ONBUILD triggers of its base
//! stage. Nothing else is resolved or run.

use buildr_parser::{Dockerfile, Instruction, Lexer, MountKind, Spanned};

use super::args::Scope;
use crate::error::{Error, Result};

/// The index of the stage `name_or_index` names (`AS` name, or its number).
pub(crate) fn stage_ref(dockerfile: &Dockerfile, name_or_index: &str) -> Option<usize> {
    if let Some((idx, _)) = dockerfile.stage_by_name(name_or_index) {
        return Some(idx);
    }
    name_or_index
        .parse::<usize>()
        .ok()
        .filter(|idx| *idx < dockerfile.stages.len())
}

/// The first `COPY --from=N` (in any stage, reachable or not) whose number
/// is no stage index, with that number: BuildKit rejects it before
/// building anything (`invalid stage index N`) and never looks it up as an
/// image. A number is what Go's `strconv.Atoi` reads: a sign, then digits.
pub(crate) fn bad_copy_index(dockerfile: &Dockerfile) -> Option<(&Spanned<Instruction>, i64)> {
    let n_stages = i64::try_from(dockerfile.stages.len()).unwrap_or(i64::MAX);
    dockerfile
        .stages
        .iter()
        .flat_map(|stage| &stage.instructions)
        .find_map(|at| {
            let Instruction::Copy(copy) = &at.value else {
                return None;
            };
            let index = copy.from.as_deref()?.parse::<i64>().ok()?;
            (!(0..n_stages).contains(&index)).then_some((at, index))
        })
}

/// The target stage's index.
pub(crate) fn target(dockerfile: &Dockerfile, target: Option<&str>) -> Result<usize> {
    match target {
        None => dockerfile
            .stages
            .len()
            .checked_sub(1)
            .ok_or_else(|| Error::BuildOption {
                message: format!("{}: the Dockerfile has no stage (no FROM)", dockerfile.file),
            }),
        Some(name) => dockerfile
            .stage_by_name(name)
            .map(|(idx, _)| idx)
            .ok_or_else(|| Error::BuildOption {
                message: format!(
                    "{}: target stage {name:?} could not be found{}",
                    dockerfile.file,
                    stage_hint(dockerfile, name)
                ),
            }),
    }
}

/// BuildKit's ` (did you mean NAME?)` after an unknown target stage.
fn stage_hint(dockerfile: &Dockerfile, name: &str) -> String {
    let names: Vec<&str> = dockerfile
        .stages
        .iter()
        .filter_map(|stage| stage.name.as_deref())
        .collect();
    buildr_parser::did_you_mean(name, &names, true)
        .map(|best| format!(" (did you mean {best}?)"))
        .unwrap_or_default()
}

/// The stages each stage depends on (by index), expanding names with the
/// global scope; a stage naming itself (`COPY --from=` its own name) is
/// among them.
pub(crate) fn dependencies(dockerfile: &Dockerfile, idx: usize, meta: &Scope) -> Vec<usize> {
    let lexer = Lexer::new(dockerfile.directives.escape);
    let env = meta.pairs();
    let expand = |word: &str| {
        lexer
            .process_word(word, &env)
            .map(|r| r.value)
            .unwrap_or_else(|_| word.to_owned())
    };
    let Some(stage) = dockerfile.stages.get(idx) else {
        return Vec::new();
    };
    let mut deps = Vec::new();
    let mut push = |name: &str| {
        if let Some(dep) = dockerfile
            .stage_by_name(name)
            .map(|(i, _)| i)
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < idx))
            && !deps.contains(&dep)
        {
            deps.push(dep);
        }
    };
    let base = expand(&stage.base);
    let base_stage = dockerfile
        .stage_by_name(&base)
        .map(|(i, _)| i)
        .filter(|i| *i < idx);
    if base_stage.is_some() {
        push(&base);
    }
    // The base stage's ONBUILD triggers run here and may name stages too.
    let triggers = base_stage.map_or_else(Vec::new, |i| super::onbuild::of_stage(dockerfile, i));
    for instruction in triggers.iter().chain(&stage.instructions) {
        match &instruction.value {
            Instruction::Copy(copy) => {
                // Taken as written: BuildKit 0.13 expands no variable here.
                if let Some(from) = &copy.from {
                    push(from);
                }
            }
            Instruction::Run(run) => {
                for mount in &run.mounts {
                    if let MountKind::Bind {
                        from: Some(from), ..
                    }
                    | MountKind::Cache {
                        from: Some(from), ..
                    } = &mount.kind
                    {
                        push(&expand(from));
                    }
                }
            }
            _ => {}
        }
    }
    deps
}

/// BuildKit's `validateCircularDependency`, over every stage whether the
/// target needs it or not: the first stage, in file order, whose walk
/// along `--from` references comes back to a stage on its own path. The
/// error names it as BuildKit does: `circular dependency detected on
/// stage: NAME` (its index when it has no name).
pub(crate) fn circular(dockerfile: &Dockerfile, meta: &Scope) -> Result<()> {
    fn cycle_from(
        dockerfile: &Dockerfile,
        idx: usize,
        meta: &Scope,
        visited: &mut [bool],
        on_path: &mut [bool],
    ) -> bool {
        if visited[idx] {
            return false;
        }
        visited[idx] = true;
        on_path[idx] = true;
        for dep in dependencies(dockerfile, idx, meta) {
            if on_path[dep] || cycle_from(dockerfile, dep, meta, visited, on_path) {
                return true;
            }
        }
        on_path[idx] = false;
        false
    }
    let n = dockerfile.stages.len();
    let (mut visited, mut on_path) = (vec![false; n], vec![false; n]);
    for (idx, stage) in dockerfile.stages.iter().enumerate() {
        if cycle_from(dockerfile, idx, meta, &mut visited, &mut on_path) {
            let name = stage.name.clone().unwrap_or_else(|| idx.to_string());
            return Err(Error::Build {
                location: format!("{}:{}", dockerfile.file, stage.span.start.line),
                message: format!("circular dependency detected on stage: {name}"),
            });
        }
    }
    Ok(())
}

/// The target and every stage it needs, each once, dependencies first.
pub(crate) fn reachable(dockerfile: &Dockerfile, target: usize, meta: &Scope) -> Vec<usize> {
    fn visit(
        dockerfile: &Dockerfile,
        idx: usize,
        meta: &Scope,
        seen: &mut Vec<bool>,
        order: &mut Vec<usize>,
    ) {
        if seen[idx] {
            return;
        }
        seen[idx] = true;
        for dep in dependencies(dockerfile, idx, meta) {
            visit(dockerfile, dep, meta, seen, order);
        }
        order.push(idx);
    }
    let mut seen = vec![false; dockerfile.stages.len()];
    let mut order = Vec::new();
    visit(dockerfile, target, meta, &mut seen, &mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> Option<i64> {
        let dockerfile = buildr_parser::parse("Dockerfile", text.as_bytes()).unwrap();
        bad_copy_index(&dockerfile).map(|(_, index)| index)
    }

    #[test]
    fn copy_from_numbers_must_be_stage_indexes() {
        assert_eq!(bad("FROM scratch\nCOPY --from=5 /x /x\n"), Some(5));
        assert_eq!(bad("FROM scratch\nCOPY --from=-1 /x /x\n"), Some(-1));
        // Any stage counts, reachable or not, and any stage index is fine.
        let two = "FROM scratch AS a\nCOPY --from=+2 /x /x\nFROM scratch\nCOPY --from=01 /x /x\n";
        assert_eq!(bad(two), Some(2));
        assert_eq!(
            bad("FROM scratch\nFROM scratch\nCOPY --from=0 /x /x\n"),
            None
        );
        // Not a number: a stage name or an image.
        assert_eq!(bad("FROM scratch\nCOPY --from=5a /x /x\n"), None);
        assert_eq!(
            bad("FROM scratch\nCOPY --from=99999999999999999999 /x /x\n"),
            None
        );
    }

    fn reachable_of(text: &str, target: &str) -> Vec<usize> {
        let dockerfile = buildr_parser::parse("Dockerfile", text.as_bytes()).expect("parses");
        let idx = self::target(&dockerfile, Some(target)).expect("target");
        reachable(&dockerfile, idx, &Scope::default())
    }

    #[test]
    fn onbuild_triggers_of_a_base_stage_name_stages() {
        let text = "FROM scratch AS src\n\
                    FROM scratch AS unused\n\
                    FROM scratch AS base\n\
                    ONBUILD COPY --from=src /a /b\n\
                    FROM base AS mid\n";
        assert_eq!(reachable_of(text, "mid"), vec![2, 0, 3]);
        // The triggers run in the child only, not in the stage recording them.
        assert_eq!(reachable_of(text, "base"), vec![2]);
    }
}
