//! `cp`: docker's rules for copying between a container and the host (the
//! half docker's CLI implements), over the archive API of `fs_access.rs`.
//!
//! The source is written as a tar stream whose top entry is named for
//! where it must land, and extracted at the destination's directory,
//! on two threads joined by a pipe (nothing is buffered whole):
//!
//! - source a file: to a missing destination, the file is created there
//!   (a destination ending in `/` must be an existing directory); over an
//!   existing file, it replaces it; into an existing directory, it keeps
//!   its name;
//! - source a directory: to a missing destination, the destination is
//!   made with the source's contents; an existing file is an error; into an
//!   existing directory, it is copied as a subdirectory, or its contents
//!   when the source ends in `/.`.
//!
//! A destination that is a symlink is followed (in the container: inside
//! it); a source symlink is copied as a link unless `-L`. Copied out,
//! files belong to the caller (docker's client never chowns); copied in,
//! to root of the container, or with `-a` to the source's uid and gid.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::fs_access::{CPath, CopyOptions, Fs, PathStat, archive_fs, extract_fs, stat_in};
use super::tarout::TarOut;
use super::tree::{RootTree, Tree};
use super::untar::{Ownership, RootSink, untar};
use super::{Container, Containers};
use crate::error::{Error, Result};

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Bytes of the tar stream between the two sides (what docker's
    /// "Successfully copied" reports).
    pub bytes: u64,
}

/// A destination as docker's `CopyInfoDestinationPath` sees it.
#[derive(Debug, Clone)]
struct Destination {
    /// The path after following symlinks.
    path: String,
    exists: bool,
    is_dir: bool,
}

fn cp_error(path: &str, reason: impl Into<String>) -> Error {
    Error::ContainerPath {
        target: "cp".into(),
        path: path.to_owned(),
        reason: reason.into(),
        source: None,
    }
}

fn host_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// `path`'s directory and last element, docker's `SplitPathDirEntry`.
fn split(path: &str) -> (String, String) {
    let clean = crate::gopath::clean(path);
    let dir = crate::gopath::dir(&clean);
    let base = clean.rsplit('/').next().unwrap_or_default().to_owned();
    (dir, base)
}

/// Whether the path asks for a directory (ends in `/` or `/.`).
fn asserts_dir(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

/// docker's `PrepareArchiveCopy`: the directory to extract into and the
/// name the source's top entry must take there.
fn prepare(
    src_is_dir: bool,
    src_name: &str,
    dst: &Destination,
    dst_asked: &str,
) -> Result<(String, String)> {
    let (dir, base) = split(&dst.path);
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), src_name.to_owned()));
    }
    if dst.exists && src_is_dir {
        return Err(cp_error(dst_asked, "cannot copy directory"));
    }
    if !dst.exists && !src_is_dir && asserts_dir(dst_asked) {
        return Err(cp_error(dst_asked, "no such directory"));
    }
    Ok((dir, base))
}

