//! Layers a build keeps only as snapshots, and the bytes of any layer.
//!
//! A build commits a layer as its snapshot plus the digest and size of its
//! uncompressed tar, hashed as the tar is made and not kept
//! ([`buildr_oci::Diff::tar_digest`]). The image's manifest names that
//! layer as an uncompressed tar whose digest is its diff id, and no blob is
//! written: the store holds each layer once, and no step waits for a
//! compressor. dockerd keeps the layers BuildKit gives it the same way and
//! compresses on push.
//!
//! The bytes are made again from the snapshot when something needs them:
//! [`open_layer`] streams the tar (save, `-o type=docker|local|tar`) and
//! [`distributable`] compresses each such layer once when a registry or an
//! OCI archive wants compressed layers, keeps that blob and finds it again
//! through a cache record. Either way the tar is checked against the diff
//! id as it streams: the same tree gives the same bytes
//! ([`buildr_oci::Diff::write_tar`]), and a snapshot changed behind the
//! store's back is an error naming the layer, never a wrong layer.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;

use buildr_cache::{Digest, Record, RecordKey, SnapshotId, Store};
use buildr_oci::{
    CompressOptions, Compression, Descriptor, Diff, DiffSource, ExtractOptions, ExtractStats,
    Flavour, HashCount, LayerOptions, Manifest, extract_layer, media_type,
};

use super::remote_blobs;
use crate::error::{Error, Result};

/// The snapshot that backs `layer` when its blob is not stored: an
/// uncompressed tar's digest is its diff id, which names the snapshot.
pub(crate) fn backing_snapshot(layer: &Descriptor) -> Option<SnapshotId> {
    matches!(
        layer.media_type.as_str(),
        media_type::OCI_LAYER | media_type::DOCKER_LAYER
    )
    .then(|| SnapshotId::from_digest(&layer.digest))
}

/// Whether the bytes of `layer` can be had: its blob is stored, or it is an
/// uncompressed tar kept as its snapshot.
pub(crate) fn layer_available(store: &Store, layer: &Descriptor) -> Result<bool> {
    Ok(layer_local(store, layer)? || remote_blobs::source(store, &layer.digest)?.is_some())
}

/// Whether the bytes of `layer` are in the store: its blob, or the
/// snapshot of an uncompressed tar kept that way.
pub(crate) fn layer_local(store: &Store, layer: &Descriptor) -> Result<bool> {
    if store.has_blob(&layer.digest)? {
        return Ok(true);
    }
    match backing_snapshot(layer) {
        Some(id) => Ok(store.has_snapshot(&id)?),
        None => Ok(false),
    }
}

/// Fetches the blob of `layer` from its recorded source when its bytes
/// are not in the store (a layer a cached build left remote).
fn fetch_if_remote(store: &Store, layer: &Descriptor) -> Result<()> {
    if !layer_local(store, layer)? {
        remote_blobs::ensure_blob(store, layer)?;
    }
    Ok(())
}

/// The bytes of `layer` as its descriptor names them: the stored blob, or
/// the tar made again from the snapshot (checked against digest and size
/// when the stream ends; a mismatch is a read error naming the layer).
pub(crate) fn open_layer(store: &Store, layer: &Descriptor) -> Result<Box<dyn Read + Send>> {
    fetch_if_remote(store, layer)?;
    let snapshot = match backing_snapshot(layer) {
        Some(id) if !store.has_blob(&layer.digest)? && store.has_snapshot(&id)? => id,
        // The stored blob, or the store's own "not found" error.
        _ => return Ok(Box::new(store.open_blob_sized(&layer.digest, layer.size)?)),
    };
    let dir = store.snapshot_path(&snapshot)?;
    SnapshotTar::spawn(dir, layer.digest, layer.size)
}

