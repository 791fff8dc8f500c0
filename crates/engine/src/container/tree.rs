//! A container's filesystem read without leaving it: a [`Tree`] is walked
//! by descriptor, one name at a time, never following a symlink or `..`
//! (symlinks are resolved by [`resolve`], in user space, inside the tree).
//!
//! - [`RootTree`]: a directory the kernel already shows whole: a running
//!   container's root as its pid 1 sees it (`/proc/PID/root`, the overlay
//!   with its volumes, binds and tmpfs mounted on it), or a host directory.
//!   Every step is `openat(O_NOFOLLOW)`/`fstatat(AT_SYMLINK_NOFOLLOW)` on
//!   the parent's descriptor, so a component the container swaps for a
//!   symlink makes the step fail; it never leads out.
//! - [`LayerTree`]: overlay layers merged in user space by overlayfs' rules
//!   (the topmost layer holding a name wins, a 0/0 character device is a
//!   whiteout, an opaque directory hides the layers below), each directory
//!   held as the descriptors of the layers that contribute to it: a stopped
//!   container's upper dir over its image's snapshots, or the lowers alone.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, openat, readlinkat, statat};
use rustix::io::Errno;

use buildr_fs::overlay::is_opaque_fd;

/// Symlinks followed in one resolution before it fails (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// What a [`Tree`] says of one entry (`lstat`'s fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: FileType,
    /// Permission bits, `0o7777`.
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

impl Meta {
    pub(crate) fn from_stat(st: &rustix::fs::Stat) -> Meta {
        Meta {
            kind: FileType::from_raw_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
            rdev: st.st_rdev,
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }

    pub(crate) fn is_symlink(&self) -> bool {
        self.kind == FileType::Symlink
    }

    /// An overlay upper dir's whiteout: a character device 0/0.
    pub(crate) fn is_whiteout(&self) -> bool {
        self.kind == FileType::CharacterDevice && self.rdev == 0
    }
}

/// A directory tree read one name at a time. Names are single components
/// (never empty, `.`, `..`, nor holding `/`); nothing is followed.
pub(crate) trait Tree {
    /// An open directory of the tree.
    type Dir;
    /// The tree's root directory.
    fn root(&self) -> io::Result<Self::Dir>;
    /// The metadata of `dir` itself.
    fn dir_meta(&self, dir: &Self::Dir) -> io::Result<Meta>;
    /// The entry `name` of `dir`, a final symlink not followed; `None`
    /// when there is none.
    fn entry(&self, dir: &Self::Dir, name: &str) -> io::Result<Option<Meta>>;
    /// Opens the directory `name` of `dir` (not a symlink to one).
    fn open_dir(&self, dir: &Self::Dir, name: &str) -> io::Result<Self::Dir>;
    /// The names in `dir`, sorted bytewise (Go's `filepath.Walk` order).
    fn names(&self, dir: &Self::Dir) -> io::Result<Vec<String>>;
    /// Opens the regular file `name` of `dir` for reading.
    fn open_file(&self, dir: &Self::Dir, name: &str) -> io::Result<File>;
    /// The target of the symlink `name` of `dir`.
    fn read_link(&self, dir: &Self::Dir, name: &str) -> io::Result<PathBuf>;
    /// Whether `dir` is on one of the kernel's own filesystems (proc,
    /// sysfs, cgroup, ...), whose contents are no container's files.
    fn is_kernel_fs(&self, dir: &Self::Dir) -> bool {
        let _ = dir;
        false
    }
}

/// The `statfs` magic numbers of the kernel's pseudo filesystems a
/// container has mounted: proc, sysfs, cgroup v1 and v2, devpts, mqueue,
/// debugfs, securityfs, tracefs, bpf.
const KERNEL_FS: [u64; 10] = [
    0x9fa0,
    0x6265_6572,
    0x0027_e0eb,
    0x6367_7270,
    0x1cd1,
    0x1980_0202,
    0x6462_6720,
    0x7363_6673,
    0x7472_6163,
    0xcafe_4a11,
];

/// Whether the directory `fd` is on a kernel pseudo filesystem: never
/// archived, never written by `cp` (`/proc/sys` is the host's kernel).
pub(crate) fn on_kernel_fs(fd: impl AsFd) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|st| KERNEL_FS.contains(&(st.f_type as u64)))
}

