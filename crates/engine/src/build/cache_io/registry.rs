//! A cache in a registry repository: entries tagged `TAG-<key>`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use buildr_cache::{Digest, RecordKey, Store};
use buildr_oci::{Descriptor, Reference, RegistryClient};

use super::format::{self, MAX_ENTRY_BYTES};
use crate::error::{Error, Result};
use crate::image::remote_blobs::{self, BlobSource};
use crate::ops::StateData;

/// Longest `TAG` of a cache ref: `TAG-<64 hex>` must stay a valid tag (128).
const MAX_TAG: usize = 128 - 65;

/// The repository and tag a cache ref names (`latest` when it has none);
/// refs pinned by digest and tags too long to carry a key are refused.
pub(crate) fn cache_repository(reference: &str) -> Result<(Reference, String)> {
    let parsed = Reference::parse(reference)?;
    if parsed.digest().is_some() {
        return Err(Error::BadReference {
            reference: reference.to_owned(),
            reason: "a cache ref names a tag, not a digest".into(),
        });
    }
    let tag = parsed.tag().unwrap_or("latest").to_owned();
    if tag.len() > MAX_TAG {
        return Err(Error::BadReference {
            reference: reference.to_owned(),
            reason: format!(
                "the tag of a cache ref is at most {MAX_TAG} characters (entries are tagged TAG-<key>)"
            ),
        });
    }
    Ok((parsed, tag))
}

/// One registry cache read by a build.
pub(crate) struct RegistrySource {
    client: RegistryClient,
    repo: Reference,
    tag: String,
    /// Whether each layer blob is in the repository, asked once.
    blobs: Mutex<HashMap<Digest, bool>>,
    /// The inline cache of the image the ref itself names, read on the
    /// first lookup (empty when it names no image, or one without).
    inline: OnceLock<HashMap<String, StateData>>,
    /// The repository's tags, listed once on the first lookup, so a key
    /// with no entry costs no request; `None` when the registry does not
    /// list them (every key is then asked for).
    tags: OnceLock<Option<std::collections::HashSet<String>>>,
}

impl RegistrySource {
    pub(crate) fn new(client: RegistryClient, reference: &str) -> Result<RegistrySource> {
        let (repo, tag) = cache_repository(reference)?;
        Ok(RegistrySource {
            client,
            repo,
            tag,
            blobs: Mutex::new(HashMap::new()),
            inline: OnceLock::new(),
            tags: OnceLock::new(),
        })
    }

    pub(crate) fn name(&self) -> String {
        format!("{}:{}", self.repo.repository(), self.tag)
    }

    /// `host/path` of the repository.
    pub(crate) fn repository(&self) -> String {
        self.repo.repository()
    }

    /// The entry for `key`: `Ok(None)` when there is none (or it is not
    /// usable: `Err(Corrupt)` says why), `Err(Unreachable)` when the
    /// registry cannot be asked. Every layer it names is checked to be in
    /// the repository (a HEAD, once per blob), so a hit never names a
    /// blob that cannot be fetched.
    pub(crate) fn entry(&self, key: &RecordKey) -> std::result::Result<Option<StateData>, Problem> {
        let inline = match self.inline.get() {
            Some(map) => map,
            None => {
                let map = self.read_inline()?;
                self.inline.get_or_init(|| map)
            }
        };
        if let Some(state) = inline.get(&key.hex()) {
            self.check_layers(state, &format!("inline cache of {}", self.name()))?;
            return Ok(Some(state.clone()));
        }
        let what = format!(
            "cache entry {}:{}-{}",
            self.repo.repository(),
            self.tag,
            key.hex()
        );
        let Some(state) = self.single(&key.hex(), |bytes, what, read| {
            format::decode(key, bytes, what, read)
        })?
        else {
            return Ok(None);
        };
        self.check_layers(&state, &what)?;
        Ok(Some(state))
    }

    /// The layer of the cache mount entry for `id`, if there is one.
    pub(crate) fn mount(&self, id: &str) -> std::result::Result<Option<Descriptor>, Problem> {
        self.single(&format::mount_name(id), |bytes, what, read| {
            format::decode_mount(id, bytes, what, read)
        })
    }

