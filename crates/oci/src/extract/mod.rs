//! Extracting untrusted layer tars into a directory.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)` against a handle on
//! the target directory, so `..`, absolute symlinks and symlinked parents all
//! stay inside it; the last component is always created with `O_EXCL` /
//! `*at` calls that do not follow it. On top of that, entries with a `..`
//! component are refused outright (a layer has no reason to carry one),
//! leading `/` are dropped, and entries naming the root itself (`.`, `/`) are
//! skipped. Hardlinks resolve their target the same way and must point at an
//! existing non-directory inside the root.
//!
//! Resource use is bounded: [`ExtractOptions::max_bytes`] caps the
//! uncompressed stream and the bytes written (a sparse entry claiming a
//! terabyte of holes hits it too), [`ExtractOptions::max_entries`] caps the
//! entry count; data is streamed through a fixed buffer. PAX and GNU
//! long-name records are read by the `tar` crate into memory, bounded by the
//! same byte cap.
//!
//! Nothing here is atomic per file: extract into a fresh directory and
//! rename it into place once this returns `Ok`.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timestamps, Uid, chownat, fchmod, fchown,
    fsetxattr, futimens, linkat, makedev, mkdirat, mknodat, openat, statat, symlinkat, unlinkat,
    utimensat,
};
use rustix::io::Errno;
use tar::EntryType;

use crate::compress::decompress;
use crate::error::{Error, Result};

mod entries;
mod whiteouts;
use buildr_fs::overlay::{self, Marker};
use entries::Slot;
use whiteouts::remove_all;

/// What to do with whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtractMode {
    /// Apply the layer onto a full tree: `.wh.name` deletes `name`,
    /// `.wh..wh..opq` deletes what the directory held before this layer.
    #[default]
    Apply,
    /// Keep the layer as an overlayfs lower dir: `.wh.name` becomes a 0/0
    /// character device, `.wh..wh..opq` becomes the opaque xattr on its dir.
    Overlay,
}

/// Settings for [`extract_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    pub mode: ExtractMode,
    /// Cap on uncompressed tar bytes read and file bytes written.
    pub max_bytes: u64,
    /// Cap on the number of entries.
    pub max_entries: u64,
    /// Apply the uids and gids from the tar (needs root).
    pub same_owner: bool,
    /// Create device nodes; when false they are skipped and counted
    /// (the default when not root of the host, as dockerd does rootless).
    pub devices: bool,
    /// The xattr that marks an opaque dir in [`ExtractMode::Overlay`]
    /// (`trusted.overlay.opaque`, or `user.overlay.opaque` rootless).
    pub opaque_xattr: String,
}

/// Whether this process is root of the host's user namespace (the identity
/// map): only then can it make device nodes and `trusted.*` xattrs. Root in
/// a user namespace (rootless) can chown to its mapped ids, no more.
fn host_root() -> bool {
    rustix::process::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

impl Default for ExtractOptions {
    fn default() -> Self {
        let root = rustix::process::geteuid().is_root();
        let host_root = host_root();
        ExtractOptions {
            mode: ExtractMode::Apply,
            max_bytes: 64 << 30,
            max_entries: 2_000_000,
            same_owner: root,
            // As dockerd in a user namespace: device nodes are skipped.
            devices: host_root,
            opaque_xattr: if host_root {
                overlay::OPAQUE_XATTRS[0].into()
            } else {
                overlay::OPAQUE_XATTRS[1].into()
            },
        }
    }
}

/// Counts from one extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Entries skipped: the root itself, devices without permission, sockets.
    pub skipped: u64,
}

/// Where the entries of one directory go: the directory's components from
/// the extraction root in, components from the root out (a caller that sees
/// more than the target directory, such as the lower layers of an `ADD`,
/// maps a parent through symlinks only it can see). Whatever it returns is
/// checked again and still resolved inside the root.
pub type ParentMap<'m> = dyn FnMut(&[Vec<u8>]) -> io::Result<Vec<Vec<u8>>> + 'm;

/// Extracts a layer blob (gzip, zstd or plain tar, detected by magic) into
/// `dest`, which must exist.
pub fn extract_layer<R: Read>(blob: R, dest: &Path, opts: &ExtractOptions) -> Result<ExtractStats> {
    extract_layer_mapped(blob, dest, opts, &mut |parent| Ok(parent.to_vec()))
}