/// Refuses a name that is not one plain component.
pub(crate) fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    Ok(())
}

/// The non-empty, non-`.` components of `path` (`..` kept).
pub(crate) fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect()
}

/// Opens the directory at `parts` (resolved: no symlinks, no `..`).
pub(crate) fn dir_at<T: Tree>(tree: &T, parts: &[String]) -> io::Result<T::Dir> {
    let mut dir = tree.root()?;
    for part in parts {
        dir = tree.open_dir(&dir, part)?;
    }
    Ok(dir)
}

/// The entry at resolved `parts` (the root for none), not followed;
/// `None` when it or a parent is missing.
pub(crate) fn lstat<T: Tree>(tree: &T, parts: &[String]) -> io::Result<Option<Meta>> {
    let Some((name, parent)) = parts.split_last() else {
        let root = tree.root()?;
        return tree.dir_meta(&root).map(Some);
    };
    match dir_at(tree, parent) {
        Ok(dir) => tree.entry(&dir, name),
        Err(e) if missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `e` says a path does not exist (or a parent is not a directory).
pub(crate) fn missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(c) if c == Errno::NOENT.raw_os_error() || c == Errno::NOTDIR.raw_os_error()
    ) || e.kind() == io::ErrorKind::NotFound
}

/// Resolves `path` inside `tree` as the kernel would with the tree's root
/// as `/`: `..` stops at the root, absolute link targets restart there;
/// the last component is followed when `follow_last`. Missing components
/// are kept as they are (they may be created). Returns the components.
pub(crate) fn resolve<T: Tree>(tree: &T, path: &str, follow_last: bool) -> io::Result<Vec<String>> {
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        check_name(&part)?;
        if pending.is_empty() && !follow_last {
            done.push(part);
            break;
        }
        let dir = match dir_at(tree, &done) {
            Ok(dir) => dir,
            Err(e) if missing(&e) => {
                // Below a missing or non-directory component: kept as is.
                done.push(part);
                continue;
            }
            Err(e) => return Err(e),
        };
        match tree.entry(&dir, &part)? {
            Some(meta) if meta.is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(Errno::LOOP.raw_os_error()));
                }
                let target = tree.read_link(&dir, &part)?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => done.push(part),
        }
    }
    Ok(done)
}

/// A directory the kernel shows whole, read by descriptor.
#[derive(Debug)]
pub(crate) struct RootTree {
    root: OwnedFd,
}

impl RootTree {
    /// Opens `path` (followed: it is the caller's, e.g. `/proc/PID/root`).
    pub(crate) fn open(path: &Path) -> io::Result<RootTree> {
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootTree { root })
    }

    /// A tree over the directory `root` (readable, not `O_PATH`).
    pub(crate) fn from_fd(root: OwnedFd) -> RootTree {
        RootTree { root }
    }

    /// The root's descriptor.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.root
    }
}

/// The sorted names in the directory `fd`, with their types.
pub(crate) fn read_names(fd: impl AsFd) -> io::Result<Vec<(String, FileType)>> {
    let mut out = Vec::new();
    let mut dir = rustix::fs::Dir::read_from(fd)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        match std::str::from_utf8(name) {
            Ok(name) => out.push((name.to_owned(), entry.file_type())),
            Err(_) => tracing::warn!(
                name = %String::from_utf8_lossy(name),
                "skipping a file whose name is not UTF-8"
            ),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub(crate) fn open_child_dir(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

pub(crate) fn open_child_file(dir: impl AsFd, name: &str) -> io::Result<File> {
    let fd = openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not a regular file"),
        ));
    }
    Ok(file)
}

