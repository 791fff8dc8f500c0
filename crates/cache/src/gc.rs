//! Garbage collection, consistency checking and disk usage.
//!
//! Roots are the tags, the cache records and a caller-supplied set (the
//! blobs and snapshots of running containers). From blob roots the mark
//! phase follows OCI manifests and indexes (`config`, `layers`,
//! `manifests` descriptors) and keeps the snapshots named by an image
//! config's `rootfs.diff_ids` ([`SnapshotId::from_digest`]). Everything else
//! is garbage for `prune`.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::record::Loaded;
use crate::store::Store;
use crate::util;
use crate::{Digest, RecordKey, SnapshotId};

/// Blobs larger than this are never parsed as manifests (layers are big,
/// manifests and configs small).
const MAX_JSON_BLOB: u64 = 4 * 1024 * 1024;

/// A set of blobs and snapshots: GC roots, or what is reachable from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots {
    pub blobs: BTreeSet<Digest>,
    pub snapshots: BTreeSet<SnapshotId>,
}

/// What `prune` should do besides removing unreferenced content.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Kept in addition to what tags and records reference.
    pub extra_roots: Roots,
    /// Drop every cache record first (`buildr builder prune`), so only tags
    /// and `extra_roots` keep content alive.
    pub remove_all_records: bool,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<SnapshotId>,
    /// Records removed: all of them with `remove_all_records`, otherwise the
    /// corrupt ones and those naming content that is gone.
    pub records: Vec<RecordKey>,
    /// Files in the store's directories that are not store content.
    pub stray_paths: Vec<PathBuf>,
    /// Leftovers of interrupted writers in `tmp/`.
    pub temp_entries: usize,
    pub bytes_freed: u64,
}

/// One inconsistency found by [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The blob's content does not match its digest (or cannot be read).
    CorruptBlob { digest: Digest, reason: String },
    /// A file or directory that has no business where it is.
    StrayEntry { path: PathBuf, reason: String },
    /// A record file that does not parse.
    CorruptRecord { path: PathBuf, reason: String },
    /// A record naming a blob or snapshot that is not in the store.
    DanglingRecord { key: RecordKey, missing: String },
    /// The tags file does not parse.
    CorruptTags { path: PathBuf, reason: String },
    /// A tag pointing at a manifest that is not in the store.
    DanglingTag { name: String, digest: Digest },
    /// A temp file or half-filled snapshot directory in `tmp/` left by a
    /// writer that died (never visible under a final name; the next `open`
    /// or `prune` removes it).
    InterruptedWrite { path: PathBuf },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob { digest, reason } => {
                write!(f, "blob {digest} is corrupt: {reason}")
            }
            Problem::StrayEntry { path, reason } => write!(f, "{}: {reason}", path.display()),
            Problem::CorruptRecord { path, reason } => {
                write!(f, "record {} is corrupt: {reason}", path.display())
            }
            Problem::DanglingRecord { key, missing } => {
                write!(f, "record {key} names {missing}, which is not in the store")
            }
            Problem::CorruptTags { path, reason } => {
                write!(f, "tag file {} is corrupt: {reason}", path.display())
            }
            Problem::DanglingTag { name, digest } => {
                write!(
                    f,
                    "tag {name:?} points at manifest {digest}, which is not in the store"
                )
            }
            Problem::InterruptedWrite { path } => {
                write!(f, "{} was left by an interrupted write", path.display())
            }
        }
    }
}

/// Count and apparent size of one kind of content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub count: u64,
    pub bytes: u64,
}

/// Disk usage per kind of content (for `buildr system df`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub blobs: Usage,
    pub snapshots: Usage,
    pub records: Usage,
    pub temp: Usage,
}

/// The parts of an OCI manifest, index or image config that reference
/// other content. Unknown fields are ignored; digests that do not parse
/// (another algorithm, garbage) reference nothing here.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Refs {
    config: Option<Descriptor>,
    layers: Vec<Descriptor>,
    manifests: Vec<Descriptor>,
    rootfs: Option<RootFs>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RootFs {
    diff_ids: Vec<String>,
}

