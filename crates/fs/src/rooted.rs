//! Resolving a path inside a root directory without leaving it: in user
//! space for a path that may not exist yet ([`secure_join`], before
//! `pivot_root`), by the kernel for one that is opened
//! ([`open_beneath`], `openat2`). What is not here: the context walker
//! (`buildr::context`, which checks each directory it opens against the
//! `lstat` that chose it) and the resolution across a build state's layers
//! (`buildr`'s merged view: a union of snapshot dirs, not one root).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

const MAX_SYMLINKS: usize = 40;

/// Joins `unsafe_path` onto `root`, resolving symlinks as if `root` were `/`:
/// absolute link targets restart at `root`, `..` stops at `root`. Missing
/// trailing components are kept as they are (they will be created).
///
/// Used before `pivot_root`, when mount targets inside the image must not
/// be redirected to the host by a hostile symlink.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> io::Result<PathBuf> {
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = components(unsafe_path);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(resolved.iter().collect::<PathBuf>()).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many symlinks resolving {} in the rootfs",
                        unsafe_path.display()
                    )));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| {
                    io::Error::new(e.kind(), format!("read link {}: {e}", candidate.display()))
                })?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(part),
        }
    }
    Ok(root.join(resolved.iter().collect::<PathBuf>()))
}

/// Opens `rel` (empty: the root itself) with every component resolved by
/// the kernel beneath `root` as `resolve` says (`IN_ROOT`: `..` and
/// absolute symlinks stop at the root; `BENEATH | NO_SYMLINKS`: any escape
/// or symlink is an error), retrying when the kernel saw a rename race.
pub fn open_beneath<P: rustix::path::Arg>(
    root: impl AsFd,
    rel: P,
    flags: OFlags,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    rel.into_with_c_str(|rel| {
        let rel = if rel.is_empty() { c"." } else { rel };
        loop {
            match rustix::fs::openat2(root.as_fd(), rel, flags, Mode::empty(), resolve) {
                Err(rustix::io::Errno::AGAIN) => continue,
                other => return other,
            }
        }
    })
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("usr/up")).unwrap();
        symlink("lib", root.join("usr/rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let cases = [
            ("/a/b", "a/b"),
            ("abs/passwd", "etc/passwd"),
            ("/usr/up/etc/shadow", "etc/shadow"),
            ("/usr/rel/x", "usr/lib/x"),
            ("../../etc", "etc"),
            ("/usr/./lib/../lib", "usr/lib"),
        ];
        for (input, want) in cases {
            assert_eq!(
                secure_join(root, Path::new(input)).unwrap(),
                root.join(want),
                "{input}"
            );
        }
        assert!(secure_join(root, Path::new("/loop/x")).is_err());
    }

    #[test]
    fn open_beneath_keeps_the_kernel_inside_the_root() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir_all(root_path.join("etc")).unwrap();
        std::fs::write(root_path.join("etc/passwd"), "inside").unwrap();
        symlink("/etc/passwd", root_path.join("abs")).unwrap();
        symlink("../../../../etc/passwd", root_path.join("up")).unwrap();
        let root = std::fs::File::open(&root_path).unwrap();
        let read = |rel: &str, resolve| -> rustix::io::Result<String> {
            let fd = open_beneath(&root, rel, OFlags::RDONLY | OFlags::CLOEXEC, resolve)?;
            Ok(std::io::read_to_string(std::fs::File::from(fd)).unwrap())
        };
        let in_root = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        assert_eq!(read("abs", in_root).unwrap(), "inside");
        assert_eq!(read("up", in_root).unwrap(), "inside");
        let strict = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        assert!(read("abs", strict).is_err());
        assert!(read("../x", strict).is_err());
        let itself = open_beneath(&root, "", OFlags::PATH | OFlags::CLOEXEC, strict).unwrap();
        drop(itself);
    }
}
