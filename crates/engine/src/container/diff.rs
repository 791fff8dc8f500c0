//! `diff` and `export`: a container's own changes, and its whole
//! filesystem as a tar stream.
//!
//! `diff` compares the container's merged tree with its image's as
//! docker 26's overlay2 driver does (its "naive" diff, the one it uses
//! when the kernel's overlay has no native diff, and what the containerd
//! store prints too; checked against dockerd 26.1.5): a path the image
//! lacks is `A` (a new directory's whole contents too), one whose mode,
//! owner or device differ (and, for a non-directory, size or mtime) is
//! `C`, one no longer there is `D` (a deleted directory once, without its
//! contents); a directory holding a change is `C` before its entries. A
//! directory recreated over a deleted one (overlay's opaque directory) is
//! `C`, its new entries `A` and the image's old ones `D`. Only what the
//! upper dir holds is read: the rest is the image's own files. docker's
//! order within a directory is Go's map order (it varies between runs);
//! buildr's is one of those orders, fixed: each directory's new and
//! changed entries by name, each followed by what is under it, then its
//! deleted ones by name.
//!
//! `export` writes the merged tree (upper over lowers, whiteouts applied)
//! without the volumes, binds or tmpfs mounted on it, as `docker export`
//! tars the container's own filesystem only. Both read by descriptor
//! ([`Tree`]), so they may run while the container does.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use buildr_fs::atomic::AtomicWrite;
use buildr_fs::overlay::is_opaque_fd;

use super::Containers;
use super::tarout::TarOut;
use super::tree::{LayerTree, Meta, RootTree, Tree, dir_at, lstat};
use crate::error::{Error, Result};

/// What happened to one path (docker's `C`, `A`, `D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`: in the image, and changed (or holding a change).
    Modified,
    /// `A`: not in the image.
    Added,
    /// `D`: in the image, gone from the container.
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
    /// What happened to it.
    pub kind: ChangeKind,
    /// Absolute path in the container.
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.path)
    }
}

/// docker's `statDifferent`: mode (type and permissions), owner, device;
/// and for a non-directory, size and mtime (nanoseconds compared only when
/// both have them).
fn stat_different(old: &Meta, new: &Meta) -> bool {
    let same_time = old.mtime == new.mtime
        && (old.mtime_nsec == new.mtime_nsec || old.mtime_nsec == 0 || new.mtime_nsec == 0);
    old.kind != new.kind
        || old.mode != new.mode
        || old.uid != new.uid
        || old.gid != new.gid
        || old.rdev != new.rdev
        || (!new.is_dir() && (!same_time || old.size != new.size))
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

/// One directory of the upper dir being compared.
struct Frame {
    path: Vec<String>,
    dir: OwnedFd,
    names: std::vec::IntoIter<String>,
    /// Everything under it is new: no comparison, no deletions.
    added: bool,
    opaque: bool,
    /// Names whited out in it.
    hidden: Vec<String>,
    /// Where its own `C` goes if something under it changed and it did not.
    at: usize,
    listed: bool,
}

fn path_of(parts: &[String]) -> String {
    format!("/{}", parts.join("/"))
}

/// The changes of `upper` over `image`, docker's way (see the module doc).
fn walk_changes(upper: &RootTree, image: &LayerTree) -> std::io::Result<Vec<Change>> {
    let mut changes = Vec::new();
    let root = upper.root()?;
    let mut stack = vec![frame(upper, Vec::new(), root, false, 0, true)?];
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.next() else {
            if let Some(done) = stack.pop() {
                finish(image, done, &mut changes)?;
            }
            continue;
        };
        let Some(new) = upper.entry(&top.dir, &name)? else {
            continue;
        };
        let mut path = top.path.clone();
        path.push(name.clone());
        if new.is_whiteout() {
            if !top.added {
                top.hidden.push(name);
            }
            continue;
        }
        let old = if top.added {
            None
        } else {
            lstat(image, &path)?
        };
        let at = changes.len();
        let listed = match &old {
            None => true,
            Some(old) => stat_different(old, &new),
        };
        if listed {
            let kind = if old.is_some() {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            changes.push(Change {
                kind,
                path: path_of(&path),
            });
        }
        if new.is_dir() {
            let dir = upper.open_dir(&top.dir, &name)?;
            let added = !old.is_some_and(|o| o.is_dir());
            stack.push(frame(upper, path, dir, added, at, listed)?);
        }
    }
    Ok(changes)
}

fn frame(
    upper: &RootTree,
    path: Vec<String>,
    dir: OwnedFd,
    added: bool,
    at: usize,
    listed: bool,
) -> std::io::Result<Frame> {
    let names = upper.names(&dir)?.into_iter();
    Ok(Frame {
        opaque: !added && is_opaque_fd(&dir),
        path,
        dir,
        names,
        added,
        hidden: Vec::new(),
        at,
        listed,
    })
}

/// A directory's deletions (the image's names it no longer shows), then
/// its own `C` before its entries' changes if it had none.
fn finish(image: &LayerTree, frame: Frame, changes: &mut Vec<Change>) -> std::io::Result<()> {
    if !frame.added && (frame.opaque || !frame.hidden.is_empty()) {
        let before = match dir_at(image, &frame.path) {
            Ok(dir) => image.names(&dir)?,
            Err(e) if super::tree::missing(&e) => Vec::new(),
            Err(e) => return Err(e),
        };
        for name in before {
            let gone = if frame.opaque {
                upper_lacks(&frame, &name)?
            } else {
                frame.hidden.contains(&name)
            };
            if gone {
                let mut path = frame.path.clone();
                path.push(name);
                changes.push(Change {
                    kind: ChangeKind::Deleted,
                    path: path_of(&path),
                });
            }
        }
    }
    if !frame.listed && changes.len() > frame.at && !frame.path.is_empty() {
        changes.insert(
            frame.at,
            Change {
                kind: ChangeKind::Modified,
                path: path_of(&frame.path),
            },
        );
    }
    Ok(())
}

/// Whether the opaque directory of `frame` has no (visible) `name`.
fn upper_lacks(frame: &Frame, name: &str) -> std::io::Result<bool> {
    Ok(match super::tree::stat_child(&frame.dir, name)? {
        None => true,
        Some(meta) => meta.is_whiteout(),
    })
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
        fs::write(upper.path().join("etc/passwd"), "yy").unwrap();
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
