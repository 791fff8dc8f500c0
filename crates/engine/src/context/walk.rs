//! The context walker: a parallel, descriptor-relative scan of a directory
//! tree that applies `.dockerignore` decisions while it descends.
//!
//! Why not `walkdir` or the `ignore` crate: both walk by path, so a
//! directory swapped for a symlink between `readdir` and the descent is
//! entered through the symlink. Here each directory is opened with
//! `O_NOFOLLOW` relative to its parent's descriptor and checked against the
//! `lstat` that chose it, so the walk (and the reads of file content it
//! does for checksums) cannot leave the root. Siblings are visited in
//! parallel on the rayon pool. Measured on a 200k-file tree (400 dirs,
//! release build, 2 cores, warm cache), every entry `lstat`ed: this walker
//! 205-235 ms with `.dockerignore` matching, `ignore`'s parallel walker
//! (all filters off) ~200 ms, `walkdir` ~365 ms (~75 ms without `lstat`,
//! but the walk needs mode and size). Being as fast as the fastest
//! path-based option, the walker that cannot be raced out of the root wins.
//!
//! Excluded directories are pruned unless an exception may re-include
//! something below them ([`Decision::ExcludeButDescend`]); such a directory
//! is kept only if something below it is included. Symlinks are reported,
//! never followed. FIFOs, sockets and devices are reported by the walk and
//! never opened. A socket counts as an empty regular file (what BuildKit's
//! `COPY` makes of it); for the others a checksum (a `COPY` that needs them)
//! refuses them with an error naming the path. This is a deliberate difference: BuildKit's
//! context transfer (fsutil) recreates FIFOs and device nodes with `mknod`
//! on the receiving side; buildr's `COPY` writes no special files, and an
//! error beats a layer that silently lacks them (or a read that blocks).

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;
use rustix::fs::{Dir, Stat};

use super::fsx::{self, EntryKind, FsError};
use super::statcache::{FileStamp, StatCache};
use crate::dockerignore::{Decision, DockerIgnore};
use crate::error::{Error, Result};

/// One entry of a scanned tree.
#[derive(Debug)]
pub(crate) struct Node {
    pub name: Vec<u8>,
    pub rel: String,
    pub kind: EntryKind,
    pub stat: Stat,
    /// A file's content hash (when hashing).
    pub content: Option<[u8; 32]>,
    /// A symlink's target (when hashing).
    pub link: Option<Vec<u8>>,
    /// False for an excluded directory kept because an exception
    /// re-includes something below it.
    pub included: bool,
    /// False for a directory that could not be listed (walk only).
    pub readable: bool,
    pub children: Vec<Node>,
}

/// Settings of one scan.
pub(crate) struct Scan<'a> {
    pub ignore: &'a DockerIgnore,
    /// Where the context lives, for messages.
    pub root_path: &'a Path,
    /// When set, file contents are hashed (through this cache), symlink
    /// targets read, and unreadable or special entries are errors.
    pub hash: Option<&'a StatCache>,
}

