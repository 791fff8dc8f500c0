//! Build caches that travel: `--cache-to` and `--cache-from`.
//!
//! A build looks every step up in its own store first; on a miss it asks
//! each `--cache-from` source in order for the entry of that key
//! ([`Imports::lookup`]). A hit there costs metadata only (the entry's
//! manifest and document, a HEAD per layer blob not seen before): its
//! result names layers that need not be local. They are fetched and
//! unpacked only when something reads them ([`Imports::materialize`]):
//! before a step that missed runs on them, and for the final image. A
//! source that cannot be reached is a warning and is not asked again; an
//! entry that does not check out is a warning and a miss. Either way the
//! build goes on as if the source had no entry.
//!
//! After the build, each `--cache-to` gets the entries of the steps its
//! mode selects ([`export`]), written as [`format`] describes: one object
//! per key, so exports from many builds to one ref add up instead of
//! replacing each other.

mod format;
mod local;
pub(crate) mod registry;
mod spec;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use buildr_cache::{Digest, RecordKey, Store};
use buildr_oci::{Descriptor, ExtractMode, ExtractOptions};

pub(crate) use format::INLINE_FIELD;
pub use spec::{CacheDestination, CacheExport, CacheImport, CacheMode};

use crate::error::{Error, Result};
use crate::image::layer_bytes::layer_local;
use crate::image::remote_blobs::{self, BlobSource};
use crate::ops::{State, StateData};
use registry::Problem;

enum Source {
    Registry(Box<registry::RegistrySource>),
    Local(local::LocalSource),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Registry(s) => s.name(),
            Source::Local(s) => s.name(),
        }
    }

    fn entry(&self, key: &RecordKey) -> std::result::Result<Option<StateData>, Problem> {
        match self {
            Source::Registry(s) => s.entry(key),
            Source::Local(s) => s.entry(key),
        }
    }

    fn fetch(&self, store: &Store, blobs: &[Descriptor]) -> Result<()> {
        match self {
            Source::Registry(s) => s.fetch(store, blobs),
            Source::Local(_) => remote_blobs::fetch(store, &self.blob_source(), blobs),
        }
    }

    /// Where a blob of one of its entries is, for later.
    fn mount(&self, id: &str) -> std::result::Result<Option<Descriptor>, Problem> {
        match self {
            Source::Registry(s) => s.mount(id),
            Source::Local(s) => s.mount(id),
        }
    }

    fn selection(&self, id: &str) -> std::result::Result<Option<Vec<u8>>, Problem> {
        match self {
            Source::Registry(s) => s.selection(id),
            Source::Local(s) => s.selection(id),
        }
    }

    fn blob_source(&self) -> BlobSource {
        match self {
            Source::Registry(s) => BlobSource::Registry {
                repository: s.repository(),
            },
            Source::Local(s) => BlobSource::Local { dir: s.dir() },
        }
    }
}