/// [`extract_layer`], each entry's parent directory (and a hard link's
/// target's) first passed through `map`.
pub fn extract_layer_mapped<R: Read>(
    blob: R,
    dest: &Path,
    opts: &ExtractOptions,
    map: &mut ParentMap<'_>,
) -> Result<ExtractStats> {
    let root = rustix::fs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open extraction root", dest, e.into()))?;
    let stream = decompress(blob).map_err(|source| Error::Read { entries: 0, source })?;
    let exceeded = Rc::new(Cell::new(false));
    let budget = Budget {
        inner: stream,
        left: opts.max_bytes,
        exceeded: Rc::clone(&exceeded),
    };
    let mut archive = tar::Archive::new(budget);
    let mut ex = Extractor {
        root,
        opts,
        map,
        stats: ExtractStats::default(),
        created: HashSet::new(),
        dir_times: Vec::new(),
        cached_parent: None,
        buf: vec![0u8; 128 * 1024],
    };
    let read_err = |ex: &Extractor<'_>, source: io::Error| {
        if exceeded.get() {
            Error::Limit {
                what: "bytes",
                limit: opts.max_bytes,
                entry: String::new(),
            }
        } else {
            Error::Read {
                entries: ex.stats.entries,
                source,
            }
        }
    };
    let entries = archive.entries().map_err(|e| read_err(&ex, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_err(&ex, e))?;
        match ex.entry(&mut entry) {
            Err(Error::Apply { entry, .. } | Error::Write { entry, .. }) if exceeded.get() => {
                return Err(Error::Limit {
                    what: "bytes",
                    limit: opts.max_bytes,
                    entry,
                });
            }
            other => other?,
        }
    }
    ex.finish()?;
    Ok(ex.stats)
}

/// Fails the stream once `left` bytes have been read.
struct Budget<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other("layer byte limit exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct Extractor<'a> {
    root: OwnedFd,
    opts: &'a ExtractOptions,
    map: &'a mut ParentMap<'a>,
    stats: ExtractStats,
    /// Paths this layer created, which an opaque marker must not delete.
    created: HashSet<Vec<u8>>,
    /// Directory mtimes, applied last (children would change them).
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
    cached_parent: Option<(Vec<Vec<u8>>, Rc<OwnedFd>)>,
    buf: Vec<u8>,
}

/// Splits a tar path into safe components.
fn components(raw: &[u8], entry: &str) -> Result<Vec<Vec<u8>>> {
    let bad = |reason: &str| Error::BadEntry {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    if raw.contains(&0) {
        return Err(bad("path contains a NUL byte"));
    }
    if raw.len() > 4096 {
        return Err(bad("path longer than 4096 bytes"));
    }
    let mut out = Vec::new();
    for part in raw.split(|c| *c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(bad("path contains a '..' component")),
            _ => out.push(part.to_vec()),
        }
    }
    Ok(out)
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&b'/')
}

fn cpath(parts: &[Vec<u8>]) -> CString {
    let joined = if parts.is_empty() {
        b".".to_vec()
    } else {
        join(parts)
    };
    // Components were checked for NUL bytes.
    CString::new(joined).unwrap_or_default()
}

fn cname(part: &[u8]) -> CString {
    CString::new(part).unwrap_or_default()
}

/// The header fields an entry's slot carries.
struct Metadata {
    /// Permission bits (`0o7777`).
    mode: u32,
    mtime: i64,
    /// The owner to set, with `same_owner` only.
    owner: Option<(Uid, Gid)>,
}

