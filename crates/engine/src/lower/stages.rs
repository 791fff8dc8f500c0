//! Which stages a build needs: the target (`--target` or the last stage)
//! and, transitively, every stage it names in `FROM`, `COPY --from` or
//! `RUN --mount=from=`, its own or in the ONBUILD triggers of its base
//! stage. Nothing else is resolved or run.

use buildr_parser::{Dockerfile, Instruction, Lexer, MountKind};

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
                    "target stage {name:?} could not be found in {}",
                    dockerfile.file
                ),
            }),
    }
}

/// The stages each stage depends on (by index), expanding names with the
/// global scope.
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
            && dep != idx
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
