//! A tar stream (hostile: a user's `cp - CONTAINER:DIR`) extracted into a
//! container, or a container's tar into a host directory, as docker's
//! `cp` untars: chrooted into the root, so an entry's parent directories
//! are resolved inside it (a symlink among them is followed, `..` stops at
//! the root, an absolute target restarts there), missing parents are made
//! 0755, a directory is never replaced by a non-directory nor the other
//! way round, and modes and mtimes are kept.
//!
//! Every write is made on a directory descriptor reached without following
//! anything ([`Sink::dir`]), by `*at` calls that do not follow the last
//! component either (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`, `symlinkat`,
//! `AT_SYMLINK_NOFOLLOW`): an entry can never reach the host, whatever
//! symlinks the tar or the container holds. Entries with a `..` component,
//! a NUL byte or a name that is not UTF-8 are refused; device nodes are
//! skipped (a 0/0 one would be a whiteout in an upper dir), as are xattrs.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, chownat, fchmod, fchown,
    futimens, linkat, mkdirat, mknodat, openat, statat, symlinkat, unlinkat,
};
use rustix::io::Errno;
use tar::EntryType;

use super::mounted::MountedTree;
use super::tree::{Meta, RootTree, Tree, dir_at, lstat, on_kernel_fs, resolve};
use crate::error::{Error, Result};

/// Who owns what an extraction writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The caller (a copy to the host: docker's client never chowns).
    Leave,
    /// The tar's numeric uid and gid (`cp -a`).
    Keep,
    /// These ids (root of the container, docker's documented default).
    Set(u32, u32),
}

impl Ownership {
    fn new_dirs(self) -> Option<(u32, u32)> {
        match self {
            Ownership::Leave => None,
            Ownership::Keep => Some((0, 0)),
            Ownership::Set(uid, gid) => Some((uid, gid)),
        }
    }
}

/// Where an extraction writes: a tree to resolve and check names in, and
/// writable directories.
pub(crate) trait Sink {
    type Tree: Tree;
    /// The tree as it stands, for resolving parents and seeing what exists.
    fn tree(&self) -> &Self::Tree;
    /// A writable directory at resolved `parts`, missing ones made 0755
    /// (owned by `owner`).
    fn dir(&mut self, parts: &[String], owner: Option<(u32, u32)>) -> io::Result<OwnedFd>;
    /// Removes what the writable side has at `name` of `dir` (the
    /// directory at resolved `parts`; never a directory); `true` when a
    /// directory made there must hide the layers below it.
    fn clear(&mut self, parts: &[String], dir: &OwnedFd, name: &str) -> io::Result<bool>;
    /// Makes the directory `dir` hide the layers below it.
    fn mark_opaque(&self, dir: &OwnedFd) -> io::Result<()>;
    /// The writable directory holding the regular file `name` at `parts`,
    /// to hard-link it; `None` when it is only in a lower layer (copied).
    fn link_dir(&mut self, parts: &[String], name: &str) -> io::Result<Option<OwnedFd>>;
}

fn open_dir_nofollow(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn stat_nofollow(dir: impl AsFd, name: &str) -> io::Result<Option<Meta>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Meta::from_stat(&st))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn set_owner_mode(fd: impl AsFd, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    }
    // After chown, which clears setuid and setgid.
    fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(())
}

fn times(mtime: i64, nsec: i64) -> Timestamps {
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: nsec,
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

/// Makes directory `name` in `parent` (mode `mode`, owned by `owner`).
fn make_dir(
    parent: &OwnedFd,
    name: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<OwnedFd> {
    match mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let child = open_dir_nofollow(parent, name)?;
    set_owner_mode(&child, owner, mode)?;
    Ok(child)
}

/// Walks `parts` below `root` following nothing, making missing
/// directories 0755 (owned by `owner`). Refuses a directory on a kernel
/// filesystem: a running container's `/proc/sys` is the host kernel's,
/// whatever mounts the container has over it.
fn walk_making(root: &OwnedFd, parts: &[String], owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
    let mut dir = root.try_clone()?;
    for part in parts {
        dir = match open_dir_nofollow(&dir, part) {
            Ok(child) => child,
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                make_dir(&dir, part, 0o755, owner)?
            }
            Err(e) => return Err(e),
        };
        if on_kernel_fs(&dir) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "/{} is on a kernel filesystem: cp does not write there",
                    parts.join("/")
                ),
            ));
        }
    }
    Ok(dir)
}

