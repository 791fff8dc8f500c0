//! The edit loop: a COPY rerun because one context file changed links the
//! unchanged files from its previous run's snapshot instead of writing them
//! again, and the layer is still exactly what a cold build makes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use buildr::Builder;
use buildr::Images;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Builds `ctx` into `root` as `tag`; returns the COPY layer's snapshot dir
/// and its diff id.
fn build(root: &Path, ctx: &Path, tag: &str) -> (PathBuf, buildr::image::Digest) {
    Builder::new(root)
        .context_dir(ctx)
        .tag(tag)
        .build()
        .unwrap();
    let image = Images::open(root).unwrap().resolve(tag).unwrap();
    let diff_id = *image.config.rootfs.diff_ids.last().unwrap();
    let dir = root
        .join("snapshots")
        .join(format!("sha256-{}", diff_id.hex()));
    (dir, diff_id)
}

#[test]
fn a_rerun_copy_links_its_unchanged_files_and_makes_the_same_layer() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY . /app/\n");
    for i in 0..40 {
        write(&ctx, &format!("src/f{i}.txt"), &format!("file {i}\n"));
    }
    let root = dir.path().join("root");
    let (first, first_id) = build(&root, &ctx, "reuse:1");

    // One file changes (content and mtime); the rest stay as they were.
    write(&ctx, "src/f7.txt", "file 7, edited\n");
    let (second, second_id) = build(&root, &ctx, "reuse:2");
    assert_ne!(first_id, second_id);
    let inode = |snap: &Path, name: &str| fs::metadata(snap.join("app/src").join(name)).unwrap();
    for i in (0..40).filter(|i| *i != 7) {
        let name = format!("f{i}.txt");
        assert_eq!(
            inode(&first, &name).ino(),
            inode(&second, &name).ino(),
            "{name} was written again"
        );
    }
    assert_ne!(
        inode(&first, "f7.txt").ino(),
        inode(&second, "f7.txt").ino()
    );
    assert_eq!(
        fs::read_to_string(second.join("app/src/f7.txt")).unwrap(),
        "file 7, edited\n"
    );
    assert_eq!(
        fs::read_to_string(first.join("app/src/f7.txt")).unwrap(),
        "file 7\n",
        "the earlier snapshot was changed"
    );

    // The same layer as a cold build of the same context in a new store.
    let (_, cold_id) = build(&dir.path().join("cold"), &ctx, "reuse:cold");
    assert_eq!(second_id, cold_id);

    // A file whose mode changed (same size and mtime) is written, not
    // linked: the link would carry the old mode.
    let f3 = ctx.join("src/f3.txt");
    let mtime = fs::metadata(&f3).unwrap().modified().unwrap();
    fs::set_permissions(&f3, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::File::options()
        .write(true)
        .open(&f3)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (third, _) = build(&root, &ctx, "reuse:3");
    assert_ne!(
        inode(&second, "f3.txt").ino(),
        inode(&third, "f3.txt").ino()
    );
    assert_eq!(inode(&third, "f3.txt").mode() & 0o777, 0o600);
    assert_eq!(inode(&second, "f3.txt").mode() & 0o777, 0o644);
    assert_eq!(
        inode(&second, "f5.txt").ino(),
        inode(&third, "f5.txt").ino()
    );
    assert!(buildr::verify::verify(&root).unwrap().is_empty());
}

/// A symlink the previous run copied (`a -> <host dir>`) never leads the
/// reuse lookup out of its snapshot: a host file that matches the new
/// source's size, mtime, mode and owner is not linked into the layer.
#[test]
fn a_symlink_in_the_previous_run_never_leads_out_of_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    write(&host, "f", "secret\n");
    let ctx = dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY . /app/\n");
    std::os::unix::fs::symlink(&host, ctx.join("a")).unwrap();
    let root = dir.path().join("root");
    build(&root, &ctx, "escape:1");

    // Now `a` is a directory whose `f` looks like the host file to stat.
    fs::remove_file(ctx.join("a")).unwrap();
    write(&ctx, "a/f", "public\n");
    let secret = fs::metadata(host.join("f")).unwrap();
    fs::File::options()
        .write(true)
        .open(ctx.join("a/f"))
        .unwrap()
        .set_modified(secret.modified().unwrap())
        .unwrap();
    let (snap, _) = build(&root, &ctx, "escape:2");
    let copied = snap.join("app/a/f");
    assert_eq!(fs::read_to_string(&copied).unwrap(), "public\n");
    assert_ne!(fs::metadata(&copied).unwrap().ino(), secret.ino());
}
