//! One tar entry of each kind written into its slot: regular files,
//! directories, symlinks, hardlinks and device nodes or fifos. The slot's
//! parent directory was resolved inside the root; every call here works on
//! its descriptor and never follows the entry's own name.

use super::*;

/// Where one entry goes and the header fields it carries.
pub(super) struct Slot {
    /// The parent directory, resolved inside the root.
    pub(super) dirfd: Rc<OwnedFd>,
    /// The entry's own name in it.
    pub(super) base: CString,
    /// The entry's path as the tar has it, for errors.
    pub(super) name: String,
    pub(super) owner: Option<(Uid, Gid)>,
    pub(super) mode: u32,
    pub(super) mtime: i64,
}

impl Slot {
    /// The error for a failed `op` on this entry.
    fn apply(&self, op: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        move |e| Error::Apply {
            op,
            entry: self.name.clone(),
            source: e.into(),
        }
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadEntry {
            entry: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The owner asked for, on the entry itself (never followed).
    fn chown_entry(&self) -> Result<()> {
        if let Some((uid, gid)) = self.owner {
            chownat(
                &self.dirfd,
                &self.base,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(self.apply("chown"))?;
        }
        Ok(())
    }

    fn set_times(&self) -> Result<()> {
        utimensat(
            &self.dirfd,
            &self.base,
            &times(self.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(self.apply("set mtime of"))
    }
}

impl Extractor<'_> {
    /// Writes the entry of type `etype` into `slot` (`path`: its components
    /// from the root); other types are refused. Whether it made something.
    pub(super) fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        etype: EntryType,
        header: &tar::Header,
        slot: Slot,
        xattrs: &[(CString, Vec<u8>)],
        path: Vec<Vec<u8>>,
    ) -> Result<bool> {
        match etype {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &slot, xattrs)?;
                Ok(true)
            }
            EntryType::Directory => {
                self.directory(&slot, xattrs, path)?;
                Ok(true)
            }
            EntryType::Symlink => {
                self.symlink(entry, &slot)?;
                Ok(true)
            }
            EntryType::Link => {
                self.hardlink(entry, &slot)?;
                Ok(true)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => self.node(etype, header, &slot),
            other => Err(Error::BadEntry {
                entry: slot.name,
                reason: format!("unsupported entry type {other:?}"),
            }),
        }
    }

    pub(super) fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        slot: &Slot,
        xattrs: &[(CString, Vec<u8>)],
    ) -> Result<()> {
        self.clear_slot(&slot.dirfd, &slot.base, false, &slot.name)?;
        let fd = openat(
            &slot.dirfd,
            &slot.base,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(slot.apply("create file"))?;
        let mut file = File::from(fd);
        self.copy(entry, &mut file, &slot.name)?;
        self.set_meta(file.as_fd(), slot.owner, slot.mode, xattrs, &slot.name)?;
        futimens(&file, &times(slot.mtime)).map_err(slot.apply("set mtime of"))
    }

    /// A directory (kept if one is there); its mtime is set at the end,
    /// after its children, from `path`.
    pub(super) fn directory(
        &mut self,
        slot: &Slot,
        xattrs: &[(CString, Vec<u8>)],
        path: Vec<Vec<u8>>,
    ) -> Result<()> {
        let existed = self.clear_slot(&slot.dirfd, &slot.base, true, &slot.name)?;
        if !existed {
            mkdirat(&slot.dirfd, &slot.base, Mode::from_raw_mode(0o700))
                .map_err(slot.apply("create directory"))?;
        }
        let fd = openat(
            &slot.dirfd,
            &slot.base,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(slot.apply("open directory"))?;
        self.set_meta(fd.as_fd(), slot.owner, slot.mode, xattrs, &slot.name)?;
        self.dir_times.push((path, slot.mtime));
        Ok(())
    }

    pub(super) fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        slot: &Slot,
    ) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| slot.bad("symlink without a target"))?;
        if target.contains(&0) {
            return Err(slot.bad("symlink target contains a NUL byte"));
        }
        self.clear_slot(&slot.dirfd, &slot.base, false, &slot.name)?;
        // The target is stored verbatim: it is never followed except
        // through RESOLVE_IN_ROOT, so it cannot lead outside.
        symlinkat(cname(&target), &slot.dirfd, &slot.base).map_err(slot.apply("create symlink"))?;
        self.cached_parent = None;
        slot.chown_entry()?;
        slot.set_times()
    }

    /// A hardlink to an existing non-directory inside the root, its target
    /// resolved (and mapped) the same way as entries' parents.
    pub(super) fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        slot: &Slot,
    ) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| slot.bad("hardlink without a target"))?;
        let missing = || {
            slot.bad(format!(
                "hardlink target {:?} does not exist",
                String::from_utf8_lossy(&target)
            ))
        };
        let mut tparts = components(&target, &slot.name)?;
        let Some(tbase) = tparts.pop() else {
            return Err(slot.bad("hardlink to the root"));
        };
        let tparts = self.mapped(&tparts, &slot.name)?;
        self.clear_slot(&slot.dirfd, &slot.base, false, &slot.name)?;
        let tdir = match self.parent(&tparts, &slot.name, false) {
            Ok(fd) => fd,
            Err(Error::Apply { source, .. }) if is_missing(&source) => return Err(missing()),
            Err(e) => return Err(e),
        };
        let tbase_c = cname(&tbase);
        match statat(&tdir, &tbase_c, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(slot.bad("hardlink to a directory"));
            }
            Ok(_) => {}
            Err(Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(slot.apply("stat hardlink target of")(e)),
        }
        linkat(&tdir, &tbase_c, &slot.dirfd, &slot.base, AtFlags::empty())
            .map_err(slot.apply("create hardlink"))
    }

    /// A device node or a fifo; device nodes are skipped (and counted)
    /// unless the options allow them. Whether it was made.
    pub(super) fn node(
        &mut self,
        etype: EntryType,
        header: &tar::Header,
        slot: &Slot,
    ) -> Result<bool> {
        let file_type = match etype {
            EntryType::Char => FileType::CharacterDevice,
            EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        if file_type != FileType::Fifo && !self.opts.devices {
            tracing::warn!(entry = %slot.name, "skipping device node (not permitted)");
            self.stats.skipped += 1;
            return Ok(false);
        }
        let (major, minor) = if file_type == FileType::Fifo {
            (0, 0)
        } else {
            let major = header
                .device_major()
                .map_err(|e| self.bad_header(&slot.name, e))?;
            let minor = header
                .device_minor()
                .map_err(|e| self.bad_header(&slot.name, e))?;
            (major.unwrap_or(0), minor.unwrap_or(0))
        };
        self.clear_slot(&slot.dirfd, &slot.base, false, &slot.name)?;
        mknodat(
            &slot.dirfd,
            &slot.base,
            file_type,
            Mode::from_raw_mode(0o600),
            makedev(major, minor),
        )
        .map_err(slot.apply("create node"))?;
        slot.chown_entry()?;
        rustix::fs::chmodat(
            &slot.dirfd,
            &slot.base,
            Mode::from_raw_mode(slot.mode),
            AtFlags::empty(),
        )
        .map_err(slot.apply("chmod"))?;
        slot.set_times()?;
        Ok(true)
    }
}
