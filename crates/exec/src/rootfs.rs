//! Root filesystems without overlay (the copy fallback) and reading a diff.
//!
//! Copy mode: the lowers (overlay-format snapshots, whiteouts honoured) are
//! copied into a snapshot dir, a manifest of it is taken, the command runs in
//! it, and the changes are then moved into the upper dir in overlay format,
//! so that after a run `upper` means the same thing in both modes.

use std::collections::BTreeMap;
use std::fs::FileTimes;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use nix::sys::stat::{Mode, SFlag};

use crate::error::{Error, Result, io};
use buildr_fs::overlay::{is_opaque_dir, is_whiteout};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// Did not exist in the lowers.
    Added,
    /// Existed in the lowers and was replaced or its metadata changed.
    Modified,
    /// Existed in the lowers and was removed (a whiteout in the upper dir).
    Deleted,
}

/// One entry of a diff, path relative to the root (`etc/passwd`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Path relative to the root.
    pub path: PathBuf,
    /// What happened.
    pub kind: ChangeKind,
}

/// Whether overlayfs can be used here (for a rootless caller: kernel >= 5.11).
pub fn overlay_available(rootless: bool) -> bool {
    let listed = std::fs::read_to_string("/proc/filesystems")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false);
    if !listed {
        return false;
    }
    if !rootless {
        return true;
    }
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned());
    let Ok(release) = release else { return false };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (5, 11)
}

/// Reads an overlay upper dir as a list of changes against `lowers` (topmost
/// first). Directories that were only copied up (same mode and owner as in
/// the lowers) are not changes themselves.
pub fn diff(lowers: &[PathBuf], upper: &Path) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for entry in walkdir::WalkDir::new(upper).min_depth(1) {
        let entry = entry.map_err(|e| Error::Io {
            op: "walk",
            path: upper.to_path_buf(),
            source: e.into(),
        })?;
        let rel = entry
            .path()
            .strip_prefix(upper)
            .unwrap_or(entry.path())
            .to_path_buf();
        let meta = entry.metadata().map_err(|e| Error::Io {
            op: "stat",
            path: entry.path().to_path_buf(),
            source: e.into(),
        })?;
        if is_whiteout(&meta) {
            changes.push(Change {
                path: rel,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let lower = lowers
            .iter()
            .map(|l| l.join(&rel))
            .find_map(|p| std::fs::symlink_metadata(&p).ok());
        if meta.is_dir()
            && lower.as_ref().is_some_and(|l| l.is_dir())
            && is_opaque_dir(entry.path())
        {
            // An opaque dir hides every lower entry it does not have itself.
            for name in lower_names(lowers, &rel) {
                if std::fs::symlink_metadata(entry.path().join(&name)).is_err() {
                    changes.push(Change {
                        path: rel.join(&name),
                        kind: ChangeKind::Deleted,
                    });
                }
            }
        }
        let kind = match lower {
            None => ChangeKind::Added,
            Some(old) if is_whiteout(&old) => ChangeKind::Added,
            Some(old) if meta.is_dir() && old.is_dir() => {
                if old.mode() == meta.mode() && old.uid() == meta.uid() && old.gid() == meta.gid() {
                    continue;
                }
                ChangeKind::Modified
            }
            Some(_) => ChangeKind::Modified,
        };
        changes.push(Change { path: rel, kind });
    }
    changes.sort();
    Ok(changes)
}

/// Names in directory `rel` across the lowers (topmost first), stopping at
/// an opaque one and leaving out whiteouts.
fn lower_names(lowers: &[PathBuf], rel: &Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    let mut names = std::collections::BTreeSet::new();
    let mut hidden = std::collections::BTreeSet::new();
    for lower in lowers {
        let dir = lower.join(rel);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let whiteout = entry.metadata().is_ok_and(|m| is_whiteout(&m));
            if whiteout {
                hidden.insert(name);
            } else if !hidden.contains(&name) {
                names.insert(name);
            }
        }
        if is_opaque_dir(&dir) {
            break;
        }
    }
    names
}

/// Copies the lowers (topmost first, overlay format) into `snapshot`.
pub(crate) fn populate(lowers: &[PathBuf], snapshot: &Path) -> Result<()> {
    let mut dir_times = Vec::new();
    for lower in lowers.iter().rev() {
        for entry in walkdir::WalkDir::new(lower).min_depth(1) {
            let entry = entry.map_err(|e| Error::Io {
                op: "walk",
                path: lower.clone(),
                source: e.into(),
            })?;
            let rel = entry.path().strip_prefix(lower).unwrap_or(entry.path());
            let dst = snapshot.join(rel);
            let meta = std::fs::symlink_metadata(entry.path()).map_err(io("stat", entry.path()))?;
            if is_whiteout(&meta) {
                remove_any(&dst)?;
                continue;
            }
            if meta.is_dir() {
                match std::fs::symlink_metadata(&dst) {
                    Ok(old) if old.is_dir() => {
                        if is_opaque_dir(entry.path()) {
                            remove_any(&dst)?;
                            std::fs::create_dir(&dst).map_err(io("create", &dst))?;
                        }
                    }
                    Ok(_) => {
                        remove_any(&dst)?;
                        std::fs::create_dir(&dst).map_err(io("create", &dst))?;
                    }
                    Err(_) => std::fs::create_dir(&dst).map_err(io("create", &dst))?,
                }
                copy_metadata(&meta, &dst)?;
                dir_times.push((dst, meta));
                continue;
            }
            remove_any(&dst)?;
            copy_entry(entry.path(), &meta, &dst)?;
        }
    }
    for (dir, meta) in dir_times.iter().rev() {
        set_times(dir, meta)?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).map_err(io("remove", path)),
        Ok(_) => std::fs::remove_file(path).map_err(io("remove", path)),
    }
}

