//! Turning a step's upper dir into a layer: diff (overlay form), hash the
//! tar as it is made (the diff id), then move the upper dir itself into the
//! store as the layer's snapshot. No blob is written: the layer is an
//! uncompressed tar kept as its snapshot until a push or an archive wants
//! its bytes ([`crate::image::layer_bytes`]). Under `SOURCE_DATE_EPOCH`, or
//! with a compression the build's `-o` asks for, the layer is written as a
//! blob here, as the options say.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use buildr_cache::{SnapshotId, Store};
use buildr_oci::{Diff, DiffSource, LayerOptions, media_type};

use super::Layer;
use crate::build::LayerCompression;
use crate::error::{Error, Result};

/// Settings shared by every op of one build.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub store: Store,
    /// `<root>/tmp/build-*`: fresh upper and work dirs live here (same
    /// filesystem as the snapshots, so committing is a rename).
    pub work: PathBuf,
    pub layer: LayerOptions,
    /// The build's `--cache-from` sources, and the cache mounts its RUN
    /// steps used (for `--cache-to ...,mounts=true`).
    pub caches: std::sync::Arc<crate::build::cache_io::Imports>,
    /// Whether a failed RUN's error carries its last output lines
    /// (`Builder::run_output_in_errors`).
    pub output_in_errors: bool,
}

impl Env {
    /// A fresh, empty directory under the build's work dir.
    pub(crate) fn scratch_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.work)
            .map_err(|source| Error::Io {
                action: "create a work directory in",
                path: self.work.clone(),
                source,
            })
    }

    /// Whether layers are kept as snapshots, compressed on demand: with the
    /// default layer options. Not under `SOURCE_DATE_EPOCH` (the tar's
    /// clamped times are not the snapshot's) nor when `-o ...,compression=`
    /// asks for blobs of a given kind.
    fn defers_compression(&self) -> bool {
        self.layer.source_date_epoch.is_none()
            && self.layer.compress == LayerCompression::default().options()
    }

    /// Commits `upper` (overlay form) as a layer; `None` when nothing changed.
    pub(crate) fn commit(&self, upper: &Path) -> Result<Option<Layer>> {
        let diff = Diff::compute(DiffSource::OverlayUpper(upper))?;
        if diff.is_empty()? {
            return Ok(None);
        }
        let layer = if !self.defers_compression() {
            let writer = self.store.blob_writer()?;
            let (digests, writer) = diff.write_layer(writer, &self.layer)?;
            let blob = writer.commit(Some(digests.digest))?;
            Layer {
                diff_id: digests.diff_id,
                digest: blob.digest,
                size: blob.size,
                media_type: digests.media_type.to_owned(),
                snapshot: SnapshotId::from_digest(&digests.diff_id),
            }
        } else {
            let (diff_id, size) = diff.tar_digest(None)?;
            Layer {
                diff_id,
                digest: diff_id,
                size,
                media_type: media_type::OCI_LAYER.to_owned(),
                snapshot: SnapshotId::from_digest(&diff_id),
            }
        };
        self.store
            .create_snapshot::<Error, _>(&layer.snapshot, |dest| move_tree(upper, dest))?;
        Ok(Some(layer))
    }
}

/// Moves the children of `from` into the empty dir `to` (same filesystem)
/// and gives `to` the mode and owner of `from`.
fn move_tree(from: &Path, to: &Path) -> Result<()> {
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| Error::Io {
            action,
            path,
            source,
        }
    };
    for entry in fs::read_dir(from).map_err(io_err("read", from))? {
        let entry = entry.map_err(io_err("read", from))?;
        let dest = to.join(entry.file_name());
        fs::rename(entry.path(), &dest).map_err(io_err("move layer content to", &dest))?;
    }
    let meta = fs::symlink_metadata(from).map_err(io_err("stat", from))?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err("chmod", to))?;
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
            .map_err(io_err("chown", to))?;
    }
    Ok(())
}
