//! Lowering: a parsed Dockerfile and the build's options into a solver
//! graph of ops, one file per concern (`stages.rs` which stages, `base.rs`
//! base images, resolved through [`base::BaseImages`], `args.rs` ARG
//! scoping, `config.rs` config-only instructions, `run.rs` and `copy.rs`
//! the filesystem steps).
//!
//! Vertices exist for FROM, RUN, COPY/ADD and WORKDIR; every other
//! instruction changes the config at lowering time and therefore the
//! definitions of later vertices (as BuildKit does). Identical prefixes of
//! stages dedupe in the graph by digest.

pub(crate) mod args;
pub(crate) mod base;
pub(crate) mod config;
pub(crate) mod copy;
pub(crate) mod onbuild;
pub(crate) mod run;
pub(crate) mod stages;

#[cfg(test)]
mod dump;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use buildr_oci::ImageConfig;
use buildr_parser::{Dockerfile, Instruction, Lexer, Spanned};
use buildr_solver::{BoxError, ExecCtx, Graph, GraphBuilder, Op, VertexId};

use self::args::{BuildArgs, Scope, platform_args};
use self::config::StageConfig;
use crate::context::BuildContext;
use crate::error::{Error, Result};
use crate::ops::State;
use crate::ops::commit::Env;
use crate::ops::copy::{CopyOp, LinkOp};
use crate::ops::export::Step;
use crate::ops::from::FromOp;
use crate::ops::run::RunOp;

/// Everything lowering needs besides the Dockerfile.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub dockerfile: &'a Dockerfile,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `os/arch[/variant]` of the image.
    pub platform: String,
    pub network: buildr_exec::Network,
    pub allow_host_network: bool,
    /// `--secret` and `--ssh` sources (never their values).
    pub secrets: Arc<crate::build::Secrets>,
    pub no_cache_filter: Vec<String>,
    /// Where `FROM` and `--from` images are resolved: the store and its
    /// registries ([`base::StoreImages`]) in a build.
    pub base_images: &'a dyn base::BaseImages,
    pub context: Arc<BuildContext>,
    pub env: Env,
}

/// The lowered build.
pub(crate) struct Lowered {
    pub graph: Graph<State>,
    pub target: VertexId,
    /// The target stage's config; history holds the base image's entries.
    pub config: ImageConfig,
    /// The target stage's own history entries.
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    /// Indices of the stages that were lowered (dependencies first).
    pub stages: Vec<usize>,
    /// Every vertex added, in order, with its typed op (see `dump.rs`).
    #[cfg(test)]
    pub added: Vec<dump::Added>,
}

/// A lowered stage: its last vertex, config and history.
#[derive(Clone)]
pub(crate) struct StageOut {
    pub vertex: VertexId,
    pub config: StageConfig,
    pub steps: Vec<Step>,
    /// The ARGs in effect at the stage's end, which a stage built `FROM`
    /// it inherits (BuildKit keeps them in the LLB state's env).
    pub args: Scope,
}

/// The state of lowering one build.
pub(crate) struct Lowering<'a> {
    pub plan: &'a Plan<'a>,
    pub graph: GraphBuilder<State>,
    pub lexer: Lexer,
    pub meta: Scope,
    pub build_args: BuildArgs,
    /// `RUN`'s hostname from `BUILDKIT_SANDBOX_HOSTNAME`, else the default.
    pub hostname: Option<String>,
    pub outs: HashMap<usize, StageOut>,
    /// FROM vertices made so far, by expanded reference and whether the
    /// stage asking is in `--no-cache-filter` (its FROM is uncached; an
    /// unfiltered stage on the same image keeps a cached one).
    pub bases: HashMap<(String, bool), (VertexId, ImageConfig)>,
    /// Base images resolved so far, by expanded reference: each is
    /// resolved (and pulled) once.
    pub resolved: HashMap<String, crate::image::Image>,
    pub nonce: u128,
    /// Every vertex added, with its typed op, for the lowering tests' dump.
    #[cfg(test)]
    pub added: Vec<dump::Added>,
}

