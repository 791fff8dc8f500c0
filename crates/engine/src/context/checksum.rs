//! Content checksums of context selections, and the per-path records that
//! explain a cache miss.
//!
//! The checksum of an entry is blake3 over its type and:
//! - a regular file: its permission bits (`0o7777`) and the blake3 of its
//!   content;
//! - a symlink: its target, never followed;
//! - a directory: its permission bits, then each included child in byte
//!   order of name, as the framed name and the child's checksum.
//!
//! Owners are left out (`COPY` resets them to 0:0 unless `--chown`, which
//! the op's definition carries), and so are mtime and ctime: a touched but
//! unchanged file keeps its checksum, so the solver still hits.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::atomic_write;
use super::fsx::EntryKind;
use crate::error::Result;

const RECORD_MAGIC: &[u8; 8] = b"BRCTXSL1";

pub(crate) fn perm(mode: u32) -> u32 {
    mode & 0o7777
}

pub(crate) fn framed(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// The checksum of a regular file with content hash `content`.
pub(crate) fn file_sum(mode: u32, content: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[EntryKind::File.tag()]);
    hasher.update(&perm(mode).to_le_bytes());
    hasher.update(content);
    *hasher.finalize().as_bytes()
}

/// The checksum of a symlink to `target`.
pub(crate) fn link_sum(target: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[EntryKind::Symlink.tag()]);
    framed(&mut hasher, target);
    *hasher.finalize().as_bytes()
}

/// A directory's checksum so far: its type and permission bits; each
/// included child follows, in byte order of name, as the framed name and
/// the child's checksum. Finalized before any child, it is the directory's
/// own entry in a record.
pub(crate) fn dir_header(mode: u32) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[EntryKind::Dir.tag()]);
    hasher.update(&perm(mode).to_le_bytes());
    hasher
}

/// Path -> checksum of every entry a selection covers, packed: each entry
/// is its path's length (`u32` LE), the path and the 32-byte checksum, in
/// the order the scan produced them. About 40 bytes plus the path per
/// entry, where a map of strings took four times that; it is sorted only
/// when a miss must be explained.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordBuf {
    bytes: Vec<u8>,
    count: usize,
}

impl RecordBuf {
    /// Where the record ends now, for [`truncate`](Self::truncate).
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.bytes.len(), self.count)
    }

    /// Drops what was pushed since `mark`.
    pub(crate) fn truncate(&mut self, (bytes, count): (usize, usize)) {
        self.bytes.truncate(bytes);
        self.count = count;
    }

    pub(crate) fn push(&mut self, path: &str, sum: &[u8; 32]) {
        self.bytes
            .extend_from_slice(&(path.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(path.as_bytes());
        self.bytes.extend_from_slice(sum);
        self.count += 1;
    }

    pub(crate) fn append(&mut self, other: RecordBuf) {
        if self.bytes.capacity() == 0 {
            *self = other;
            return;
        }
        self.bytes.extend_from_slice(&other.bytes);
        self.count += other.count;
    }

    /// How many entries (a path named by two sources counts twice).
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The entries in order. Stops at the first malformed entry, which
    /// only [`load_record`] could let in, and it checks them all.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8; 32])> {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            let (entry, tail) = split_entry(rest)?;
            rest = tail;
            Some(entry)
        })
    }

    /// The entries sorted by path, each path once.
    fn sorted(&self) -> Vec<(&[u8], &[u8; 32])> {
        let mut entries: Vec<_> = self.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        entries
    }
}

type Entry<'a> = (&'a [u8], &'a [u8; 32]);

fn split_entry(bytes: &[u8]) -> Option<(Entry<'_>, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let path = bytes.get(4..4 + len)?;
    let sum: &[u8; 32] = bytes.get(4 + len..36 + len)?.try_into().ok()?;
    Some(((path, sum), &bytes[36 + len..]))
}

/// How one path differs from the previous build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Removed,
}

/// The first path (in byte order) of a selection that differs from the
/// record of the previous build: why a `COPY` missed the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Relative to the context root; `.` for the root itself.
    pub path: String,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ChangeKind::Modified => write!(f, "{} changed", self.path),
            ChangeKind::Added => write!(f, "{} was added", self.path),
            ChangeKind::Removed => write!(f, "{} was removed", self.path),
        }
    }
}

