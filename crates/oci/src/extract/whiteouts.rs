//! Whiteouts and opaque directories: applied (what they hide is deleted,
//! never through a symlink) or kept in overlay form (a 0/0 character
//! device, the opaque xattr) for a snapshot used as an overlay layer.

use super::*;

impl Extractor<'_> {
    pub(super) fn whiteout(
        &mut self,
        parent: &[Vec<u8>],
        target: &[u8],
        entry: &str,
    ) -> Result<()> {
        let target_c = cname(target);
        match self.opts.mode {
            ExtractMode::Apply => {
                let dirfd = match self.parent(parent, entry, false) {
                    Ok(fd) => fd,
                    // Nothing below a missing or non-directory parent to delete.
                    Err(Error::Apply { source, .. }) if is_missing(&source) => return Ok(()),
                    Err(e) => return Err(e),
                };
                self.clear_slot(&dirfd, &target_c, false, entry)?;
            }
            ExtractMode::Overlay => {
                let dirfd = self.parent(parent, entry, true)?;
                self.clear_slot(&dirfd, &target_c, false, entry)?;
                mknodat(
                    &dirfd,
                    &target_c,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|e| Error::Apply {
                    op: "create whiteout device for",
                    entry: entry.to_owned(),
                    source: e.into(),
                })?;
                let mut key = join(parent);
                if !key.is_empty() {
                    key.push(b'/');
                }
                key.extend_from_slice(target);
                self.created.insert(key);
            }
        }
        Ok(())
    }

    pub(super) fn opaque(&mut self, parent: &[Vec<u8>], entry: &str) -> Result<()> {
        let dirfd = match self.parent(parent, entry, self.opts.mode == ExtractMode::Overlay) {
            Ok(fd) => fd,
            // Applying: a missing directory has no lower contents to hide.
            Err(Error::Apply { source, .. }) if is_missing(&source) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.opts.mode {
            ExtractMode::Overlay => fsetxattr(
                &dirfd,
                self.opts.opaque_xattr.as_str(),
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| Error::Apply {
                op: "set opaque xattr for",
                entry: entry.to_owned(),
                source: e.into(),
            }),
            ExtractMode::Apply => {
                let prefix = join(parent);
                let names = list_dir(&dirfd).map_err(|e| Error::Apply {
                    op: "list directory of",
                    entry: entry.to_owned(),
                    source: e.into(),
                })?;
                for child in names {
                    let key = if prefix.is_empty() {
                        child.clone()
                    } else {
                        [prefix.as_slice(), b"/", &child].concat()
                    };
                    if self.created.contains(&key) {
                        continue;
                    }
                    self.cached_parent = None;
                    remove_all(&dirfd, &cname(&child)).map_err(|e| Error::Apply {
                        op: "clear opaque directory of",
                        entry: entry.to_owned(),
                        source: e.into(),
                    })?;
                }
                Ok(())
            }
        }
    }
}

fn list_dir(dirfd: &OwnedFd) -> rustix::io::Result<Vec<Vec<u8>>> {
    let fd = openat(
        dirfd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for item in rustix::fs::Dir::read_from(&fd)? {
        let name = item?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes `name` under `dirfd`, recursively, never following symlinks.
pub(super) fn remove_all(dirfd: &OwnedFd, name: &CString) -> rustix::io::Result<()> {
    let st = match statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return unlinkat(dirfd, name, AtFlags::empty());
    }
    let sub = openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in list_dir(&sub)? {
        remove_all(&sub, &cname(&child))?;
    }
    unlinkat(dirfd, name, AtFlags::REMOVEDIR)
}
