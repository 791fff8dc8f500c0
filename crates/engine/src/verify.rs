//! `verify`: a whole-store consistency check, for after a crash, a full disk
//! or a hostile input.
//!
//! The store itself ([`buildr_cache::Store::verify`]) re-hashes every blob
//! and checks every record, snapshot name and tag. On top of that this
//! checks what only the engine understands: every tag names a manifest and
//! config that decode and whose config and layer blobs are present, and
//! every container's snapshots (its lower layers) and its writable layer
//! are present (its image may be removed: docker's `rmi -f` allows it). Snapshots are complete by construction (they
//! are filled under `tmp/` and renamed into place), so a snapshot directory
//! under its final name is complete; half-filled ones are reported by the
//! store as interrupted writes.
//!
//! Opening the store removes the leftovers of writers that died (as every
//! command does), so a store after a `kill -9` verifies clean.

use std::fmt;
use std::path::Path;

use buildr_cache::{Digest, SnapshotId};

use crate::container::Containers;
use crate::error::Result;
use crate::image::Images;
use crate::image::layer_bytes::layer_available;

/// One inconsistency found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Found by the store: a corrupt blob, a dangling record or tag, a stray
    /// entry, an interrupted write.
    Store(buildr_cache::Problem),
    /// A tag whose manifest or config cannot be read or decoded.
    BadImage { tag: String, reason: String },
    /// A blob an image or container needs is not in the store.
    MissingBlob {
        owner: String,
        what: &'static str,
        digest: Digest,
    },
    /// A snapshot a container is built on is not in the store.
    MissingSnapshot { container: String, snapshot: String },
    /// A container's snapshot list or writable layer is unusable.
    BadContainer { container: String, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Store(problem) => problem.fmt(f),
            Problem::BadImage { tag, reason } => write!(f, "image {tag:?} is unreadable: {reason}"),
            Problem::MissingBlob {
                owner,
                what,
                digest,
            } => write!(f, "{owner}: {what} blob {digest} is not in the store"),
            Problem::MissingSnapshot {
                container,
                snapshot,
            } => write!(
                f,
                "container {container}: snapshot {snapshot} is not in the store"
            ),
            Problem::BadContainer { container, reason } => {
                write!(f, "container {container}: {reason}")
            }
        }
    }
}

/// Checks the store at `root` and returns every problem found (empty when
/// consistent). Errors are for a store that cannot be read at all.
pub fn verify(root: &Path) -> Result<Vec<Problem>> {
    let containers = Containers::open(root)?;
    let store = containers.store().clone();
    let mut problems: Vec<Problem> = store.verify()?.into_iter().map(Problem::Store).collect();
    let images = Images::with_store(store.clone());

    // Dangling tags are already reported by the store; only present
    // manifests are read here.
    let tags = match store.list_tags() {
        Ok(tags) => tags,
        Err(buildr_cache::Error::CorruptTags { .. }) => Default::default(),
        Err(e) => return Err(e.into()),
    };
    for (tag, manifest) in tags {
        if !store.has_blob(&manifest)? {
            continue;
        }
        let image = match images.read_image(&manifest, &tag) {
            Ok(image) => image,
            Err(e) => {
                problems.push(Problem::BadImage {
                    tag,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let owner = format!("image {tag:?}");
        if !store.has_blob(&image.id)? {
            problems.push(Problem::MissingBlob {
                owner: owner.clone(),
                what: "config",
                digest: image.id,
            });
        }
        // A layer a build made may be kept only as its snapshot.
        for layer in &image.manifest.layers {
            if !layer_available(&store, layer)? {
                problems.push(Problem::MissingBlob {
                    owner: owner.clone(),
                    what: "layer",
                    digest: layer.digest,
                });
            }
        }
    }

    for container in containers.list()? {
        let id = container.config.id.clone();
        for snapshot in &container.config.snapshots {
            let present = match SnapshotId::new(snapshot) {
                Ok(snapshot_id) => store.has_snapshot(&snapshot_id)?,
                Err(e) => {
                    problems.push(Problem::BadContainer {
                        container: id.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if !present {
                problems.push(Problem::MissingSnapshot {
                    container: id.clone(),
                    snapshot: snapshot.clone(),
                });
            }
        }
        // The layout of `container::state::Paths`: <root>/containers/<id>/upper.
        let upper = store.root().join("containers").join(&id).join("upper");
        if !std::fs::symlink_metadata(&upper).is_ok_and(|m| m.is_dir()) {
            problems.push(Problem::BadContainer {
                container: id,
                reason: format!("writable layer {} is missing", upper.display()),
            });
        }
    }
    Ok(problems)
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Blobs removed because their content did not hash to their digest.
    pub removed_blobs: Vec<Digest>,
    /// Cache records removed because they named content no longer there.
    pub removed_records: Vec<buildr_cache::RecordKey>,
}

/// `buildr verify --repair`: removes what [`verify`] found broken and can
/// be recovered by doing the work again: corrupt blobs (a pulled layer is
/// fetched again by the next pull, a built one made again by the next
/// build, which no longer hits the records that named it) and the records
/// left dangling. Tags and containers are never removed: a tag whose
/// content went missing stays reported until it is pulled, rebuilt or
/// removed with `rmi`.
pub fn repair(root: &Path) -> Result<RepairReport> {
    let containers = Containers::open(root)?;
    let store = containers.store().clone();
    let mut report = RepairReport::default();
    for problem in store.verify()? {
        if let buildr_cache::Problem::CorruptBlob { digest, .. } = problem
            && store.remove_corrupt_blob(&digest)?
        {
            report.removed_blobs.push(digest);
        }
    }
    for problem in store.verify()? {
        if let buildr_cache::Problem::DanglingRecord { key, .. } = problem
            && store.remove_record(&key)?
        {
            report.removed_records.push(key);
        }
    }
    Ok(report)
}
