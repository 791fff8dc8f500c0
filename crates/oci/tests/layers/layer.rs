//! Diff -> layer -> extract round trips on real overlayfs and on two trees,
//! determinism, and interop with GNU tar and umoci.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use buildr_oci::{
    CompressOptions, Compression, Descriptor, Diff, DiffSource, Digest, ExtractMode,
    ExtractOptions, ImageConfig, Index, LayerOptions, Manifest, Platform, decompress,
    extract_layer, media_type,
};
use buildr_testkit::prereq::{need_root, need_tool};
use buildr_testkit::process::run;
use buildr_testkit::tree::{Detail, Mtimes, assert_same_tree, copy_tree, set_xattr, snapshot};
use rustix::fs::{FileType, Mode, makedev, mknodat};

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn chmod(root: &Path, rel: &str, mode: u32) {
    fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).unwrap();
}

const LONG: &str =
    "a_directory_name_that_is_long_enough_to_push_the_full_path_over_one_hundred_bytes_in_total";

fn make_lower(root: &Path) {
    write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    write(root, "etc/keep", "keep\n");
    write(root, "del_file", "x");
    write(root, "del_dir/a/b", "deep");
    write(root, "replace/old", "old");
    write(root, "replace/sub/x", "x");
    write(root, "bin/tool", "#!/bin/sh\n");
    chmod(root, "bin/tool", 0o755);
    write(root, "modify", "before");
    write(root, "owned", "o");
    symlink("etc/passwd", root.join("link")).unwrap();
}

/// The same changes, made through an overlay mount or on a plain copy.
fn mutate(root: &Path) {
    fs::remove_file(root.join("del_file")).unwrap();
    fs::remove_dir_all(root.join("del_dir")).unwrap();
    fs::remove_dir_all(root.join("replace")).unwrap();
    fs::create_dir(root.join("replace")).unwrap();
    chmod(root, "replace", 0o750);
    write(root, "replace/new", "new");
    write(root, "new_file", "hello");
    fs::hard_link(root.join("new_file"), root.join("new_link")).unwrap();
    write(root, "bin/suid", "suid");
    rustix::fs::chown(
        root.join("bin/suid"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1000)),
    )
    .unwrap();
    chmod(root, "bin/suid", 0o4755);
    fs::create_dir(root.join("tmp")).unwrap();
    chmod(root, "tmp", 0o1777);
    fs::create_dir(root.join("shared")).unwrap();
    chmod(root, "shared", 0o2775);
    set_xattr(&root.join("etc/keep"), "user.test", b"value");
    set_xattr(&root.join("bin/tool"), "security.capability", &CAP_NET_BIND);
    fs::create_dir_all(root.join("run")).unwrap();
    let run = fs::File::open(root.join("run")).unwrap();
    mknodat(&run, "fifo", FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
    fs::create_dir_all(root.join("dev")).unwrap();
    let dev = fs::File::open(root.join("dev")).unwrap();
    mknodat(
        &dev,
        "null2",
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        makedev(1, 3),
    )
    .unwrap();
    write(root, "modify", "after!");
    write(root, &format!("long/{LONG}/{LONG}.txt"), "long");
    fs::remove_file(root.join("link")).unwrap();
    symlink("etc/keep", root.join("link")).unwrap();
    rustix::fs::chown(
        root.join("owned"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(5678)),
    )
    .unwrap();
}

fn mount_overlay(lower: &str, upper_work: Option<(&Path, &Path)>, merged: &Path) {
    let mut opts = format!("lowerdir={lower}");
    if let Some((upper, work)) = upper_work {
        opts += &format!(
            ",upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            upper.display(),
            work.display()
        );
    }
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(merged));
}

fn umount(path: &Path) {
    run(Command::new("umount").arg(path));
}

fn layer_bytes(
    diff: &Diff,
    compression: Compression,
    threads: usize,
) -> (buildr_oci::LayerDigests, Vec<u8>) {
    let opts = LayerOptions {
        compress: CompressOptions {
            compression,
            level: None,
            threads,
        },
        source_date_epoch: None,
    };
    let (digests, blob) = diff.write_layer(Vec::new(), &opts).unwrap();
    assert_eq!(digests.digest, Digest::of(&blob));
    assert_eq!(digests.size, blob.len() as u64);
    let mut tar = Vec::new();
    decompress(&blob[..])
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(digests.diff_id, Digest::of(&tar));
    (digests, blob)
}

