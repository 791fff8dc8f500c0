//! Descriptor-relative file access that never leaves the context root.
//!
//! Every path component is opened with `O_NOFOLLOW` relative to the
//! descriptor of its parent, so a symlink (or a directory swapped for one
//! while the build runs) is never traversed by the kernel. Symlinks met while
//! resolving a `COPY` source are followed by hand, scoped to the root the
//! way BuildKit does it: an absolute target restarts at the context root and
//! `..` never climbs above it. After each open the descriptor is checked
//! against the `lstat` that chose it (device and inode), so an entry
//! replaced between the two is refused instead of read.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, fstat, openat, readlinkat, statat};
use rustix::io::Errno;

/// Linux's limit on symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 40;

/// What an entry of the context is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    BlockDevice,
    CharDevice,
}

impl EntryKind {
    pub(crate) fn of(stat: &Stat) -> EntryKind {
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink,
            FileType::Fifo => EntryKind::Fifo,
            FileType::Socket => EntryKind::Socket,
            FileType::BlockDevice => EntryKind::BlockDevice,
            FileType::CharacterDevice => EntryKind::CharDevice,
            _ => EntryKind::File,
        }
    }

    /// Whether this is a FIFO, socket or device: never opened or read.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            EntryKind::Fifo | EntryKind::Socket | EntryKind::BlockDevice | EntryKind::CharDevice
        )
    }

    /// The content hash a socket stands for: as BuildKit, `COPY` makes a
    /// socket an empty regular file (nothing is read from it).
    pub(crate) fn socket_content() -> [u8; 32] {
        *blake3::hash(b"").as_bytes()
    }

    /// The name used in messages.
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "regular file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "named pipe (fifo)",
            EntryKind::Socket => "socket",
            EntryKind::BlockDevice => "block device",
            EntryKind::CharDevice => "character device",
        }
    }

    /// A stable tag mixed into checksums.
    pub(crate) fn tag(self) -> u8 {
        match self {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
            EntryKind::Fifo => b'p',
            EntryKind::Socket => b's',
            EntryKind::BlockDevice => b'b',
            EntryKind::CharDevice => b'c',
        }
    }
}

/// Why a descriptor-relative operation failed.
#[derive(Debug)]
pub(crate) enum FsError {
    /// A system call failed on the path.
    Io { action: &'static str, errno: Errno },
    /// The entry changed between `lstat` and `open`.
    Changed,
    /// Too many symlinks.
    Loop,
    /// A non-final component is not a directory.
    NotDir,
}

pub(crate) type FsResult<T> = Result<T, FsError>;

pub(crate) fn io(action: &'static str) -> impl FnOnce(Errno) -> FsError {
    move |errno| FsError::Io { action, errno }
}

/// `lstat` of `name` in `dir`.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> FsResult<Stat> {
    statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io("stat"))
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Opens the directory `name` in `dir` for reading, refusing symlinks, and
/// checks it is the directory `expect` described.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr, expect: &Stat) -> FsResult<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(dir, name, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::LOOP | Errno::NOTDIR => FsError::Changed,
        errno => FsError::Io {
            action: "open directory",
            errno,
        },
    })?;
    let now = fstat(&fd).map_err(io("stat"))?;
    if !same_file(&now, expect) {
        return Err(FsError::Changed);
    }
    Ok(fd)
}

/// Opens the regular file `name` in `dir` for reading without following a
/// symlink and without blocking on a FIFO swapped in, and checks it is the
/// file `expect` described.
pub(crate) fn open_file_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    expect: &Stat,
) -> FsResult<std::fs::File> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = openat(dir, name, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::LOOP => FsError::Changed,
        errno => FsError::Io {
            action: "open",
            errno,
        },
    })?;
    let now = fstat(&fd).map_err(io("stat"))?;
    if !same_file(&now, expect) || FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
        return Err(FsError::Changed);
    }
    Ok(std::fs::File::from(fd))
}

/// Reads the target of the symlink `name` in `dir`.
pub(crate) fn read_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> FsResult<Vec<u8>> {
    readlinkat(dir, name, Vec::new())
        .map(|target| target.into_bytes())
        .map_err(io("read link"))
}

/// Opens the root of a context: a directory, followed if the path itself is
/// a symlink (as `docker build <symlink>` does).
pub(crate) fn open_root(path: &std::path::Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// A path resolved inside the root.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The resolved path relative to the root, `/`-separated, `""` for the
    /// root itself; no component is a symlink except possibly the last
    /// (when not following).
    pub rel: String,
    /// The directory holding the entry (the root for the root itself).
    pub parent: OwnedFd,
    /// The entry's name in `parent`; `"."` for the root.
    pub name: Vec<u8>,
    pub stat: Stat,
}

