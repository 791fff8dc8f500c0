//! Where results are cached, shared between solves: the [`CacheBackend`]
//! trait and an in-memory implementation.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::event::VertexInfo;
use crate::key::CacheKey;
use crate::op::BoxError;

/// Held while a vertex with some key is being computed; dropping it releases
/// the key (a file lock, a mutex entry, ...).
pub type KeyLock<'a> = Box<dyn Send + 'a>;

/// A cache of vertex results shared by every solve that uses it, possibly at
/// the same time (threads here, processes for a file-backed store).
///
/// The solver, for a key it must compute: looks it up; on a miss takes
/// [`lock`](Self::lock), looks it up again (another solve may have just
/// saved it), and only then runs the op and [`save`](Self::save)s the result
/// before releasing the lock. So two solves that reach the same key run the
/// op once: one runs it, the other waits on the lock and then hits.
pub trait CacheBackend<O>: Send + Sync {
    /// The result saved under `key`, if any.
    fn lookup(&self, key: &CacheKey) -> Result<Option<O>, BoxError>;

    /// Saves `output` under `key`. Must be complete (durable, atomically
    /// visible) when it returns.
    fn save(&self, key: &CacheKey, output: &O) -> Result<(), BoxError>;

    /// Blocks until this caller holds the exclusive lock on `key`. The solver
    /// does not interrupt this wait on cancellation: a backend whose holders
    /// can hang (another process) should bound it itself.
    fn lock(&self, key: &CacheKey) -> Result<KeyLock<'_>, BoxError>;

    /// Makes `inputs` ready to be read by an op about to run on them: a
    /// backend whose lookups can return results that are not materialised
    /// yet (a hit in a remote cache names layers it has not fetched) does
    /// that here, once it is known that they are needed. The default does
    /// nothing.
    fn prepare(&self, inputs: &[O]) -> Result<(), BoxError> {
        let _ = inputs;
        Ok(())
    }

    /// Why `vertex` missed under `key`, if the backend can tell (e.g. from
    /// the nearest previous record for a vertex of that name or location).
    /// Carried in [`Event::Started`](crate::Event::Started); when it returns
    /// `None` the op's own [`explain_miss`](crate::Op::explain_miss) is used.
    fn explain_miss(&self, vertex: &VertexInfo, key: &CacheKey) -> Option<String> {
        let _ = (vertex, key);
        None
    }
}

/// A [`CacheBackend`] in memory, for tests and for embedders that need no
/// persistence. Share it between solves with an `Arc`.
pub struct MemoryBackend<O> {
    records: Mutex<HashMap<CacheKey, O>>,
    locked: Mutex<HashSet<CacheKey>>,
    released: Condvar,
}

impl<O> Default for MemoryBackend<O> {
    fn default() -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            locked: Mutex::new(HashSet::new()),
            released: Condvar::new(),
        }
    }
}

impl<O> fmt::Debug for MemoryBackend<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("records", &lock(&self.records).len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<O> MemoryBackend<O> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of saved results.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    /// True if nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every saved result.
    pub fn clear(&self) {
        lock(&self.records).clear();
    }
}

impl<O: Clone + Send + Sync> CacheBackend<O> for MemoryBackend<O> {
    fn lookup(&self, key: &CacheKey) -> Result<Option<O>, BoxError> {
        Ok(lock(&self.records).get(key).cloned())
    }

    fn save(&self, key: &CacheKey, output: &O) -> Result<(), BoxError> {
        lock(&self.records).insert(*key, output.clone());
        Ok(())
    }

    fn lock(&self, key: &CacheKey) -> Result<KeyLock<'_>, BoxError> {
        let mut locked = lock(&self.locked);
        while locked.contains(key) {
            locked = self
                .released
                .wait(locked)
                .unwrap_or_else(PoisonError::into_inner);
        }
        locked.insert(*key);
        Ok(Box::new(MemoryLock {
            locked: &self.locked,
            released: &self.released,
            key: *key,
        }))
    }
}

struct MemoryLock<'a> {
    locked: &'a Mutex<HashSet<CacheKey>>,
    released: &'a Condvar,
    key: CacheKey,
}

impl Drop for MemoryLock<'_> {
    fn drop(&mut self) {
        lock(self.locked).remove(&self.key);
        self.released.notify_all();
    }
}
