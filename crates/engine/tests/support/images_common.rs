//! Helpers shared by the image tests: rootfs tars.
#![allow(dead_code)]

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
