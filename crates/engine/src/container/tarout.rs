//! A [`Tree`] written as a tar stream, as docker's archiver writes one for
//! `cp` and `export`: directories named with a trailing `/`, owners as
//! numbers (no user or group names), modes and mtimes kept, a file seen
//! again through another hard link written as a link to its first name.
//! File data is streamed; a file that grows or shrinks while it is read
//! (a running container writing it) is cut or zero-padded to the size its
//! header announced, so the stream stays a valid tar.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;

use rustix::fs::FileType;
use tar::{EntryType, Header};

use super::tree::{Meta, Tree};

/// Writes entries of trees to one tar stream.
pub(crate) struct TarOut<W: Write> {
    builder: tar::Builder<W>,
    /// First names of files with several links, by (device, inode).
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(out: W) -> TarOut<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        TarOut {
            builder,
            links: HashMap::new(),
        }
    }

    /// Writes the entry `name` of `dir` (described by `meta`) as
    /// `tar_name`, and with a directory everything under it.
    pub(crate) fn write<T: Tree>(
        &mut self,
        tree: &T,
        dir: &T::Dir,
        name: &str,
        meta: &Meta,
        tar_name: &str,
    ) -> io::Result<()> {
        self.entry(tree, dir, name, meta, tar_name)?;
        if meta.is_dir() {
            let child = tree.open_dir(dir, name)?;
            self.children(tree, child, tar_name)?;
        }
        Ok(())
    }

    /// Writes the directory `dir` itself as `tar_name` (`.` for an export's
    /// root is left out by the caller) and everything under it.
    pub(crate) fn write_dir<T: Tree>(
        &mut self,
        tree: &T,
        dir: T::Dir,
        tar_name: &str,
    ) -> io::Result<()> {
        let meta = tree.dir_meta(&dir)?;
        self.header_only(&meta, &dir_name(tar_name), EntryType::Directory)?;
        self.children(tree, dir, tar_name)
    }

    /// Writes everything under `dir`, names prefixed with `prefix/` (none
    /// for an empty prefix). Depth first, each directory's names sorted;
    /// an explicit stack, so a deep tree cannot overflow the thread's.
    /// What vanishes during the walk (a running container deleting it) is
    /// left out, as docker's archiver leaves out what it cannot stat; the
    /// contents of kernel filesystems (`/proc`, `/sys`) are left out too.
    pub(crate) fn children<T: Tree>(
        &mut self,
        tree: &T,
        dir: T::Dir,
        prefix: &str,
    ) -> io::Result<()> {
        let names = listed(tree, &dir)?.into_iter();
        let mut stack = vec![(dir, names, prefix.to_owned())];
        while let Some((dir, names, prefix)) = stack.last_mut() {
            let Some(name) = names.next() else {
                stack.pop();
                continue;
            };
            let Some(meta) = tree.entry(dir, &name)? else {
                continue;
            };
            let tar_name = if prefix.is_empty() || prefix.ends_with('/') {
                format!("{prefix}{name}")
            } else {
                format!("{prefix}/{name}")
            };
            match self.entry(tree, dir, &name, &meta, &tar_name) {
                Err(e) if super::tree::missing(&e) => continue,
                other => other?,
            }
            if meta.is_dir() {
                let child = match tree.open_dir(dir, &name) {
                    Err(e) if super::tree::missing(&e) => continue,
                    other => other?,
                };
                let names = listed(tree, &child)?.into_iter();
                stack.push((child, names, tar_name));
            }
        }
        Ok(())
    }

    /// Ends the archive; returns the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn header(meta: &Meta, kind: EntryType) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(meta.mode);
        header.set_uid(u64::from(meta.uid));
        header.set_gid(u64::from(meta.gid));
        header.set_mtime(u64::try_from(meta.mtime).unwrap_or(0));
        header.set_size(0);
        header
    }

    fn header_only(&mut self, meta: &Meta, tar_name: &str, kind: EntryType) -> io::Result<()> {
        let header = Self::header(meta, kind);
        self.put(header, tar_name, None, io::empty())
    }

    /// Appends `header` named `name` exactly as given (`./x` and `/x`
    /// stay as docker writes them), with GNU long-name records for a name
    /// or link target over 100 bytes.
    fn put<R: Read>(
        &mut self,
        mut header: Header,
        name: &str,
        link: Option<&[u8]>,
        data: R,
    ) -> io::Result<()> {
        if name.len() > 100 {
            self.long_name(b'L', name.as_bytes())?;
        }
        if let Some(link) = link.filter(|l| l.len() > 100) {
            self.long_name(b'K', link)?;
        }
        let old = header.as_old_mut();
        fill(&mut old.name, name.as_bytes());
        if let Some(link) = link {
            fill(&mut old.linkname, link);
        }
        header.set_cksum();
        self.builder.append(&header, data)
    }

    /// A GNU `././@LongLink` record of kind `L` (name) or `K` (link).
    fn long_name(&mut self, kind: u8, bytes: &[u8]) -> io::Result<()> {
        let mut header = Header::new_gnu();
        fill(&mut header.as_old_mut().name, b"././@LongLink");
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(bytes.len() as u64 + 1);
        header.set_entry_type(EntryType::new(kind));
        header.set_cksum();
        self.builder
            .append(&header, bytes.chain(io::repeat(0).take(1)))
    }

    /// One entry's header (and a file's data).
    fn entry<T: Tree>(
        &mut self,
        tree: &T,
        dir: &T::Dir,
        name: &str,
        meta: &Meta,
        tar_name: &str,
    ) -> io::Result<()> {
        match meta.kind {
            FileType::Directory => {
                self.header_only(meta, &dir_name(tar_name), EntryType::Directory)
            }
            FileType::RegularFile => {
                if meta.nlink > 1 {
                    if let Some(first) = self.links.get(&(meta.dev, meta.ino)) {
                        let first = first.clone();
                        let header = Self::header(meta, EntryType::Link);
                        return self.put(header, tar_name, Some(first.as_bytes()), io::empty());
                    }
                    self.links.insert((meta.dev, meta.ino), tar_name.to_owned());
                }
                let file = tree.open_file(dir, name)?;
                let size = file.metadata()?.len();
                let mut header = Self::header(meta, EntryType::Regular);
                header.set_size(size);
                let data = Exact {
                    inner: file.take(size),
                    left: size,
                };
                self.put(header, tar_name, None, data)
            }
            FileType::Symlink => {
                let target = tree.read_link(dir, name)?;
                let header = Self::header(meta, EntryType::Symlink);
                let target = target.into_os_string().into_vec();
                self.put(header, tar_name, Some(&target), io::empty())
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let kind = if meta.kind == FileType::CharacterDevice {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                let mut header = Self::header(meta, kind);
                header.set_device_major(rustix::fs::major(meta.rdev))?;
                header.set_device_minor(rustix::fs::minor(meta.rdev))?;
                self.put(header, tar_name, None, io::empty())
            }
            FileType::Fifo => self.header_only(meta, tar_name, EntryType::Fifo),
            // Sockets are not content (docker's archiver skips them too).
            _ => Ok(()),
        }
    }
}

/// A directory's tar name: with one trailing `/`.
fn dir_name(tar_name: &str) -> String {
    if tar_name.ends_with('/') {
        tar_name.to_owned()
    } else {
        format!("{tar_name}/")
    }
}

/// Copies `bytes` into a NUL-padded header field (cut to its size: a
/// longer one also went out as a long-name record).
fn fill(field: &mut [u8], bytes: &[u8]) {
    field.fill(0);
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

/// The names to archive in `dir`: none on a kernel filesystem.
fn listed<T: Tree>(tree: &T, dir: &T::Dir) -> io::Result<Vec<String>> {
    if tree.is_kernel_fs(dir) {
        return Ok(Vec::new());
    }
    tree.names(dir)
}

/// Exactly `left` bytes: the file's, then zeros if it came up short.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
        }
        self.left -= n as u64;
        Ok(n)
    }
}
