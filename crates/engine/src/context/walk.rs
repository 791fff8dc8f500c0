//! The context walker: a parallel, descriptor-relative scan of a directory
//! tree that applies `.dockerignore` decisions while it descends.
//!
//! Why not `walkdir` or the `ignore` crate: both walk by path, so a
//! directory swapped for a symlink between `readdir` and the descent is
//! entered through the symlink. Here each directory is opened with
//! `O_NOFOLLOW` relative to its parent's descriptor and checked against the
//! `lstat` that chose it, so the walk (and the reads of file content it
//! does for checksums) cannot leave the root. The walk goes depth first
//! with an explicit stack, one directory at a time, its entries `lstat`ed
//! (and, for a checksum, hashed) in parallel on the rayon pool. Measured
//! when it still walked sibling directories in parallel too, on a
//! 200k-file tree (400 dirs, release build, 2 cores, warm cache), every
//! entry `lstat`ed: this walker 205-235 ms with `.dockerignore` matching,
//! `ignore`'s parallel walker (all filters off) ~200 ms, `walkdir` ~365 ms
//! (~75 ms without `lstat`, but the walk needs mode and size); not timed
//! alone since (a no-op build over 100k files, this walk plus stat-cache
//! lookups, takes ~200 ms). The walker that cannot be raced out of the
//! root wins.
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

use super::ContextEntry;
use super::checksum::{self, RecordBuf};
use super::fsx::{self, EntryKind, FsError};
use super::statcache::{FileStamp, StatCache};
use crate::dockerignore::{Decision, DockerIgnore};
use crate::error::{Error, Result};

/// Settings of one scan.
pub(crate) struct Scan<'a> {
    pub ignore: &'a DockerIgnore,
    /// Where the context lives, for messages.
    pub root_path: &'a Path,
}

/// An entry the `.dockerignore` does not exclude outright.
struct Seen {
    name: Vec<u8>,
    rel: String,
    kind: EntryKind,
    stat: Stat,
    /// False for a directory excluded but descended into, because an
    /// exception may re-include something below it.
    included: bool,
}

/// Why a visit stopped: the walk failed, or the visitor did.
#[derive(Debug)]
pub enum VisitError<E> {
    Walk(Error),
    Visitor(E),
}

impl<E: std::fmt::Display> std::fmt::Display for VisitError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VisitError::Walk(err) => err.fmt(f),
            VisitError::Visitor(err) => err.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for VisitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VisitError::Walk(err) => Some(err),
            VisitError::Visitor(err) => Some(err),
        }
    }
}

impl VisitError<Error> {
    pub(crate) fn flatten(self) -> Error {
        match self {
            VisitError::Walk(err) | VisitError::Visitor(err) => err,
        }
    }
}

/// Nothing of a scan outlives the directory being scanned but its result:
/// a walk returns flat entries, a checksum returns the sum and a compact
/// record, so memory follows the context's entry count at a few dozen bytes
/// each, not a tree of `stat`s.
/// A directory being summed by [`Scan::sum_dir`].
struct SumLevel {
    fd: OwnedFd,
    name: Vec<u8>,
    included: bool,
    hasher: blake3::Hasher,
    children: std::vec::IntoIter<SumChild>,
    /// Children folded into `hasher` so far.
    folded: usize,
    /// Where its entries start in the record.
    mark: (usize, usize),
}

/// A child of a [`SumLevel`], its checksum already made unless it is a
/// directory.
enum SumChild {
    Leaf {
        name: Vec<u8>,
        rel: String,
        sum: [u8; 32],
    },
    Dir(Seen),
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

    /// The names in `dir`, in byte order (the order of the walk and of a
    /// directory's checksum).
    fn names(&self, dir: BorrowedFd<'_>, rel: &str) -> Result<Vec<Vec<u8>>> {
        let mut names = list(dir).map_err(|err| self.error(rel, err))?;
        names.sort_unstable();
        Ok(names)
    }

    /// The entries of the directory `dir` the `.dockerignore` lets through,
    /// in byte order of name, `lstat`ed in parallel and each passed through
    /// `each` there too (the checksum hashes files in the same pass).
    fn children<T: Send>(
        &self,
        dir: BorrowedFd<'_>,
        rel: &str,
        each: impl Fn(Seen) -> Result<T> + Sync + Send,
    ) -> Result<Vec<T>> {
        self.names(dir, rel)?
            .into_par_iter()
            .map(|name| self.see(dir, rel, name)?.map(&each).transpose())
            .filter_map(Result::transpose)
            .collect()
    }