    /// The per-path record of the `COPY` `id`'s last export, if any.
    pub(crate) fn selection(&self, id: &str) -> std::result::Result<Option<Vec<u8>>, Problem> {
        let found = self.single(&format::selection_name(id), |bytes, what, read| {
            format::decode_selection(id, bytes, what, read)
        })?;
        let Some(record) = found else {
            return Ok(None);
        };
        self.client
            .fetch_blob_bytes(&self.repo, &record, format::MAX_SELECTION_BYTES)
            .map(Some)
            .map_err(|e| Problem::Corrupt(format!("cache selection {id}: {e}")))
    }

    /// The entry `TAG-name` as `decode` reads it (its manifest, a name for
    /// messages, and a reader of its small blobs); `None` when there is none.
    fn single<T>(
        &self,
        name: &str,
        decode: impl FnOnce(
            &[u8],
            &str,
            &dyn Fn(&Descriptor) -> Result<Vec<u8>>,
        ) -> std::result::Result<T, format::BadEntry>,
    ) -> std::result::Result<Option<T>, Problem> {
        if !self.may_have(name) {
            return Ok(None);
        }
        let reference =
            Reference::parse(&format!("{}:{}-{name}", self.repo.repository(), self.tag))
                .map_err(|e| Problem::Corrupt(e.to_string()))?;
        let Some(manifest) = self
            .client
            .find_manifest(&reference)
            .map_err(|e| Problem::Unreachable(e.to_string()))?
        else {
            return Ok(None);
        };
        let what = format!("cache entry {reference}");
        let read = |d: &Descriptor| {
            self.client
                .fetch_blob_bytes(&self.repo, d, MAX_ENTRY_BYTES)
                .map_err(|e| Error::Registry {
                    operation: "read cache entry",
                    reference: reference.to_string(),
                    source: Box::new(e),
                })
        };
        decode(&manifest.bytes, &what, &read)
            .map(Some)
            .map_err(Problem::from)
    }

    /// Whether the repository may have the entry `TAG-name`: false only
    /// when its tag list (read once) says it does not.
    fn may_have(&self, name: &str) -> bool {
        let tags = self.tags.get_or_init(|| {
            self.client
                .list_tags(&self.repo)
                .ok()
                .map(|tags| tags.into_iter().collect())
        });
        let wanted = format!("{}-{name}", self.tag);
        tags.as_ref().is_none_or(|t| t.contains(&wanted))
    }

    /// Every layer of `state` is in the repository.
    fn check_layers(&self, state: &StateData, what: &str) -> std::result::Result<(), Problem> {
        for layer in &state.layers {
            if !self.has_blob(&layer.descriptor())? {
                return Err(Problem::Corrupt(format!(
                    "{what}: layer {} is not in {}",
                    layer.digest,
                    self.repo.repository()
                )));
            }
        }
        Ok(())
    }

    /// The inline cache in the config of the image the ref names, if it
    /// names an image (an index or anything else has none).
    fn read_inline(&self) -> std::result::Result<HashMap<String, StateData>, Problem> {
        let Some(found) = self
            .client
            .find_manifest(&self.repo)
            .map_err(|e| Problem::Unreachable(e.to_string()))?
        else {
            return Ok(HashMap::new());
        };
        let Ok(manifest) = serde_json::from_slice::<buildr_oci::Manifest>(&found.bytes) else {
            return Ok(HashMap::new());
        };
        let image_config = [
            buildr_oci::media_type::OCI_CONFIG,
            buildr_oci::media_type::DOCKER_CONFIG,
        ];
        if !image_config.contains(&manifest.config.media_type.as_str()) {
            return Ok(HashMap::new());
        }
        let bytes = self
            .client
            .fetch_blob_bytes(&self.repo, &manifest.config, 16 << 20)
            .map_err(|e| Problem::Unreachable(e.to_string()))?;
        let Ok(config) = serde_json::from_slice::<buildr_oci::ImageConfig>(&bytes) else {
            return Ok(HashMap::new());
        };
        let Some(doc) = config
            .extra
            .get(format::INLINE_FIELD)
            .and_then(|v| serde_json::from_value::<format::InlineDoc>(v.clone()).ok())
        else {
            return Ok(HashMap::new());
        };
        Ok(format::inline_states(
            &doc,
            &manifest.layers,
            &config.rootfs.diff_ids,
        ))
    }