/// A `security.capability` v2 value granting cap_net_bind_service.
const CAP_NET_BIND: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
#[test]
fn overlay_upper_diff_round_trips() {
    if !need_root("overlay_upper_diff_round_trips") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, work, merged, applied, ovl, remerged] = [
        "lower", "upper", "work", "merged", "applied", "ovl", "remerged",
    ]
    .map(|n| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    });
    make_lower(&lower);
    mount_overlay(&lower.display().to_string(), Some((&upper, &work)), &merged);
    mutate(&merged);
    let want = snapshot(&merged, Detail::Full);
    umount(&merged);

    let diff = Diff::compute(DiffSource::OverlayUpper(&upper)).unwrap();
    let names = diff.names().unwrap();
    for expected in [
        ".wh.del_file",
        ".wh.del_dir",
        "replace",
        "replace/.wh..wh..opq",
        "replace/new",
        "new_link",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("del_dir/")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "etc/passwd"),
        "unchanged file in diff: {names:?}"
    );
    let (_, blob) = layer_bytes(&diff, Compression::Gzip, 2);

    // Apply onto a full copy of lower: must equal what the overlay showed.
    copy_tree(&lower, &applied);
    extract_layer(&blob[..], &applied, &ExtractOptions::default()).unwrap();
    assert_same_tree(
        &want,
        &snapshot(&applied, Detail::Full),
        Mtimes::OfFiles,
        "the tree",
    );

    // Overlay form: stack it on lower and mount again.
    let opts = ExtractOptions {
        mode: ExtractMode::Overlay,
        ..ExtractOptions::default()
    };
    extract_layer(&blob[..], &ovl, &opts).unwrap();
    let wh = fs::symlink_metadata(ovl.join("del_file")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));
    let mut v = [0u8; 8];
    let n =
        rustix::fs::lgetxattr(ovl.join("replace"), "trusted.overlay.opaque", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"y");
    mount_overlay(
        &format!("{}:{}", ovl.display(), lower.display()),
        None,
        &remerged,
    );
    let got = snapshot(&remerged, Detail::Full);
    umount(&remerged);
    assert_same_tree(&want, &got, Mtimes::OfFiles, "the tree");
}

#[test]
fn two_tree_diff_round_trips() {
    if !need_root("two_tree_diff_round_trips") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, applied] = ["lower", "upper", "applied"].map(|n| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    });
    make_lower(&lower);
    copy_tree(&lower, &upper);
    mutate(&upper);

    let diff = Diff::compute(DiffSource::Trees {
        lower: &lower,
        upper: &upper,
    })
    .unwrap();
    let names = diff.names().unwrap();
    for expected in [
        ".wh.del_file",
        ".wh.del_dir",
        "etc",
        "etc/keep",
        "modify",
        "link",
        "owned",
        "bin/tool",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    for absent in [
        "etc/passwd",
        "del_dir/a",
        "del_dir/a/b",
        ".wh.replace",
        "replace/old",
    ] {
        assert!(
            !names.iter().any(|n| n == absent),
            "{absent} should not be in {names:?}"
        );
    }
    // A replaced dir is emitted whole (its old children get no whiteouts).
    for expected in [
        "replace",
        "replace/.wh.old",
        "replace/.wh.sub",
        "replace/new",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let (_, blob) = layer_bytes(&diff, Compression::Zstd, 2);
    copy_tree(&lower, &applied);
    extract_layer(&blob[..], &applied, &ExtractOptions::default()).unwrap();
    assert_same_tree(
        &snapshot(&upper, Detail::Full),
        &snapshot(&applied, Detail::Full),
        Mtimes::OfFiles,
        "the tree",
    );
}

#[test]
fn content_change_with_same_size_is_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("l"), tmp.path().join("u"));
    write(&lower, "f", "aaaa");
    write(&upper, "f", "bbbb");
    // Same size, same whole-second mtime, zero nanoseconds: content decides.
    for p in [&lower, &upper] {
        let f = fs::File::options().write(true).open(p.join("f")).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .unwrap();
    }
    let diff = Diff::compute(DiffSource::Trees {
        lower: &lower,
        upper: &upper,
    })
    .unwrap();
    assert_eq!(diff.names().unwrap(), vec!["f".to_owned()]);
    write(&upper, "f", "aaaa");
    let f = fs::File::options()
        .write(true)
        .open(upper.join("f"))
        .unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    let diff = Diff::compute(DiffSource::Trees {
        lower: &lower,
        upper: &upper,
    })
    .unwrap();
    assert!(diff.is_empty().unwrap(), "{:?}", diff.names());
}