    /// `lstat`s `name` in `dir` and applies the `.dockerignore`; `None`
    /// when the entry is excluded or was deleted since the listing.
    fn see(&self, dir: BorrowedFd<'_>, parent_rel: &str, name: Vec<u8>) -> Result<Option<Seen>> {
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
        if decision == Decision::Exclude
            || (decision != Decision::Include && kind != EntryKind::Dir)
        {
            return Ok(None);
        }
        Ok(Some(Seen {
            name,
            rel,
            kind,
            stat,
            included: decision == Decision::Include,
        }))
    }

    /// Every entry below the directory `dir` (relative path `rel`, `""`
    /// for the root), parents before children, siblings in byte order of
    /// name. Opens no file; a directory it may not list is reported as
    /// unreadable, not an error.
    pub(crate) fn walk(&self, dir: &OwnedFd, rel: &str) -> Result<Vec<ContextEntry>> {
        let mut out = Vec::new();
        self.visit(dir, rel, &mut |entry| {
            out.push(entry);
            Ok::<(), Error>(())
        })
        .map_err(VisitError::flatten)?;
        Ok(out)
    }

    /// [`walk`](Self::walk), one entry at a time: memory follows the depth
    /// and the widest directory, not the context. Depth first without
    /// recursion (a context may nest deeper than a thread's stack); each
    /// directory's entries are `lstat`ed in parallel.
    pub(crate) fn visit<E>(
        &self,
        dir: &OwnedFd,
        rel: &str,
        each: &mut dyn FnMut(ContextEntry) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), VisitError<E>> {
        /// A directory being visited.
        struct Level {
            fd: OwnedFd,
            children: std::vec::IntoIter<Seen>,
            /// An excluded directory's own entry, sent only once something
            /// below it is.
            pending: Option<ContextEntry>,
        }
        let open = |fd: OwnedFd, rel: &str, pending| -> Result<Level> {
            let seen = self.children(fd.as_fd(), rel, Ok)?;
            Ok(Level {
                fd,
                children: seen.into_iter(),
                pending,
            })
        };
        let first = rustix::io::fcntl_dupfd_cloexec(dir, 0)
            .map_err(|errno| VisitError::Walk(self.error(rel, fsx::io("duplicate")(errno))))?;
        let mut stack = vec![open(first, rel, None).map_err(VisitError::Walk)?];
        while let Some(level) = stack.last_mut() {
            let Some(seen) = level.children.next() else {
                stack.pop();
                continue;
            };
            let mut entry = ContextEntry {
                path: seen.rel.clone(),
                kind: seen.kind,
                mode: seen.stat.st_mode,
                size: seen.stat.st_size as u64,
                included: seen.included,
                readable: true,
            };
            let sub = if seen.kind == EntryKind::Dir {
                let name = OsStr::from_bytes(&seen.name);
                match fsx::open_dir_at(level.fd.as_fd(), name, &seen.stat) {
                    Ok(sub) => Some(sub),
                    Err(FsError::Io {
                        errno: rustix::io::Errno::ACCESS,
                        ..
                    }) => {
                        entry.readable = false;
                        None
                    }
                    Err(err) => return Err(VisitError::Walk(self.error(&seen.rel, err))),
                }
            } else {
                None
            };
            if !seen.included {
                // Kept only for what an exception re-includes below it.
                if let Some(sub) = sub {
                    let level = open(sub, &seen.rel, Some(entry)).map_err(VisitError::Walk)?;
                    stack.push(level);
                }
                continue;
            }
            // Ancestors held back until now go first.
            for level in &mut stack {
                if let Some(parent) = level.pending.take() {
                    each(parent).map_err(VisitError::Visitor)?;
                }
            }
            each(entry).map_err(VisitError::Visitor)?;
            if let Some(sub) = sub {
                let level = open(sub, &seen.rel, None).map_err(VisitError::Walk)?;
                stack.push(level);
            }
        }
        Ok(())
    }

