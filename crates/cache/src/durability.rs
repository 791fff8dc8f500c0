//! Deferred durability: a build's writes skip their own fsyncs and are made
//! durable together by one `syncfs` before the build writes its tags.
//!
//! The rule, and why it keeps every promise of the store:
//!
//! - Nothing is ever visible half-written: writes still go to `tmp/` and are
//!   renamed into place; only the fsyncs before and after the rename are
//!   left out while a [`DeferredSync`] is alive.
//! - `kill -9` loses nothing: the page cache outlives a killed process, so
//!   whatever was renamed into place stays readable and complete.
//! - Power loss may cost a re-check, never data that a tag points to: a tag
//!   is written only after a flush, [`DeferredSync::finish`]'s or, for a tag
//!   written while writes are deferred (a base image a build pulls), one
//!   the tag write makes itself first. Before its first deferred write a build makes a marker,
//!   `unsynced/<name>.json`, durable, stamped with the boot id; `finish`
//!   runs `syncfs`, records the time the flush started in `synced`, and
//!   removes the marker. A marker from another boot therefore means the
//!   machine went down while a build had unsynced writes: the next
//!   [`Store::open`] takes the exclusive lock and re-checks everything
//!   renamed into place since the later of that build's start and the last
//!   completed flush (its ctime says when): blobs are re-hashed and removed
//!   if corrupt, snapshots are removed (each is unpacked again from its
//!   blob, or rebuilt, on next use), cache records are removed (a miss,
//!   rebuilt). A marker of this boot whose owner died (its lock is free) is
//!   flushed and removed by the next `open` that gets the exclusive lock.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::snapshot::unique_name;
use crate::store::Store;
use crate::util;
use crate::{Digest, SnapshotId};

const MARKERS_DIR: &str = "unsynced";
const SYNCED_FILE: &str = "synced";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Content renamed this long before a recorded instant is still suspect:
/// ctimes come from the kernel's coarse clock.
const CTIME_MARGIN: Duration = Duration::from_secs(1);

/// How many [`DeferredSync`]s of one opened store are alive; shared by its
/// clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deferred(Arc<AtomicUsize>);

impl Deferred {
    fn active(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

/// A build's marker file, as written.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    boot_id: String,
    /// Nanoseconds since the epoch when the marker was made.
    started: u64,
}

/// While alive, blobs, snapshots and records written through this store
/// (and its clones) skip their fsyncs; [`DeferredSync::finish`] makes them
/// durable with one `syncfs`. Dropping it unfinished (a failed build) does
/// the same, best effort; if that fails the marker stays and a power loss
/// is recovered from as described in the module docs.
#[derive(Debug)]
pub struct DeferredSync {
    store: Store,
    marker: PathBuf,
    /// Holds a lock on the marker while the build lives.
    _file: File,
    done: bool,
}

impl Store {
    /// Starts deferring fsyncs until the returned guard is finished or
    /// dropped. `Ok(None)` where the boot id cannot be read: then every
    /// write stays synced on its own.
    pub fn defer_sync(&self) -> Result<Option<DeferredSync>> {
        let Some(boot_id) = boot_id() else {
            return Ok(None);
        };
        let dir = self.markers_dir();
        fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        let marker = Marker {
            boot_id,
            started: nanos_since_epoch(SystemTime::now()),
        };
        let bytes = serde_json::to_vec(&marker).map_err(io::Error::other);
        let path = dir.join(format!("{}.json", unique_name("build")));
        // Durable before the first deferred write, so a power loss always
        // finds it.
        util::write_atomic(&self.tmp_dir(), &path, &bytes.ctx("encode", &path)?)?;
        let file = File::open(&path).ctx("open", &path)?;
        file.try_lock()
            .map_err(io::Error::from)
            .ctx("lock", &path)?;
        self.deferred.0.fetch_add(1, Ordering::AcqRel);
        Ok(Some(DeferredSync {
            store: self.clone(),
            marker: path,
            _file: file,
            done: false,
        }))
    }