/// Removes `name` of `dir` unless it is a directory (or missing).
fn unlink_non_dir(dir: &OwnedFd, name: &str) -> io::Result<()> {
    match stat_nofollow(dir, name)? {
        Some(meta) if !meta.is_dir() => Ok(unlinkat(dir, name, AtFlags::empty())?),
        _ => Ok(()),
    }
}

/// A directory the kernel shows whole: a running container's root, or a
/// host directory.
pub(crate) struct RootSink<'t> {
    pub tree: &'t RootTree,
}

impl Sink for RootSink<'_> {
    type Tree = RootTree;

    fn tree(&self) -> &RootTree {
        self.tree
    }

    fn dir(&mut self, parts: &[String], owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
        walk_making(self.tree.fd(), parts, owner)
    }

    fn clear(&mut self, _parts: &[String], dir: &OwnedFd, name: &str) -> io::Result<bool> {
        unlink_non_dir(dir, name)?;
        Ok(false)
    }

    fn mark_opaque(&self, _dir: &OwnedFd) -> io::Result<()> {
        Ok(())
    }

    fn link_dir(&mut self, parts: &[String], _name: &str) -> io::Result<Option<OwnedFd>> {
        self.dir(parts, None).map(Some)
    }
}

/// A stopped container: its upper dir over its image's layers, its
/// volumes and binds at their destinations. A directory of the layers
/// written into is first copied up (made in the upper dir with the
/// lower's mode, owner and mtime), as overlayfs would; below a mount's
/// destination, writes go to its source.
pub(crate) struct LayerSink<'t> {
    /// Upper dir over the lowers, mounts over them.
    pub tree: &'t MountedTree,
    pub upper: RootTree,
    /// `trusted.overlay.opaque`, or `user.overlay.opaque` rootless.
    pub opaque_xattr: String,
}