pub(crate) fn read_link_at(dir: impl AsFd, name: &str) -> io::Result<PathBuf> {
    let target = readlinkat(dir, name, Vec::new())?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

pub(crate) fn stat_child(dir: impl AsFd, name: &str) -> io::Result<Option<Meta>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Meta::from_stat(&st))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Tree for RootTree {
    type Dir = OwnedFd;

    fn root(&self) -> io::Result<OwnedFd> {
        self.root.try_clone()
    }

    fn dir_meta(&self, dir: &OwnedFd) -> io::Result<Meta> {
        Ok(Meta::from_stat(&rustix::fs::fstat(dir)?))
    }

    fn entry(&self, dir: &OwnedFd, name: &str) -> io::Result<Option<Meta>> {
        check_name(name)?;
        stat_child(dir, name)
    }

    fn open_dir(&self, dir: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
        check_name(name)?;
        open_child_dir(dir, name)
    }

    fn names(&self, dir: &OwnedFd) -> io::Result<Vec<String>> {
        Ok(read_names(dir)?.into_iter().map(|(n, _)| n).collect())
    }

    fn open_file(&self, dir: &OwnedFd, name: &str) -> io::Result<File> {
        check_name(name)?;
        open_child_file(dir, name)
    }

    fn read_link(&self, dir: &OwnedFd, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        read_link_at(dir, name)
    }

    fn is_kernel_fs(&self, dir: &OwnedFd) -> bool {
        on_kernel_fs(dir)
    }
}

/// Overlay layers merged in user space (topmost first).
#[derive(Debug)]
pub(crate) struct LayerTree {
    layers: Vec<OwnedFd>,
}

/// A directory of a [`LayerTree`]: the layers' directories that make it,
/// topmost first, down to the first opaque one.
#[derive(Debug)]
pub(crate) struct LayerDir {
    fds: Vec<OwnedFd>,
}

impl LayerDir {
    /// A directory no layer has (a mount's missing parent).
    pub(crate) fn empty() -> LayerDir {
        LayerDir { fds: Vec::new() }
    }

    /// Whether no layer has it.
    pub(crate) fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }
}

impl LayerTree {
    /// Opens the layer directories `dirs`, topmost first.
    pub(crate) fn open(dirs: &[PathBuf]) -> io::Result<LayerTree> {
        let mut layers = Vec::with_capacity(dirs.len());
        for dir in dirs {
            layers.push(RootTree::open(dir)?.root);
        }
        Ok(LayerTree { layers })
    }

    /// Which layer directory of `dir` holds `name`, with its metadata;
    /// `None` when none does or a whiteout hides it.
    fn holder<'d>(&self, dir: &'d LayerDir, name: &str) -> io::Result<Option<(&'d OwnedFd, Meta)>> {
        check_name(name)?;
        for fd in &dir.fds {
            match stat_child(fd, name)? {
                None => continue,
                Some(meta) if meta.is_whiteout() => return Ok(None),
                Some(meta) => return Ok(Some((fd, meta))),
            }
        }
        Ok(None)
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{name}: no such file or directory"),
    )
}

impl Tree for LayerTree {
    type Dir = LayerDir;

    fn root(&self) -> io::Result<LayerDir> {
        let mut fds = Vec::with_capacity(self.layers.len());
        for fd in &self.layers {
            fds.push(fd.try_clone()?);
        }
        Ok(LayerDir { fds })
    }

    fn dir_meta(&self, dir: &LayerDir) -> io::Result<Meta> {
        match dir.fds.first() {
            Some(fd) => Ok(Meta::from_stat(&rustix::fs::fstat(fd)?)),
            None => Err(not_found(".")),
        }
    }

    fn entry(&self, dir: &LayerDir, name: &str) -> io::Result<Option<Meta>> {
        Ok(self.holder(dir, name)?.map(|(_, meta)| meta))
    }

