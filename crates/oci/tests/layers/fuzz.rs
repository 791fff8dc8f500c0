//! Property tests: hostile bytes never panic, never escape the target.

use std::fs;

use buildr_oci::{
    ExtractOptions, ImageConfig, Manifest, Reference, decode_json_capped, extract_layer,
};
use buildr_testkit::tree::{Detail, Mtimes, assert_same_tree, snapshot_except};
use proptest::prelude::*;

/// A small valid layer to corrupt.
fn seed_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("etc/", tar::EntryType::Directory, None, b"");
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        None,
        b"root:x:0:0::/:/bin/sh\n",
    );
    add("lnk", tar::EntryType::Symlink, Some("etc"), b"");
    add("hard", tar::EntryType::Link, Some("etc/passwd"), b"");
    add("lnk/x", tar::EntryType::Regular, None, b"through link");
    add("etc/.wh.gone", tar::EntryType::Regular, None, b"");
    b.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_layers_never_escape(flips in prop::collection::vec((0usize..3584, any::<u8>()), 1..12)) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let target = tmp.path().join("target");
        fs::create_dir(&outside).unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(outside.join("canary"), "canary").unwrap();
        let before = snapshot_except(tmp.path(), Some("target"), Detail::Full);
        let mut tar = seed_tar();
        for (pos, byte) in flips {
            let len = tar.len();
            tar[pos % len] = byte;
        }
        let opts = ExtractOptions { max_bytes: 1 << 20, max_entries: 100, ..ExtractOptions::default() };
        let _ = extract_layer(&tar[..], &target, &opts);
        let after = snapshot_except(tmp.path(), Some("target"), Detail::Full);
        assert_same_tree(&before, &after, Mtimes::OfFiles, "the tree");
    }

    #[test]
    fn references_never_panic_and_round_trip(input in "[a-zA-Z0-9:/@._\\-\\[\\]]{0,80}|\\PC{0,40}") {
        if let Ok(r) = Reference::parse(&input) {
            let again = Reference::parse(&r.to_string()).unwrap();
            prop_assert_eq!(again, r);
        }
    }

    #[test]
    fn json_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_json_capped::<Manifest, _>(&bytes[..], 256, "manifest");
        let _ = decode_json_capped::<ImageConfig, _>(&bytes[..], 1024, "config");
    }
}