pub(crate) fn lower(plan: &Plan<'_>) -> Result<Lowered> {
    let dockerfile = plan.dockerfile;
    let lexer = Lexer::new(dockerfile.directives.escape);
    let mut build_args = BuildArgs {
        given: plan.build_args.clone(),
        ..BuildArgs::default()
    };
    let mut meta = Scope::default();
    let build_platform = format!("linux/{}", crate::image::host_architecture());
    for (name, value) in platform_args(&plan.platform, &build_platform) {
        meta.set(&name, &value);
    }
    for arg in &dockerfile.meta_args {
        for decl in &arg.value.args {
            let value = match build_args.take(&decl.name) {
                Some(value) => Some(value),
                None => match &decl.default {
                    Some(default) => Some(expand(&lexer, default, &meta.pairs(), dockerfile, arg)?),
                    None => None,
                },
            };
            meta.set(&decl.name, value.as_deref().unwrap_or(""));
        }
    }
    // As BuildKit, first of all: every stage's base, used or not, must
    // expand to a name.
    for stage in &dockerfile.stages {
        let at = Spanned {
            value: (),
            span: stage.span,
            source: stage.source.clone(),
        };
        if expand(&lexer, &stage.base, &meta.pairs(), dockerfile, &at)?.is_empty() {
            return Err(Error::Build {
                location: format!("{}:{}", dockerfile.file, stage.span.start.line),
                message: format!("base name ({}) should not be blank", stage.base),
            });
        }
    }
    let hostname = build_args.sandbox_hostname()?;
    let target = stages::target(dockerfile, plan.target.as_deref())?;
    stages::circular(dockerfile, &meta)?;
    let order = stages::reachable(dockerfile, target, &meta);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ u128::from(std::process::id());
    let mut lowering = Lowering {
        plan,
        graph: GraphBuilder::new(),
        lexer,
        meta,
        build_args,
        hostname,
        outs: HashMap::new(),
        bases: HashMap::new(),
        resolved: HashMap::new(),
        nonce,
        #[cfg(test)]
        added: Vec::new(),
    };
    if let Some((at, index)) = stages::bad_copy_index(dockerfile) {
        return Err(Error::Build {
            location: lowering.location(at),
            message: format!("invalid stage index {index}"),
        });
    }
    for &idx in &order {
        let out = lowering.stage(idx)?;
        lowering.outs.insert(idx, out);
    }
    let out = lowering
        .outs
        .remove(&target)
        .ok_or_else(|| Error::BuildOption {
            message: "the target stage was not lowered".to_owned(),
        })?;
    let mut warnings = Vec::new();
    let unused = lowering.build_args.unused();
    if !unused.is_empty() {
        warnings.push(format!(
            "one or more build-args [{}] were not consumed",
            unused.join(" ")
        ));
    }
    let graph = lowering.graph.build()?;
    Ok(Lowered {
        graph,
        target: out.vertex,
        config: out.config.image,
        steps: out.steps,
        warnings,
        stages: order,
        #[cfg(test)]
        added: lowering.added,
    })
}

/// Expands one word, located at `at` for errors.
pub(crate) fn expand<T>(
    lexer: &Lexer,
    word: &str,
    env: &[(String, String)],
    dockerfile: &Dockerfile,
    at: &Spanned<T>,
) -> Result<String> {
    lexer
        .process_word(word, &env)
        .map(|r| r.value)
        .map_err(|e| Error::Build {
            location: format!("{}:{}", dockerfile.file, at.span.start.line),
            message: format!("{}: {e}", at.source),
        })
}

