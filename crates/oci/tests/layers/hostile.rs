//! Hostile layers: every attack ends in a clear error or a result contained
//! in the target directory, and a canary outside it never changes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use buildr_oci::{Error, ExtractOptions, extract_layer};
use buildr_testkit::tree::{Detail, Mtimes, Node, assert_same_tree, snapshot_except};
use tar::{EntryType, Header};

/// Builds tars byte by byte, without the checks a well-behaved writer does.
#[derive(Default)]
struct RawTar(Vec<u8>);

impl RawTar {
    fn header(&mut self, mut h: Header, data: &[u8]) -> &mut RawTar {
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn entry(&mut self, name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) -> &mut RawTar {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        self.header(h, data)
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), EntryType::Regular, b"", data)
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut RawTar {
        self.entry(name.as_bytes(), EntryType::Symlink, target.as_bytes(), b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut RawTar {
        self.entry(name.as_bytes(), EntryType::Link, target.as_bytes(), b"")
    }

    fn dir(&mut self, name: &str) -> &mut RawTar {
        self.entry(name.as_bytes(), EntryType::Directory, b"", b"")
    }

    fn gnu_long_name(&mut self, name: &str) -> &mut RawTar {
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        self.entry(b"././@LongLink", EntryType::GNULongName, b"", &data)
    }

    fn pax(&mut self, key: &str, value: &str) -> &mut RawTar {
        let record = format!("{key}={value}\n");
        let mut len = record.len() + 2;
        while len != record.len() + 1 + len.to_string().len() {
            len = record.len() + 1 + len.to_string().len();
        }
        let data = format!("{len} {record}");
        self.entry(b"PaxHeaders/x", EntryType::XHeader, b"", data.as_bytes())
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

struct Scene {
    tmp: tempfile::TempDir,
    /// Absolute path of the canary, without the leading '/'.
    canary_rel: String,
    outside_rel: String,
    before: BTreeMap<String, Node>,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("canary.txt"), "canary").unwrap();
        fs::create_dir(tmp.path().join("target")).unwrap();
        let canary = outside.join("canary.txt");
        let before = Scene::host_state(tmp.path());
        Scene {
            canary_rel: canary.to_str().unwrap().trim_start_matches('/').to_owned(),
            outside_rel: outside.to_str().unwrap().trim_start_matches('/').to_owned(),
            tmp,
            before,
        }
    }

    fn target(&self) -> std::path::PathBuf {
        self.tmp.path().join("target")
    }

    fn host_state(root: &Path) -> BTreeMap<String, Node> {
        snapshot_except(root, Some("target"), Detail::Full)
    }

    fn extract(
        &self,
        tar: &[u8],
        opts: &ExtractOptions,
    ) -> Result<buildr_oci::ExtractStats, Error> {
        let result = extract_layer(tar, &self.target(), opts);
        let after = Scene::host_state(self.tmp.path());
        assert_same_tree(&self.before, &after, Mtimes::OfFiles, "the tree");
        assert_eq!(
            fs::read_to_string(self.tmp.path().join("outside/canary.txt")).unwrap(),
            "canary"
        );
        result
    }
}

fn refused(result: Result<buildr_oci::ExtractStats, Error>, what: &str) -> String {
    match result {
        Err(e @ Error::BadEntry { .. }) => e.to_string(),
        other => panic!("{what}: expected a refused entry, got {other:?}"),
    }
}

fn opts() -> ExtractOptions {
    ExtractOptions::default()
}

#[test]
fn dotdot_paths_are_refused() {
    let s = Scene::new();
    let msg = refused(
        s.extract(
            &RawTar::default()
                .file("../outside/canary.txt", b"pwned")
                .finish(),
            &opts(),
        ),
        "dotdot",
    );
    assert!(
        msg.contains("../outside/canary.txt") && msg.contains(".."),
        "{msg}"
    );
    let deep = format!("{}{}", "../".repeat(12), s.canary_rel);
    refused(
        s.extract(&RawTar::default().file(&deep, b"pwned").finish(), &opts()),
        "deep dotdot",
    );
    refused(
        s.extract(
            &RawTar::default().file("a/../../x", b"pwned").finish(),
            &opts(),
        ),
        "inner dotdot",
    );
    // The same through GNU long names and PAX records.
    let tar = RawTar::default()
        .gnu_long_name("../outside/canary.txt")
        .file("short", b"pwned")
        .finish();
    refused(s.extract(&tar, &opts()), "gnu long name");
    let tar = RawTar::default()
        .pax("path", "../outside/canary.txt")
        .file("short", b"pwned")
        .finish();
    refused(s.extract(&tar, &opts()), "pax path");
    let tar = RawTar::default()
        .file("x", b"1")
        .entry(b".wh...", EntryType::Regular, b"", b"")
        .finish();
    refused(s.extract(&tar, &opts()), "whiteout of ..");
}

#[test]
fn absolute_paths_are_contained() {
    let s = Scene::new();
    let abs = format!("/{}", s.canary_rel);
    s.extract(
        &RawTar::default().file(&abs, b"contained").finish(),
        &opts(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(s.target().join(&s.canary_rel)).unwrap(),
        "contained"
    );
}

#[test]
fn symlinked_parents_stay_inside() {
    let s = Scene::new();
    let through_root = format!("a/{}", s.canary_rel);
    let through_dots = format!("b/{}", s.canary_rel);
    let through_abs_dir = "c/canary.txt";
    let tar = RawTar::default()
        .symlink("a", "/")
        .file(&through_root, b"one")
        .symlink("b", "../../../../../../../..")
        .file(&through_dots, b"two")
        .symlink("c", &format!("/{}", s.outside_rel))
        .file(through_abs_dir, b"three")
        .dir("c/sub")
        .finish();
    s.extract(&tar, &opts()).unwrap();
    // All three resolved inside the target.
    assert_eq!(
        fs::read_to_string(s.target().join(&s.canary_rel)).unwrap(),
        "three"
    );
    assert!(s.target().join(&s.outside_rel).join("sub").is_dir());
}

#[test]
fn final_symlinks_are_replaced_not_followed() {
    let s = Scene::new();
    let abs = format!("/{}", s.canary_rel);
    let tar = RawTar::default()
        .symlink("s", &abs)
        .file("s", b"replaced")
        .finish();
    s.extract(&tar, &opts()).unwrap();
    let meta = fs::symlink_metadata(s.target().join("s")).unwrap();
    assert!(meta.is_file());
    assert_eq!(
        fs::read_to_string(s.target().join("s")).unwrap(),
        "replaced"
    );
}

#[test]
fn hardlinks_cannot_reach_outside() {
    let s = Scene::new();
    let abs = format!("/{}", s.canary_rel);
    let msg = refused(
        s.extract(&RawTar::default().hardlink("h", &abs).finish(), &opts()),
        "absolute hardlink",
    );
    assert!(msg.contains("does not exist"), "{msg}");
    refused(
        s.extract(
            &RawTar::default()
                .hardlink("h", "../outside/canary.txt")
                .finish(),
            &opts(),
        ),
        "dotdot hardlink",
    );
    let tar = RawTar::default()
        .symlink("d", &format!("/{}", s.outside_rel))
        .hardlink("e", "d/canary.txt")
        .finish();
    refused(s.extract(&tar, &opts()), "hardlink through symlink");
    refused(
        s.extract(
            &RawTar::default().hardlink("h", "/etc/shadow").finish(),
            &opts(),
        ),
        "shadow",
    );
    refused(
        s.extract(
            &RawTar::default().hardlink("h", "missing").finish(),
            &opts(),
        ),
        "missing target",
    );
    // A hardlink to a symlink that points outside links the symlink itself.
    let tar = RawTar::default()
        .symlink("l", &abs)
        .hardlink("h", "l")
        .finish();
    s.extract(&tar, &opts()).unwrap();
    assert!(
        fs::symlink_metadata(s.target().join("h"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn whiteouts_through_symlinks_stay_inside() {
    let s = Scene::new();
    let tar = RawTar::default()
        .symlink("w", &format!("/{}", s.outside_rel))
        .entry(b"w/.wh.canary.txt", EntryType::Regular, b"", b"")
        .entry(b"w/.wh..wh..opq", EntryType::Regular, b"", b"")
        .symlink("v", "../outside")
        .entry(b"v/.wh..wh..opq", EntryType::Regular, b"", b"")
        .finish();
    s.extract(&tar, &opts()).unwrap();
}

#[test]
fn root_entries_are_skipped() {
    let s = Scene::new();
    let tar = RawTar::default()
        .dir(".")
        .dir("/")
        .dir("./")
        .file("ok", b"ok")
        .finish();
    let stats = s.extract(&tar, &opts()).unwrap();
    assert_eq!(stats.skipped, 3);
    assert_eq!(fs::read_to_string(s.target().join("ok")).unwrap(), "ok");
}

#[test]
fn devices_are_skipped_when_not_permitted() {
    let s = Scene::new();
    let mut h = Header::new_gnu();
    h.set_path("null").unwrap();
    h.set_entry_type(EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_mode(0o666);
    h.set_size(0);
    let tar = RawTar::default().header(h, b"").finish();
    let no_devices = ExtractOptions {
        devices: false,
        ..opts()
    };
    let stats = s.extract(&tar, &no_devices).unwrap();
    assert_eq!(stats.skipped, 1);
    assert!(!s.target().join("null").exists());
}

#[test]
fn sparse_claims_hit_the_byte_limit() {
    let s = Scene::new();
    let mut h = Header::new_gnu();
    h.set_path("sparse").unwrap();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.sparse[0].set_offset((1 << 30) - 512);
    gnu.sparse[0].set_length(512);
    gnu.set_real_size(1 << 30);
    let tar = RawTar::default().header(h, &[7u8; 512]).finish();
    let small = ExtractOptions {
        max_bytes: 16 << 20,
        ..opts()
    };
    match s.extract(&tar, &small) {
        Err(Error::Limit {
            what: "bytes",
            entry,
            ..
        }) => assert_eq!(entry, "sparse"),
        other => panic!("expected the byte limit, got {other:?}"),
    }
    // A header claiming 1 GiB with the data missing is a read error, not an allocation.
    let mut h = Header::new_gnu();
    h.set_path("liar").unwrap();
    h.set_size(1 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[1u8; 4096]);
    assert!(s.extract(&tar, &opts()).is_err());
}

#[test]
fn gzip_bombs_hit_the_byte_limit() {
    let s = Scene::new();
    let mut h = Header::new_gnu();
    h.set_path("bomb").unwrap();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let blob = gz.finish().unwrap();
    assert!(
        blob.len() < 1 << 20,
        "a bomb: {} compressed bytes",
        blob.len()
    );
    let small = ExtractOptions {
        max_bytes: 1 << 20,
        ..opts()
    };
    let err = s.extract(&blob, &small).unwrap_err();
    assert!(
        matches!(err, Error::Limit { what: "bytes", limit, .. } if limit == 1 << 20),
        "{err:?}"
    );
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn many_tiny_files_extract_and_the_entry_cap_holds() {
    let s = Scene::new();
    let mut raw = RawTar::default();
    for i in 0..100_000 {
        raw.file(&format!("d{:03}/f{i}", i / 1000), b"x");
    }
    let tar = raw.finish();
    let start = Instant::now();
    let stats = s.extract(&tar, &opts()).unwrap();
    eprintln!("100k tiny files extracted in {:?}", start.elapsed());
    assert_eq!(stats.entries, 100_000);
    assert_eq!(fs::read_dir(s.target().join("d099")).unwrap().count(), 1000);

    let capped = ExtractOptions {
        max_entries: 10_000,
        ..opts()
    };
    let target2 = s.tmp.path().join("target/again");
    fs::create_dir(&target2).unwrap();
    match extract_layer(&tar[..], &target2, &capped) {
        Err(Error::Limit {
            what: "entries",
            limit: 10_000,
            entry,
        }) => assert!(entry.starts_with("d010/"), "{entry}"),
        other => panic!("expected the entry limit, got {other:?}"),
    }
}
