//! Image commands over a real store: import, list, tag, rmi, inspect,
//! save/load round trips in both formats, hostile archives, prune, df.

use std::io::Read;

use crate::images_common::{Item, rootfs_tar, sample_rootfs};
use buildr::Error;
use buildr::Images;
use buildr::image::ArchiveFormat;
use buildr::image::ImportOptions;
use buildr::image::LoadReport;
use buildr::image::PruneImagesOptions;
use buildr::image::SaveOptions;

fn store() -> (tempfile::TempDir, Images) {
    let dir = tempfile::tempdir().unwrap();
    let images = Images::open(dir.path().join("root")).unwrap();
    (dir, images)
}

fn import(images: &Images, rootfs: &[u8], name: &str) -> buildr::image::Imported {
    images
        .import(rootfs, &ImportOptions::new(name, "test.tar"))
        .unwrap()
}

fn save(images: &Images, format: ArchiveFormat, names: &[&str]) -> Vec<u8> {
    let options = SaveOptions {
        format,
        images: names.iter().map(|s| s.to_string()).collect(),
        ..SaveOptions::default()
    };
    images.save(Vec::new(), &options).unwrap()
}

#[test]
fn import_list_inspect_tag_rmi() {
    let (_dir, images) = store();
    let imported = import(&images, &sample_rootfs(), "buildr-fixtures/sample");
    assert_eq!(imported.name, "docker.io/buildr-fixtures/sample:latest");
    assert_eq!(
        imported.diff_id,
        buildr::image::Digest::of(&sample_rootfs())
    );

    let rows = images.list().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].repository, "buildr-fixtures/sample");
    assert_eq!(rows[0].tag, "latest");
    assert_eq!(rows[0].id, imported.id);
    assert_eq!(rows[0].short_id(), imported.id.hex()[..12]);
    assert!(rows[0].created.is_some());
    // Created just now; how many seconds ago depends on the machine's load
    // (the wording itself is unit-tested with fixed times in image/time.rs).
    let ago = rows[0].created_ago();
    assert!(
        ago == "Less than a second ago" || ago == "1 second ago" || ago.ends_with(" seconds ago"),
        "{ago}"
    );

    let doc = serde_json::to_value(images.inspect("buildr-fixtures/sample").unwrap()).unwrap();
    assert_eq!(doc["Id"], imported.id.to_string());
    assert_eq!(
        doc["RepoTags"],
        serde_json::json!(["buildr-fixtures/sample:latest"])
    );
    assert_eq!(doc["Os"], "linux");
    assert_eq!(doc["RootFS"]["Type"], "layers");
    assert_eq!(
        doc["RootFS"]["Layers"],
        serde_json::json!([imported.diff_id.to_string()])
    );
    assert_eq!(doc["Comment"], "Imported from test.tar");
    assert_eq!(doc["Descriptor"]["digest"], imported.manifest.to_string());
    assert!(doc["Size"].as_u64().unwrap() > 0);

    // Tag, then every spelling resolves to the same id.
    images
        .tag("buildr-fixtures/sample:latest", "busybox:1")
        .unwrap();
    for spelling in [
        "busybox:1",
        "docker.io/library/busybox:1",
        &imported.id.to_string(),
        &imported.id.hex()[..12],
        &format!("busybox@{}", imported.manifest),
    ] {
        assert_eq!(
            images.resolve(spelling).unwrap().id,
            imported.id,
            "{spelling}"
        );
    }
    assert!(matches!(
        images.resolve("busybox"),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(images.tag("nope", "x").is_err());
    assert!(
        images
            .tag("busybox:1", &format!("x@{}", imported.manifest))
            .is_err()
    );
    let rows = images.list().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.id == imported.id));

    // By id with two names: docker's conflict, unless forced.
    let err = images.remove(&imported.id.hex()[..12], false).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");
    // By name: only that name goes.
    let removed = images.remove("busybox:1", false).unwrap();
    assert_eq!(removed, vec!["docker.io/library/busybox:1".to_owned()]);
    assert_eq!(images.list().unwrap().len(), 1);
    // By id with one name left: no force needed.
    let removed = images.remove(&imported.id.to_string(), false).unwrap();
    assert_eq!(
        removed,
        vec!["docker.io/buildr-fixtures/sample:latest".to_owned()]
    );
    assert!(images.list().unwrap().is_empty());
    assert!(matches!(
        images.remove("buildr-fixtures/sample", false),
        Err(Error::ImageNotFound { .. })
    ));
    // Forced removal of all names.
    let again = import(&images, &sample_rootfs(), "a");
    images.tag("a", "b").unwrap();
    let mut removed = images.remove(&again.id.to_string(), true).unwrap();
    removed.sort();
    assert_eq!(removed.len(), 2);
    assert!(images.list().unwrap().is_empty());
}

