//! Filesystem changes between a lower and an upper tree, as layer entries.
//!
//! Two sources:
//!
//! - an overlayfs upper dir ([`DiffSource::OverlayUpper`]): every entry in it
//!   is a change; a 0/0 character device is a whiteout and a directory with
//!   `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`, rootless) hides
//!   its lower contents. Upper dirs written with `redirect_dir` or `metacopy`
//!   cannot be expressed as a tar and are refused.
//! - two plain trees ([`DiffSource::Trees`]), the copy fallback: both are
//!   walked in the same order and merged. An upper entry is *changed* when its
//!   type, permission bits, owner, xattrs, symlink target or device number
//!   differ, or, for regular files, its size differs; a regular file with all
//!   of that equal is still compared byte by byte unless both mtimes are equal
//!   and carry a non-zero nanosecond part (a tool that rewrites a file in place
//!   within the same second is still caught; an untouched copy made with
//!   `cp -a` costs no read). Directory mtimes are ignored: a directory is
//!   emitted when its own metadata changed or when anything below it is
//!   emitted (so an applier recreates parents with the right owner and mode).
//!   Entries only in lower become whiteouts, one per deleted subtree.
//!
//! Entries are ordered component-wise by path (the order of a sorted
//! depth-first walk, as containerd's and BuildKit's differs produce), with a
//! whiteout sorted under its `.wh.` name. Each file is `lstat`ed once.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::error::{Error, Result};
use crate::stat::{Kind, Stat, Xattrs, read_xattrs};
use buildr_fs::overlay;

/// Where the changes of a layer come from.
#[derive(Debug, Clone, Copy)]
pub enum DiffSource<'a> {
    /// The upper dir of an unmounted overlayfs.
    OverlayUpper(&'a Path),
    /// A lower tree and a changed copy of it.
    Trees { lower: &'a Path, upper: &'a Path },
}

/// What one layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A file, directory, symlink, fifo or device described by `stat`.
    Node,
    /// `.wh.<name>`: the lower entry is deleted.
    Whiteout,
    /// `.wh..wh..opq`: the lower contents of the parent are hidden.
    Opaque,
}

/// One entry of a layer, named as it appears in the tar.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Tar name without a leading `/` or trailing slash.
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// The file on disk (for `Node`).
    pub source: PathBuf,
    pub stat: Option<Stat>,
    pub xattrs: Xattrs,
    /// Symlink target.
    pub link: Option<Vec<u8>>,
}

/// The changes of one layer, in tar order. Write it with
/// [`Diff::write_layer`] or [`Diff::write_tar`].
///
/// An overlay upper dir is not listed up front: every write walks it again,
/// one directory at a time, so memory follows the widest directory, not
/// the layer (a 500k-file `COPY` held ~300 bytes per entry, twice over,
/// when the diff was a list). Two trees are merged into a list.
#[derive(Debug, Clone)]
pub struct Diff {
    changes: Changes,
}

#[derive(Debug, Clone)]
enum Changes {
    Listed(Vec<Entry>),
    Upper(PathBuf),
}

impl Diff {
    /// Computes the changes from `source`. For an overlay upper dir this
    /// only checks that it is a directory; what is in it is read (and
    /// refused, for `redirect_dir` or `metacopy`) when the diff is written.
    pub fn compute(source: DiffSource<'_>) -> Result<Diff> {
        let changes = match source {
            DiffSource::OverlayUpper(upper) => {
                let meta = std::fs::metadata(upper).map_err(|e| Error::io("stat", upper, e))?;
                if !meta.is_dir() {
                    return Err(Error::io(
                        "walk",
                        upper,
                        std::io::Error::from(std::io::ErrorKind::NotADirectory),
                    ));
                }
                Changes::Upper(upper.to_path_buf())
            }
            DiffSource::Trees { lower, upper } => {
                let mut entries = tree_entries(lower, upper)?;
                entries.sort_unstable_by(|a, b| cmp_paths(&a.name, &b.name));
                Changes::Listed(entries)
            }
        };
        Ok(Diff { changes })
    }

