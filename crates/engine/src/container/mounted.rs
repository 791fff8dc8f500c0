//! A stopped container's filesystem as `cp` sees it: its layers
//! ([`LayerTree`]) with its volumes and binds at their destinations, as
//! docker mounts them for a copy into or out of a stopped container.
//! Nothing is mounted: a mount's source is held by descriptor and walked
//! like a [`RootTree`] below its destination; a destination whose parents
//! the layers lack (a container never started) shows as an empty
//! directory holding it, as the sandbox would make it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use super::tree::{LayerDir, LayerTree, Meta, Tree, components, on_kernel_fs, stat_child};

/// A mount's source, opened.
#[derive(Debug)]
struct Source {
    /// Destination components in the container.
    dst: Vec<String>,
    /// The source directory or file (`O_RDONLY`).
    fd: OwnedFd,
}

/// Layers with mounts over them.
#[derive(Debug)]
pub(crate) struct MountedTree {
    layers: LayerTree,
    mounts: Vec<Source>,
}

/// A directory of a [`MountedTree`].
#[derive(Debug)]
pub(crate) enum MountedDir {
    /// Made by the layers (or a mount's missing parent: no layers).
    Layers(LayerDir, Vec<String>),
    /// Inside a mount's source.
    Mount(OwnedFd, Vec<String>),
}

impl MountedDir {
    fn path(&self) -> &[String] {
        match self {
            MountedDir::Layers(_, path) | MountedDir::Mount(_, path) => path,
        }
    }
}

/// What the sandbox makes for a mount's missing parent: 0755, root's.
fn synthetic_dir() -> Meta {
    Meta {
        kind: FileType::Directory,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
        mtime_nsec: 0,
        rdev: 0,
        dev: 0,
        ino: 0,
        nlink: 2,
    }
}

fn joined(path: &[String], name: &str) -> Vec<String> {
    let mut out = path.to_vec();
    out.push(name.to_owned());
    out
}

impl MountedTree {
    /// `layers` with `mounts` (destination, source, the source's subpath
    /// resolved inside it) over them; a mount whose source is missing is
    /// left out (its destination shows the layers).
    pub(crate) fn new(
        layers: LayerTree,
        mounts: &[(String, PathBuf, Option<PathBuf>)],
    ) -> io::Result<MountedTree> {
        let mut opened = Vec::new();
        for (dst, src, subpath) in mounts {
            let Ok(fd) = rustix::fs::open(src, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            else {
                continue;
            };
            let fd = match subpath {
                Some(sub) => buildr_fs::rooted::open_beneath(
                    &fd,
                    sub.as_path(),
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                )?,
                None => fd,
            };
            opened.push(Source {
                dst: components(dst),
                fd,
            });
        }
        Ok(MountedTree {
            layers,
            mounts: opened,
        })
    }

    fn mount_at(&self, path: &[String]) -> Option<&Source> {
        self.mounts.iter().rev().find(|m| m.dst == path)
    }

    /// Whether a mount's destination lies strictly below `path`.
    fn leads_to_mount(&self, path: &[String]) -> bool {
        self.mounts
            .iter()
            .any(|m| m.dst.len() > path.len() && m.dst[..path.len()] == *path)
    }

    /// The innermost mount holding `path` (at or below its destination):
    /// how many components its destination has, and its source.
    pub(crate) fn mount_of(&self, path: &[String]) -> Option<(usize, &OwnedFd)> {
        self.mounts
            .iter()
            .filter(|m| path.len() >= m.dst.len() && path[..m.dst.len()] == m.dst[..])
            .max_by_key(|m| m.dst.len())
            .map(|m| (m.dst.len(), &m.fd))
    }

    /// The names mounts add to the directory at `path`.
    fn mount_names(&self, path: &[String]) -> Vec<String> {
        self.mounts
            .iter()
            .filter(|m| m.dst.len() > path.len() && m.dst[..path.len()] == *path)
            .map(|m| m.dst[path.len()].clone())
            .collect()
    }
}

/// Reopens what `fd` holds as a new open file (its own offset).
fn reopen(fd: &OwnedFd) -> io::Result<File> {
    File::open(Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())))
}

impl Tree for MountedTree {
    type Dir = MountedDir;

    fn root(&self) -> io::Result<MountedDir> {
        Ok(MountedDir::Layers(self.layers.root()?, Vec::new()))
    }

    fn dir_meta(&self, dir: &MountedDir) -> io::Result<Meta> {
        match dir {
            MountedDir::Mount(fd, _) => Ok(Meta::from_stat(&rustix::fs::fstat(fd)?)),
            MountedDir::Layers(layers, _) if layers.is_empty() => Ok(synthetic_dir()),
            MountedDir::Layers(layers, _) => self.layers.dir_meta(layers),
        }
    }

