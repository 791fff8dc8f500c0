//! Several processes on one store (no test harness: this binary re-executes
//! itself as the child processes, selected by `BUILDR_CACHE_TEST_CHILD`).
//!
//! - `two_processes_race`: processes write the same blob, snapshot, record
//!   and tag at once, plus tags of their own; all succeed, nothing is lost.
//! - `kill_nine_loop`: a writer child is `kill -9`ed at random moments, many
//!   times; after each kill the store must open and verify clean.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use buildr_cache::{Digest, Error, PruneOptions, Record, RecordKey, SnapshotId, Store};

const CHILD_ENV: &str = "BUILDR_CACHE_TEST_CHILD";
const KILLS: usize = 50;
const RACERS: usize = 3;
const RACE_ROUNDS: usize = 20;
const SNAPSHOT_FILES: usize = 20;

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("two_processes_race: test\nkill_nine_loop: test");
        return;
    }
    let started = Instant::now();
    two_processes_race();
    println!("two_processes_race ... ok");
    kill_nine_loop();
    println!("kill_nine_loop ... ok");
    println!(
        "multiprocess: 2 passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn child(spec: &str) {
    let mut parts = spec.splitn(3, ':');
    let (mode, arg, root) = match (parts.next(), parts.next(), parts.next()) {
        (Some(mode), Some(arg), Some(root)) => (mode, arg, PathBuf::from(root)),
        _ => panic!("bad {CHILD_ENV} {spec:?}"),
    };
    match mode {
        "race" => race_child(&root, arg),
        "writer" => writer_child(&root, arg.parse().expect("seed")),
        _ => panic!("unknown child mode {mode:?}"),
    }
}

fn spawn_child(mode: &str, arg: &str, root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, format!("{mode}:{arg}:{}", root.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// Deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------- race

fn shared_content() -> Vec<u8> {
    Rng::new(42).bytes(3 * 1024 * 1024)
}

fn race_child(root: &Path, name: &str) {
    let store = Store::open(root).expect("open");
    let data = shared_content();
    let snap = SnapshotId::new("shared-snap").unwrap();
    let key = RecordKey::of(b"shared-key");
    for round in 0..RACE_ROUNDS {
        let mut writer = store.blob_writer().expect("blob writer");
        for chunk in data.chunks(64 * 1024) {
            writer.write_all(chunk).expect("write");
        }
        let digest = writer
            .commit(Some(Digest::of(&data)))
            .expect("commit")
            .digest;
        store
            .create_snapshot::<Error, _>(&snap, |dir| {
                for i in 0..SNAPSHOT_FILES {
                    fs::write(dir.join(format!("f{i:02}")), &data[..4096]).expect("fill");
                }
                Ok(())
            })
            .expect("snapshot");
        let record = Record {
            blobs: vec![digest],
            snapshots: vec![snap.clone()],
            value: serde_json::json!({ "writer": name, "round": round }),
        };
        store.put_record(&key, &record).expect("record");
        store
            .set_tag(&format!("{name}:{round}"), &digest)
            .expect("own tag");
        store.set_tag("shared:latest", &digest).expect("shared tag");
        assert!(store.get_record(&key).expect("get record").is_some());
    }
}

fn two_processes_race() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::open(&root).unwrap();
    let children: Vec<_> = (0..RACERS)
        .map(|i| spawn_child("race", &format!("p{i}"), &root))
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "race child failed: {status}");
    }
    let store = Store::open(&root).unwrap();
    let tags = store.list_tags().unwrap();
    assert_eq!(
        tags.len(),
        RACERS * RACE_ROUNDS + 1,
        "a tag was lost: {tags:?}"
    );
    let digest = Digest::of(&shared_content());
    assert!(tags.values().all(|d| *d == digest));
    assert_eq!(fs::read_dir(root.join("blobs/sha256")).unwrap().count(), 1);
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    let snap = store
        .snapshot_path(&SnapshotId::new("shared-snap").unwrap())
        .unwrap();
    assert_eq!(fs::read_dir(snap).unwrap().count(), SNAPSHOT_FILES);
    assert!(
        store
            .get_record(&RecordKey::of(b"shared-key"))
            .unwrap()
            .is_some()
    );
    let problems = store.verify().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

// ---------------------------------------------------------------- crash