    /// Calls `each` with every entry, in tar order.
    pub(crate) fn for_each(&self, mut each: impl FnMut(&Entry) -> Result<()>) -> Result<()> {
        match &self.changes {
            Changes::Listed(entries) => entries.iter().try_for_each(each),
            Changes::Upper(upper) => walk_upper(upper, &mut each),
        }
    }

    /// The tar names in order (whiteouts as `.wh.` names), for inspection.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        self.for_each(|entry| {
            names.push(String::from_utf8_lossy(&entry.name).into_owned());
            Ok(())
        })?;
        Ok(names)
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> Result<bool> {
        match &self.changes {
            Changes::Listed(entries) => Ok(entries.is_empty()),
            // Sockets are the only entries a layer leaves out.
            Changes::Upper(upper) => Ok(Level::open(upper, Vec::new(), false)?
                .children
                .next()
                .is_none()),
        }
    }
}

/// Orders paths component by component (`a` < `a/b` < `a.b`).
pub(crate) fn cmp_paths(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|c| *c == b'/').cmp(b.split(|c| *c == b'/'))
}

struct Walked {
    rel: Vec<u8>,
    abs: PathBuf,
    stat: Stat,
}

/// Walks `root` (not following symlinks), sorted by name, `lstat`ing each
/// entry once.
fn walk(root: &Path) -> Result<Vec<Walked>> {
    let mut out = Vec::new();
    let walker = WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for item in walker {
        let item = item.map_err(|source| Error::Walk {
            path: root.to_path_buf(),
            source,
        })?;
        let meta = item.metadata().map_err(|source| Error::Walk {
            path: item.path().to_path_buf(),
            source,
        })?;
        let rel = item
            .path()
            .strip_prefix(root)
            .map_err(|_| {
                Error::io(
                    "relativize",
                    item.path(),
                    std::io::Error::other("outside walk root"),
                )
            })?
            .as_os_str()
            .as_bytes()
            .to_vec();
        out.push(Walked {
            rel,
            abs: item.path().to_path_buf(),
            stat: Stat::from_metadata(&meta),
        });
    }
    Ok(out)
}

fn node(w: Walked, xattrs: Xattrs) -> Result<Entry> {
    let link = if w.stat.kind == Kind::Symlink {
        let target = std::fs::read_link(&w.abs).map_err(|e| Error::io("read link", &w.abs, e))?;
        Some(target.as_os_str().as_bytes().to_vec())
    } else {
        None
    };
    Ok(Entry {
        name: w.rel,
        kind: EntryKind::Node,
        source: w.abs,
        stat: Some(w.stat),
        xattrs,
        link,
    })
}

fn node_of(w: &Walked, xattrs: Xattrs) -> Result<Entry> {
    let walked = Walked {
        rel: w.rel.clone(),
        abs: w.abs.clone(),
        stat: w.stat.clone(),
    };
    node(walked, xattrs)
}

fn marker(name: Vec<u8>, kind: EntryKind) -> Entry {
    Entry {
        name,
        kind,
        source: PathBuf::new(),
        stat: None,
        xattrs: Xattrs::new(),
        link: None,
    }
}

fn xattrs_of(path: &Path) -> Result<Xattrs> {
    read_xattrs(path).map_err(|e| Error::io("read xattrs of", path, e))
}

/// One entry of an upper dir, as its directory's listing sorts it.
struct Child {
    /// The name in the tar: `.wh.<name>` for a whiteout.
    tar_name: Vec<u8>,
    found: Found,
}

enum Found {
    /// A file, directory, symlink, fifo or device: its name on disk.
    Node { name: Vec<u8>, stat: Stat },
    /// A 0/0 character device.
    Whiteout,
    /// The directory's opaque xattr, as `.wh..wh..opq`.
    Opaque,
}

/// A directory of the upper dir being walked: its children left to visit.
struct Level {
    path: PathBuf,
    /// Relative to the upper dir; empty for the upper dir itself.
    rel: Vec<u8>,
    children: std::vec::IntoIter<Child>,
}