    fn entry(&self, dir: &MountedDir, name: &str) -> io::Result<Option<Meta>> {
        super::tree::check_name(name)?;
        let child = joined(dir.path(), name);
        if let Some(mount) = self.mount_at(&child) {
            return Ok(Some(Meta::from_stat(&rustix::fs::fstat(&mount.fd)?)));
        }
        match dir {
            MountedDir::Mount(fd, _) => stat_child(fd, name),
            MountedDir::Layers(layers, _) => match self.layers.entry(layers, name)? {
                None if self.leads_to_mount(&child) => Ok(Some(synthetic_dir())),
                found => Ok(found),
            },
        }
    }

    fn open_dir(&self, dir: &MountedDir, name: &str) -> io::Result<MountedDir> {
        super::tree::check_name(name)?;
        let child = joined(dir.path(), name);
        if let Some(mount) = self.mount_at(&child) {
            let fd = mount.fd.try_clone()?;
            if !rustix::fs::fstat(&fd)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            {
                return Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::NOTDIR.raw_os_error(),
                ));
            }
            return Ok(MountedDir::Mount(fd, child));
        }
        match dir {
            MountedDir::Mount(fd, _) => Ok(MountedDir::Mount(
                super::tree::open_child_dir(fd, name)?,
                child,
            )),
            MountedDir::Layers(layers, _) => match self.layers.open_dir(layers, name) {
                Ok(opened) => Ok(MountedDir::Layers(opened, child)),
                Err(e) if super::tree::missing(&e) && self.leads_to_mount(&child) => {
                    Ok(MountedDir::Layers(LayerDir::empty(), child))
                }
                Err(e) => Err(e),
            },
        }
    }

    fn names(&self, dir: &MountedDir) -> io::Result<Vec<String>> {
        let mut names = match dir {
            MountedDir::Mount(fd, _) => super::tree::read_names(fd)?
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
            MountedDir::Layers(layers, _) => self.layers.names(layers)?,
        };
        names.extend(self.mount_names(dir.path()));
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn open_file(&self, dir: &MountedDir, name: &str) -> io::Result<File> {
        super::tree::check_name(name)?;
        if let Some(mount) = self.mount_at(&joined(dir.path(), name)) {
            let file = reopen(&mount.fd)?;
            if !file.metadata()?.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name} is not a regular file"),
                ));
            }
            return Ok(file);
        }
        match dir {
            MountedDir::Mount(fd, _) => super::tree::open_child_file(fd, name),
            MountedDir::Layers(layers, _) => self.layers.open_file(layers, name),
        }
    }

    fn read_link(&self, dir: &MountedDir, name: &str) -> io::Result<PathBuf> {
        super::tree::check_name(name)?;
        match dir {
            MountedDir::Mount(fd, _) => super::tree::read_link_at(fd, name),
            MountedDir::Layers(layers, _) => self.layers.read_link(layers, name),
        }
    }

    fn is_kernel_fs(&self, dir: &MountedDir) -> bool {
        match dir {
            MountedDir::Mount(fd, _) => on_kernel_fs(fd.as_fd()),
            MountedDir::Layers(..) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::container::tree::{dir_at, lstat, resolve};

    #[test]
    fn mounts_show_at_their_destinations_even_without_parents() {
        let upper = tempfile::tempdir().unwrap();
        let volume = tempfile::tempdir().unwrap();
        fs::create_dir(upper.path().join("etc")).unwrap();
        fs::write(volume.path().join("v.txt"), "vol").unwrap();
        symlink("/etc", volume.path().join("abs")).unwrap();
        let layers = LayerTree::open(&[upper.path().to_path_buf()]).unwrap();
        let mounts = [("/a/b/vol".to_owned(), volume.path().to_path_buf(), None)];
        let tree = MountedTree::new(layers, &mounts).unwrap();
        assert_eq!(tree.names(&tree.root().unwrap()).unwrap(), ["a", "etc"]);
        let vol = dir_at(&tree, &["a".into(), "b".into(), "vol".into()]).unwrap();
        assert_eq!(tree.names(&vol).unwrap(), ["abs", "v.txt"]);
        // A link in the volume resolves in the container, not the host.
        assert_eq!(
            resolve(&tree, "/a/b/vol/abs/x", true).unwrap(),
            ["etc", "x"]
        );
        let parts = ["a".to_owned(), "b".to_owned()];
        assert!(lstat(&tree, &parts).unwrap().unwrap().is_dir());
        assert_eq!(
            tree.mount_of(&["a".into(), "b".into(), "vol".into(), "x".into()])
                .map(|m| m.0),
            Some(3)
        );
        assert!(tree.mount_of(&parts).is_none());
    }
}
