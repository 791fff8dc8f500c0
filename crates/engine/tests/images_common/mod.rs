//! Helpers shared by the image tests: prerequisites, rootfs tars, tree snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use buildr::image::Digest;

fn missing(test: &str, what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: prerequisite missing under CI=true: {what}");
    }
    eprintln!("\n!!! SKIPPING {test}: {what} !!!\n");
    false
}

/// True when running as root; under CI=true a non-root run fails.
pub fn need_root(test: &str) -> bool {
    let uid = Command::new("id").arg("-u").output().ok();
    let is_root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    is_root || missing(test, "needs root")
}

/// True when `tool` is on PATH; under CI=true a missing tool fails.
pub fn need_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    found || missing(test, &format!("needs `{tool}` on PATH"))
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns stdout.
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

/// One entry of a test rootfs.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// A rootfs tar of `items`, all owned by `uid`:`gid` unless the path starts
/// with `home/app` (1000:1000), deterministic (mtime 0).
pub fn rootfs_tar(items: &[Item<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        let owner = match item {
            Item::Dir(p, _) | Item::File(p, _, _) | Item::Symlink(p, _) => {
                if p.starts_with("home/app") { 1000 } else { 0 }
            }
        };
        header.set_uid(owner);
        header.set_gid(owner);
        match item {
            Item::Dir(p, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder
                    .append_data(&mut header, p, std::io::empty())
                    .unwrap();
            }
            Item::File(p, mode, content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(content.len() as u64);
                builder.append_data(&mut header, p, *content).unwrap();
            }
            Item::Symlink(p, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, p, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// A small rootfs with the shapes that matter: nested dirs, modes,
/// setuid, sticky, an owner, a symlink, an empty file.
pub fn sample_rootfs() -> Vec<u8> {
    rootfs_tar(&[
        Item::Dir("bin", 0o755),
        Item::File("bin/tool", 0o4755, b"#!/bin/sh\necho tool\n"),
        Item::Symlink("bin/sh", "/bin/tool"),
        Item::Dir("etc", 0o755),
        Item::File("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n"),
        Item::File("etc/empty", 0o600, b""),
        Item::Dir("tmp", 0o1777),
        Item::Dir("home", 0o755),
        Item::Dir("home/app", 0o750),
        Item::File("home/app/notes", 0o640, b"hello"),
    ])
}

/// What a round trip must preserve about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// sha256 of a regular file, target of a symlink.
    pub content: String,
}

/// Every path under `root` (not `root` itself) with type, permission bits,
/// owner, content and link target.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = std::fs::symlink_metadata(path).unwrap();
        let ft = meta.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                "symlink",
                std::fs::read_link(path).unwrap().display().to_string(),
            )
        } else if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_file() {
            (
                "file",
                Digest::of(&std::fs::read(path).unwrap()).to_string(),
            )
        } else if ft.is_char_device() {
            ("char", meta.rdev().to_string())
        } else {
            ("other", String::new())
        };
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let mode = if ft.is_symlink() {
            0
        } else {
            meta.mode() & 0o7777
        };
        out.insert(
            rel,
            Node {
                kind,
                mode,
                uid: meta.uid(),
                gid: meta.gid(),
                content,
            },
        );
    }
    out
}

/// Asserts two snapshots are equal, listing every difference.
pub fn assert_same_tree(want: &BTreeMap<String, Node>, got: &BTreeMap<String, Node>, what: &str) {
    let mut diffs = Vec::new();
    for (path, node) in want {
        match got.get(path) {
            None => diffs.push(format!("missing {path}")),
            Some(g) if g != node => diffs.push(format!("{path}: want {node:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    for path in got.keys() {
        if !want.contains_key(path) {
            diffs.push(format!("unexpected {path}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: trees differ:\n{}",
        diffs.join("\n")
    );
    assert!(!want.is_empty(), "{what}: empty tree compared");
}
