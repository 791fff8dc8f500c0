//! COPY from a stage (`--from`): plain sources with Go wildcards in the last
//! element, `--parents`, whole trees walked in the merged view.

use super::*;

impl CopyOp {
    /// `COPY --parents --from`: the same selection over a stage's files.
    pub(super) fn copy_stage_parents(
        &self,
        view: &Merged,
        writer: &mut Writer<'_>,
        dest: &str,
    ) -> Result<(), BoxError> {
        writer.ensure_dir(dest, None)?;
        for source in &self.sources {
            writer.links.clear();
            let spec = ParentsSource::parse(source)
                .map_err(|e| self.fail(format!("COPY --parents {source}"), e))?;
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

    pub(super) fn copy_stage(
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

/// Every entry below `dir` in a stage, parents before children, with its
/// path relative to `dir` (prefixed by `rel`).
fn stage_walk(
    view: &Merged,
    dir: &str,
    rel: &str,
    out: &mut Vec<(String, crate::ops::merged::Found)>,
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
    found: &crate::ops::merged::Found,
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
