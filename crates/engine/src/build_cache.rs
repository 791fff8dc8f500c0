//! The build cache: a [`CacheBackend`] over the store's records (blake3
//! cache key -> serialized stage state), with a file lock per key so that
//! two `buildr build` processes on one store run a shared step once.
//!
//! A record names the layer blobs and snapshots of its state; the store
//! returns it only while they all exist, so a pruned layer is a miss, never
//! a dangling hit.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Arc;

use buildr_cache::{Record, Store};
use buildr_solver::{BoxError, CacheBackend, CacheKey, KeyLock};

use crate::build::cache_io::{Imports, Seen};
use crate::ops::{State, StateData};

/// The file-backed cache of one store.
#[derive(Debug, Clone)]
pub(crate) struct BuildCache {
    store: Store,
    locks: PathBuf,
    /// `--no-cache`: never hit (results are still saved).
    no_lookup: bool,
    /// Mixed into every record key when the build writes layers unlike the
    /// default ones (`SOURCE_DATE_EPOCH` clamps mtimes inside them, another
    /// compression changes their blobs): such a build never reuses, nor
    /// overwrites, the records of a default build.
    salt: Option<blake3::Hash>,
    /// `--cache-from`: asked after the store misses.
    imports: Option<Arc<Imports>>,
    /// Every key this build looked up or computed, for `--cache-to`.
    seen: Arc<Seen>,
}

impl BuildCache {
    pub(crate) fn new(store: Store, no_lookup: bool) -> std::io::Result<BuildCache> {
        let locks = store.root().join("cache").join("locks");
        fs::create_dir_all(&locks)?;
        Ok(BuildCache {
            store,
            locks,
            no_lookup,
            salt: None,
            imports: None,
            seen: Arc::default(),
        })
    }

    /// Asks `imports` for what the store does not have.
    pub(crate) fn imports(mut self, imports: Arc<Imports>) -> BuildCache {
        self.imports = (!imports.is_empty()).then_some(imports);
        self
    }

    /// The keys and results of this build so far.
    pub(crate) fn seen(&self) -> Arc<Seen> {
        Arc::clone(&self.seen)
    }

    /// Keys records by `layer` as well, unless it is `default`.
    pub(crate) fn layer_options(
        mut self,
        layer: &buildr_oci::LayerOptions,
        default: &buildr_oci::LayerOptions,
    ) -> BuildCache {
        let describe = |o: &buildr_oci::LayerOptions| {
            format!(
                "{:?}/{:?}/{:?}",
                o.compress.compression, o.compress.level, o.source_date_epoch
            )
        };
        let this = describe(layer);
        self.salt = (this != describe(default)).then(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(b"buildr/layer-options/v1\0");
            hasher.update(this.as_bytes());
            hasher.finalize()
        });
        self
    }

    /// The solver's key as the store's key: both are blake3, of the same
    /// bytes, unless the layer options salt it.
    pub(crate) fn store_key(&self, key: &CacheKey) -> buildr_cache::RecordKey {
        match &self.salt {
            None => buildr_cache::RecordKey::from_bytes(*key.as_bytes()),
            Some(salt) => {
                let mut hasher = blake3::Hasher::new();
                hasher.update(salt.as_bytes());
                hasher.update(key.as_bytes());
                buildr_cache::RecordKey::from_bytes(*hasher.finalize().as_bytes())
            }
        }
    }
}

impl CacheBackend<State> for BuildCache {
    fn lookup(&self, key: &CacheKey) -> Result<Option<State>, BoxError> {
        if self.no_lookup {
            return Ok(None);
        }
        let key = self.store_key(key);
        let local = match self.store.get_record(&key)? {
            // A record from another version is a miss: recompute.
            Some(record) => serde_json::from_value::<StateData>(record.value)
                .ok()
                .map(State::new),
            None => None,
        };
        let found = match local {
            Some(state) => Some(state),
            None => self.imports.as_ref().and_then(|i| i.lookup(&key)),
        };
        if let Some(state) = &found {
            self.seen.add(key, state);
        }
        Ok(found)
    }

    fn save(&self, key: &CacheKey, output: &State) -> Result<(), BoxError> {
        let key = self.store_key(key);
        save_record(&self.store, &key, output)?;
        self.seen.add(key, output);
        Ok(())
    }

    fn prepare(&self, inputs: &[State]) -> Result<(), BoxError> {
        if let Some(imports) = &self.imports {
            for input in inputs {
                imports.materialize(&self.store, input)?;
            }
        }
        Ok(())
    }

    fn lock(&self, key: &CacheKey) -> Result<KeyLock<'_>, BoxError> {
        let path = self.locks.join(format!("{}.lock", key.to_hex()));
        Ok(Box::new(KeyFile::lock(path)?))
    }
}

/// Records `state` under `key` in `store`: the blobs of its layers that
/// are stored (a layer kept only as its snapshot has none) and their
/// snapshots.
pub(crate) fn save_record(
    store: &Store,
    key: &buildr_cache::RecordKey,
    state: &StateData,
) -> buildr_cache::Result<()> {
    let mut blobs = Vec::with_capacity(state.layers.len());
    for layer in &state.layers {
        if store.has_blob(&layer.digest)? {
            blobs.push(layer.digest);
        }
    }
    let value = serde_json::to_value(state).map_err(|e| buildr_cache::Error::CorruptRecord {
        key: *key,
        path: store.root().to_path_buf(),
        reason: format!("cannot serialize: {e}"),
    })?;
    let record = Record {
        blobs,
        snapshots: state.layers.iter().map(|l| l.snapshot.clone()).collect(),
        value,
    };
    store.put_record(key, &record)
}

/// A held per-key lock file. The holder removes the file before it lets
/// go, so lock files do not pile up (one per key ever built); a waiter
/// that wakes on a removed or replaced file opens the path again, so the
/// holder is always the one whose file is at the path.
#[derive(Debug)]
struct KeyFile {
    /// Holds the lock until dropped.
    _file: File,
    path: PathBuf,
}

impl KeyFile {
    fn lock(path: PathBuf) -> std::io::Result<KeyFile> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
            let held = file.metadata()?;
            match fs::metadata(&path) {
                Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => {
                    return Ok(KeyFile { _file: file, path });
                }
                // Released and removed (or replaced) while we waited.
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        // Removed while still locked; the lock goes with the descriptor.
        let _ = fs::remove_file(&self.path);
    }
}
