//! `COPY`, `ADD` and `WORKDIR`'s mkdir: files written straight into a fresh
//! upper dir (overlay form) that becomes the new layer; no sandbox.
//!
//! Semantics follow BuildKit: a directory source copies its contents, a
//! destination ending in `/` (or an existing directory, or several matches)
//! receives sources by base name, symlinks are copied as symlinks, context
//! files get owner 0:0 and stage files keep theirs unless `--chown`,
//! `--chmod` sets (octal) or changes (symbolic, `chmod.rs`) each copied
//! entry's mode, destinations resolve symlinks inside the image.
//!
//! `--parents` keeps the sources' paths below a pivot (`parents.rs`).
//! `--link` copies onto an empty state instead of the stage so far: the
//! layer and its cache key do not depend on the layers below, and a
//! [`LinkOp`] (`link.rs`) stacks it on the stage, as BuildKit's MergeOp.

pub(crate) mod chmod;
mod context;
mod link;
mod owner;
mod parents;
mod stage;
mod unpack;
mod writer;

pub(crate) use link::LinkOp;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use buildr_cache::SnapshotId;
use buildr_solver::{BoxError, ContentHash, ExecCtx, Op};
use rustix::fs::{OFlags, ResolveFlags};

use super::commit::Env;
use super::merged::Merged;
use super::{State, StateData, field, input, op_error};
use crate::context::{BuildContext, ContextEntry, EntryKind, Selection, VisitError};
use crate::dockerignore::{Decision, DockerIgnore};
use crate::error::Error;
use crate::gopath::{clean_relative, glob};
pub(crate) use chmod::ChmodSpec;
use owner::resolve_owner;
use parents::ParentsSource;
use writer::{Writer, libc_nofollow, mtime_of};

/// Where the files of a copy come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// Paths in the build context.
    Context(Arc<BuildContext>),
    /// Paths in another stage or image: the op's input 1.
    Stage,
    /// Heredoc files: (name, content).
    Inline(Vec<(String, String)>),
    /// No sources: `WORKDIR` creating its directory.
    Mkdir,
    /// `ADD <url>`, with `--checksum` if given.
    Url {
        url: String,
        checksum: Option<buildr_cache::Digest>,
        fetched: Mutex<Option<super::fetch::Fetched>>,
    },
}

/// One COPY/ADD/WORKDIR step, expanded at lowering time.
#[derive(Debug)]
pub(crate) struct CopyOp {
    pub name: String,
    pub location: String,
    pub source: Source,
    pub sources: Vec<String>,
    /// Absolute destination as written after expansion and WORKDIR.
    pub dest: String,
    /// The destination named a directory (trailing `/`, `.`).
    pub dest_is_dir: bool,
    pub chown: Option<String>,
    pub chmod: Option<ChmodSpec>,
    /// ADD: extract local tar archives.
    pub unpack: bool,
    pub excludes: Vec<String>,
    pub parents: bool,
    /// `--link`: copy onto an empty state (no input 0; a `--from` state is
    /// input 0), for a [`LinkOp`] to put on top of the stage.
    pub link: bool,
    pub env: Env,
    pub selection: Mutex<Option<Selection>>,
    /// The step, independent of its content, for explaining a miss from
    /// a cache another machine wrote: hex of blake3 over the definition,
    /// which sources were selected, and the diff ids under the copy.
    pub explain_id: Mutex<Option<String>>,
}

impl CopyOp {
    /// See [`CopyOp::explain_id`]: 32 hex characters.
    fn explain_id(&self, base: Option<&State>, selection: &Selection) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"buildr/copy-explain/v1\0");
        h.update(&self.definition());
        h.update(selection.key());
        if let Some(base) = base {
            for layer in &base.layers {
                h.update(layer.diff_id.to_string().as_bytes());
            }
            h.update(&[0]);
            for added in &base.added {
                h.update(&[u8::from(*added)]);
            }
        }
        let mut hex = h.finalize().to_hex().to_string();
        hex.truncate(32);
        hex
    }
}

impl Op<State> for CopyOp {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn definition(&self) -> Vec<u8> {
        let mut def = b"buildr/copy/v1".to_vec();
        match &self.source {
            Source::Context(_) => field(&mut def, "context"),
            Source::Stage => field(&mut def, "stage"),
            Source::Inline(files) => {
                field(&mut def, "inline");
                for (name, content) in files {
                    field(&mut def, name);
                    field(&mut def, content);
                }
            }
            Source::Mkdir => field(&mut def, "mkdir"),
            Source::Url { url, checksum, .. } => {
                field(&mut def, "url");
                field(&mut def, url);
                field(
                    &mut def,
                    checksum.map(|c| c.to_string()).unwrap_or_default(),
                );
            }
        }
        for source in &self.sources {
            field(&mut def, source);
        }
        field(&mut def, &self.dest);
        field(
            &mut def,
            [
                u8::from(self.dest_is_dir),
                u8::from(self.unpack),
                u8::from(self.parents),
                u8::from(self.link),
            ],
        );
        field(&mut def, self.chown.as_deref().unwrap_or("\0"));
        field(&mut def, ChmodSpec::key(self.chmod.as_ref()));
        for exclude in &self.excludes {
            field(&mut def, exclude);
        }
        def
    }

