//! An image's layers as snapshots: what `run`, `pull` and the containers
//! need before an overlay can mount them.

use buildr_cache::{Digest, SnapshotId, Store};
use buildr_oci::{ExtractMode, ExtractOptions};

use super::layer_bytes::unpack_layer;

use super::Image;
use crate::error::{Error, Result};

/// Makes sure a snapshot (overlay form, keyed by diff id) exists for every
/// layer of `image`, unpacking the missing ones from verified blobs; calls
/// `done` with each layer's blob digest as it is ready. Returns the
/// snapshot ids, bottom layer first.
pub(crate) fn ensure_snapshots(
    store: &Store,
    image: &Image,
    done: impl Fn(Digest),
) -> Result<Vec<SnapshotId>> {
    let layers = &image.manifest.layers;
    let diff_ids = &image.config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(Error::BadImage {
            image: image.id.to_string(),
            reason: format!(
                "{} layers but {} diff_ids in the config",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    let opts = ExtractOptions {
        mode: ExtractMode::Overlay,
        ..ExtractOptions::default()
    };
    let mut ids = Vec::with_capacity(layers.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let id = SnapshotId::from_digest(diff_id);
        if !store.has_snapshot(&id)? {
            store.create_snapshot::<Error, _>(&id, |dir| {
                unpack_layer(store, layer, Some(diff_id), dir, &opts)?;
                Ok(())
            })?;
        }
        done(layer.digest);
        ids.push(id);
    }
    Ok(ids)
}