fn sample_tree(root: &Path) {
    make_lower(root);
    if rustix::process::geteuid().is_root() {
        mutate(root);
        // Ids over ustar's 2^21 and a link target over 100 bytes go to PAX.
        write(root, "big_ids", "b");
        rustix::fs::chown(
            root.join("big_ids"),
            Some(rustix::fs::Uid::from_raw(3_000_000)),
            Some(rustix::fs::Gid::from_raw(3_000_001)),
        )
        .unwrap();
        symlink(format!("long/{LONG}/{LONG}.txt"), root.join("long_target")).unwrap();
    }
    for i in 0..50 {
        write(root, &format!("many/file{i:03}"), &"x".repeat(i * 97));
    }
}

#[test]
fn layers_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (empty, a, b) = (
        tmp.path().join("empty"),
        tmp.path().join("a"),
        tmp.path().join("b"),
    );
    fs::create_dir_all(&empty).unwrap();
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    sample_tree(&a);
    copy_tree(&a, &b);
    let layer = |root: &Path, threads| {
        let diff = Diff::compute(DiffSource::Trees {
            lower: &empty,
            upper: root,
        })
        .unwrap();
        layer_bytes(&diff, Compression::Gzip, threads)
    };
    let (d1, b1) = layer(&a, 1);
    let (d2, b2) = layer(&a, 2);
    let (d3, b3) = layer(&b, 2);
    assert_eq!(d1, d2);
    assert_eq!(b1, b2);
    assert_eq!(d1, d3, "a copy of the tree elsewhere gives the same layer");
    assert_eq!(b1, b3);
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let (empty, a) = (tmp.path().join("empty"), tmp.path().join("a"));
    fs::create_dir_all(&empty).unwrap();
    sample_tree(&a);
    let diff = Diff::compute(DiffSource::Trees {
        lower: &empty,
        upper: &a,
    })
    .unwrap();
    let tar = diff.write_tar(Vec::new(), Some(1_000)).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let mut n = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        assert!(entry.header().mtime().unwrap() <= 1_000);
        assert_eq!(entry.header().username_bytes(), Some(&b""[..]));
        n += 1;
    }
    assert!(n > 50);
}

#[test]
fn gnu_tar_reads_our_layers() {
    if !need_tool("gnu_tar_reads_our_layers", "tar") || !need_root("gnu_tar_reads_our_layers") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (empty, tree, out) = (
        tmp.path().join("empty"),
        tmp.path().join("tree"),
        tmp.path().join("out"),
    );
    fs::create_dir_all(&empty).unwrap();
    fs::create_dir_all(&out).unwrap();
    sample_tree(&tree);
    let diff = Diff::compute(DiffSource::Trees {
        lower: &empty,
        upper: &tree,
    })
    .unwrap();
    let (_, blob) = layer_bytes(&diff, Compression::Gzip, 2);
    let layer = tmp.path().join("layer.tar.gz");
    fs::write(&layer, &blob).unwrap();

    let listing = run(Command::new("tar").arg("-tvzf").arg(&layer));
    assert!(
        listing.contains(&format!("long/{LONG}/{LONG}.txt")),
        "{listing}"
    );
    assert!(listing.contains("new_link link to new_file"), "{listing}");
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpzf"])
        .arg(&layer)
        .arg("-C")
        .arg(&out));
    assert_same_tree(
        &snapshot(&tree, Detail::Full),
        &snapshot(&out, Detail::Full),
        Mtimes::OfFiles,
        "the tree",
    );
}

