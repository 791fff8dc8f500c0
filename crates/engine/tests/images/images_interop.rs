//! buildr's OCI archives checked by a tool nobody here wrote: `umoci unpack`
//! must reproduce the source tree exactly (path, type, mode, owner,
//! content, link target), including whiteouts of a second layer made with
//! the oci crate's tree diff. Needs root, `umoci` and `tar`; under CI=true a
//! missing prerequisite fails.

use std::path::Path;
use std::process::Command;

use crate::images_common::sample_rootfs;
use buildr::Images;
use buildr::image::ArchiveFormat;
use buildr::image::ImportOptions;
use buildr::image::SaveOptions;
use buildr_oci::{
    ContainerConfig, Descriptor, Diff, DiffSource, History, ImageConfig, LayerOptions, Manifest,
    RootFs, media_type,
};
use buildr_testkit::prereq::{need_root, need_tool};
use buildr_testkit::process::run;
use buildr_testkit::tree::{Detail, Mtimes, assert_same_tree, snapshot};

fn ready(test: &str) -> bool {
    need_root(test) && need_tool(test, "umoci") && need_tool(test, "tar")
}

/// Saves `name` as an OCI archive, unpacks the layout and runs `umoci
/// unpack` on it; returns the bundle's rootfs.
fn umoci_unpack(images: &Images, name: &str, work: &Path) -> std::path::PathBuf {
    let archive = work.join("image.tar");
    images
        .save_to_file(
            &archive,
            &SaveOptions {
                format: ArchiveFormat::Oci,
                images: vec![name.to_owned()],
                ..SaveOptions::default()
            },
        )
        .unwrap();
    let layout = work.join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout));
    let bundle = work.join("bundle");
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    bundle.join("rootfs")
}

fn untar(tar: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    run(Command::new("tar")
        .args(["--numeric-owner", "--same-owner", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(dest));
}

#[test]
fn umoci_unpacks_an_imported_rootfs_exactly() {
    if !ready("umoci_unpacks_an_imported_rootfs_exactly") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let images = Images::open(work.path().join("root")).unwrap();
    let rootfs = work.path().join("rootfs.tar");
    std::fs::write(&rootfs, sample_rootfs()).unwrap();
    images
        .import(
            std::fs::File::open(&rootfs).unwrap(),
            &ImportOptions::new("interop/sample:v1", "rootfs.tar"),
        )
        .unwrap();
    let expected = work.path().join("expected");
    untar(&rootfs, &expected);
    let got = umoci_unpack(&images, "interop/sample:v1", work.path());
    assert_same_tree(
        &snapshot(&expected, Detail::Basic),
        &snapshot(&got, Detail::Basic),
        Mtimes::Ignore,
        "umoci unpack of an import",
    );
}

#[test]
fn umoci_applies_the_whiteouts_of_a_second_layer() {
    let test = "umoci_applies_the_whiteouts_of_a_second_layer";
    if !ready(test) || !need_tool(test, "cp") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let images = Images::open(work.path().join("root")).unwrap();
    let rootfs = work.path().join("rootfs.tar");
    std::fs::write(&rootfs, sample_rootfs()).unwrap();
    let base = images
        .import(
            std::fs::File::open(&rootfs).unwrap(),
            &ImportOptions::new("interop/base", "rootfs.tar"),
        )
        .unwrap();

    // Lower: the base tree; upper: a changed copy of it.
    let lower = work.path().join("lower");
    untar(&rootfs, &lower);
    let upper = work.path().join("upper");
    run(Command::new("cp").arg("-a").arg(&lower).arg(&upper));
    std::fs::remove_file(upper.join("etc/empty")).unwrap();
    std::fs::remove_dir_all(upper.join("home/app")).unwrap();
    std::fs::write(
        upper.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::create_dir(upper.join("srv")).unwrap();
    std::fs::write(upper.join("srv/new"), "new file").unwrap();
    std::os::unix::fs::symlink("../srv/new", upper.join("etc/link")).unwrap();
    run(Command::new("chmod")
        .arg("0700")
        .arg(upper.join("bin/tool")));
    run(Command::new("chown")
        .arg("1000:50")
        .arg(upper.join("srv/new")));

    let diff = Diff::compute(DiffSource::Trees {
        lower: &lower,
        upper: &upper,
    })
    .unwrap();
    let names = diff.names().unwrap();
    assert!(names.contains(&"etc/.wh.empty".to_owned()), "{names:?}");
    assert!(names.contains(&"home/.wh.app".to_owned()), "{names:?}");

    let store = images.store();
    let writer = store.blob_writer().unwrap();
    let (digests, writer) = diff.write_layer(writer, &LayerOptions::default()).unwrap();
    let layer = writer.commit(Some(digests.digest)).unwrap();

    let base_image = images.resolve("interop/base").unwrap();
    let mut config: ImageConfig = base_image.config.clone();
    config.rootfs = RootFs {
        kind: "layers".into(),
        diff_ids: vec![base.diff_id, digests.diff_id],
    };
    config.config = Some(ContainerConfig {
        cmd: Some(vec!["/bin/sh".into()]),
        ..ContainerConfig::default()
    });
    config.history.push(History {
        created_by: Some("test: change the tree".into()),
        ..History::default()
    });
    let config_blob = store
        .put_blob(&serde_json::to_vec(&config).unwrap())
        .unwrap();
    let mut layers = base_image.manifest.layers.clone();
    layers.push(Descriptor::new(
        digests.media_type,
        layer.digest,
        layer.size,
    ));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, config_blob.digest, config_blob.size),
        layers,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let manifest_blob = store
        .put_blob(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    store
        .set_tag("docker.io/interop/changed:latest", &manifest_blob.digest)
        .unwrap();

    let got = snapshot(
        &umoci_unpack(&images, "interop/changed:latest", work.path()),
        Detail::Basic,
    );
    assert_same_tree(
        &snapshot(&upper, Detail::Basic),
        &got,
        Mtimes::Ignore,
        "umoci unpack of two layers",
    );
    // The comparison above is against the changed tree, not the base.
    assert!(!got.contains_key("home/app") && !got.contains_key("etc/empty"));
    assert_eq!((got["srv/new"].uid, got["srv/new"].gid), (1000, 50));
    assert_eq!(got["bin/tool"].mode, 0o700);
    assert_eq!(got["etc/link"].content, "../srv/new");

    // The docker format of the same image loads back with both layers.
    let docker = images
        .save(
            Vec::new(),
            &SaveOptions {
                format: ArchiveFormat::Docker,
                images: vec!["interop/changed".into()],
                ..SaveOptions::default()
            },
        )
        .unwrap();
    let other = Images::open(work.path().join("other")).unwrap();
    other.load(&docker[..], "docker.tar").unwrap();
    let loaded = other.resolve("interop/changed").unwrap();
    assert_eq!(loaded.id, config_blob.digest);
    assert_eq!(loaded.manifest.layers.len(), 2);
}
