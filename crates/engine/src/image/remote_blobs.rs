//! Layers an image names but the store does not hold yet: a build whose
//! steps came from a `--cache-from` cache tags its image without fetching
//! the layers nothing read. Each such blob has a small source file,
//! `cache/sources/<hex>` (JSON: the cache repository or directory it is
//! in), written before the tag (so flushed with it), and is fetched from
//! there, verified, the first time something reads it ([`ensure_blob`],
//! called by every reader of layer bytes). A push to the registry that
//! holds it mounts it instead ([`mount_sources`]): a fully cached build
//! that is pushed downloads no layer.

use std::fs;
use std::io;
use std::path::PathBuf;

use buildr_cache::{Digest, Store};
use buildr_oci::{Descriptor, Reference};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use buildr_fs::atomic::AtomicWrite;

/// Where a blob the store does not hold can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub(crate) enum BlobSource {
    /// A repository of a registry (`host/path`).
    Registry { repository: String },
    /// An OCI layout directory (a `type=local` cache).
    Local { dir: PathBuf },
}

fn sources_dir(store: &Store) -> PathBuf {
    store.root().join("cache").join("sources")
}

fn source_path(store: &Store, digest: &Digest) -> PathBuf {
    sources_dir(store).join(digest.hex())
}

/// Records that `digest` can be fetched from `source` (replacing what was
/// recorded before). Not fsynced: a build's writes are flushed together
/// before its tags.
pub(crate) fn remember(store: &Store, digest: &Digest, source: &BlobSource) -> Result<()> {
    let bytes = serde_json::to_vec(source).map_err(|e| Error::BadImage {
        image: format!("layer {digest}"),
        reason: format!("cannot record its source: {e}"),
    })?;
    AtomicWrite::new()
        .create_parent()
        .sync(false)
        .bytes(&source_path(store, digest), &bytes)?;
    Ok(())
}

/// Where `digest` can be fetched from, if the store does not hold it and
/// a source was recorded. A source file that does not parse is ignored
/// (the reader then reports the blob as missing).
pub(crate) fn source(store: &Store, digest: &Digest) -> Result<Option<BlobSource>> {
    if store.has_blob(digest)? {
        return Ok(None);
    }
    let path = source_path(store, digest);
    match fs::read(&path) {
        Ok(bytes) if bytes.len() < 64 * 1024 => Ok(serde_json::from_slice(&bytes).ok()),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            action: "read",
            path,
            source: e,
        }),
    }
}

/// Makes sure the blob of `layer` is in the store, fetching it from its
/// recorded source if it is not. Without a source this does nothing: the
/// caller's own read then fails with the store's "not found".
pub(crate) fn ensure_blob(store: &Store, layer: &Descriptor) -> Result<()> {
    let Some(source) = source(store, &layer.digest)? else {
        return Ok(());
    };
    fetch(store, &source, std::slice::from_ref(layer)).map_err(|e| Error::BadImage {
        image: format!("layer {}", layer.digest),
        reason: format!(
            "it was left in {} by a build from that cache and cannot be fetched now: {e}",
            describe(&source)
        ),
    })?;
    // Fetched: the source file has done its job.
    let _ = fs::remove_file(source_path(store, &layer.digest));
    Ok(())
}

/// Downloads or copies `blobs` from `source` into the store, verified.
pub(crate) fn fetch(store: &Store, source: &BlobSource, blobs: &[Descriptor]) -> Result<()> {
    match source {
        BlobSource::Registry { repository } => {
            let repo = Reference::parse(repository)?;
            let registry = crate::registry::Registry::from_env()?;
            registry
                .client()
                .fetch_blobs_into(store, &repo, blobs, None)
                .map_err(|e| Error::Registry {
                    operation: "fetch layers from",
                    reference: repository.clone(),
                    source: Box::new(e),
                })
        }
        BlobSource::Local { dir } => {
            for d in blobs {
                if store.has_blob(&d.digest)? {
                    continue;
                }
                let path = dir.join("blobs").join("sha256").join(d.digest.hex());
                let mut file = fs::File::open(&path).map_err(|source| Error::Io {
                    action: "open",
                    path: path.clone(),
                    source,
                })?;
                let mut writer = store.blob_writer()?;
                io::copy(&mut file, &mut writer).map_err(|source| Error::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?;
                writer.commit(Some(d.digest))?;
            }
            Ok(())
        }
    }
}

fn describe(source: &BlobSource) -> String {
    match source {
        BlobSource::Registry { repository } => repository.clone(),
        BlobSource::Local { dir } => dir.display().to_string(),
    }
}

/// The repositories on `host` that hold blobs of `layers` the store does
/// not: mount sources for a push there.
pub(crate) fn mount_sources(
    store: &Store,
    host: &str,
    layers: &[Descriptor],
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for layer in layers {
        if let Some(BlobSource::Registry { repository }) = source(store, &layer.digest)?
            && let Ok(r) = Reference::parse(&repository)
            && r.domain() == host
            && !out.iter().any(|p| p == r.path())
        {
            out.push(r.path().to_owned());
        }
    }
    Ok(out)
}
