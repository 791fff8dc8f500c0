//! Store behaviour: atomic writes, verified reads, snapshots, records, tags,
//! garbage collection, verification and thread concurrency.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use buildr_cache::{
    Digest, Error, Problem, PruneOptions, Record, RecordKey, Roots, SnapshotId, Store,
};

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn tmp_entries(store: &Store) -> usize {
    fs::read_dir(store.root().join("tmp")).unwrap().count()
}

fn blob_file(store: &Store, digest: &Digest) -> std::path::PathBuf {
    store.root().join("blobs/sha256").join(digest.hex())
}

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn layout_is_created_and_versioned() {
    let (_dir, store) = new_store();
    let root = store.root();
    for dir in [
        "blobs/sha256",
        "snapshots",
        "records",
        "tmp",
        "containers",
        "volumes",
    ] {
        assert!(root.join(dir).is_dir(), "{dir} missing");
    }
    assert_eq!(
        fs::read_to_string(root.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert_eq!(
        fs::read_to_string(root.join("layout-version")).unwrap(),
        "1\n"
    );
    // Reopening an existing store works.
    Store::open(root).unwrap();
}

#[test]
fn refuses_newer_or_garbage_layout() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("layout-version"), "2\n").unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewerLayout {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    // Nothing was written into the newer store.
    assert!(!dir.path().join("blobs").exists());

    fs::write(dir.path().join("layout-version"), "banana").unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::BadLayout { .. }), "{err}");
    assert!(err.to_string().contains("layout-version"), "{err}");
}

#[test]
fn blob_writer_streams_and_commits() {
    let (_dir, store) = new_store();
    let data = bytes(1, 3 * 1024 * 1024 + 17);
    let mut writer = store.blob_writer().unwrap();
    for chunk in data.chunks(10_000) {
        writer.write_all(chunk).unwrap();
    }
    assert_eq!(tmp_entries(&store), 1, "temp file while writing");
    let info = writer.commit(Some(Digest::of(&data))).unwrap();
    assert_eq!(info.digest, Digest::of(&data));
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(tmp_entries(&store), 0);
    assert!(store.has_blob(&info.digest).unwrap());
    assert_eq!(store.blob_size(&info.digest).unwrap(), data.len() as u64);

    let mut back = Vec::new();
    store
        .open_blob(&info.digest)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, data);
    store.verify_blob(&info.digest).unwrap();

    // Writing the same content again is fine and leaves one copy.
    let again = store.put_blob(&data).unwrap();
    assert_eq!(again, info);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn digest_mismatch_names_both_and_removes_temp() {
    let (_dir, store) = new_store();
    let mut writer = store.blob_writer().unwrap();
    writer.write_all(b"actual content").unwrap();
    let expected = Digest::of(b"other content");
    let err = writer.commit(Some(expected)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&expected.to_string()), "{msg}");
    assert!(
        msg.contains(&Digest::of(b"actual content").to_string()),
        "{msg}"
    );
    assert_eq!(tmp_entries(&store), 0);
    assert!(!store.has_blob(&Digest::of(b"actual content")).unwrap());
}

#[test]
fn dropped_writer_leaves_nothing() {
    let (_dir, store) = new_store();
    let mut writer = store.blob_writer().unwrap();
    writer.write_all(&bytes(2, 100_000)).unwrap();
    drop(writer);
    assert_eq!(tmp_entries(&store), 0);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

/// One way to damage a blob file on disk.
struct Damage {
    name: &'static str,
    apply: fn(&Path),
    reason_contains: &'static str,
}

const DAMAGES: &[Damage] = &[
    Damage {
        name: "flipped byte in the middle",
        apply: |p| {
            let mut f = OpenOptions::new().read(true).write(true).open(p).unwrap();
            f.seek(SeekFrom::Start(50_000)).unwrap();
            let mut b = [0u8; 1];
            f.read_exact(&mut b).unwrap();
            f.seek(SeekFrom::Start(50_000)).unwrap();
            f.write_all(&[b[0] ^ 0x01]).unwrap();
        },
        reason_contains: "content hashes to",
    },
    Damage {
        name: "flipped last byte",
        apply: |p| {
            let mut data = fs::read(p).unwrap();
            *data.last_mut().unwrap() ^= 0x80;
            fs::write(p, data).unwrap();
        },
        reason_contains: "content hashes to",
    },
    Damage {
        name: "truncated",
        apply: |p| {
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(70_000).unwrap();
        },
        reason_contains: "content hashes to",
    },
    Damage {
        name: "emptied",
        apply: |p| fs::write(p, b"").unwrap(),
        reason_contains: "content hashes to",
    },
    Damage {
        name: "extended",
        apply: |p| {
            let mut f = OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"trailing garbage").unwrap();
        },
        reason_contains: "content hashes to",
    },
    Damage {
        name: "replaced by a directory",
        apply: |p| {
            fs::remove_file(p).unwrap();
            fs::create_dir(p).unwrap();
        },
        reason_contains: "not a regular file",
    },
];

