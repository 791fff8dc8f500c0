//! The entry format shared by registry and local caches.
//!
//! One entry per cache key, each its own object, so writers never replace
//! each other's entries: an OCI image manifest with `artifactType`
//! [`ENTRY_ARTIFACT`] (an OCI 1.1 artifact that registries refusing indexes
//! accept) whose config is the entry document ([`EntryDoc`], a few hundred
//! bytes) and whose layers are the compressed layers of the step's result,
//! bottom first, under the ordinary layer media types (so registries mount
//! and garbage-collect them as any image's). In a registry it is tagged
//! `TAG-<key>`; in a local cache it is named `<key>` in the layout's index.

use buildr_cache::{CacheKey, Digest, SnapshotId, Store};
use buildr_oci::{Descriptor, EncodedManifest, Manifest, is_layer_media_type, media_type};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::{Layer, StateData};

/// `artifactType` of an entry manifest.
pub(crate) const ENTRY_ARTIFACT: &str = "application/vnd.buildr.cache.entry.v1";
/// Media type of an entry's config: the [`EntryDoc`].
pub(crate) const ENTRY_CONFIG: &str = "application/vnd.buildr.cache.entry.v1+json";
/// The annotation that repeats the key on the manifest.
pub(crate) const KEY_ANNOTATION: &str = "dev.buildr.cache.key";
/// An entry document is a few hundred bytes; anything near this is not one.
pub(crate) const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// What an entry says beyond its layers: which key it answers, and the
/// parts of the step's result that are not layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntryDoc {
    pub schema_version: u32,
    /// The store key, hex.
    pub key: String,
    /// The uncompressed digest of each layer of the manifest, in order.
    pub diff_ids: Vec<Digest>,
    /// Per build step since `FROM`: did it add a layer.
    pub added: Vec<bool>,
    /// When the step ran (the image's `created` on a full hit).
    pub created: i64,
}

/// An entry ready to be written: its manifest (stored as a blob of the
/// local store, as is its document) and the name it goes under.
pub(crate) struct Encoded {
    pub key: CacheKey,
    pub manifest: Digest,
    pub manifest_size: u64,
}

/// Writes the entry of `state` under `key` into `store`: its layers
/// compressed as `compress` says (each made once, see
/// [`crate::image::layer_bytes::compressed_layer`]), its document, its
/// manifest.
pub(crate) fn encode(
    store: &Store,
    key: &CacheKey,
    state: &StateData,
    compress: &buildr_oci::CompressOptions,
) -> Result<Encoded> {
    let mut layers = Vec::with_capacity(state.layers.len());
    for layer in &state.layers {
        let mut d =
            crate::image::layer_bytes::compressed_layer(store, &layer.descriptor(), compress)?;
        d.media_type = buildr_oci::convert_media_type(&d.media_type, buildr_oci::Flavour::Oci)
            .map_or(d.media_type.clone(), str::to_owned);
        layers.push(d);
    }
    let doc = EntryDoc {
        schema_version: 1,
        key: key.hex(),
        diff_ids: state.layers.iter().map(|l| l.diff_id).collect(),
        added: state.added.clone(),
        created: state.created,
    };
    let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Build {
        location: "cache export".into(),
        message: format!("cannot encode the entry of {}: {e}", key.hex()),
    })?;
    let config = store.put_blob(&bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: Some(ENTRY_ARTIFACT.to_owned()),
        config: Descriptor::new(ENTRY_CONFIG, config.digest, config.size),
        layers,
        subject: None,
        annotations: Some(
            [(KEY_ANNOTATION.to_owned(), key.hex())]
                .into_iter()
                .collect(),
        ),
        extra: Default::default(),
    };
    let encoded = EncodedManifest::encode(&manifest)?;
    let blob = store.put_blob(&encoded.bytes)?;
    Ok(Encoded {
        key: *key,
        manifest: blob.digest,
        manifest_size: blob.size,
    })
}

/// The step result an entry describes, after checking that it is one of
/// ours and answers `key`: the manifest's type, the document's version,
/// key and diff ids one per layer, every layer an image layer type. The
/// layers' snapshots are named by their diff ids and need not exist yet.
pub(crate) fn decode(
    key: &CacheKey,
    manifest_bytes: &[u8],
    what: &str,
    read_doc: impl FnOnce(&Descriptor) -> Result<Vec<u8>>,
) -> std::result::Result<StateData, String> {
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| format!("{what}: the manifest is not JSON: {e}"))?;
    if manifest.config.media_type != ENTRY_CONFIG {
        return Err(format!(
            "{what}: not a buildr cache entry (config type {:?})",
            manifest.config.media_type
        ));
    }
    if manifest.config.size > MAX_ENTRY_BYTES {
        return Err(format!(
            "{what}: entry document of {} bytes",
            manifest.config.size
        ));
    }
    let bytes = read_doc(&manifest.config).map_err(|e| format!("{what}: {e}"))?;
    let doc: EntryDoc = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{what}: the entry document does not parse: {e}"))?;
    if doc.schema_version != 1 {
        return Err(format!(
            "{what}: entry version {} (this buildr reads 1)",
            doc.schema_version
        ));
    }
    if doc.key != key.hex() {
        return Err(format!("{what}: the entry is for key {}", doc.key));
    }
    if doc.diff_ids.len() != manifest.layers.len() {
        return Err(format!(
            "{what}: {} layers but {} diff ids",
            manifest.layers.len(),
            doc.diff_ids.len()
        ));
    }
    let mut layers = Vec::with_capacity(doc.diff_ids.len());
    for (d, diff_id) in manifest.layers.iter().zip(&doc.diff_ids) {
        if !is_layer_media_type(&d.media_type) {
            return Err(format!(
                "{what}: layer {} has type {:?}",
                d.digest, d.media_type
            ));
        }
        layers.push(Layer {
            diff_id: *diff_id,
            digest: d.digest,
            size: d.size,
            media_type: d.media_type.clone(),
            snapshot: SnapshotId::from_digest(diff_id),
        });
    }
    Ok(StateData {
        layers,
        added: doc.added,
        created: doc.created,
    })
}