/// The `--cache-from` sources of one build, and what they gave it.
pub(crate) struct Imports {
    sources: Vec<(Source, AtomicBool)>,
    /// Which source each layer blob of a hit can be fetched from.
    origins: Mutex<HashMap<Digest, usize>>,
    /// Hits not yet in the local store: written as local records once
    /// their layers are.
    hits: Mutex<Vec<(RecordKey, State)>>,
    warnings: Mutex<Vec<String>>,
    /// One materialisation at a time: two steps needing the same layer
    /// fetch it once.
    busy: Mutex<()>,
    /// The cache mount directories (ids) RUN steps of this build used.
    mounts_used: Mutex<BTreeSet<String>>,
    /// Whether the build exports: then the per-path records of its
    /// `COPY`s from the context are kept, to go with the entries.
    exporting: bool,
    /// Those records, by explain id.
    selections: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Imports {
    /// Opens the sources; one that cannot be opened is a warning.
    pub(crate) fn open(imports: &[CacheImport], exporting: bool) -> Imports {
        let mut out = Imports {
            sources: Vec::new(),
            origins: Mutex::new(HashMap::new()),
            hits: Mutex::new(Vec::new()),
            warnings: Mutex::new(Vec::new()),
            busy: Mutex::new(()),
            mounts_used: Mutex::new(BTreeSet::new()),
            exporting,
            selections: Mutex::new(Vec::new()),
        };
        let mut client = None;
        for import in imports {
            let opened = match import {
                CacheImport::Registry(reference) => {
                    let client = match &client {
                        Some(c) => Ok(c),
                        None => crate::registry::Registry::from_env()
                            .map(|r| &*client.insert(r.client().clone())),
                    };
                    client
                        .and_then(|c| registry::RegistrySource::new(c.clone(), reference))
                        .map(|s| Source::Registry(Box::new(s)))
                        .map_err(|e| format!("cache {reference}: {e}"))
                }
                CacheImport::Local(dir) => local::LocalSource::open(dir)
                    .map(Source::Local)
                    .map_err(|p| format!("cache {}: {}", dir.display(), problem_text(&p))),
            };
            match opened {
                Ok(source) => out.sources.push((source, AtomicBool::new(true))),
                Err(warning) => out.warn(warning),
            }
        }
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Stops asking every source, with `why` as the build's warning.
    pub(crate) fn abandon(&self, why: &str) {
        for (_, live) in &self.sources {
            live.store(false, Ordering::Relaxed);
        }
        self.warn(why.to_owned());
    }

    fn warn(&self, warning: String) {
        // The build's warnings reach the user in its result; the log has it
        // when it happens.
        tracing::debug!("{warning}");
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(warning);
    }

    /// What went wrong with the sources, for the build's warnings.
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The first source's entry for `key`. Never an error: a source that
    /// fails is reported and skipped.
    pub(crate) fn lookup(&self, key: &RecordKey) -> Option<State> {
        for (idx, (source, live)) in self.sources.iter().enumerate() {
            if !live.load(Ordering::Relaxed) {
                continue;
            }
            match source.entry(key) {
                Ok(None) => {}
                Ok(Some(state)) => {
                    let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
                    for layer in &state.layers {
                        origins.entry(layer.digest).or_insert(idx);
                    }
                    let state = State::new(state);
                    self.hits
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((*key, State::clone(&state)));
                    return Some(state);
                }
                Err(Problem::Corrupt(why)) => {
                    self.warn(format!("cache {}: entry skipped: {why}", source.name()));
                }
                Err(Problem::Unreachable(why)) => {
                    live.store(false, Ordering::Relaxed);
                    self.warn(format!("cache {} is not used: {why}", source.name()));
                }
            }
        }
        None
    }

    /// Makes every layer of `state` local: its blob fetched (verified)
    /// from the source that named it, and unpacked into its snapshot.
    /// Then every hit whose layers are now all local is recorded in the
    /// store, so the next build finds it there.
    pub(crate) fn materialize(&self, store: &Store, state: &StateData) -> Result<()> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let mut wanted: HashMap<usize, Vec<Descriptor>> = HashMap::new();
        let mut unpack = Vec::new();
        {
            let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
            for layer in &state.layers {
                let need_snapshot = !store.has_snapshot(&layer.snapshot)?;
                let need_blob = !layer_local(store, &layer.descriptor())?;
                if need_blob {
                    let Some(&idx) = origins.get(&layer.digest) else {
                        return Err(Error::Build {
                            location: "cache import".into(),
                            message: format!(
                                "layer {} is neither local nor in a cache",
                                layer.digest
                            ),
                        });
                    };
                    wanted.entry(idx).or_default().push(layer.descriptor());
                }
                if need_snapshot {
                    unpack.push(layer.clone());
                }
            }
        }
        for (idx, blobs) in &wanted {
            self.sources[*idx].0.fetch(store, blobs)?;
        }
        let opts = ExtractOptions {
            mode: ExtractMode::Overlay,
            ..ExtractOptions::default()
        };
        let failed = Mutex::new(None);
        std::thread::scope(|scope| {
            for layer in &unpack {
                let (opts, failed) = (&opts, &failed);
                scope.spawn(move || {
                    let made = store.create_snapshot::<Error, _>(&layer.snapshot, |dir| {
                        crate::image::layer_bytes::unpack_layer(
                            store,
                            &layer.descriptor(),
                            Some(&layer.diff_id),
                            dir,
                            opts,
                        )?;
                        Ok(())
                    });
                    if let Err(e) = made {
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        self.record_local_hits(store)
    }

    /// A RUN step is about to mount the cache directory `host`
    /// (`cache/mounts/<id>`): remembered for `mounts=true`, and when it does
    /// not exist yet, its contents are restored from the first source that
    /// has them. A source that fails is a warning; the step then starts
    /// with an empty cache, as it would without one.
    pub(crate) fn use_mount(&self, store: &Store, host: &Path) {
        let Some(id) = host.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        self.mounts_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned());
        if host.exists() {
            return;
        }
        for (source, live) in &self.sources {
            if !live.load(Ordering::Relaxed) {
                continue;
            }
            let found = match source.mount(id) {
                Ok(Some(layer)) => layer,
                Ok(None) => continue,
                Err(Problem::Corrupt(why)) => {
                    self.warn(format!("cache {}: mount skipped: {why}", source.name()));
                    continue;
                }
                Err(Problem::Unreachable(why)) => {
                    live.store(false, Ordering::Relaxed);
                    self.warn(format!("cache {} is not used: {why}", source.name()));
                    continue;
                }
            };
            match restore_mount(store, source, &found, host) {
                Ok(()) => return,
                Err(e) => self.warn(format!(
                    "cache {}: mount {id} not restored: {e}",
                    source.name()
                )),
            }
        }
    }

    /// Where each layer of `states` the store does not hold can be had.
    fn layer_origins<'a>(
        &self,
        store: &Store,
        states: impl Iterator<Item = &'a StateData>,
    ) -> Result<registry::LayerOrigins> {
        let origins = self
            .origins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut sources = Vec::new();
        for state in states {
            for layer in &state.layers {
                if store.has_blob(&layer.digest)? {
                    continue;
                }
                let source = match origins.get(&layer.digest) {
                    Some(&idx) => Some(self.sources[idx].0.blob_source()),
                    None => remote_blobs::source(store, &layer.digest)?,
                };
                if let Some(source) = source {
                    sources.push((layer.descriptor(), source));
                }
            }
        }
        Ok(registry::LayerOrigins { sources })
    }

    /// A `COPY` from the context selected `selection`; `id` names the
    /// step apart from its content ([`crate::ops::copy::CopyOp`]). Kept
    /// for the exports (the record of a very large selection, over 64
    /// MiB, is not).
    pub(crate) fn note_selection(&self, id: &str, selection: &crate::context::Selection) {
        if !self.exporting {
            return;
        }
        let bytes = selection.record_bytes();
        if bytes.len() as u64 > format::MAX_SELECTION_BYTES {
            return;
        }
        let mut kept = self.selections.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(other, _)| other != id);
        kept.push((id.to_owned(), bytes));
    }

    /// Why the `COPY` `id` missed, from the record a cache has of its
    /// last export: the first path that differs. `None` when no source
    /// has one (a problem with a source only costs the explanation).
    pub(crate) fn explain_from_caches(
        &self,
        id: &str,
        selection: &crate::context::Selection,
    ) -> Option<crate::context::Change> {
        for (source, live) in &self.sources {
            if !live.load(Ordering::Relaxed) {
                continue;
            }
            if let Ok(Some(old)) = source.selection(id) {
                return selection.first_change_from(old);
            }
        }
        None
    }

    /// The ids of the cache mounts this build's RUN steps used.
    fn mounts_used(&self) -> Vec<String> {
        self.mounts_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// What the end of a build does with its result: nothing is fetched.
    /// Each layer whose bytes are not in the store gets a source file (the
    /// cache it came from), so whatever reads it later (run, push, save,
    /// a later build's `FROM`) fetches it then, or a push mounts it; the
    /// hits whose layers are all local are recorded.
    pub(crate) fn finish(&self, store: &Store, state: &StateData) -> Result<()> {
        let origins = self
            .origins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for layer in &state.layers {
            let d = layer.descriptor();
            if layer_local(store, &d)? {
                continue;
            }
            let Some(&idx) = origins.get(&layer.digest) else {
                return Err(Error::Build {
                    location: "cache import".into(),
                    message: format!("layer {} is neither local nor in a cache", layer.digest),
                });
            };
            remote_blobs::remember(store, &layer.digest, &self.sources[idx].0.blob_source())?;
        }
        self.record_local_hits(store)
    }

    fn record_local_hits(&self, store: &Store) -> Result<()> {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        let mut left = Vec::new();
        for (key, state) in hits.drain(..) {
            let mut local = true;
            for layer in &state.layers {
                local &= store.has_snapshot(&layer.snapshot)?
                    && layer_local(store, &layer.descriptor())?;
            }
            if local {
                crate::build_cache::save_record(store, &key, &state)?;
            } else {
                left.push((key, state));
            }
        }
        *hits = left;
        Ok(())
    }
}

/// Fetches `layer` from `source` and unpacks it as the cache directory
/// `host`: into a temp dir beside it, renamed into place (a half-restored
/// cache is never seen; one another step made first is kept).
fn restore_mount(store: &Store, source: &Source, layer: &Descriptor, host: &Path) -> Result<()> {
    source.fetch(store, std::slice::from_ref(layer))?;
    let parent = host.parent().unwrap_or(Path::new("."));
    let io_err = |action, path: &Path, source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(parent).map_err(|e| io_err("create", parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(parent)
        .map_err(|e| io_err("create a temp dir in", parent, e))?;
    let dir = tmp.path().join("dir");
    std::fs::create_dir(&dir).map_err(|e| io_err("create", &dir, e))?;
    crate::image::layer_bytes::unpack_layer(store, layer, None, &dir, &ExtractOptions::default())?;
    match std::fs::rename(&dir, host) {
        Ok(()) => Ok(()),
        Err(_) if host.is_dir() => Ok(()),
        Err(e) => Err(io_err("rename into", host, e)),
    }
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sources.iter().map(|(s, _)| s.name()))
            .finish()
    }
}

fn problem_text(p: &Problem) -> &str {
    match p {
        Problem::Unreachable(s) | Problem::Corrupt(s) => s,
    }
}

/// What one build's steps gave, for the exports: every store key looked
/// up or computed, with its result.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    entries: Mutex<Vec<(RecordKey, State)>>,
}

impl Seen {
    /// Forgets everything (a solve that is run again records its own).
    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub(crate) fn add(&self, key: RecordKey, state: &State) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, State::clone(state)));
    }

    /// The entries `mode` selects: every one (max), or those of `chain`,
    /// the steps the final image is built of (min). Each key once; steps
    /// that made the empty state (`FROM scratch`) are left out.
    fn select(&self, mode: CacheMode, chain: &HashSet<RecordKey>) -> Vec<(RecordKey, State)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashSet::new();
        entries
            .iter()
            .filter(|(key, _)| seen.insert(*key))
            .filter(|(key, _)| mode == CacheMode::Max || chain.contains(key))
            .filter(|(_, state)| !state.layers.is_empty() || !state.added.is_empty())
            .cloned()
            .collect()
    }
}