fn copy_entry(src: &Path, meta: &std::fs::Metadata, dst: &Path) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(src).map_err(io("read link", src))?;
        std::os::unix::fs::symlink(&target, dst).map_err(io("create symlink", dst))?;
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
            .map_err(io("chown", dst))?;
        return Ok(());
    }
    if kind.is_file() {
        std::fs::copy(src, dst).map_err(io("copy", dst))?;
    } else {
        let sflag = if kind.is_char_device() {
            SFlag::S_IFCHR
        } else if kind.is_block_device() {
            SFlag::S_IFBLK
        } else if kind.is_fifo() {
            SFlag::S_IFIFO
        } else {
            // Sockets are not content.
            return Ok(());
        };
        nix::sys::stat::mknod(
            dst,
            sflag,
            Mode::from_bits_truncate(meta.mode()),
            meta.rdev(),
        )
        .map_err(|e| Error::Io {
            op: "mknod",
            path: dst.to_path_buf(),
            source: e.into(),
        })?;
    }
    copy_metadata(meta, dst)?;
    set_times(dst, meta)
}

fn copy_metadata(meta: &std::fs::Metadata, dst: &Path) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).map_err(io("chown", dst))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io("chmod", dst))
}

fn set_times(dst: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !(meta.is_file() || meta.is_dir()) {
        return Ok(());
    }
    let at = |s: i64, ns: i64| {
        UNIX_EPOCH + Duration::new(s.max(0) as u64, ns.clamp(0, 999_999_999) as u32)
    };
    let times = FileTimes::new()
        .set_accessed(at(meta.atime(), meta.atime_nsec()))
        .set_modified(at(meta.mtime(), meta.mtime_nsec()));
    let file = std::fs::File::open(dst).map_err(io("open", dst))?;
    file.set_times(times).map_err(io("set times of", dst))
}

/// Stat data that tells whether a path changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    ino: u64,
    link: Option<PathBuf>,
}

/// A snapshot's state before the command ran.
#[derive(Debug, Default)]
pub(crate) struct Manifest {
    entries: BTreeMap<PathBuf, Stamp>,
}

fn stamp(path: &Path, meta: &std::fs::Metadata) -> Stamp {
    let is_dir = meta.is_dir();
    Stamp {
        kind: meta.mode() & libc::S_IFMT,
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        // A directory's size and mtime change with its entries, which are
        // diffed on their own.
        size: if is_dir { 0 } else { meta.size() },
        mtime: if is_dir {
            (0, 0)
        } else {
            (meta.mtime(), meta.mtime_nsec())
        },
        ino: if is_dir { 0 } else { meta.ino() },
        link: if meta.file_type().is_symlink() {
            std::fs::read_link(path).ok()
        } else {
            None
        },
    }
}

