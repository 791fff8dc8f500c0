//! Unpacked layer snapshots: directories filled in `tmp/` and renamed into
//! `snapshots/<id>/` in one step, the rename being the commit point.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::util;
use crate::{Digest, RecordKey};

/// Names a snapshot directory: 1 to 128 characters of `[A-Za-z0-9_.-]`, not
/// starting with `.`. No `/` (it stays one path component under
/// `snapshots/`) and no `:` (overlayfs separates lower dirs with colons).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(String);

impl SnapshotId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<SnapshotId> {
        let err = |reason| Error::InvalidSnapshotId {
            input: id.chars().take(140).collect(),
            reason,
        };
        if id.is_empty() || id.len() > 128 {
            return Err(err("must be 1 to 128 characters"));
        }
        if id.starts_with('.') {
            return Err(err("must not start with '.'"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(err(
                "only ASCII letters, digits, '_', '.' and '-' are allowed",
            ));
        }
        Ok(SnapshotId(id.to_string()))
    }

    /// The snapshot id for a content digest (a layer's diff id or a chain
    /// id): `sha256-<hex>`.
    pub fn from_digest(digest: &Digest) -> SnapshotId {
        SnapshotId(format!("sha256-{}", digest.hex()))
    }

    /// The snapshot id for a cache key (a build step's resulting tree):
    /// `blake3-<hex>`.
    pub fn from_cache_key(key: &RecordKey) -> SnapshotId {
        SnapshotId(format!("blake3-{}", key.hex()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotId({})", self.0)
    }
}

impl serde::Serialize for SnapshotId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SnapshotId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SnapshotId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SnapshotId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Removes a temp snapshot directory unless disarmed.
struct TempTree(Option<PathBuf>);

impl Drop for TempTree {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: a leftover is removed by the next `open` or prune.
            let _ = util::remove_tree(&path);
        }
    }
}

impl Store {
    /// Where the snapshot `id` lives (whether or not it exists).
    pub(crate) fn snapshot_dir(&self, id: &SnapshotId) -> PathBuf {
        self.snapshots_dir().join(id.as_str())
    }

    /// Creates snapshot `id` unless it exists: `fill` populates an empty
    /// directory under `tmp/` (mode 0755; `fill` may change it), which is
    /// then flushed to disk (unless a [`crate::DeferredSync`] is alive) and
    /// renamed to `snapshots/<id>/`. Returns the snapshot's path.
    ///
    /// If `fill` fails, its error is returned and the temp directory removed.
    /// If another process commits the same id first, its copy is kept and
    /// this one discarded. A crash before the rename leaves only a temp
    /// directory, which `open` or `prune` removes.
    pub fn create_snapshot<E, F>(&self, id: &SnapshotId, fill: F) -> Result<PathBuf, E>
    where
        E: From<Error>,
        F: FnOnce(&Path) -> Result<(), E>,
    {
        let _lease = self.lease()?;
        let dest = self.snapshot_dir(id);
        if util_exists(&dest)? {
            return Ok(dest);
        }
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix("snap-")
            .tempdir_in(&tmp_dir)
            .ctx("create temp directory in", &tmp_dir)?;
        let mut guard = TempTree(Some(tmp.keep()));
        let tmp_path = guard.0.clone().unwrap_or_default();
        fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o755))
            .ctx("set permissions on", &tmp_path)?;
        fill(&tmp_path)?;
        let sync = !self.fsync_deferred();
        if sync {
            sync_filesystem(&tmp_path)?;
        }
        // Measured now, while the tree is in the page cache: `images`
        // reads the number instead of walking the layer. Best effort: a
        // size not recorded is measured on first use.
        let content_bytes = util::file_bytes(&tmp_path).ok();
        match fs::rename(&tmp_path, &dest) {
            Ok(()) => {
                guard.0 = None;
                if sync {
                    util::fsync_dir(&self.snapshots_dir())?;
                }
                if let Some(bytes) = content_bytes {
                    let _ = self.record_content_size(id, bytes);
                }
                Ok(dest)
            }
            // Somebody else committed a non-empty snapshot with this id.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOTEMPTY | nix::libc::EEXIST)
                ) =>
            {
                drop(guard);
                Ok(dest)
            }
            Err(e) => Err(Error::Io {
                op: "rename snapshot into place at",
                path: dest,
                source: e,
            }
            .into()),
        }
    }

    /// The path of an existing snapshot.
    pub fn snapshot_path(&self, id: &SnapshotId) -> Result<PathBuf> {
        let dest = self.snapshot_dir(id);
        if util_exists(&dest)? {
            Ok(dest)
        } else {
            Err(Error::SnapshotNotFound { id: id.clone() })
        }
    }

    /// Whether snapshot `id` exists.
    pub fn has_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        util_exists(&self.snapshot_dir(id))
    }

    /// Removes snapshot `id`; `false` if it did not exist. The snapshot
    /// disappears at once (renamed into `tmp/`) and is deleted afterwards.
    /// The caller makes sure no container uses it as a lower dir.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        let _lease = self.lease()?;
        self.remove_snapshot_locked(id)
    }

    pub(crate) fn remove_snapshot_locked(&self, id: &SnapshotId) -> Result<bool> {
        let dest = self.snapshot_dir(id);
        let trash = self.tmp_dir().join(unique_name("trash"));
        match fs::rename(&dest, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).ctx("move snapshot out of", dest),
        }
        util::fsync_dir(&self.snapshots_dir())?;
        self.remove_content_size(id)?;
        util::remove_tree(&trash)?;
        Ok(true)
    }
}