/// The inline cache to write into the image config of `last` (the
/// field's name and value), or `None` when no `--cache-to` is inline.
pub(crate) fn inline_field(
    exports: &[CacheExport],
    seen: &Seen,
    chain: &HashSet<RecordKey>,
    last: &StateData,
) -> Option<(&'static str, serde_json::Value)> {
    exports
        .iter()
        .find(|e| e.destination == CacheDestination::Inline)?;
    let selected = seen.select(CacheMode::Min, chain);
    let doc = format::inline_doc(&selected, last);
    serde_json::to_value(doc)
        .ok()
        .map(|v| (format::INLINE_FIELD, v))
}

/// What exporting the cache did, for the build's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExportReport {
    /// The `--cache-to` destination, as given.
    pub destination: String,
    pub entries: usize,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
}

/// Writes the entries `export` selects (`chain`: the store keys of the
/// final stage's steps, for `mode=min`). The caller decides whether a
/// failure fails the build (`ignore-error`).
pub(crate) fn export(
    store: &Store,
    export: &CacheExport,
    seen: &Seen,
    chain: &HashSet<RecordKey>,
    imports: &Imports,
) -> Result<CacheExportReport> {
    let selected = seen.select(export.mode, chain);
    let report = |destination: String, entries: usize, pushed: Option<&buildr_oci::PushReport>| {
        CacheExportReport {
            destination,
            entries,
            blobs_uploaded: pushed.map_or(0, |p| p.uploaded),
            bytes_uploaded: pushed.map_or(0, |p| p.bytes_uploaded),
        }
    };
    let encode = || -> Result<Vec<format::Encoded>> {
        let compress = export.compression.options();
        let mut out = selected
            .iter()
            .map(|(key, state)| format::encode(store, key, state, &compress))
            .collect::<Result<Vec<_>>>()?;
        let selections = imports
            .selections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (id, bytes) in &selections {
            out.push(format::encode_selection(store, id, bytes)?);
        }
        if export.mounts {
            let root = store.root().join("cache").join("mounts");
            for id in imports.mounts_used() {
                let dir = root.join(&id);
                if dir.is_dir() {
                    out.push(format::encode_mount(store, &id, &dir, &compress)?);
                }
            }
        }
        Ok(out)
    };
    match &export.destination {
        // Written into the image config by `inline_field`, before the image.
        CacheDestination::Inline => Ok(report("inline".into(), selected.len(), None)),
        CacheDestination::Registry(reference) => {
            let encoded = encode()?;
            let client = crate::registry::Registry::from_env()?;
            let origins = imports.layer_origins(store, selected.iter().map(|(_, s)| &**s))?;
            let pushed = registry::push(client.client(), store, reference, &encoded, &origins)?;
            Ok(report(reference.clone(), encoded.len(), Some(&pushed)))
        }
        CacheDestination::Local(dir) => {
            let encoded = encode()?;
            imports
                .layer_origins(store, selected.iter().map(|(_, s)| &**s))?
                .fetch_all(store)?;
            local::write(store, dir, &encoded)?;
            Ok(report(dir.display().to_string(), encoded.len(), None))
        }
    }
}

