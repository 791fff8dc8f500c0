//! Image sizes as docker reports them: the uncompressed content of the
//! layers (their regular files' bytes), not the compressed blobs. Each
//! layer's size is recorded once in the store (`Store::content_size`): by
//! the snapshot when it is created, or here, measured once from a layer
//! known only as a stored blob by reading its tar headers.

use std::io::Read;

use buildr_cache::{Digest, SnapshotId, Store};
use buildr_oci::Descriptor;

use super::layer_bytes::layer_local;
use super::{Image, Images};
use crate::error::{Error, Result};

impl Images {
    /// The content size of each layer of `image`, bottom layer first. A
    /// layer that is neither unpacked nor stored (still in a registry)
    /// counts as its compressed size: measuring it would fetch it.
    pub fn layer_sizes(&self, image: &Image) -> Result<Vec<u64>> {
        let diff_ids = &image.config.rootfs.diff_ids;
        image
            .manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| layer_size(&self.store, layer, diff_id))
            .collect()
    }

    /// docker's image SIZE: the sum of [`Images::layer_sizes`].
    pub fn image_size(&self, image: &Image) -> Result<u64> {
        Ok(self
            .layer_sizes(image)?
            .into_iter()
            .fold(0u64, u64::saturating_add))
    }
}

fn layer_size(store: &Store, layer: &Descriptor, diff_id: &Digest) -> Result<u64> {
    let id = SnapshotId::from_digest(diff_id);
    if let Some(bytes) = store.snapshot_content_size(&id)? {
        return Ok(bytes);
    }
    if !layer_local(store, layer)? {
        return Ok(layer.size);
    }
    let blob = store.open_blob_sized(&layer.digest, layer.size)?;
    let bytes = tar_file_bytes(blob).map_err(|source| Error::LayerRead {
        digest: layer.digest,
        source,
    })?;
    // Best effort: a store this process cannot write still answers.
    let _ = store.record_content_size(&id, bytes);
    Ok(bytes)
}

/// The bytes of the regular files in a (possibly compressed) layer tar:
/// what docker's layer store counts when it applies the layer.
fn tar_file_bytes(blob: impl Read) -> std::io::Result<u64> {
    let mut archive = tar::Archive::new(buildr_oci::decompress(blob)?);
    let mut total = 0u64;
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file() {
            total = total.saturating_add(entry.header().size()?);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_tar_counts_its_files_bytes_not_links_or_directories() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if kind == tar::EntryType::Link || kind == tar::EntryType::Symlink {
                header.set_link_name("a").unwrap();
            }
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        };
        add("d/", tar::EntryType::Directory, b"");
        add("a", tar::EntryType::Regular, &[7u8; 1500]);
        add("d/b", tar::EntryType::Regular, b"hello");
        add("hard", tar::EntryType::Link, b"");
        add("soft", tar::EntryType::Symlink, b"");
        let tar = builder.into_inner().unwrap();
        assert_eq!(tar_file_bytes(&tar[..]).unwrap(), 1505);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(tar_file_bytes(&gz[..]).unwrap(), 1505);
        assert!(tar_file_bytes(&b"not a tar at all, not at all"[..]).is_err());
    }
}
