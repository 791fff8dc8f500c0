//! Turning a step's upper dir into a layer: diff (overlay form), stream the
//! tar through the compressor into a blob, then move the upper dir itself
//! into the store as the layer's snapshot.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use buildr_cache::{SnapshotId, Store};
use buildr_oci::{Diff, DiffSource, LayerOptions};

use super::Layer;
use crate::error::{Error, Result};

/// Settings shared by every op of one build.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub store: Store,
    /// `<root>/tmp/build-*`: fresh upper and work dirs live here (same
    /// filesystem as the snapshots, so committing is a rename).
    pub work: PathBuf,
    pub layer: LayerOptions,
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

    /// Commits `upper` (overlay form) as a layer; `None` when nothing changed.
    pub(crate) fn commit(&self, upper: &Path) -> Result<Option<Layer>> {
        let diff = Diff::compute(DiffSource::OverlayUpper(upper))?;
        if diff.is_empty() {
            return Ok(None);
        }
        let writer = self.store.blob_writer()?;
        let (digests, writer) = diff.write_layer(writer, &self.layer)?;
        let blob = writer.commit(Some(digests.digest))?;
        let id = SnapshotId::from_digest(&digests.diff_id);
        self.store
            .create_snapshot::<Error, _>(&id, |dest| move_tree(upper, dest))?;
        Ok(Some(Layer {
            diff_id: digests.diff_id,
            digest: blob.digest,
            size: blob.size,
            media_type: digests.media_type.to_owned(),
            snapshot: id,
        }))
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
