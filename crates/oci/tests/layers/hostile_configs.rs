//! Image configs with huge fields from a registry: a 10 MB `Env` entry or
//! 10^6 labels are refused by the config size cap with an error naming
//! the config's digest, before anything is tagged; a large config under the
//! cap still pulls.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{FaultServer, Req, TestImage, build_image, serve};
use buildr_cache::Store;
use buildr_oci::{
    ClientOptions, Compression, Descriptor, Error, ImageConfig, PullOptions, Reference,
    RegistryClient, media_type,
};

const NAME: &str = "test/huge";

/// The small test image with its config replaced by `edit(config)`.
fn image_with_config(edit: impl FnOnce(&mut ImageConfig)) -> TestImage {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut img = build_image(&store, &[&[("etc/x", b"x\n")]], "amd64", Compression::None);
    let mut config: ImageConfig = serde_json::from_slice(&img.config_bytes).unwrap();
    edit(&mut config);
    img.config_bytes = serde_json::to_vec(&config).unwrap();
    let digest = buildr_oci::Digest::of(&img.config_bytes);
    img.manifest.config = Descriptor::new(
        media_type::OCI_CONFIG,
        digest,
        img.config_bytes.len() as u64,
    );
    img.manifest_bytes = serde_json::to_vec(&img.manifest).unwrap();
    img.manifest_digest = buildr_oci::Digest::of(&img.manifest_bytes);
    img
}

fn pull(img: &TestImage) -> (tempfile::TempDir, Store, Result<(), Error>) {
    let content = img.content(NAME, "v1");
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        serve(&content, req, s)
    }));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let client = RegistryClient::new(ClientOptions {
        backoff: Duration::from_millis(20),
        ..ClientOptions::default()
    });
    let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
    let result = client
        .pull(&store, &reference, &PullOptions::default())
        .map(|_| ());
    (dir, store, result)
}

fn assert_refused(img: &TestImage, case: &str) {
    let (_d, store, result) = pull(img);
    let err = result.expect_err(case);
    assert!(matches!(err, Error::JsonTooLarge { .. }), "{case}: {err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&img.manifest.config.digest.to_string()) && msg.contains("limit"),
        "{case}: {msg}"
    );
    assert!(store.list_tags().unwrap().is_empty(), "{case}: tagged");
    assert!(!store.has_blob(&img.manifest.config.digest).unwrap());
    assert!(store.verify().unwrap().is_empty());
}

#[test]
fn a_ten_megabyte_env_entry_is_refused_by_the_config_cap() {
    let img = image_with_config(|c| {
        let env = c.config.get_or_insert_with(Default::default);
        env.env = Some(vec![format!("HUGE={}", "e".repeat(10 << 20))]);
    });
    assert!(img.config_bytes.len() > 10 << 20);
    assert_refused(&img, "10 MB Env");
}

#[test]
fn a_million_labels_are_refused_by_the_config_cap() {
    let img = image_with_config(|c| {
        let labels: BTreeMap<String, String> = (0..1_000_000)
            .map(|i| (format!("l{i}"), "v".to_owned()))
            .collect();
        c.config.get_or_insert_with(Default::default).labels = Some(labels);
    });
    assert_refused(&img, "10^6 labels");
}

#[test]
fn a_large_config_under_the_cap_still_pulls() {
    let img = image_with_config(|c| {
        let labels: BTreeMap<String, String> = (0..100_000)
            .map(|i| (format!("l{i}"), "v".to_owned()))
            .collect();
        c.config.get_or_insert_with(Default::default).labels = Some(labels);
    });
    assert!(img.config_bytes.len() < 8 << 20);
    let (_d, store, result) = pull(&img);
    result.unwrap();
    assert!(store.has_blob(&img.manifest.config.digest).unwrap());
}

/// Regression (cargo-fuzz `decode_image_json`): an unknown config field
/// holding a number past `u64`, parsed as `f64`, must keep its value
/// through a decode/encode/decode round trip (serde_json's
/// `float_roundtrip`), as Go's decoder keeps it; before, the re-encoded
/// config held a different number.
#[test]
fn huge_numbers_in_unknown_fields_survive_a_round_trip() {
    for doc in [
        format!(r#"{{"_rchitecture":{}}}"#, "9".repeat(110)),
        r#"{"x":1.0000000000000001e105,"y":-2.2250738585072014e-308}"#.to_owned(),
    ] {
        let config: ImageConfig =
            buildr_oci::decode_json_capped(doc.as_bytes(), 1 << 20, "config").unwrap();
        let bytes = serde_json::to_vec(&config).unwrap();
        let again: ImageConfig =
            buildr_oci::decode_json_capped(&bytes[..], 1 << 20, "config").unwrap();
        assert_eq!(config, again, "{doc}");
    }
}