impl Lowering<'_> {
    fn location<T>(&self, at: &Spanned<T>) -> String {
        format!("{}:{}", self.plan.dockerfile.file, at.span.start.line)
    }

    /// Adds a vertex; in a `--no-cache-filter` stage its definition gets a
    /// per-build nonce so no earlier result can match.
    pub(crate) fn add(
        &mut self,
        op: LoweredOp,
        inputs: &[VertexId],
        location: String,
        uncached: bool,
    ) -> VertexId {
        let shared = op.shared();
        let shared: Arc<dyn Op<State>> = if uncached {
            Arc::new(Uncached {
                inner: shared,
                nonce: self.nonce,
            })
        } else {
            shared
        };
        let vertex = self.graph.add_shared(shared, inputs, location);
        #[cfg(test)]
        self.added.push(dump::Added {
            vertex,
            op,
            inputs: inputs.to_vec(),
            uncached,
        });
        vertex
    }

    fn stage(&mut self, idx: usize) -> Result<StageOut> {
        let dockerfile = self.plan.dockerfile;
        let stage = &dockerfile.stages[idx];
        let label = stage.name.clone().unwrap_or_else(|| format!("stage-{idx}"));
        let uncached = stage.name.as_ref().is_some_and(|n| {
            self.plan
                .no_cache_filter
                .iter()
                .any(|f| f.eq_ignore_ascii_case(n))
        });
        let from_at = Spanned {
            value: (),
            span: stage.span,
            source: stage.source.clone(),
        };
        let location = self.location(&from_at);
        let base = expand(
            &self.lexer,
            &stage.base,
            &self.meta.pairs(),
            dockerfile,
            &from_at,
        )?;
        let base_stage = dockerfile
            .stage_by_name(&base)
            .map(|(i, _)| i)
            .filter(|i| *i < idx);

        // As BuildKit's `cmdTotal`: the FROM of an image (not of scratch,
        // not of an earlier stage) and the stage's own RUN, COPY, ADD and
        // WORKDIR. ONBUILD triggers are not counted, though they take
        // numbers (BuildKit shows `[3/2]`).
        let own = stage
            .instructions
            .iter()
            .filter(|i| makes_vertex(&i.value))
            .count();
        let counts_from = base != "scratch" && base_stage.is_none();
        let n = own + usize::from(counts_from);
        let prefix = stage_prefix(dockerfile, &label);
        // The ONBUILD triggers of the base (image or stage) run first.
        let (vertex, config, steps, inherited, triggers) = match base_stage {
            Some(dep) => {
                let out = self.outs.get(&dep).cloned().ok_or_else(|| Error::Build {
                    location: location.clone(),
                    message: format!("stage {base:?} is used before it is built"),
                })?;
                let mut config = out.config;
                config.cmd_set = false;
                // Its own ONBUILD lines run here; a child never inherits them.
                let recorded = onbuild::recorded(&dockerfile.stages[dep]);
                let triggers = onbuild::parse(dockerfile, &recorded, stage.span)?;
                config.config().on_build = None;
                (out.vertex, config, out.steps, out.args, triggers)
            }
            None => {
                let title = if counts_from {
                    step_prefix(prefix.as_deref(), 1, n)
                } else {
                    String::new()
                };
                let (vertex, image) = self.base_image(&base, &location, &title, uncached)?;
                let on_build = image
                    .config
                    .as_ref()
                    .and_then(|c| c.on_build.clone())
                    .unwrap_or_default();
                let triggers = onbuild::parse(dockerfile, &on_build, stage.span)?;
                (
                    vertex,
                    StageConfig::new(image),
                    Vec::new(),
                    Scope::default(),
                    triggers,
                )
            }
        };
        let mut state = StageLowering {
            idx,
            label,
            prefix,
            n,
            k: usize::from(counts_from),
            vertex,
            config,
            steps,
            args: Scope::default(),
            inherited,
            uncached,
        };
        for instruction in triggers.iter().chain(&stage.instructions) {
            self.instruction(&mut state, instruction)?;
        }
        let args = state.args_in_effect();
        Ok(StageOut {
            vertex: state.vertex,
            config: state.config,
            steps: state.steps,
            args,
        })
    }

    fn instruction(&mut self, st: &mut StageLowering, at: &Spanned<Instruction>) -> Result<()> {
        let dockerfile = self.plan.dockerfile;
        let env = st.expand_env();
        let word = |this: &Self, w: &str| expand(&this.lexer, w, &env, dockerfile, at);
        match &at.value {
            Instruction::Arg(arg) => {
                // As BuildKit: an empty-layer history entry naming each
                // declaration with its expanded default (not the value
                // given with --build-arg).
                let mut parts = Vec::new();
                for decl in &arg.args {
                    let default = match &decl.default {
                        Some(default) => Some(word(self, default)?),
                        None => None,
                    };
                    parts.push(match &default {
                        Some(default) => format!("{}={default}", decl.name),
                        None => decl.name.clone(),
                    });
                    let value = match self.build_args.take(&decl.name) {
                        Some(value) => Some(value),
                        None => default.or_else(|| self.meta.get(&decl.name).map(str::to_owned)),
                    };
                    if let Some(value) = value {
                        st.args.set(&decl.name, &value);
                    }
                }
                st.steps.push(Step {
                    created_by: format!("ARG {}", parts.join(" ")),
                    from_op: false,
                    comment: None,
                });
            }
            Instruction::Env(pairs) => {
                let mut parts = Vec::new();
                for pair in pairs {
                    let key = word(self, &pair.key)?;
                    let value = word(self, &pair.value)?;
                    st.config.set_env(&key, &value);
                    parts.push(format!("{key}={value}"));
                }
                st.steps.push(Step {
                    created_by: format!("ENV {}", parts.join(" ")),
                    from_op: false,
                    comment: None,
                });
            }
            Instruction::Run(run) => self.run(st, at, run, &env)?,
            Instruction::Copy(copy) => self.copy(st, at, copy, &env, false)?,
            Instruction::Add(copy) => self.copy(st, at, copy, &env, true)?,
            Instruction::Workdir(dir) => self.workdir(st, at, &word(self, dir)?)?,
            other => {
                let words = match other {
                    Instruction::Label(pairs) => {
                        let mut words = Vec::new();
                        for pair in pairs {
                            words.push(word(self, &pair.key)?);
                            words.push(word(self, &pair.value)?);
                        }
                        words
                    }
                    Instruction::Maintainer(name) => vec![name.clone()],
                    Instruction::Expose(ports) => {
                        let mut words = Vec::new();
                        for port in ports {
                            words.extend(self.lexer.process_words(port, &env).map_err(|e| {
                                Error::Build {
                                    location: self.location(at),
                                    message: format!("{}: {e}", at.source),
                                }
                            })?);
                        }
                        words
                    }
                    Instruction::Volume(volumes) => volumes
                        .iter()
                        .map(|v| word(self, v))
                        .collect::<Result<_>>()?,
                    Instruction::User(user) => vec![word(self, user)?],
                    Instruction::Stopsignal(signal) => vec![word(self, signal)?],
                    _ => Vec::new(),
                };
                if let Some(created_by) = st.config.apply(other, &words) {
                    st.steps.push(Step {
                        created_by,
                        from_op: false,
                        comment: None,
                    });
                }
            }
        }
        Ok(())
    }

    fn workdir(
        &mut self,
        st: &mut StageLowering,
        at: &Spanned<Instruction>,
        dir: &str,
    ) -> Result<()> {
        let path = if dir.starts_with('/') {
            dir.to_owned()
        } else {
            format!("{}/{dir}", st.config.workdir())
        };
        let path = format!("/{}", crate::gopath::clean_relative(&path));
        st.config.config().working_dir = Some(path.clone());
        let name = st.title(&self.lexer, &at.source);
        // As BuildKit: the directory belongs to the USER in effect.
        let user = st.config.user();
        let op = CopyOp {
            name,
            location: self.location(at),
            source: crate::ops::copy::Source::Mkdir,
            sources: Vec::new(),
            dest: path.clone(),
            dest_is_dir: true,
            chown: (!user.is_empty()).then_some(user),
            chmod: None,
            unpack: false,
            excludes: Vec::new(),
            parents: false,
            link: false,
            env: self.plan.env.clone(),
            selection: std::sync::Mutex::new(None),
            explain_id: std::sync::Mutex::new(None),
        };
        let location = self.location(at);
        st.vertex = self.add(
            LoweredOp::Copy(Arc::new(op)),
            &[st.vertex],
            location,
            st.uncached,
        );
        st.steps.push(Step {
            created_by: format!("WORKDIR {path}"),
            from_op: true,
            comment: Some("buildkit.dockerfile.v0".to_owned()),
        });
        Ok(())
    }
}

