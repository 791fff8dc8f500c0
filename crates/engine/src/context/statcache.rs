//! The persistent stat cache: `(dev, inode)` plus size, mtime, ctime and mode
//! map to the blake3 of a file's content, so an unchanged file is not read
//! again by the next build.
//!
//! The file is `<root>/cache/context-stat/<blake3(context path)>.bin`: a
//! magic, fixed-size records, and a blake3 trailer over everything before
//! it. It is loaded once per build and saved at the end through a temp file,
//! `fsync` and `rename`; a file that does not check out is ignored (and
//! rebuilt), never an error.
//!
//! Racy-git rule: a file modified within [`RACY_WINDOW_NS`] of the save can
//! still change without its mtime moving (coarse timestamps), so such
//! entries are not written; the next build hashes those files again.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::Stat;

use super::atomic_write;
use crate::error::Result;

const MAGIC: &[u8; 8] = b"BRCTXST1";
const RECORD_LEN: usize = 8 * 6 + 32;
/// Entries whose mtime is this close to the save time are not persisted.
pub const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// What a file's content hash is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub mode: u32,
}

impl FileStamp {
    pub(crate) fn of(stat: &Stat) -> FileStamp {
        FileStamp {
            size: stat.st_size as u64,
            mtime_ns: stat
                .st_mtime
                .saturating_mul(1_000_000_000)
                .saturating_add(stat.st_mtime_nsec as i64),
            ctime_ns: stat
                .st_ctime
                .saturating_mul(1_000_000_000)
                .saturating_add(stat.st_ctime_nsec as i64),
            mode: stat.st_mode,
        }
    }
}

/// A file: `(dev, inode)`.
type Key = (u64, u64);

/// Above this many entries, a save keeps only those this build used, so
/// files deleted long ago do not stay in the cache forever.
const MAX_ENTRIES: usize = 1 << 20;

/// The hash of a file's content and the stamp it is valid for.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Key,
    stamp: FileStamp,
    hash: [u8; 32],
}

/// The entries hashed by this build: a vector, and a table of positions in
/// it hashed by key (5 bytes a bucket; a map of whole entries cost 96, and
/// a map has up to twice as many buckets as entries).
#[derive(Debug, Default)]
struct Fresh {
    entries: Vec<Entry>,
    index: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Fresh {
    fn hash(hasher: &hashbrown::DefaultHashBuilder, key: Key) -> u64 {
        std::hash::BuildHasher::hash_one(hasher, key)
    }

    /// Where the entry of `key` (whose hash is `hash`) is in `entries`.
    fn position(&self, hash: u64, key: Key) -> Option<usize> {
        let idx = self.index.find(hash, |&idx| {
            self.entries.get(idx as usize).is_some_and(|e| e.key == key)
        })?;
        Some(*idx as usize)
    }

    fn get(&self, key: Key) -> Option<&Entry> {
        let idx = self.position(Fresh::hash(&self.hasher, key), key)?;
        self.entries.get(idx)
    }

    fn insert(&mut self, entry: Entry) {
        let hash = Fresh::hash(&self.hasher, entry.key);
        if let Some(idx) = self.position(hash, entry.key) {
            self.entries[idx] = entry;
            return;
        }
        let Ok(idx) = u32::try_from(self.entries.len()) else {
            // Past 4 billion files: not remembered, hashed again.
            return;
        };
        self.entries.push(entry);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hash, idx, |&idx| {
            let key = entries.get(idx as usize).map_or((0, 0), |e| e.key);
            Fresh::hash(hasher, key)
        });
    }

    /// The entries in key order.
    fn sorted(&self) -> Vec<&Entry> {
        let mut sorted: Vec<&Entry> = self.entries.iter().collect();
        sorted.sort_unstable_by_key(|entry| entry.key);
        sorted
    }
}

/// The stat cache of one context, shared by the hashing threads.
///
/// What was loaded stays a sorted vector, read without a lock (80 bytes an
/// entry; a hash map of the same took twice that once its spare buckets
/// are counted, and a lock per lookup); what this build hashes goes to a
/// small map beside it. A save merges the two.
#[derive(Debug, Default)]
pub(crate) struct StatCache {
    /// As loaded, sorted by key.
    loaded: Vec<Entry>,
    /// Parallel to `loaded`: looked up by this build.
    used: Vec<AtomicBool>,
    /// Hashed by this build (and stable while read).
    fresh: Mutex<Fresh>,
    /// Files whose content was read and hashed.
    pub(crate) hashed: AtomicU64,
    /// Files answered from the cache.
    pub(crate) hits: AtomicU64,
    /// Whether the loaded file was unusable.
    pub(crate) discarded: bool,
    /// The trailer of the file as loaded (the blake3 of its body): a save
    /// that would write the same body is skipped, so a no-op build writes
    /// and fsyncs nothing here.
    loaded_body: Option<[u8; 32]>,
}