/// What [`prune_registry_cache`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePruneReport {
    /// Entries of the cache (tags `TAG-...`) looked at.
    pub entries: usize,
    /// The tags of the entries deleted.
    pub deleted: Vec<String>,
}

/// Deletes the entries of the registry cache `reference` last exported
/// more than `keep` ago (each export writes an entry's time again, so what
/// builds still export stays). Entries without a time, and tags that are
/// not entries of this cache, are left alone. The registry must allow
/// deletes; its own garbage collection frees the blobs.
pub fn prune_registry_cache(
    reference: &str,
    keep: std::time::Duration,
) -> Result<CachePruneReport> {
    let (repo, tag) = registry::cache_repository(reference)?;
    let client = crate::registry::Registry::from_env()?;
    let client = client.client();
    let fail = |operation, e| Error::Registry {
        operation,
        reference: reference.to_owned(),
        source: Box::new(e),
    };
    let prefix = format!("{tag}-");
    let tags: Vec<String> = client
        .list_tags(&repo)
        .map_err(|e| fail("list the tags of", e))?
        .into_iter()
        .filter(|t| t.starts_with(&prefix))
        .collect();
    let cutoff = crate::ops::unix_now().saturating_sub(keep.as_secs() as i64);
    let mut report = CachePruneReport {
        entries: tags.len(),
        deleted: Vec::new(),
    };
    for t in tags {
        let entry = buildr_oci::Reference::parse(&format!("{}:{t}", repo.repository()))?;
        let Some(found) = client
            .find_manifest(&entry)
            .map_err(|e| fail("read cache entry of", e))?
        else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<buildr_oci::Manifest>(&found.bytes) else {
            continue;
        };
        let ours = [
            format::ENTRY_CONFIG,
            format::MOUNT_CONFIG,
            format::SELECTION_CONFIG,
        ]
        .contains(&manifest.config.media_type.as_str());
        let created = manifest
            .annotations
            .as_ref()
            .and_then(|a| a.get(format::CREATED_ANNOTATION))
            .and_then(|c| crate::image::time::parse_rfc3339(c));
        if ours && created.is_some_and(|c| c < cutoff) {
            client
                .delete_manifest(&repo, &found.digest)
                .map_err(|e| fail("delete cache entry of", e))?;
            report.deleted.push(t);
        }
    }
    Ok(report)
}
