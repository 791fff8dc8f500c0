//! Writes into the upper dir of one copy: files, hard links, symlinks and
//! directories with their owner, mode and times, parents created on the way.
//!
//! Times follow BuildKit's fsutil copy: a copied file, symlink (the link
//! itself, never its target) or directory keeps its source's mtime; the
//! directory a directory source is copied into keeps (or gets) its own
//! owner and mode and takes the source directory's mtime; directories
//! created only as parents get the time of the copy. Directory times are
//! set last ([`Writer::settle`]), after everything below them is written.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use buildr_solver::BoxError;
use rustix::fs::{AtFlags, CWD, FileType, OFlags, Timespec, Timestamps};

use super::{ChmodSpec, open_beneath};
use crate::dockerignore::{Decision, DockerIgnore};
use crate::gopath::clean_relative;
use crate::ops::merged::{Merged, components};
use crate::ops::op_error;

pub(super) fn libc_nofollow() -> i32 {
    OFlags::NOFOLLOW.bits() as i32
}

/// Writes into the upper dir of one copy.
pub(super) struct Writer<'a> {
    pub(super) upper: &'a Path,
    /// The state being copied into, for parent directories' metadata.
    pub(super) target: &'a Merged,
    pub(super) owner: Option<(u32, u32)>,
    pub(super) chmod: Option<&'a ChmodSpec>,
    pub(super) location: &'a str,
    pub(super) excludes: Option<DockerIgnore>,
    /// Source (dev, inode) of hard-linked files -> their first copy's host path.
    pub(super) links: HashMap<(u64, u64), PathBuf>,
    /// Directories' mtimes, applied by [`Writer::settle`] (writing a
    /// child changes its directory's mtime).
    pub(super) dir_times: HashMap<PathBuf, Timespec>,
    /// The snapshot this copy's previous run made (same sources,
    /// destination, flags and base, other content): a file found there
    /// unchanged is hard-linked instead of written ([`Writer::reused`]).
    pub(super) previous: Option<File>,
    /// The directory of `previous` the last lookup went through, opened
    /// beneath it (`None`: not a real directory there): sources come
    /// directory by directory, so each is opened once.
    pub(super) previous_dir: Option<(String, Option<File>)>,
    /// Inodes of `previous` linked so far: each at most once, so two
    /// sources never become one file.
    pub(super) reused: HashSet<(u64, u64)>,
    /// The parent (components joined by `/`) the last [`Writer::prepare`]
    /// found or made a directory in the upper dir: the entries of a walk
    /// come directory by directory, so its parents are checked once, not
    /// once per file. Forgotten whenever this copy removes anything.
    pub(super) prepared: Option<String>,
}

/// The mtime of `meta`, to the nanosecond.
pub(super) fn mtime_of(meta: &fs::Metadata) -> Timespec {
    Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec(),
    }
}

/// Sets the access and modification times of `host` itself (a symlink is
/// not followed).
fn set_mtime(host: &Path, mtime: Timespec) -> rustix::io::Result<()> {
    let times = Timestamps {
        last_access: mtime,
        last_modification: mtime,
    };
    rustix::fs::utimensat(CWD, host, &times, AtFlags::SYMLINK_NOFOLLOW)
}