/// Resolves the cleaned relative path `rel` (no `..`, no leading `/`) inside
/// `root`, following symlinks scoped to the root; the last component is
/// followed too when `follow_last` is set. `Ok(None)` when something on the
/// way does not exist.
pub(crate) fn resolve(
    root: BorrowedFd<'_>,
    rel: &str,
    follow_last: bool,
) -> FsResult<Option<Resolved>> {
    let dup = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned().map_err(|e| FsError::Io {
            action: "duplicate descriptor",
            errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
        })
    };
    // The stack of directories from the root: (name, fd).
    let mut stack: Vec<(Vec<u8>, OwnedFd)> = Vec::new();
    let mut pending: Vec<Vec<u8>> = components(rel.as_bytes());
    pending.reverse();
    let mut links = 0usize;
    let current = |stack: &Vec<(Vec<u8>, OwnedFd)>| -> FsResult<OwnedFd> {
        match stack.last() {
            Some((_, fd)) => dup(fd.as_fd()),
            None => dup(root),
        }
    };
    while let Some(name) = pending.pop() {
        if name == b".." {
            stack.pop();
            continue;
        }
        let is_last = pending.is_empty();
        let dir = current(&stack)?;
        let stat = match lstat_at(dir.as_fd(), OsStr::from_bytes(&name)) {
            Ok(stat) => stat,
            Err(FsError::Io {
                errno: Errno::NOENT,
                ..
            }) => return Ok(None),
            Err(FsError::Io {
                errno: Errno::NOTDIR,
                ..
            }) => return Err(FsError::NotDir),
            Err(e) => return Err(e),
        };
        let kind = EntryKind::of(&stat);
        if kind == EntryKind::Symlink && (!is_last || follow_last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(FsError::Loop);
            }
            let target = read_link_at(dir.as_fd(), OsStr::from_bytes(&name))?;
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            let mut parts = components(&target);
            parts.reverse();
            pending.extend(parts);
            continue;
        }
        if is_last {
            let rel = join_rel(
                stack
                    .iter()
                    .map(|(n, _)| n.as_slice())
                    .chain([name.as_slice()]),
            );
            return Ok(Some(Resolved {
                rel,
                parent: dir,
                name,
                stat,
            }));
        }
        if kind != EntryKind::Dir {
            return Err(FsError::NotDir);
        }
        let sub = open_dir_at(dir.as_fd(), OsStr::from_bytes(&name), &stat)?;
        stack.push((name, sub));
    }
    // Every component was consumed by `..` or there were none: the root, or
    // the directory the stack ends in.
    let rel = join_rel(stack.iter().map(|(n, _)| n.as_slice()));
    let (parent, name) = match stack.pop() {
        Some((name, _)) => {
            let parent = current(&stack)?;
            (parent, name)
        }
        None => (dup(root)?, b".".to_vec()),
    };
    let stat = lstat_at(parent.as_fd(), OsStr::from_bytes(&name))?;
    Ok(Some(Resolved {
        rel,
        parent,
        name,
        stat,
    }))
}

fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

fn join_rel<'a>(parts: impl Iterator<Item = &'a [u8]>) -> String {
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&String::from_utf8_lossy(part));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::fd::AsFd;

    use super::{FsError, lstat_at, open_dir_at, open_file_at, open_root, resolve};

    #[test]
    fn opens_refuse_symlinks_and_swapped_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("a")).expect("mkdir");
        std::fs::create_dir(dir.path().join("b")).expect("mkdir");
        std::fs::write(dir.path().join("f"), "x").expect("write");
        std::os::unix::fs::symlink("a", dir.path().join("link")).expect("symlink");
        let root = open_root(dir.path()).expect("root");
        let stat_a = lstat_at(root.as_fd(), OsStr::new("a")).expect("stat");
        let stat_f = lstat_at(root.as_fd(), OsStr::new("f")).expect("stat");
        assert!(open_dir_at(root.as_fd(), OsStr::new("a"), &stat_a).is_ok());
        // `b` is not the directory that was stat'ed (a swap): refused.
        assert!(matches!(
            open_dir_at(root.as_fd(), OsStr::new("b"), &stat_a),
            Err(FsError::Changed)
        ));
        // A symlink where a directory was: refused, never followed.
        assert!(matches!(
            open_dir_at(root.as_fd(), OsStr::new("link"), &stat_a),
            Err(FsError::Changed)
        ));
        assert!(matches!(
            open_file_at(root.as_fd(), OsStr::new("link"), &stat_f),
            Err(FsError::Changed)
        ));
        assert!(matches!(
            open_file_at(root.as_fd(), OsStr::new("a"), &stat_f),
            Err(FsError::Changed)
        ));
        assert!(open_file_at(root.as_fd(), OsStr::new("f"), &stat_f).is_ok());
        // Resolution: `..` stops at the root, symlinks are scoped to it.
        let hit = resolve(root.as_fd(), "link/../../f", true)
            .expect("resolve")
            .expect("found");
        assert_eq!(hit.rel, "f");
        let link = resolve(root.as_fd(), "link", false)
            .expect("resolve")
            .expect("found");
        assert_eq!(
            (link.rel.as_str(), link.name.as_slice()),
            ("link", b"link".as_slice())
        );
        assert!(
            resolve(root.as_fd(), "f/x", true).is_err(),
            "a file is not a directory"
        );
        assert!(
            resolve(root.as_fd(), "missing/x", true)
                .expect("resolve")
                .is_none()
        );
    }
}
