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
mod link;
mod parents;
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
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::commit::Env;
use super::merged::Merged;
use super::{State, StateData, field, input, op_error};
use crate::context::{BuildContext, ContextEntry, EntryKind, Selection, VisitError};
use crate::dockerignore::{Decision, DockerIgnore};
use crate::error::Error;
use crate::gopath::{clean_relative, glob};
pub(crate) use chmod::ChmodSpec;
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
        match &self.source {
            Source::Mkdir => {
                if !dest_exists_dir {
                    writer.ensure_dir(&dest, None)?;
                }
            }
            Source::Inline(files) => {
                for (name, content) in files {
                    let path = if writer.goes_into(self.dest_is_dir, &dest) {
                        join(&dest, name)
                    } else {
                        dest.clone()
                    };
                    writer.write_bytes(&path, content.as_bytes())?;
                }
            }
            Source::Context(context) if self.parents => {
                self.copy_context_parents(context, &mut writer, &dest, ctx)?
            }
            Source::Context(context) => self.copy_context(context, &mut writer, &dest, ctx)?,
            Source::Url { fetched, .. } => {
                self.fetch()?;
                let guard = fetched.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(download) = guard.as_ref() else {
                    return Err(self.err("download vanished"));
                };
                let path = if writer.goes_into(self.dest_is_dir, &dest) {
                    join(&dest, &download.name)
                } else {
                    dest.clone()
                };
                let file = download.file.reopen().map_err(|e| self.err(e))?;
                let meta = file.metadata().map_err(|e| self.err(e))?;
                writer.write_file(&path, file, &meta, (0, 0))?;
            }
            Source::Stage => {
                let from = input(inputs, if self.link { 0 } else { 1 });
                let view = Merged::new(&self.env.store, &from)?;
                if self.parents {
                    self.copy_stage_parents(&view, &mut writer, &dest)?;
                } else {
                    self.copy_stage(&view, &mut writer, &dest)?;
                }
            }
        }
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
    /// Names this copy apart from its sources' content: the op and the
    /// layers it copies onto. Two runs under one key differ only in what
    /// the context held, so the later can link the earlier's unchanged
    /// files (the edit loop: one file changed, thousands not rewritten).
    fn reuse_key(&self, base: &StateData) -> buildr_cache::CacheKey {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"buildr/copy-reuse/v1\0");
        hasher.update(&self.definition());
        for layer in &base.layers {
            hasher.update(layer.diff_id.to_string().as_bytes());
        }
        buildr_cache::CacheKey::from_bytes(*hasher.finalize().as_bytes())
    }

    /// The snapshot the previous run under `key` made, opened, if it is
    /// still in the store. A hint only: any failure reads as none.
    fn previous_run(&self, key: &buildr_cache::CacheKey) -> Option<File> {
        let store = &self.env.store;
        let record = store.get_record(key).ok()??;
        let id: SnapshotId = serde_json::from_value(record.value).ok()?;
        File::open(store.snapshot_path(&id).ok()?).ok()
    }

    /// Records `snapshot` as this copy's latest run under `key`. The record
    /// names no referent, so it keeps nothing alive; failing to write it
    /// only costs the next run its shortcut.
    fn remember_run(&self, key: &buildr_cache::CacheKey, snapshot: &SnapshotId) {
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
        let download =
            super::fetch::fetch(url, &self.env.work).map_err(|e| self.err(format!("ADD {e}")))?;
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

    fn copy_context(
        &self,
        context: &BuildContext,
        writer: &mut Writer<'_>,
        dest: &str,
        ctx: &ExecCtx,
    ) -> Result<(), BoxError> {
        let matches = context.resolve(&self.sources).map_err(|e| self.err(e))?;
        let root =
            File::open(context.root()).map_err(|e| self.err(format!("open build context: {e}")))?;
        for m in &matches {
            if ctx.is_cancelled() {
                return Err(self.err("cancelled"));
            }
            let named = clean_relative(&m.path);
            // As BuildKit, hard links are kept within one source, not across.
            writer.links.clear();
            match m.kind {
                EntryKind::Dir => {
                    let target = dest;
                    let resolved = clean_relative(&m.resolved);
                    let source = open_beneath(&root, &resolved, false)
                        .and_then(|dir| dir.metadata())
                        .map_err(|e| self.err(format!("cannot read /{resolved}: {e}")))?;
                    writer.dest_dir(target, Some(mtime_of(&source)))?;
                    let prefix = if resolved.is_empty() {
                        String::new()
                    } else {
                        format!("{resolved}/")
                    };
                    // One entry at a time: a 500k-file context is never
                    // listed in memory.
                    let copied = context.visit_under(&resolved, |entry| {
                        if ctx.is_cancelled() {
                            return Err(self.err("cancelled"));
                        }
                        let rel = entry.path.get(prefix.len()..).unwrap_or_default();
                        if writer.excluded(rel, entry.kind == EntryKind::Dir) {
                            return Ok(());
                        }
                        let out = join(target, rel);
                        self.copy_context_entry(&root, &entry.path, entry.kind, &out, writer)
                    });
                    copied.map_err(|err| match err {
                        VisitError::Walk(err) => self.err(err),
                        VisitError::Visitor(err) => err,
                    })?;
                }
                kind => {
                    // As BuildKit, each source on its own: into the
                    // destination when it ends in `/` or is a directory by
                    // now, else onto it.
                    let out = if writer.goes_into(self.dest_is_dir, dest) {
                        join(dest, base_name(&named))
                    } else {
                        dest.to_owned()
                    };
                    if self.unpack
                        && kind == EntryKind::File
                        && self.try_unpack(&root, &m.resolved, dest, writer)?
                    {
                        continue;
                    }
                    self.copy_context_entry(
                        &root,
                        &clean_relative(&m.resolved),
                        kind,
                        &out,
                        writer,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn copy_context_entry(
        &self,
        root: &File,
        rel: &str,
        kind: EntryKind,
        out: &str,
        writer: &mut Writer<'_>,
    ) -> Result<(), BoxError> {
        // A path handle only: a socket is never connected to or read.
        let path_only = matches!(kind, EntryKind::Symlink | EntryKind::Socket);
        let file = open_beneath(root, rel, path_only)
            .map_err(|e| self.err(format!("cannot read {rel} from the build context: {e}")))?;
        let meta = file.metadata().map_err(|e| self.err(e))?;
        match kind {
            EntryKind::Dir => {
                writer.ensure_dir(out, Some((&meta, (0, 0))))?;
            }
            EntryKind::File => {
                let inode = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
                if let Some(first) = inode.and_then(|key| writer.links.get(&key).cloned())
                    && writer.write_hardlink(out, &first)?
                {
                    return Ok(());
                }
                let host = writer.write_file(out, file, &meta, (0, 0))?;
                if let Some(key) = inode {
                    writer.links.insert(key, host);
                }
            }
            EntryKind::Symlink => {
                let target = rustix::fs::readlinkat(&file, "", Vec::new())
                    .map_err(|e| self.err(format!("read link {rel}: {e}")))?;
                writer.write_symlink(
                    out,
                    Path::new(target.to_str().unwrap_or_default()),
                    (0, 0),
                    mtime_of(&meta),
                )?;
            }
            // As BuildKit: an empty regular file with the socket's mode.
            EntryKind::Socket => {
                writer.write_file(out, io::empty(), &meta, (0, 0))?;
            }
            other => {
                return Err(self.err(format!("cannot copy {rel}: it is a {}", other.describe())));
            }
        }
        Ok(())
    }

    /// `--exclude` patterns, compiled.
    fn exclude_matcher(&self) -> Result<Option<DockerIgnore>, BoxError> {
        if self.excludes.is_empty() {
            return Ok(None);
        }
        DockerIgnore::from_patterns(&self.excludes)
            .map(Some)
            .map_err(|e| self.err(e))
    }

    /// What a `--parents` copy from the context writes, source by source,
    /// parents before children.
    fn context_parents(&self, context: &BuildContext) -> Result<Vec<ContextPick>, BoxError> {
        let excludes = self.exclude_matcher()?;
        let excluded = |rel: &str, is_dir: bool| {
            excludes
                .as_ref()
                .is_some_and(|ignore| ignore.decide(rel, is_dir) == Decision::Exclude)
        };
        let mut whole: Option<Vec<ContextEntry>> = None;
        let mut out = Vec::new();
        for (source_idx, source) in self.sources.iter().enumerate() {
            let spec = ParentsSource::parse(source)
                .map_err(|e| self.err(format!("COPY --parents {source}: {e}")))?;
            let pivots = if spec.pivot.is_empty() {
                vec![String::new()]
            } else {
                match context.resolve(&[spec.pivot.as_str()]) {
                    Ok(found) => {
                        let mut dirs = Vec::new();
                        for m in found {
                            if m.kind == EntryKind::Dir {
                                dirs.push(clean_relative(&m.resolved));
                            } else if !spec.pivot_has_wildcards() {
                                return Err(self.err(format!(
                                    "COPY --parents {source}: /{} is not a directory",
                                    clean_relative(&m.path)
                                )));
                            }
                        }
                        dirs
                    }
                    // As BuildKit (AllowEmptyWildcard): a wildcard pivot
                    // may match nothing.
                    Err(Error::ContextSourceNotFound { .. }) if spec.pivot_has_wildcards() => {
                        Vec::new()
                    }
                    Err(e) => return Err(self.err(e)),
                }
            };
            let mut required = spec.required();
            for pivot in pivots {
                let under;
                let entries: &[ContextEntry] = if pivot.is_empty() {
                    match &whole {
                        Some(entries) => entries,
                        None => whole.insert(context.walk().map_err(|e| self.err(e))?),
                    }
                } else {
                    under = context.walk_under(&pivot).map_err(|e| self.err(e))?;
                    &under
                };
                let skip = if pivot.is_empty() { 0 } else { pivot.len() + 1 };
                let rels: Vec<(&str, bool)> = entries
                    .iter()
                    .map(|e| (e.path.get(skip..).unwrap_or(""), e.kind == EntryKind::Dir))
                    .collect();
                if spec.pattern.is_empty() || rels.iter().any(|(rel, _)| *rel == spec.pattern) {
                    required = None;
                }
                for pick in parents::select(&rels, &spec, excluded) {
                    let entry = &entries[pick.idx];
                    out.push(ContextPick {
                        path: entry.path.clone(),
                        rel: rels[pick.idx].0.to_owned(),
                        kind: entry.kind,
                        mode: entry.mode,
                        top: pick.top,
                        matched: pick.matched,
                        source: source_idx,
                    });
                }
            }
            if let Some(path) = required {
                return Err(self.err(Error::ContextSourceNotFound {
                    source_path: format!("/{path}"),
                }));
            }
        }
        Ok(out)
    }

    /// The cache key of a `--parents` copy from the context: where each
    /// entry lands, the content checksum of every matched file and
    /// directory (through the context's checksum, so the stat cache
    /// serves it), the targets of matched symlinks and the modes of the
    /// directories recreated between a pivot and a match.
    fn parents_key(&self, context: &BuildContext) -> Result<(ContentHash, Selection), BoxError> {
        let picks = self.context_parents(context)?;
        let mut root = None;
        let mut hasher = buildr_solver::ContentHasher::new();
        hasher.update(b"buildr-copy-parents/v1");
        let mut tops = Vec::new();
        for pick in &picks {
            hasher
                .update(&(pick.source as u64).to_le_bytes())
                .update(pick.rel.as_bytes())
                .update(pick.path.as_bytes());
            if !pick.matched {
                hasher.update(b"dir").update(&pick.mode.to_le_bytes());
            } else if !pick.top {
                // Covered by the checksum of the directory that matched.
            } else if pick.kind == EntryKind::Symlink {
                let root = match &root {
                    Some(root) => root,
                    None => root.insert(
                        File::open(context.root())
                            .map_err(|e| self.err(format!("open build context: {e}")))?,
                    ),
                };
                let link = open_beneath(root, &pick.path, true)
                    .and_then(|file| Ok(rustix::fs::readlinkat(&file, "", Vec::new())?))
                    .map_err(|e| {
                        self.err(format!("read link {} in the build context: {e}", pick.path))
                    })?;
                hasher.update(b"link").update(link.as_bytes());
            } else {
                hasher.update(b"top");
                tops.push(parents::escape(&pick.path));
            }
        }
        let selection = context.checksum(&tops).map_err(|e| self.err(e))?;
        hasher.update(selection.checksum().as_bytes());
        Ok((hasher.finish(), selection))
    }

    fn copy_context_parents(
        &self,
        context: &BuildContext,
        writer: &mut Writer<'_>,
        dest: &str,
        ctx: &ExecCtx,
    ) -> Result<(), BoxError> {
        let picks = self.context_parents(context)?;
        let root =
            File::open(context.root()).map_err(|e| self.err(format!("open build context: {e}")))?;
        writer.ensure_dir(dest, None)?;
        let mut source = usize::MAX;
        for pick in &picks {
            if ctx.is_cancelled() {
                return Err(self.err("cancelled"));
            }
            if pick.source != source {
                // As BuildKit, hard links are kept within one source.
                writer.links.clear();
                source = pick.source;
            }
            let out = join(dest, &pick.rel);
            self.copy_context_entry(&root, &pick.path, pick.kind, &out, writer)?;
        }
        Ok(())
    }

    /// `COPY --parents --from`: the same selection over a stage's files.
    fn copy_stage_parents(
        &self,
        view: &Merged,
        writer: &mut Writer<'_>,
        dest: &str,
    ) -> Result<(), BoxError> {
        writer.ensure_dir(dest, None)?;
        for source in &self.sources {
            writer.links.clear();
            let spec = ParentsSource::parse(source)
                .map_err(|e| self.err(format!("COPY --parents {source}: {e}")))?;
            if spec.pivot_has_wildcards() {
                return Err(self.err(format!(
                    "COPY --parents --from {source}: wildcards before /./ are not supported yet"
                )));
            }
            let pivot = view.resolve(&spec.pivot, true)?;
            if !pivot.is_empty() {
                match view.lookup(&pivot) {
                    Some(found) if found.meta.is_dir() => {}
                    Some(_) => {
                        return Err(self.err(format!(
                            "COPY --parents {source}: /{} is not a directory",
                            spec.pivot
                        )));
                    }
                    None => {
                        return Err(self.err(format!(
                            "failed to compute cache key: \"/{}\": not found",
                            spec.pivot
                        )));
                    }
                }
            }
            let mut entries = Vec::new();
            stage_walk(view, &pivot, "", &mut entries)?;
            let rels: Vec<(&str, bool)> = entries
                .iter()
                .map(|(rel, found)| (rel.as_str(), found.meta.is_dir()))
                .collect();
            if let Some(path) = spec.required()
                && !spec.pattern.is_empty()
                && !rels.iter().any(|(rel, _)| *rel == spec.pattern)
            {
                return Err(self.err(format!(
                    "failed to compute cache key: \"/{path}\": not found"
                )));
            }
            let picks = parents::select(&rels, &spec, |rel, is_dir| writer.excluded(rel, is_dir));
            for pick in picks {
                let (rel, found) = &entries[pick.idx];
                let out = join(dest, rel);
                if found.meta.is_dir() {
                    writer.ensure_dir(
                        &out,
                        Some((&found.meta, (found.meta.uid(), found.meta.gid()))),
                    )?;
                } else {
                    copy_found(found, &out, writer)?;
                }
            }
        }
        Ok(())
    }

    fn copy_stage(
        &self,
        view: &Merged,
        writer: &mut Writer<'_>,
        dest: &str,
    ) -> Result<(), BoxError> {
        let mut matches = Vec::new();
        for source in &self.sources {
            let cleaned = clean_relative(source);
            let (parent, last) = match cleaned.rfind('/') {
                Some(idx) => (&cleaned[..idx], &cleaned[idx + 1..]),
                None => ("", cleaned.as_str()),
            };
            if glob::has_wildcards(last) {
                let parent_resolved = view.resolve(parent, true)?;
                // As fsutil, the directory before the wildcard must exist;
                // a wildcard matching nothing in it is fine.
                if !parent_resolved.is_empty() && view.lookup(&parent_resolved).is_none() {
                    return Err(self.err(format!(
                        "failed to compute cache key: \"/{cleaned}\": not found"
                    )));
                }
                for name in view.list(&parent_resolved)?.keys() {
                    if glob::matches(last, name).unwrap_or(false) {
                        matches.push((
                            join(parent, name),
                            view.resolve(&join(&parent_resolved, name), true)?,
                        ));
                    }
                }
            } else {
                let resolved = view.resolve(&cleaned, true)?;
                if view.lookup(&resolved).is_none() && !resolved.is_empty() {
                    return Err(self.err(format!(
                        "failed to compute cache key: \"/{cleaned}\": not found"
                    )));
                }
                matches.push((cleaned.clone(), resolved));
            }
        }
        for (named, resolved) in &matches {
            // As BuildKit, hard links are kept within one source, not across.
            writer.links.clear();
            let found = if resolved.is_empty() {
                None
            } else {
                view.lookup(resolved)
            };
            let is_dir = found.as_ref().is_none_or(|f| f.meta.is_dir());
            if is_dir {
                let target = dest;
                writer.dest_dir(target, found.as_ref().map(|f| mtime_of(&f.meta)))?;
                self.copy_stage_tree(view, resolved, target, writer)?;
            } else if let Some(found) = found {
                let out = if writer.goes_into(self.dest_is_dir, dest) {
                    join(dest, base_name(named))
                } else {
                    dest.to_owned()
                };
                copy_found(&found, &out, writer)?;
            }
        }
        Ok(())
    }

    fn copy_stage_tree(
        &self,
        view: &Merged,
        from: &str,
        to: &str,
        writer: &mut Writer<'_>,
    ) -> Result<(), BoxError> {
        for (name, found) in view.list(from)? {
            let src = join(from, &name);
            let out = join(to, &name);
            if found.meta.is_dir() {
                writer.ensure_dir(
                    &out,
                    Some((&found.meta, (found.meta.uid(), found.meta.gid()))),
                )?;
                self.copy_stage_tree(view, &src, &out, writer)?;
            } else {
                copy_found(&found, &out, writer)?;
            }
        }
        Ok(())
    }
}

/// One context entry a `--parents` copy writes.
#[derive(Debug)]
struct ContextPick {
    /// Relative to the context root.
    path: String,
    /// Relative to the pivot: where it lands below the destination.
    rel: String,
    kind: EntryKind,
    mode: u32,
    /// Matched, and its parent was not (it stands for its subtree).
    top: bool,
    /// `false` for a directory recreated only as a match's parent.
    matched: bool,
    /// The index of the source that picked it.
    source: usize,
}

/// Every entry below `dir` in a stage, parents before children, with its
/// path relative to `dir` (prefixed by `rel`).
fn stage_walk(
    view: &Merged,
    dir: &str,
    rel: &str,
    out: &mut Vec<(String, super::merged::Found)>,
) -> Result<(), BoxError> {
    for (name, found) in view.list(dir)? {
        let path = join(rel, &name);
        let is_dir = found.meta.is_dir();
        out.push((path.clone(), found));
        if is_dir {
            stage_walk(view, &join(dir, &name), &path, out)?;
        }
    }
    Ok(())
}

fn copy_found(
    found: &super::merged::Found,
    out: &str,
    writer: &mut Writer<'_>,
) -> Result<(), BoxError> {
    let owner = (found.meta.uid(), found.meta.gid());
    let kind = found.meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(&found.host).map_err(|e| op_error(writer.location, e))?;
        writer.write_symlink(out, &target, owner, mtime_of(&found.meta))?;
    } else if kind.is_file() {
        // As BuildKit: files hard-linked in the source stay hard-linked
        // in one copy.
        let inode = (found.meta.nlink() > 1).then(|| (found.meta.dev(), found.meta.ino()));
        if let Some(first) = inode.and_then(|key| writer.links.get(&key).cloned())
            && writer.write_hardlink(out, &first)?
        {
            return Ok(());
        }
        let file = File::options()
            .read(true)
            .custom_flags(libc_nofollow())
            .open(&found.host)
            .map_err(|e| op_error(writer.location, e))?;
        let host = writer.write_file(out, file, &found.meta, owner)?;
        if let Some(key) = inode {
            writer.links.insert(key, host);
        }
    }
    // Sockets, fifos and devices in a stage are skipped, as BuildKit's copy does for sockets.
    Ok(())
}

/// Opens `rel` under the context root without following any symlink
/// (`symlink_itself`: an `O_PATH` handle on the link).
fn open_beneath(root: &File, rel: &str, symlink_itself: bool) -> io::Result<File> {
    let rel = if rel.is_empty() { "." } else { rel };
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if symlink_itself {
        flags |= OFlags::PATH;
    }
    let fd = rustix::fs::openat2(
        root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )?;
    Ok(File::from(fd))
}

/// `--chown` resolved in the target stage's /etc/passwd and /etc/group.
fn resolve_owner(target: &Merged, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = target.read_small("etc/passwd", 4 << 20).unwrap_or_default();
    let groups = target.read_small("etc/group", 4 << 20).unwrap_or_default();
    let lookup = |db: &str, name: &str, field_idx: usize| -> Option<(u32, u32)> {
        db.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&name) {
                return None;
            }
            let id = fields.get(field_idx)?.parse().ok()?;
            let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            Some((id, gid))
        })
    };
    // As BuildKit's `parseUID`: `root` is 0 without a lookup (so it works
    // with `--link`, where there is no /etc/passwd to read).
    let numeric = |name: &str| match name {
        "root" => Some(0),
        name => name.parse::<u32>().ok(),
    };
    let (uid, primary) = match numeric(user) {
        Some(uid) => (uid, uid),
        None => lookup(&passwd, user, 2).ok_or_else(|| {
            format!("unable to find user {user}: no matching entries in passwd file")
        })?,
    };
    let gid = match group {
        None => primary,
        Some(group) => match numeric(group) {
            Some(gid) => gid,
            None => lookup(&groups, group, 2)
                .map(|(gid, _)| gid)
                .ok_or_else(|| {
                    format!("unable to find group {group}: no matching entries in group file")
                })?,
        },
    };
    Ok((uid, gid))
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
