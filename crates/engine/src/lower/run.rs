//! Lowering `RUN`: argv through SHELL (heredocs as BuildKit runs them), the
//! environment (image env plus build args in effect, as BuildKit passes
//! ARGs), cwd, user, network and mounts.

use std::path::PathBuf;
use std::sync::Arc;

use buildr_exec::{BindMount, Network, TmpfsMount};
use buildr_parser::{CommandLine, Instruction, Mount, MountKind, Run, Sharing, Spanned};
use buildr_solver::VertexId;

use super::{LoweredOp, Lowering, StageLowering, stages};
use crate::error::{Error, Result};
use crate::ops::export::Step;
use crate::ops::mounts::{InlineFile, SecretMount, SshMount, StageBind};
use crate::ops::run::{CacheMount, RunOp};

impl Lowering<'_> {
    pub(crate) fn run(
        &mut self,
        st: &mut StageLowering,
        at: &Spanned<Instruction>,
        run: &Run,
        expand_env: &[(String, String)],
    ) -> Result<()> {
        let location = self.location(at);
        let fail = |message: String| Error::Build {
            location: location.clone(),
            message,
        };
        let (argv, inline) = heredoc_argv(st, run).map_err(|e| fail(e.to_string()))?;
        let only_heredoc = single_heredoc(run).is_some();
        let (mut env, args) = run_env(st);
        let network = match run.network {
            buildr_parser::Network::None => Network::None,
            buildr_parser::Network::Host => Network::Host,
            buildr_parser::Network::Default => self.plan.network.clone(),
        };
        if network == Network::Host && !self.plan.allow_host_network {
            return Err(fail(
                "network mode \"host\" needs the entitlement: pass --allow network.host".to_owned(),
            ));
        }
        // BuildKit runs these unsandboxed only with `--allow security.insecure`;
        // buildr never does, so the step is refused rather than silently
        // run sandboxed.
        if run.security == buildr_parser::Security::Insecure {
            return Err(fail(
                "--security=insecure needs the entitlement security.insecure, which buildr does not grant (RUN steps always run sandboxed)".to_owned(),
            ));
        }
        let mut inputs = vec![st.vertex];
        let RunMounts {
            tmpfs,
            binds,
            stage_binds,
            caches,
            secrets,
            ssh,
        } = self.run_mounts(st, run, expand_env, &location, &mut inputs)?;
        // As BuildKit: the first agent is the command's SSH_AUTH_SOCK.
        if let Some(first) = ssh.first()
            && !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK="))
        {
            env.push(format!("SSH_AUTH_SOCK={}", first.target));
        }
        let created_by = created_by(st, run, &argv);
        let memo = self.run_memo(st);
        let text = step_text(at, run, only_heredoc);
        let title_lexer = self.lexer.raw_quotes(true).skip_unset_env(true);
        let op = RunOp {
            name: st.title(&title_lexer, &text),
            location: location.clone(),
            argv,
            env,
            proxy_env: self.build_args.proxies(),
            hostname: self.hostname.clone(),
            cwd: st.config.workdir(),
            user: st.config.user(),
            network,
            tmpfs,
            binds,
            stage_binds,
            caches,
            secrets,
            ssh,
            inline: inline.into_iter().collect(),
            sources: Arc::clone(&self.plan.secrets),
            memo: Some(memo),
            args: args.pairs(),
            env_ctx: self.plan.env.clone(),
        };
        st.vertex = self.add(LoweredOp::Run(Arc::new(op)), &inputs, location, st.uncached);
        st.steps.push(Step {
            created_by,
            from_op: true,
            comment: Some("buildkit.dockerfile.v0".to_owned()),
        });
        Ok(())
    }
}