/// Runs `produce` (writing a tar) and `consume` (reading it) on two
/// threads joined by a pipe; the consumer's error wins unless it only
/// saw the producer fail.
fn piped<P, C>(produce: P, consume: C) -> Result<u64>
where
    P: FnOnce(std::io::PipeWriter) -> Result<u64> + Send,
    C: FnOnce(std::io::PipeReader) -> Result<u64>,
{
    let (reader, writer) = std::io::pipe().map_err(host_error(Path::new("(pipe)"), "create"))?;
    // Written by the producer thread, read here: neither side buffers a
    // whole file.
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || produce(writer));
        let consumed = consume(reader);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(cp_error("(tar stream)", "the archiving thread panicked")));
        match (produced, consumed) {
            (Ok(bytes), Ok(_)) => Ok(bytes),
            // The consumer stopped first: the producer's broken pipe is
            // only its echo.
            (Err(p), Err(c)) if broken_pipe(&p) => Err(c),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// Whether `e` was caused by writing to a pipe nobody reads any more.
fn broken_pipe(e: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

impl Containers {
    /// With `-L`: a source that is a symlink becomes the path it leads to,
    /// its entries still named after the link. Returns the path to
    /// archive and the name to give it.
    fn followed_source<T: Tree>(
        tree: &T,
        container: &Container,
        reference: &str,
        src: &str,
        follow_link: bool,
    ) -> Result<(String, String)> {
        let name = CPath::parse(src).name;
        if follow_link {
            let (stat, _) = stat_in(tree, container, reference, src)?;
            if !stat.link_target.is_empty() {
                return Ok((stat.link_target, name));
            }
        }
        Ok((src.to_owned(), name))
    }

    fn source(
        fs: &Fs,
        container: &Container,
        reference: &str,
        src: &str,
        follow_link: bool,
    ) -> Result<(String, String, PathStat)> {
        let (path, name) = match fs {
            Fs::Running(tree) => {
                Self::followed_source(tree, container, reference, src, follow_link)?
            }
            Fs::Stopped { tree, .. } => {
                Self::followed_source(tree, container, reference, src, follow_link)?
            }
        };
        let stat = match fs {
            Fs::Running(tree) => stat_in(tree, container, reference, &path)?.0,
            Fs::Stopped { tree, .. } => stat_in(tree, container, reference, &path)?.0,
        };
        Ok((path, name, stat))
    }

    /// `cp CONTAINER:SRC -`: the source as a tar stream on `out`.
    pub fn copy_from_to_writer(
        &self,
        reference: &str,
        src: &str,
        out: impl Write,
        options: CopyOptions,
    ) -> Result<Copied> {
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        let (path, name, _) = Self::source(&fs, &container, reference, src, options.follow_link)?;
        let (_, bytes) = archive_fs(&fs, &container, reference, &path, &name, out)?;
        Ok(Copied { bytes })
    }

    /// `cp CONTAINER:SRC DEST`: copies out of the container by docker's
    /// rules (see the module's doc).
    pub fn copy_from(
        &self,
        reference: &str,
        src: &str,
        dest: &Path,
        options: CopyOptions,
    ) -> Result<Copied> {
        let dest_asked = dest.to_string_lossy().into_owned();
        let dest = std::path::absolute(dest).map_err(host_error(dest, "resolve"))?;
        validate_output_path(&dest)?;
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        let (path, name, stat) =
            Self::source(&fs, &container, reference, src, options.follow_link)?;
        let dst = host_destination(&dest)?;
        let (dir, name) = prepare(stat.is_dir, &name, &dst, &dest_asked)?;
        let dir = PathBuf::from(dir);
        let host = RootTree::open(&dir).map_err(host_error(&dir, "open"))?;
        let target = dir.display().to_string();
        let bytes = piped(
            |writer| archive_fs(&fs, &container, reference, &path, &name, writer).map(|(_, n)| n),
            |reader| {
                let mut sink = RootSink { tree: &host };
                untar(&mut sink, &[], reader, Ownership::Leave, &target)
            },
        )?;
        Ok(Copied { bytes })
    }

    /// `cp - CONTAINER:DEST`: extracts the tar stream `tar` (untrusted)
    /// into the directory `dest`.
    pub fn copy_tar_to(
        &self,
        reference: &str,
        tar: impl Read,
        dest: &str,
        options: CopyOptions,
    ) -> Result<Copied> {
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        let dst = container_destination(&fs, &container, reference, dest)?;
        if !dst.is_dir {
            return Err(Error::CopyRefused {
                message: format!("destination \"{reference}:{dest}\" must be a directory"),
            });
        }
        let mut counted = CountingReader {
            inner: tar,
            bytes: 0,
        };
        extract_fs(&fs, &container, reference, &dst.path, &mut counted, options)?;
        Ok(Copied {
            bytes: counted.bytes,
        })
    }

    /// `cp SRC CONTAINER:DEST`: copies a host file or directory into the
    /// container by docker's rules (see the module's doc).
    pub fn copy_to(
        &self,
        reference: &str,
        src: &Path,
        dest: &str,
        options: CopyOptions,
    ) -> Result<Copied> {
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        let source = HostSource::open(src, options.follow_link)?;
        let dst = container_destination(&fs, &container, reference, dest)?;
        let (dir, name) = prepare(source.meta_is_dir, &source.name, &dst, dest)?;
        let bytes = piped(
            |writer| source.archive(&name, writer),
            |reader| extract_fs(&fs, &container, reference, &dir, reader, options),
        )?;
        Ok(Copied { bytes })
    }
}

/// A destination in the container: stat-ed, a symlink followed (inside
/// the container), checked to be a directory or a regular file.
fn container_destination(
    fs: &Fs,
    container: &Container,
    reference: &str,
    dest: &str,
) -> Result<Destination> {
    let stat = |path: &str| match fs {
        Fs::Running(tree) => stat_in(tree, container, reference, path).map(|s| s.0),
        Fs::Stopped { tree, .. } => stat_in(tree, container, reference, path).map(|s| s.0),
    };
    let mut path = dest.to_owned();
    let mut found = match stat(&path) {
        Ok(stat) => Some(stat),
        Err(Error::ContainerPathNotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(link) = found.as_ref().map(|s| s.link_target.clone())
        && !link.is_empty()
    {
        path = link;
        found = match stat(&path) {
            Ok(stat) => Some(stat),
            Err(Error::ContainerPathNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
    }
    if let Some(stat) = &found {
        let kind = rustix::fs::FileType::from_raw_mode(stat.mode);
        if !matches!(
            kind,
            rustix::fs::FileType::Directory | rustix::fs::FileType::RegularFile
        ) {
            return Err(Error::CopyRefused {
                message: format!(
                    "destination \"{reference}:{dest}\" must be a directory or a regular file"
                ),
            });
        }
    }
    Ok(Destination {
        path,
        exists: found.is_some(),
        is_dir: found.is_some_and(|s| s.is_dir),
    })
}

/// docker's `ValidateOutputPath`: the parent exists; an existing path is
/// a directory or a regular file.
fn validate_output_path(path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        return Err(Error::CopyRefused {
            message: format!(
                "invalid output path: directory {:?} does not exist",
                parent.display().to_string()
            ),
        });
    }
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() && !meta.is_file() => Err(Error::CopyRefused {
            message: format!(
                "invalid output path: {shown:?} must be a directory or a regular file"
            ),
        }),
        _ => Ok(()),
    }
}

/// docker's `CopyInfoDestinationPath` on the host: symlinks followed (at
/// most 10); a missing destination needs an existing parent directory.
fn host_destination(path: &Path) -> Result<Destination> {
    let mut path = path.to_path_buf();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path).map_err(host_error(&path, "read link"))?;
                path = match path.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(meta) => {
                return Ok(Destination {
                    path: path.to_string_lossy().into_owned(),
                    exists: true,
                    is_dir: meta.is_dir(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                let meta = std::fs::metadata(parent).map_err(host_error(parent, "stat"))?;
                if !meta.is_dir() {
                    return Err(cp_error(&parent.display().to_string(), "not a directory"));
                }
                return Ok(Destination {
                    path: path.to_string_lossy().into_owned(),
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(host_error(&path, "stat")(e)),
        }
    }
    Err(cp_error(&path.display().to_string(), "too many symlinks"))
}

/// A host file or directory to copy in (docker's `CopyInfoSourcePath`):
/// its directory part resolved on the host, its last element followed
/// only with `-L` (or a trailing `/.`, which asks for the contents).
struct HostSource {
    tree: RootTree,
    /// The last element in `tree`'s directory; `None` for `/` itself.
    base: Option<String>,
    /// The name entries take unless the destination renames them.
    name: String,
    meta_is_dir: bool,
}

impl HostSource {
    fn open(src: &Path, follow_link: bool) -> Result<HostSource> {
        let asked = src.to_string_lossy().into_owned();
        let abs = std::path::absolute(src).map_err(host_error(src, "resolve"))?;
        let contents = asked == "." || asked.ends_with("/.");
        let follow = follow_link || contents || asked.ends_with('/');
        let real = if follow {
            std::fs::canonicalize(&abs).map_err(host_error(&abs, "resolve"))?
        } else {
            match (abs.parent(), abs.file_name()) {
                (Some(parent), Some(base)) => std::fs::canonicalize(parent)
                    .map_err(host_error(parent, "resolve"))?
                    .join(base),
                _ => abs.clone(),
            }
        };
        let meta = std::fs::symlink_metadata(&real).map_err(host_error(&real, "stat"))?;
        let name = if contents {
            ".".to_owned()
        } else {
            abs.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".to_owned())
        };
        let (dir, base) = match (real.parent(), real.file_name()) {
            (Some(parent), Some(base)) => (
                parent.to_path_buf(),
                Some(base.to_string_lossy().into_owned()),
            ),
            _ => (real.clone(), None),
        };
        let tree = RootTree::open(&dir).map_err(host_error(&dir, "open"))?;
        Ok(HostSource {
            tree,
            base,
            name,
            meta_is_dir: meta.is_dir(),
        })
    }

    /// Writes the source as a tar whose top entry is `name`.
    fn archive(&self, name: &str, out: impl Write) -> Result<u64> {
        let fail = |source| Error::ContainerPath {
            target: "cp".into(),
            path: name.to_owned(),
            reason: "archive the source".into(),
            source: Some(source),
        };
        let mut counted = super::fs_access::Counting {
            inner: out,
            bytes: 0,
        };
        let mut tar = TarOut::new(&mut counted);
        let root = self.tree.root().map_err(fail)?;
        match &self.base {
            None => tar.write_dir(&self.tree, root, name).map_err(fail)?,
            Some(base) => {
                let meta = self
                    .tree
                    .entry(&root, base)
                    .map_err(fail)?
                    .ok_or_else(|| fail(std::io::ErrorKind::NotFound.into()))?;
                tar.write(&self.tree, &root, base, &meta, name)
                    .map_err(fail)?;
            }
        }
        tar.finish().map_err(fail)?;
        Ok(counted.bytes)
    }
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dst(path: &str, exists: bool, is_dir: bool) -> Destination {
        Destination {
            path: path.into(),
            exists,
            is_dir,
        }
    }

    #[test]
    fn prepare_follows_dockers_table() {
        // File into an existing directory keeps its name.
        assert_eq!(
            prepare(false, "f", &dst("/d", true, true), "/d").unwrap(),
            ("/d".into(), "f".into())
        );
        // File over a file, or to a new name: renamed.
        assert_eq!(
            prepare(false, "f", &dst("/d/g", true, false), "/d/g").unwrap(),
            ("/d".into(), "g".into())
        );
        assert_eq!(
            prepare(false, "f", &dst("/d/new", false, false), "/d/new").unwrap(),
            ("/d".into(), "new".into())
        );
        // A missing destination ending in / must be a directory.
        let err = prepare(false, "f", &dst("/d/new", false, false), "/d/new/").unwrap_err();
        assert!(err.to_string().contains("no such directory"), "{err}");
        // A directory onto a file.
        let err = prepare(true, "d", &dst("/f", true, false), "/f").unwrap_err();
        assert!(err.to_string().contains("cannot copy directory"), "{err}");
        // A directory to a new name, or its contents (`/.`) into one.
        assert_eq!(
            prepare(true, ".", &dst("/x/new", false, false), "/x/new").unwrap(),
            ("/x".into(), "new".into())
        );
        assert_eq!(
            prepare(true, ".", &dst("/x", true, true), "/x").unwrap(),
            ("/x".into(), ".".into())
        );
    }

    #[test]
    fn container_paths_read_as_docker_reads_them() {
        let p = CPath::parse("a/../b/.");
        assert_eq!(
            (p.clean.as_str(), p.follow, p.name.as_str()),
            ("/b", true, ".")
        );
        let p = CPath::parse("/etc/");
        assert_eq!(
            (p.clean.as_str(), p.follow, p.name.as_str()),
            ("/etc", true, "etc")
        );
        let p = CPath::parse("/");
        assert_eq!(p.name, "/");
    }
}
