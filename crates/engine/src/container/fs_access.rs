//! A container's filesystem as docker's archive API serves it to `cp`:
//! stat a path ([`Containers::stat_path`]), a path as a tar stream
//! ([`Containers::archive_path`]), a tar stream extracted into a directory
//! ([`Containers::extract_archive`]). `cp.rs` builds docker's `cp` rules
//! on these.
//!
//! Which filesystem, and why:
//!
//! - **Running**: the root its pid 1 sees, `/proc/PID/root`, read and
//!   written by descriptor ([`RootTree`]). Through it the kernel shows what
//!   the container sees: the overlay (copy-up, whiteouts done by overlayfs
//!   itself), and its volumes, binds and tmpfs at their paths, so a copy
//!   lands where the container will find it, as docker's does. Nothing is
//!   mounted and no process enters the container. Symlinks are resolved
//!   in user space with that root as `/`, and every step below is an
//!   `*at` call that follows nothing (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`):
//!   a link to `/etc` or `../../..` leads to the container's `/etc`, and a
//!   component the container swaps for a symlink meanwhile makes the step
//!   fail instead of leading to the host.
//! - **Stopped** (created or exited): its upper dir over its image's
//!   snapshots, merged in user space by overlayfs' rules ([`LayerTree`];
//!   the snapshots are only read), its volumes and binds over them at their
//!   destinations ([`MountedTree`]: as docker mounts them for the copy).
//!   Writes go to the upper dir, directories copied up first, a whiteout
//!   replaced by an opaque directory, so the next start sees the files;
//!   below a mount's destination, to its source. Mounting the overlay
//!   instead would need privileges (or a helper in a user namespace) and
//!   leave mounts to clean up on every exit path. The container's lock is
//!   held meanwhile, so it cannot start under the copy. Its tmpfs mounts
//!   do not exist while it is stopped: what is copied there lands in the
//!   upper dir, under the tmpfs the next start mounts (docker's too).

use std::io::{Read, Write};
use std::path::PathBuf;

use rustix::fs::{Mode, OFlags};

use super::mounted::MountedTree;
use super::state::{self, ContainerState, Status, read_json};
use super::tarout::TarOut;
use super::tree::{LayerTree, Meta, RootTree, Tree, dir_at, lstat, resolve};
use super::untar::{LayerSink, Ownership, RootSink, untar};
use super::{Container, Containers};
use crate::error::{Error, Result};

/// What docker's stat of a container path says (`ContainerStatPath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The last element of the path asked for (`/` for the root).
    pub name: String,
    /// Size in bytes (`lstat`'s).
    pub size: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// For a symlink: the path it leads to, resolved inside the
    /// container, absolute; empty otherwise.
    pub link_target: String,
    /// Whether it is a directory (after following a trailing `/`).
    pub is_dir: bool,
}

/// How `cp` copies (docker's `-a`, `-L`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `-a`: files copied in keep the source's numeric uid and gid;
    /// without it they are owned by root of the container (docker's
    /// documented rule).
    pub archive: bool,
    /// `-L`: a source that is a symlink is followed.
    pub follow_link: bool,
}

/// A container path as docker reads it: made absolute and cleaned
/// lexically; a trailing `/` or `/.` follows the last element, `/.` asks
/// for a directory's contents.
#[derive(Debug, Clone)]
pub(crate) struct CPath {
    pub clean: String,
    pub follow: bool,
    /// docker's `filepath.Base` of the path asked for: the name its
    /// archive entries take.
    pub name: String,
}

impl CPath {
    pub(crate) fn parse(path: &str) -> CPath {
        let clean = crate::gopath::clean(&format!("/{path}"));
        let contents = path == "." || path.ends_with("/.");
        let follow = contents || path.ends_with('/');
        let name = if contents {
            ".".to_owned()
        } else if clean == "/" {
            "/".to_owned()
        } else {
            clean.rsplit('/').next().unwrap_or_default().to_owned()
        };
        CPath {
            clean,
            follow,
            name,
        }
    }
}

/// The filesystem of one container, opened as its state asks.
pub(crate) enum Fs {
    Running(RootTree),
    Stopped {
        tree: MountedTree,
        upper: PathBuf,
        _lock: state::Lock,
    },
}

impl Containers {
    /// Opens `container`'s filesystem (see the module's doc for which); a
    /// container that stopped while its running root was being opened is
    /// opened again, stopped.
    pub(crate) fn open_fs(&self, container: &Container) -> Result<Fs> {
        match self.open_fs_once(container) {
            Err(e @ Error::ContainerConflict { .. }) if container.is_running() => {
                let now = self.get(&container.config.id)?;
                if now.is_running() {
                    return Err(e);
                }
                self.open_fs_once(&now)
            }
            other => other,
        }
    }