    /// Whether writes may skip their fsyncs now.
    pub(crate) fn fsync_deferred(&self) -> bool {
        self.deferred.active()
    }

    fn markers_dir(&self) -> PathBuf {
        self.root().join(MARKERS_DIR)
    }

    /// Flushes the store's filesystem and records when the flush started:
    /// everything renamed into place before that instant is durable.
    pub(crate) fn sync_all(&self) -> Result<()> {
        let started = nanos_since_epoch(SystemTime::now());
        let root = File::open(self.root()).ctx("open", self.root())?;
        nix::unistd::syncfs(&root)
            .map_err(io::Error::from)
            .ctx("sync filesystem of", self.root())?;
        let stamp = format!("{started}\n");
        util::write_atomic(
            &self.tmp_dir(),
            &self.root().join(SYNCED_FILE),
            stamp.as_bytes(),
        )
    }

    /// Called by `open`: deals with the markers of builds that did not
    /// finish. With `exclusive` (no other process uses the store) markers
    /// of this boot whose owner is gone are flushed and removed; markers of
    /// another boot wait for the exclusive lock and are recovered from.
    pub(crate) fn recover_unsynced(&self, exclusive: bool) -> Result<()> {
        let dir = self.markers_dir();
        let names = util::list_dir(&dir)?;
        if names.is_empty() {
            return Ok(());
        }
        let boot = boot_id();
        let foreign = names.iter().any(|name| {
            read_marker(&dir.join(name)).is_none_or(|m| Some(&m.boot_id) != boot.as_ref())
        });
        if foreign {
            // Taken here unless the caller holds it (a second flock of this
            // process would wait for the first).
            let _exclusive = if exclusive {
                None
            } else {
                Some(self.lock_exclusive()?)
            };
            return self.recover_power_loss(boot.as_deref());
        }
        if !exclusive {
            return Ok(());
        }
        // This boot: a marker whose lock is free belongs to a killed build,
        // whose writes are in the page cache; one flush makes them durable.
        let dead: Vec<PathBuf> = names
            .into_iter()
            .map(|name| dir.join(name))
            .filter(|path| File::open(path).is_ok_and(|file| file.try_lock().is_ok()))
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        self.sync_all()?;
        for path in dead {
            remove_marker(&path)?;
        }
        util::fsync_dir(&dir)
    }

    /// Runs under the exclusive lock: re-checks what the interrupted
    /// builds of another boot may have left torn, then forgets them.
    fn recover_power_loss(&self, boot: Option<&str>) -> Result<()> {
        let dir = self.markers_dir();
        let mut start: Option<u64> = None;
        let mut markers = Vec::new();
        // Listed again: another process may have recovered meanwhile.
        for name in util::list_dir(&dir)? {
            let path = dir.join(name);
            let marker = read_marker(&path);
            if marker
                .as_ref()
                .is_some_and(|m| Some(m.boot_id.as_str()) == boot)
            {
                continue;
            }
            // An unreadable marker is itself torn: everything is suspect.
            let started = marker.map_or(0, |m| m.started);
            start = Some(start.map_or(started, |s| s.min(started)));
            markers.push(path);
        }
        let Some(start) = start else {
            return Ok(());
        };
        let synced = fs::read_to_string(self.root().join(SYNCED_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let since = UNIX_EPOCH + Duration::from_nanos(start.max(synced));
        let since = since.checked_sub(CTIME_MARGIN).unwrap_or(UNIX_EPOCH);
        self.recheck_since(since)?;
        self.sync_all()?;
        for path in markers {
            remove_marker(&path)?;
        }
        util::fsync_dir(&dir)
    }

    /// Removes snapshots and records renamed into place at or after
    /// `since`, and blobs of that age that no longer match their digest.
    fn recheck_since(&self, since: SystemTime) -> Result<()> {
        let suspect = |path: &Path| {
            fs::symlink_metadata(path).is_ok_and(|meta| {
                let ctime = UNIX_EPOCH
                    + Duration::new(
                        u64::try_from(meta.ctime()).unwrap_or(0),
                        u32::try_from(meta.ctime_nsec()).unwrap_or(0),
                    );
                ctime >= since
            })
        };
        let snapshots = self.snapshots_dir();
        for name in util::list_dir(&snapshots)? {
            let Some(id) = name.to_str().and_then(|n| SnapshotId::new(n).ok()) else {
                continue;
            };
            if suspect(&snapshots.join(&name)) {
                self.remove_snapshot_locked(&id)?;
            }
        }
        let records = self.records_dir();
        for name in util::list_dir(&records)? {
            let path = records.join(&name);
            if suspect(&path) {
                fs::remove_file(&path).ctx("remove record", &path)?;
            }
        }
        let blobs = self.blobs_dir();
        for name in util::list_dir(&blobs)? {
            let Some(digest) = name.to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                continue;
            };
            if suspect(&blobs.join(&name)) {
                self.remove_corrupt_blob_locked(&digest)?;
            }
        }
        util::fsync_dir(&records)
    }
}

impl DeferredSync {
    /// Makes every write since [`Store::defer_sync`] durable (one `syncfs`)
    /// and removes the marker. Call it before writing tags.
    pub fn finish(mut self) -> Result<()> {
        self.sync()
    }

