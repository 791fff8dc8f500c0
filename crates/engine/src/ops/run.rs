//! `RUN`: the command in the sandbox over the state's snapshots (overlay,
//! topmost first) and a fresh upper dir, which becomes the new layer.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use buildr_exec::{BindMount, Cancel, Network, Rootfs, Sandbox, SpawnSpec, Stream, TmpfsMount};
use buildr_solver::{BoxError, ExecCtx, LogStream, Op};

use super::commit::Env;
use super::merged::Merged;
use super::mounts::{self, AgentRelay, InlineFile, SecretMount, SshMount, StageBind};
use super::{State, StateData, field, input, op_error, op_failure};
use crate::error::error_chain;

/// Output kept for the error message of a failing step.
const TAIL_BYTES: usize = 4096;
const TAIL_LINES: usize = 10;

/// A persistent cache mount (`--mount=type=cache`).
#[derive(Debug, Clone)]
pub(crate) struct CacheMount {
    pub host: PathBuf,
    pub target: String,
    pub readonly: bool,
    /// `sharing=locked`: one step at a time holds it.
    pub locked: bool,
    /// `from=STAGE,source=PATH`: the input whose path seeds a new cache
    /// (the cache is then per id and per seed, as BuildKit keys it).
    pub seed: Option<(usize, String)>,
    /// `source=PATH` without `from=`: the path of the cache mounted,
    /// resolved inside the cache when the step runs.
    pub subpath: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// What a RUN step runs, fully expanded at lowering time.
#[derive(Debug)]
pub(crate) struct RunOp {
    pub name: String,
    pub location: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    /// The proxy build args: set over `env` when the step runs, never in
    /// its key or history (BuildKit leaves `ProxyEnv` out of the cache map).
    pub proxy_env: Vec<(String, String)>,
    pub cwd: String,
    pub user: String,
    /// `BUILDKIT_SANDBOX_HOSTNAME`; `None`: the sandbox's default.
    pub hostname: Option<String>,
    pub network: Network,
    pub tmpfs: Vec<TmpfsMount>,
    /// Binds from the build context (`rw` ones get a copy).
    pub binds: Vec<BindMount>,
    /// Binds of a path of another stage or image (an input of the step).
    pub stage_binds: Vec<StageBind>,
    pub caches: Vec<CacheMount>,
    pub secrets: Vec<SecretMount>,
    pub ssh: Vec<SshMount>,
    /// Files the Dockerfile gives whole (a `#!` heredoc), bound read-only.
    pub inline: Vec<InlineFile>,
    /// Where secret values and agent sockets come from: never in the key.
    pub sources: Arc<crate::build::Secrets>,
    /// Where the inputs of the last run of this step (same context,
    /// Dockerfile, stage and position) are remembered, to explain a miss.
    pub memo: Option<PathBuf>,
    /// The build args in effect, by name.
    pub args: Vec<(String, String)>,
    pub env_ctx: Env,
}

/// What a miss explanation compares: the command and the build args
/// (values hashed: a build arg may be a token).
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Memo {
    command: String,
    args: std::collections::BTreeMap<String, String>,
}

impl RunOp {
    /// The definition's part for the mounts: tmpfs, cache and bind
    /// targets (in this order, as keys made before have it).
    fn define_mounts(&self, def: &mut Vec<u8>) {
        for tmpfs in &self.tmpfs {
            field(
                def,
                format!("tmpfs:{}:{:?}", tmpfs.dst.display(), tmpfs.size),
            );
        }
        for cache in &self.caches {
            // The cache's content is deliberately not part of the key.
            field(def, format!("cache:{}:{}", cache.target, cache.readonly));
        }
        for bind in &self.binds {
            field(def, format!("bind:{}", bind.dst.display()));
            if !bind.readonly {
                field(def, "rw");
            }
        }
    }

