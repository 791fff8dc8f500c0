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

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use super::atomic_write;
use super::fsx::EntryKind;
use super::walk::Node;
use crate::error::Result;

const RECORD_MAGIC: &[u8; 8] = b"BRCTXSL1";

/// Path -> checksum pairs, in the order a scan produces them.
pub(crate) type RecordEntries = Vec<(String, [u8; 32])>;

pub(crate) fn perm(mode: u32) -> u32 {
    mode & 0o7777
}

fn framed(hasher: &mut blake3::Hasher, bytes: &[u8]) {
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

fn link_sum(target: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[EntryKind::Symlink.tag()]);
    framed(&mut hasher, target);
    *hasher.finalize().as_bytes()
}

fn dir_header(mode: u32) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[EntryKind::Dir.tag()]);
    hasher.update(&perm(mode).to_le_bytes());
    hasher
}

/// The checksum of a hashed node; every entry's own checksum (a
/// directory's: its header only) goes into `record` under its path.
pub(crate) fn node_sum(node: &Node, record: &mut RecordEntries) -> [u8; 32] {
    let path = if node.rel.is_empty() {
        ".".to_owned()
    } else {
        node.rel.clone()
    };
    match node.kind {
        EntryKind::Dir => {
            record.push((path, *dir_header(node.stat.st_mode).finalize().as_bytes()));
            dir_sum(node.stat.st_mode, &node.children, record)
        }
        EntryKind::Symlink => {
            let sum = link_sum(node.link.as_deref().unwrap_or_default());
            record.push((path, sum));
            sum
        }
        _ => {
            let sum = file_sum(node.stat.st_mode, &node.content.unwrap_or_default());
            record.push((path, sum));
            sum
        }
    }
}

/// The checksum of a directory with permission bits from `mode` and the
/// (name-sorted) `children`.
pub(crate) fn dir_sum(mode: u32, children: &[Node], record: &mut RecordEntries) -> [u8; 32] {
    let mut hasher = dir_header(mode);
    for child in children {
        framed(&mut hasher, &child.name);
        hasher.update(&node_sum(child, record));
    }
    *hasher.finalize().as_bytes()
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

/// Path -> checksum of every entry a selection covers, sorted by path.
pub(crate) type Record = BTreeMap<String, [u8; 32]>;

/// The first difference between two records.
pub(crate) fn first_change(old: &Record, new: &Record) -> Option<Change> {
    let mut old_iter = old.iter().peekable();
    let mut new_iter = new.iter().peekable();
    loop {
        let change = match (old_iter.peek(), new_iter.peek()) {
            (None, None) => return None,
            (Some((path, _)), None) => (path.as_str(), ChangeKind::Removed),
            (None, Some((path, _))) => (path.as_str(), ChangeKind::Added),
            (Some((old_path, old_sum)), Some((new_path, new_sum))) => {
                match old_path.cmp(new_path) {
                    std::cmp::Ordering::Less => (old_path.as_str(), ChangeKind::Removed),
                    std::cmp::Ordering::Greater => (new_path.as_str(), ChangeKind::Added),
                    std::cmp::Ordering::Equal if old_sum != new_sum => {
                        (new_path.as_str(), ChangeKind::Modified)
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
            path: change.0.to_owned(),
            kind: change.1,
        });
    }
}

/// Writes a record atomically: magic, count, `(len, path, checksum)`
/// entries, blake3 trailer.
pub(crate) fn save_record(path: &Path, record: &Record) -> Result<()> {
    let mut out = Vec::with_capacity(16 + record.len() * 64);
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&(record.len() as u64).to_le_bytes());
    for (entry, sum) in record {
        out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        out.extend_from_slice(entry.as_bytes());
        out.extend_from_slice(sum);
    }
    let trailer = blake3::hash(&out);
    out.extend_from_slice(trailer.as_bytes());
    atomic_write(path, |file| file.write_all(&out))
}

/// Reads a record; `None` when missing or corrupt.
pub(crate) fn load_record(path: &Path) -> Option<Record> {
    let bytes = std::fs::read(path).ok()?;
    let body_len = bytes.len().checked_sub(32)?;
    let (body, trailer) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != trailer || !body.starts_with(RECORD_MAGIC) {
        return None;
    }
    let count = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    let mut rest = body.get(16..)?;
    let mut record = Record::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let entry = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
        let sum: [u8; 32] = rest.get(4 + len..36 + len)?.try_into().ok()?;
        record.insert(entry.to_owned(), sum);
        rest = &rest[36 + len..];
    }
    rest.is_empty().then_some(record)
}

#[cfg(test)]
mod tests {
    use super::{ChangeKind, Record, first_change};

    #[test]
    fn first_change_names_the_first_differing_path() {
        let old: Record = [
            ("a".into(), [1; 32]),
            ("b/c".into(), [2; 32]),
            ("d".into(), [3; 32]),
        ]
        .into();
        let mut new = old.clone();
        assert_eq!(first_change(&old, &new), None);
        new.insert("b/c".into(), [9; 32]);
        let change = first_change(&old, &new).expect("a change");
        assert_eq!(
            (change.path.as_str(), change.kind),
            ("b/c", ChangeKind::Modified)
        );
        assert_eq!(change.to_string(), "b/c changed");
        new.insert("b/a".into(), [0; 32]);
        assert_eq!(
            first_change(&old, &new).map(|c| c.to_string()),
            Some("b/a was added".into())
        );
        let mut fewer = old.clone();
        fewer.remove("a");
        assert_eq!(
            first_change(&old, &fewer).map(|c| c.to_string()),
            Some("a was removed".into())
        );
    }
}