impl Level {
    /// Lists and `lstat`s the directory at `path`, children sorted by tar
    /// name with the opaque marker among them (so the walk is in
    /// component-wise order, see [`cmp_paths`]), sockets left out.
    fn open(path: &Path, rel: Vec<u8>, opaque: bool) -> Result<Level> {
        let read_err = |e| Error::io("read directory", path, e);
        let mut children = Vec::new();
        for item in std::fs::read_dir(path).map_err(read_err)? {
            let item = item.map_err(read_err)?;
            let name = item.file_name().as_bytes().to_vec();
            let meta = item
                .metadata()
                .map_err(|e| Error::io("stat", item.path(), e))?;
            let stat = Stat::from_metadata(&meta);
            children.push(match stat.kind {
                Kind::Socket => continue,
                Kind::Char if stat.rdev == 0 => Child {
                    tar_name: [overlay::WHITEOUT_PREFIX, name.as_slice()].concat(),
                    found: Found::Whiteout,
                },
                _ => Child {
                    tar_name: name.clone(),
                    found: Found::Node { name, stat },
                },
            });
        }
        if opaque {
            children.push(Child {
                tar_name: overlay::OPAQUE_MARKER.to_vec(),
                found: Found::Opaque,
            });
        }
        children.sort_unstable_by(|a, b| a.tar_name.cmp(&b.tar_name));
        Ok(Level {
            path: path.to_path_buf(),
            rel,
            children: children.into_iter(),
        })
    }
}

/// Walks an overlay upper dir depth first without recursion (a layer may
/// nest directories deeper than a thread's stack), one listing per level
/// held at a time, calling `each` with every entry in tar order.
fn walk_upper(upper: &Path, each: &mut dyn FnMut(&Entry) -> Result<()>) -> Result<()> {
    let mut stack = vec![Level::open(upper, Vec::new(), false)?];
    while let Some(level) = stack.last_mut() {
        let Some(child) = level.children.next() else {
            stack.pop();
            continue;
        };
        let name = if level.rel.is_empty() {
            child.tar_name
        } else {
            [level.rel.as_slice(), b"/", child.tar_name.as_slice()].concat()
        };
        let (disk_name, stat) = match child.found {
            Found::Node { name, stat } => (name, stat),
            Found::Whiteout => {
                each(&marker(name, EntryKind::Whiteout))?;
                continue;
            }
            Found::Opaque => {
                each(&marker(name, EntryKind::Opaque))?;
                continue;
            }
        };
        let source = level.path.join(std::ffi::OsStr::from_bytes(&disk_name));
        let mut xattrs = xattrs_of(&source)?;
        for xattr in xattrs.keys() {
            let unsupported = ["redirect", "metacopy"].iter().any(|f| {
                xattr == &format!("trusted.overlay.{f}") || xattr == &format!("user.overlay.{f}")
            });
            if unsupported {
                return Err(Error::UnsupportedOverlay {
                    path: source,
                    xattr: xattr.clone(),
                });
            }
        }
        let opaque = stat.kind == Kind::Dir
            && xattrs
                .iter()
                .any(|(name, value)| overlay::marks_opaque(name, value));
        xattrs.retain(|xattr, _| !overlay::is_overlay_xattr(xattr));
        let is_dir = stat.kind == Kind::Dir;
        let walked = Walked {
            rel: name,
            abs: source,
            stat,
        };
        let entry = node(walked, xattrs)?;
        each(&entry)?;
        if is_dir {
            let level = Level::open(&entry.source, entry.name, opaque)?;
            stack.push(level);
        }
    }
    Ok(())
}

