//! The build cache: a [`CacheBackend`] over the store's records (blake3
//! cache key -> serialized stage state), with a file lock per key so that
//! two `buildr build` processes on one store run a shared step once.
//!
//! A record names the layer blobs and snapshots of its state; the store
//! returns it only while they all exist, so a pruned layer is a miss, never
//! a dangling hit.

use std::fs::{self, File};
use std::path::PathBuf;

use buildr_cache::{Record, Store};
use buildr_solver::{BoxError, CacheBackend, CacheKey, KeyLock};

use crate::ops::{State, StateData};

/// The file-backed cache of one store.
#[derive(Debug, Clone)]
pub(crate) struct BuildCache {
    store: Store,
    locks: PathBuf,
    /// `--no-cache`: never hit (results are still saved).
    no_lookup: bool,
}

impl BuildCache {
    pub(crate) fn new(store: Store, no_lookup: bool) -> std::io::Result<BuildCache> {
        let locks = store.root().join("cache").join("locks");
        fs::create_dir_all(&locks)?;
        Ok(BuildCache {
            store,
            locks,
            no_lookup,
        })
    }
}

/// The solver's key as the store's key: both are blake3, of the same bytes.
fn store_key(key: &CacheKey) -> buildr_cache::CacheKey {
    buildr_cache::CacheKey::from_bytes(*key.as_bytes())
}

impl CacheBackend<State> for BuildCache {
    fn lookup(&self, key: &CacheKey) -> Result<Option<State>, BoxError> {
        if self.no_lookup {
            return Ok(None);
        }
        let Some(record) = self.store.get_record(&store_key(key))? else {
            return Ok(None);
        };
        match serde_json::from_value::<StateData>(record.value) {
            Ok(state) => Ok(Some(State::new(state))),
            // A record from another version: recompute.
            Err(_) => Ok(None),
        }
    }

    fn save(&self, key: &CacheKey, output: &State) -> Result<(), BoxError> {
        let record = Record {
            blobs: output.layers.iter().map(|l| l.digest).collect(),
            snapshots: output.layers.iter().map(|l| l.snapshot.clone()).collect(),
            value: serde_json::to_value(&**output)?,
        };
        self.store.put_record(&store_key(key), &record)?;
        Ok(())
    }

    fn lock(&self, key: &CacheKey) -> Result<KeyLock<'_>, BoxError> {
        let path = self.locks.join(format!("{}.lock", key.to_hex()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Box::new(file))
    }
}