impl StatCache {
    /// Loads `path`, or starts empty when it is missing or does not check out.
    pub(crate) fn load(path: &Path) -> StatCache {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(_) => return StatCache::default(),
        };
        match decode(file) {
            Some((loaded, body)) => StatCache {
                used: loaded.iter().map(|_| AtomicBool::new(false)).collect(),
                loaded,
                loaded_body: Some(body),
                ..StatCache::default()
            },
            None => {
                tracing::debug!(path = %path.display(), "ignoring corrupt context stat cache");
                StatCache {
                    discarded: true,
                    ..StatCache::default()
                }
            }
        }
    }

    /// The cached content hash of the file `stat` describes, if still valid.
    pub(crate) fn get(&self, stat: &Stat) -> Option<[u8; 32]> {
        let key = (stat.st_dev, stat.st_ino);
        let stamp = FileStamp::of(stat);
        let hit = match self.loaded.binary_search_by_key(&key, |entry| entry.key) {
            Ok(idx) if self.loaded[idx].stamp == stamp => {
                self.used[idx].store(true, Ordering::Relaxed);
                Some(self.loaded[idx].hash)
            }
            _ => {
                let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
                fresh
                    .get(key)
                    .filter(|entry| entry.stamp == stamp)
                    .map(|entry| entry.hash)
            }
        };
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Counts a freshly computed content hash and, when the file was
    /// `stable` while read, remembers it.
    pub(crate) fn put(&self, stat: &Stat, hash: [u8; 32], stable: bool) {
        self.hashed.fetch_add(1, Ordering::Relaxed);
        if !stable {
            return;
        }
        let key = (stat.st_dev, stat.st_ino);
        let entry = Entry {
            key,
            stamp: FileStamp::of(stat),
            hash,
        };
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        fresh.insert(entry);
    }

    /// Writes the cache atomically, leaving out racy entries (mtime within
    /// [`RACY_WINDOW_NS`] of `now_ns`) and, past [`MAX_ENTRIES`], entries
    /// this build did not use. Nothing is written when the body would be
    /// the one loaded.
    pub(crate) fn save(&self, path: &Path, now_ns: i128) -> Result<()> {
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = fresh.sorted();
        let total = self.loaded.len() + fresh.len();
        let only_used = total > MAX_ENTRIES;
        // Nothing new and nothing to drop: the body would be the one
        // loaded (its entries were not racy when saved, and time only
        // moves them further from the window).
        if fresh.is_empty() && !only_used && self.loaded_body.is_some() {
            return Ok(());
        }
        let kept = || {
            merged(&self.loaded, &fresh)
                .filter(|(_, entry)| now_ns - i128::from(entry.stamp.mtime_ns) >= RACY_WINDOW_NS)
                .filter(|(idx, _)| !only_used || idx.is_none_or(|idx| self.was_used(idx)))
                .map(|(_, entry)| entry)
        };
        let count = kept().count() as u64;
        let mut body = blake3::Hasher::new();
        emit(&mut body, count, kept()).map_err(|source| crate::error::Error::Io {
            action: "hash",
            path: path.to_path_buf(),
            source,
        })?;
        let body = *body.finalize().as_bytes();
        if self.loaded_body == Some(body) {
            return Ok(());
        }
        atomic_write(path, |file| {
            let mut out = BufWriter::new(file);
            emit(&mut out, count, kept())?;
            out.write_all(&body)?;
            out.flush()
        })
    }

    /// Whether the loaded entry at `idx` was used by this build.
    fn was_used(&self, idx: usize) -> bool {
        self.used
            .get(idx)
            .is_some_and(|used| used.load(Ordering::Relaxed))
    }
}

/// The loaded entries not replaced by a fresh one, and the fresh ones, in
/// key order; a loaded entry comes with its index.
fn merged<'a>(
    loaded: &'a [Entry],
    fresh: &'a [&'a Entry],
) -> impl Iterator<Item = (Option<usize>, &'a Entry)> + 'a {
    let mut old = loaded.iter().enumerate().peekable();
    let mut new = fresh.iter().copied().peekable();
    std::iter::from_fn(move || {
        let order = match (old.peek(), new.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((_, a)), Some(b)) => a.key.cmp(&b.key),
        };
        if order == std::cmp::Ordering::Equal {
            // The fresh hash replaces the loaded one.
            old.next();
        }
        let take_old = order == std::cmp::Ordering::Less;
        if take_old {
            old.next().map(|(idx, entry)| (Some(idx), entry))
        } else {
            new.next().map(|entry| (None, entry))
        }
    })
}

/// Writes the body of a cache file: magic, count, records.
fn emit<'a>(
    out: &mut impl Write,
    count: u64,
    entries: impl Iterator<Item = &'a Entry>,
) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&count.to_le_bytes())?;
    let mut record = [0u8; RECORD_LEN];
    for Entry { key, stamp, hash } in entries {
        let words = [
            key.0,
            key.1,
            stamp.size,
            stamp.mtime_ns as u64,
            stamp.ctime_ns as u64,
            u64::from(stamp.mode),
        ];
        for (slot, word) in record.chunks_exact_mut(8).zip(words) {
            slot.copy_from_slice(&word.to_le_bytes());
        }
        record[48..].copy_from_slice(hash);
        out.write_all(&record)?;
    }
    Ok(())
}