fn tree_entries(lower: &Path, upper: &Path) -> Result<Vec<Entry>> {
    let lowers = walk(lower)?;
    let uppers = walk(upper)?;
    let mut entries = Vec::new();
    let mut emitted: HashSet<Vec<u8>> = HashSet::new();
    // Lower subtrees that vanished or were replaced by a non-directory: their
    // children need no entries of their own.
    let mut hidden: Option<Vec<u8>> = None;
    let is_hidden = |hidden: &Option<Vec<u8>>, rel: &[u8]| {
        hidden
            .as_deref()
            .is_some_and(|h| rel.len() > h.len() && rel.starts_with(h) && rel[h.len()] == b'/')
    };

    let (mut li, mut ui) = (0, 0);
    while li < lowers.len() || ui < uppers.len() {
        let order = match (lowers.get(li), uppers.get(ui)) {
            (Some(l), Some(u)) => cmp_paths(&l.rel, &u.rel),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                let l = &lowers[li];
                li += 1;
                if is_hidden(&hidden, &l.rel) {
                    continue;
                }
                entries.push(marker(overlay::whiteout_name(&l.rel), EntryKind::Whiteout));
                hidden = Some(l.rel.clone());
            }
            Ordering::Greater => {
                let u = &uppers[ui];
                ui += 1;
                if u.stat.kind == Kind::Socket {
                    continue;
                }
                let xattrs = xattrs_of(&u.abs)?;
                emitted.insert(u.rel.clone());
                entries.push(node_of(u, xattrs)?);
            }
            Ordering::Equal => {
                let (l, u) = (&lowers[li], &uppers[ui]);
                li += 1;
                ui += 1;
                if is_hidden(&hidden, &l.rel) {
                    // Cannot happen (upper has a child where it has a
                    // non-directory), kept for safety.
                    continue;
                }
                if l.stat.kind == Kind::Dir && u.stat.kind != Kind::Dir {
                    hidden = Some(l.rel.clone());
                }
                if u.stat.kind == Kind::Socket {
                    continue;
                }
                let lx = xattrs_of(&l.abs)?;
                let ux = xattrs_of(&u.abs)?;
                if changed(l, u, &lx, &ux)? {
                    emitted.insert(u.rel.clone());
                    entries.push(node_of(u, ux)?);
                }
            }
        }
    }

    // Parents of everything emitted, taken from upper.
    let by_rel: HashMap<&[u8], &Walked> = uppers.iter().map(|w| (w.rel.as_slice(), w)).collect();
    let mut parents = Vec::new();
    for e in &entries {
        let mut name = e.name.as_slice();
        while let Some(i) = name.iter().rposition(|c| *c == b'/') {
            name = &name[..i];
            if !emitted.insert(name.to_vec()) {
                break;
            }
            if let Some(w) = by_rel.get(name) {
                parents.push(node_of(w, xattrs_of(&w.abs)?)?);
            }
        }
    }
    entries.extend(parents);
    Ok(entries)
}

fn changed(l: &Walked, u: &Walked, lx: &Xattrs, ux: &Xattrs) -> Result<bool> {
    let (ls, us) = (&l.stat, &u.stat);
    if ls.kind != us.kind || ls.mode != us.mode || ls.uid != us.uid || ls.gid != us.gid || lx != ux
    {
        return Ok(true);
    }
    match us.kind {
        Kind::Dir | Kind::Fifo | Kind::Socket => Ok(false),
        Kind::Char | Kind::Block => Ok(ls.rdev != us.rdev),
        Kind::Symlink => {
            let lt = std::fs::read_link(&l.abs).map_err(|e| Error::io("read link", &l.abs, e))?;
            let ut = std::fs::read_link(&u.abs).map_err(|e| Error::io("read link", &u.abs, e))?;
            Ok(lt != ut)
        }
        Kind::File => {
            if ls.size != us.size {
                return Ok(true);
            }
            if ls.mtime == us.mtime && ls.mtime_nsec == us.mtime_nsec && us.mtime_nsec != 0 {
                return Ok(false);
            }
            Ok(!same_content(&l.abs, &u.abs)?)
        }
    }
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let mut fa = File::open(a).map_err(|e| Error::io("open", a, e))?;
    let mut fb = File::open(b).map_err(|e| Error::io("open", b, e))?;
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|e| Error::io("read", a, e))?;
        let nb = read_full(&mut fb, &mut bb).map_err(|e| Error::io("read", b, e))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_component() {
        let mut v: Vec<&[u8]> = vec![b"a.b", b"a/b", b"a", b"a/.wh.c", b"a-b", b"a/b/c"];
        v.sort_by(|a, b| cmp_paths(a, b));
        assert_eq!(
            v,
            vec![&b"a"[..], b"a/.wh.c", b"a/b", b"a/b/c", b"a-b", b"a.b"]
        );
    }
}
