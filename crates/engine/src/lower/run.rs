//! Lowering `RUN`: argv through SHELL (heredocs as BuildKit runs them), the
//! environment (image env plus build args in effect, as BuildKit passes
//! ARGs), cwd, user, network and mounts.

use std::path::PathBuf;
use std::sync::Arc;

use buildr_exec::{BindMount, Network, TmpfsMount};
use buildr_parser::{CommandLine, Instruction, MountKind, Run, Sharing, Spanned};

use super::{Lowering, StageLowering};
use crate::error::{Error, Result};
use crate::ops::export::Step;
use crate::ops::run::{CacheMount, RunOp};

impl Lowering<'_> {
    pub(crate) fn run(
        &mut self,
        st: &mut StageLowering,
        at: &Spanned<Instruction>,
        run: &Run,
        _expand_env: &[(String, String)],
    ) -> Result<()> {
        let location = self.location(at);
        let fail = |message: String| Error::Build {
            location: location.clone(),
            message,
        };
        let argv = match &run.command {
            CommandLine::Shell(line) if !run.heredocs.is_empty() => {
                let trimmed = line.trim();
                let only = run.heredocs.len() == 1 && {
                    let name = trimmed.trim_start_matches("<<").trim_start_matches('-');
                    let name = name.trim_matches(|c| c == '"' || c == '\'');
                    name == run.heredocs[0].name
                };
                let mut argv = st.config.shell();
                if only {
                    argv.push(run.heredocs[0].content.clone());
                } else {
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
                }
                argv
            }
            command => st.config.argv(command),
        };
        // Build args in effect reach the command's environment unless an
        // ENV of the same name overrides them; proxy args always do.
        let image_env = st.config.env();
        let mut env: Vec<String> = image_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut arg_words = Vec::new();
        for (name, value) in st.args.iter() {
            arg_words.push(format!("{name}={value}"));
            if !image_env.iter().any(|(k, _)| k == name) {
                env.push(format!("{name}={value}"));
            }
        }
        for (name, value) in self.build_args.proxies() {
            if st.args.get(&name).is_none() && !image_env.iter().any(|(k, _)| *k == name) {
                env.push(format!("{name}={value}"));
            }
        }
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
        let mut tmpfs = Vec::new();
        let mut binds = Vec::new();
        let mut caches = Vec::new();
        for mount in &run.mounts {
            if mount.deferred {
                return Err(fail(format!(
                    "--mount={}: variables in mount options are not supported yet",
                    mount.spec
                )));
            }
            match &mount.kind {
                MountKind::Tmpfs { target, size } => tmpfs.push(TmpfsMount {
                    dst: PathBuf::from(target),
                    size: *size,
                }),
                MountKind::Cache {
                    target,
                    id,
                    sharing,
                    readonly,
                    from: None,
                    source: None,
                    ..
                } => {
                    let id = id.clone().unwrap_or_else(|| target.clone());
                    let hash = blake3::hash(id.as_bytes()).to_hex();
                    caches.push(CacheMount {
                        host: self
                            .plan
                            .env
                            .store
                            .root()
                            .join("cache")
                            .join("mounts")
                            .join(&hash[..32]),
                        target: target.clone(),
                        readonly: *readonly,
                        locked: *sharing == Sharing::Locked,
                    });
                }
                MountKind::Bind {
                    target,
                    source,
                    from: None,
                    ..
                } => {
                    let rel = crate::ops::copy::clean(source.as_deref().unwrap_or("."));
                    let root = self.plan.context.root();
                    let src = root.join(&rel).canonicalize().map_err(|e| {
                        fail(format!(
                            "--mount={}: {rel} in the build context: {e}",
                            mount.spec
                        ))
                    })?;
                    if !src.starts_with(root) {
                        return Err(fail(format!(
                            "--mount={}: {rel} leaves the build context",
                            mount.spec
                        )));
                    }
                    // Always read-only: a writable bind would write into the context.
                    binds.push(BindMount {
                        src,
                        dst: PathBuf::from(target),
                        readonly: true,
                    });
                }
                _ => {
                    return Err(fail(format!(
                        "--mount={}: this mount type or option is not supported yet",
                        mount.spec
                    )));
                }
            }
        }
        let shown = match &run.command {
            CommandLine::Shell(_) => argv.join(" "),
            CommandLine::Exec(argv) => argv.join(" "),
        };
        let created_by = if arg_words.is_empty() {
            format!("RUN {shown} # buildkit")
        } else {
            format!(
                "RUN |{} {} {shown} # buildkit",
                arg_words.len(),
                arg_words.join(" ")
            )
        };
        let identity = format!(
            "{}\0{}\0{}\0{}",
            self.plan.context.root().display(),
            self.plan.dockerfile.file,
            st.label,
            st.k + 1
        );
        let memo = self
            .plan
            .env
            .store
            .root()
            .join("cache")
            .join("run-memo")
            .join(format!(
                "{}.json",
                blake3::hash(identity.as_bytes()).to_hex()
            ));
        let op = RunOp {
            name: st.name(&at.source),
            location: location.clone(),
            argv,
            env,
            cwd: st.config.workdir(),
            user: st.config.user(),
            network,
            tmpfs,
            binds,
            caches,
            memo: Some(memo),
            args: st.args.pairs(),
            env_ctx: self.plan.env.clone(),
        };
        st.vertex = self.add(Arc::new(op), &[st.vertex], location, st.uncached);
        st.steps.push(Step {
            created_by,
            from_op: true,
            comment: Some("buildkit.dockerfile.v0".to_owned()),
        });
        Ok(())
    }
}