    fn reads_content(&self) -> bool {
        matches!(self.source, Source::Context(_) | Source::Url { .. })
    }

    fn content_key(
        &self,
        inputs: &[&State],
        _ctx: &ExecCtx,
    ) -> Result<Option<ContentHash>, BoxError> {
        if let Source::Url { .. } = &self.source {
            // As BuildKit's HTTP source key: the content and the
            // Last-Modified that becomes the file's mtime in the layer.
            let (digest, modified) = self.fetch()?;
            let mtime = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut hasher = buildr_solver::ContentHasher::new();
            hasher
                .update(b"buildr-url/v2")
                .update(digest.as_bytes())
                .update(&mtime.to_le_bytes());
            return Ok(Some(hasher.finish()));
        }
        let Source::Context(context) = &self.source else {
            return Ok(None);
        };
        let (sum, selection) = if self.parents {
            self.parents_key(context)?
        } else {
            let selection = context
                .checksum(&self.sources)
                .map_err(|e| op_error(&self.location, e))?;
            (selection.checksum(), selection)
        };
        let id = self.explain_id(inputs.first().copied(), &selection);
        self.env.caches.note_selection(&id, &selection);
        *self
            .explain_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(id);
        *self
            .selection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(selection);
        Ok(Some(sum))
    }

    fn explain_miss(&self) -> Option<String> {
        let Source::Context(context) = &self.source else {
            return None;
        };
        let selection = self
            .selection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let selection = selection.as_ref()?;
        let change = context.explain(selection).or_else(|| {
            let id = self
                .explain_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.env
                .caches
                .explain_from_caches(id.as_deref()?, selection)
        })?;
        Some(format!("{}: {change}", self.line()))
    }

    fn execute(&self, inputs: &[State], ctx: &ExecCtx) -> Result<State, BoxError> {
        // With --link nothing below is read: not the destination's
        // symlinks, not its directories' metadata, not /etc/passwd.
        let base = if self.link {
            State::default()
        } else {
            input(inputs, 0)
        };
        let target = Merged::new(&self.env.store, &base)?;
        let dir = self.env.scratch_dir("copy-")?;
        let upper = dir.path().join("upper");
        fs::create_dir(&upper).map_err(|e| op_error(&self.location, e))?;
        let mut writer = Writer {
            upper: &upper,
            target: &target,
            owner: None,
            chmod: self.chmod.as_ref(),
            location: &self.location,
            links: HashMap::new(),
            dir_times: HashMap::new(),
            excludes: self.exclude_matcher()?,
            previous: None,
            previous_dir: None,
            reused: HashSet::new(),
            prepared: None,
        };
        // Only a copy from the context has a previous run to link from; a
        // lease keeps a prune from taking that snapshot meanwhile.
        let reuse_key = matches!(self.source, Source::Context(_)).then(|| self.reuse_key(&base));
        let _lease = match &reuse_key {
            Some(key) => {
                let lease = self
                    .env
                    .store
                    .lease()
                    .map_err(|e| op_error(&self.location, e))?;
                writer.previous = self.previous_run(key);
                Some(lease)
            }
            None => None,
        };
        if let Some(chown) = &self.chown {
            writer.owner =
                Some(resolve_owner(&target, chown).map_err(|e| op_error(&self.location, e))?);
        }
        let dest = target.resolve(&self.dest, true)?;
        let dest_exists_dir = target.lookup(&dest).is_some_and(|f| f.meta.is_dir());
        self.write_sources(inputs, ctx, &mut writer, &dest, dest_exists_dir)?;
        if let Source::Context(context) = &self.source
            && let Some(selection) = self
                .selection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
        {
            context
                .remember(selection)
                .map_err(|e| op_error(&self.location, e))?;
        }
        writer.settle()?;
        let layer = self.env.commit(&upper)?;
        if let (Some(key), Some(layer)) = (&reuse_key, &layer) {
            self.remember_run(key, &layer.snapshot);
        }
        let mut next = StateData::clone(&base);
        next.added.push(layer.is_some());
        next.layers.extend(layer);
        next.created = super::unix_now();
        Ok(Arc::new(next))
    }
}

