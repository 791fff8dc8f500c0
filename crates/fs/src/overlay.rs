//! overlayfs' conventions and the OCI layer format's spelling of them.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// A tar entry `DIR/.wh.NAME` deletes `DIR/NAME` of the layers below.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// A tar entry `DIR/.wh..wh..opq` hides everything the layers below have
/// in `DIR`.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// The xattrs (root's and a rootless mount's) that make an upper directory
/// opaque, with the value `y`.
pub const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Whether `meta` is an upper dir's whiteout: a character device 0/0.
pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` (not followed if a symlink) carries an
/// opaque xattr.
pub fn is_opaque_dir(path: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| {
        let mut buf = [0u8; 4];
        matches!(rustix::fs::lgetxattr(path, *name, &mut buf), Ok(1) if buf[0] == b'y')
    })
}

/// Whether the directory open as `dir` (a readable fd, not `O_PATH`)
/// carries an opaque xattr: the form for walkers that hold directories by
/// descriptor, so a directory swapped for a symlink cannot redirect them.
pub fn is_opaque_fd(dir: impl std::os::fd::AsFd) -> bool {
    OPAQUE_XATTRS.iter().any(|name| {
        let mut buf = [0u8; 4];
        matches!(rustix::fs::fgetxattr(&dir, *name, &mut buf), Ok(1) if buf[0] == b'y')
    })
}

/// Whether the xattr `name` = `value` makes a directory opaque.
pub fn marks_opaque(name: &str, value: &[u8]) -> bool {
    OPAQUE_XATTRS.contains(&name) && value == b"y"
}

/// Whether `name` is one of overlayfs' own xattrs (`trusted.overlay.*`,
/// `user.overlay.*`): never part of a layer's content.
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// The tar name that deletes `rel`: `dir/name` -> `dir/.wh.name`.
pub fn whiteout_name(rel: &[u8]) -> Vec<u8> {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => [&rel[..=i], WHITEOUT_PREFIX, &rel[i + 1..]].concat(),
        None => [WHITEOUT_PREFIX, rel].concat(),
    }
}

/// What a tar entry's last component says, if it is a whiteout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker<'a> {
    /// `.wh..wh..opq`: the directory is opaque.
    Opaque,
    /// `.wh.NAME`: `NAME` is deleted (may be empty, `.` or `..`: the
    /// caller refuses those).
    Whiteout(&'a [u8]),
}

/// Reads a tar entry's last component as a whiteout marker; `None` for an
/// ordinary name.
pub fn marker(base: &[u8]) -> Option<Marker<'_>> {
    if base == OPAQUE_MARKER {
        return Some(Marker::Opaque);
    }
    base.strip_prefix(WHITEOUT_PREFIX).map(Marker::Whiteout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_markers() {
        assert_eq!(whiteout_name(b"x"), b".wh.x");
        assert_eq!(whiteout_name(b"a/b/x"), b"a/b/.wh.x");
        assert_eq!(marker(b".wh..wh..opq"), Some(Marker::Opaque));
        assert_eq!(marker(b".wh.x"), Some(Marker::Whiteout(b"x")));
        assert_eq!(marker(b".wh."), Some(Marker::Whiteout(b"")));
        assert_eq!(marker(b"x.wh.y"), None);
        assert!(is_overlay_xattr("trusted.overlay.redirect"));
        assert!(is_overlay_xattr("user.overlay.opaque"));
        assert!(!is_overlay_xattr("user.other"));
        assert!(marks_opaque("user.overlay.opaque", b"y"));
        assert!(!marks_opaque("user.overlay.opaque", b"n"));
    }
}