impl Writer<'_> {
    pub(super) fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        self.excludes
            .as_ref()
            .is_some_and(|ignore| ignore.decide(rel, is_dir) == Decision::Exclude)
    }

    /// The mode a copied entry whose own mode is `mode` gets.
    fn mode_of(&self, mode: u32, is_dir: bool) -> u32 {
        self.chmod.map_or(mode, |chmod| chmod.apply(mode, is_dir))
    }

    fn err(&self, message: impl std::fmt::Display) -> BoxError {
        op_error(self.location, message)
    }

    /// `what` failed because of `source`.
    fn fail(
        &self,
        what: impl std::fmt::Display,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BoxError {
        crate::ops::op_failure(self.location, what, source)
    }

    /// The host path of `rel` in the upper dir, its parents created as
    /// directories (with the target's metadata where it has them).
    fn prepare(&mut self, rel: &str) -> Result<PathBuf, BoxError> {
        let comps = components(rel);
        let parents = &comps[..comps.len().saturating_sub(1)];
        if let Some(prepared) = &self.prepared
            && parents
                .iter()
                .copied()
                .eq(prepared.split('/').filter(|c| !c.is_empty()))
        {
            let mut host = self.upper.join(prepared);
            if let Some(last) = comps.last() {
                host.push(last);
            }
            return Ok(host);
        }
        self.prepared = None;
        let mut host = self.upper.to_path_buf();
        let mut path = String::new();
        for comp in parents {
            host.push(comp);
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(comp);
            match fs::symlink_metadata(&host) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => fs::remove_file(&host).map_err(|e| self.err(e))?,
                Err(_) => {}
            }
            self.make_dir(&host, &path, None)?;
        }
        self.prepared = Some(path);
        if let Some(last) = comps.last() {
            host.push(last);
        }
        Ok(host)
    }

    fn make_dir(
        &mut self,
        host: &Path,
        path: &str,
        meta: Option<(&fs::Metadata, (u32, u32))>,
    ) -> Result<(), BoxError> {
        fs::create_dir(host).map_err(|e| self.fail(format!("create /{path}"), e))?;
        let existing = self.target.lookup(path).filter(|f| f.meta.is_dir());
        let (mode, owner, mtime) = match (meta, &existing) {
            (Some((meta, owner)), _) => (meta.mode() & 0o7777, owner, Some(mtime_of(meta))),
            (None, Some(found)) => (
                found.meta.mode() & 0o7777,
                (found.meta.uid(), found.meta.gid()),
                Some(mtime_of(&found.meta)),
            ),
            (None, None) => (0o755, (0, 0), None),
        };
        let owner = if existing.is_none() || meta.is_some() {
            self.owner.unwrap_or(owner)
        } else {
            owner
        };
        let mode = if meta.is_some() {
            self.mode_of(mode, true)
        } else {
            mode
        };
        self.dir_times.remove(host);
        if let Some(mtime) = mtime {
            self.dir_times.insert(host.to_path_buf(), mtime);
        }
        self.finish(host, mode, owner, None)
    }

    /// Makes sure `rel` is a directory in the upper dir; returns its host path.
    pub(super) fn ensure_dir(
        &mut self,
        rel: &str,
        meta: Option<(&fs::Metadata, (u32, u32))>,
    ) -> Result<PathBuf, BoxError> {
        let host = self.prepare(rel)?;
        if components(rel).is_empty() {
            return Ok(host);
        }
        match fs::symlink_metadata(&host) {
            Ok(existing) if existing.is_dir() => return Ok(host),
            Ok(_) => {
                self.prepared = None;
                fs::remove_file(&host).map_err(|e| self.err(e))?;
            }
            Err(_) => {}
        }
        self.make_dir(&host, &clean_relative(rel), meta)?;
        Ok(host)
    }

    /// Whether `rel` is a directory by now: in what this copy wrote, else
    /// in the state copied into.
    fn is_dir_now(&self, rel: &str) -> Option<bool> {
        let host = self.upper.join(clean_relative(rel));
        match fs::symlink_metadata(&host) {
            Ok(meta) => Some(meta.is_dir()),
            Err(_) => self.target.lookup(rel).map(|f| f.meta.is_dir()),
        }
    }

    /// Whether a non-directory source goes into `dest` (it ends in `/` or
    /// is a directory by now) rather than onto it, as fsutil's copy decides
    /// for each source.
    pub(super) fn goes_into(&self, dest_is_dir: bool, dest: &str) -> bool {
        dest_is_dir || self.is_dir_now(dest) == Some(true)
    }

    /// The directory a directory source is copied into, as fsutil's copy
    /// with `CopyDirContents` makes it: an existing one keeps its owner and
    /// mode, a new one (and its missing parents) is 0755 and owned by
    /// `--chown` or 0:0; either takes the source directory's mtime.
    pub(super) fn dest_dir(
        &mut self,
        rel: &str,
        source_mtime: Option<Timespec>,
    ) -> Result<PathBuf, BoxError> {
        if self.is_dir_now(rel) == Some(false) {
            return Err(self.err(format!(
                "cannot copy to non-directory: /{}",
                clean_relative(rel)
            )));
        }
        let host = self.ensure_dir(rel, None)?;
        if let Some(mtime) = source_mtime
            && !components(rel).is_empty()
        {
            self.dir_times.insert(host.clone(), mtime);
        }
        Ok(host)
    }

    /// Sets the recorded directory times, once everything is written.
    pub(super) fn settle(&mut self) -> Result<(), BoxError> {
        for (host, mtime) in self.dir_times.drain() {
            // A directory a later source replaced is not there any more.
            if !fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            set_mtime(&host, mtime).map_err(|e| op_error(self.location, e))?;
        }
        Ok(())
    }

    fn replace(&mut self, host: &Path) -> Result<(), BoxError> {
        let meta = match fs::symlink_metadata(host) {
            Ok(meta) => meta,
            Err(_) => return Ok(()),
        };
        self.prepared = None;
        if meta.is_dir() {
            fs::remove_dir_all(host).map_err(|e| self.err(e))
        } else {
            fs::remove_file(host).map_err(|e| self.err(e))
        }
    }

    pub(super) fn write_file(
        &mut self,
        rel: &str,
        mut from: impl io::Read,
        meta: &fs::Metadata,
        owner: (u32, u32),
    ) -> Result<PathBuf, BoxError> {
        let host = self.prepare(rel)?;
        let mode = self.mode_of(meta.mode() & 0o7777, false);
        let owner = self.owner.unwrap_or(owner);
        // Whatever is in the way (an earlier source's entry) is found by
        // the link or the create failing, not looked up for every file.
        if self.reused(rel, &host, meta, mode, owner) {
            return Ok(host);
        }
        let create = || {
            File::options()
                .write(true)
                .create_new(true)
                .custom_flags(libc_nofollow())
                .open(&host)
        };
        let out = match create() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.replace(&host)?;
                if self.reused(rel, &host, meta, mode, owner) {
                    return Ok(host);
                }
                create()
            }
            other => other,
        };
        let mut out = out.map_err(|e| self.err(format!("create /{}: {e}", clean_relative(rel))))?;
        io::copy(&mut from, &mut out)
            .map_err(|e| self.err(format!("write /{}: {e}", clean_relative(rel))))?;
        drop(out);
        self.finish(&host, mode, owner, Some(mtime_of(meta)))?;
        Ok(host)
    }

    /// Hard-links `rel` from the previous run's snapshot when that copy is
    /// this one: a regular file of the source's size and mtime (to the
    /// nanosecond, which must not be 0: the rule the differ uses to trust
    /// an unread file) with the mode and owner this copy would give it.
    /// Snapshots are immutable, so sharing the inode shares nothing
    /// mutable. Any doubt, or a failed link (the snapshot pruned
    /// meanwhile), and the file is written instead.
    fn reused(
        &mut self,
        rel: &str,
        host: &Path,
        meta: &fs::Metadata,
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> bool {
        let Some(previous) = &self.previous else {
            return false;
        };
        if meta.mtime_nsec() == 0 || meta.nlink() > 1 {
            return false;
        }
        // The parent is opened beneath the snapshot with no symlink on the
        // way (one the earlier run copied, `a -> /etc`, would lead the
        // lookup and the link out of it); the file is then looked up and
        // linked relative to that directory, never followed.
        let rel = clean_relative(rel);
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", &rel));
        if self.previous_dir.as_ref().is_none_or(|(p, _)| p != parent) {
            let dir = open_beneath(previous, parent, false).ok();
            self.previous_dir = Some((parent.to_owned(), dir));
        }
        let Some((_, Some(dir))) = &self.previous_dir else {
            return false;
        };
        let Ok(old) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return false;
        };
        let same = FileType::from_raw_mode(old.st_mode) == FileType::RegularFile
            && old.st_size as u64 == meta.len()
            && (old.st_mtime, old.st_mtime_nsec as i64) == (meta.mtime(), meta.mtime_nsec())
            && old.st_mode & 0o7777 == mode
            && (!rustix::process::geteuid().is_root() || (old.st_uid, old.st_gid) == (uid, gid));
        let inode = (old.st_dev, old.st_ino);
        if !same || !self.reused.insert(inode) {
            return false;
        }
        let linked = rustix::fs::linkat(dir, name, CWD, host, AtFlags::empty()).is_ok();
        if !linked {
            self.reused.remove(&inode);
        }
        linked
    }

    /// Links `rel` to the earlier copy `first`; `false` when `first` is
    /// gone (replaced by a later source), so the caller copies instead.
    pub(super) fn write_hardlink(&mut self, rel: &str, first: &Path) -> Result<bool, BoxError> {
        if !fs::symlink_metadata(first).is_ok_and(|m| m.is_file()) {
            return Ok(false);
        }
        let host = self.prepare(rel)?;
        if host == first {
            return Ok(true);
        }
        self.replace(&host)?;
        fs::hard_link(first, &host)
            .map_err(|e| self.err(format!("hard link /{}: {e}", clean_relative(rel))))?;
        Ok(true)
    }

    pub(super) fn write_bytes(&mut self, rel: &str, content: &[u8]) -> Result<(), BoxError> {
        let host = self.prepare(rel)?;
        self.replace(&host)?;
        fs::write(&host, content)
            .map_err(|e| self.err(format!("write /{}: {e}", clean_relative(rel))))?;
        self.finish(
            &host,
            self.mode_of(0o644, false),
            self.owner.unwrap_or((0, 0)),
            None,
        )
    }

    pub(super) fn write_symlink(
        &mut self,
        rel: &str,
        target: &Path,
        owner: (u32, u32),
        mtime: Timespec,
    ) -> Result<(), BoxError> {
        let host = self.prepare(rel)?;
        self.replace(&host)?;
        symlink(target, &host)
            .map_err(|e| self.err(format!("symlink /{}: {e}", clean_relative(rel))))?;
        let (uid, gid) = self.owner.unwrap_or(owner);
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::lchown(&host, Some(uid), Some(gid)).map_err(|e| self.err(e))?;
        }
        set_mtime(&host, mtime)
            .map_err(|e| self.err(format!("set mtime of /{}: {e}", clean_relative(rel))))
    }

    fn finish(
        &self,
        host: &Path,
        mode: u32,
        (uid, gid): (u32, u32),
        mtime: Option<Timespec>,
    ) -> Result<(), BoxError> {
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(|e| self.err(e))?;
        }
        fs::set_permissions(host, fs::Permissions::from_mode(mode)).map_err(|e| self.err(e))?;
        if let Some(mtime) = mtime {
            set_mtime(host, mtime).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}
