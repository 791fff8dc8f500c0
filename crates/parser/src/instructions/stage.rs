//! From nodes to a [`Dockerfile`]: type every node, group instructions into
//! stages, check what needs the whole file (ARG-only before the first FROM,
//! unique stage names), run the lint rules.

use super::{
    ArgInstruction, CommandLine, Dockerfile, Instruction, Onbuild, Problem, Req, Result, Spanned,
    Stage, config, copy, from, healthcheck, make_diagnostic, run,
};
use crate::ast::{Args, Ast, Node};
use crate::diag::{Diagnostic, ParseError, Pos, Severity};
use crate::lint::{self, CheckConfig, Rule};
use crate::suggest::{buildkit_hint, did_you_mean};

/// Every instruction keyword, in the order suggestions prefer.
const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "ARG",
    "LABEL",
    "EXPOSE",
    "USER",
    "WORKDIR",
    "VOLUME",
    "SHELL",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "MAINTAINER",
];

pub(crate) fn build(ast: Ast) -> std::result::Result<Dockerfile, ParseError> {
    let check = CheckConfig::parse(ast.directives.check.as_deref());
    let mut grouping = Grouping::default();
    for node in &ast.nodes {
        grouping.node(node, &ast.lines);
    }
    let Grouping {
        mut errors,
        mut warnings,
        meta_args,
        stages,
        keywords,
        ..
    } = grouping;

    for problem in lint::instruction_casing(&keywords) {
        warnings.push((Rule::ConsistentInstructionCasing, problem));
    }

    if errors.is_empty() && stages.is_empty() {
        let pos = ast
            .nodes
            .first()
            .map_or(Pos { line: 1, col: 1 }, |n| n.span.start);
        errors.push(
            Problem::new(pos, "dockerfile contains no stages to build")
                .help("add `FROM <image>` to start a build stage"),
        );
    }

    let file = ast.file;
    let lines = ast.lines;
    let found = Found {
        scanned: ast.warnings,
        errors,
        warnings,
    };
    let warnings = found.into_diagnostics(&file, &lines, &check)?;
    Ok(Dockerfile {
        file,
        lines,
        directives: ast.directives,
        meta_args,
        stages,
        warnings,
    })
}

/// The pass over the nodes: each typed and grouped into its stage (or,
/// ARG only, before the first), with the problems found on the way and
/// the per-stage state of the lint rules.
#[derive(Default)]
struct Grouping<'a> {
    errors: Vec<Problem>,
    warnings: Vec<(Rule, Problem)>,
    meta_args: Vec<Spanned<ArgInstruction>>,
    stages: Vec<Stage>,
    /// Per stage: whether a SHELL instruction was seen (JSONArgsRecommended
    /// is not reported once the stage has its own shell).
    has_shell: bool,
    /// Keywords of FROM lines and stage instructions, as written.
    keywords: Vec<(&'a str, Pos)>,
    /// Per stage: where the last CMD, ENTRYPOINT and HEALTHCHECK were.
    used_once: [Option<Pos>; 3],
}

impl<'a> Grouping<'a> {
    /// One node: a FROM starts a stage, anything else is typed and joins
    /// the current stage; an error is recorded and the pass goes on.
    fn node(&mut self, node: &'a Node, lines: &'a [String]) {
        let req = Req::new(node, lines);
        let source = node.original.trim().to_string();
        if node.keyword == "from" {
            self.from(&req, source);
            return;
        }
        let instruction = match typed(&req) {
            Ok(instruction) => instruction,
            Err(problem) => {
                self.errors.push(problem);
                return;
            }
        };
        let Some(stage) = self.stages.last_mut() else {
            self.before_first_stage(&req, instruction, source);
            return;
        };
        stage_lints(
            &instruction,
            node.span.start,
            &req,
            &mut self.has_shell,
            &mut self.used_once,
            &mut self.warnings,
        );
        self.keywords.push((req.written, node.span.start));
        stage.instructions.push(Spanned {
            value: instruction,
            span: node.span,
            source,
        });
    }

