//! Throughput of push and pull of a ~500 MB image over loopback, timed
//! beside `skopeo copy` of the same image against a second registry in
//! the same run. Slow and noisy on a shared machine, so it runs only when
//! asked:
//!
//! ```text
//! cargo test --release -p buildr-oci --test registry registry_throughput -- --ignored --nocapture
//! ```
//!
//! It still checks what it measures: every copy must be complete and
//! verified.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{build_image, noise};
use buildr_cache::Store;
use buildr_oci::{
    ClientOptions, Compression, PullOptions, PushOptions, Reference, RegistryClient, media_type,
};
use buildr_testkit::prereq::need_tool;
use buildr_testkit::process::run;
use buildr_testkit::registry::Registry;

const LAYERS: usize = 5;
const LAYER_MB: usize = 100;

#[test]
#[ignore = "throughput measurement; run with --ignored --release"]
fn push_and_pull_500mb_beside_skopeo() {
    let test = "push_and_pull_500mb_beside_skopeo";
    if !need_tool(test, "skopeo") {
        return;
    }
    let (Some(ours), Some(theirs)) = (Registry::start(test, None), Registry::start(test, None))
    else {
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let src = Store::open(src_dir.path()).unwrap();
    let contents: Vec<Vec<u8>> = (0..LAYERS)
        .map(|i| noise(LAYER_MB << 20, i as u64 + 1))
        .collect();
    let layers: Vec<Vec<(&str, &[u8])>> = contents.iter().map(|c| vec![("data", &c[..])]).collect();
    let refs: Vec<&[(&str, &[u8])]> = layers.iter().map(|l| &l[..]).collect();
    let img = build_image(&src, &refs, "amd64", Compression::None);
    drop(contents);
    let total: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
    let mb = total as f64 / 1e6;

    // An OCI layout of the same image for skopeo.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    for d in img.blobs().iter().chain([&img.manifest_digest]) {
        let from = src_dir.path().join("blobs/sha256").join(d.hex());
        fs::hard_link(&from, layout.join("blobs/sha256").join(d.hex()))
            .or_else(|_| fs::copy(&from, layout.join("blobs/sha256").join(d.hex())).map(|_| ()))
            .unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type::OCI_MANIFEST,
            "digest": img.manifest_digest.to_string(),
            "size": img.manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "bench"}
        }]
    });
    fs::write(layout.join("index.json"), index.to_string()).unwrap();

    let client = RegistryClient::new(ClientOptions::default());
    let target = Reference::parse(&format!("{}/bench/app:v1", ours.addr)).unwrap();
    let t = Instant::now();
    let report = client
        .push(&src, &img.manifest_digest, &target, &PushOptions::default())
        .unwrap();
    let our_push = t.elapsed();
    assert_eq!(report.uploaded, LAYERS + 1);

    let t = Instant::now();
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:bench", layout.display()),
        &format!("docker://{}/bench/app:v1", theirs.addr),
    ]));
    let skopeo_push = t.elapsed();

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = Store::open(dst_dir.path()).unwrap();
    let t = Instant::now();
    let pulled = RegistryClient::new(ClientOptions::default())
        .pull(&dst, &target, &PullOptions::default())
        .unwrap();
    let our_pull = t.elapsed();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.bytes_fetched, total + img.manifest.config.size);

    let out = work.path().join("out");
    let t = Instant::now();
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/bench/app:v1", theirs.addr),
        &format!("oci:{}:bench", out.display()),
    ]));
    let skopeo_pull = t.elapsed();
    assert!(dst.verify().unwrap().is_empty());

    let rate = |d: Duration| mb / d.as_secs_f64();
    eprintln!("\nimage: {LAYERS} layers, {mb:.0} MB over loopback");
    eprintln!(
        "push: buildr {:.2}s ({:.0} MB/s), skopeo {:.2}s ({:.0} MB/s), buildr/skopeo time ratio {:.2}",
        our_push.as_secs_f64(),
        rate(our_push),
        skopeo_push.as_secs_f64(),
        rate(skopeo_push),
        our_push.as_secs_f64() / skopeo_push.as_secs_f64()
    );
    eprintln!(
        "pull: buildr {:.2}s ({:.0} MB/s), skopeo {:.2}s ({:.0} MB/s), buildr/skopeo time ratio {:.2}\n",
        our_pull.as_secs_f64(),
        rate(our_pull),
        skopeo_pull.as_secs_f64(),
        rate(skopeo_pull),
        our_pull.as_secs_f64() / skopeo_pull.as_secs_f64()
    );
}