    fn has_blob(&self, d: &Descriptor) -> std::result::Result<bool, Problem> {
        if let Some(&known) = self
            .blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&d.digest)
        {
            return Ok(known);
        }
        let size = self
            .client
            .blob_size(&self.repo, &d.digest)
            .map_err(|e| Problem::Unreachable(e.to_string()))?;
        let there = size == Some(d.size);
        self.blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(d.digest, there);
        Ok(there)
    }

    /// Downloads `blobs` into `store`, verified.
    pub(crate) fn fetch(&self, store: &Store, blobs: &[Descriptor]) -> Result<()> {
        self.client
            .fetch_blobs_into(store, &self.repo, blobs, None)
            .map_err(|e| Error::Registry {
                operation: "fetch cache layers from",
                reference: self.name(),
                source: Box::new(e),
            })
    }
}

/// Why a cache source gave no entry.
#[derive(Debug)]
pub(crate) enum Problem {
    /// The source cannot be asked (network, auth): stop asking it.
    Unreachable(String),
    /// This entry is unusable; others may be fine.
    Corrupt(String),
}

/// A refused entry is corrupt; the text is its chain, as warnings show it.
impl From<format::BadEntry> for Problem {
    fn from(e: format::BadEntry) -> Self {
        Problem::Corrupt(crate::error::error_chain(&e))
    }
}

/// Pushes `entries` (manifests already in `store`) to the registry cache
/// `reference`: layer blobs first, each once (skipped where the repository
/// has them, mounted from another repository of the registry where the
/// store knows one), then one manifest per entry under `TAG-<key>`. An
/// entry already there under that tag is replaced by an equivalent one (the
/// same key is the same step on the same inputs); no other entry is
/// touched, so exports from other builds to the same ref all stay.
pub(crate) fn push(
    client: &RegistryClient,
    store: &Store,
    reference: &str,
    entries: &[format::Encoded],
    layers: &LayerOrigins,
) -> Result<buildr_oci::PushReport> {
    let (repo, tag) = cache_repository(reference)?;
    let tagged: Vec<(String, Digest)> = entries
        .iter()
        .map(|e| (format!("{tag}-{}", e.name), e.manifest))
        .collect();
    // Layers a hit left where they were: mounted from their repository
    // when it is on this registry, else fetched only if they must be sent.
    let mut mount_from = layers.mount_sources(repo.domain());
    mount_from.extend(crate::registry::mount_sources(store, &repo)?);
    let opts = buildr_oci::PushOptions {
        mount_from,
        fetch_missing: Some(layers.fetcher(store)),
        ..buildr_oci::PushOptions::default()
    };
    client
        .push_tagged(store, &repo, &tagged, &opts)
        .map_err(|e| Error::Registry {
            operation: "export cache to",
            reference: reference.to_owned(),
            source: Box::new(e),
        })
}

/// Where the layers an export names can be had when the store does not
/// hold them: the build's cache sources (a hit's layers), or a source
/// file a lazy pull or an earlier build left.
pub(crate) struct LayerOrigins {
    pub(crate) sources: Vec<(Descriptor, BlobSource)>,
}

impl LayerOrigins {
    /// Brings every such layer into the store (what a local export,
    /// which copies blobs, needs).
    pub(crate) fn fetch_all(&self, store: &Store) -> Result<()> {
        let mut by_source: HashMap<&BlobSource, Vec<Descriptor>> = HashMap::new();
        for (d, source) in &self.sources {
            by_source.entry(source).or_default().push(d.clone());
        }
        for (source, blobs) in by_source {
            remote_blobs::fetch(store, source, &blobs)?;
        }
        Ok(())
    }

    fn mount_sources(&self, host: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, source) in &self.sources {
            if let BlobSource::Registry { repository } = source
                && let Ok(r) = Reference::parse(repository)
                && r.domain() == host
                && !out.iter().any(|p| p == r.path())
            {
                out.push(r.path().to_owned());
            }
        }
        out
    }

    fn fetcher(&self, store: &Store) -> buildr_oci::FetchMissingFn {
        let sources: HashMap<Digest, BlobSource> = self
            .sources
            .iter()
            .map(|(d, source)| (d.digest, source.clone()))
            .collect();
        let store = store.clone();
        std::sync::Arc::new(move |d: &Descriptor| {
            let found = match sources.get(&d.digest) {
                Some(source) => remote_blobs::fetch(&store, source, std::slice::from_ref(d)),
                None => remote_blobs::ensure_blob(&store, d),
            };
            found.map_err(Into::into)
        })
    }
}