    /// A FROM line: a new stage, and the per-stage lint state reset. A
    /// FROM that does not parse still opens a (nameless) stage, so one bad
    /// FROM does not also report "before the first FROM".
    fn from(&mut self, req: &Req<'a>, source: String) {
        let node = req.node;
        self.has_shell = false;
        self.used_once = [None; 3];
        self.keywords.push((req.written, node.span.start));
        let stage = match from::parse(req) {
            Ok(parsed) => {
                from_checks(
                    req,
                    &parsed,
                    &self.stages,
                    &mut self.errors,
                    &mut self.warnings,
                );
                Stage {
                    name: parsed.name,
                    base: parsed.base,
                    platform: parsed.platform,
                    span: node.span,
                    source,
                    instructions: Vec::new(),
                }
            }
            Err(problem) => {
                self.errors.push(problem);
                Stage {
                    name: None,
                    base: String::new(),
                    platform: None,
                    span: node.span,
                    source,
                    instructions: Vec::new(),
                }
            }
        };
        self.stages.push(stage);
    }

    /// An instruction before the first FROM: an ARG is a meta ARG,
    /// anything else an error.
    fn before_first_stage(&mut self, req: &Req<'a>, instruction: Instruction, source: String) {
        let node = req.node;
        if let Instruction::Arg(arg) = instruction {
            self.meta_args.push(Spanned {
                value: arg,
                span: node.span,
                source,
            });
            return;
        }
        self.errors.push(
            Problem::new(
                node.span.start,
                format!(
                    "no build stage in current context: {} comes before the first FROM",
                    req.written
                ),
            )
            .help("only ARG may come before the first FROM; start a stage with `FROM <image>`"),
        );
    }
}

/// What a parse found, before it becomes diagnostics.
struct Found {
    /// The scanner's warnings (empty continuation lines, ...).
    scanned: Vec<Diagnostic>,
    errors: Vec<Problem>,
    /// Lint problems, each with its rule.
    warnings: Vec<(Rule, Problem)>,
}

impl Found {
    /// The warnings of a successful parse, sorted by position; or the
    /// errors with the warnings alongside. Only enabled rules report
    /// (empty continuations included), as errors under `check=error=true`.
    fn into_diagnostics(
        self,
        file: &str,
        lines: &[String],
        check: &CheckConfig,
    ) -> std::result::Result<Vec<Diagnostic>, ParseError> {
        let diag = |severity: Severity, p: Problem| {
            make_diagnostic(file, lines, severity, p.pos, p.message, p.help)
        };
        let mut all_warnings: Vec<Diagnostic> = self
            .scanned
            .into_iter()
            .filter(|w| {
                check.enabled(Rule::NoEmptyContinuation)
                    || !w
                        .message
                        .to_ascii_lowercase()
                        .contains("empty continuation")
            })
            .collect();
        let mut lint_errors = Vec::new();
        for (rule, problem) in self.warnings {
            if !check.enabled(rule) {
                continue;
            }
            if check.error {
                lint_errors.push(diag(Severity::Error, problem));
            } else {
                all_warnings.push(diag(Severity::Warning, problem));
            }
        }
        all_warnings.sort_by_key(|w| w.pos);

        let mut diagnostics: Vec<Diagnostic> = self
            .errors
            .into_iter()
            .map(|p| diag(Severity::Error, p))
            .collect();
        diagnostics.extend(lint_errors);
        if !diagnostics.is_empty() {
            // The warnings travel with the errors, so a failed check still shows them.
            diagnostics.extend(all_warnings);
            diagnostics.sort_by_key(|d| d.pos);
            return Err(ParseError { diagnostics });
        }
        Ok(all_warnings)
    }
}