/// Reads a cache file as it streams in: its entries (sorted by key, or the
/// file is refused) and its trailer. `None` when anything does not check
/// out: magic, count against length, order, trailer.
fn decode(file: std::fs::File) -> Option<(Vec<Entry>, [u8; 32])> {
    let len = file.metadata().ok()?.len();
    let mut input = BufReader::with_capacity(64 * 1024, file);
    let mut hasher = blake3::Hasher::new();
    let mut head = [0u8; 16];
    input.read_exact(&mut head).ok()?;
    hasher.update(&head);
    if &head[..8] != MAGIC {
        return None;
    }
    let count = u64::from_le_bytes(head[8..].try_into().ok()?);
    if count.checked_mul(RECORD_LEN as u64)?.checked_add(16 + 32)? != len {
        return None;
    }
    let mut entries = Vec::with_capacity(usize::try_from(count).ok()?);
    let mut record = [0u8; RECORD_LEN];
    for _ in 0..count {
        input.read_exact(&mut record).ok()?;
        hasher.update(&record);
        let word =
            |i: usize| u64::from_le_bytes(record[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let entry = Entry {
            key: (word(0), word(1)),
            stamp: FileStamp {
                size: word(2),
                mtime_ns: word(3) as i64,
                ctime_ns: word(4) as i64,
                mode: u32::try_from(word(5)).ok()?,
            },
            hash: record[48..].try_into().ok()?,
        };
        if entries
            .last()
            .is_some_and(|last: &Entry| last.key >= entry.key)
        {
            return None;
        }
        entries.push(entry);
    }
    let mut trailer = [0u8; 32];
    input.read_exact(&mut trailer).ok()?;
    (hasher.finalize().as_bytes() == &trailer).then_some((entries, trailer))
}

/// Where the cache files of the context at `context_dir` live under the
/// store root: `<root>/cache/context-stat/<blake3(abs path)>`.
pub(crate) fn cache_base(store_root: &Path, context_dir: &Path) -> PathBuf {
    let key = blake3::hash(context_dir.as_os_str().as_encoded_bytes());
    store_root
        .join("cache")
        .join("context-stat")
        .join(key.to_hex().as_str())
}

#[cfg(test)]
mod tests {
    use super::{RACY_WINDOW_NS, StatCache};

    fn stat_of(path: &std::path::Path) -> rustix::fs::Stat {
        rustix::fs::lstat(path).expect("lstat")
    }

    #[test]
    fn fresh_and_loaded_entries_merge_and_an_unchanged_cache_is_not_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let [a, b, c] = ["a", "b", "c"].map(|n| {
            let path = dir.path().join(n);
            std::fs::write(&path, n).expect("write");
            path
        });
        // a is old: never racy.
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&a)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("set mtime");
        let file = dir.path().join("cache.bin");
        let later = i128::MAX / 2;
        let first = StatCache::load(&file);
        first.put(&stat_of(&a), [1; 32], true);
        first.put(&stat_of(&b), [2; 32], true);
        first.put(&stat_of(&c), [3; 32], false);
        // Hashed earlier in the same build: answered without a read.
        assert_eq!(first.get(&stat_of(&a)), Some([1; 32]));
        assert_eq!(first.get(&stat_of(&c)), None, "not stable, not kept");
        first.save(&file, later).expect("save");

        let second = StatCache::load(&file);
        assert!(!second.discarded);
        assert_eq!(second.get(&stat_of(&a)), Some([1; 32]));
        assert_eq!(second.get(&stat_of(&b)), Some([2; 32]));
        let saved = std::fs::metadata(&file).expect("stat").modified().ok();
        std::thread::sleep(std::time::Duration::from_millis(20));
        second.save(&file, later).expect("save");
        assert_eq!(
            std::fs::metadata(&file).expect("stat").modified().ok(),
            saved,
            "the same body is not written again"
        );

        // b rewritten: its fresh hash replaces the loaded one.
        std::fs::write(&b, "bb").expect("write");
        let third = StatCache::load(&file);
        assert_eq!(third.get(&stat_of(&b)), None);
        third.put(&stat_of(&b), [4; 32], true);
        third.put(&stat_of(&c), [5; 32], true);
        // Racy entries (modified within the window of the save) are left out.
        let now = {
            let st = stat_of(&c);
            i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec)
        };
        third.save(&file, now + RACY_WINDOW_NS / 2).expect("save");
        let fourth = StatCache::load(&file);
        assert_eq!(fourth.get(&stat_of(&a)), Some([1; 32]));
        assert_eq!(fourth.get(&stat_of(&c)), None, "racy");

        let mut bytes = std::fs::read(&file).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).expect("write");
        assert!(StatCache::load(&file).discarded);
    }
}
