//! Resolving a path inside a root directory without leaving it.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

const MAX_SYMLINKS: usize = 40;

/// Joins `unsafe_path` onto `root`, resolving symlinks as if `root` were `/`:
/// absolute link targets restart at `root`, `..` stops at `root`. Missing
/// trailing components are kept as they are (they will be created).
///
/// Used before `pivot_root`, when mount targets inside the image must not
/// be redirected to the host by a hostile symlink.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
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
                    return Err(Error::Spec(format!(
                        "too many symlinks resolving {} in the rootfs",
                        unsafe_path.display()
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(crate::error::io("read link", candidate.clone()))?;
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
}