#[test]
fn ambiguous_id_prefix_is_an_error() {
    let (_dir, images) = store();
    let mut ids = Vec::new();
    for i in 0..40 {
        let content = format!("file {i}");
        let tar = rootfs_tar(&[Item::File("f", 0o644, content.as_bytes())]);
        ids.push(import(&images, &tar, &format!("img{i}")).id);
    }
    // 40 ids over 16 first hex digits: some share the first one.
    let first = ids[0].hex()[..1].to_owned();
    let sharing = ids.iter().filter(|id| id.hex().starts_with(&first)).count();
    let result = images.resolve(&first);
    if sharing > 1 {
        assert!(matches!(result, Err(Error::AmbiguousImage { count, .. }) if count == sharing));
    } else {
        assert_eq!(result.unwrap().id, ids[0]);
    }
}

#[test]
fn import_refuses_escaping_and_broken_tars() {
    let (_dir, images) = store();
    let mut evil = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    header.set_cksum();
    evil.append(&header, &b"evil"[..]).unwrap();
    let evil = evil.into_inner().unwrap();

    let mut link = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_entry_type(tar::EntryType::Link);
    header.as_gnu_mut().unwrap().name[..4].copy_from_slice(b"hard");
    header.as_gnu_mut().unwrap().linkname[..13].copy_from_slice(b"../etc/passwd");
    header.set_cksum();
    link.append(&header, std::io::empty()).unwrap();
    let link = link.into_inner().unwrap();

    let cases: [(&str, &[u8], &str); 4] = [
        ("dotdot", &evil, "'..'"),
        ("hard link out", &link, "'..'"),
        ("empty", b"", "no entries"),
        ("garbage", &[7u8; 1024], "entry"),
    ];
    for (name, bytes, want) in cases {
        let err = images
            .import(bytes, &ImportOptions::new("x", name))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(want) && text.contains(name), "{name}: {text}");
        assert!(images.list().unwrap().is_empty(), "{name}: tagged anyway");
    }
    assert!(images.store().verify().unwrap().is_empty());
}

#[test]
fn gzip_rootfs_imports_like_plain() {
    let (_dir, images) = store();
    let plain = sample_rootfs();
    let mut gz = flate2_like_gzip(&plain);
    let a = import(&images, &plain, "plain");
    let b = import(&images, &gz, "gz");
    assert_eq!(a.diff_id, b.diff_id);
    gz.truncate(gz.len() / 2);
    assert!(
        images
            .import(&gz[..], &ImportOptions::new("cut", "cut.tar.gz"))
            .is_err()
    );
}

/// A gzip of `data` via the oci crate's layer writer (the engine has no
/// direct flate2 dependency).
fn flate2_like_gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut writer =
        buildr_oci::LayerWriter::new(Vec::new(), &buildr_oci::CompressOptions::default()).unwrap();
    writer.write_all(data).unwrap();
    writer.finish().unwrap().1
}

fn load(images: &Images, archive: &[u8]) -> LoadReport {
    images.load(archive, "archive.tar").unwrap()
}