impl Store {
    /// Everything reachable from the tags, the records and `extra`.
    ///
    /// Fails if the tags file is corrupt: nothing could then be safely
    /// collected. Corrupt or dangling records reference nothing.
    pub fn referenced(&self, extra: &Roots) -> Result<Roots> {
        let mut roots = extra.clone();
        roots.blobs.extend(self.list_tags()?.into_values());
        let (keys, _) = self.list_records()?;
        for key in keys {
            if let Loaded::Present(record) = self.load_record(&key)? {
                roots.blobs.extend(record.blobs);
                roots.snapshots.extend(record.snapshots);
            }
        }
        self.follow(roots)
    }

    /// Adds what the manifests, indexes and configs among `roots.blobs`
    /// reference, transitively.
    fn follow(&self, mut roots: Roots) -> Result<Roots> {
        let mut todo: Vec<Digest> = roots.blobs.iter().copied().collect();
        while let Some(digest) = todo.pop() {
            let Some(refs) = self.parse_refs(&digest)? else {
                continue;
            };
            let children = refs
                .config
                .into_iter()
                .chain(refs.layers)
                .chain(refs.manifests)
                .filter_map(|d| d.digest.parse::<Digest>().ok());
            for child in children {
                if roots.blobs.insert(child) {
                    todo.push(child);
                }
            }
            let diff_ids = refs.rootfs.map(|r| r.diff_ids).unwrap_or_default();
            for diff_id in diff_ids.iter().filter_map(|d| d.parse::<Digest>().ok()) {
                roots.snapshots.insert(SnapshotId::from_digest(&diff_id));
            }
        }
        Ok(roots)
    }

    /// The references in blob `digest` if it is a small, intact JSON object.
    fn parse_refs(&self, digest: &Digest) -> Result<Option<Refs>> {
        let mut reader = match self.open_blob(digest) {
            Ok(r) => r,
            Err(Error::BlobNotFound { .. } | Error::CorruptBlob { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if reader.size() > MAX_JSON_BLOB {
            return Ok(None);
        }
        let mut first = [0u8; 1];
        if reader.read(&mut first).is_err() || first[0] != b'{' {
            return Ok(None);
        }
        let mut bytes = first.to_vec();
        if reader.read_to_end(&mut bytes).is_err() {
            // Corrupt: verify reports it; it references nothing.
            return Ok(None);
        }
        Ok(serde_json::from_slice::<Refs>(&bytes).ok())
    }

    /// Removes everything not reachable from the roots, plus temp leftovers
    /// and stray files. Waits for all writers (leases) to finish first and
    /// keeps them out while it runs.
    pub fn prune(&self, options: &PruneOptions) -> Result<PruneReport> {
        let _exclusive = self.lock_exclusive()?;
        // A corrupt tags file would make every image look unreferenced:
        // refuse before removing anything.
        self.list_tags()?;
        let mut report = PruneReport::default();
        let (temp_entries, temp_bytes) = self.clean_tmp()?;
        report.temp_entries = temp_entries;
        report.bytes_freed += temp_bytes;

        let (keys, stray_records) = self.list_records()?;
        for path in stray_records {
            report.bytes_freed += util::tree_size(&path).unwrap_or(0);
            util::remove_tree(&path)?;
            report.stray_paths.push(path);
        }
        for key in keys {
            let remove = options.remove_all_records
                || match self.load_record(&key)? {
                    Loaded::Absent => false,
                    Loaded::Corrupt(_) => true,
                    Loaded::Present(record) => self.missing_referent(&record)?.is_some(),
                };
            if remove && self.remove_record(&key)? {
                report.records.push(key);
            }
        }

        let live = self.referenced(&options.extra_roots)?;

        let blobs_dir = self.blobs_dir();
        for name in util::list_dir(&blobs_dir)? {
            let path = blobs_dir.join(&name);
            let digest = name.to_str().and_then(|n| Digest::from_hex(n).ok());
            if let Some(digest) = digest
                && live.blobs.contains(&digest)
            {
                continue;
            }
            report.bytes_freed += util::tree_size(&path).unwrap_or(0);
            util::remove_tree(&path)?;
            match digest {
                Some(digest) => report.blobs.push(digest),
                None => report.stray_paths.push(path),
            }
        }

        let snapshots_dir = self.snapshots_dir();
        for name in util::list_dir(&snapshots_dir)? {
            let path = snapshots_dir.join(&name);
            let id = name.to_str().and_then(|n| SnapshotId::new(n).ok());
            match id {
                Some(id) if live.snapshots.contains(&id) => {}
                Some(id) if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) => {
                    report.bytes_freed += util::tree_size(&path).unwrap_or(0);
                    self.remove_snapshot_locked(&id)?;
                    report.snapshots.push(id);
                }
                _ => {
                    report.bytes_freed += util::tree_size(&path).unwrap_or(0);
                    util::remove_tree(&path)?;
                    report.stray_paths.push(path);
                }
            }
        }
        self.prune_content_sizes(&live.snapshots)?;
        if !report.blobs.is_empty() {
            util::fsync_dir(&blobs_dir)?;
        }
        Ok(report)
    }

    /// Checks the whole store and returns every problem found (empty when
    /// consistent): each blob is re-hashed, each record and tag checked.
    /// Temp entries are reported only when no writer is active (they are
    /// then leftovers of a crash); those of writers in progress are not.
    pub fn verify(&self) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        if let Some(_exclusive) = self.try_lock_exclusive()? {
            let tmp = self.tmp_dir();
            for name in util::list_dir(&tmp)? {
                problems.push(Problem::InterruptedWrite {
                    path: tmp.join(name),
                });
            }
        }
        let _lease = self.lease()?;

        let blobs_dir = self.blobs_dir();
        for name in util::list_dir(&blobs_dir)? {
            let path = blobs_dir.join(&name);
            let Some(digest) = name.to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                problems.push(Problem::StrayEntry {
                    path,
                    reason: "not named by a sha256 digest".to_string(),
                });
                continue;
            };
            match self.verify_blob(&digest) {
                Ok(()) => {}
                Err(Error::CorruptBlob { reason, .. }) => {
                    problems.push(Problem::CorruptBlob { digest, reason });
                }
                Err(e) => problems.push(Problem::CorruptBlob {
                    digest,
                    reason: e.to_string(),
                }),
            }
        }

        let snapshots_dir = self.snapshots_dir();
        for name in util::list_dir(&snapshots_dir)? {
            let path = snapshots_dir.join(&name);
            if name
                .to_str()
                .and_then(|n| SnapshotId::new(n).ok())
                .is_none()
            {
                problems.push(Problem::StrayEntry {
                    path,
                    reason: "not named by a snapshot id".to_string(),
                });
            } else if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                problems.push(Problem::StrayEntry {
                    path,
                    reason: "snapshot is not a directory".to_string(),
                });
            }
        }