/// Writes blobs, snapshots, records and tags forever (until killed).
fn writer_child(root: &Path, seed: u64) {
    // One line per step, so the parent knows where the kill landed.
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(progress_log(root, seed))
        .expect("progress log");
    let mut step = |name: &str| log.write_all(format!("{name}\n").as_bytes()).expect("log");
    step("open");
    let store = Store::open(root).expect("open");
    let mut rng = Rng::new(seed);
    for i in 0u64.. {
        step("blob");
        // A blob, streamed in small chunks so kills land mid-write.
        let len = rng.below(256 * 1024) as usize;
        let data = rng.bytes(len);
        let mut writer = store.blob_writer().expect("blob writer");
        for chunk in data.chunks(16 * 1024) {
            writer.write_all(chunk).expect("write");
        }
        let layer = writer
            .commit(Some(Digest::of(&data)))
            .expect("commit")
            .digest;

        step("snapshot");
        let snap = SnapshotId::new(&format!("s-{seed}-{i}")).unwrap();
        let file_len = rng.below(64 * 1024) as usize;
        let content = rng.bytes(file_len);
        store
            .create_snapshot::<Error, _>(&snap, |dir| {
                fs::create_dir(dir.join("sub")).expect("mkdir");
                for f in 0..SNAPSHOT_FILES {
                    fs::write(dir.join("sub").join(format!("f{f:02}")), &content).expect("fill");
                }
                Ok(())
            })
            .expect("snapshot");

        step("record");
        let key = RecordKey::of(format!("{seed}-{i}").as_bytes());
        let record = Record {
            blobs: vec![layer],
            snapshots: vec![snap],
            value: serde_json::json!({ "i": i }),
        };
        store.put_record(&key, &record).expect("record");

        step("tag");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "layers": [{ "digest": layer, "size": len }],
        });
        let manifest = store
            .put_blob(manifest.to_string().as_bytes())
            .expect("manifest")
            .digest;
        store
            .set_tag(&format!("img-{seed}:{}", i % 4), &manifest)
            .expect("tag");

        // Keep the store from growing without bound, and get killed in
        // removals and prunes too.
        step("remove");
        if i >= 3 {
            store
                .remove_record(&RecordKey::of(format!("{seed}-{}", i - 3).as_bytes()))
                .expect("remove record");
        }
        if i % 5 == 4 {
            store
                .remove_tag(&format!("img-{seed}:0"))
                .expect("remove tag");
        }
        if i % 3 == 2 {
            step("prune");
            store.prune(&PruneOptions::default()).expect("prune");
        }
        step("done");
    }
}

fn progress_log(root: &Path, seed: u64) -> PathBuf {
    root.with_file_name(format!("progress-{seed}.log"))
}

fn kill_nine_loop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::open(&root).unwrap();
    let time_seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    let mut rng = Rng::new(time_seed);
    let mut mid_write_kills = 0;
    let mut leftovers_cleaned = 0;
    let mut max_blobs = 0;
    let mut max_snapshots = 0;
    let mut iterations = 0;
    let mut killed_in: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..KILLS {
        let mut child = spawn_child("writer", &round.to_string(), &root);
        let delay = Duration::from_millis(5 + rng.below(400));
        std::thread::sleep(delay);
        if let Ok(Some(status)) = child.try_wait() {
            panic!("writer child exited on its own in round {round}: {status}");
        }
        child.kill().expect("kill -9");
        child.wait().unwrap();
        let log = fs::read_to_string(progress_log(&root, round as u64)).unwrap_or_default();
        iterations += log.lines().filter(|l| *l == "done").count();
        let last = log.lines().last().unwrap_or("exec").to_string();
        *killed_in.entry(last).or_default() += 1;

        let leftovers = fs::read_dir(root.join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0);
        if leftovers > 0 {
            mid_write_kills += 1;
            leftovers_cleaned += leftovers;
        }
        let store = Store::open(&root).unwrap_or_else(|e| panic!("round {round}: open: {e}"));
        assert_eq!(
            fs::read_dir(root.join("tmp")).unwrap().count(),
            0,
            "round {round}: open left temp files"
        );
        let problems = store.verify().unwrap();
        assert!(
            problems.is_empty(),
            "round {round} (after {delay:?}): {problems:?}"
        );

        // Every visible snapshot is complete.
        let snapshots = fs::read_dir(root.join("snapshots")).unwrap();
        let mut n_snapshots = 0;
        for entry in snapshots {
            let path = entry.unwrap().path();
            let files = fs::read_dir(path.join("sub"))
                .map(|d| d.count())
                .unwrap_or(0);
            assert_eq!(
                files, SNAPSHOT_FILES,
                "round {round}: half snapshot {path:?}"
            );
            n_snapshots += 1;
        }
        // Every tag resolves to a manifest whose layers are present.
        for (name, digest) in store.list_tags().unwrap() {
            let manifest = store.read_blob(&digest, 1 << 20).unwrap();
            let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            let layer: Digest = manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                store.has_blob(&layer).unwrap(),
                "round {round}: {name} lost its layer"
            );
        }
        let n_blobs = fs::read_dir(root.join("blobs/sha256")).unwrap().count();
        max_blobs = max_blobs.max(n_blobs);
        max_snapshots = max_snapshots.max(n_snapshots);
    }
    let usage = Store::open(&root).unwrap().disk_usage().unwrap();
    println!(
        "kill_nine_loop: {KILLS} kill -9s after {iterations} completed writer iterations; \
         killed during {killed_in:?}; {mid_write_kills} kills left {leftovers_cleaned} temp \
         entries (removed by open); verify clean and every snapshot complete after every kill; \
         peak {max_blobs} blobs, {max_snapshots} snapshots; final {usage:?}"
    );
}
