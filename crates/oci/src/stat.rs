//! One `lstat` and one xattr listing per file, cached in a small value.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rustix::fs::{lgetxattr, lgetxattr_query, llistxattr, llistxattr_query};

/// The file types a layer can carry (sockets are skipped, as docker does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
    Socket,
}

/// What a layer needs from `lstat`, read once per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub rdev: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

impl Stat {
    pub(crate) fn from_metadata(meta: &Metadata) -> Stat {
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::Char
        } else if ft.is_block_device() {
            Kind::Block
        } else if ft.is_socket() {
            Kind::Socket
        } else {
            Kind::File
        };
        Stat {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            rdev: meta.rdev(),
            dev: meta.dev(),
            ino: meta.ino(),
            nlink: meta.nlink(),
        }
    }
}

/// Extended attributes by name, sorted so layers are deterministic.
pub(crate) type Xattrs = BTreeMap<String, Vec<u8>>;

/// Reads every xattr of `path` without following a final symlink.
///
/// Names that are not UTF-8 cannot be carried in a PAX record and are
/// skipped; `security.selinux` is the host's label, not the image's, and is
/// skipped too (as BuildKit does).
pub(crate) fn read_xattrs(path: &Path) -> io::Result<Xattrs> {
    let mut out = Xattrs::new();
    let names = match list(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            tracing::warn!(path = %path.display(), "skipping xattr with a non-utf-8 name");
            continue;
        };
        if name == "security.selinux" {
            continue;
        }
        match get(path, name) {
            Ok(value) => {
                out.insert(name.to_owned(), value);
            }
            // Removed between list and get.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NODATA.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn is_unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error())
}

fn list(path: &Path) -> io::Result<Vec<u8>> {
    loop {
        let len = llistxattr_query(path)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len];
        match llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn get(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    loop {
        let len = lgetxattr_query(path, name)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len];
        match lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