/// The lint rules one instruction of a stage can break: CMD, ENTRYPOINT
/// or HEALTHCHECK given twice, legacy `KEY value` ENV and LABEL,
/// MAINTAINER, shell-form CMD and ENTRYPOINT without a SHELL (per stage:
/// `has_shell`, `used_once` are reset at each FROM).
fn stage_lints(
    instruction: &Instruction,
    pos: Pos,
    req: &Req<'_>,
    has_shell: &mut bool,
    used_once: &mut [Option<Pos>; 3],
    warnings: &mut Vec<(Rule, Problem)>,
) {
    let once_slot = match instruction {
        Instruction::Cmd(_) => Some(0),
        Instruction::Entrypoint(_) => Some(1),
        Instruction::Healthcheck(_) => Some(2),
        _ => None,
    };
    if let Some(slot) = once_slot {
        if let Some(earlier) = used_once[slot] {
            warnings.push((
                Rule::MultipleInstructionsDisallowed,
                lint::multiple_instructions(earlier, &req.upper),
            ));
        }
        used_once[slot] = Some(pos);
    }
    match instruction {
        Instruction::Env(pairs) | Instruction::Label(pairs) if pairs.iter().any(|p| p.legacy) => {
            warnings.push((
                Rule::LegacyKeyValueFormat,
                lint::legacy_key_value(pos, &req.upper),
            ));
        }
        Instruction::Maintainer(_) => {
            warnings.push((Rule::MaintainerDeprecated, lint::maintainer(pos)));
        }
        Instruction::Shell(_) => *has_shell = true,
        Instruction::Cmd(CommandLine::Shell(cmd))
        | Instruction::Entrypoint(CommandLine::Shell(cmd))
            if !*has_shell =>
        {
            let hint = config::json_hint(std::slice::from_ref(cmd));
            warnings.push((
                Rule::JsonArgsRecommended,
                lint::json_args(pos, &req.upper, &hint),
            ));
        }
        _ => {}
    }
}

/// Duplicate stage names (error) and the FROM lint rules.
fn from_checks(
    req: &Req<'_>,
    parsed: &from::From,
    stages: &[Stage],
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<(Rule, Problem)>,
) {
    let (Some(name), Some(written)) = (&parsed.name, &parsed.written_name) else {
        return;
    };
    let name_pos = req.pos_of(written);
    if let Some(first) = stages.iter().find(|s| s.name.as_ref() == Some(name)) {
        errors.push(
            Problem::new(
                name_pos,
                format!("duplicate stage name {name:?}, stage names should be unique"),
            )
            .help(format!(
                "{name:?} is already the name of the stage at line {}",
                first.span.start.line
            )),
        );
    }
    if written != name {
        warnings.push((
            Rule::StageNameCasing,
            lint::stage_name_casing(name_pos, written),
        ));
    }
    if let Some(as_kw) = &parsed.written_as
        && let Some(w) = lint::from_as_casing(req.pos_of(as_kw), req.written, as_kw)
    {
        warnings.push((Rule::FromAsCasing, w));
    }
    if let Some(w) = lint::reserved_stage_name(name_pos, name) {
        warnings.push((Rule::ReservedStageName, w));
    }
}

