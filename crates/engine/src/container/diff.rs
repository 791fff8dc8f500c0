//! `diff` and `export`: a container's own changes, and its whole
//! filesystem as a tar stream.
//!
//! `diff` reads the upper dir against the image's layers as docker's
//! overlay2 driver does (`archive.OverlayChanges`): each entry of the
//! upper dir, depth first with each directory's names sorted, is `A`
//! when the image has no such path, `C` when it has (a directory only when
//! its size, mode or mtime differ: one merely copied up is no change),
//! `D` when it is a whiteout or an opaque directory; an added or deleted
//! path's parent is listed `C` before it once, if nothing listed it yet.
//!
//! `export` writes the merged tree (upper over lowers, whiteouts applied)
//! without the volumes, binds or tmpfs mounted on it, as `docker export`
//! tars the container's own filesystem only. Both read by descriptor
//! ([`Tree`]), so they may run while the container does.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use buildr_fs::atomic::AtomicWrite;
use buildr_fs::overlay::is_opaque_fd;

use super::Containers;
use super::tarout::TarOut;
use super::tree::{LayerTree, Meta, RootTree, Tree, lstat};
use crate::error::{Error, Result};

/// What happened to one path (docker's `C`, `A`, `D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChangeKind::Modified => "C",
            ChangeKind::Added => "A",
            ChangeKind::Deleted => "D",
        })
    }
}

/// One line of `diff`: `C /etc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path in the container.
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.path)
    }
}

/// docker's rule for a directory in both: unchanged when size, mode and
/// mtime (to the nanosecond) are the same.
fn same_dir(upper: &Meta, lower: &Meta) -> bool {
    lower.is_dir()
        && upper.size == lower.size
        && upper.mode == lower.mode
        && upper.mtime == lower.mtime
        && upper.mtime_nsec == lower.mtime_nsec
}

impl Containers {
    /// The container's changes against its image, in docker's order.
    pub fn diff(&self, reference: &str) -> Result<Vec<Change>> {
        let container = self.get(reference)?;
        let paths = self.paths(&container.config.id);
        let upper_path = paths.upper();
        let lowers = self.lower_dirs(&container.config)?;
        let fail = |source| super::fs_access::container_io(&container, "/", "diff", source);
        let upper = RootTree::open(&upper_path).map_err(fail)?;
        let image = LayerTree::open(&lowers).map_err(fail)?;
        walk_changes(&upper, &image).map_err(fail)
    }

    /// Writes the container's filesystem (without its volumes) as a tar
    /// stream to `out`; returns `out`.
    pub fn export<W: Write>(&self, reference: &str, out: W) -> Result<W> {
        let container = self.get(reference)?;
        let paths = self.paths(&container.config.id);
        let mut layers = vec![paths.upper()];
        layers.extend(self.lower_dirs(&container.config)?);
        let fail = |source| super::fs_access::container_io(&container, "/", "export", source);
        let tree = LayerTree::open(&layers).map_err(fail)?;
        let root = tree.root().map_err(fail)?;
        let mut tar = TarOut::new(out);
        tar.children(&tree, root, "").map_err(fail)?;
        tar.finish().map_err(fail)
    }

    /// [`Containers::export`] into the file `dest`, which appears only
    /// once complete (temp file and rename).
    pub fn export_to_file(&self, reference: &str, dest: &Path) -> Result<()> {
        AtomicWrite::new().with(dest, |file| -> Result<()> {
            self.export(reference, std::io::BufWriter::new(file))?
                .flush()
                .map_err(|source| Error::Io {
                    action: "write",
                    path: dest.to_owned(),
                    source,
                })
        })
    }
}

/// docker's `changes()` over `upper` against `image`.
fn walk_changes(upper: &RootTree, image: &LayerTree) -> std::io::Result<Vec<Change>> {
    let mut changes = Vec::new();
    let mut changed_dirs: HashSet<Vec<String>> = HashSet::new();
    let root = upper.root()?;
    let names = upper.names(&root)?.into_iter();
    let mut stack = vec![(root, names, Vec::<String>::new())];
    while let Some((dir, names, prefix)) = stack.last_mut() {
        let Some(name) = names.next() else {
            stack.pop();
            continue;
        };
        let Some(meta) = upper.entry(dir, &name)? else {
            continue;
        };
        let mut path = prefix.clone();
        path.push(name.clone());
        let child = if meta.is_dir() {
            Some(upper.open_dir(dir, &name)?)
        } else {
            None
        };
        let deleted = meta.is_whiteout() || child.as_ref().is_some_and(is_opaque_fd);
        let kind = if deleted {
            Some(ChangeKind::Deleted)
        } else {
            match lstat(image, &path)? {
                None => Some(ChangeKind::Added),
                Some(lower) if meta.is_dir() && same_dir(&meta, &lower) => None,
                Some(_) => Some(ChangeKind::Modified),
            }
        };
        if let Some(kind) = kind {
            record(&mut changes, &mut changed_dirs, &path, &meta, kind);
        }
        if let Some(child) = child {
            let names = upper.names(&child)?.into_iter();
            stack.push((child, names, path));
        }
    }
    Ok(changes)
}

/// Adds one change (after its parent's `C`, when docker would add one).
fn record(
    changes: &mut Vec<Change>,
    changed_dirs: &mut HashSet<Vec<String>>,
    path: &[String],
    meta: &Meta,
    kind: ChangeKind,
) {
    if meta.is_dir() {
        changed_dirs.insert(path.to_vec());
    }
    if matches!(kind, ChangeKind::Added | ChangeKind::Deleted) && path.len() > 1 {
        let parent = path[..path.len() - 1].to_vec();
        if changed_dirs.insert(parent.clone()) {
            changes.push(Change {
                kind: ChangeKind::Modified,
                path: format!("/{}", parent.join("/")),
            });
        }
    }
    changes.push(Change {
        kind,
        path: format!("/{}", path.join("/")),
    });
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn changes_come_in_walk_order_with_parents_first() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("etc")).unwrap();
        fs::write(lower.path().join("etc/passwd"), "x").unwrap();
        fs::create_dir_all(lower.path().join("a")).unwrap();
        fs::create_dir_all(upper.path().join("etc")).unwrap();
        fs::write(upper.path().join("etc/passwd"), "y").unwrap();
        fs::write(upper.path().join("etc/new"), "n").unwrap();
        fs::create_dir_all(upper.path().join("a/b")).unwrap();
        fs::write(upper.path().join("a.txt"), "t").unwrap();
        // `a` copied up unchanged: same mode and times as the lower's.
        let lower_a = fs::metadata(lower.path().join("a")).unwrap();
        fs::set_permissions(upper.path().join("a"), lower_a.permissions()).unwrap();
        let times = fs::FileTimes::new().set_modified(lower_a.modified().unwrap());
        fs::File::open(upper.path().join("a"))
            .unwrap()
            .set_times(times)
            .unwrap();
        let upper_tree = RootTree::open(upper.path()).unwrap();
        let image = LayerTree::open(&[lower.path().to_path_buf()]).unwrap();
        let lines: Vec<String> = walk_changes(&upper_tree, &image)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "C /a",
                "A /a/b",
                "A /a.txt",
                "C /etc",
                "A /etc/new",
                "C /etc/passwd"
            ],
            "{lines:?}"
        );
    }
}
