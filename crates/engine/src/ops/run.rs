//! `RUN`: the command in the sandbox over the state's snapshots (overlay,
//! topmost first) and a fresh upper dir, which becomes the new layer.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use buildr_exec::{BindMount, Cancel, Network, Rootfs, Sandbox, SpawnSpec, Stream, TmpfsMount};
use buildr_solver::{BoxError, ExecCtx, LogStream, Op};

use super::commit::Env;
use super::merged::Merged;
use super::{State, StateData, field, input, op_error};

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
}

/// What a RUN step runs, fully expanded at lowering time.
#[derive(Debug)]
pub(crate) struct RunOp {
    pub name: String,
    pub location: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: Network,
    pub tmpfs: Vec<TmpfsMount>,
    /// Read-only binds from the build context.
    pub binds: Vec<BindMount>,
    pub caches: Vec<CacheMount>,
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
        let Some(dir) = path.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        // Best effort and atomic: a torn memo would only lose an explanation.
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
            && std::io::Write::write_all(&mut tmp, &bytes).is_ok()
        {
            let _ = tmp.persist(path);
        }
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
        for tmpfs in &self.tmpfs {
            field(
                &mut def,
                format!("tmpfs:{}:{:?}", tmpfs.dst.display(), tmpfs.size),
            );
        }
        for cache in &self.caches {
            // The cache's content is deliberately not part of the key.
            field(
                &mut def,
                format!("cache:{}:{}", cache.target, cache.readonly),
            );
        }
        for bind in &self.binds {
            field(&mut def, format!("bind:{}", bind.dst.display()));
        }
        def
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
                .map_err(|e| op_error(&self.location, format!("create {}: {e}", path.display())))?;
        }
        let mut binds = self.binds.clone();
        let mut locks = Vec::new();
        for cache in &self.caches {
            fs::create_dir_all(&cache.host).map_err(|e| {
                op_error(
                    &self.location,
                    format!("create cache mount {}: {e}", cache.host.display()),
                )
            })?;
            if cache.locked {
                let lock_path = cache.host.with_extension("lock");
                let file = File::create(&lock_path).map_err(|e| {
                    op_error(&self.location, format!("lock {}: {e}", lock_path.display()))
                })?;
                rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(
                    |e| op_error(&self.location, format!("lock {}: {e}", lock_path.display())),
                )?;
                locks.push(file);
            }
            binds.push(BindMount {
                src: cache.host.clone(),
                dst: PathBuf::from(&cache.target),
                readonly: cache.readonly,
            });
        }
        let spec = SpawnSpec {
            rootfs: Rootfs {
                lowers: merged.layers().to_vec(),
                upper: upper.clone(),
                work,
                ..Rootfs::default()
            },
            argv: self.argv.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            network: self.network.clone(),
            binds,
            tmpfs: self.tmpfs.clone(),
            ..SpawnSpec::default()
        };
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
        if !outcome.success() {
            let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            let text =
                String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(TAIL_LINES);
            let mut message = format!("{}: {}", self.name_line(), outcome.describe());
            if start < lines.len() {
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