    fn open_fs_once(&self, container: &Container) -> Result<Fs> {
        let id = &container.config.id;
        let paths = self.paths(id);
        if !container.is_running() {
            let lock = state::lock(&paths.lock())?;
            let now: ContainerState = read_json(&paths.state())?;
            if now.status != Status::Running {
                let upper = paths.upper();
                let mut layers = vec![upper.clone()];
                layers.extend(self.lower_dirs(&container.config)?);
                let open_error = |source| Error::Io {
                    action: "open the layers and mounts of",
                    path: paths.dir.clone(),
                    source,
                };
                let layers = LayerTree::open(&layers).map_err(open_error)?;
                let tree = MountedTree::new(layers, &self.mount_sources(container)?)
                    .map_err(open_error)?;
                return Ok(Fs::Stopped {
                    tree,
                    upper,
                    _lock: lock,
                });
            }
        }
        let pid = self.running_pid1(container)?;
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let open_error = |source| Error::Io {
            action: "open the root of the running container at",
            path: proc_dir.join("root"),
            source,
        };
        // The pid's directory first, then the check that it is still the
        // container's: a pid reused before the open fails the check, one
        // reused after leaves the directory on the dead process, whose
        // root no longer opens. Never some other process's root.
        let dir = rustix::fs::open(
            &proc_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| open_error(e.into()))?;
        let supervisor = self.get(id)?.state.supervisor_pid.unwrap_or(0);
        if !buildr_exec::is_sandbox_pid1(pid, supervisor) {
            return Err(Error::ContainerConflict {
                container: id.clone(),
                reason: "is not running".into(),
            });
        }
        let root = rustix::fs::openat(
            &dir,
            "root",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| open_error(e.into()))?;
        Ok(Fs::Running(RootTree::from_fd(root)))
    }

    /// A container's volumes and binds: destination, source, subpath;
    /// parents before children, as the sandbox mounts them.
    fn mount_sources(
        &self,
        container: &Container,
    ) -> Result<Vec<(String, PathBuf, Option<PathBuf>)>> {
        let config = &container.config;
        let mut out: Vec<(String, PathBuf, Option<PathBuf>)> = config
            .binds
            .iter()
            .map(|b| {
                (
                    b.dst.to_string_lossy().into_owned(),
                    b.src.clone(),
                    b.subpath.clone(),
                )
            })
            .collect();
        for volume in &config.volumes {
            let found = self.volumes.inspect(&volume.name)?;
            out.push((volume.destination.clone(), found.mountpoint, None));
        }
        out.sort_by_key(|(dst, _, _)| super::tree::components(dst).len());
        Ok(out)
    }

    /// docker's stat of a container path: the directory part resolved
    /// inside the container, the last element not followed (unless the
    /// path ends in `/` or `/.`).
    pub fn stat_path(&self, reference: &str, path: &str) -> Result<PathStat> {
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        match &fs {
            Fs::Running(tree) => stat_in(tree, &container, reference, path).map(|(s, _)| s),
            Fs::Stopped { tree, .. } => stat_in(tree, &container, reference, path).map(|(s, _)| s),
        }
    }

    /// Writes the path as docker's archive API does (`GET .../archive`):
    /// a tar whose entries are named after the path's last element
    /// (`.` for a `/.` path: the directory's contents).
    pub fn archive_path(&self, reference: &str, path: &str, out: impl Write) -> Result<PathStat> {
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        let name = CPath::parse(path).name;
        archive_fs(&fs, &container, reference, path, &name, out).map(|(stat, _)| stat)
    }

    /// Extracts `tar` into the directory `path` of the container as
    /// docker's archive API does (`PUT .../archive`): the directory must
    /// exist; a directory is never replaced by a non-directory nor the
    /// other way round; a read-only root or volume refuses.
    pub fn extract_archive(
        &self,
        reference: &str,
        path: &str,
        tar: impl Read,
        options: CopyOptions,
    ) -> Result<u64> {
        let container = self.get(reference)?;
        let fs = self.open_fs(&container)?;
        extract_fs(&fs, &container, reference, path, tar, options)
    }
}

/// Resolves and stats `path` in `tree`; also returns the resolved
/// components and the metadata.
pub(crate) fn stat_in<T: Tree>(
    tree: &T,
    container: &Container,
    reference: &str,
    path: &str,
) -> Result<(PathStat, (Vec<String>, Meta))> {
    let cpath = CPath::parse(path);
    let fail = |source| container_io(container, path, "stat", source);
    let resolved = resolve(tree, &cpath.clean, cpath.follow).map_err(fail)?;
    let not_found = || Error::ContainerPathNotFound {
        container: reference.to_owned(),
        path: path.to_owned(),
    };
    let meta = match lstat(tree, &resolved) {
        // `file/` names no file, as Go's `os.Lstat` says.
        Ok(Some(meta)) if cpath.follow && !meta.is_dir() => return Err(not_found()),
        Ok(Some(meta)) => meta,
        Ok(None) => return Err(not_found()),
        Err(e) if super::tree::missing(&e) => return Err(not_found()),
        Err(e) => return Err(fail(e)),
    };
    let link_target = if meta.is_symlink() {
        let full = resolve(tree, &cpath.clean, true).map_err(fail)?;
        format!("/{}", full.join("/"))
    } else {
        String::new()
    };
    let kind_bits = rustix::fs::FileType::as_raw_mode(meta.kind);
    let stat = PathStat {
        name: cpath.name,
        size: meta.size,
        mode: kind_bits | meta.mode,
        mtime: meta.mtime,
        link_target,
        is_dir: meta.is_dir(),
    };
    Ok((stat, (resolved, meta)))
}