impl Lowering<'_> {
    /// RUN's `--mount`s, typed after expansion with the stage's ARGs and
    /// ENV; stages and images they read from join `inputs`.
    fn run_mounts(
        &mut self,
        st: &StageLowering,
        run: &Run,
        expand_env: &[(String, String)],
        location: &str,
        inputs: &mut Vec<VertexId>,
    ) -> Result<RunMounts> {
        let fail = |message: String| Error::Build {
            location: location.to_owned(),
            message,
        };
        let mut m = RunMounts::default();
        let workdir = st.config.workdir();
        // As BuildKit, a relative target is under the working directory.
        let absolute = |target: &str| {
            if target.starts_with('/') {
                target.to_owned()
            } else {
                format!(
                    "/{}",
                    crate::gopath::clean_relative(&format!("{workdir}/{target}"))
                )
            }
        };
        for written in &run.mounts {
            // As BuildKit, every option is expanded with the stage's ARGs
            // and ENV before it is typed.
            let mount = {
                let mut expand =
                    |word: &str| self.lexer.process_word(word, &expand_env).map(|r| r.value);
                Mount::parse(&written.spec, &mut expand).map_err(|e| {
                    let help = e.help.map(|h| format!(" ({h})")).unwrap_or_default();
                    fail(format!("--mount={}: {}{help}", written.spec, e.message))
                })?
            };
            let spec = &mount.spec;
            match &mount.kind {
                MountKind::Tmpfs { target, size } => m.tmpfs.push(TmpfsMount {
                    dst: PathBuf::from(absolute(target)),
                    size: *size,
                }),
                MountKind::Cache { .. } => {
                    let cache = self.cache_mount(st, &mount.kind, location, inputs, &absolute)?;
                    m.caches.push(cache);
                }
                MountKind::Bind {
                    target,
                    source,
                    from: Some(from),
                    readonly,
                } => {
                    let vertex = self.mount_source(st, from, location)?;
                    m.stage_binds.push(StageBind {
                        input: input_index(inputs, vertex),
                        source: source.clone().unwrap_or_else(|| "/".to_owned()),
                        target: absolute(target),
                        readonly: *readonly,
                    });
                }
                MountKind::Bind {
                    target,
                    source,
                    from: None,
                    readonly,
                } => {
                    // Symlinks are resolved inside the context, as BuildKit
                    // scopes them: no link can lead the bind out of it.
                    let src = self.context_source(source.as_deref()).map_err(|e| {
                        fail(format!(
                            "--mount={spec}: in the build context: {}",
                            crate::error::error_chain(&e)
                        ))
                    })?;
                    // Never writable: `rw` gets a copy when the step runs.
                    m.binds.push(BindMount {
                        src,
                        dst: PathBuf::from(absolute(target)),
                        readonly: *readonly,
                        subpath: None,
                    });
                }
                MountKind::Secret { .. } => {
                    m.secrets.push(
                        secret_mount(&mount.kind, spec, &absolute)
                            .map_err(|e| fail(e.to_string()))?,
                    );
                }
                MountKind::Ssh { .. } => {
                    m.ssh.extend(ssh_mount(&mount.kind, m.ssh.len(), &absolute));
                }
            }
        }
        Ok(m)
    }

    /// A `type=bind` source in the build context (`.` when none), its
    /// symlinks resolved inside the context.
    fn context_source(
        &self,
        source: Option<&str>,
    ) -> std::result::Result<PathBuf, crate::ops::mounts::MountError> {
        let rel = crate::gopath::clean_relative(source.unwrap_or("."));
        crate::ops::mounts::resolve_in(self.plan.context.root(), &rel)
    }

    /// A `type=cache` mount: its directory under the store (by id, the
    /// target when none), seeded `from=` a stage or image when asked.
    fn cache_mount(
        &mut self,
        st: &StageLowering,
        kind: &MountKind,
        location: &str,
        inputs: &mut Vec<VertexId>,
        absolute: &dyn Fn(&str) -> String,
    ) -> Result<CacheMount> {
        let MountKind::Cache {
            target,
            id,
            sharing,
            readonly,
            from,
            source,
            mode,
            uid,
            gid,
        } = kind
        else {
            return Err(Error::Build {
                location: location.to_owned(),
                message: "internal error: not a cache mount".into(),
            });
        };
        let target = absolute(target);
        let id = id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| target.clone());
        let hash = blake3::hash(id.as_bytes()).to_hex();
        let seed = match from {
            Some(from) => {
                let vertex = self.mount_source(st, from, location)?;
                let source = source.clone().unwrap_or_else(|| "/".to_owned());
                Some((input_index(inputs, vertex), source))
            }
            None => None,
        };
        // Without from=, source= selects a path of the cache
        // (BuildKit's `path.Join("/", source)`; "/" is the whole).
        let subpath = match (from, source) {
            (None, Some(source)) => {
                Some(crate::gopath::clean_relative(source)).filter(|s| !s.is_empty())
            }
            _ => None,
        };
        Ok(CacheMount {
            host: self
                .plan
                .env
                .store
                .root()
                .join("cache")
                .join("mounts")
                .join(&hash[..32]),
            target,
            readonly: *readonly,
            locked: *sharing == Sharing::Locked,
            seed,
            subpath,
            mode: *mode,
            uid: *uid,
            gid: *gid,
        })
    }

    /// Where the step remembers its last run (for change explanations),
    /// per context, Dockerfile, stage and step.
    fn run_memo(&self, st: &StageLowering) -> PathBuf {
        let identity = format!(
            "{}\0{}\0{}\0{}",
            self.plan.context.root().display(),
            self.plan.dockerfile.file,
            st.label,
            st.k + 1
        );
        self.plan
            .env
            .store
            .root()
            .join("cache")
            .join("run-memo")
            .join(format!(
                "{}.json",
                blake3::hash(identity.as_bytes()).to_hex()
            ))
    }

    /// The vertex a mount's `from=` names: an earlier stage (by name or
    /// index) or an image (from the store, or pulled).
    fn mount_source(&mut self, st: &StageLowering, from: &str, location: &str) -> Result<VertexId> {
        let dockerfile = self.plan.dockerfile;
        match stages::stage_ref(dockerfile, from) {
            Some(idx) => self
                .outs
                .get(&idx)
                .map(|out| out.vertex)
                .ok_or_else(|| Error::Build {
                    location: location.to_owned(),
                    message: format!("--mount from={from}: the stage is not built before this one"),
                }),
            None => {
                // An implicit stage in BuildKit: its FROM has no prefix.
                let (vertex, _) = self.base_image(from, location, "", st.uncached)?;
                Ok(vertex)
            }
        }
    }
}