/// Unpacks `layer` into `dest` with the hardened extractor: a stored blob
/// as [`buildr_oci::unpack_layer_as`] does (its tar checked against
/// `diff_id` when one is given: the snapshot it fills is named by it), a
/// layer kept as its snapshot from the tar made again from it, read to its
/// end so it is checked whole (its digest is its diff id).
pub(crate) fn unpack_layer(
    store: &Store,
    layer: &Descriptor,
    diff_id: Option<&Digest>,
    dest: &std::path::Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    fetch_if_remote(store, layer)?;
    if store.has_blob(&layer.digest)? || backing_snapshot(layer).is_none() {
        return Ok(buildr_oci::unpack_layer_as(
            store, layer, diff_id, dest, opts,
        )?);
    }
    let mut tar = open_layer(store, layer)?;
    let stats = extract_layer(&mut tar, dest, opts)?;
    io::copy(&mut tar, &mut io::sink()).map_err(|source| Error::Io {
        action: "read the layer made from its snapshot for",
        path: dest.to_path_buf(),
        source,
    })?;
    Ok(stats)
}

/// A layer tar made from a snapshot on a writer thread, read through a pipe.
struct SnapshotTar {
    pipe: Option<io::PipeReader>,
    writer: Option<JoinHandle<std::result::Result<(), SnapshotTarError>>>,
}

/// Why the writer thread of a [`SnapshotTar`] could not make the layer;
/// the reader gets it as the source of an io error.
#[derive(Debug, thiserror::Error)]
enum SnapshotTarError {
    /// Diffing the snapshot or writing its tar failed.
    #[error("layer {digest}")]
    Write {
        digest: Digest,
        #[source]
        source: Box<buildr_oci::Error>,
    },
    /// The last buffered bytes did not reach the pipe.
    #[error("layer {digest}")]
    Flush {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Changed(#[from] SnapshotChanged),
}

/// A snapshot that no longer makes the layer named after it.
#[derive(Debug, thiserror::Error)]
#[error(
    "layer {digest} ({size} bytes) is kept only as its snapshot {}, which now makes \
     {actual} ({actual_size} bytes): the snapshot was changed outside buildr; remove the \
     image and build it again",
    dir.display()
)]
struct SnapshotChanged {
    digest: Digest,
    size: u64,
    actual: Digest,
    actual_size: u64,
    dir: PathBuf,
}

impl SnapshotTar {
    fn spawn(dir: PathBuf, digest: Digest, size: u64) -> Result<Box<dyn Read + Send>> {
        let (reader, writer) = io::pipe().map_err(|source| Error::Io {
            action: "create a pipe for the layer made from",
            path: dir.clone(),
            source,
        })?;
        let handle = std::thread::Builder::new()
            .name("layer-tar".into())
            .spawn(move || write_snapshot_tar(&dir, &digest, size, writer))
            .map_err(|source| Error::Io {
                action: "start a thread to read",
                path: PathBuf::from("layer snapshot"),
                source,
            })?;
        Ok(Box::new(SnapshotTar {
            pipe: Some(reader),
            writer: Some(handle),
        }))
    }
}

fn write_snapshot_tar(
    dir: &std::path::Path,
    digest: &Digest,
    size: u64,
    pipe: io::PipeWriter,
) -> std::result::Result<(), SnapshotTarError> {
    let fail = |source| SnapshotTarError::Write {
        digest: *digest,
        source: Box::new(source),
    };
    let diff = Diff::compute(DiffSource::OverlayUpper(dir)).map_err(fail)?;
    let out = HashCount::new(BufWriter::with_capacity(1 << 20, pipe));
    let out = diff.write_tar(out, None).map_err(fail)?;
    let (actual, actual_size, mut buffered) = out.finish();
    // Checked before the last bytes go: the reader sees the error, not a
    // clean end, when the snapshot no longer makes this layer.
    if actual != *digest || actual_size != size {
        return Err(SnapshotChanged {
            digest: *digest,
            size,
            actual,
            actual_size,
            dir: dir.to_owned(),
        }
        .into());
    }
    buffered.flush().map_err(|source| SnapshotTarError::Flush {
        digest: *digest,
        source,
    })
}