/// Per-stage lowering state.
pub(crate) struct StageLowering {
    /// The stage's index in the Dockerfile.
    pub idx: usize,
    pub label: String,
    /// The stage in progress titles (`build`, `stage-1`); `None` when
    /// BuildKit leaves it out (a file of one stage and no implicit ones).
    pub prefix: Option<String>,
    /// Steps BuildKit counts in the stage, and the last one numbered.
    pub n: usize,
    pub k: usize,
    pub vertex: VertexId,
    pub config: StageConfig,
    pub steps: Vec<Step>,
    /// ARGs declared in this stage, with values.
    pub args: Scope,
    /// ARGs in effect at the end of the stage this one is built `FROM`:
    /// in effect here too, but not named in this stage's history.
    pub inherited: Scope,
    pub uncached: bool,
}

impl StageLowering {
    /// Variables words are expanded with: args, then env (env wins).
    pub(crate) fn expand_env(&self) -> Vec<(String, String)> {
        let mut env = self.args_in_effect().pairs();
        env.extend(self.config.env());
        env
    }

    /// The inherited ARGs overlaid with this stage's own.
    pub(crate) fn args_in_effect(&self) -> Scope {
        let mut args = self.inherited.clone();
        for (name, value) in self.args.iter() {
            args.set(name, value);
        }
        args
    }