    /// The definition's part for where mounts come from: cache sources,
    /// seeds and owners, other stages' binds, secrets and ssh sockets (ids
    /// and targets, never values), inline files.
    fn define_mount_sources(&self, def: &mut Vec<u8>) {
        for cache in &self.caches {
            if let Some(subpath) = &cache.subpath {
                field(def, format!("cache-source:{}:{subpath}", cache.target));
            }
            if let Some((input, source)) = &cache.seed {
                field(def, format!("cache-from:{}:{input}:{source}", cache.target));
            }
            if cache.mode.is_some() || cache.uid.is_some() || cache.gid.is_some() {
                field(
                    def,
                    format!(
                        "cache-owner:{}:{:?}:{:?}:{:?}",
                        cache.target, cache.mode, cache.uid, cache.gid
                    ),
                );
            }
        }
        for bind in &self.stage_binds {
            field(
                def,
                format!(
                    "bind-from:{}:{}:{}:{}",
                    bind.input, bind.source, bind.target, bind.readonly
                ),
            );
        }
        // The secret's id and where it goes, never its value.
        for secret in &self.secrets {
            field(
                def,
                format!(
                    "secret:{}:{:?}:{:?}:{}:{:o}:{}:{}",
                    secret.id,
                    secret.target,
                    secret.env,
                    secret.required,
                    secret.mode,
                    secret.uid,
                    secret.gid
                ),
            );
        }
        for ssh in &self.ssh {
            field(
                def,
                format!(
                    "ssh:{}:{}:{}:{:o}:{}:{}",
                    ssh.id, ssh.target, ssh.required, ssh.mode, ssh.uid, ssh.gid
                ),
            );
        }
        for inline in &self.inline {
            field(def, format!("inline:{}:{:o}", inline.target, inline.mode));
            field(def, &inline.content);
        }
    }

    fn memo(&self) -> Memo {
        Memo {
            command: self.argv.join(" "),
            args: self
                .args
                .iter()
                .map(|(k, v)| (k.clone(), blake3::hash(v.as_bytes()).to_hex().to_string()))
                .collect(),
        }
    }

    fn remember(&self) {
        let Some(path) = &self.memo else { return };
        let Ok(bytes) = serde_json::to_vec(&self.memo()) else {
            return;
        };
        // Best effort and atomic: a torn memo would only lose an explanation.
        let _ = buildr_fs::atomic::AtomicWrite::new()
            .create_parent()
            .sync(false)
            .bytes(path, &bytes);
    }
}

impl Op<State> for RunOp {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn definition(&self) -> Vec<u8> {
        let mut def = b"buildr/run/v1".to_vec();
        field(&mut def, self.argv.len().to_le_bytes());
        for arg in &self.argv {
            field(&mut def, arg);
        }
        field(&mut def, self.env.len().to_le_bytes());
        for var in &self.env {
            field(&mut def, var);
        }
        field(&mut def, &self.cwd);
        field(&mut def, &self.user);
        // The mode, never a namespace path: keys hold no host paths.
        field(
            &mut def,
            match &self.network {
                Network::None => "none",
                Network::Host => "host",
                _ => "default",
            },
        );
        self.define_mounts(&mut def);
        // Only present when used, so other steps keep their keys.
        if let Some(hostname) = &self.hostname {
            field(&mut def, format!("hostname:{hostname}"));
        }
        self.define_mount_sources(&mut def);
        def
    }

    fn reads_content(&self) -> bool {
        !self.binds.is_empty()
    }

    fn content_key(
        &self,
        inputs: &[&State],
        _ctx: &ExecCtx,
    ) -> Result<Option<buildr_solver::ContentHash>, BoxError> {
        let _ = inputs;
        if self.binds.is_empty() {
            return Ok(None);
        }
        // A bind from the context: its files are an input.
        let mut hasher = buildr_solver::ContentHasher::new();
        for bind in &self.binds {
            hash_tree(&bind.src, &mut hasher).map_err(|e| op_error(&self.location, e))?;
        }
        Ok(Some(hasher.finish()))
    }