/// The first difference (in byte order of path) between two records.
pub(crate) fn first_change(old: &RecordBuf, new: &RecordBuf) -> Option<Change> {
    let old = old.sorted();
    let new = new.sorted();
    let mut old_iter = old.iter().peekable();
    let mut new_iter = new.iter().peekable();
    loop {
        let change = match (old_iter.peek(), new_iter.peek()) {
            (None, None) => return None,
            (Some((path, _)), None) => (*path, ChangeKind::Removed),
            (None, Some((path, _))) => (*path, ChangeKind::Added),
            (Some((old_path, old_sum)), Some((new_path, new_sum))) => {
                match old_path.cmp(new_path) {
                    std::cmp::Ordering::Less => (*old_path, ChangeKind::Removed),
                    std::cmp::Ordering::Greater => (*new_path, ChangeKind::Added),
                    std::cmp::Ordering::Equal if old_sum != new_sum => {
                        (*new_path, ChangeKind::Modified)
                    }
                    std::cmp::Ordering::Equal => {
                        old_iter.next();
                        new_iter.next();
                        continue;
                    }
                }
            }
        };
        return Some(Change {
            path: String::from_utf8_lossy(change.0).into_owned(),
            kind: change.1,
        });
    }
}

/// Writes a record atomically ([`record_bytes`]).
pub(crate) fn save_record(path: &Path, record: &RecordBuf) -> Result<()> {
    let bytes = record_bytes(record);
    atomic_write(path, |file| {
        let mut out = BufWriter::new(file);
        out.write_all(&bytes)?;
        out.flush()
    })
}

/// A record as stored: magic, count, the packed entries, blake3 trailer
/// over everything before it.
pub(crate) fn record_bytes(record: &RecordBuf) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + record.bytes.len() + 32);
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&(record.count as u64).to_le_bytes());
    out.extend_from_slice(&record.bytes);
    let trailer = blake3::hash(&out);
    out.extend_from_slice(trailer.as_bytes());
    out
}

/// Reads a record; `None` when missing or corrupt (every entry is checked).
pub(crate) fn load_record(path: &Path) -> Option<RecordBuf> {
    parse_record(std::fs::read(path).ok()?)
}

/// A record from [`record_bytes`]' form; `None` when it is not one (every
/// entry is checked: these bytes may come from a cache).
pub(crate) fn parse_record(mut bytes: Vec<u8>) -> Option<RecordBuf> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, trailer) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != trailer || !body.starts_with(RECORD_MAGIC) {
        return None;
    }
    let count = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    let mut rest = body.get(16..)?;
    let mut seen = 0u64;
    while !rest.is_empty() {
        let (entry, tail) = split_entry(rest)?;
        std::str::from_utf8(entry.0).ok()?;
        rest = tail;
        seen += 1;
    }
    if seen != count {
        return None;
    }
    bytes.truncate(body_len);
    bytes.drain(..16);
    Some(RecordBuf {
        bytes,
        count: count as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::{ChangeKind, RecordBuf, first_change, load_record, save_record};

    fn record(entries: &[(&str, u8)]) -> RecordBuf {
        let mut record = RecordBuf::default();
        for (path, sum) in entries {
            record.push(path, &[*sum; 32]);
        }
        record
    }

    #[test]
    fn first_change_names_the_first_differing_path_in_byte_order() {
        // Scan order ("b" before "b/c" before "b-d") is not byte order.
        let old = record(&[("a", 1), ("b", 2), ("b/c", 3), ("b-d", 4)]);
        assert_eq!(first_change(&old, &old.clone()), None);
        let new = record(&[("a", 1), ("b", 2), ("b/c", 9), ("b-d", 5)]);
        let change = first_change(&old, &new).expect("a change");
        assert_eq!(
            (change.path.as_str(), change.kind),
            ("b-d", ChangeKind::Modified)
        );
        assert_eq!(change.to_string(), "b-d changed");
        let added = record(&[("a", 1), ("b", 2), ("b/a", 0), ("b/c", 3), ("b-d", 4)]);
        assert_eq!(
            first_change(&old, &added).map(|c| c.to_string()),
            Some("b/a was added".into())
        );
        let fewer = record(&[("b", 2), ("b/c", 3), ("b-d", 4)]);
        assert_eq!(
            first_change(&old, &fewer).map(|c| c.to_string()),
            Some("a was removed".into())
        );
    }

    #[test]
    fn a_saved_record_loads_back_and_a_damaged_one_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.bin");
        let saved = record(&[("src", 1), ("src/main.rs", 2), ("Cargo.toml", 3)]);
        save_record(&path, &saved).expect("save");
        let loaded = load_record(&path).expect("load");
        assert_eq!(loaded.len(), 3);
        assert!(loaded.iter().eq(saved.iter()));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(load_record(&path).is_none());
    }
}
