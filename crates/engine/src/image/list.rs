//! `images`, `prune` and `system df`.

use std::collections::{BTreeMap, BTreeSet};

use buildr_cache::{Digest, PruneOptions, PruneReport, SnapshotId};

use super::time::{human_ago, human_size, parse_rfc3339, unix_now};
use super::{Image, Images, familiar_name, short_id, split_tag};
use crate::error::{Error, Result};

/// One row of `images`: one per tag, as docker lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The familiar repository (`busybox`, `ghcr.io/o/r`).
    pub repository: String,
    pub tag: String,
    /// The normalized name (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The image id (config digest).
    pub id: Digest,
    pub manifest: Digest,
    /// The config's `created`, seconds since the epoch, if it has one.
    pub created: Option<i64>,
    /// docker's SIZE: the uncompressed content of the layers (see
    /// [`Images::image_size`]).
    pub size: u64,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
}

impl ImageSummary {
    /// `IMAGE ID` as docker prints it: 12 hex digits.
    pub fn short_id(&self) -> String {
        short_id(&self.id)
    }

    /// `CREATED` as docker prints it (`2 hours ago`, `N/A` when unknown).
    pub fn created_ago(&self) -> String {
        match self.created {
            Some(secs) => human_ago(secs, unix_now()),
            None => "N/A".to_owned(),
        }
    }

    /// `.CreatedAt` as docker's templates print it (Go's `time.Time`:
    /// `2024-01-02 15:04:05 +0000 UTC`); empty when unknown.
    pub fn created_at(&self) -> String {
        let Some(secs) = self.created else {
            return String::new();
        };
        let rfc = super::time::format_rfc3339(secs, 0);
        let (date, time) = rfc.split_once('T').unwrap_or((&rfc, ""));
        let time = time.trim_end_matches('Z');
        let time = time.split('.').next().unwrap_or(time);
        format!("{date} {time} +0000 UTC")
    }

    /// `SIZE` as docker prints it (`4.26MB`).
    pub fn human_size(&self) -> String {
        human_size(self.size)
    }
}

/// Settings for [`Images::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneImagesOptions {
    /// Also drop every build cache record, so only tagged images survive
    /// (docker's `-a`: remove everything unused, not just dangling content).
    pub all: bool,
}

/// One row of `system df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsageRow {
    pub total: u64,
    pub active: u64,
    pub size: u64,
    pub reclaimable: u64,
}

/// `system df`: docker's four rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemDf {
    /// Tagged images: blobs reachable from tags (none is active: no
    /// container uses them yet).
    pub images: DiskUsageRow,
    pub containers: DiskUsageRow,
    pub volumes: DiskUsageRow,
    /// Cache records, snapshots, blobs no tag reaches, and temp files.
    pub build_cache: DiskUsageRow,
}

impl Images {
    /// Every tag with its image, newest first (then by name), as `docker images`.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut by_manifest: BTreeMap<Digest, (Image, u64)> = BTreeMap::new();
        let mut rows = Vec::new();
        for (name, manifest) in self.store.list_tags()? {
            let (image, size) = match by_manifest.get(&manifest) {
                Some(found) => found,
                None => {
                    let image = self
                        .read_image(&manifest, &name)
                        .map_err(|e| Error::BadImage {
                            image: familiar_name(&name),
                            reason: e.to_string(),
                        })?;
                    let size = self.image_size(&image)?;
                    by_manifest.entry(manifest).or_insert((image, size))
                }
            };
            let familiar = familiar_name(&name);
            let (repository, tag) = split_tag(&familiar);
            rows.push(ImageSummary {
                repository: repository.to_owned(),
                tag: tag.to_owned(),
                id: image.id,
                manifest,
                created: image.config.created.as_deref().and_then(parse_rfc3339),
                size: *size,
                labels: image
                    .config
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default(),
                name,
            });
        }
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
        Ok(rows)
    }

    /// Removes what no tag (and, unless `all`, no cache record) references:
    /// untagged images' blobs, dangling snapshots, temp leftovers.
    /// Containers (running or stopped) keep their image and snapshots.
    pub fn prune(&self, options: &PruneImagesOptions) -> Result<PruneReport> {
        let containers = crate::container::Containers::open(self.store.root())?;
        Ok(self.store.prune(&PruneOptions {
            remove_all_records: options.all,
            extra_roots: containers.gc_roots()?,
        })?)
    }

    /// Disk usage in docker's `system df` rows.
    pub fn disk_usage(&self) -> Result<SystemDf> {
        let usage = self.store.disk_usage()?;
        let images = self.all()?;
        let mut tagged: BTreeSet<Digest> = BTreeSet::new();
        let mut snapshots: BTreeSet<SnapshotId> = BTreeSet::new();
        for image in &images {
            tagged.insert(image.manifest_digest);
            tagged.insert(image.manifest.config.digest);
            tagged.extend(image.manifest.layers.iter().map(|l| l.digest));
            snapshots.extend(
                image
                    .config
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(SnapshotId::from_digest),
            );
        }
        let mut image_bytes = 0u64;
        for digest in &tagged {
            // A blob may vanish under a concurrent prune; count what is there.
            if let Ok(size) = self.store.blob_size(digest) {
                image_bytes = image_bytes.saturating_add(size);
            }
        }
        let other_blobs = usage.blobs.bytes.saturating_sub(image_bytes);
        // An image's layers are its snapshots too (a layer a build made is
        // only a snapshot until it is pushed or archived).
        let mut image_snapshot_bytes = 0u64;
        for id in &snapshots {
            if let Some(size) = self.store.snapshot_size(id)? {
                image_snapshot_bytes = image_snapshot_bytes.saturating_add(size);
            }
        }
        let image_bytes = image_bytes.saturating_add(image_snapshot_bytes);
        let cache_bytes = other_blobs
            .saturating_add(usage.snapshots.bytes.saturating_sub(image_snapshot_bytes))
            .saturating_add(usage.records.bytes)
            .saturating_add(usage.temp.bytes);
        Ok(SystemDf {
            images: DiskUsageRow {
                total: images.len() as u64,
                active: 0,
                size: image_bytes,
                reclaimable: image_bytes,
            },
            containers: DiskUsageRow::default(),
            volumes: DiskUsageRow::default(),
            build_cache: DiskUsageRow {
                total: usage.records.count,
                active: 0,
                size: cache_bytes,
                reclaimable: cache_bytes,
            },
        })
    }
}

/// Renders bytes as docker does (`4.26MB`), for callers printing reports.
pub fn format_size(bytes: u64) -> String {
    human_size(bytes)
}