    /// The next vertex's progress title, as BuildKit's
    /// `prefixCommand(uppercaseCmd(processCmdEnv(text)))`: `[build 2/4]`,
    /// the keyword upper-cased, the rest with the stage's ARGs and ENV
    /// expanded by `lexer` (left as written when it cannot expand).
    pub(crate) fn title(&mut self, lexer: &Lexer, text: &str) -> String {
        self.k += 1;
        let text = text.lines().next().unwrap_or(text);
        let env = self.expand_env();
        let expanded = lexer
            .process_word(text, &env)
            .map_or_else(|_| text.to_owned(), |r| r.value);
        let title = match expanded.split_once(' ') {
            Some((keyword, rest)) => format!("{} {rest}", keyword.to_uppercase()),
            None => expanded.to_uppercase(),
        };
        format!(
            "{}{title}",
            step_prefix(self.prefix.as_deref(), self.k, self.n)
        )
    }
}

/// BuildKit's step prefix: `[stage k/n] `, `k` padded to the width of `n`,
/// the stage left out when `stage` is `None`; nothing when `n` is 0.
fn step_prefix(stage: Option<&str>, k: usize, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let width = n.to_string().len();
    match stage {
        Some(stage) => format!("[{stage} {k:>width$}/{n}] "),
        None => format!("[{k:>width$}/{n}] "),
    }
}

/// The stage as BuildKit names it in titles: not at all when the file
/// has one stage and nothing makes an implicit one (a `COPY --from` that
/// is no stage index, or a `RUN` with any `--mount`: BuildKit adds a
/// state for each such source before counting the stages).
fn stage_prefix(dockerfile: &Dockerfile, label: &str) -> Option<String> {
    let implicit = |i: &Spanned<Instruction>| match &i.value {
        Instruction::Copy(copy) => copy
            .from
            .as_deref()
            .is_some_and(|from| from.parse::<i64>().is_err()),
        Instruction::Run(run) => !run.mounts.is_empty(),
        _ => false,
    };
    let alone = dockerfile.stages.len() == 1
        && !dockerfile
            .stages
            .iter()
            .any(|s| s.instructions.iter().any(implicit));
    (!alone).then(|| label.to_owned())
}

fn makes_vertex(instruction: &Instruction) -> bool {
    matches!(
        instruction,
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_)
    )
}

/// A vertex's op with its type: what [`Lowering::add`] takes, so the
/// lowering tests can show what each step was lowered to.
#[derive(Clone)]
pub(crate) enum LoweredOp {
    From(Arc<FromOp>),
    Run(Arc<RunOp>),
    Copy(Arc<CopyOp>),
    Link(Arc<LinkOp>),
}

impl LoweredOp {
    /// The op as the solver holds it (the same allocation).
    fn shared(&self) -> Arc<dyn Op<State>> {
        match self {
            LoweredOp::From(op) => Arc::clone(op) as Arc<dyn Op<State>>,
            LoweredOp::Run(op) => Arc::clone(op) as Arc<dyn Op<State>>,
            LoweredOp::Copy(op) => Arc::clone(op) as Arc<dyn Op<State>>,
            LoweredOp::Link(op) => Arc::clone(op) as Arc<dyn Op<State>>,
        }
    }
}

/// An op whose definition carries a per-build nonce (`--no-cache-filter`).
struct Uncached {
    inner: Arc<dyn Op<State>>,
    nonce: u128,
}

impl Op<State> for Uncached {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn definition(&self) -> Vec<u8> {
        let mut def = self.inner.definition();
        def.extend_from_slice(b"buildr/no-cache");
        def.extend_from_slice(&self.nonce.to_le_bytes());
        def
    }

    fn content_key(
        &self,
        inputs: &[&State],
        ctx: &ExecCtx,
    ) -> std::result::Result<Option<buildr_solver::ContentHash>, BoxError> {
        self.inner.content_key(inputs, ctx)
    }

    fn execute(&self, inputs: &[State], ctx: &ExecCtx) -> std::result::Result<State, BoxError> {
        self.inner.execute(inputs, ctx)
    }

    fn explain_miss(&self) -> Option<String> {
        Some("--no-cache-filter".to_owned())
    }
}