/// The entry's type, `None` for a global PAX header (nothing to write).
/// Old archives mark directories with a trailing slash on a NUL type
/// flag; Go's reader (docker) and GNU tar both make them directories.
fn entry_type(header: &tar::Header, raw: &[u8]) -> Option<EntryType> {
    let etype = header.entry_type();
    if etype == EntryType::XGlobalHeader {
        return None;
    }
    if header.as_old().linkflag[0] == 0 && raw.ends_with(b"/") {
        return Some(EntryType::Directory);
    }
    Some(etype)
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        if self.stats.entries > self.opts.max_entries {
            return Err(Error::Limit {
                what: "entries",
                limit: self.opts.max_entries,
                entry: name,
            });
        }
        let Some(etype) = entry_type(entry.header(), &raw) else {
            return Ok(());
        };
        self.check_pax(entry, &name)?;
        let mut parts = components(&raw, &name)?;
        let Some(base) = parts.pop() else {
            // `.` or `/`: the root itself is the caller's.
            self.stats.skipped += 1;
            return Ok(());
        };
        let parent = self.mapped(&parts, &name)?;
        if let Some(applied) = self.marker(&parent, &base, &name) {
            return applied;
        }

        let header = entry.header().clone();
        let Metadata { mode, mtime, owner } = self.metadata(&header, &name)?;
        let xattrs = self.xattrs(entry, &name)?;
        let mut key = join(&parent);
        if !key.is_empty() {
            key.push(b'/');
        }
        key.extend_from_slice(&base);
        let slot = Slot {
            dirfd: self.parent(&parent, &name, true)?,
            base: cname(&base),
            name,
            owner,
            mode,
            mtime,
        };
        let mut path = parent;
        path.push(base);
        if self.create(entry, etype, &header, slot, &xattrs, path)? {
            self.created.insert(key);
        }
        Ok(())
    }

    /// An overlay marker applied (an opaque directory, a whiteout), or
    /// `None` when `base` is an ordinary name. A whiteout needs a name.
    fn marker(&mut self, parent: &[Vec<u8>], base: &[u8], name: &str) -> Option<Result<()>> {
        match overlay::marker(base)? {
            Marker::Opaque => Some(self.opaque(parent, name)),
            Marker::Whiteout(b"" | b"." | b"..") => Some(Err(Error::BadEntry {
                entry: name.to_owned(),
                reason: "whiteout without a name".into(),
            })),
            Marker::Whiteout(target) => Some(self.whiteout(parent, target, name)),
        }
    }

    /// The header's permission bits, mtime and (with `same_owner`) owner;
    /// blank numeric fields read as 0, as Go's archive/tar reads them.
    fn metadata(&self, header: &tar::Header, name: &str) -> Result<Metadata> {
        let old = header.as_old();
        let mode = numeric(header.mode().map(u64::from), &old.mode)
            .map_err(|e| self.bad_header(name, e))? as u32
            & 0o7777;
        let uid = numeric(header.uid(), &old.uid).map_err(|e| self.bad_header(name, e))?;
        let gid = numeric(header.gid(), &old.gid).map_err(|e| self.bad_header(name, e))?;
        let mtime = numeric(header.mtime(), &old.mtime).map_err(|e| self.bad_header(name, e))?;
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        let owner = self.owner(uid, gid, name)?;
        Ok(Metadata { mode, mtime, owner })
    }

    fn bad_header(&self, entry: &str, e: io::Error) -> Error {
        Error::BadEntry {
            entry: entry.to_owned(),
            reason: format!("malformed header: {e}"),
        }
    }

    fn owner(&self, uid: u64, gid: u64, entry: &str) -> Result<Option<(Uid, Gid)>> {
        if !self.opts.same_owner {
            return Ok(None);
        }
        let id = |v: u64| u32::try_from(v).ok().filter(|v| *v != u32::MAX);
        match (id(uid), id(gid)) {
            (Some(u), Some(g)) => Ok(Some((Uid::from_raw(u), Gid::from_raw(g)))),
            _ => Err(Error::BadEntry {
                entry: entry.to_owned(),
                reason: format!("uid {uid} or gid {gid} out of range"),
            }),
        }
    }

    /// The tar crate ignores a numeric PAX record it cannot parse and falls
    /// back to the ustar field; Go's reader (docker) refuses the archive.
    /// Refuse too, so the two never read different entries from the same
    /// bytes.
    fn check_pax<R: Read>(&self, entry: &mut tar::Entry<'_, R>, name: &str) -> Result<()> {
        let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| self.bad_header(name, e))?
        else {
            return Ok(());
        };
        for ext in pax {
            let ext = ext.map_err(|e| self.bad_header(name, e))?;
            if matches!(ext.key_bytes(), b"size" | b"uid" | b"gid")
                && !std::str::from_utf8(ext.value_bytes())
                    .is_ok_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(Error::BadEntry {
                    entry: name.to_owned(),
                    reason: format!(
                        "malformed PAX {} record {:?}",
                        String::from_utf8_lossy(ext.key_bytes()),
                        String::from_utf8_lossy(ext.value_bytes())
                    ),
                });
            }
        }
        Ok(())
    }

    fn xattrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Vec<(CString, Vec<u8>)>> {
        let mut out = Vec::new();
        let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| self.bad_header(name, e))?
        else {
            return Ok(out);
        };
        for ext in pax {
            let ext = ext.map_err(|e| self.bad_header(name, e))?;
            let Some(xname) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            if xname.starts_with(b"trusted.overlay.") || xname.starts_with(b"user.overlay.") {
                tracing::warn!(entry = %name, "dropping overlay xattr carried in a layer");
                continue;
            }
            let Ok(xname) = CString::new(xname) else {
                return Err(Error::BadEntry {
                    entry: name.to_owned(),
                    reason: "xattr name contains a NUL byte".into(),
                });
            };
            out.push((xname, ext.value_bytes().to_vec()));
        }
        Ok(out)
    }

    /// `parent` through the caller's map, checked like an entry's path.
    fn mapped(&mut self, parent: &[Vec<u8>], entry: &str) -> Result<Vec<Vec<u8>>> {
        let out = (self.map)(parent).map_err(|source| Error::Apply {
            op: "resolve the parent of",
            entry: entry.to_owned(),
            source,
        })?;
        let ok = out
            .iter()
            .all(|c| !matches!(c.as_slice(), b"" | b"." | b"..") && !c.contains(&b'/'));
        if !ok {
            return Err(Error::BadEntry {
                entry: entry.to_owned(),
                reason: "its parent maps to an unsafe path".into(),
            });
        }
        components(&join(&out), entry)
    }

    /// Opens the parent directory (`parts` from the root) inside the root,
    /// creating missing directories (0755) when `create` is set.
    fn parent(&mut self, parts: &[Vec<u8>], entry: &str, create: bool) -> Result<Rc<OwnedFd>> {
        if let Some((cached, fd)) = &self.cached_parent
            && cached == parts
        {
            return Ok(Rc::clone(fd));
        }
        let fd = match self.open_in_root(parts) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                for depth in 1..=parts.len() {
                    match self.open_in_root(&parts[..depth]) {
                        Ok(_) => continue,
                        Err(Errno::NOENT) => {
                            let up = self.open_in_root(&parts[..depth - 1]).map_err(|e| {
                                Error::Apply {
                                    op: "open parent of",
                                    entry: entry.to_owned(),
                                    source: e.into(),
                                }
                            })?;
                            mkdirat(&up, cname(&parts[depth - 1]), Mode::from_raw_mode(0o755))
                                .map_err(|e| Error::Apply {
                                    op: "create parent directory of",
                                    entry: entry.to_owned(),
                                    source: e.into(),
                                })?;
                        }
                        Err(e) => {
                            return Err(Error::Apply {
                                op: "open parent of",
                                entry: entry.to_owned(),
                                source: e.into(),
                            });
                        }
                    }
                }
                self.open_in_root(parts).map_err(|e| Error::Apply {
                    op: "open parent of",
                    entry: entry.to_owned(),
                    source: e.into(),
                })?
            }
            Err(e) => {
                return Err(Error::Apply {
                    op: "open parent of",
                    entry: entry.to_owned(),
                    source: e.into(),
                });
            }
        };
        let fd = Rc::new(fd);
        self.cached_parent = Some((parts.to_vec(), Rc::clone(&fd)));
        Ok(fd)
    }

    fn open_in_root(&self, parts: &[Vec<u8>]) -> rustix::io::Result<OwnedFd> {
        buildr_fs::rooted::open_beneath(
            &self.root,
            cpath(parts),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        )
    }

    /// Makes room for a new entry: keeps an existing directory when a
    /// directory comes (returns true), removes anything else.
    fn clear_slot(
        &mut self,
        dirfd: &OwnedFd,
        base: &CString,
        new_is_dir: bool,
        entry: &str,
    ) -> Result<bool> {
        match statat(dirfd, base, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::Apply {
                op: "stat",
                entry: entry.to_owned(),
                source: e.into(),
            }),
            Ok(st) => {
                if new_is_dir && FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Ok(true);
                }
                self.cached_parent = None;
                remove_all(dirfd, base).map_err(|e| Error::Apply {
                    op: "replace",
                    entry: entry.to_owned(),
                    source: e.into(),
                })?;
                Ok(false)
            }
        }
    }

    fn copy<R: Read>(&mut self, src: &mut R, dst: &mut File, entry: &str) -> Result<()> {
        loop {
            let n = match src.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Apply {
                        op: "read data of",
                        entry: entry.to_owned(),
                        source,
                    });
                }
            };
            self.stats.bytes += n as u64;
            if self.stats.bytes > self.opts.max_bytes {
                return Err(Error::Limit {
                    what: "bytes",
                    limit: self.opts.max_bytes,
                    entry: entry.to_owned(),
                });
            }
            dst.write_all(&self.buf[..n])
                .map_err(|source| Error::Apply {
                    op: "write",
                    entry: entry.to_owned(),
                    source,
                })?;
        }
    }

    fn set_meta(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        owner: Option<(Uid, Gid)>,
        mode: u32,
        xattrs: &[(CString, Vec<u8>)],
        entry: &str,
    ) -> Result<()> {
        let apply = |op, e: Errno| Error::Apply {
            op,
            entry: entry.to_owned(),
            source: e.into(),
        };
        if let Some((uid, gid)) = owner {
            fchown(fd, Some(uid), Some(gid)).map_err(|e| apply("chown", e))?;
        }
        // After chown, which clears setuid/setgid.
        fchmod(fd, Mode::from_raw_mode(mode)).map_err(|e| apply("chmod", e))?;
        for (name, value) in xattrs {
            match fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty()) {
                Ok(()) => {}
                // The filesystem cannot hold it, or (rootless) the namespace
                // may not write it: the file is still usable without.
                Err(Errno::NOTSUP) => {
                    tracing::warn!(entry, xattr = ?name, "xattr not supported by the filesystem, skipped");
                }
                Err(Errno::PERM) if !self.opts.same_owner => {
                    tracing::warn!(entry, xattr = ?name, "xattr not permitted without root, skipped");
                }
                Err(e) => return Err(apply("set xattr on", e)),
            }
        }
        Ok(())
    }

    /// Sets directory mtimes, deepest first.
    fn finish(&mut self) -> Result<()> {
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
        for (mut parts, mtime) in dirs {
            let Some(base) = parts.pop() else { continue };
            let entry = String::from_utf8_lossy(&join(&parts)).into_owned();
            let Ok(dirfd) = self.open_in_root(&parts) else {
                // Removed or replaced later in the layer.
                continue;
            };
            match utimensat(
                &dirfd,
                cname(&base),
                &times(mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => {
                    return Err(Error::Apply {
                        op: "set mtime of",
                        entry,
                        source: e.into(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == Errno::NOENT.raw_os_error() || c == Errno::NOTDIR.raw_os_error())
}

/// A parsed numeric header field, or 0 when the field is blank.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(e),
    }
}

fn times(mtime: i64) -> Timestamps {
    let ts = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_dotdot_and_drop_roots() {
        assert_eq!(
            components(b"/a//./b/", "x").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(components(b"./", "x").unwrap().is_empty());
        assert!(components(b"/", "x").unwrap().is_empty());
        assert!(components(b"a/../../b", "x").is_err());
        assert!(components(b"..", "x").is_err());
        assert!(components(b"a\0b", "x").is_err());
    }

    fn tar_of(paths: &[(&str, EntryType, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, link) in paths {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(if *kind == EntryType::Regular { 2 } else { 0 });
            if *kind == EntryType::Link {
                header.set_link_name(link).unwrap();
            }
            let data: &[u8] = if *kind == EntryType::Regular {
                b"hi"
            } else {
                b""
            };
            builder.append_data(&mut header, path, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn parents_and_hardlink_targets_go_where_the_map_says() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            ("a/b/f", EntryType::Regular, ""),
            ("a/b/l", EntryType::Link, "a/b/f"),
        ]);
        let mut map = |parent: &[Vec<u8>]| {
            Ok(if parent == [b"a".to_vec(), b"b".to_vec()] {
                vec![b"x".to_vec()]
            } else {
                parent.to_vec()
            })
        };
        extract_layer_mapped(&tar[..], dir.path(), &ExtractOptions::default(), &mut map).unwrap();
        assert_eq!(std::fs::read(dir.path().join("x/f")).unwrap(), b"hi");
        assert_eq!(std::fs::read(dir.path().join("x/l")).unwrap(), b"hi");
        assert!(!dir.path().join("a").exists());
    }

    #[test]
    fn an_unsafe_mapped_parent_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[("a/f", EntryType::Regular, "")]);
        for bad in [b"..".to_vec(), b"x/..".to_vec(), Vec::new()] {
            let mut map = |_: &[Vec<u8>]| Ok(vec![bad.clone()]);
            let err =
                extract_layer_mapped(&tar[..], dir.path(), &ExtractOptions::default(), &mut map)
                    .unwrap_err();
            assert!(matches!(err, Error::BadEntry { .. }), "{err}");
        }
        let mut failing = |_: &[Vec<u8>]| Err(io::Error::other("no"));
        let err = extract_layer_mapped(
            &tar[..],
            dir.path(),
            &ExtractOptions::default(),
            &mut failing,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Apply { .. }), "{err}");
    }
}