#[test]
fn save_load_round_trips_in_both_formats() {
    let (_a, source) = store();
    let one = import(&source, &sample_rootfs(), "one:1");
    source.tag("one:1", "ghcr.io/o/one:2").unwrap();
    let other = rootfs_tar(&[Item::Dir("data", 0o700), Item::File("data/x", 0o600, b"x")]);
    let two = import(&source, &other, "two");

    for format in [ArchiveFormat::Oci, ArchiveFormat::Docker] {
        let archive = save(&source, format, &["one:1", "ghcr.io/o/one:2", "two"]);
        let (_b, target) = store();
        let report = load(&target, &archive);
        assert_eq!(report.format, format);
        let mut names: Vec<(String, buildr::image::Digest)> = target
            .list()
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.id))
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("docker.io/library/one:1".to_owned(), one.id),
                ("docker.io/library/two:latest".to_owned(), two.id),
                ("ghcr.io/o/one:2".to_owned(), one.id),
            ],
            "{format:?}"
        );
        let doc = serde_json::to_value(target.inspect("one:1").unwrap()).unwrap();
        assert_eq!(doc["RootFS"]["Layers"][0], one.diff_id.to_string());
        assert!(target.store().verify().unwrap().is_empty());

        // And back out of the loaded store in the other format.
        let other_format = match format {
            ArchiveFormat::Oci => ArchiveFormat::Docker,
            ArchiveFormat::Docker => ArchiveFormat::Oci,
        };
        let again = save(&target, other_format, &["two"]);
        let (_c, third) = store();
        load(&third, &again);
        assert_eq!(third.resolve("two").unwrap().id, two.id);
    }

    // Saved by id: no name in the archive, loaded as an unnamed image.
    let archive = save(&source, ArchiveFormat::Oci, &[&two.id.to_string()]);
    let (_d, target) = store();
    let report = load(&target, &archive);
    assert_eq!(report.images.len(), 1);
    assert!(report.images[0].names.is_empty());
    assert_eq!(report.images[0].id, two.id);
}

#[test]
fn saved_archives_are_deterministic_and_verified() {
    let (_a, images) = store();
    import(&images, &sample_rootfs(), "det");
    for format in [ArchiveFormat::Oci, ArchiveFormat::Docker] {
        assert_eq!(
            save(&images, format, &["det"]),
            save(&images, format, &["det"])
        );
    }
    // A blob corrupted in the store is caught while saving.
    let image = images.resolve("det").unwrap();
    let layer = &image.manifest.layers[0];
    let path = images
        .store()
        .root()
        .join("blobs/sha256")
        .join(layer.digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    for format in [ArchiveFormat::Oci, ArchiveFormat::Docker] {
        let options = SaveOptions {
            format,
            images: vec!["det".into()],
            ..SaveOptions::default()
        };
        let err = images.save(Vec::new(), &options).unwrap_err();
        let chain = error_chain(&err);
        assert!(chain.contains(&layer.digest.hex()), "{format:?}: {chain}");
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One entry of an archive, to be re-serialized byte by byte.
#[derive(Clone)]
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    link: Vec<u8>,
    data: Vec<u8>,
    /// Header size field when it should lie.
    size: Option<u64>,
}

fn entries(archive: &[u8]) -> Vec<Raw> {
    let mut tar = tar::Archive::new(archive);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            Raw {
                name: e.path_bytes().into_owned(),
                kind: e.header().entry_type(),
                link: e
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
                data,
                size: None,
            }
        })
        .collect()
}

/// Writes headers by hand so that names tar::Builder refuses (`..`,
/// absolute) and lying sizes can be produced.
fn serialize(entries: &[Raw], finish: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(e.kind);
        header.set_mode(0o644);
        header.set_size(e.size.unwrap_or(e.data.len() as u64));
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..e.name.len()].copy_from_slice(&e.name);
        gnu.linkname[..e.link.len()].copy_from_slice(&e.link);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    if finish {
        out.resize(out.len() + 1024, 0);
    }
    out
}

fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        link: Vec::new(),
        data: data.to_vec(),
        size: None,
    }
}