#[test]
fn corrupt_blobs_are_never_served_as_good() {
    for damage in DAMAGES {
        let (_dir, store) = new_store();
        let data = bytes(3, 100_000);
        let digest = store.put_blob(&data).unwrap().digest;
        (damage.apply)(&blob_file(&store, &digest));

        // Streaming read: an error by the end, never a clean EOF.
        let read_result = store.open_blob(&digest).and_then(|mut r| {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map_err(|e| Error::Io {
                op: "read",
                path: "test".into(),
                source: e,
            })
        });
        let err = read_result.expect_err(damage.name);
        let msg = match &err {
            Error::Io { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::InvalidData, "{}", damage.name);
                let inner = source.get_ref().unwrap().downcast_ref::<Error>().unwrap();
                assert!(matches!(inner, Error::CorruptBlob { digest: d, .. } if *d == digest));
                inner.to_string()
            }
            other => other.to_string(),
        };
        assert!(msg.contains(&digest.to_string()), "{}: {msg}", damage.name);
        assert!(
            msg.contains(damage.reason_contains),
            "{}: {msg}",
            damage.name
        );

        // Full check and store-wide verify agree.
        let err = store.verify_blob(&digest).unwrap_err();
        assert!(
            matches!(err, Error::CorruptBlob { .. }),
            "{}: {err}",
            damage.name
        );
        let problems = store.verify().unwrap();
        assert!(
            matches!(problems.as_slice(), [Problem::CorruptBlob { digest: d, .. }] if *d == digest),
            "{}: {problems:?}",
            damage.name
        );
    }
}

#[test]
fn size_mismatch_and_early_stop_are_caught() {
    let (_dir, store) = new_store();
    let data = bytes(4, 200_000);
    let digest = store.put_blob(&data).unwrap().digest;
    let err = store.open_blob_sized(&digest, 1234).unwrap_err();
    assert!(
        err.to_string().contains("the descriptor says 1234"),
        "{err}"
    );
    store
        .open_blob_sized(&digest, 200_000)
        .unwrap()
        .finish()
        .unwrap();

    // A consumer reading only a prefix then calling finish() still gets the
    // corruption that sits after what it read.
    let path = blob_file(&store, &digest);
    let mut damaged = fs::read(&path).unwrap();
    damaged[199_000] ^= 0xff;
    fs::write(&path, damaged).unwrap();
    let mut reader = store.open_blob(&digest).unwrap();
    let mut prefix = vec![0u8; 1000];
    reader.read_exact(&mut prefix).unwrap();
    let err = reader.finish().unwrap_err();
    assert!(matches!(err, Error::CorruptBlob { .. }), "{err}");
    assert!(matches!(
        store.read_blob(&digest, 1 << 20),
        Err(Error::CorruptBlob { .. })
    ));
    assert!(matches!(
        store.read_blob(&digest, 10),
        Err(Error::BlobTooLarge { .. })
    ));
    let missing = Digest::of(b"missing");
    assert!(matches!(
        store.open_blob(&missing),
        Err(Error::BlobNotFound { .. })
    ));
    assert!(matches!(
        store.blob_size(&missing),
        Err(Error::BlobNotFound { .. })
    ));
}

