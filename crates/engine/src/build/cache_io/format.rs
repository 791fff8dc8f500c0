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

use buildr_cache::{Digest, RecordKey, SnapshotId, Store};
use buildr_oci::{Descriptor, EncodedManifest, Manifest, is_layer_media_type, media_type};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::{Layer, StateData};

/// `artifactType` of an entry manifest.
pub(crate) const ENTRY_ARTIFACT: &str = "application/vnd.buildr.cache.entry.v1";
/// Media type of an entry's config: the [`EntryDoc`].
pub(crate) const ENTRY_CONFIG: &str = "application/vnd.buildr.cache.entry.v1+json";
/// `artifactType` of a cache mount's contents (`mounts=true`).
pub(crate) const MOUNT_ARTIFACT: &str = "application/vnd.buildr.cache.mount.v1";
/// Media type of a cache mount entry's config: its [`MountDoc`].
pub(crate) const MOUNT_CONFIG: &str = "application/vnd.buildr.cache.mount.v1+json";

/// When the entry was last exported (RFC 3339): what `cache prune
/// --keep-duration` goes by. Each export writes it again, so an entry
/// that builds keep exporting stays.
pub(crate) const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

fn exported_now() -> String {
    crate::image::time::now_rfc3339()
}

/// `artifactType` of a `COPY`'s per-path record (why a later build missed).
pub(crate) const SELECTION_ARTIFACT: &str = "application/vnd.buildr.cache.selection.v1";
/// Media type of a selection entry's config: its [`SelectionDoc`].
pub(crate) const SELECTION_CONFIG: &str = "application/vnd.buildr.cache.selection.v1+json";
/// Media type of the record itself (buildr's packed per-path record).
pub(crate) const SELECTION_RECORD: &str = "application/vnd.buildr.context.record.v1";
/// Largest record carried (a context of about a million files).
pub(crate) const MAX_SELECTION_BYTES: u64 = 64 << 20;

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
    /// The key's hex for a step's entry, `mount-<id>` for a cache mount's.
    pub name: String,
    pub manifest: Digest,
    pub manifest_size: u64,
}

/// Writes the entry of `state` under `key` into `store`: its layers
/// compressed as `compress` says (each made once, see
/// [`crate::image::layer_bytes::compressed_layer`]), its document, its
/// manifest.
pub(crate) fn encode(
    store: &Store,
    key: &RecordKey,
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
    let annotations = [(KEY_ANNOTATION.to_owned(), key.hex())];
    write_entry(
        store,
        key.hex(),
        (ENTRY_ARTIFACT, ENTRY_CONFIG),
        &doc,
        layers,
        annotations,
    )
}

/// Stores an entry's document and manifest (artifact type and config
/// type as `kinds` says, `layers` as they are, `annotations` and the
/// export time); the entry, named `name`.
fn write_entry<const N: usize>(
    store: &Store,
    name: String,
    (artifact, config_type): (&str, &str),
    doc: &impl Serialize,
    layers: Vec<Descriptor>,
    annotations: [(String, String); N],
) -> Result<Encoded> {
    let bytes = serde_json::to_vec(doc).map_err(|source| Error::Encode {
        what: format!("the cache entry {name}"),
        source,
    })?;
    let config = store.put_blob(&bytes)?;
    let mut annotations: std::collections::BTreeMap<String, String> =
        annotations.into_iter().collect();
    annotations.insert(CREATED_ANNOTATION.to_owned(), exported_now());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: Some(artifact.to_owned()),
        config: Descriptor::new(config_type, config.digest, config.size),
        layers,
        subject: None,
        annotations: Some(annotations),
        extra: Default::default(),
    };
    let encoded = EncodedManifest::encode(&manifest)?;
    let blob = store.put_blob(&encoded.bytes)?;
    Ok(Encoded {
        name,
        manifest: blob.digest,
        manifest_size: blob.size,
    })
}

/// A cache entry refused: `what` names it (`cache entry REF`), the source
/// says what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub(crate) struct BadEntry {
    pub what: String,
    #[source]
    pub fault: EntryFault,
}