    fn sync(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.store.sync_all()?;
        self.done = true;
        self.store.deferred.0.fetch_sub(1, Ordering::AcqRel);
        remove_marker(&self.marker)?;
        util::fsync_dir(&self.store.markers_dir())
    }
}

impl Drop for DeferredSync {
    fn drop(&mut self) {
        if self.sync().is_err() && !self.done {
            // The marker stays: after a power loss it triggers the re-check.
            self.done = true;
            self.store.deferred.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn remove_marker(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx("remove", path),
    }
}

fn read_marker(path: &Path) -> Option<Marker> {
    let util::Limited::Read(bytes) = util::read_limited(path, 4096).ok()? else {
        return None;
    };
    serde_json::from_slice(&bytes).ok()
}

fn boot_id() -> Option<String> {
    let id = fs::read_to_string(BOOT_ID).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use crate::{Error, Record, RecordKey};

    fn write_marker(store: &Store, boot_id: &str, started: SystemTime) -> PathBuf {
        let dir = store.markers_dir();
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.json", unique_name("test")));
        let marker = Marker {
            boot_id: boot_id.to_owned(),
            started: nanos_since_epoch(started),
        };
        fs::write(&path, serde_json::to_vec(&marker).unwrap()).unwrap();
        path
    }

    fn snapshot(store: &Store, name: &str) -> SnapshotId {
        let id = SnapshotId::new(name).unwrap();
        store
            .create_snapshot::<Error, _>(&id, |dir| {
                fs::write(dir.join("f"), name).ctx("write", dir)
            })
            .unwrap();
        id
    }

    #[test]
    fn deferred_writes_are_flushed_once_and_the_marker_goes() {
        assert!(
            boot_id().is_some(),
            "{BOOT_ID} is unreadable: the deferred rule cannot be tested here"
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let guard = store.defer_sync().unwrap().expect("boot id readable");
        assert!(store.fsync_deferred() && store.clone().fsync_deferred());
        assert_eq!(util::list_dir(&store.markers_dir()).unwrap().len(), 1);
        let blob = store.put_blob(b"layer").unwrap();
        snapshot(&store, "s1");
        guard.finish().unwrap();
        assert!(!store.fsync_deferred());
        assert!(util::list_dir(&store.markers_dir()).unwrap().is_empty());
        assert!(store.root().join(SYNCED_FILE).is_file());
        store.verify_blob(&blob.digest).unwrap();

        // A guard dropped unfinished (a failed build) flushes too.
        let guard = store.defer_sync().unwrap().unwrap();
        drop(guard);
        assert!(!store.fsync_deferred());
        assert!(util::list_dir(&store.markers_dir()).unwrap().is_empty());
    }

    #[test]
    fn a_tag_written_while_deferred_flushes_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let guard = store.defer_sync().unwrap().expect("boot id readable");
        let manifest = store.put_blob(b"{}").unwrap();
        assert!(!store.root().join(SYNCED_FILE).exists());
        store.set_tag("pulled:base", &manifest.digest).unwrap();
        // The flush is recorded: what the tag points to is durable.
        assert!(store.root().join(SYNCED_FILE).is_file());
        guard.finish().unwrap();
    }

    #[test]
    fn a_killed_builds_marker_of_this_boot_is_flushed_by_the_next_open() {
        let Some(boot) = boot_id() else {
            panic!("{BOOT_ID} is unreadable: the deferred rule cannot be tested here");
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let live = store.defer_sync().unwrap().unwrap();
        // A build killed with -9: its marker stays, its lock is gone.
        let dead = write_marker(&store, &boot, SystemTime::now());
        let id = snapshot(&store, "kept");
        // `live` holds no lease here, so this open gets the exclusive lock.
        let reopened = Store::open(dir.path()).unwrap();
        assert!(!dead.exists(), "a dead marker of this boot is flushed away");
        assert!(reopened.has_snapshot(&id).unwrap(), "nothing is discarded");
        assert!(live.marker.exists(), "a live marker is left alone");
        live.finish().unwrap();
    }

    #[test]
    fn after_a_power_loss_what_was_unsynced_is_rechecked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Written and flushed before the interrupted build started.
        let old_snap = snapshot(&store, "old");
        let old_blob = store.put_blob(b"old blob").unwrap();
        let old_key = RecordKey::from_bytes([1; 32]);
        let old_record = Record {
            snapshots: vec![old_snap.clone()],
            ..Record::default()
        };
        store.put_record(&old_key, &old_record).unwrap();
        // The build that was running when the power went started after all
        // of the above (its start less the margin is `after_old`).
        let after_old = SystemTime::now();
        let marker = write_marker(&store, "another-boot", after_old + CTIME_MARGIN);
        std::thread::sleep(Duration::from_millis(50));
        let new_snap = snapshot(&store, "new");
        let good = store.put_blob(b"complete").unwrap();
        let torn = store.put_blob(b"will be torn").unwrap();
        // What a power loss can leave: the rename survived, the data not.
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(store.blob_path(&torn.digest))
            .unwrap()
            .write_all(b"wi")
            .unwrap();
        let new_key = RecordKey::from_bytes([2; 32]);
        let new_record = Record {
            snapshots: vec![new_snap.clone()],
            ..Record::default()
        };
        store.put_record(&new_key, &new_record).unwrap();

        let store = Store::open(dir.path()).unwrap();
        assert!(!marker.exists(), "recovered markers are removed");
        assert!(
            store.has_snapshot(&old_snap).unwrap(),
            "flushed content stays"
        );
        assert!(store.has_blob(&old_blob.digest).unwrap());
        assert_eq!(store.get_record(&old_key).unwrap(), Some(old_record));
        assert!(
            !store.has_snapshot(&new_snap).unwrap(),
            "suspect snapshots go"
        );
        assert!(
            store.get_record(&new_key).unwrap().is_none(),
            "suspect records go"
        );
        assert!(
            store.has_blob(&good.digest).unwrap(),
            "a blob that hashes right stays"
        );
        assert!(!store.has_blob(&torn.digest).unwrap(), "a torn blob goes");
        assert!(store.verify().unwrap().is_empty());
    }

    #[test]
    fn a_completed_flush_after_the_marker_protects_what_it_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let marker = write_marker(&store, "another-boot", SystemTime::now());
        // Another build made everything up to here durable and tagged it.
        let snap = snapshot(&store, "flushed-by-another-build");
        std::thread::sleep(Duration::from_millis(1100));
        store.sync_all().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!marker.exists());
        assert!(store.has_snapshot(&snap).unwrap());
    }
}
