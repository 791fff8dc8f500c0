//! The store root: layout, version check, locks, temp cleanup.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::durability::Deferred;
use crate::error::{Error, IoContext, Result};
use crate::util;

/// The on-disk layout version this code reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

const VERSION_FILE: &str = "layout-version";
const LOCK_FILE: &str = "lock";
const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The store under one root directory.
///
/// ```text
/// <root>/layout-version      "1": a newer number is refused by `open`
/// <root>/oci-layout          OCI image layout marker
/// <root>/blobs/sha256/<hex>  content-addressed blobs (OCI image layout)
/// <root>/snapshots/<id>/     unpacked layers, used as overlay lower dirs
/// <root>/records/<hex>.json  cache records (blake3 record key -> result)
/// <root>/sizes/<id>          a layer's content size (docker's SIZE), by snapshot id
/// <root>/tags.json           image index: name:tag -> manifest digest
/// <root>/tags.lock           serializes read-modify-write of tags.json
/// <root>/lock                store-wide lock: shared for writers, exclusive for prune
/// <root>/tmp/                temp files and dirs; renamed into place when complete
/// <root>/unsynced/<n>.json   markers of builds with writes not yet flushed (boot id, start)
/// <root>/synced              when the last whole-store flush started (ns since the epoch)
/// <root>/containers/         reserved for containers
/// <root>/volumes/            reserved for volumes
/// <root>/events/             reserved for the engine's event log
/// ```
///
/// Several processes may use one store at once, without a daemon. Every
/// write goes to `tmp/` first and is renamed into place after an fsync (or,
/// inside a [`crate::DeferredSync`], before one flush of the whole store), so
/// a reader (or a process that crashed mid-write) never leaves a partial
/// blob, snapshot, record or tag file under its final name.
///
/// Cache records are plain files rather than an embedded database such as
/// redb: redb lets only one process open a database file at a time, while
/// buildr processes (a build, a `buildr run`, a prune) share the store with
/// no daemon to own it. One file per record, replaced by atomic rename, needs
/// no such owner and survives `kill -9` at any instruction.
///
/// A `Store` value is cheap to clone; it holds paths, not open files.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Fsyncs put off by a live [`crate::DeferredSync`] of this opening.
    pub(crate) deferred: Deferred,
}

/// A shared hold on the store-wide lock: while any lease is alive, `prune`
/// waits. Writers take one internally for each write; a caller that writes a
/// blob and later a record naming it holds one across both steps so that a
/// concurrent prune cannot remove the blob in between.
///
/// Do not call [`Store::prune`] from a thread that holds a lease: it would
/// wait for itself.
#[derive(Debug)]
pub struct StoreLease {
    _file: File,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    ///
    /// Refuses a store whose layout version is newer than [`LAYOUT_VERSION`].
    /// If no other process is writing, leftovers of crashed writers in
    /// `tmp/` are removed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        // Absolute: snapshot paths become overlay options and sandbox roots.
        let root = root.into();
        let root = std::path::absolute(&root).ctx("resolve store root", &root)?;
        let store = Store {
            root,
            deferred: Deferred::default(),
        };
        fs::create_dir_all(&store.root).ctx("create store root", &store.root)?;
        // Check before writing anything: a newer layout is left untouched.
        let has_version = store.check_version()?;
        {
            // Temp files written here must not be swept by a concurrent
            // `open` cleaning `tmp/`.
            let _lease = store.lease()?;
            for dir in [
                store.tmp_dir(),
                store.blobs_dir(),
                store.snapshots_dir(),
                store.records_dir(),
                store.root.join("containers"),
                store.root.join("volumes"),
            ] {
                fs::create_dir_all(&dir).ctx("create directory", &dir)?;
            }
            for dir in [store.tmp_dir(), store.snapshots_dir()] {
                spread_subdirectories(&dir);
            }
            if !has_version {
                let version = format!("{LAYOUT_VERSION}\n");
                let path = store.root.join(VERSION_FILE);
                util::write_atomic(&store.tmp_dir(), &path, version.as_bytes())?;
            }
            let oci_layout = store.root.join(OCI_LAYOUT_FILE);
            if !oci_layout.exists() {
                util::write_atomic(&store.tmp_dir(), &oci_layout, OCI_LAYOUT)?;
            }
        }
        let exclusive = store.try_lock_exclusive()?;
        if exclusive.is_some() {
            store.clean_tmp()?;
        }
        store.recover_unsynced(exclusive.is_some())?;
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes a shared hold on the store, keeping `prune` out until dropped.
    pub fn lease(&self) -> Result<StoreLease> {
        let file = self.open_lock_file()?;
        file.lock_shared()
            .ctx("take shared lock on", self.lock_path())?;
        Ok(StoreLease { _file: file })
    }