impl Read for SnapshotTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let n = pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.pipe = None;
            if let Some(handle) = self.writer.take() {
                match handle.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(io::Error::other(e)),
                    Err(_) => return Err(io::Error::other("the layer tar writer panicked")),
                }
            }
        }
        Ok(n)
    }
}

impl Drop for SnapshotTar {
    fn drop(&mut self) {
        // Closing the read end makes a writer still going fail with EPIPE.
        self.pipe = None;
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

/// The compressed blob of `layer` as `compress` asks for it: `layer`
/// itself when its blob is stored (pulled, or compressed before), else
/// the blob made once from its snapshot and recorded, so the next push or
/// archive reuses it. The descriptor's media type is OCI's.
pub(crate) fn compressed_layer(
    store: &Store,
    layer: &Descriptor,
    compress: &CompressOptions,
) -> Result<Descriptor> {
    if compress.compression == Compression::None || store.has_blob(&layer.digest)? {
        return Ok(layer.clone());
    }
    let Some(snapshot) = backing_snapshot(layer) else {
        return Ok(layer.clone());
    };
    if !store.has_snapshot(&snapshot)? {
        // An uncompressed layer a cached build left remote: as it is.
        fetch_if_remote(store, layer)?;
        return Ok(layer.clone());
    }
    let key = compressed_key(&layer.digest, compress);
    if let Some(record) = store.get_record(&key)?
        && let Ok(found) = serde_json::from_value::<Descriptor>(record.value)
        && record.blobs == [found.digest]
    {
        return Ok(found);
    }
    let dir = store.snapshot_path(&snapshot)?;
    let diff = Diff::compute(DiffSource::OverlayUpper(&dir))?;
    let options = LayerOptions {
        compress: *compress,
        source_date_epoch: None,
    };
    let (digests, writer) = diff.write_layer(store.blob_writer()?, &options)?;
    if digests.diff_id != layer.digest || digests.uncompressed_size != layer.size {
        return Err(Error::BadImage {
            image: format!("layer {}", layer.digest),
            reason: SnapshotChanged {
                digest: layer.digest,
                size: layer.size,
                actual: digests.diff_id,
                actual_size: digests.uncompressed_size,
                dir,
            }
            .to_string(),
        });
    }
    let blob = writer.commit(Some(digests.digest))?;
    let found = Descriptor::new(digests.media_type, blob.digest, blob.size);
    let record = Record {
        blobs: vec![blob.digest],
        snapshots: Vec::new(),
        value: serde_json::to_value(&found).map_err(|e| Error::BadImage {
            image: format!("layer {}", layer.digest),
            reason: format!("cannot record its compressed blob: {e}"),
        })?,
    };
    store.put_record(&key, &record)?;
    Ok(found)
}

/// The record key of `diff_id` compressed as `compress` says.
fn compressed_key(diff_id: &Digest, compress: &CompressOptions) -> RecordKey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"buildr/compressed-layer/v1\0");
    hasher.update(diff_id.to_string().as_bytes());
    hasher.update(format!("\0{:?}\0{:?}", compress.compression, compress.level).as_bytes());
    RecordKey::from_bytes(*hasher.finalize().as_bytes())
}

/// `manifest` with every layer kept only as a snapshot replaced by its
/// compressed blob ([`compressed_layer`]), descriptors named in the
/// manifest's own flavour where it has a name for them (else the manifest
/// becomes OCI); `None` when no layer needed it.
pub(crate) fn distributable(
    store: &Store,
    manifest: &Manifest,
    compress: &CompressOptions,
) -> Result<Option<Manifest>> {
    let mut out = manifest.clone();
    let mut changed = false;
    for layer in &mut out.layers {
        let compressed = compressed_layer(store, layer, compress)?;
        if compressed.digest != layer.digest {
            layer.media_type = compressed.media_type;
            layer.digest = compressed.digest;
            layer.size = compressed.size;
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let flavour = manifest.flavour().unwrap_or(Flavour::Oci);
    Ok(Some(out.converted(flavour).unwrap_or(out)))
}
