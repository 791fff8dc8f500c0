//! Snapshots of a directory tree, to assert two trees hold the same files
//! (an unpacked layer against `tar -x`, a copy against its source).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::process::run;

/// What a comparison looks at about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// "dir", "file", "symlink", "fifo", "char", "block" or "socket".
    pub kind: &'static str,
    /// Permission bits (0 for a symlink).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// sha256 of a regular file, target of a symlink, rdev of a device.
    pub content: String,
    /// [`Detail::Full`]: for a file with several names, the first name of
    /// its inode.
    pub link_group: Option<String>,
    /// [`Detail::Full`]: extended attributes (but overlayfs' own and
    /// SELinux labels).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// [`Detail::Full`]: the modification time in seconds.
    pub mtime: i64,
}

/// How much of each path a snapshot records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Type, permission bits, owner and content.
    Basic,
    /// Also hardlink groups, xattrs and mtimes.
    Full,
}

/// Every path under `root` (not `root` itself).
pub fn snapshot(root: &Path, detail: Detail) -> BTreeMap<String, Node> {
    snapshot_except(root, None, detail)
}

/// As [`snapshot`], skipping the top-level entry named `skip`.
pub fn snapshot_except(root: &Path, skip: Option<&str>, detail: Detail) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut first_by_inode: HashMap<u64, String> = HashMap::new();
    let skip = skip.map(|s| root.join(s));
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| skip.as_deref() != Some(e.path()));
    for item in walker {
        let item = item.expect("walk the tree");
        let path = item.path();
        let meta = path.symlink_metadata().expect("lstat");
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .into_owned();
        let (kind, content) = kind_and_content(path, &meta);
        let mut node = Node {
            kind,
            mode: if kind == "symlink" {
                0
            } else {
                meta.mode() & 0o7777
            },
            uid: meta.uid(),
            gid: meta.gid(),
            content,
            link_group: None,
            xattrs: BTreeMap::new(),
            mtime: 0,
        };
        if detail == Detail::Full {
            node.link_group = (kind == "file" && meta.nlink() > 1).then(|| {
                first_by_inode
                    .entry(meta.ino())
                    .or_insert_with(|| rel.clone())
                    .clone()
            });
            node.xattrs = xattrs(path);
            node.mtime = meta.mtime();
        }
        out.insert(rel, node);
    }
    out
}

fn kind_and_content(path: &Path, meta: &std::fs::Metadata) -> (&'static str, String) {
    let ft = meta.file_type();
    if ft.is_dir() {
        ("dir", String::new())
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).expect("readlink");
        (
            "symlink",
            String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned(),
        )
    } else if ft.is_fifo() {
        ("fifo", String::new())
    } else if ft.is_char_device() {
        ("char", meta.rdev().to_string())
    } else if ft.is_block_device() {
        ("block", meta.rdev().to_string())
    } else if ft.is_socket() {
        ("socket", String::new())
    } else {
        let bytes = std::fs::read(path).expect("read file");
        (
            "file",
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        )
    }
}

fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return out;
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") || name == "security.selinux" {
            continue;
        }
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]).expect("getxattr");
        value.truncate(len);
        out.insert(name, value);
    }
    out
}

/// Which modification times a comparison checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtimes {
    /// None.
    Ignore,
    /// Those of non-directories (a diff does not carry the mtime of
    /// untouched parents).
    OfFiles,
}

/// Asserts two snapshots are equal, listing every difference; `what`
/// names the comparison. An empty `want` fails: it would prove nothing.
pub fn assert_same_tree(
    want: &BTreeMap<String, Node>,
    got: &BTreeMap<String, Node>,
    mtimes: Mtimes,
    what: &str,
) {
    let norm = |node: &Node| {
        let mut node = node.clone();
        if mtimes == Mtimes::Ignore || node.kind == "dir" {
            node.mtime = 0;
        }
        node
    };
    let mut diffs = Vec::new();
    for (path, node) in want {
        match got.get(path) {
            None => diffs.push(format!("missing {path}")),
            Some(g) if norm(g) != norm(node) => {
                diffs.push(format!("{path}: want {node:?}, got {g:?}"));
            }
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        diffs.push(format!("unexpected {path}"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: trees differ:\n{}",
        diffs.join("\n")
    );
    assert!(!want.is_empty(), "{what}: empty tree compared");
}

/// `cp -a`, keeping owners, modes, xattrs, hardlinks and mtimes.
pub fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to));
}

/// Sets the extended attribute `name` of `path` (not following a symlink).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).expect("setxattr");
}