    fn execute(&self, inputs: &[State], ctx: &ExecCtx) -> Result<State, BoxError> {
        let base = input(inputs, 0);
        let merged = Merged::new(&self.env_ctx.store, &base)?;
        let dir = self.env_ctx.scratch_dir("run-")?;
        let upper = dir.path().join("upper");
        let work = dir.path().join("work");
        for path in [&upper, &work] {
            fs::create_dir(path)
                .map_err(|e| op_failure(&self.location, format!("create {}", path.display()), e))?;
        }
        let Prepared {
            binds,
            env,
            locks,
            relays,
        } = self.prepare(inputs, dir.path())?;
        let mut spec = SpawnSpec {
            rootfs: Rootfs {
                lowers: merged.layers().to_vec(),
                upper: upper.clone(),
                work,
                ..Rootfs::default()
            },
            argv: self.argv.clone(),
            env,
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            network: self.network.clone(),
            binds,
            tmpfs: self.tmpfs.clone(),
            ..SpawnSpec::default()
        };
        if let Some(hostname) = &self.hostname {
            spec.hostname.clone_from(hostname);
        }
        let cancel = Cancel::new()?;
        let _registration = {
            let cancel = cancel.clone();
            ctx.on_cancel(move || cancel.cancel())
        };
        let tail = Arc::new(Mutex::new(VecDeque::<u8>::new()));
        let outcome = Sandbox::new().run(&spec, &cancel, |stream, chunk| {
            let stream = match stream {
                Stream::Stdout => LogStream::Stdout,
                Stream::Stderr => LogStream::Stderr,
            };
            ctx.log(stream, chunk);
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            tail.extend(chunk);
            while tail.len() > TAIL_BYTES {
                tail.pop_front();
            }
        })?;
        drop(locks);
        drop(relays);
        if !outcome.success() {
            let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            let text =
                String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(TAIL_LINES);
            let mut message = format!(
                "{}: {}",
                self.name_line(),
                did_not_complete(&self.argv, &outcome)
            );
            if self.env_ctx.output_in_errors && start < lines.len() {
                message.push_str("\nlast output:");
                for line in &lines[start..] {
                    message.push_str("\n  ");
                    message.push_str(line);
                }
            }
            return Err(op_error(&self.location, message));
        }
        let layer = self.env_ctx.commit(&upper)?;
        self.remember();
        let mut next = StateData::clone(&base);
        next.added.push(layer.is_some());
        next.layers.extend(layer);
        next.created = super::unix_now();
        Ok(Arc::new(next))
    }

