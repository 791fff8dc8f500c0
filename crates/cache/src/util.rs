//! Small filesystem helpers: atomic writes, directory fsync, tree removal.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{IoContext, Result};
use buildr_fs::atomic::AtomicWrite;

/// Makes a rename or unlink inside `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

/// Writes `bytes` to `dest` atomically: a temp file in `tmp_dir` (same
/// filesystem), fsync, rename over `dest`, fsync of `dest`'s directory.
/// Readers see either the old file or the new one, never a prefix.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    write_renamed(tmp_dir, dest, bytes, true)
}

/// [`write_atomic`], with its fsyncs only if `sync`: a writer whose
/// durability a [`crate::DeferredSync`] provides passes `false`; it is still
/// never visible half-written.
pub(crate) fn write_renamed(tmp_dir: &Path, dest: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    AtomicWrite::new()
        .temp_dir(tmp_dir)
        .prefix("write-")
        .mode(0o644)
        .sync(sync)
        .bytes(dest, bytes)?;
    Ok(())
}

/// What [`read_limited`] found.
pub(crate) enum Limited {
    /// No such file.
    Absent,
    /// More than the limit: the file is corrupt, not read.
    TooLarge(u64),
    /// The whole file.
    Read(Vec<u8>),
}

impl Limited {
    /// Why a too-large file is refused, for a corruption report.
    pub(crate) fn too_large(max: u64) -> String {
        format!("larger than {max} bytes")
    }
}

/// Reads at most `max` bytes of `path`.
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Limited> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Limited::Absent),
        Err(e) => return Err(e).ctx("open", path),
    };
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .ctx("read", path)?;
    if bytes.len() as u64 > max {
        return Ok(Limited::TooLarge(max));
    }
    Ok(Limited::Read(bytes))
}

/// Removes a directory tree, making directories writable first when a
/// read-only directory (as layers contain) gets in the way.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx("stat", path),
    };
    if !meta.is_dir() {
        return fs::remove_file(path).ctx("remove", path);
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_dirs_writable(path);
            fs::remove_dir_all(path).ctx("remove directory tree", path)
        }
    }
}

fn make_dirs_writable(dir: &Path) {
    // Best effort: the retried removal reports what is still in the way.
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_dirs_writable(&entry.path());
        }
    }
}

/// Apparent size of the regular files and symlinks under `path`, counting
/// each hard-linked inode once.
pub(crate) fn tree_size(path: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    tree_size_inner(path, &mut seen)
}

fn tree_size_inner(path: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
    let meta = fs::symlink_metadata(path).ctx("stat", path)?;
    if !meta.is_dir() {
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            return Ok(0);
        }
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path).ctx("read directory", path)? {
        let entry = entry.ctx("read directory", path)?;
        total += tree_size_inner(&entry.path(), seen)?;
    }
    Ok(total)
}

/// Bytes of the regular files under `path`, each hard-linked inode once
/// (what a layer's tar carries as file contents).
pub(crate) fn file_bytes(path: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    file_bytes_inner(path, &mut seen)
}

fn file_bytes_inner(path: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
    let meta = fs::symlink_metadata(path).ctx("stat", path)?;
    if meta.is_file() {
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            return Ok(0);
        }
        return Ok(meta.len());
    }
    if !meta.is_dir() {
        return Ok(0);
    }
    let mut total = 0u64;
    for entry in fs::read_dir(path).ctx("read directory", path)? {
        let entry = entry.ctx("read directory", path)?;
        total = total.saturating_add(file_bytes_inner(&entry.path(), seen)?);
    }
    Ok(total)
}

/// The names in `dir` (an absent directory has none), sorted.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read directory", dir),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry.ctx("read directory", dir)?.file_name());
    }
    names.sort();
    Ok(names)
}
