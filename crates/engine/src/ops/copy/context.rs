//! COPY and ADD from the build context: plain sources, `--parents`, the
//! `--exclude` matcher, and the content keys of `--parents` copies.

use super::*;

impl CopyOp {
    pub(super) fn copy_context(
        &self,
        context: &BuildContext,
        writer: &mut Writer<'_>,
        dest: &str,
        ctx: &ExecCtx,
    ) -> Result<(), BoxError> {
        let matches = context.resolve(&self.sources).map_err(|e| self.err(e))?;
        let root = File::open(context.root()).map_err(|e| self.fail("open build context", e))?;
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
                        .map_err(|e| self.fail(format!("cannot read /{resolved}"), e))?;
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
            .map_err(|e| self.fail(format!("cannot read {rel} from the build context"), e))?;
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
                    .map_err(|e| self.fail(format!("read link {rel}"), e))?;
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
    pub(super) fn exclude_matcher(&self) -> Result<Option<DockerIgnore>, BoxError> {
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
                .map_err(|e| self.fail(format!("COPY --parents {source}"), e))?;
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
    pub(super) fn parents_key(
        &self,
        context: &BuildContext,
    ) -> Result<(ContentHash, Selection), BoxError> {
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
                            .map_err(|e| self.fail("open build context", e))?,
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

    pub(super) fn copy_context_parents(
        &self,
        context: &BuildContext,
        writer: &mut Writer<'_>,
        dest: &str,
        ctx: &ExecCtx,
    ) -> Result<(), BoxError> {
        let picks = self.context_parents(context)?;
        let root = File::open(context.root()).map_err(|e| self.fail("open build context", e))?;
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