/// What is wrong with a cache entry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EntryFault {
    #[error("the manifest is not JSON")]
    ManifestJson(#[source] serde_json::Error),
    #[error("not a buildr cache entry (config type {0:?})")]
    NotEntry(String),
    #[error("entry document of {0} bytes")]
    DocSize(u64),
    /// Its document could not be read.
    #[error(transparent)]
    Read(Box<Error>),
    #[error("the entry document does not parse")]
    DocJson(#[source] serde_json::Error),
    #[error("entry version {0} (this buildr reads 1)")]
    Version(u32),
    #[error("the entry is for key {0}")]
    Key(String),
    #[error("{layers} layers but {diff_ids} diff ids")]
    Count { layers: usize, diff_ids: usize },
    #[error("layer {digest} has type {media_type:?}")]
    LayerType { digest: Digest, media_type: String },
    #[error("not an entry of type {0}")]
    Type(String),
    #[error("the entry is for {0}")]
    Id(String),
    #[error("the entry does not have the one blob it should")]
    Blobs,
}

/// For `map_err` and `Err`: the entry `what` has `fault`.
fn bad(what: &str) -> impl Fn(EntryFault) -> BadEntry + '_ {
    move |fault| BadEntry {
        what: what.to_owned(),
        fault,
    }
}