impl Sink for LayerSink<'_> {
    type Tree = MountedTree;

    fn tree(&self) -> &MountedTree {
        self.tree
    }

    fn dir(&mut self, parts: &[String], owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
        if let Some((depth, source)) = self.tree.mount_of(parts) {
            return walk_making(source, &parts[depth..], owner);
        }
        let mut dir = self.upper.fd().try_clone()?;
        for (i, part) in parts.iter().enumerate() {
            dir = match stat_nofollow(&dir, part)? {
                Some(meta) if meta.is_dir() => open_dir_nofollow(&dir, part)?,
                Some(meta) if meta.is_whiteout() => {
                    unlinkat(&dir, part, AtFlags::empty())?;
                    let child = make_dir(&dir, part, 0o755, owner)?;
                    self.mark_opaque(&child)?;
                    child
                }
                Some(_) => return Err(io::Error::from_raw_os_error(Errno::NOTDIR.raw_os_error())),
                None => match lstat(self.tree, &parts[..=i])? {
                    Some(lower) if lower.is_dir() => {
                        let child = make_dir(&dir, part, lower.mode, Some((lower.uid, lower.gid)))?;
                        // A mount's parent no layer has (inode 0) keeps the time of now.
                        if lower.ino != 0 {
                            futimens(&child, &times(lower.mtime, lower.mtime_nsec))?;
                        }
                        child
                    }
                    Some(_) => {
                        return Err(io::Error::from_raw_os_error(Errno::NOTDIR.raw_os_error()));
                    }
                    None => make_dir(&dir, part, 0o755, owner)?,
                },
            };
        }
        Ok(dir)
    }

    fn clear(&mut self, parts: &[String], dir: &OwnedFd, name: &str) -> io::Result<bool> {
        let mut path = parts.to_vec();
        path.push(name.to_owned());
        match self.tree.mount_of(&path) {
            Some((depth, _)) if depth == path.len() => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("/{} is a mount point", path.join("/")),
                ));
            }
            Some(_) => {
                unlink_non_dir(dir, name)?;
                return Ok(false);
            }
            None => {}
        }
        match stat_nofollow(dir, name)? {
            Some(meta) if meta.is_whiteout() => {
                unlinkat(dir, name, AtFlags::empty())?;
                Ok(true)
            }
            Some(meta) if !meta.is_dir() => {
                unlinkat(dir, name, AtFlags::empty())?;
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn mark_opaque(&self, dir: &OwnedFd) -> io::Result<()> {
        rustix::fs::fsetxattr(
            dir,
            self.opaque_xattr.as_str(),
            b"y",
            rustix::fs::XattrFlags::empty(),
        )?;
        Ok(())
    }

    fn link_dir(&mut self, parts: &[String], name: &str) -> io::Result<Option<OwnedFd>> {
        let dir = self.dir(parts, None)?;
        match stat_nofollow(&dir, name)? {
            Some(meta) if meta.kind == FileType::RegularFile => Ok(Some(dir)),
            _ => Ok(None),
        }
    }
}

/// Extracts `tar` into the directory at resolved `dest` of `sink`;
/// `target` names the container or directory in errors. Returns the
/// number of entries written.
pub(crate) fn untar<S: Sink, R: Read>(
    sink: &mut S,
    dest: &[String],
    tar: R,
    ownership: Ownership,
    target: &str,
) -> Result<u64> {
    let mut ex = Extractor {
        sink,
        dest: dest.to_vec(),
        ownership,
        target: target.to_owned(),
        dir_times: Vec::new(),
        parent: None,
        written: 0,
        devices: None,
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| ex.fail("(tar stream)", "read", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ex.fail("(tar stream)", "read", e))?;
        ex.entry(&mut entry)?;
    }
    ex.finish()?;
    Ok(ex.written)
}

struct Extractor<'s, S: Sink> {
    sink: &'s mut S,
    dest: Vec<String>,
    ownership: Ownership,
    target: String,
    /// Directories whose mtime is set last (their children change it).
    dir_times: Vec<(Vec<String>, i64)>,
    /// The last parent: its raw components, resolved ones and descriptor.
    parent: Option<(Vec<String>, Vec<String>, OwnedFd)>,
    written: u64,
    /// Device nodes skipped: how many, and the first one's name.
    devices: Option<(u64, String)>,
}

/// The tar header's fields an entry is written with.
struct Fields {
    kind: EntryType,
    mode: u32,
    mtime: i64,
    owner: Option<(u32, u32)>,
}