#[test]
fn load_refuses_hostile_archives() {
    let (_a, source) = store();
    let imported = import(&source, &sample_rootfs(), "victim");
    let oci = entries(&save(&source, ArchiveFormat::Oci, &["victim"]));
    let docker = entries(&save(&source, ArchiveFormat::Docker, &["victim"]));
    let layer_hex = source.resolve("victim").unwrap().manifest.layers[0]
        .digest
        .hex();
    let blob_name = format!("blobs/sha256/{layer_hex}");
    let with = |base: &[Raw], change: &dyn Fn(&mut Vec<Raw>)| {
        let mut e = base.to_vec();
        change(&mut e);
        serialize(&e, true)
    };
    let index_pos = oci.iter().position(|e| e.name == b"index.json").unwrap();
    let other_tar = rootfs_tar(&[Item::File("other", 0o644, b"not the layer")]);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot entry",
            with(&oci, &|e| e.insert(0, file("../../etc/cron.d/x", b"x"))),
            "'..'",
        ),
        (
            "nested dotdot",
            with(&oci, &|e| e.insert(0, file("blobs/../../x", b"x"))),
            "'..'",
        ),
        (
            "absolute entry",
            with(&oci, &|e| e.insert(0, file("/etc/passwd", b"x"))),
            "absolute",
        ),
        (
            "digest lie",
            with(&oci, &|e| {
                let pos = e
                    .iter()
                    .position(|r| r.name == blob_name.as_bytes())
                    .unwrap();
                e[pos].data = b"something else entirely".to_vec();
            }),
            "but its content hashes to",
        ),
        (
            "symlink out",
            with(&oci, &|e| {
                e.insert(
                    0,
                    Raw {
                        name: b"a/layer.tar".to_vec(),
                        kind: tar::EntryType::Symlink,
                        link: b"../../../etc/shadow".to_vec(),
                        data: Vec::new(),
                        size: None,
                    },
                )
            }),
            "leaves the archive",
        ),
        (
            "hard link",
            with(&oci, &|e| {
                e.insert(
                    0,
                    Raw {
                        name: b"h".to_vec(),
                        kind: tar::EntryType::Link,
                        link: b"index.json".to_vec(),
                        data: Vec::new(),
                        size: None,
                    },
                )
            }),
            "unsupported type",
        ),
        (
            "device",
            with(&oci, &|e| {
                e.insert(
                    0,
                    Raw {
                        name: b"dev".to_vec(),
                        kind: tar::EntryType::Char,
                        link: Vec::new(),
                        data: Vec::new(),
                        size: None,
                    },
                )
            }),
            "unsupported type",
        ),
        (
            "absurd size",
            {
                let mut e = oci.clone();
                e.insert(
                    0,
                    Raw {
                        size: Some(1 << 50),
                        ..file("huge", b"")
                    },
                );
                serialize(&e, true)
            },
            "claims",
        ),
        (
            "truncated",
            {
                let mut e = oci.clone();
                let pos = e
                    .iter()
                    .position(|r| r.name == blob_name.as_bytes())
                    .unwrap();
                e.truncate(pos + 1);
                let full = e[pos].data.len();
                e[pos].data.truncate(full / 2);
                e[pos].size = Some(full as u64);
                serialize(&e, false)
            },
            "",
        ),
        (
            "missing blob",
            with(&oci, &|e| e.retain(|r| r.name != blob_name.as_bytes())),
            "not in the archive",
        ),
        (
            "size lie",
            with(&oci, &|e| {
                let text = String::from_utf8(e[index_pos].data.clone()).unwrap();
                let manifest = source.resolve("victim").unwrap().manifest_size;
                e[index_pos].data = text
                    .replace(
                        &format!("\"size\":{manifest}"),
                        &format!("\"size\":{}", manifest + 1),
                    )
                    .into_bytes();
            }),
            "the descriptor says",
        ),
        (
            "duplicate index",
            with(&oci, &|e| {
                let dup = e[index_pos].clone();
                e.push(dup)
            }),
            "appears twice",
        ),
        (
            "no layout",
            with(&oci, &|e| e.retain(|r| r.name != b"oci-layout")),
            "oci-layout",
        ),
        (
            "not json",
            with(&oci, &|e| e[index_pos].data = b"{\"manifests\": [".to_vec()),
            "index.json",
        ),
        (
            "nothing known",
            serialize(&[file("hello", b"x")], true),
            "neither index.json",
        ),
        ("garbage", vec![0x42; 4096], ""),
        (
            "docker layer swapped",
            with(&docker, &|e| {
                let pos = e
                    .iter()
                    .position(|r| r.name.ends_with(b"/layer.tar"))
                    .unwrap();
                e[pos].data = other_tar.clone();
            }),
            "uncompresses to",
        ),
        (
            "docker config renamed",
            with(&docker, &|e| {
                let pos = e
                    .iter()
                    .position(|r| r.name == format!("{}.json", imported.id.hex()).as_bytes())
                    .unwrap();
                e[pos].data.push(b' ');
            }),
            "hashes to",
        ),
        (
            "docker missing layer",
            with(&docker, &|e| e.retain(|r| !r.name.ends_with(b"/layer.tar"))),
            "not in the archive",
        ),
        (
            "docker bad repo tag",
            with(&docker, &|e| {
                let pos = e.iter().position(|r| r.name == b"manifest.json").unwrap();
                let text = String::from_utf8(e[pos].data.clone()).unwrap();
                e[pos].data = text.replace("victim:latest", "Victim:latest").into_bytes();
            }),
            "repo tag",
        ),
    ];
    for (name, archive, want) in cases {
        let (_b, target) = store();
        let err = target.load(&archive[..], name).unwrap_err();
        let text = error_chain(&err);
        assert!(text.contains(want), "{name}: {text}");
        assert!(
            target.list().unwrap().is_empty(),
            "{name}: an image was tagged"
        );
        let problems = target.store().verify().unwrap();
        assert!(problems.is_empty(), "{name}: store problems {problems:?}");
    }
    // The unmodified archives load (the cases above fail for their reason).
    for base in [&oci, &docker] {
        let (_b, target) = store();
        load(&target, &serialize(base, true));
        assert_eq!(target.resolve("victim").unwrap().id, imported.id);
    }
}