#[test]
fn snapshots_commit_atomically() {
    let (_dir, store) = new_store();
    let id = SnapshotId::from_digest(&Digest::of(b"layer"));
    assert!(!store.has_snapshot(&id).unwrap());

    // A failing fill leaves nothing behind.
    let err = store
        .create_snapshot(&id, |dir| {
            fs::write(dir.join("half"), b"x").unwrap();
            Err(Error::NoDefaultRoot)
        })
        .unwrap_err();
    assert!(matches!(err, Error::NoDefaultRoot));
    assert!(!store.has_snapshot(&id).unwrap());
    assert_eq!(tmp_entries(&store), 0);

    let path = store
        .create_snapshot::<Error, _>(&id, |dir| {
            fs::create_dir(dir.join("etc")).unwrap();
            fs::write(dir.join("etc/hostname"), b"box").unwrap();
            std::os::unix::fs::symlink("/nowhere", dir.join("dangling")).unwrap();
            Ok(())
        })
        .unwrap();
    assert_eq!(path, store.snapshot_path(&id).unwrap());
    assert_eq!(fs::read(path.join("etc/hostname")).unwrap(), b"box");
    assert_eq!(tmp_entries(&store), 0);

    // Existing: fill is not called again.
    store
        .create_snapshot::<Error, _>(&id, |_| panic!("fill called for an existing snapshot"))
        .unwrap();

    assert!(store.remove_snapshot(&id).unwrap());
    assert!(!store.remove_snapshot(&id).unwrap());
    assert!(matches!(
        store.snapshot_path(&id),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn read_only_snapshot_trees_are_removable() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, store) = new_store();
    let id = SnapshotId::new("ro-tree").unwrap();
    store
        .create_snapshot::<Error, _>(&id, |dir| {
            let sub = dir.join("locked");
            fs::create_dir(&sub).unwrap();
            fs::write(sub.join("f"), b"x").unwrap();
            fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).unwrap();
            Ok(())
        })
        .unwrap();
    assert!(store.remove_snapshot(&id).unwrap());
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn snapshot_ids_are_validated() {
    for bad in [
        "",
        ".hidden",
        "a/b",
        "..",
        "a:b",
        "sp ace",
        &"x".repeat(129),
    ] {
        assert!(SnapshotId::new(bad).is_err(), "{bad:?} accepted");
    }
    for good in ["sha256-abc", "blake3-0f", "layer_1.2"] {
        SnapshotId::new(good).unwrap();
    }
    let key = RecordKey::of(b"k");
    assert_eq!(
        SnapshotId::from_cache_key(&key).as_str(),
        format!("blake3-{}", key.hex())
    );
    assert!(serde_json::from_str::<SnapshotId>(r#""../etc""#).is_err());
}

#[test]
fn records_only_name_existing_content() {
    let (_dir, store) = new_store();
    let key = RecordKey::of(b"RUN make");
    let blob = store.put_blob(b"layer bytes").unwrap().digest;
    let snap = SnapshotId::new("snap-1").unwrap();
    let record = Record {
        blobs: vec![blob],
        snapshots: vec![snap.clone()],
        value: serde_json::json!({"layer": blob.to_string()}),
    };
    let err = store.put_record(&key, &record).unwrap_err();
    assert!(
        matches!(&err, Error::MissingReferent { what, .. } if what.contains("snap-1")),
        "{err}"
    );
    assert_eq!(store.get_record(&key).unwrap(), None);

    store
        .create_snapshot::<Error, _>(&snap, |_| Ok(()))
        .unwrap();
    store.put_record(&key, &record).unwrap();
    assert_eq!(store.get_record(&key).unwrap(), Some(record.clone()));
    assert_eq!(tmp_entries(&store), 0);

    // Content gone: a miss, and verify says why.
    store.remove_snapshot(&snap).unwrap();
    assert_eq!(store.get_record(&key).unwrap(), None);
    let problems = store.verify().unwrap();
    assert!(
        matches!(problems.as_slice(), [Problem::DanglingRecord { key: k, .. }] if *k == key),
        "{problems:?}"
    );
    assert!(store.remove_record(&key).unwrap());
    assert!(!store.remove_record(&key).unwrap());
}

#[test]
fn corrupt_and_misplaced_records_are_reported() {
    let (_dir, store) = new_store();
    let key = RecordKey::of(b"a");
    let other = RecordKey::of(b"b");
    store.put_record(&key, &Record::default()).unwrap();
    let path = store
        .root()
        .join("records")
        .join(format!("{}.json", key.hex()));
    let other_path = store
        .root()
        .join("records")
        .join(format!("{}.json", other.hex()));
    fs::copy(&path, &other_path).unwrap();
    fs::write(&path, b"{\"key\": 12").unwrap();
    fs::write(store.root().join("records/notes.txt"), b"hi").unwrap();

    for (k, expect) in [(key, "expected a string"), (other, "holds the record of")] {
        let err = store.get_record(&k).unwrap_err();
        assert!(matches!(err, Error::CorruptRecord { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&k.to_string()) && msg.contains(expect),
            "{msg}"
        );
    }
    let problems = store.verify().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().all(|p| matches!(
        p,
        Problem::CorruptRecord { .. } | Problem::StrayEntry { .. }
    )));

    // Prune drops corrupt records and stray files.
    let report = store.prune(&PruneOptions::default()).unwrap();
    assert_eq!(report.records.len(), 2, "{report:?}");
    assert_eq!(report.stray_paths.len(), 1, "{report:?}");
    assert_eq!(store.verify().unwrap(), vec![]);
}

#[test]
fn tags_set_get_list_remove() {
    let (_dir, store) = new_store();
    let m1 = store.put_blob(br#"{"schemaVersion":2}"#).unwrap().digest;
    let m2 = store
        .put_blob(br#"{"schemaVersion":2,"x":1}"#)
        .unwrap()
        .digest;
    let name = "docker.io/library/busybox:latest";
    assert_eq!(store.set_tag(name, &m1).unwrap(), None);
    assert_eq!(store.set_tag(name, &m2).unwrap(), Some(m1));
    assert_eq!(store.get_tag(name).unwrap(), Some(m2));
    store.set_tag("example.com/app:v1", &m1).unwrap();
    let tags = store.list_tags().unwrap();
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["docker.io/library/busybox:latest", "example.com/app:v1"]
    );
    assert_eq!(store.remove_tag(name).unwrap(), Some(m2));
    assert_eq!(store.get_tag(name).unwrap(), None);

    let missing = Digest::of(b"nope");
    assert!(matches!(
        store.set_tag("a:b", &missing),
        Err(Error::TagTargetMissing { .. })
    ));
    for bad in ["", "a b", "a\nb"] {
        assert!(matches!(
            store.set_tag(bad, &m1),
            Err(Error::InvalidTag { .. })
        ));
    }
}

#[test]
fn corrupt_tags_file_is_reported_and_blocks_prune() {
    let (_dir, store) = new_store();
    let m = store.put_blob(b"{}").unwrap().digest;
    store.set_tag("a:1", &m).unwrap();
    fs::write(store.root().join("tags.json"), b"[not json").unwrap();
    assert!(matches!(
        store.get_tag("a:1"),
        Err(Error::CorruptTags { .. })
    ));
    assert!(matches!(
        store.set_tag("a:2", &m),
        Err(Error::CorruptTags { .. })
    ));
    let problems = store.verify().unwrap();
    assert!(
        matches!(problems.as_slice(), [Problem::CorruptTags { .. }]),
        "{problems:?}"
    );
    assert!(matches!(
        store.prune(&PruneOptions::default()),
        Err(Error::CorruptTags { .. })
    ));
    assert!(
        store.has_blob(&m).unwrap(),
        "prune removed content despite the error"
    );
}

/// Writes an image (layers, config, manifest) and returns (manifest, config, layers, diff ids).
fn write_image(store: &Store, seed: u64) -> (Digest, Digest, Vec<Digest>, Vec<Digest>) {
    let layers: Vec<Digest> = (0..2)
        .map(|i| store.put_blob(&bytes(seed * 10 + i, 5000)).unwrap().digest)
        .collect();
    let diff_ids: Vec<Digest> = (0..2)
        .map(|i| Digest::of(&bytes(seed * 100 + i, 10)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = store
        .put_blob(config.to_string().as_bytes())
        .unwrap()
        .digest;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
        "layers": layers.iter().map(|d| serde_json::json!({"digest": d, "size": 5000})).collect::<Vec<_>>(),
    });
    let manifest = store
        .put_blob(manifest.to_string().as_bytes())
        .unwrap()
        .digest;
    (manifest, config, layers, diff_ids)
}

#[test]
fn prune_keeps_what_is_referenced() {
    let (_dir, store) = new_store();
    let empty = |_: &Path| -> Result<(), Error> { Ok(()) };

    // Tagged image behind an index.
    let (manifest, config, layers, diff_ids) = write_image(&store, 1);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"digest": manifest, "size": 1},
            {"digest": "sha512:abcd", "size": 1},
            {"digest": "garbage", "size": 1},
        ],
    });
    let index = store.put_blob(index.to_string().as_bytes()).unwrap().digest;
    store.set_tag("example.com/tagged:1", &index).unwrap();
    let image_snap = SnapshotId::from_digest(&diff_ids[0]);
    store.create_snapshot(&image_snap, empty).unwrap();

    // Image kept only by a cache record, plus a record's own snapshot.
    let (rec_manifest, rec_config, rec_layers, _) = write_image(&store, 2);
    let rec_snap = SnapshotId::new("rec-snap").unwrap();
    store.create_snapshot(&rec_snap, empty).unwrap();
    let key = RecordKey::of(b"step");
    store
        .put_record(
            &key,
            &Record {
                blobs: vec![rec_manifest],
                snapshots: vec![rec_snap.clone()],
                value: serde_json::Value::Null,
            },
        )
        .unwrap();

    // Kept by the caller (a running container).
    let running_blob = store.put_blob(b"container layer").unwrap().digest;
    let running_snap = SnapshotId::new("running").unwrap();
    store.create_snapshot(&running_snap, empty).unwrap();

    // Garbage.
    let (junk_manifest, junk_config, junk_layers, _) = write_image(&store, 3);
    let junk_snap = SnapshotId::new("junk").unwrap();
    store
        .create_snapshot::<Error, _>(&junk_snap, |d| {
            fs::write(d.join("big"), vec![7u8; 10_000]).unwrap();
            Ok(())
        })
        .unwrap();
    fs::write(store.root().join("tmp/leftover"), vec![1u8; 100]).unwrap();
    fs::write(store.root().join("blobs/sha256/not-a-digest"), b"x").unwrap();

    let mut extra = Roots::default();
    extra.blobs.insert(running_blob);
    extra.snapshots.insert(running_snap.clone());
    let options = PruneOptions {
        extra_roots: extra,
        remove_all_records: false,
    };
    let report = store.prune(&options).unwrap();

    let removed: BTreeSet<Digest> = report.blobs.iter().copied().collect();
    let mut expect_removed: BTreeSet<Digest> = junk_layers.iter().copied().collect();
    expect_removed.insert(junk_config);
    expect_removed.insert(junk_manifest);
    assert_eq!(removed, expect_removed);
    assert_eq!(report.snapshots, vec![junk_snap.clone()]);
    assert_eq!(report.temp_entries, 1);
    assert_eq!(report.stray_paths.len(), 1);
    assert!(report.records.is_empty());
    let junk_bytes: u64 = expect_removed.len() as u64; // at least one byte each
    assert!(
        report.bytes_freed >= 10_000 + 100 + junk_bytes,
        "{report:?}"
    );

    for kept in [
        index,
        manifest,
        config,
        rec_manifest,
        rec_config,
        running_blob,
    ]
    .into_iter()
    .chain(layers)
    .chain(rec_layers)
    {
        assert!(store.has_blob(&kept).unwrap(), "{kept} was pruned");
    }
    for kept in [&image_snap, &rec_snap, &running_snap] {
        assert!(store.has_snapshot(kept).unwrap(), "{kept} was pruned");
    }
    assert!(!store.has_snapshot(&junk_snap).unwrap());
    assert_eq!(store.verify().unwrap(), vec![]);

    // Dropping the build cache releases the record's image but not the tag's.
    let report = store
        .prune(&PruneOptions {
            remove_all_records: true,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.records, vec![key]);
    assert!(report.blobs.contains(&rec_manifest));
    assert!(report.snapshots.contains(&rec_snap));
    assert!(report.snapshots.contains(&running_snap));
    assert!(store.has_blob(&manifest).unwrap());
    assert_eq!(store.verify().unwrap(), vec![]);
}

#[test]
fn verify_reports_hostile_content_without_panicking() {
    let (_dir, store) = new_store();
    let root = store.root();
    let m = store.put_blob(b"{}").unwrap().digest;
    store.set_tag("t:1", &m).unwrap();
    fs::remove_file(blob_file(&store, &m)).unwrap();
    fs::create_dir(root.join("blobs/sha256/subdir")).unwrap();
    fs::write(root.join("blobs/sha256").join("A".repeat(64)), b"upper").unwrap();
    fs::write(root.join("snapshots/file-not-dir"), b"x").unwrap();
    // Symlinks planted in the store are never followed.
    let outside = root.parent().unwrap().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    let secret = Digest::of(b"secret");
    std::os::unix::fs::symlink(outside.join("secret"), blob_file(&store, &secret)).unwrap();
    assert!(!store.has_blob(&secret).unwrap());
    assert!(matches!(
        store.open_blob(&secret),
        Err(Error::CorruptBlob { .. })
    ));
    let linked = SnapshotId::new("linked").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("snapshots/linked")).unwrap();
    assert!(!store.has_snapshot(&linked).unwrap());
    assert!(store.snapshot_path(&linked).is_err());
    fs::create_dir(root.join("snapshots/.hidden")).unwrap();
    // A blob that claims to be a manifest with hostile references.
    let hostile = store
        .put_blob(br#"{"layers":[{"digest":"sha256:../../etc"}],"config":7,"manifests":null}"#)
        .unwrap()
        .digest;
    store.set_tag("t:2", &hostile).unwrap();

    let problems = store.verify().unwrap();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.contains(&Problem::DanglingTag {
            name: "t:1".into(),
            digest: m
        }),
        "{text:?}"
    );
    let strays = problems
        .iter()
        .filter(|p| matches!(p, Problem::StrayEntry { .. }))
        .count();
    assert_eq!(strays, 5, "{text:?}");
    assert!(problems.contains(&Problem::CorruptBlob {
        digest: secret,
        reason: "is a symbolic link".into()
    }));
    assert_eq!(problems.len(), 7, "{text:?}");
    // GC copes too: the hostile blob is kept (tagged), the strays are removed.
    let report = store.prune(&PruneOptions::default()).unwrap();
    assert_eq!(report.stray_paths.len(), 5, "{report:?}");
    assert!(report.stray_paths.contains(&root.join("snapshots/linked")));
    assert_eq!(report.blobs, vec![secret], "{report:?}");
    assert!(report.snapshots.is_empty(), "{report:?}");
    assert!(store.has_blob(&hostile).unwrap());
    // Removing the planted links left their targets alone.
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
    // Prune never drops tags, even dangling ones: that is the user's call.
    assert_eq!(store.verify().unwrap().len(), 1);
    store.remove_tag("t:1").unwrap();
    assert_eq!(store.verify().unwrap(), vec![]);
}