impl<S: Sink> Extractor<'_, S> {
    fn fail(&self, path: &str, reason: &str, source: io::Error) -> Error {
        Error::ContainerPath {
            target: self.target.clone(),
            path: path.to_owned(),
            reason: reason.to_owned(),
            source: Some(source),
        }
    }

    fn refuse(&self, path: &str, reason: impl Into<String>) -> Error {
        Error::ContainerPath {
            target: self.target.clone(),
            path: path.to_owned(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The safe components of a tar name: no `..`, no NUL, UTF-8.
    fn components(&self, raw: &[u8], name: &str) -> Result<Vec<String>> {
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(self.refuse(name, "refused: the name is not UTF-8"));
        };
        if text.contains('\0') {
            return Err(self.refuse(name, "refused: the name holds a NUL byte"));
        }
        let mut out = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(self.refuse(name, "refused: the name has a '..' component")),
                _ => out.push(part.to_owned()),
            }
        }
        Ok(out)
    }

    fn fields(&self, header: &tar::Header, raw: &[u8], name: &str) -> Result<Fields> {
        let bad = |e: io::Error| self.fail(name, "malformed tar header", e);
        let mut kind = header.entry_type();
        if header.as_old().linkflag[0] == 0 && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let old = header.as_old();
        let mode = numeric(header.mode().map(u64::from), &old.mode).map_err(bad)? as u32 & 0o7777;
        let mtime = numeric(header.mtime(), &old.mtime).map_err(bad)?;
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        let id = |v: u64| u32::try_from(v).ok().filter(|v| *v != u32::MAX);
        let uid = numeric(header.uid(), &old.uid).map_err(bad)?;
        let gid = numeric(header.gid(), &old.gid).map_err(bad)?;
        let owner = match self.ownership {
            Ownership::Leave => None,
            Ownership::Set(uid, gid) => Some((uid, gid)),
            Ownership::Keep => match (id(uid), id(gid)) {
                (Some(u), Some(g)) => Some((u, g)),
                _ => return Err(self.refuse(name, format!("uid {uid} or gid {gid} out of range"))),
            },
        };
        Ok(Fields {
            kind,
            mode,
            mtime,
            owner,
        })
    }

    /// The parent directory of an entry: resolved inside the sink's tree
    /// (symlinks followed), made if missing.
    fn parent(&mut self, raw: &[String], name: &str) -> Result<(Vec<String>, OwnedFd)> {
        if let Some((cached, resolved, fd)) = &self.parent
            && cached == raw
        {
            let fd = fd
                .try_clone()
                .map_err(|e| self.fail(name, "open parent", e))?;
            return Ok((resolved.clone(), fd));
        }
        let resolved = resolve(self.sink.tree(), &raw.join("/"), true)
            .map_err(|e| self.fail(name, "resolve parent", e))?;
        let owner = self.ownership.new_dirs();
        let fd = self
            .sink
            .dir(&resolved, owner)
            .map_err(|e| self.fail(name, "create parent directory", e))?;
        let copy = fd
            .try_clone()
            .map_err(|e| self.fail(name, "open parent", e))?;
        self.parent = Some((raw.to_vec(), resolved.clone(), copy));
        Ok((resolved, fd))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        if entry.header().entry_type() == EntryType::XGlobalHeader {
            return Ok(());
        }
        let mut parts = self.components(&raw, &name)?;
        let Some(base) = parts.pop() else {
            // `.` or `/`: the destination itself is the caller's.
            return Ok(());
        };
        let header = entry.header().clone();
        let fields = self.fields(&header, &raw, &name)?;
        let mut raw_parent = self.dest.clone();
        raw_parent.extend(parts);
        let (parent, dirfd) = self.parent(&raw_parent, &name)?;
        let mut path = parent.clone();
        path.push(base.clone());
        let shown = format!("/{}", path.join("/"));
        let existing = lstat(self.sink.tree(), &path).map_err(|e| self.fail(&name, "stat", e))?;
        let new_dir = fields.kind == EntryType::Directory;
        match existing {
            Some(meta) if meta.is_dir() && new_dir => {
                let fd = self
                    .sink
                    .dir(&path, fields.owner)
                    .map_err(|e| self.fail(&name, "open directory", e))?;
                set_owner_mode(&fd, fields.owner, fields.mode)
                    .map_err(|e| self.fail(&name, "set owner and mode of", e))?;
                self.dir_times.push((path, fields.mtime));
                self.written += 1;
                return Ok(());
            }
            Some(meta) if meta.is_dir() => {
                return Err(self.refuse(
                    &name,
                    format!("cannot overwrite directory {shown:?} with non-directory"),
                ));
            }
            Some(_) if new_dir => {
                return Err(self.refuse(
                    &name,
                    format!("cannot overwrite non-directory {shown:?} with directory"),
                ));
            }
            _ => {}
        }
        let opaque = self
            .sink
            .clear(&parent, &dirfd, &base)
            .map_err(|e| self.fail(&name, "replace", e))?;
        self.create(entry, &fields, &dirfd, &base, &name, opaque)?;
        if new_dir {
            self.dir_times.push((path, fields.mtime));
        }
        self.written += 1;
        Ok(())
    }

    /// Writes one new entry `base` in `dir`.
    fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        fields: &Fields,
        dir: &OwnedFd,
        base: &str,
        name: &str,
        opaque: bool,
    ) -> Result<()> {
        let Fields {
            kind,
            mode,
            mtime,
            owner,
        } = *fields;
        match kind {
            EntryType::Directory => {
                let child = make_dir(dir, base, mode, owner)
                    .map_err(|e| self.fail(name, "create directory", e))?;
                if opaque {
                    self.sink
                        .mark_opaque(&child)
                        .map_err(|e| self.fail(name, "mark opaque", e))?;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                let file = new_file(dir, base).map_err(|e| self.fail(name, "create", e))?;
                let mut file = std::fs::File::from(file);
                io::copy(entry, &mut file).map_err(|e| self.fail(name, "write", e))?;
                finish_file(&file, owner, mode, mtime)
                    .map_err(|e| self.fail(name, "set metadata of", e))?;
            }
            EntryType::Symlink => {
                let Some(target) = entry.link_name_bytes() else {
                    return Err(self.refuse(name, "symlink without a target"));
                };
                let target = String::from_utf8_lossy(&target).into_owned();
                symlinkat(target.as_str(), dir, base)
                    .map_err(|e| self.fail(name, "create symlink", e.into()))?;
                if let Some((uid, gid)) = owner {
                    chownat(
                        dir,
                        base,
                        Some(Uid::from_raw(uid)),
                        Some(Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| self.fail(name, "chown", e.into()))?;
                }
                rustix::fs::utimensat(dir, base, &times(mtime, 0), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.fail(name, "set mtime of", e.into()))?;
            }
            EntryType::Link => self.hard_link(entry, fields, dir, base, name)?,
            EntryType::Fifo => {
                mknodat(dir, base, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(|e| self.fail(name, "create fifo", e.into()))?;
                let fd = openat(
                    dir,
                    base,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.fail(name, "open fifo", e.into()))?;
                chmod_by_fd(&fd, owner, mode).map_err(|e| self.fail(name, "set mode of", e))?;
            }
            EntryType::Char | EntryType::Block => {
                self.devices.get_or_insert_with(|| (0, name.to_owned())).0 += 1;
            }
            other => {
                return Err(self.refuse(name, format!("unsupported tar entry type {other:?}")));
            }
        }
        Ok(())
    }

    /// A hard link to an earlier entry (or a file already there), resolved
    /// inside the tree like any name; copied when its target is only in a
    /// lower layer.
    fn hard_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        fields: &Fields,
        dir: &OwnedFd,
        base: &str,
        name: &str,
    ) -> Result<()> {
        let Some(link) = entry.link_name_bytes() else {
            return Err(self.refuse(name, "hard link without a target"));
        };
        let link = link.into_owned();
        let mut full = self.dest.clone();
        full.extend(self.components(&link, name)?);
        let target = resolve(self.sink.tree(), &full.join("/"), false)
            .map_err(|e| self.fail(name, "resolve hard link target", e))?;
        let Some((tname, tparent)) = target.split_last() else {
            return Err(self.refuse(name, "hard link to the root"));
        };
        match lstat(self.sink.tree(), &target).map_err(|e| self.fail(name, "stat", e))? {
            Some(meta) if meta.kind == FileType::RegularFile => {}
            _ => return Err(self.refuse(name, "hard link target is not an earlier regular file")),
        }
        let holder = self
            .sink
            .link_dir(tparent, tname)
            .map_err(|e| self.fail(name, "open hard link target", e))?;
        if let Some(holder) = holder {
            return linkat(&holder, tname.as_str(), dir, base, AtFlags::empty())
                .map_err(|e| self.fail(name, "create hard link", e.into()));
        }
        let source_dir =
            dir_at(self.sink.tree(), tparent).map_err(|e| self.fail(name, "open", e))?;
        let mut source = self
            .sink
            .tree()
            .open_file(&source_dir, tname)
            .map_err(|e| self.fail(name, "open hard link target", e))?;
        let file = new_file(dir, base).map_err(|e| self.fail(name, "create", e))?;
        let mut file = std::fs::File::from(file);
        io::copy(&mut source, &mut file).map_err(|e| self.fail(name, "write", e))?;
        finish_file(&file, fields.owner, fields.mode, fields.mtime)
            .map_err(|e| self.fail(name, "set metadata of", e))
    }

    /// Sets directory mtimes, deepest first; says once what was skipped.
    fn finish(&mut self) -> Result<()> {
        if let Some((count, first)) = &self.devices {
            tracing::warn!(count, first = %first, "skipped device nodes: cp does not create them");
        }
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
        for (parts, mtime) in dirs {
            let shown = parts.join("/");
            let Ok(fd) = self.sink.dir(&parts, None) else {
                continue;
            };
            futimens(&fd, &times(mtime, 0))
                .map_err(|e| self.fail(&shown, "set mtime of", e.into()))?;
        }
        Ok(())
    }
}

/// A numeric header field; a blank one reads as 0, as Go's `archive/tar`
/// (docker's reader) reads it.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(e),
    }
}