/// The step result an entry describes, after checking that it is one of
/// ours and answers `key`: the manifest's type, the document's version,
/// key and diff ids one per layer, every layer an image layer type. The
/// layers' snapshots are named by their diff ids and need not exist yet.
pub(crate) fn decode(
    key: &RecordKey,
    manifest_bytes: &[u8],
    what: &str,
    read_doc: impl FnOnce(&Descriptor) -> Result<Vec<u8>>,
) -> std::result::Result<StateData, BadEntry> {
    let bad = bad(what);
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| bad(EntryFault::ManifestJson(e)))?;
    if manifest.config.media_type != ENTRY_CONFIG {
        return Err(bad(EntryFault::NotEntry(manifest.config.media_type)));
    }
    if manifest.config.size > MAX_ENTRY_BYTES {
        return Err(bad(EntryFault::DocSize(manifest.config.size)));
    }
    let bytes = read_doc(&manifest.config).map_err(|e| bad(EntryFault::Read(Box::new(e))))?;
    let doc: EntryDoc = serde_json::from_slice(&bytes).map_err(|e| bad(EntryFault::DocJson(e)))?;
    if doc.schema_version != 1 {
        return Err(bad(EntryFault::Version(doc.schema_version)));
    }
    if doc.key != key.hex() {
        return Err(bad(EntryFault::Key(doc.key)));
    }
    if doc.diff_ids.len() != manifest.layers.len() {
        return Err(bad(EntryFault::Count {
            layers: manifest.layers.len(),
            diff_ids: doc.diff_ids.len(),
        }));
    }
    let mut layers = Vec::with_capacity(doc.diff_ids.len());
    for (d, diff_id) in manifest.layers.iter().zip(&doc.diff_ids) {
        if !is_layer_media_type(&d.media_type) {
            return Err(bad(EntryFault::LayerType {
                digest: d.digest,
                media_type: d.media_type.clone(),
            }));
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

/// The image config field (top level, as BuildKit's
/// `moby.buildkit.cache.v0`) an inline cache is written to.
pub(crate) const INLINE_FIELD: &str = "dev.buildr.cache.v1";

/// An inline cache: the final stage's steps, each described by how many
/// of the image's own layers its result is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InlineDoc {
    pub schema_version: u32,
    pub entries: Vec<InlineEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InlineEntry {
    /// The store key, hex.
    pub key: String,
    /// The step's result is the image's first `layers` layers.
    pub layers: usize,
    pub added: Vec<bool>,
    pub created: i64,
}

/// The inline cache of an image whose layers are `last`'s: every entry
/// whose result is a bottom part of them (the final stage's steps are).
pub(crate) fn inline_doc(
    entries: &[(RecordKey, crate::ops::State)],
    last: &StateData,
) -> InlineDoc {
    let entries = entries
        .iter()
        .filter(|(_, s)| last.layers.starts_with(&s.layers) && last.added.starts_with(&s.added))
        .map(|(key, s)| InlineEntry {
            key: key.hex(),
            layers: s.layers.len(),
            added: s.added.clone(),
            created: s.created,
        })
        .collect();
    InlineDoc {
        schema_version: 1,
        entries,
    }
}

/// The step results an image's inline cache describes, by key hex: its
/// layers as its manifest names them (the registry's blobs) with the
/// config's diff ids. An entry naming more layers than the image has is
/// left out.
pub(crate) fn inline_states(
    doc: &InlineDoc,
    layers: &[Descriptor],
    diff_ids: &[Digest],
) -> std::collections::HashMap<String, StateData> {
    let mut out = std::collections::HashMap::new();
    if doc.schema_version != 1 || layers.len() != diff_ids.len() {
        return out;
    }
    for e in &doc.entries {
        if e.layers > layers.len()
            || layers[..e.layers]
                .iter()
                .any(|d| !is_layer_media_type(&d.media_type))
        {
            continue;
        }
        let state = StateData {
            layers: layers[..e.layers]
                .iter()
                .zip(diff_ids)
                .map(|(d, diff_id)| Layer {
                    diff_id: *diff_id,
                    digest: d.digest,
                    size: d.size,
                    media_type: d.media_type.clone(),
                    snapshot: SnapshotId::from_digest(diff_id),
                })
                .collect(),
            added: e.added.clone(),
            created: e.created,
        };
        out.insert(e.key.clone(), state);
    }
    out
}

/// What a cache mount entry or a selection entry says: what its one blob
/// is of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdDoc {
    pub schema_version: u32,
    /// A mount: the directory's name in the store (`cache/mounts/<id>`, a
    /// hash of the mount's `id=`); a selection: the `COPY`'s explain id.
    /// The same on every machine.
    pub id: String,
}

/// The entry name of the cache mount directory `id`.
pub(crate) fn mount_name(id: &str) -> String {
    format!("mount-{id}")
}

/// Writes the entry of the cache mount directory `dir` (named `id`) into
/// `store`: its whole tree as one compressed layer.
pub(crate) fn encode_mount(
    store: &Store,
    id: &str,
    dir: &std::path::Path,
    compress: &buildr_oci::CompressOptions,
) -> Result<Encoded> {
    let empty = tempfile::tempdir_in(store.root().join("tmp")).map_err(|source| Error::Io {
        action: "create a temp dir in",
        path: store.root().join("tmp"),
        source,
    })?;
    let diff = buildr_oci::Diff::compute(buildr_oci::DiffSource::Trees {
        lower: empty.path(),
        upper: dir,
    })?;
    let options = buildr_oci::LayerOptions {
        compress: *compress,
        source_date_epoch: None,
    };
    let (digests, writer) = diff.write_layer(store.blob_writer()?, &options)?;
    let blob = writer.commit(Some(digests.digest))?;
    let layer = Descriptor::new(digests.media_type, blob.digest, blob.size);
    let doc = IdDoc {
        schema_version: 1,
        id: id.to_owned(),
    };
    write_entry(
        store,
        mount_name(id),
        (MOUNT_ARTIFACT, MOUNT_CONFIG),
        &doc,
        vec![layer],
        [],
    )
}

/// The one layer of a cache mount entry for `id`, after checking it is one.
pub(crate) fn decode_mount(
    id: &str,
    manifest_bytes: &[u8],
    what: &str,
    read_doc: impl FnOnce(&Descriptor) -> Result<Vec<u8>>,
) -> std::result::Result<Descriptor, BadEntry> {
    decode_single(id, manifest_bytes, what, MOUNT_CONFIG, read_doc, |layer| {
        is_layer_media_type(&layer.media_type)
    })
}

/// The one blob of an entry made by [`write_entry`] with an [`IdDoc`]
/// (config type `config_type`, answering `id`), if `accept` takes it.
fn decode_single(
    id: &str,
    manifest_bytes: &[u8],
    what: &str,
    config_type: &str,
    read_doc: impl FnOnce(&Descriptor) -> Result<Vec<u8>>,
    accept: impl Fn(&Descriptor) -> bool,
) -> std::result::Result<Descriptor, BadEntry> {
    let bad = bad(what);
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| bad(EntryFault::ManifestJson(e)))?;
    if manifest.config.media_type != config_type || manifest.config.size > MAX_ENTRY_BYTES {
        return Err(bad(EntryFault::Type(config_type.to_owned())));
    }
    let bytes = read_doc(&manifest.config).map_err(|e| bad(EntryFault::Read(Box::new(e))))?;
    let doc: IdDoc = serde_json::from_slice(&bytes).map_err(|e| bad(EntryFault::DocJson(e)))?;
    if doc.schema_version != 1 || doc.id != id {
        return Err(bad(EntryFault::Id(doc.id)));
    }
    match manifest.layers.as_slice() {
        [one] if accept(one) => Ok(one.clone()),
        _ => Err(bad(EntryFault::Blobs)),
    }
}

/// The entry name of the selection record of the `COPY` `id`.
pub(crate) fn selection_name(id: &str) -> String {
    format!("sel-{id}")
}

/// Writes the entry of a `COPY`'s per-path record `bytes` into `store`.
pub(crate) fn encode_selection(store: &Store, id: &str, bytes: &[u8]) -> Result<Encoded> {
    let blob = store.put_blob(bytes)?;
    let doc = IdDoc {
        schema_version: 1,
        id: id.to_owned(),
    };
    write_entry(
        store,
        selection_name(id),
        (SELECTION_ARTIFACT, SELECTION_CONFIG),
        &doc,
        vec![Descriptor::new(SELECTION_RECORD, blob.digest, blob.size)],
        [],
    )
}