#[test]
fn docker_archive_symlinked_layers_load() {
    // Old `docker save` and skopeo write layers once and link the others.
    let (_a, source) = store();
    let imported = import(&source, &sample_rootfs(), "linked");
    let docker = entries(&save(&source, ArchiveFormat::Docker, &["linked"]));
    let mut changed = Vec::new();
    for e in docker {
        if e.name.ends_with(b"/layer.tar") {
            changed.push(file("real.tar", &e.data));
            changed.push(Raw {
                name: e.name.clone(),
                kind: tar::EntryType::Symlink,
                link: b"../real.tar".to_vec(),
                data: Vec::new(),
                size: None,
            });
        } else {
            changed.push(e);
        }
    }
    let (_b, target) = store();
    load(&target, &serialize(&changed, true));
    assert_eq!(target.resolve("linked").unwrap().id, imported.id);
}

#[test]
fn prune_removes_untagged_content_and_keeps_tagged() {
    let (_a, images) = store();
    let keep = import(&images, &sample_rootfs(), "keep");
    let other = rootfs_tar(&[Item::File("gone", 0o644, b"bye")]);
    let gone = import(&images, &other, "gone");
    let nothing = images.prune(&PruneImagesOptions::default()).unwrap();
    assert!(nothing.blobs.is_empty(), "{nothing:?}");

    images.remove("gone", false).unwrap();
    let report = images.prune(&PruneImagesOptions { all: true }).unwrap();
    let gone_image_blobs = [gone.id, gone.manifest, gone.layer];
    for digest in gone_image_blobs {
        assert!(
            report.blobs.contains(&digest),
            "{digest} not pruned: {report:?}"
        );
        assert!(!images.store().has_blob(&digest).unwrap());
    }
    assert_eq!(report.blobs.len(), 3, "{report:?}");
    assert!(report.bytes_freed > 0);
    for digest in [keep.id, keep.manifest, keep.layer] {
        assert!(images.store().has_blob(&digest).unwrap());
    }
    // What is kept is whole: it saves and verifies.
    save(&images, ArchiveFormat::Oci, &["keep"]);
    assert!(images.store().verify().unwrap().is_empty());
}

#[test]
fn system_df_splits_images_and_the_rest() {
    let (_a, images) = store();
    let empty = images.disk_usage().unwrap();
    assert_eq!(empty.images.total, 0);
    assert_eq!(empty.images.size, 0);
    let imported = import(&images, &sample_rootfs(), "df");
    images.tag("df", "df2").unwrap();
    let df = images.disk_usage().unwrap();
    assert_eq!(df.images.total, 1);
    let image = images.resolve("df").unwrap();
    assert_eq!(df.images.size, image.content_size() + image.manifest_size);
    assert_eq!(df.build_cache.size, 0);
    // An untagged image's blobs count as reclaimable cache, not images.
    images.remove(&imported.id.to_string(), true).unwrap();
    let df = images.disk_usage().unwrap();
    assert_eq!(df.images.total, 0);
    assert_eq!(
        df.build_cache.size,
        image.content_size() + image.manifest_size
    );
}