fn new_file(dir: &OwnedFd, base: &str) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        base,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

fn finish_file(
    file: &std::fs::File,
    owner: Option<(u32, u32)>,
    mode: u32,
    mtime: i64,
) -> io::Result<()> {
    set_owner_mode(file, owner, mode)?;
    futimens(file, &times(mtime, 0))?;
    Ok(())
}

/// chown and chmod of the inode `fd` (an `O_PATH` descriptor) holds,
/// through its `/proc/self/fd` link: it names that inode, whatever the
/// name now points at.
fn chmod_by_fd(fd: &OwnedFd, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn tar_of(entries: &[(&str, EntryType, &str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o640);
            header.set_mtime(1_000_000_000);
            header.set_size(data.len() as u64);
            if *kind == EntryType::Regular {
                let old = header.as_old_mut();
                old.name[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, data.as_bytes()).unwrap();
            } else if *kind == EntryType::Directory {
                builder
                    .append_data(&mut header, name, std::io::empty())
                    .unwrap();
            } else {
                builder.append_link(&mut header, name, link).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    fn extract(root: &std::path::Path, tar: &[u8]) -> Result<u64> {
        let tree = RootTree::open(root).unwrap();
        let mut sink = RootSink { tree: &tree };
        untar(
            &mut sink,
            &["dest".to_owned()],
            tar,
            Ownership::Leave,
            "test",
        )
    }

    #[test]
    fn hostile_entries_stay_inside_the_root_or_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let out = outside.path().to_str().unwrap();
        fs::create_dir(root.path().join("dest")).unwrap();
        // A symlink to an absolute path, then a write through it: inside.
        let tar = tar_of(&[
            ("l", EntryType::Symlink, out, ""),
            ("l/x", EntryType::Regular, "", "through"),
        ]);
        extract(root.path(), &tar).unwrap();
        let inside = root.path().join(out.trim_start_matches('/')).join("x");
        assert_eq!(fs::read_to_string(inside).unwrap(), "through");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // `..` and a hard link up and out: refused, naming the entry.
        for tar in [
            tar_of(&[("../x", EntryType::Regular, "", "up")]),
            tar_of(&[("h", EntryType::Link, "../../etc/passwd", "")]),
        ] {
            let err = extract(root.path(), &tar).unwrap_err().to_string();
            assert!(err.contains("'..' component"), "{err}");
        }
        // A file over a directory, a directory over a file.
        fs::create_dir(root.path().join("dest/d")).unwrap();
        fs::write(root.path().join("dest/f"), "f").unwrap();
        let err = extract(root.path(), &tar_of(&[("d", EntryType::Regular, "", "x")]));
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("cannot overwrite directory")
        );
        let err = extract(root.path(), &tar_of(&[("f", EntryType::Directory, "", "")]));
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("cannot overwrite non-directory")
        );
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn files_keep_mode_and_mtime_and_replace_a_symlink_without_following_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        fs::write(&target, "untouched").unwrap();
        fs::create_dir(root.path().join("dest")).unwrap();
        std::os::unix::fs::symlink(&target, root.path().join("dest/f")).unwrap();
        extract(
            root.path(),
            &tar_of(&[("f", EntryType::Regular, "", "new")]),
        )
        .unwrap();
        let meta = fs::symlink_metadata(root.path().join("dest/f")).unwrap();
        assert!(meta.is_file());
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o640, 1_000_000_000));
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    }
}