        let (keys, stray) = self.list_records()?;
        for path in stray {
            problems.push(Problem::StrayEntry {
                path,
                reason: "not named by a cache key".to_string(),
            });
        }
        for key in keys {
            match self.load_record(&key)? {
                Loaded::Absent => {}
                Loaded::Corrupt(Error::CorruptRecord { path, reason, .. }) => {
                    problems.push(Problem::CorruptRecord { path, reason });
                }
                Loaded::Corrupt(e) => return Err(e),
                Loaded::Present(record) => {
                    if let Some(missing) = self.missing_referent(&record)? {
                        problems.push(Problem::DanglingRecord { key, missing });
                    }
                }
            }
        }

        match self.list_tags() {
            Ok(tags) => {
                for (name, digest) in tags {
                    if !self.has_blob(&digest)? {
                        problems.push(Problem::DanglingTag { name, digest });
                    }
                }
            }
            Err(Error::CorruptTags { path, reason }) => {
                problems.push(Problem::CorruptTags { path, reason });
            }
            Err(e) => return Err(e),
        }
        Ok(problems)
    }

    /// How much space each kind of content takes.
    /// The apparent size of snapshot `id`'s files; `None` if it is not in
    /// the store.
    pub fn snapshot_size(&self, id: &SnapshotId) -> Result<Option<u64>> {
        if !self.has_snapshot(id)? {
            return Ok(None);
        }
        // It may vanish under a concurrent prune.
        Ok(util::tree_size(&self.snapshot_dir(id)).ok())
    }

    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let usage = |dir: PathBuf| -> Result<Usage> {
            let mut usage = Usage::default();
            for name in util::list_dir(&dir)? {
                // Entries may vanish under a concurrent prune: skip them.
                if let Ok(bytes) = util::tree_size(&dir.join(name)) {
                    usage.count += 1;
                    usage.bytes += bytes;
                }
            }
            Ok(usage)
        };
        Ok(DiskUsage {
            blobs: usage(self.blobs_dir())?,
            snapshots: usage(self.snapshots_dir())?,
            records: usage(self.records_dir())?,
            temp: usage(self.tmp_dir())?,
        })
    }
}
