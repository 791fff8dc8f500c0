//! `kill -9` of `buildr build`, `pull`, `push`, `save`, `load`, `prune` and
//! `system prune` at a fixed list of delays (the same every run): after
//! each kill the store opens, `buildr verify` is clean, and the
//! interrupted operation run again succeeds and gives the same image id
//! and digests as an uninterrupted run. A layer blob swapped on disk for
//! other bytes of the same size is named by `verify` and refetched by the
//! next pull.
//!
//! Needs root, overlayfs, busybox-static, umoci, tar (`build_common`) and
//! Debian's `docker-registry` on loopback; skips loudly without them,
//! fails under `CI=true`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::build_common::{BIN, Build, Env};
use buildr_testkit::prereq::need_tool;
use buildr_testkit::registry::{REGISTRY_BIN, Registry};
use sha2::Digest as _;

/// Milliseconds between starting an operation and killing it: a fixed
/// list, spread from "before the store is opened" to "near the end".
const DELAYS_MS: [u64; 10] = [5, 20, 45, 80, 130, 200, 290, 400, 560, 800];

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn buildr_at(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("BUILDR_ROOT")
        .env("SOURCE_DATE_EPOCH", "0")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn run_at(root: &Path, args: &[&str]) -> Output {
    buildr_at(root, args).output().unwrap()
}

fn assert_verify_clean(root: &Path, case: &str) {
    let out = run_at(root, &["verify"]);
    assert!(
        out.status.success(),
        "{case}: buildr verify found problems: {}",
        text(&out)
    );
}

/// Starts `buildr ARGS`, kills it with SIGKILL after `delay` (unless it
/// finished first) and reaps it. Returns whether it was killed.
fn kill_after(root: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child: Child = buildr_at(root, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let status = child.wait().unwrap();
    killed && status.code().is_none()
}

fn image_id(root: &Path, image: &str) -> (String, serde_json::Value) {
    let out = run_at(root, &["inspect", image]);
    let doc: serde_json::Value = serde_json::from_str(&ok(out, "inspect")).unwrap();
    (
        doc[0]["Id"].as_str().unwrap().to_owned(),
        doc[0]["RootFS"]["Layers"].clone(),
    )
}

fn sha256_file(path: &Path) -> String {
    let mut hasher = sha2::Sha256::new();
    let mut file = fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Busybox plus two layers big enough that each operation takes a while:
/// 4 MiB of random bytes (slow to compress and hash) and 400 files.
fn big_image(env: &Env) -> (String, serde_json::Value) {
    let ctx = env.dir.path().join("big");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         RUN head -c 4194304 /dev/urandom > /big\n\
         RUN mkdir /many && for i in $(seq 1 400); do echo $i > /many/$i; done\n",
    )
    .unwrap();
    let output = buildr_at(
        &env.root(),
        &["build", "--progress", "json", "-t", "big:latest"],
    )
    .arg(&ctx)
    .output()
    .unwrap();
    let build = Build { output };
    assert!(build.output.status.success(), "{}", build.stderr());
    image_id(&env.root(), "big:latest")
}

/// A build defers its fsyncs to one flush before its tags: killed at any
/// point, it leaves a store that verifies, its marker is flushed and removed
/// by the next open, and the rebuild that reuses its cached steps gives the
/// image an uncached build gives.
#[test]
fn kill_9_during_a_build_loses_nothing_and_the_next_open_flushes_its_writes() {
    let Some(env) = Env::new("kill9-build") else {
        return;
    };
    let root = env.root();
    let ctx = env.dir.path().join("steps");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         RUN seq 1 400000 > /numbers\n\
         RUN mkdir /many && for i in $(seq 1 300); do echo $i > /many/$i; done\n\
         RUN seq 1 200000 | sort -r > /reversed\n",
    )
    .unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "json", "-t", "steps:latest"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = build(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let markers = root.join("unsynced");
    let mut killed = 0;
    for delay in DELAYS_MS.iter().chain(&[1100, 1500, 2000]) {
        killed += usize::from(kill_after(&root, &args, Duration::from_millis(*delay)));
        // `verify` opens the store alone: the dead build's writes are
        // flushed and its marker removed first.
        assert_verify_clean(&root, &format!("build killed after {delay}ms"));
        assert_eq!(count(&markers), 0, "marker left after {delay}ms");
    }
    assert!(killed > 0, "no build was killed");
    ok(run_at(&root, &args), "build again");
    assert_eq!(count(&markers), 0, "a finished build leaves no marker");
    assert!(root.join("synced").is_file(), "the flush is recorded");
    let after_kills = image_id(&root, "steps:latest");
    let fresh = build(&["--no-cache"]);
    let fresh: Vec<&str> = fresh.iter().map(String::as_str).collect();
    ok(run_at(&root, &fresh), "build --no-cache");
    assert_verify_clean(&root, "after the rebuild");
    assert_eq!(image_id(&root, "steps:latest"), after_kills);
}

#[test]
fn kill_9_during_save_load_and_prune_leaves_a_store_that_verifies_and_reruns_the_same() {
    let Some(env) = Env::new("kill9-save-load-prune") else {
        return;
    };
    let (id, layers) = big_image(&env);
    let root = env.root();
    let clean = env.dir.path().join("clean.tar");
    ok(
        run_at(
            &root,
            &["save", "-o", clean.to_str().unwrap(), "big:latest"],
        ),
        "save",
    );
    let clean_sha = sha256_file(&clean);
    let mut killed = 0;

    // save: the output is never seen half-written; the rerun is identical.
    for (i, delay) in DELAYS_MS.iter().enumerate() {
        let out = env.dir.path().join(format!("save{i}.tar"));
        let args = ["save", "-o", out.to_str().unwrap(), "big:latest"];
        killed += usize::from(kill_after(&root, &args, Duration::from_millis(*delay)));
        if out.exists() {
            assert_eq!(sha256_file(&out), clean_sha, "save{i}: a partial archive");
        }
        assert_verify_clean(&root, &format!("save killed after {delay}ms"));
        ok(run_at(&root, &args), "save again");
        assert_eq!(sha256_file(&out), clean_sha, "save{i}: rerun differs");
        fs::remove_file(&out).unwrap();
    }

    // load into a fresh store each time.
    for delay in DELAYS_MS {
        let store = tempfile::tempdir_in(env.dir.path()).unwrap();
        let root = store.path().join("store");
        let args = ["load", "-i", clean.to_str().unwrap()];
        killed += usize::from(kill_after(&root, &args, Duration::from_millis(delay)));
        assert_verify_clean(&root, &format!("load killed after {delay}ms"));
        ok(run_at(&root, &args), "load again");
        assert_verify_clean(&root, "load again");
        assert_eq!(image_id(&root, "big:latest"), (id.clone(), layers.clone()));
    }

    // prune of an untagged image's content, in a loaded store.
    for delay in DELAYS_MS {
        let store = tempfile::tempdir_in(env.dir.path()).unwrap();
        let root = store.path().join("store");
        ok(
            run_at(&root, &["load", "-i", clean.to_str().unwrap()]),
            "load",
        );
        ok(run_at(&root, &["rmi", "big:latest"]), "rmi");
        let args = ["prune", "-a", "-f"];
        killed += usize::from(kill_after(&root, &args, Duration::from_millis(delay)));
        assert_verify_clean(&root, &format!("prune killed after {delay}ms"));
        ok(run_at(&root, &args), "prune again");
        assert_verify_clean(&root, "prune again");
        // What an uninterrupted prune leaves: nothing.
        assert_eq!(count(&root.join("blobs/sha256")), 0, "blobs left");
        assert_eq!(count(&root.join("snapshots")), 0, "snapshots left");
        // The store still takes the image back.
        ok(
            run_at(&root, &["load", "-i", clean.to_str().unwrap()]),
            "load after prune",
        );
        assert_eq!(image_id(&root, "big:latest"), (id.clone(), layers.clone()));
    }
    eprintln!(
        "{killed} of {} operations killed mid-way",
        3 * DELAYS_MS.len()
    );
    assert!(killed >= 5, "too few kills landed mid-operation ({killed})");
}

/// The digest `push` printed on its last line (`TAG: digest: D size: N`).
fn pushed_digest(stdout: &str) -> String {
    let last = stdout.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.split(' ').collect();
    assert!(
        words.len() >= 3 && words[1] == "digest:",
        "no digest line:\n{stdout}"
    );
    words[2].to_owned()
}

#[test]
fn kill_9_during_pull_and_push_then_a_swapped_blob_is_refetched() {
    let test = "kill9-pull-push";
    if !need_tool(test, REGISTRY_BIN) {
        return;
    }
    let Some(env) = Env::new(test) else {
        return;
    };
    let (id, layers) = big_image(&env);
    let root = env.root();
    let Some(source) = Registry::start(test, None) else {
        return;
    };
    let name = format!("{}/big:v1", source.addr);
    ok(run_at(&root, &["tag", "big:latest", &name]), "tag");
    let digest = pushed_digest(&ok(run_at(&root, &["push", &name]), "push"));
    let mut killed = 0;

    // push into an empty registry each time.
    for delay in DELAYS_MS {
        let Some(registry) = Registry::start(test, None) else {
            return;
        };
        let target = format!("{}/big:v1", registry.addr);
        ok(run_at(&root, &["tag", "big:latest", &target]), "tag");
        let args = ["push", &target];
        killed += usize::from(kill_after(&root, &args, Duration::from_millis(delay)));
        assert_verify_clean(&root, &format!("push killed after {delay}ms"));
        let again = ok(run_at(&root, &args), "push again");
        assert_eq!(
            pushed_digest(&again),
            digest,
            "push after a kill at {delay}ms"
        );
        ok(run_at(&root, &["rmi", &target]), "rmi");
    }

    // pull into a fresh store each time.
    let mut last = None;
    for delay in DELAYS_MS {
        let store = tempfile::tempdir_in(env.dir.path()).unwrap();
        let fresh = store.path().join("store");
        let args = ["pull", &name];
        killed += usize::from(kill_after(&fresh, &args, Duration::from_millis(delay)));
        assert_verify_clean(&fresh, &format!("pull killed after {delay}ms"));
        ok(run_at(&fresh, &args), "pull again");
        assert_verify_clean(&fresh, "pull again");
        assert_eq!(image_id(&fresh, &name), (id.clone(), layers.clone()));
        last = Some(store);
    }
    eprintln!(
        "{killed} of {} operations killed mid-way",
        2 * DELAYS_MS.len()
    );
    assert!(killed >= 4, "too few kills landed mid-operation ({killed})");

    // A layer blob swapped for other bytes of the same size.
    let store = last.unwrap();
    let fresh = store.path().join("store");
    let out = run_at(&fresh, &["inspect", &name]);
    let doc: serde_json::Value = serde_json::from_str(&ok(out, "inspect")).unwrap();
    let manifest_digest = doc[0]["Descriptor"]["digest"].as_str().unwrap().to_owned();
    let blob_path = |d: &str| {
        fresh
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob_path(&manifest_digest)).unwrap()).unwrap();
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = blob_path(&layer);
    let size = fs::metadata(&path).unwrap().len();
    let mode = fs::metadata(&path).unwrap().permissions();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut other = fs::read(&path).unwrap();
    other.reverse();
    fs::write(&path, &other).unwrap();
    fs::set_permissions(&path, mode).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), size);

    let out = run_at(&fresh, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let hex_digest = layer.trim_start_matches("sha256:");
    assert!(
        text(&out).contains(hex_digest),
        "verify did not name {layer}: {}",
        text(&out)
    );
    ok(run_at(&fresh, &["pull", &name]), "pull over a swapped blob");
    assert_verify_clean(&fresh, "pull over a swapped blob");
    assert_eq!(sha256_file(&path), hex_digest, "the blob was not refetched");
    assert_eq!(image_id(&fresh, &name), (id, layers));
}