impl Manifest {
    /// Records every path under `root`.
    pub(crate) fn take(root: &Path) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root).min_depth(1) {
            let entry = entry.map_err(|e| Error::Io {
                op: "walk",
                path: root.to_path_buf(),
                source: e.into(),
            })?;
            let meta = std::fs::symlink_metadata(entry.path()).map_err(io("stat", entry.path()))?;
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_path_buf();
            entries.insert(rel, stamp(entry.path(), &meta));
        }
        Ok(Self { entries })
    }

    /// Moves what changed in `snapshot` since the manifest into `upper`
    /// (overlay format: whiteouts for deletions of what `lowers` have),
    /// then empties `snapshot`.
    pub(crate) fn write_diff(
        &self,
        snapshot: &Path,
        upper: &Path,
        lowers: &[PathBuf],
    ) -> Result<()> {
        let after = Self::take(snapshot)?;
        // Deletions: the topmost deleted path only.
        let mut deleted: Vec<&PathBuf> = Vec::new();
        for path in self.entries.keys() {
            if after.entries.contains_key(path)
                || deleted.last().is_some_and(|d| path.starts_with(d))
            {
                continue;
            }
            deleted.push(path);
        }
        for path in deleted {
            let dst = upper.join(path);
            remove_any(&dst)?;
            // Something only the upper dir had is simply gone; something a
            // lower has needs a whiteout to stay hidden.
            if !lowers
                .iter()
                .any(|l| std::fs::symlink_metadata(l.join(path)).is_ok())
            {
                continue;
            }
            ensure_parents(snapshot, upper, path)?;
            nix::sys::stat::mknod(&dst, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| {
                Error::Io {
                    op: "create whiteout",
                    path: dst.clone(),
                    source: e.into(),
                }
            })?;
        }
        // Additions and modifications, parents before children.
        let mut moved: Vec<PathBuf> = Vec::new();
        for (path, now) in &after.entries {
            if moved.last().is_some_and(|m| path.starts_with(m)) {
                continue;
            }
            let before = self.entries.get(path);
            if before == Some(now) {
                continue;
            }
            let src = snapshot.join(path);
            let dst = upper.join(path);
            ensure_parents(snapshot, upper, path)?;
            let same_dir =
                now.kind == libc::S_IFDIR && before.is_some_and(|b| b.kind == libc::S_IFDIR);
            if same_dir {
                // Only the directory's own metadata changed; children follow.
                if std::fs::symlink_metadata(&dst).is_err() {
                    std::fs::create_dir(&dst).map_err(io("create", &dst))?;
                }
                let meta = std::fs::symlink_metadata(&src).map_err(io("stat", &src))?;
                copy_metadata(&meta, &dst)?;
                continue;
            }
            remove_any(&dst)?;
            std::fs::rename(&src, &dst).map_err(io("move into upper", &dst))?;
            if now.kind == libc::S_IFDIR {
                moved.push(path.clone());
            }
        }
        clear_dir(snapshot)
    }
}

/// Creates the parents of `rel` in `upper` with the snapshot's metadata.
fn ensure_parents(snapshot: &Path, upper: &Path, rel: &Path) -> Result<()> {
    let mut parents: Vec<&Path> = rel
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    parents.reverse();
    for parent in parents {
        let dst = upper.join(parent);
        if std::fs::symlink_metadata(&dst).is_ok() {
            continue;
        }
        std::fs::create_dir(&dst).map_err(io("create", &dst))?;
        if let Ok(meta) = std::fs::symlink_metadata(snapshot.join(parent)) {
            copy_metadata(&meta, &dst)?;
        }
    }
    Ok(())
}

/// Removes everything inside `dir`, keeping `dir`.
pub(crate) fn clear_dir(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("read", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io("read", dir))?;
        remove_any(&entry.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn copy_mode_diff_matches_overlay_format() {
        let tmp = tempfile::tempdir().unwrap();
        let (low0, low1, snap, upper) = (
            tmp.path().join("l0"),
            tmp.path().join("l1"),
            tmp.path().join("snap"),
            tmp.path().join("up"),
        );
        for d in [&low0, &low1, &snap, &upper] {
            std::fs::create_dir_all(d).unwrap();
        }
        write(&low1.join("etc/keep"), "k");
        write(&low1.join("etc/gone"), "g");
        write(&low1.join("old/a/b"), "b");
        write(&low1.join("edit"), "1");
        // The top lower deletes etc/gone with a whiteout, adds more.
        write(&low0.join("top"), "t");
        std::fs::create_dir_all(low0.join("etc")).unwrap();
        if nix::sys::stat::mknod(&low0.join("etc/gone"), SFlag::S_IFCHR, Mode::empty(), 0).is_err()
        {
            eprintln!("SKIP whiteout part: mknod of a whiteout is not permitted here");
            std::fs::remove_file(low1.join("etc/gone")).unwrap();
        }
        populate(&[low0.clone(), low1.clone()], &snap).unwrap();
        assert!(snap.join("top").exists() && snap.join("etc/keep").exists());
        assert!(!snap.join("etc/gone").exists());

        let manifest = Manifest::take(&snap).unwrap();
        write(&snap.join("new/file"), "n");
        std::fs::write(snap.join("edit"), "22").unwrap();
        std::fs::remove_dir_all(snap.join("old")).unwrap();
        std::fs::remove_file(snap.join("etc/keep")).unwrap();
        manifest
            .write_diff(&snap, &upper, &[low0.clone(), low1.clone()])
            .unwrap();
        assert_eq!(std::fs::read_dir(&snap).unwrap().count(), 0);

        let got = diff(&[low0, low1], &upper).unwrap();
        let want = vec![
            Change {
                path: "edit".into(),
                kind: ChangeKind::Modified,
            },
            Change {
                path: "etc/keep".into(),
                kind: ChangeKind::Deleted,
            },
            Change {
                path: "new".into(),
                kind: ChangeKind::Added,
            },
            Change {
                path: "new/file".into(),
                kind: ChangeKind::Added,
            },
            Change {
                path: "old".into(),
                kind: ChangeKind::Deleted,
            },
        ];
        assert_eq!(got, want);
        assert_eq!(std::fs::read_to_string(upper.join("edit")).unwrap(), "22");
    }
}