pub(crate) fn container_io(
    container: &Container,
    path: &str,
    reason: &str,
    source: std::io::Error,
) -> Error {
    Error::ContainerPath {
        target: format!("container {}", container.config.name),
        path: path.to_owned(),
        reason: reason.to_owned(),
        source: Some(source),
    }
}

/// The volume or bind mount of `container` holding resolved `parts`: its
/// destination and whether it is read-only.
fn mount_of(container: &Container, parts: &[String]) -> Option<(String, bool)> {
    let config = &container.config;
    let binds = config
        .binds
        .iter()
        .map(|b| (b.dst.to_string_lossy().into_owned(), b.readonly));
    let volumes = config
        .volumes
        .iter()
        .map(|v| (v.destination.clone(), v.readonly));
    binds
        .chain(volumes)
        .filter(|(dst, _)| {
            let dst = super::tree::components(dst);
            parts.len() >= dst.len() && parts[..dst.len()] == dst[..]
        })
        .max_by_key(|(dst, _)| super::tree::components(dst).len())
}

/// [`Containers::archive_path`] on an open filesystem, entries named
/// `name`; returns the stat and the tar bytes written.
pub(crate) fn archive_fs(
    fs: &Fs,
    container: &Container,
    reference: &str,
    path: &str,
    name: &str,
    out: impl Write,
) -> Result<(PathStat, u64)> {
    match fs {
        Fs::Running(tree) => archive_in(tree, container, reference, path, name, out),
        Fs::Stopped { tree, .. } => archive_in(tree, container, reference, path, name, out),
    }
}

fn archive_in<T: Tree>(
    tree: &T,
    container: &Container,
    reference: &str,
    path: &str,
    name: &str,
    out: impl Write,
) -> Result<(PathStat, u64)> {
    let (stat, (resolved, meta)) = stat_in(tree, container, reference, path)?;
    let fail = |source| container_io(container, path, "archive", source);
    let mut counted = Counting {
        inner: out,
        bytes: 0,
    };
    let mut tar = TarOut::new(&mut counted);
    match resolved.split_last() {
        None => {
            let root = tree.root().map_err(fail)?;
            tar.write_dir(tree, root, name).map_err(fail)?;
        }
        Some((base, parent)) => {
            let dir = dir_at(tree, parent).map_err(fail)?;
            tar.write(tree, &dir, base, &meta, name).map_err(fail)?;
        }
    }
    tar.finish().map_err(fail)?;
    Ok((stat, counted.bytes))
}

/// [`Containers::extract_archive`] on an open filesystem.
pub(crate) fn extract_fs(
    fs: &Fs,
    container: &Container,
    reference: &str,
    path: &str,
    tar: impl Read,
    options: CopyOptions,
) -> Result<u64> {
    let ownership = if options.archive {
        Ownership::Keep
    } else {
        Ownership::Set(0, 0)
    };
    let target = format!("container {}", container.config.name);
    match fs {
        Fs::Running(tree) => {
            let resolved = extraction_point(tree, container, reference, path)?;
            let mut sink = RootSink { tree };
            untar(&mut sink, &resolved, tar, ownership, &target)
        }
        Fs::Stopped { tree, upper, .. } => {
            let resolved = extraction_point(tree, container, reference, path)?;
            let fail = |e| container_io(container, path, "open the upper dir", e);
            let mut sink = LayerSink {
                tree,
                upper: RootTree::open(upper).map_err(fail)?,
                opaque_xattr: buildr_oci::ExtractOptions::default().opaque_xattr,
            };
            untar(&mut sink, &resolved, tar, ownership, &target)
        }
    }
}

/// The resolved directory an extraction writes into, checked as docker
/// does: it exists, is a directory, and is writable by its mounts.
fn extraction_point<T: Tree>(
    tree: &T,
    container: &Container,
    reference: &str,
    path: &str,
) -> Result<Vec<String>> {
    let dir_path = if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    };
    let (stat, (resolved, _)) = match stat_in(tree, container, reference, &dir_path) {
        Err(Error::ContainerPathNotFound { .. }) => {
            return Err(Error::ContainerPathNotFound {
                container: reference.to_owned(),
                path: path.to_owned(),
            });
        }
        other => other?,
    };
    if !stat.is_dir {
        return Err(Error::ContainerConflict {
            container: container.config.name.clone(),
            reason: format!("extraction point {path} is not a directory"),
        });
    }
    match mount_of(container, &resolved) {
        Some((_, true)) => Err(Error::ContainerConflict {
            container: container.config.name.clone(),
            reason: "mounted volume is marked read-only".into(),
        }),
        None if container.config.read_only => Err(Error::ContainerConflict {
            container: container.config.name.clone(),
            reason: "container rootfs is marked read-only".into(),
        }),
        _ => Ok(resolved),
    }
}

/// Counts the bytes written through it.
pub(crate) struct Counting<W> {
    pub inner: W,
    pub bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