/// The record blob of a selection entry for `id`, after checking it is one.
pub(crate) fn decode_selection(
    id: &str,
    manifest_bytes: &[u8],
    what: &str,
    read_doc: impl FnOnce(&Descriptor) -> Result<Vec<u8>>,
) -> std::result::Result<Descriptor, BadEntry> {
    decode_single(
        id,
        manifest_bytes,
        what,
        SELECTION_CONFIG,
        read_doc,
        |record| record.media_type == SELECTION_RECORD && record.size <= MAX_SELECTION_BYTES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RecordKey {
        RecordKey::from_bytes([7; 32])
    }

    fn manifest_with(config: Descriptor, layers: Vec<Descriptor>) -> Vec<u8> {
        serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            artifact_type: Some(ENTRY_ARTIFACT.to_owned()),
            config,
            layers,
            subject: None,
            annotations: None,
            extra: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn hostile_entries_are_refused_by_name_never_a_panic() {
        let d = |m: &str, n: u8| Descriptor::new(m, Digest::of(&[n]), 10);
        let doc = |ids: usize, key: &str| {
            serde_json::to_vec(&EntryDoc {
                schema_version: 1,
                key: key.to_owned(),
                diff_ids: (0..ids).map(|i| Digest::of(&[i as u8])).collect(),
                added: vec![true; ids],
                created: 0,
            })
            .unwrap()
        };
        let layer = media_type::OCI_LAYER_GZIP;
        let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), doc(1, &key().hex()), "not JSON"),
            (
                manifest_with(d(media_type::OCI_CONFIG, 0), vec![d(layer, 1)]),
                doc(1, &key().hex()),
                "not a buildr cache entry",
            ),
            (
                manifest_with(d(ENTRY_CONFIG, 0), vec![d(layer, 1)]),
                b"{\"schemaVersion\":1".to_vec(),
                "does not parse",
            ),
            (
                manifest_with(d(ENTRY_CONFIG, 0), vec![d(layer, 1)]),
                doc(1, "another"),
                "is for key another",
            ),
            (
                manifest_with(d(ENTRY_CONFIG, 0), vec![d(layer, 1), d(layer, 2)]),
                doc(1, &key().hex()),
                "2 layers but 1 diff ids",
            ),
            (
                manifest_with(d(ENTRY_CONFIG, 0), vec![d("text/plain", 1)]),
                doc(1, &key().hex()),
                "has type",
            ),
            (
                manifest_with(
                    Descriptor::new(ENTRY_CONFIG, Digest::of(b"x"), 1 << 30),
                    vec![],
                ),
                doc(0, &key().hex()),
                "entry document of",
            ),
        ];
        for (manifest, doc, phrase) in cases {
            let err = decode(&key(), &manifest, "entry", |_| Ok(doc.clone())).unwrap_err();
            let err = crate::error::error_chain(&err);
            assert!(err.contains(phrase), "{phrase}: {err}");
        }
        // A good one decodes, its snapshots named by its diff ids.
        let good = manifest_with(d(ENTRY_CONFIG, 0), vec![d(layer, 1)]);
        let state = decode(&key(), &good, "entry", |_| Ok(doc(1, &key().hex()))).unwrap();
        assert_eq!(
            state.layers[0].snapshot,
            SnapshotId::from_digest(&Digest::of(&[0]))
        );
    }

    #[test]
    fn an_inline_cache_naming_more_layers_than_the_image_has_is_ignored() {
        let layers = vec![Descriptor::new(
            media_type::OCI_LAYER_GZIP,
            Digest::of(b"l"),
            1,
        )];
        let diff_ids = vec![Digest::of(b"d")];
        let entry = |n: usize| InlineEntry {
            key: format!("k{n}"),
            layers: n,
            added: vec![],
            created: 0,
        };
        let doc = InlineDoc {
            schema_version: 1,
            entries: vec![entry(0), entry(1), entry(2), entry(usize::MAX)],
        };
        let states = inline_states(&doc, &layers, &diff_ids);
        assert_eq!(states.len(), 2, "{states:?}");
        assert_eq!(states["k1"].layers[0].diff_id, diff_ids[0]);
        // Layers and diff ids that disagree in number give nothing.
        assert!(inline_states(&doc, &layers, &[]).is_empty());
    }
}
