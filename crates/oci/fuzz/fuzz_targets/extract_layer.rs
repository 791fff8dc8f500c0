//! Fuzz target: extracting an arbitrary blob (plain, gzip or zstd tar) as a
//! layer never panics and never writes outside the target directory.
//!
//! Each run extracts into `target/` of a fresh temp dir whose sibling
//! `outside/` holds a canary; afterwards the temp dir holds exactly
//! `outside/canary` (same bytes and mode) and `target/`. The first byte
//! picks apply or overlay mode; device nodes are never created (the fuzzer
//! runs as root and must not make a host disk's node, even inside the
//! target).
#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use buildr_oci::{ExtractMode, ExtractOptions, extract_layer};
use libfuzzer_sys::fuzz_target;

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, blob)) = data.split_first() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    let target = tmp.path().join("target");
    fs::create_dir(&outside).unwrap();
    fs::create_dir(&target).unwrap();
    let canary = outside.join("canary");
    fs::write(&canary, b"canary").unwrap();
    fs::set_permissions(&canary, fs::Permissions::from_mode(0o640)).unwrap();

    let opts = ExtractOptions {
        mode: if options & 1 == 0 {
            ExtractMode::Apply
        } else {
            ExtractMode::Overlay
        },
        max_bytes: 4 << 20,
        max_entries: 2000,
        devices: false,
        ..ExtractOptions::default()
    };
    let _ = extract_layer(blob, &target, &opts);

    assert_eq!(
        names(tmp.path()),
        ["outside", "target"],
        "entry next to target"
    );
    assert_eq!(names(&outside), ["canary"], "entry written outside target");
    let meta = fs::symlink_metadata(&canary).unwrap();
    assert!(meta.is_file(), "canary replaced");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o640,
        "canary mode changed"
    );
    assert_eq!(
        fs::read(&canary).unwrap(),
        b"canary",
        "canary content changed"
    );
    assert!(
        fs::symlink_metadata(&target).unwrap().is_dir(),
        "target replaced"
    );
});
