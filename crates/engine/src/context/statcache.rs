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

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// `(dev, inode)` -> the stamp the hash is valid for, and the hash.
type Entries = HashMap<(u64, u64), Entry>;

/// Above this many entries, a save keeps only those this build used, so
/// files deleted long ago do not stay in the cache forever.
const MAX_ENTRIES: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Entry {
    stamp: FileStamp,
    hash: [u8; 32],
    /// Looked up or computed by this build.
    used: bool,
}

/// The stat cache of one context, shared by the hashing threads.
#[derive(Debug, Default)]
pub(crate) struct StatCache {
    entries: Mutex<Entries>,
    /// Files whose content was read and hashed.
    pub(crate) hashed: AtomicU64,
    /// Files answered from the cache.
    pub(crate) hits: AtomicU64,
    /// Whether the loaded file was unusable.
    pub(crate) discarded: bool,
    /// Hash of the file as loaded: a save that would write the same bytes
    /// is skipped (a no-op build writes and fsyncs nothing here).
    loaded: Option<blake3::Hash>,
}

impl StatCache {
    /// Loads `path`, or starts empty when it is missing or does not check out.
    pub(crate) fn load(path: &Path) -> StatCache {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(_) => return StatCache::default(),
        };
        match decode(&bytes) {
            Some(entries) => StatCache {
                entries: Mutex::new(entries),
                loaded: Some(blake3::hash(&bytes)),
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
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(&key).filter(|entry| entry.stamp == stamp)?;
        entry.used = true;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.hash)
    }

    /// Counts a freshly computed content hash and, when the file was
    /// `stable` while read, remembers it.
    pub(crate) fn put(&self, stat: &Stat, hash: [u8; 32], stable: bool) {
        self.hashed.fetch_add(1, Ordering::Relaxed);
        if !stable {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Entry {
            stamp: FileStamp::of(stat),
            hash,
            used: true,
        };
        entries.insert((stat.st_dev, stat.st_ino), entry);
    }

    /// Writes the cache atomically, leaving out racy entries (mtime within
    /// [`RACY_WINDOW_NS`] of `now_ns`) and, past [`MAX_ENTRIES`], entries
    /// this build did not use.
    pub(crate) fn save(&self, path: &Path, now_ns: i128) -> Result<()> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let only_used = entries.len() > MAX_ENTRIES;
        let mut keep: Vec<_> = entries
            .iter()
            .filter(|(_, entry)| now_ns - i128::from(entry.stamp.mtime_ns) >= RACY_WINDOW_NS)
            .filter(|(_, entry)| entry.used || !only_used)
            .collect();
        keep.sort_by_key(|(key, _)| **key);
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + keep.len() * RECORD_LEN + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(keep.len() as u64).to_le_bytes());
        for ((dev, ino), Entry { stamp, hash, .. }) in keep {
            for word in [
                *dev,
                *ino,
                stamp.size,
                stamp.mtime_ns as u64,
                stamp.ctime_ns as u64,
                u64::from(stamp.mode),
            ] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(hash);
        }
        let trailer = blake3::hash(&out);
        out.extend_from_slice(trailer.as_bytes());
        drop(entries);
        if self.loaded == Some(blake3::hash(&out)) {
            return Ok(());
        }
        atomic_write(path, |file| file.write_all(&out))
    }
}

fn decode(bytes: &[u8]) -> Option<Entries> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, trailer) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != trailer || !body.starts_with(MAGIC) {
        return None;
    }
    let count = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    let records = body.get(16..)?;
    if records.len() as u64 != count.checked_mul(RECORD_LEN as u64)? {
        return None;
    }
    let mut entries = HashMap::with_capacity(records.len() / RECORD_LEN);
    for record in records.chunks_exact(RECORD_LEN) {
        let word =
            |i: usize| u64::from_le_bytes(record[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let stamp = FileStamp {
            size: word(2),
            mtime_ns: word(3) as i64,
            ctime_ns: word(4) as i64,
            mode: u32::try_from(word(5)).ok()?,
        };
        let hash: [u8; 32] = record[48..80].try_into().ok()?;
        let entry = Entry {
            stamp,
            hash,
            used: false,
        };
        entries.insert((word(0), word(1)), entry);
    }
    Some(entries)
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