#[test]
fn open_cleans_leftovers_only_when_no_writer_is_active() {
    let (_dir, store) = new_store();
    let leftover = store.root().join("tmp/blob-crashed");
    fs::write(&leftover, b"partial").unwrap();
    fs::create_dir_all(store.root().join("tmp/snap-crashed/a/b")).unwrap();
    let problems = store.verify().unwrap();
    assert!(
        matches!(
            problems.as_slice(),
            [
                Problem::InterruptedWrite { .. },
                Problem::InterruptedWrite { .. }
            ]
        ),
        "{problems:?}"
    );
    {
        let _writer = store.blob_writer().unwrap();
        Store::open(store.root()).unwrap();
        assert!(leftover.exists(), "cleaned while a writer was active");
        // A writer in progress is not a problem.
        assert_eq!(store.verify().unwrap(), vec![]);
    }
    Store::open(store.root()).unwrap();
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn prune_waits_for_leases() {
    let (_dir, store) = new_store();
    let lease = store.lease().unwrap();
    let (tx, rx) = mpsc::channel();
    let pruner = store.clone();
    let handle = std::thread::spawn(move || {
        let report = pruner.prune(&PruneOptions::default());
        tx.send(()).unwrap();
        report
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "prune ran while a lease was held"
    );
    drop(lease);
    rx.recv_timeout(Duration::from_secs(20)).unwrap();
    handle.join().unwrap().unwrap();
}

#[test]
fn disk_usage_counts_content() {
    let (_dir, store) = new_store();
    store.put_blob(&[1u8; 1000]).unwrap();
    store.put_blob(&[2u8; 500]).unwrap();
    store
        .create_snapshot::<Error, _>(&SnapshotId::new("s").unwrap(), |d| {
            fs::write(d.join("a"), [0u8; 300]).unwrap();
            fs::hard_link(d.join("a"), d.join("b")).unwrap();
            Ok(())
        })
        .unwrap();
    store
        .put_record(&RecordKey::of(b"k"), &Record::default())
        .unwrap();
    let usage = store.disk_usage().unwrap();
    assert_eq!((usage.blobs.count, usage.blobs.bytes), (2, 1500));
    assert_eq!((usage.snapshots.count, usage.snapshots.bytes), (1, 300));
    assert_eq!(usage.records.count, 1);
    assert!(usage.records.bytes > 0);
    assert_eq!(usage.temp.count, 0);
}

#[test]
fn threads_writing_the_same_things_all_succeed() {
    let (_dir, store) = new_store();
    let n_threads = 8;
    let data = Arc::new(bytes(9, 2 * 1024 * 1024));
    let barrier = Arc::new(Barrier::new(n_threads));
    let key = RecordKey::of(b"shared");
    let snap = SnapshotId::new("shared-snap").unwrap();
    let handles: Vec<_> = (0..n_threads)
        .map(|t| {
            let store = store.clone();
            let data = Arc::clone(&data);
            let barrier = Arc::clone(&barrier);
            let snap = snap.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..5 {
                    let digest = store.put_blob(&data).unwrap().digest;
                    store
                        .create_snapshot::<Error, _>(&snap, |d| {
                            fs::write(d.join("f"), &data[..1000]).unwrap();
                            Ok(())
                        })
                        .unwrap();
                    let record = Record {
                        blobs: vec![digest],
                        snapshots: vec![snap.clone()],
                        value: serde_json::json!({ "writer": t }),
                    };
                    store.put_record(&key, &record).unwrap();
                    store.set_tag(&format!("t{t}:{i}"), &digest).unwrap();
                    store.set_tag("shared:latest", &digest).unwrap();
                    assert!(store.get_record(&key).unwrap().is_some());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(store.list_tags().unwrap().len(), n_threads * 5 + 1);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        fs::read(store.snapshot_path(&snap).unwrap().join("f")).unwrap(),
        &data[..1000]
    );
    assert_eq!(tmp_entries(&store), 0);
    assert_eq!(store.verify().unwrap(), vec![]);
}

#[test]
fn unchanged_blobs_and_tags_are_not_rewritten_but_damage_is_repaired() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, store) = new_store();
    let config = bytes(7, 3000);
    let first = store.put_blob(&config).unwrap();
    let path = blob_file(&store, &first.digest);
    let inode = fs::metadata(&path).unwrap().ino();
    // The same bytes again (a no-op build re-exporting its config): the
    // stored file is left as it is.
    let again = store.put_blob(&config).unwrap();
    assert_eq!(again.digest, first.digest);
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "blob rewritten");
    // A damaged copy of the same size is replaced by a fresh write.
    let mut damaged = config.clone();
    damaged[100] ^= 0xff;
    fs::write(&path, &damaged).unwrap();
    store.put_blob(&config).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        config,
        "damaged blob not repaired"
    );
    store.verify_blob(&first.digest).unwrap();

    // Re-tagging a name with the digest it already has writes nothing.
    store.set_tag("app:v1", &first.digest).unwrap();
    let tags = store.root().join("tags.json");
    let tags_inode = fs::metadata(&tags).unwrap().ino();
    assert_eq!(
        store.set_tag("app:v1", &first.digest).unwrap(),
        Some(first.digest)
    );
    assert_eq!(
        fs::metadata(&tags).unwrap().ino(),
        tags_inode,
        "tags rewritten"
    );
    // A real change still goes through the atomic rewrite.
    store.set_tag("app:v2", &first.digest).unwrap();
    assert_ne!(fs::metadata(&tags).unwrap().ino(), tags_inode);
    assert_eq!(store.get_tag("app:v2").unwrap(), Some(first.digest));
    assert_eq!(tmp_entries(&store), 0);
}