/// Type one node that is not FROM.
fn typed(req: &Req<'_>) -> Result<Instruction> {
    Ok(match req.node.keyword.as_str() {
        "run" => Instruction::Run(run::parse(req)?),
        "cmd" => Instruction::Cmd(config::command(req)?),
        "entrypoint" => Instruction::Entrypoint(config::command(req)?),
        "label" => Instruction::Label(config::key_values(req)?),
        "env" => Instruction::Env(config::key_values(req)?),
        "maintainer" => Instruction::Maintainer(config::exactly_one(req)?),
        "expose" => Instruction::Expose(config::expose(req)?),
        "add" => Instruction::Add(copy::parse(req, true)?),
        "copy" => Instruction::Copy(copy::parse(req, false)?),
        "volume" => Instruction::Volume(config::volume(req)?),
        "user" => Instruction::User(config::exactly_one(req)?),
        "workdir" => Instruction::Workdir(config::exactly_one(req)?),
        "arg" => Instruction::Arg(config::arg(req)?),
        "stopsignal" => Instruction::Stopsignal(config::exactly_one(req)?),
        "healthcheck" => Instruction::Healthcheck(healthcheck::parse(req)?),
        "shell" => Instruction::Shell(config::shell(req)?),
        "onbuild" => Instruction::Onbuild(onbuild(req)?),
        "from" => {
            // Only reachable as an ONBUILD trigger; onbuild() rejects it.
            return Err(Problem::new(req.start(), "FROM isn't allowed here"));
        }
        _ => return Err(unknown_instruction(req)),
    })
}

fn unknown_instruction(req: &Req<'_>) -> Problem {
    let message = format!("unknown instruction: {}", req.written);
    match did_you_mean(req.written, KEYWORDS, false) {
        Some(best) => {
            // BuildKit's names are lower case: only an all-upper word gets
            // an upper-case suggestion there.
            let theirs = if req.written == req.written.to_uppercase() {
                best.clone()
            } else {
                best.to_lowercase()
            };
            Problem::new(req.start(), message + &buildkit_hint(&theirs))
                .help(format!("did you mean `{best}`?"))
        }
        None => Problem::new(req.start(), message)
            .help(format!("expected one of {}", KEYWORDS.join(", "))),
    }
}

fn onbuild(req: &Req<'_>) -> Result<Onbuild> {
    let inner: &Node = match &req.node.args {
        Args::Nested(inner) => inner,
        _ => {
            let (words, _) = req.words();
            return Err(match words.first() {
                None => Problem::new(
                    req.after_keyword(),
                    "ONBUILD requires at least one argument",
                )
                .help("expected `ONBUILD <instruction>`"),
                Some(word) => Problem::new(
                    req.pos_of(word),
                    format!("ONBUILD trigger {word:?} is not an instruction"),
                )
                .help("expected `ONBUILD <instruction>`"),
            });
        }
    };
    super::flags::Flags::parse(req, &[])?;
    let inner_req = Req::new(inner, req.lines);
    let trigger = inner_req.upper.as_str();
    let pos = inner.span.start;
    match trigger {
        "ONBUILD" => {
            return Err(
                Problem::new(pos, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                    .help("an ONBUILD trigger cannot itself be ONBUILD"),
            );
        }
        "FROM" | "MAINTAINER" => {
            return Err(Problem::new(
                pos,
                format!("{trigger} isn't allowed as an ONBUILD trigger"),
            )
            .help("ONBUILD takes any instruction but ONBUILD, FROM and MAINTAINER"));
        }
        _ => {}
    }
    let instruction = typed(&inner_req)?;
    Ok(Onbuild {
        instruction: Box::new(instruction),
        expression: onbuild_expression(req),
    })
}

/// The trigger text: the original line without the `ONBUILD` keyword, and
/// any heredoc bodies with their terminators, as BuildKit stores it.
fn onbuild_expression(req: &Req<'_>) -> String {
    let original = req.node.original.trim_start();
    let rest = original
        .get(req.written.len()..)
        .filter(|_| {
            original
                .get(..req.written.len())
                .is_some_and(|k| k.eq_ignore_ascii_case("onbuild"))
        })
        .unwrap_or(original)
        .trim_start();
    let mut expression = rest.to_string();
    let heredocs = match &req.node.args {
        Args::Nested(inner) if req.node.heredocs.is_empty() => &inner.heredocs,
        _ => &req.node.heredocs,
    };
    for heredoc in heredocs {
        expression.push('\n');
        expression.push_str(&heredoc.content);
        expression.push_str(&heredoc.name);
    }
    expression
}