    /// `Ok(false)` if there is no version file yet (a new store).
    fn check_version(&self) -> Result<bool> {
        let path = self.root.join(VERSION_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).ctx("read", path),
        };
        let found: u32 = text.trim().parse().map_err(|_| Error::BadLayout {
            path: path.clone(),
            reason: format!("expected a version number, found {:?}", truncate(&text)),
        })?;
        if found > LAYOUT_VERSION {
            return Err(Error::NewerLayout {
                root: self.root.clone(),
                found,
                supported: LAYOUT_VERSION,
            });
        }
        Ok(true)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub(crate) fn sizes_dir(&self) -> PathBuf {
        self.root.join("sizes")
    }

    pub(crate) fn records_dir(&self) -> PathBuf {
        self.root.join("records")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    fn open_lock_file(&self) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.lock_path())
            .ctx("open lock file", self.lock_path())
    }

    /// The exclusive store lock, waiting for all leases to end.
    pub(crate) fn lock_exclusive(&self) -> Result<File> {
        let file = self.open_lock_file()?;
        file.lock()
            .ctx("take exclusive lock on", self.lock_path())?;
        Ok(file)
    }

    pub(crate) fn try_lock_exclusive(&self) -> Result<Option<File>> {
        let file = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                Err(e).ctx("take exclusive lock on", self.lock_path())
            }
        }
    }

    /// Removes everything in `tmp/`. Only call with the exclusive lock held:
    /// then no writer is alive and every entry is a crashed writer's leftover.
    /// Returns the number of entries and bytes removed.
    pub(crate) fn clean_tmp(&self) -> Result<(usize, u64)> {
        let tmp = self.tmp_dir();
        let mut count = 0;
        let mut bytes = 0;
        for name in util::list_dir(&tmp)? {
            let path = tmp.join(name);
            bytes += util::tree_size(&path).unwrap_or(0);
            util::remove_tree(&path)?;
            count += 1;
        }
        Ok((count, bytes))
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// The default store root: `/var/lib/buildr` for root, else
/// `$XDG_DATA_HOME/buildr`, else `$HOME/.local/share/buildr` (relative
/// values of those variables are ignored, as the XDG spec says).
pub fn default_root() -> Result<PathBuf> {
    default_root_for(nix::unistd::geteuid().is_root())
}

/// [`default_root`] for a caller that knows better whether it is root: a
/// rootless command runs as root in its user's namespace and keeps the
/// user's store.
pub fn default_root_for(is_root: bool) -> Result<PathBuf> {
    root_for(
        is_root,
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn root_for(
    is_root: bool,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<PathBuf> {
    if is_root {
        return Ok(PathBuf::from("/var/lib/buildr"));
    }
    if let Some(data) = xdg_data_home.filter(|p| p.is_absolute()) {
        return Ok(data.join("buildr"));
    }
    if let Some(home) = home.filter(|p| p.is_absolute()) {
        return Ok(home.join(".local").join("share").join("buildr"));
    }
    Err(Error::NoDefaultRoot)
}

/// Marks `dir` with ext4's "top of a directory hierarchy" flag (`chattr
/// +T`), best effort: the directories made in it (each snapshot's tree,
/// each build's work dir) are then spread over the block groups like
/// top-level directories instead of packed into the parent's group. Right
/// after a large delete (a pruned or wiped store) ext4 makes file creation
/// in that group crawl: on a filesystem without a journal it skips every
/// recently freed inode one by one (`recently_deleted`, for up to five
/// minutes), which measured 195 µs an `openat` instead of about 20 (issue
/// 14, benches/RESULTS.md). Other filesystems ignore or refuse the flag.
fn spread_subdirectories(dir: &Path) {
    let Ok(file) = fs::File::open(dir) else {
        return;
    };
    if let Ok(flags) = rustix::fs::ioctl_getflags(&file)
        && !flags.contains(rustix::fs::IFlags::TOPDIR)
    {
        let _ = rustix::fs::ioctl_setflags(&file, flags | rustix::fs::IFlags::TOPDIR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_follows_xdg() {
        let p = |s: &str| Some(PathBuf::from(s));
        let cases = [
            (true, p("/x"), p("/home/u"), Some("/var/lib/buildr")),
            (false, p("/x"), p("/home/u"), Some("/x/buildr")),
            (
                false,
                p("rel"),
                p("/home/u"),
                Some("/home/u/.local/share/buildr"),
            ),
            (
                false,
                None,
                p("/home/u"),
                Some("/home/u/.local/share/buildr"),
            ),
            (false, None, p("rel"), None),
            (false, None, None, None),
        ];
        for (is_root, xdg, home, want) in cases {
            let got = root_for(is_root, xdg.clone(), home.clone()).ok();
            assert_eq!(got, want.map(PathBuf::from), "{is_root} {xdg:?} {home:?}");
        }
    }
}
