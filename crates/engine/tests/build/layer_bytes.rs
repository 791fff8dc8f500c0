//! Layers a build keeps only as snapshots: no blob at commit, the same bytes
//! made again on demand (checked against the diff id), compressed once for
//! an OCI archive and reused, and a snapshot changed behind the store's back
//! refused by name rather than archived as a wrong layer.

use std::fs;
use std::io::Read;
use std::path::Path;

use buildr::Builder;
use buildr::Images;
use buildr::image::ArchiveFormat;
use buildr::image::SaveOptions;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn blobs(root: &Path) -> usize {
    fs::read_dir(root.join("blobs/sha256")).unwrap().count()
}

fn save(images: &Images, format: ArchiveFormat) -> Result<Vec<u8>, buildr::Error> {
    let options = SaveOptions {
        format,
        images: vec!["layers:1".into()],
        ..SaveOptions::default()
    };
    images.save(Vec::new(), &options)
}

/// The members of an archive, by name.
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(archive);
    let mut out = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.push((name, bytes));
    }
    out
}

#[test]
fn a_built_layer_is_its_snapshot_until_an_archive_needs_a_blob() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    let root = dir.path().join("root");
    write(&ctx, "Dockerfile", b"FROM scratch\nCOPY . /app/\n");
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    write(&ctx, "numbers.txt", &text);
    write(&ctx, "sub/hello", b"hello\n");
    Builder::new(&root)
        .context_dir(&ctx)
        .tag("layers:1")
        .build()
        .unwrap();
    let images = Images::open(&root).unwrap();
    let image = images.resolve("layers:1").unwrap();
    let layer = image.manifest.layers[0].clone();
    let diff_id = image.config.rootfs.diff_ids[0];

    // Committed as an uncompressed tar named by its diff id, with no blob:
    // the store holds config and manifest only.
    assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(layer.digest, diff_id);
    assert!(!root.join("blobs/sha256").join(layer.digest.hex()).exists());
    assert_eq!(blobs(&root), 2);

    // A docker archive carries the tar made again from the snapshot: the
    // same bytes, so its digest is the diff id.
    let docker = members(&save(&images, ArchiveFormat::Docker).unwrap());
    let tar = &docker
        .iter()
        .find(|(name, _)| *name == format!("{}/layer.tar", diff_id.hex()))
        .expect("layer.tar")
        .1;
    assert_eq!(buildr::image::Digest::of(tar), diff_id);
    assert_eq!(tar.len() as u64, layer.size);

    // An OCI archive gets the layer compressed: made once, stored, reused.
    let oci = members(&save(&images, ArchiveFormat::Oci).unwrap());
    assert_eq!(blobs(&root), 3, "one compressed blob made");
    let index: serde_json::Value =
        serde_json::from_slice(&oci.iter().find(|(n, _)| n == "index.json").unwrap().1).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &oci.iter()
            .find(|(n, _)| *n == format!("blobs/sha256/{}", &manifest_digest[7..]))
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_ne!(manifest_digest, image.manifest_digest.to_string());
    assert_eq!(manifest["config"]["digest"], image.id.to_string());
    let again = members(&save(&images, ArchiveFormat::Oci).unwrap());
    assert_eq!(blobs(&root), 3, "the compressed blob is reused");
    assert_eq!(again, oci, "the same archive twice");

    // system df counts the snapshot as the image's, not as cache.
    let df = images.disk_usage().unwrap();
    assert!(df.images.size > text.len() as u64, "{df:?}");
    assert!(df.build_cache.size < text.len() as u64, "{df:?}");

    // verify knows such a layer is backed by its snapshot.
    let problems = buildr::verify::verify(&root).unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    // A snapshot changed behind the store's back: the docker archive is
    // refused, naming the layer (the OCI one still has its blob).
    let snapshot = root
        .join("snapshots")
        .join(format!("sha256-{}", diff_id.hex()));
    fs::write(snapshot.join("app/sub/hello"), b"HELLO\n").unwrap();
    let err = save(&images, ArchiveFormat::Docker).unwrap_err();
    let mut err: &dyn std::error::Error = &err;
    let mut chain = err.to_string();
    while let Some(source) = err.source() {
        chain.push_str(&format!(": {source}"));
        err = source;
    }
    let err = chain;
    assert!(
        err.contains(&layer.digest.to_string()) && err.contains("changed"),
        "{err}"
    );
}
