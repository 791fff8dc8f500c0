//! Fuzz target: the manifest, index and image-config decoders never panic
//! on arbitrary bytes, and whatever they accept survives a round trip
//! through their own serializer.
//!
//! The first byte picks the decoder (and, for `ManifestOrIndex::decode`,
//! the content type a registry might send); the rest is the document.
#![no_main]

use buildr_oci::{
    DEFAULT_JSON_CAP, ImageConfig, Index, Manifest, ManifestOrIndex, decode_json_capped, media_type,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(doc: &[u8]) {
    let Ok(value) = decode_json_capped::<T, _>(doc, DEFAULT_JSON_CAP, "fuzzed document") else {
        return;
    };
    let bytes = serde_json::to_vec(&value).expect("an accepted document serializes");
    let again: T = decode_json_capped(&bytes[..], u64::MAX, "re-encoded document")
        .expect("a re-encoded document decodes");
    assert_eq!(value, again, "round trip changed the document");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, doc)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => round_trip::<Manifest>(doc),
        1 => round_trip::<Index>(doc),
        2 => round_trip::<ImageConfig>(doc),
        n => {
            let content_type = match n {
                3 => None,
                4 => Some(media_type::OCI_MANIFEST),
                5 => Some(media_type::OCI_INDEX),
                6 => Some(media_type::DOCKER_MANIFEST),
                _ => Some("text/plain"),
            };
            let _ = ManifestOrIndex::decode(doc, content_type, "fuzzed manifest");
        }
    }
});