/// The mounts of one RUN step, by kind.
#[derive(Default)]
struct RunMounts {
    tmpfs: Vec<TmpfsMount>,
    binds: Vec<BindMount>,
    stage_binds: Vec<StageBind>,
    caches: Vec<CacheMount>,
    secrets: Vec<SecretMount>,
    ssh: Vec<SshMount>,
}

/// Why a `type=secret` mount is refused.
#[derive(Debug, thiserror::Error)]
enum SecretMountError {
    #[error("internal error: not a secret mount")]
    NotSecret,
    #[error("--mount={spec}: the secret needs an id")]
    NoId { spec: String },
}

/// A `type=ssh` mount (`None` for any other kind): the agent socket `id`
/// (`default` when unnamed) at `target`, or BuildKit's
/// `/run/buildkit/ssh_agent.N` for the `n`th one without a target.
fn ssh_mount(kind: &MountKind, n: usize, absolute: &dyn Fn(&str) -> String) -> Option<SshMount> {
    let MountKind::Ssh {
        id,
        target,
        required,
        mode,
        uid,
        gid,
    } = kind
    else {
        return None;
    };
    let target = match target {
        Some(target) if !target.is_empty() => absolute(target),
        _ => format!("/run/buildkit/ssh_agent.{n}"),
    };
    Some(SshMount {
        id: id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
        target,
        required: *required,
        mode: mode.unwrap_or(0o600),
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
    })
}