#[test]
fn umoci_unpacks_our_image() {
    if !need_tool("umoci_unpacks_our_image", "umoci") || !need_root("umoci_unpacks_our_image") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (empty, tree, layout) = (
        tmp.path().join("empty"),
        tmp.path().join("tree"),
        tmp.path().join("layout"),
    );
    fs::create_dir_all(&empty).unwrap();
    sample_tree(&tree);
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };

    let diff = Diff::compute(DiffSource::Trees {
        lower: &empty,
        upper: &tree,
    })
    .unwrap();
    let (digests, blob) = layer_bytes(&diff, Compression::Gzip, 2);
    put(&blob);
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    config.rootfs.diff_ids.push(digests.diff_id);
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = put(&config_bytes);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(
            media_type::OCI_CONFIG,
            config_digest,
            config_bytes.len() as u64,
        ),
        layers: vec![Descriptor::new(
            digests.media_type,
            digests.digest,
            digests.size,
        )],
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(&manifest_bytes);
    let mut desc = Descriptor::new(
        media_type::OCI_MANIFEST,
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    desc.annotations = Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            "test".to_owned(),
        )]
        .into(),
    );
    desc.platform = Some(Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Platform::default()
    });
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        artifact_type: None,
        manifests: vec![desc],
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", layout.display()))
        .arg(&bundle));
    assert_same_tree(
        &snapshot(&tree, Detail::Full),
        &snapshot(&bundle.join("rootfs"), Detail::Full),
        Mtimes::OfFiles,
        "the tree",
    );
}

#[test]
fn full_tree_round_trips_through_our_extractor() {
    let tmp = tempfile::tempdir().unwrap();
    let (empty, tree) = (tmp.path().join("empty"), tmp.path().join("tree"));
    fs::create_dir_all(&empty).unwrap();
    sample_tree(&tree);
    let diff = Diff::compute(DiffSource::Trees {
        lower: &empty,
        upper: &tree,
    })
    .unwrap();
    for (i, compression) in [Compression::Gzip, Compression::Zstd, Compression::None]
        .into_iter()
        .enumerate()
    {
        let (_, blob) = layer_bytes(&diff, compression, 2);
        let out = tmp.path().join(format!("out{i}"));
        fs::create_dir(&out).unwrap();
        extract_layer(&blob[..], &out, &ExtractOptions::default()).unwrap();
        assert_same_tree(
            &snapshot(&tree, Detail::Full),
            &snapshot(&out, Detail::Full),
            Mtimes::OfFiles,
            "the tree",
        );
    }
}

/// An upper dir is walked a directory at a time, not listed and sorted as
/// a whole: the order must still be component-wise over tar names, with
/// whiteouts under their `.wh.` names and the opaque marker among its
/// directory's children (a stored snapshot is turned back into a tar that
/// must hash to the diff id it was committed under).
#[test]
fn upper_dir_walk_is_in_tar_name_order() {
    if !need_root("upper_dir_walk_is_in_tar_name_order") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path();
    for file in ["-x", "Z", "a-b", "a/!b", "a/c", "a.b/x"] {
        let path = upper.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, file).unwrap();
    }
    // A socket is not part of a layer.
    let _socket = std::os::unix::net::UnixListener::bind(upper.join("a/sock")).unwrap();
    let a = fs::File::open(upper.join("a")).unwrap();
    mknodat(
        &a,
        "d",
        FileType::CharacterDevice,
        Mode::empty(),
        makedev(0, 0),
    )
    .unwrap();
    rustix::fs::fsetxattr(
        &a,
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let diff = Diff::compute(DiffSource::OverlayUpper(upper)).unwrap();
    assert_eq!(
        diff.names().unwrap(),
        [
            "-x",
            "Z",
            "a",
            "a/!b",
            "a/.wh..wh..opq",
            "a/.wh.d",
            "a/c",
            "a-b",
            "a.b",
            "a.b/x"
        ]
    );
    assert!(!diff.is_empty().unwrap());
    let tar = diff.write_tar(Vec::new(), None).unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let in_tar: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8_lossy(&e.path_bytes())
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    assert_eq!(in_tar, diff.names().unwrap());
    let empty = tempfile::tempdir().unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(empty.path().join("s")).unwrap();
    let diff = Diff::compute(DiffSource::OverlayUpper(empty.path())).unwrap();
    assert!(diff.is_empty().unwrap(), "only a socket");
}