impl CopyOp {
    /// Writes what this copy's source holds (a directory, inline files,
    /// context entries, a download, another stage's files) into `writer`
    /// at `dest`.
    fn write_sources(
        &self,
        inputs: &[State],
        ctx: &ExecCtx,
        writer: &mut Writer<'_>,
        dest: &str,
        dest_exists_dir: bool,
    ) -> Result<(), BoxError> {
        match &self.source {
            Source::Mkdir => {
                if !dest_exists_dir {
                    writer.ensure_dir(dest, None)?;
                }
            }
            Source::Inline(files) => {
                for (name, content) in files {
                    let path = if writer.goes_into(self.dest_is_dir, dest) {
                        join(dest, name)
                    } else {
                        dest.to_owned()
                    };
                    writer.write_bytes(&path, content.as_bytes())?;
                }
            }
            Source::Context(context) if self.parents => {
                self.copy_context_parents(context, writer, dest, ctx)?
            }
            Source::Context(context) => self.copy_context(context, writer, dest, ctx)?,
            Source::Url { fetched, .. } => {
                self.fetch()?;
                let guard = fetched.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(download) = guard.as_ref() else {
                    return Err(self.err("download vanished"));
                };
                let path = if writer.goes_into(self.dest_is_dir, dest) {
                    join(dest, &download.name)
                } else {
                    dest.to_owned()
                };
                let file = download.file.reopen().map_err(|e| self.err(e))?;
                let meta = file.metadata().map_err(|e| self.err(e))?;
                writer.write_file(&path, file, &meta, (0, 0))?;
            }
            Source::Stage => {
                let from = input(inputs, if self.link { 0 } else { 1 });
                let view = Merged::new(&self.env.store, &from)?;
                if self.parents {
                    self.copy_stage_parents(&view, writer, dest)?;
                } else {
                    self.copy_stage(&view, writer, dest)?;
                }
            }
        }
        Ok(())
    }

    /// Names this copy apart from its sources' content: the op and the
    /// layers it copies onto. Two runs under one key differ only in what
    /// the context held, so the later can link the earlier's unchanged
    /// files (the edit loop: one file changed, thousands not rewritten).
    fn reuse_key(&self, base: &StateData) -> buildr_cache::RecordKey {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"buildr/copy-reuse/v1\0");
        hasher.update(&self.definition());
        for layer in &base.layers {
            hasher.update(layer.diff_id.to_string().as_bytes());
        }
        buildr_cache::RecordKey::from_bytes(*hasher.finalize().as_bytes())
    }

    /// The snapshot the previous run under `key` made, opened, if it is
    /// still in the store. A hint only: any failure reads as none.
    fn previous_run(&self, key: &buildr_cache::RecordKey) -> Option<File> {
        let store = &self.env.store;
        let record = store.get_record(key).ok()??;
        let id: SnapshotId = serde_json::from_value(record.value).ok()?;
        File::open(store.snapshot_path(&id).ok()?).ok()
    }

    /// Records `snapshot` as this copy's latest run under `key`. The record
    /// names no referent, so it keeps nothing alive; failing to write it
    /// only costs the next run its shortcut.
    fn remember_run(&self, key: &buildr_cache::RecordKey, snapshot: &SnapshotId) {
        let Ok(value) = serde_json::to_value(snapshot) else {
            return;
        };
        let record = buildr_cache::Record {
            value,
            ..buildr_cache::Record::default()
        };
        if let Err(e) = self.env.store.put_record(key, &record) {
            tracing::debug!(error = %e, "cannot remember a copy's run");
        }
    }

    /// Downloads the URL once per build; returns its sha256 and mtime.
    fn fetch(&self) -> Result<(buildr_cache::Digest, std::time::SystemTime), BoxError> {
        let Source::Url {
            url,
            checksum,
            fetched,
        } = &self.source
        else {
            return Err(self.err("not a URL source"));
        };
        let mut slot = fetched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(done) = slot.as_ref() {
            return Ok((done.digest, done.modified));
        }
        let download = super::fetch::fetch(url, &self.env.work)
            .map_err(|e| self.err(format!("ADD {}", crate::error::error_chain(&e))))?;
        if let Some(want) = checksum
            && *want != download.digest
        {
            return Err(self.err(format!(
                "ADD {}: digest mismatch: --checksum says {want}, the download is {}",
                super::fetch::redact(url),
                download.digest
            )));
        }
        let done = (download.digest, download.modified);
        *slot = Some(download);
        Ok(done)
    }

    fn line(&self) -> &str {
        match self.name.find("] ") {
            Some(idx) => &self.name[idx + 2..],
            None => &self.name,
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> BoxError {
        op_error(&self.location, message)
    }

    /// `what` failed because of `source`.
    fn fail(
        &self,
        what: impl std::fmt::Display,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BoxError {
        super::op_failure(&self.location, what, source)
    }
}

/// Opens `rel` under the context root without following any symlink
/// (`symlink_itself`: an `O_PATH` handle on the link).
fn open_beneath(root: &File, rel: &str, symlink_itself: bool) -> io::Result<File> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if symlink_itself {
        flags |= OFlags::PATH;
    }
    let fd = buildr_fs::rooted::open_beneath(
        root,
        std::path::Path::new(rel),
        flags,
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )?;
    Ok(File::from(fd))
}

fn join(base: &str, rel: &str) -> String {
    let base = clean_relative(base);
    let rel = clean_relative(rel);
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel,
        (_, true) => base,
        _ => format!("{base}/{rel}"),
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_clamps_dotdot() {
        assert_eq!(clean_relative("/../a/./b/"), "a/b");
        // A relative part never climbs out of its base.
        assert_eq!(join("/app", "../x"), "app/x");
        assert_eq!(join("app", "b/c"), "app/b/c");
    }
}