/// A `type=secret` mount: its id (else the target's last element), where
/// it appears (a file, an environment variable, or both) and its mode.
fn secret_mount(
    kind: &MountKind,
    spec: &str,
    absolute: &dyn Fn(&str) -> String,
) -> std::result::Result<SecretMount, SecretMountError> {
    let MountKind::Secret {
        id,
        target,
        env,
        required,
        mode,
        uid,
        gid,
    } = kind
    else {
        return Err(SecretMountError::NotSecret);
    };
    let id = match (id, target) {
        (Some(id), _) if !id.is_empty() => id.clone(),
        (_, Some(target)) => target
            .rsplit('/')
            .find(|p| !p.is_empty())
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    if id.is_empty() {
        return Err(SecretMountError::NoId {
            spec: spec.to_owned(),
        });
    }
    let target = match (target, env) {
        (Some(target), _) => Some(absolute(target)),
        (None, Some(_)) => None,
        (None, None) => Some(format!("/run/secrets/{id}")),
    };
    Ok(SecretMount {
        id,
        target,
        env: env.clone().filter(|e| !e.is_empty()),
        required: *required,
        mode: mode.unwrap_or(0o400),
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
    })
}

/// The command's environment: the image's ENV, then the build args in
/// effect that no ENV of the same name overrides (proxy args are added,
/// over both, when the step runs, outside its key); and those args.
fn run_env(st: &StageLowering) -> (Vec<String>, super::args::Scope) {
    let image_env = st.config.env();
    let mut env: Vec<String> = image_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let args = st.args_in_effect();
    for (name, value) in args.iter() {
        if !image_env.iter().any(|(k, _)| k == name) {
            env.push(format!("{name}={value}"));
        }
    }
    (env, args)
}

/// The history's `created_by`: BuildKit's `RUN |N A=1 B=2 cmd # buildkit`,
/// naming only this stage's own ARGs.
fn created_by(st: &StageLowering, run: &Run, argv: &[String]) -> String {
    let arg_words: Vec<String> = st
        .args
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let shown = match &run.command {
        CommandLine::Shell(_) => argv.join(" "),
        CommandLine::Exec(argv) => argv.join(" "),
    };
    if arg_words.is_empty() {
        format!("RUN {shown} # buildkit")
    } else {
        format!(
            "RUN |{} {} {shown} # buildkit",
            arg_words.len(),
            arg_words.join(" ")
        )
    }
}

/// The step's text for progress: its first line, and as BuildKit, a
/// command that is one heredoc summed up after it (`RUN <<EOT (echo
/// one...)`); quotes stay as written and unset variables as `$NAME`.
fn step_text(at: &Spanned<Instruction>, run: &Run, only_heredoc: bool) -> String {
    let mut text = at.source.lines().next().unwrap_or_default().to_owned();
    if let Some(heredoc) = run.heredocs.first().filter(|_| only_heredoc) {
        let doc = heredoc.content.trim();
        let mut lines = doc.lines();
        text.push_str(&format!(" ({}", lines.next().unwrap_or_default()));
        if lines.next().is_some() {
            text.push_str("...");
        }
        text.push(')');
    }
    text
}

/// The command's argv through SHELL, heredocs as BuildKit runs them: a
/// command that is one heredoc runs its body as the shell's script, or,
/// when the body starts with `#!`, as an executable file at
/// `/dev/pipes/<name>` (the kernel then picks the interpreter); any other
/// command with heredocs runs with their bodies appended.
/// The heredoc a shell-form RUN consists of alone (`RUN <<EOT`), if so.
fn single_heredoc(run: &Run) -> Option<&buildr_parser::Heredoc> {
    let CommandLine::Shell(line) = &run.command else {
        return None;
    };
    match run.heredocs.as_slice() {
        [heredoc] => {
            let name = line.trim().trim_start_matches("<<").trim_start_matches('-');
            (name.trim_matches(|c| c == '"' || c == '\'') == heredoc.name).then_some(heredoc)
        }
        _ => None,
    }
}

/// A `#!` heredoc script whose delimiter cannot name its file.
#[derive(Debug, thiserror::Error)]
#[error("heredoc <<{name}: a #! script needs a delimiter that can name a file")]
pub(crate) struct ScriptNameError {
    name: String,
}

fn heredoc_argv(
    st: &StageLowering,
    run: &Run,
) -> std::result::Result<(Vec<String>, Option<InlineFile>), ScriptNameError> {
    let line = match &run.command {
        CommandLine::Shell(line) if !run.heredocs.is_empty() => line,
        command => return Ok((st.config.argv(command), None)),
    };
    let mut argv = st.config.shell();
    let Some(heredoc) = single_heredoc(run) else {
        let mut script = line.clone();
        for heredoc in &run.heredocs {
            script.push('\n');
            script.push_str(&heredoc.content);
            if !heredoc.content.ends_with('\n') {
                script.push('\n');
            }
            script.push_str(&heredoc.name);
        }
        argv.push(script);
        return Ok((argv, None));
    };
    if !heredoc.content.starts_with("#!") {
        argv.push(heredoc.content.clone());
        return Ok((argv, None));
    }
    if heredoc.name.is_empty() || heredoc.name.contains('/') || heredoc.name.starts_with('.') {
        return Err(ScriptNameError {
            name: heredoc.name.clone(),
        });
    }
    let target = format!("/dev/pipes/{}", heredoc.name);
    argv.push(target.clone());
    let inline = InlineFile {
        target,
        content: heredoc.content.clone().into_bytes(),
        mode: 0o755,
    };
    Ok((argv, Some(inline)))
}

/// The index of `vertex` among the step's inputs, added once.
fn input_index(inputs: &mut Vec<VertexId>, vertex: VertexId) -> usize {
    match inputs.iter().position(|v| *v == vertex) {
        Some(idx) => idx,
        None => {
            inputs.push(vertex);
            inputs.len() - 1
        }
    }
}