    fn explain_miss(&self) -> Option<String> {
        let bytes = fs::read(self.memo.as_ref()?).ok()?;
        let old: Memo = serde_json::from_slice(&bytes).ok()?;
        let new = self.memo();
        if old.command != new.command {
            return Some("RUN: command changed".to_owned());
        }
        let names: std::collections::BTreeSet<&String> =
            old.args.keys().chain(new.args.keys()).collect();
        for name in names {
            if old.args.get(name) != new.args.get(name) {
                return Some(format!("RUN: ARG {name} changed"));
            }
        }
        Some("RUN: an earlier step changed".to_owned())
    }
}

impl RunOp {
    /// `RUN false` as written (without the stage prefix of the name).
    fn name_line(&self) -> &str {
        match self.name.find("] ") {
            Some(idx) => &self.name[idx + 2..],
            None => &self.name,
        }
    }
}

/// BuildKit's account of a failed RUN, which users grep for: `process
/// "/bin/sh -c false" did not complete successfully: exit code: 1`.
fn did_not_complete(argv: &[String], outcome: &buildr_exec::Outcome) -> String {
    let killed = outcome.oom_killed || outcome.timed_out || outcome.cancelled;
    let reason = match outcome.status {
        buildr_exec::ExitStatus::Code(code) if !killed => format!("exit code: {code}"),
        _ => outcome.describe(),
    };
    format!(
        "process {} did not complete successfully: {reason}",
        buildr_parser::go_quote(&argv.join(" "))
    )
}

/// Hashes names, modes and contents under `root` (a bind source), sorted.
fn hash_tree(
    root: &std::path::Path,
    hasher: &mut buildr_solver::ContentHasher,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(root)?;
    hasher.update(&meta.mode().to_le_bytes());
    if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(root)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            hasher.update(name.as_encoded_bytes());
            hash_tree(&root.join(&name), hasher)?;
        }
    } else if meta.file_type().is_symlink() {
        hasher.update(fs::read_link(root)?.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        let mut file = File::open(root)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(())
}

/// `env` with the proxy variables set over it: as in BuildKit, where the
/// proxy env is appended last and so is what the shell sees.
fn with_proxies(env: &[String], proxies: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = env
        .iter()
        .filter(|var| {
            let name = var.split_once('=').map_or(var.as_str(), |(name, _)| name);
            !proxies.iter().any(|(proxy, _)| proxy == name)
        })
        .cloned()
        .collect();
    out.extend(
        proxies
            .iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    out
}

impl RunOp {
    /// Everything the sandbox needs besides the rootfs, made in `dir`:
    /// the binds of every mount, the environment with secrets in it, cache
    /// locks and ssh agent relays (held until the command ends).
    fn prepare(&self, inputs: &[State], dir: &Path) -> Result<Prepared, BoxError> {
        let mut p = Prepared {
            binds: Vec::new(),
            env: with_proxies(&self.env, &self.proxy_env),
            locks: Vec::new(),
            relays: Vec::new(),
        };
        self.bind_copies(inputs, dir, &mut p)?;
        self.cache_binds(inputs, &mut p)?;
        self.secret_binds(dir, &mut p)?;
        self.inline_and_ssh_binds(dir, &mut p)?;
        Ok(p)
    }

    fn fail(&self, message: String) -> BoxError {
        op_error(&self.location, message)
    }

    /// Context binds (a `rw` one writes into a copy dropped after the
    /// step, never into the context) and stage binds (always a copy).
    fn bind_copies(&self, inputs: &[State], dir: &Path, p: &mut Prepared) -> Result<(), BoxError> {
        let fail = |message: String| self.fail(message);
        // A `rw` bind from the context writes into a copy dropped after the
        // step, never into the context.
        for (n, bind) in self.binds.iter().enumerate() {
            if bind.readonly {
                p.binds.push(bind.clone());
                continue;
            }
            let copy = dir.join(format!("context-{n}"));
            mounts::copy_host_tree(&bind.src, &copy)
                .map_err(|e| fail(format!("--mount=type=bind,rw: {}", error_chain(&e))))?;
            p.binds.push(BindMount {
                src: copy,
                dst: bind.dst.clone(),
                readonly: false,
                subpath: None,
            });
        }
        for (n, bind) in self.stage_binds.iter().enumerate() {
            let view = Merged::new(&self.env_ctx.store, &input(inputs, bind.input))?;
            let copy = dir.join(format!("bind-{n}"));
            mounts::copy_out(&view, &bind.source, &copy).map_err(|e| {
                fail(format!(
                    "--mount=type=bind,source={}: {}",
                    bind.source,
                    error_chain(&e)
                ))
            })?;
            p.binds.push(BindMount {
                src: copy,
                dst: PathBuf::from(&bind.target),
                readonly: bind.readonly,
                subpath: None,
            });
        }
        Ok(())
    }

    /// Cache mounts: their directories (seeded from a stage when asked,
    /// locked when `sharing=locked`).
    fn cache_binds(&self, inputs: &[State], p: &mut Prepared) -> Result<(), BoxError> {
        let fail = |message: String| self.fail(message);
        for cache in &self.caches {
            let host = match &cache.seed {
                None => cache.host.clone(),
                Some((idx, source)) => {
                    let state = input(inputs, *idx);
                    let mut seed = blake3::Hasher::new();
                    for layer in &state.layers {
                        seed.update(layer.diff_id.to_string().as_bytes());
                        seed.update(b"\0");
                    }
                    seed.update(source.as_bytes());
                    let name = format!(
                        "{}-{}",
                        cache.host.file_name().unwrap_or_default().to_string_lossy(),
                        &seed.finalize().to_hex()[..16]
                    );
                    cache.host.with_file_name(name)
                }
            };
            let view = match &cache.seed {
                Some((idx, source)) => Some((
                    Merged::new(&self.env_ctx.store, &input(inputs, *idx))?,
                    source.as_str(),
                )),
                None => None,
            };
            if cache.seed.is_none() {
                self.env_ctx.caches.use_mount(&self.env_ctx.store, &host);
            }
            mounts::ensure_cache_dir(
                &host,
                view.as_ref().map(|(view, source)| (view, *source)),
                cache.mode,
                (cache.uid, cache.gid),
            )
            .map_err(|e| fail(format!("cache mount {}: {}", cache.target, error_chain(&e))))?;
            if cache.locked {
                let lock_path = host.with_extension("lock");
                let file = File::create(&lock_path).map_err(|e| {
                    op_failure(&self.location, format!("lock {}", lock_path.display()), e)
                })?;
                rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(
                    |e| op_failure(&self.location, format!("lock {}", lock_path.display()), e),
                )?;
                p.locks.push(file);
            }
            p.binds.push(BindMount {
                src: host,
                dst: PathBuf::from(&cache.target),
                readonly: cache.readonly,
                subpath: cache.subpath.as_ref().map(PathBuf::from),
            });
        }
        Ok(())
    }

    /// Secrets as files (bound read-only) and environment variables.
    fn secret_binds(&self, dir: &Path, p: &mut Prepared) -> Result<(), BoxError> {
        let fail = |message: String| self.fail(message);
        for (n, secret) in self.secrets.iter().enumerate() {
            let value = match self.sources.secrets.get(&secret.id) {
                Some(source) => source.read().map_err(|e| {
                    let e = crate::error::error_chain(&e);
                    fail(format!("secret {}: {e}", secret.id))
                })?,
                None => None,
            };
            let Some(value) = value else {
                if secret.required {
                    return Err(fail(format!(
                        "secret {}: not found (it is required: pass --secret id={},src=FILE)",
                        secret.id, secret.id
                    )));
                }
                continue;
            };
            if let Some(var) = &secret.env {
                let text = String::from_utf8(value.clone())
                    .ok()
                    .filter(|v| !v.contains('\0'))
                    .ok_or_else(|| {
                        fail(format!(
                            "secret {}: env={var} needs a value in UTF-8 without NUL bytes",
                            secret.id
                        ))
                    })?;
                p.env.retain(|e| !e.starts_with(&format!("{var}=")));
                p.env.push(format!("{var}={text}"));
            }
            if let Some(target) = &secret.target {
                let file =
                    mounts::write_secret(&dir.join("secrets"), &n.to_string(), &value, secret)
                        .map_err(|e| fail(format!("secret {}: {}", secret.id, error_chain(&e))))?;
                p.binds.push(BindMount {
                    src: file,
                    dst: PathBuf::from(target),
                    readonly: true,
                    subpath: None,
                });
            }
        }
        Ok(())
    }

    /// Heredoc files and ssh agent relays.
    fn inline_and_ssh_binds(&self, dir: &Path, p: &mut Prepared) -> Result<(), BoxError> {
        let fail = |message: String| self.fail(message);
        for (n, inline) in self.inline.iter().enumerate() {
            let file = mounts::write_inline(&dir.join("inline"), &n.to_string(), inline)
                .map_err(|e| fail(format!("{}: {}", inline.target, error_chain(&e))))?;
            p.binds.push(BindMount {
                src: file,
                dst: PathBuf::from(&inline.target),
                readonly: true,
                subpath: None,
            });
        }
        for (n, ssh) in self.ssh.iter().enumerate() {
            let Some(socket) = self.sources.ssh.get(&ssh.id) else {
                if ssh.required {
                    return Err(fail(format!(
                        "ssh agent {} is required but was not given (pass --ssh {}=SOCKET)",
                        ssh.id, ssh.id
                    )));
                }
                continue;
            };
            let path = dir.join(format!("ssh-{n}.sock"));
            let relay = AgentRelay::start(socket, &path, ssh)
                .map_err(|e| fail(format!("ssh agent {}: {}", ssh.id, error_chain(&e))))?;
            p.binds.push(BindMount {
                src: relay.path().to_path_buf(),
                dst: PathBuf::from(&ssh.target),
                readonly: false,
                subpath: None,
            });
            p.relays.push(relay);
        }
        Ok(())
    }
}

/// A RUN step's mounts made ready ([`RunOp::prepare`]).
struct Prepared {
    binds: Vec<BindMount>,
    env: Vec<String>,
    /// `sharing=locked` caches, held until the command ends.
    locks: Vec<File>,
    /// ssh agent relays, serving until the command ends.
    relays: Vec<AgentRelay>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildr_exec::{ExitStatus, Outcome, Timings};

    fn outcome(status: ExitStatus, oom_killed: bool) -> Outcome {
        Outcome {
            status,
            oom_killed,
            memory_limit: None,
            timed_out: false,
            cancelled: false,
            timings: Timings::default(),
        }
    }

    #[test]
    fn failures_in_buildkit_words() {
        let argv: Vec<String> = ["/bin/sh", "-c", "echo \"hi\" && invalidcmd"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            did_not_complete(&argv, &outcome(ExitStatus::Code(127), false)),
            r#"process "/bin/sh -c echo \"hi\" && invalidcmd" did not complete successfully: exit code: 127"#
        );
        assert_eq!(
            did_not_complete(&argv[..1], &outcome(ExitStatus::Signal(9), true)),
            r#"process "/bin/sh" did not complete successfully: killed: out of memory"#
        );
    }

    #[test]
    fn proxies_are_set_over_env_and_args() {
        let env = vec![
            "PATH=/bin".to_owned(),
            "http_proxy=from-env".to_owned(),
            "KEEP=1".to_owned(),
        ];
        let proxies = vec![
            ("HTTP_PROXY".to_owned(), "p".to_owned()),
            ("http_proxy".to_owned(), "p".to_owned()),
        ];
        assert_eq!(
            with_proxies(&env, &proxies),
            ["PATH=/bin", "KEEP=1", "HTTP_PROXY=p", "http_proxy=p"]
        );
        assert_eq!(with_proxies(&env, &[]), env);
    }
}