    fn open_dir(&self, dir: &LayerDir, name: &str) -> io::Result<LayerDir> {
        check_name(name)?;
        let mut fds = Vec::new();
        for fd in &dir.fds {
            match stat_child(fd, name)? {
                None => continue,
                Some(meta) if meta.is_whiteout() => break,
                Some(meta) if !meta.is_dir() => {
                    if fds.is_empty() {
                        return Err(io::Error::from_raw_os_error(Errno::NOTDIR.raw_os_error()));
                    }
                    // A lower non-directory under a directory: hidden.
                    break;
                }
                Some(_) => {
                    let child = open_child_dir(fd, name)?;
                    let opaque = is_opaque_fd(&child);
                    fds.push(child);
                    if opaque {
                        break;
                    }
                }
            }
        }
        if fds.is_empty() {
            return Err(not_found(name));
        }
        Ok(LayerDir { fds })
    }

    fn names(&self, dir: &LayerDir) -> io::Result<Vec<String>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for fd in &dir.fds {
            for (name, kind) in read_names(fd)? {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let whiteout = kind == FileType::CharacterDevice
                    && stat_child(fd, &name)?.is_some_and(|m| m.is_whiteout());
                if !whiteout {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn open_file(&self, dir: &LayerDir, name: &str) -> io::Result<File> {
        match self.holder(dir, name)? {
            Some((fd, _)) => open_child_file(fd, name),
            None => Err(not_found(name)),
        }
    }

    fn read_link(&self, dir: &LayerDir, name: &str) -> io::Result<PathBuf> {
        match self.holder(dir, name)? {
            Some((fd, _)) => read_link_at(fd, name),
            None => Err(not_found(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn layers_merge_by_overlay_rules_and_links_stay_inside() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("etc/sub")).unwrap();
        fs::write(lower.path().join("etc/passwd"), "lower").unwrap();
        fs::write(lower.path().join("etc/gone"), "x").unwrap();
        fs::write(lower.path().join("etc/sub/f"), "x").unwrap();
        symlink("/etc", lower.path().join("abs")).unwrap();
        symlink("../../../../etc", lower.path().join("up")).unwrap();
        fs::create_dir_all(upper.path().join("etc")).unwrap();
        fs::write(upper.path().join("etc/passwd"), "upper").unwrap();
        fs::write(upper.path().join("etc/new"), "n").unwrap();
        let tree = LayerTree::open(&[upper.path().into(), lower.path().into()]).unwrap();
        let etc = dir_at(&tree, &["etc".to_owned()]).unwrap();
        assert_eq!(tree.names(&etc).unwrap(), ["gone", "new", "passwd", "sub"]);
        let mut text = String::new();
        io::Read::read_to_string(&mut tree.open_file(&etc, "passwd").unwrap(), &mut text).unwrap();
        assert_eq!(text, "upper");
        assert_eq!(
            resolve(&tree, "/abs/passwd", true).unwrap(),
            ["etc", "passwd"]
        );
        assert_eq!(resolve(&tree, "up/x", true).unwrap(), ["etc", "x"]);
        assert_eq!(resolve(&tree, "/abs", false).unwrap(), ["abs"]);
        assert_eq!(resolve(&tree, "/a/../../etc", true).unwrap(), ["etc"]);
    }

    #[test]
    fn a_swapped_component_fails_instead_of_leading_out() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/etc", dir.path().join("etc")).unwrap();
        let tree = RootTree::open(dir.path()).unwrap();
        let root = tree.root().unwrap();
        assert!(tree.open_dir(&root, "etc").is_err());
        assert!(tree.open_file(&root, "etc").is_err());
        assert!(tree.entry(&root, "..").is_err());
        assert!(
            lstat(&tree, &["etc".into(), "passwd".into()])
                .unwrap()
                .is_none()
        );
    }
}