    /// The checksum of the directory `dir` (relative path `rel`, permission
    /// bits from `mode`) and its record: the directory's own entry, then
    /// every entry below it. Hashes file contents through `cache`, reads
    /// symlink targets; unreadable or special entries are errors.
    pub(crate) fn sum_dir(
        &self,
        cache: &StatCache,
        dir: &OwnedFd,
        rel: &str,
        mode: u32,
    ) -> Result<([u8; 32], RecordBuf)> {
        let mut record = RecordBuf::default();
        let first = rustix::io::fcntl_dupfd_cloexec(dir, 0)
            .map_err(|errno| self.error(rel, fsx::io("duplicate")(errno)))?;
        let mut root = self.sum_level(cache, first, rel, mode, Vec::new(), true, &mut record)?;
        // Depth first without recursion: a context may nest directories
        // deeper than a thread's stack. `stack` holds the directories below
        // the root being summed.
        let mut stack: Vec<SumLevel> = Vec::new();
        loop {
            let level = stack.last_mut().unwrap_or(&mut root);
            match level.children.next() {
                Some(SumChild::Leaf { name, rel, sum }) => {
                    checksum::framed(&mut level.hasher, &name);
                    level.hasher.update(&sum);
                    level.folded += 1;
                    record.push(&rel, &sum);
                }
                Some(SumChild::Dir(seen)) => {
                    let sub = fsx::open_dir_at(
                        level.fd.as_fd(),
                        OsStr::from_bytes(&seen.name),
                        &seen.stat,
                    )
                    .map_err(|err| self.error(&seen.rel, err))?;
                    let mode = seen.stat.st_mode;
                    let level = self.sum_level(
                        cache,
                        sub,
                        &seen.rel,
                        mode,
                        seen.name,
                        seen.included,
                        &mut record,
                    )?;
                    stack.push(level);
                }
                None => {
                    let Some(done) = stack.pop() else {
                        return Ok((*root.hasher.finalize().as_bytes(), record));
                    };
                    // An excluded directory counts only for what it
                    // re-includes.
                    if !done.included && done.folded == 0 {
                        record.truncate(done.mark);
                        continue;
                    }
                    let parent = stack.last_mut().unwrap_or(&mut root);
                    checksum::framed(&mut parent.hasher, &done.name);
                    parent.hasher.update(done.hasher.finalize().as_bytes());
                    parent.folded += 1;
                }
            }
        }
    }

    /// Opens a directory for [`Scan::sum_dir`]: its children listed,
    /// `lstat`ed and files hashed in parallel (the walk itself goes on in
    /// order), its header record pushed.
    #[allow(clippy::too_many_arguments)]
    fn sum_level(
        &self,
        cache: &StatCache,
        fd: OwnedFd,
        rel: &str,
        mode: u32,
        name: Vec<u8>,
        included: bool,
        record: &mut RecordBuf,
    ) -> Result<SumLevel> {
        let children = self.children(fd.as_fd(), rel, |seen| {
            if seen.kind == EntryKind::Dir {
                return Ok(SumChild::Dir(seen));
            }
            let sum = self.leaf_sum(cache, fd.as_fd(), &seen.name, &seen.rel, &seen.stat)?;
            Ok(SumChild::Leaf {
                name: seen.name,
                rel: seen.rel,
                sum,
            })
        })?;
        let hasher = checksum::dir_header(mode);
        let mark = record.mark();
        record.push(
            if rel.is_empty() { "." } else { rel },
            &hasher.finalize().into(),
        );
        Ok(SumLevel {
            fd,
            name,
            included,
            hasher,
            children: children.into_iter(),
            folded: 0,
            mark,
        })
    }

    /// The checksum of the non-directory `name` in `dir`.
    pub(crate) fn leaf_sum(
        &self,
        cache: &StatCache,
        dir: BorrowedFd<'_>,
        name: &[u8],
        rel: &str,
        stat: &Stat,
    ) -> Result<[u8; 32]> {
        match EntryKind::of(stat) {
            EntryKind::File => {
                let content = hash_file(cache, dir, name, stat).map_err(|e| match e {
                    HashError::Fs(err) => self.error(rel, err),
                    HashError::Read(source) => Error::Io {
                        action: "read",
                        path: self.root_path.join(rel),
                        source,
                    },
                })?;
                Ok(checksum::file_sum(stat.st_mode, &content))
            }
            EntryKind::Socket => Ok(checksum::file_sum(
                stat.st_mode,
                &EntryKind::socket_content(),
            )),
            EntryKind::Symlink => {
                let target = fsx::read_link_at(dir, OsStr::from_bytes(name))
                    .map_err(|err| self.error(rel, err))?;
                Ok(checksum::link_sum(&target))
            }
            special => Err(Error::ContextSpecialFile {
                path: self.root_path.join(rel),
                kind: special.describe(),
            }),
        }
    }
}

enum HashError {
    Fs(FsError),
    Read(std::io::Error),
}

/// Hashes the regular file `name` in `dir` that `stat` describes.
fn hash_file(
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
        return name.into_owned();
    }
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(&name);
    path
}
