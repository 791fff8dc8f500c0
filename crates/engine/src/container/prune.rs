//! `system prune`: stopped containers, then (with `--volumes`) the
//! anonymous volumes no remaining container uses, then (with `-a`) the
//! tags of images no remaining container uses, then the store's garbage
//! (untagged images' blobs, dangling snapshots, build cache). What a
//! remaining (running) container was created from is always kept: its
//! image's tags, blobs and snapshots, and its volumes.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use buildr_cache::PruneReport;

use super::Containers;
use crate::error::Result;
use crate::image::PruneImagesOptions;

/// What [`Containers::system_prune`] removes beyond stopped containers,
/// dangling images and dangling build cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemPruneOptions {
    /// Every image no container uses (not just dangling ones), and all
    /// build cache.
    pub all: bool,
    /// Anonymous volumes no container uses.
    pub volumes: bool,
}

/// What [`Containers::system_prune`] removed.
#[derive(Debug, Clone, Default)]
pub struct SystemPruneReport {
    /// Full ids of the removed containers.
    pub containers: Vec<String>,
    /// Names of the removed volumes.
    pub volumes: Vec<String>,
    /// Tags removed (normalized names), with `all`.
    pub untagged: Vec<String>,
    /// The store's garbage collection: blobs (images' content), snapshots,
    /// cache records.
    pub store: PruneReport,
    /// Bytes freed in all: containers' writable layers, volumes, store.
    pub bytes_freed: u64,
}

impl Containers {
    /// Docker's `system prune [-a] [--volumes]`.
    pub fn system_prune(&self, options: SystemPruneOptions) -> Result<SystemPruneReport> {
        let mut report = SystemPruneReport::default();
        let mut sizes = std::collections::BTreeMap::new();
        for container in self.list()? {
            if !container.is_active() {
                let size = dir_size(&self.paths(&container.config.id).dir);
                sizes.insert(container.config.id, size);
            }
        }
        report.containers = self.prune()?;
        for id in &report.containers {
            report.bytes_freed += sizes.get(id).copied().unwrap_or(0);
        }

        if options.volumes {
            for volume in self.volumes.list()? {
                if volume.anonymous && !self.volume_in_use(&volume.name)? {
                    let size = dir_size(&volume.mountpoint);
                    self.volumes.remove_unchecked(&volume.name)?;
                    report.bytes_freed += size;
                    report.volumes.push(volume.name);
                }
            }
        }

        if options.all {
            let used: BTreeSet<String> =
                self.all()?.into_iter().map(|c| c.config.image_id).collect();
            for image in self.images.list()? {
                if !used.contains(&image.id.to_string()) {
                    report
                        .untagged
                        .extend(self.images.remove(&image.name, false)?);
                }
            }
        }

        report.store = self
            .images
            .prune(&PruneImagesOptions { all: options.all })?;
        report.bytes_freed += report.store.bytes_freed;
        Ok(report)
    }
}

/// A container's disk use as `ps --size` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerSize {
    /// docker's `SizeRw`: the bytes of the files in its writable layer.
    pub rw: u64,
    /// docker's `SizeRootFs`: the writable layer and the image's layers
    /// (their uncompressed content, as `images` counts them).
    pub root_fs: u64,
}

impl Containers {
    /// The disk use of `container`: its writable layer is walked (as
    /// docker's `ps --size` does), its image layers' sizes are the store's
    /// records.
    pub fn size(&self, container: &super::Container) -> Result<ContainerSize> {
        let rw = dir_size(&self.paths(&container.config.id).upper());
        let mut root_fs = rw;
        for id in &container.config.snapshots {
            let id = buildr_cache::SnapshotId::new(id)?;
            if let Some(bytes) = self.store().snapshot_content_size(&id)? {
                root_fs = root_fs.saturating_add(bytes);
            }
        }
        Ok(ContainerSize { rw, root_fs })
    }
}

/// Bytes in regular files under `path`, symlinks not followed; what
/// vanishes meanwhile is not counted.
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| dir_size(&entry.path()))
        .fold(0u64, u64::saturating_add)
}