/// Whether `path` is a real directory (a symlink planted under
/// `snapshots/` is not a snapshot: it would point a lower dir outside the
/// store).
fn util_exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).ctx("stat", path),
    }
}

/// Above this many entries (or with anything but regular files,
/// directories and symlinks in it) a new snapshot is flushed with one
/// `syncfs`.
const FSYNC_EACH_MAX: usize = 1024;

/// Makes the tree at `path` durable before it is renamed into place. A
/// small tree of plain files and directories (most RUN and COPY steps) gets
/// an fsync per entry: `syncfs` would also flush everything else dirty on
/// the filesystem, and after another program's large writes that costs
/// hundreds of milliseconds (measured: 0.49 s for one 2-file step after
/// 1.5 GB written by `dd`). Symlinks cannot be fsynced themselves: they
/// are made durable with their directory's fsync (on a journaling
/// filesystem the new inodes commit with it; ext4 without a journal gives
/// no such promise for anything). A large tree gets one `syncfs`, cheaper
/// than thousands of fsyncs.
fn sync_filesystem(path: &Path) -> Result<()> {
    if let Some((files, dirs)) = small_tree(path) {
        // Children before parents, the root last. An entry that cannot be
        // opened (a mode-000 file when not root) falls back to `syncfs`.
        let each = files
            .iter()
            .map(|file| fsync_path(file, false))
            .chain(dirs.iter().rev().map(|dir| fsync_path(dir, true)))
            .collect::<Result<Vec<()>>>();
        if each.is_ok() {
            return Ok(());
        }
    }
    syncfs(path)
}

fn fsync_path(path: &Path, dir: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let kind = if dir {
        nix::libc::O_DIRECTORY
    } else {
        nix::libc::O_NONBLOCK
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | kind)
        .open(path)
        .ctx("open", path)?;
    file.sync_all().ctx("fsync", path)
}

/// The regular files and the directories (root first) of a tree with at
/// most [`FSYNC_EACH_MAX`] entries and nothing but those and symlinks.
fn small_tree(root: &Path) -> Option<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    let mut entries = 1;
    let mut next = 0;
    while next < dirs.len() {
        let dir = dirs[next].clone();
        next += 1;
        for entry in fs::read_dir(&dir).ok()? {
            let entry = entry.ok()?;
            let kind = entry.file_type().ok()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            } else if !kind.is_symlink() {
                return None;
            }
            entries += 1;
            if entries > FSYNC_EACH_MAX {
                return None;
            }
        }
    }
    Some((files, dirs))
}

/// Flushes the filesystem holding `path` (one syscall for a whole tree of
/// any file types and permissions, instead of an fsync per file).
fn syncfs(path: &Path) -> Result<()> {
    let dir = fs::File::open(path).ctx("open", path)?;
    nix::unistd::syncfs(&dir)
        .map_err(io::Error::from)
        .ctx("sync filesystem of", path)
}

/// A name unique within this host: pid, time and a counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_trees_of_plain_files_are_fsynced_entry_by_entry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"x").unwrap();
        fs::write(root.join("g"), b"y").unwrap();
        let (files, dirs) = small_tree(root).expect("small and plain");
        assert_eq!(files.len(), 2);
        assert_eq!(dirs[0], root, "the root comes first");
        assert_eq!(dirs.len(), 3);
        sync_filesystem(root).unwrap();

        // Symlinks ride on their directory's fsync.
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let (files, _) = small_tree(root).expect("symlinks are fine");
        assert_eq!(files.len(), 2, "a symlink is never opened");
        sync_filesystem(root).unwrap();
        // Anything else (a fifo here): one syncfs instead.
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRUSR).unwrap();
        assert!(small_tree(root).is_none());
        sync_filesystem(root).unwrap();
        fs::remove_file(root.join("fifo")).unwrap();
        // Past the entry limit too.
        for i in 0..FSYNC_EACH_MAX {
            fs::write(root.join(format!("n{i}")), b"").unwrap();
        }
        assert!(small_tree(root).is_none());
        sync_filesystem(root).unwrap();
    }
}