/// Names of `buildr ARGS` output lines (first column), header skipped.
fn first_column(root: &Path, args: &[&str]) -> Vec<String> {
    ok(run_at(root, args), &args.join(" "))
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `cp -a FROM TO`: a byte-for-byte copy of a stopped store (hard links,
/// modes, xattrs and all).
fn copy_store(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp -a: {}", text(&out));
}

#[test]
fn kill_9_during_system_prune_leaves_a_store_that_verifies() {
    let Some(env) = Env::new("kill9-system-prune") else {
        return;
    };
    const IMAGE: &str = "buildr-fixtures/busybox:latest";
    // Build cache and an unused image: the two big layers.
    big_image(&env);
    let root = env.root();
    // A dangling image: `dang:latest` built twice with different content.
    let ctx = env.dir.path().join("dang");
    fs::create_dir_all(&ctx).unwrap();
    let mut ids = Vec::new();
    for content in ["one", "two"] {
        fs::write(
            ctx.join("Dockerfile"),
            format!("FROM big:latest\nRUN echo {content} > /dang\n"),
        )
        .unwrap();
        let out = buildr_at(&root, &["build", "--progress", "json", "-t", "dang:latest"])
            .arg(&ctx)
            .output()
            .unwrap();
        ok(out, "build dang");
        ids.push(image_id(&root, "dang:latest").0);
    }
    assert_ne!(ids[0], ids[1], "the rebuild gave the same image");
    let dangling = root
        .join("blobs/sha256")
        .join(ids[0].trim_start_matches("sha256:"));
    assert!(dangling.exists(), "no dangling image config {}", ids[0]);
    // A stopped container with an anonymous volume, 800 files written
    // to each (so that removing them takes a while).
    ok(
        run_at(
            &root,
            &[
                "run",
                "--name",
                "stopped",
                "-v",
                "/data",
                IMAGE,
                "sh",
                "-c",
                "for i in $(seq 1 800); do echo $i > /data/$i; echo $i > /$i; done",
            ],
        ),
        "run stopped",
    );
    // An anonymous volume no container uses (its container removed
    // without -v), and a named one that system prune must keep.
    ok(
        run_at(
            &root,
            &["run", "--name", "gone", "-v", "/v2", IMAGE, "true"],
        ),
        "run gone",
    );
    ok(run_at(&root, &["rm", "gone"]), "rm gone");
    ok(
        run_at(&root, &["volume", "create", "keep"]),
        "volume create",
    );
    let volumes = first_column(&root, &["volume", "ls", "-q"]);
    assert_eq!(volumes.len(), 3, "volumes: {volumes:?}");
    assert_verify_clean(&root, "template store");

    let args = ["system", "prune", "-a", "--volumes", "-f"];
    let mut killed = 0;
    // A whole prune of this store takes ~200 ms unloaded; the list
    // spreads the kills over it (and over slower runs under load).
    let delays_ms = [5u64, 20, 50, 100, 200, 400];
    for delay in delays_ms {
        let store = tempfile::tempdir_in(env.dir.path()).unwrap();
        let copy = store.path().join("store");
        copy_store(&root, &copy);
        let case = format!("system prune killed after {delay}ms");
        let mid = kill_after(&copy, &args, Duration::from_millis(delay));
        killed += usize::from(mid);
        eprintln!(
            "{case}: killed mid-way {mid}; left {} containers, {} volumes, {} blobs",
            first_column(&copy, &["ps", "-a", "-q"]).len(),
            first_column(&copy, &["volume", "ls", "-q"]).len(),
            count(&copy.join("blobs/sha256"))
        );
        let out = run_at(&copy, &["verify"]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{case}: buildr verify found problems: {}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("is consistent"),
            "{case}: verify said: {}",
            text(&out)
        );
        ok(run_at(&copy, &["ps", "-a"]), &format!("{case}: ps -a"));
        ok(
            run_at(&copy, &["volume", "ls"]),
            &format!("{case}: volume ls"),
        );
        ok(run_at(&copy, &args), &format!("{case}: system prune again"));
        assert_verify_clean(&copy, &format!("{case}, then pruned again"));
        // What an uninterrupted prune leaves: no containers, only the
        // named volume, no images, blobs, snapshots.
        assert_eq!(
            first_column(&copy, &["ps", "-a", "-q"]),
            Vec::<String>::new(),
            "{case}: containers left"
        );
        assert_eq!(
            first_column(&copy, &["volume", "ls", "-q"]),
            vec!["keep".to_owned()],
            "{case}: volumes left"
        );
        assert_eq!(
            first_column(&copy, &["images", "-q"]),
            Vec::<String>::new(),
            "{case}: images left"
        );
        assert_eq!(count(&copy.join("blobs/sha256")), 0, "{case}: blobs left");
        assert_eq!(count(&copy.join("snapshots")), 0, "{case}: snapshots left");
    }
    // The copies were pruned, never the store they were copied from.
    assert_eq!(first_column(&root, &["volume", "ls", "-q"]).len(), 3);
    assert_eq!(first_column(&root, &["ps", "-a", "-q"]).len(), 1);
    assert!(dangling.exists(), "the template store lost {}", ids[0]);
    eprintln!(
        "{killed} of {} system prunes killed mid-way",
        delays_ms.len()
    );
    assert!(killed >= 2, "too few kills landed mid-operation ({killed})");
}