impl Scan<'_> {
    pub(crate) fn error(&self, rel: &str, err: FsError) -> Error {
        let path = self.root_path.join(rel);
        match err {
            FsError::Io { action, errno } => Error::Io {
                action,
                path,
                source: errno.into(),
            },
            FsError::Changed => Error::ContextChanged { path },
            FsError::Loop => Error::ContextSymlinkLoop { path },
            FsError::NotDir => Error::Io {
                action: "resolve",
                path,
                source: rustix::io::Errno::NOTDIR.into(),
            },
        }
    }

    /// Scans the directory `dir` (relative path `rel`, `""` for the root).
    pub(crate) fn dir(&self, dir: &OwnedFd, rel: &str) -> Result<Vec<Node>> {
        let names = match list(dir.as_fd()) {
            Ok(names) => names,
            Err(err) => return Err(self.error(rel, err)),
        };
        let mut nodes = names
            .into_par_iter()
            .map(|name| self.entry(dir.as_fd(), rel, name))
            .filter_map(Result::transpose)
            .collect::<Result<Vec<Node>>>()?;
        nodes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    fn entry(&self, dir: BorrowedFd<'_>, parent_rel: &str, name: Vec<u8>) -> Result<Option<Node>> {
        let rel = join(parent_rel, &name);
        let stat = match fsx::lstat_at(dir, OsStr::from_bytes(&name)) {
            Ok(stat) => stat,
            // Deleted since the listing: it is simply not part of the context.
            Err(FsError::Io {
                errno: rustix::io::Errno::NOENT,
                ..
            }) => return Ok(None),
            Err(err) => return Err(self.error(&rel, err)),
        };
        let kind = EntryKind::of(&stat);
        let decision = self.ignore.decide(&rel, kind == EntryKind::Dir);
        if decision == Decision::Exclude {
            return Ok(None);
        }
        let os_name = OsStr::from_bytes(&name).to_os_string();
        let os_name = os_name.as_os_str();
        let mut node = Node {
            name,
            rel,
            kind,
            stat,
            content: None,
            link: None,
            included: decision == Decision::Include,
            readable: true,
            children: Vec::new(),
        };
        match kind {
            EntryKind::Dir => {
                match fsx::open_dir_at(dir, os_name, &stat) {
                    Ok(sub) => node.children = self.dir(&sub, &node.rel)?,
                    Err(FsError::Io {
                        errno: rustix::io::Errno::ACCESS,
                        ..
                    }) if self.hash.is_none() => node.readable = false,
                    Err(err) => return Err(self.error(&node.rel, err)),
                }
                if !node.included && node.children.is_empty() {
                    return Ok(None);
                }
            }
            _ if !node.included => return Ok(None),
            EntryKind::File => {
                if let Some(cache) = self.hash {
                    node.content = Some(self.file_content(cache, dir, &node)?);
                }
            }
            EntryKind::Symlink => {
                if self.hash.is_some() {
                    let target =
                        fsx::read_link_at(dir, os_name).map_err(|e| self.error(&node.rel, e))?;
                    node.link = Some(target);
                }
            }
            EntryKind::Socket => {
                if self.hash.is_some() {
                    node.content = Some(EntryKind::socket_content());
                }
            }
            special => {
                if self.hash.is_some() {
                    return Err(Error::ContextSpecialFile {
                        path: self.root_path.join(&node.rel),
                        kind: special.describe(),
                    });
                }
            }
        }
        Ok(Some(node))
    }

    /// The blake3 of a regular file's content, from the cache when its stat
    /// is unchanged, else read through a verified descriptor.
    pub(crate) fn file_content(
        &self,
        cache: &StatCache,
        dir: BorrowedFd<'_>,
        node: &Node,
    ) -> Result<[u8; 32]> {
        hash_file(cache, dir, &node.name, &node.stat).map_err(|e| match e {
            HashError::Fs(err) => self.error(&node.rel, err),
            HashError::Read(source) => Error::Io {
                action: "read",
                path: self.root_path.join(&node.rel),
                source,
            },
        })
    }
}

pub(crate) enum HashError {
    Fs(FsError),
    Read(std::io::Error),
}

/// Hashes the regular file `name` in `dir` that `stat` describes.
pub(crate) fn hash_file(
    cache: &StatCache,
    dir: BorrowedFd<'_>,
    name: &[u8],
    stat: &Stat,
) -> Result<[u8; 32], HashError> {
    if let Some(hash) = cache.get(stat) {
        return Ok(hash);
    }
    let mut file = fsx::open_file_at(dir, OsStr::from_bytes(name), stat).map_err(HashError::Fs)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashError::Read(e)),
        };
        hasher.update(&buf[..n]);
    }
    // A file that changed while it was read is hashed but not remembered:
    // the next build reads it again.
    let after = rustix::fs::fstat(&file).map_err(|errno| {
        HashError::Fs(FsError::Io {
            action: "stat",
            errno,
        })
    })?;
    let hash = *hasher.finalize().as_bytes();
    let stable = FileStamp::of(&after) == FileStamp::of(stat);
    cache.put(stat, hash, stable);
    Ok(hash)
}

/// The names in a directory, without `.` and `..`.
fn list(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, FsError> {
    let entries = Dir::read_from(dir).map_err(fsx::io("list directory"))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(fsx::io("list directory"))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

pub(crate) fn join(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent.is_empty() {
        name.into_owned()
    } else {
        format!("{parent}/{name}")
    }
}
