//! Helpers shared by the integration tests: prerequisites, tree snapshots.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use buildr_oci::Digest;

fn missing(test: &str, what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: prerequisite missing under CI=true: {what}");
    }
    eprintln!("\n!!! SKIPPING {test}: {what} !!!\n");
    false
}

/// True when running as root; under CI=true a non-root run fails.
pub fn need_root(test: &str) -> bool {
    rustix::process::geteuid().is_root() || missing(test, "needs root")
}

/// True when `tool` is on PATH; under CI=true a missing tool fails.
pub fn need_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    found || missing(test, &format!("needs `{tool}` on PATH"))
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a round trip must preserve about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// sha256 of a regular file, target of a symlink, rdev of a device.
    pub content: String,
    /// For regular files with several names: the first name of the inode.
    pub link_group: Option<String>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub mtime: i64,
}

/// Snapshots every path under `root` (not `root` itself).
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    snapshot_except(root, None)
}

/// Like [`snapshot`], skipping the top-level entry named `skip`.
pub fn snapshot_except(root: &Path, skip: Option<&str>) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut first_by_inode: HashMap<u64, String> = HashMap::new();
    let skip = skip.map(|s| root.join(s));
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| skip.as_deref() != Some(e.path()));
    for item in walker {
        let item = item.unwrap();
        let meta = item.path().symlink_metadata().unwrap();
        let rel = item
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ft = meta.file_type();
        let (kind, content) = if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(item.path()).unwrap();
            (
                "symlink",
                String::from_utf8_lossy(t.as_os_str().as_bytes()).into_owned(),
            )
        } else if ft.is_fifo() {
            ("fifo", String::new())
        } else if ft.is_char_device() {
            ("char", meta.rdev().to_string())
        } else if ft.is_block_device() {
            ("block", meta.rdev().to_string())
        } else {
            (
                "file",
                Digest::of(&std::fs::read(item.path()).unwrap()).to_string(),
            )
        };
        let link_group = (kind == "file" && meta.nlink() > 1).then(|| {
            first_by_inode
                .entry(meta.ino())
                .or_insert_with(|| rel.clone())
                .clone()
        });
        let mut xattrs = BTreeMap::new();
        if let Ok(names) = xattr_names(item.path()) {
            for name in names {
                if name.starts_with("trusted.overlay.") || name == "security.selinux" {
                    continue;
                }
                let mut buf = vec![0u8; 65536];
                let n = rustix::fs::lgetxattr(item.path(), name.as_str(), &mut buf[..]).unwrap();
                buf.truncate(n);
                xattrs.insert(name, buf);
            }
        }
        out.insert(
            rel,
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                content,
                link_group,
                xattrs,
                mtime: meta.mtime(),
            },
        );
    }
    out
}

fn xattr_names(path: &Path) -> std::io::Result<Vec<String>> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut buf[..])?;
    Ok(buf[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect())
}

/// Asserts two snapshots are equal, ignoring directory mtimes when asked
/// (a diff does not carry the mtime of untouched parents).
pub fn assert_same_tree(
    want: &BTreeMap<String, Node>,
    got: &BTreeMap<String, Node>,
    check_mtime: bool,
) {
    let wk: Vec<_> = want.keys().collect();
    let gk: Vec<_> = got.keys().collect();
    assert_eq!(wk, gk, "different paths");
    for (path, w) in want {
        let g = &got[path];
        let (mut w, mut g) = (w.clone(), g.clone());
        if !check_mtime || w.kind == "dir" {
            w.mtime = 0;
            g.mtime = 0;
        }
        assert_eq!(w, g, "{path} differs");
    }
}

/// `cp -a`, keeping owners, modes, xattrs, hardlinks and mtimes.
pub fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to));
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

/// A `security.capability` v2 value granting cap_net_bind_service.
pub const CAP_NET_BIND: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
