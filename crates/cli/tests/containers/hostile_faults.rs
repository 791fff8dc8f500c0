//! Faults and load through the real binary: SIGINT/SIGTERM/SIGKILL of
//! `buildr build` mid-RUN, a full disk under the store, and 8 overlapping
//! builds at once against one store. Each checks that nothing is left
//! behind (processes, host mounts, cgroups, temp files), that `buildr
//! verify` is clean, and that the store keeps working.
//!
//! Needs root, overlayfs, busybox-static, umoci and tar (see
//! `build_common`); skips loudly without them, fails under `CI=true`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::build_common::{BIN, Build, Env};

fn assert_verify_clean(env: &Env) {
    let out = env.buildr(&["verify"]);
    assert!(
        out.status.success(),
        "buildr verify found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// A `buildr build --progress json` in the background; `wait_for_log`
/// blocks until a RUN step printed `marker`.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(env: &Env, ctx: &Path, args: &[&str]) -> Running {
        // Every build here pins created times and mtimes, so that a step
        // committed by a killed build is the same as a clean one's.
        let mut child = Command::new(BIN)
            .env("SOURCE_DATE_EPOCH", "0")
            .arg("--root")
            .arg(env.root())
            .args(["build", "--progress", "json"])
            .args(args)
            .arg(ctx)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn buildr build");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_for_log(&mut self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            self.seen.push(line.clone());
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["event"] == "log" && event["data"].as_str().unwrap_or("").contains(marker) {
                return;
            }
        }
        panic!("no log {marker:?} within 60s:\n{}", self.seen.join("\n"));
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    fn wait(mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("buildr did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// Cgroup directories named after buildr process `pid`, down to depth 4.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    fn walk(dir: &Path, prefix: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(entry.path());
            }
            if depth > 0 {
                walk(&entry.path(), prefix, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        Path::new("/sys/fs/cgroup"),
        &format!("buildr-{pid}-"),
        4,
        &mut found,
    );
    found
}

/// Asserts a killed build left nothing: no sandboxed process, no host
/// mount under the store, no cgroup, nothing in the store's `tmp/` (after
/// the next open), and the store verifies clean.
fn assert_nothing_left(env: &Env, pid: u32, sleeper: &str) {
    // The sandbox's init dies with buildr (parent-death signal); give the
    // kernel a moment to reap.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(sleeper).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        processes_with(sleeper),
        Vec::<String>::new(),
        "processes left"
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = env.root().display().to_string();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&store)).collect();
    assert!(left.is_empty(), "mounts left:\n{}", left.join("\n"));
    assert_eq!(cgroups_of(pid), Vec::<PathBuf>::new(), "cgroups left");
    assert_verify_clean(env);
    let tmp: Vec<_> = fs::read_dir(env.root().join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "temp entries left: {tmp:?}");
}

const SLOW: &str = "FROM buildr-fixtures/busybox:latest\n\
                    RUN echo first > /first\n\
                    RUN echo sleeping-now; sleep 31337; echo never > /never\n";

#[test]
fn sigint_and_sigterm_mid_run_clean_up_and_exit_130_143() {
    let Some(env) = Env::new("hostile-signals") else {
        return;
    };
    let ctx = context(&env, "slow", SLOW);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let mut build = Running::start(&env, &ctx, &["--no-cache"]);
        let pid = build.child.id();
        build.wait_for_log("sleeping-now");
        build.signal(signal);
        let status = build.wait(Duration::from_secs(30));
        assert_eq!(status.code(), Some(code), "exit status after SIG{signal}");
        assert_nothing_left(&env, pid, "sleep 31337");
    }
}

#[test]
fn kill_9_mid_run_leaves_a_store_that_verifies_and_rebuilds_the_same_image() {
    let Some(env) = Env::new("hostile-kill9") else {
        return;
    };
    let ctx = context(
        &env,
        "steps",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN echo first > /first\n\
         RUN echo second > /second\n",
    );
    // SOURCE_DATE_EPOCH pins the created times: the same Dockerfile on the
    // same base must give the same image id before and after the crash.
    let id_of = |env: &Env| -> String {
        let output = Command::new(BIN)
            .env("SOURCE_DATE_EPOCH", "0")
            .arg("--root")
            .arg(env.root())
            .args(["build", "--progress", "json", "-t", "steps:latest"])
            .arg(&ctx)
            .output()
            .unwrap();
        let build = Build { output };
        assert!(build.output.status.success(), "{}", build.stderr());
        build.done()["image_id"].as_str().unwrap().to_owned()
    };
    let clean_id = id_of(&env);
    let clean_layers = layers(&env, "steps:latest");
    // Forget the result and every cache record: the rebuild must redo it.
    assert!(env.buildr(&["rmi", "steps:latest"]).status.success());
    let out = env.buildr(&["prune", "-a", "-f"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Killed mid-RUN (after the shared first step committed).
    let slow = context(&env, "slow", SLOW);
    let mut build = Running::start(&env, &slow, &[]);
    let pid = build.child.id();
    build.wait_for_log("sleeping-now");
    build.signal("KILL");
    let status = build.wait(Duration::from_secs(30));
    assert_eq!(status.code(), None, "killed by a signal");
    assert_nothing_left(&env, pid, "sleep 31337");

    assert_eq!(id_of(&env), clean_id);
    assert_eq!(layers(&env, "steps:latest"), clean_layers);
    assert_verify_clean(&env);
}

fn layers(env: &Env, image: &str) -> serde_json::Value {
    let out = env.buildr(&["inspect", image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    inspect[0]["RootFS"]["Layers"].clone()
}

/// Mounts a tmpfs of `size` at `dir`; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_owned())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_keeps_the_cache_and_recovers() {
    let Some(env) = Env::new("hostile-enospc") else {
        return;
    };
    let small = Tmpfs::mount(&env.dir.path().join("small"), "24m");
    let root = small.0.join("store");
    let buildr = |args: &[&str]| {
        Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };
    let tar = env.dir.path().join("bb.tar");
    // Seed the small store from the fixture store through save/load.
    let out = env.buildr(&[
        "save",
        "-o",
        tar.to_str().unwrap(),
        "buildr-fixtures/busybox:latest",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = buildr(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(&tar).unwrap();

    let small_ctx = context(
        &env,
        "small",
        "FROM buildr-fixtures/busybox:latest\nRUN echo kept > /kept\n",
    );
    let out = buildr(&["build", "-t", "kept:latest", small_ctx.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 32 MiB of incompressible data that buildr itself writes (COPY, not a
    // RUN whose own program would report the full disk): it does not fit
    // in what is left.
    let big = context(
        &env,
        "big",
        "FROM buildr-fixtures/busybox:latest\nCOPY big /big\n",
    );
    let random: Vec<u8> = (0..32u64 << 20)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    fs::write(big.join("big"), random).unwrap();
    let out = buildr(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "big:latest",
        big.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the big build fit in 24m:\n{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("Dockerfile:2"),
        "not a clear ENOSPC error:\n{stderr}"
    );
    let out = buildr(&["verify"]);
    assert!(
        out.status.success(),
        "store damaged by ENOSPC:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The earlier image and its cache survive.
    let out = buildr(&["build", "--progress", "json", small_ctx.to_str().unwrap()]);
    assert!(out.status.success());
    let again = Build { output: out };
    assert_eq!(
        again
            .steps("started")
            .iter()
            .filter(|n| n.contains("RUN"))
            .count(),
        0
    );

    small.resize("200m");
    let out = buildr(&["build", "-t", "big:latest", big.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = buildr(&["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn eight_overlapping_builds_at_once_share_steps_and_blobs() {
    let Some(env) = Env::new("hostile-load") else {
        return;
    };
    let contexts: Vec<PathBuf> = (0..8)
        .map(|i| {
            context(
                &env,
                &format!("load{i}"),
                &format!(
                    "FROM buildr-fixtures/busybox:latest\n\
                     RUN echo shared > /shared\n\
                     RUN echo half-{} > /half\n\
                     RUN echo own-{i} > /own\n",
                    i % 2
                ),
            )
        })
        .collect();
    let handles: Vec<_> = contexts
        .iter()
        .enumerate()
        .map(|(i, ctx)| {
            let root = env.root();
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let output = Command::new(BIN)
                    .arg("--root")
                    .arg(root)
                    .args(["build", "--progress", "json", "-t"])
                    .arg(format!("load{i}:latest"))
                    .arg(ctx)
                    .output()
                    .unwrap();
                Build { output }
            })
        })
        .collect();
    let builds: Vec<Build> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut executed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, build) in builds.iter().enumerate() {
        assert!(
            build.output.status.success(),
            "build {i} failed:\n{}",
            build.stderr()
        );
        for name in build.steps("started") {
            if let Some(run) = name.split("] ").nth(1).filter(|n| n.starts_with("RUN")) {
                *executed.entry(run.to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(
        executed.get("RUN echo shared > /shared"),
        Some(&1),
        "{executed:?}"
    );
    assert_eq!(
        executed.get("RUN echo half-0 > /half"),
        Some(&1),
        "{executed:?}"
    );
    assert_eq!(
        executed.get("RUN echo half-1 > /half"),
        Some(&1),
        "{executed:?}"
    );
    // 1 + 2 + 8 distinct RUN steps: each a layer kept as one snapshot, no
    // blob; per image a config and a manifest blob; busybox's layer,
    // config and manifest blobs, and its layer's snapshot.
    let blobs = fs::read_dir(env.root().join("blobs/sha256"))
        .unwrap()
        .count();
    let snapshots = fs::read_dir(env.root().join("snapshots")).unwrap().count();
    let layers: std::collections::BTreeSet<String> = (0..8)
        .flat_map(|i| {
            layers(&env, &format!("load{i}:latest"))
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(layers.len(), 1 + 1 + 2 + 8, "distinct layers: {layers:?}");
    assert_eq!(blobs, 1 + 8 * 2 + 2, "blobs stored more than once?");
    assert_eq!(snapshots, layers.len(), "snapshots stored more than once?");
    assert_verify_clean(&env);
}

/// `buildr verify` is not vacuous: a corrupted blob, a missing layer and a
/// missing snapshot are each reported by digest or path, exit 1.
#[test]
fn verify_names_corrupt_and_missing_content() {
    let Some(env) = Env::new("hostile-verify") else {
        return;
    };
    let ctx = context(
        &env,
        "v",
        "FROM buildr-fixtures/busybox:latest\nRUN echo v > /v\n",
    );
    let built = env.build(&ctx, &["-t", "v:latest"]);
    assert_eq!(built.done()["tags"][0], "docker.io/library/v:latest");
    assert_verify_clean(&env);
    let inspect = env.buildr(&["inspect", "v:latest"]);
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = inspect[0]["Id"].as_str().unwrap().to_owned();
    let blob = |digest: &str| {
        env.root()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };

    // A flipped byte in the config blob.
    let path = blob(&config);
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    let mode = fs::metadata(&path).unwrap().permissions();
    let mut writable = mode.clone();
    std::os::unix::fs::PermissionsExt::set_mode(&mut writable, 0o644);
    fs::set_permissions(&path, writable).unwrap();
    fs::write(&path, &bytes).unwrap();
    fs::set_permissions(&path, mode).unwrap();
    let out = env.buildr(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&config) && stdout.contains("corrupt"),
        "{stdout}"
    );
    bytes[0] ^= 1;
    fs::set_permissions(&path, {
        let mut p = fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
        p
    })
    .unwrap();
    fs::write(&path, &bytes).unwrap();
    assert_verify_clean(&env);

    // Every snapshot removed, then every layer blob of the image.
    for entry in fs::read_dir(env.root().join("snapshots"))
        .unwrap()
        .flatten()
    {
        Command::new("rm")
            .arg("-rf")
            .arg(entry.path())
            .status()
            .unwrap();
    }
    let out = env.buildr(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "dangling records not reported: {stdout}"
    );
    assert!(
        stdout.contains("record") && (stdout.contains("sha256-") || stdout.contains("blake3-")),
        "{stdout}"
    );
    // Layer blobs are the big ones (configs and manifests are small).
    let blobs: Vec<PathBuf> = fs::read_dir(env.root().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > 4096))
        .collect();
    assert!(!blobs.is_empty());
    for path in &blobs {
        fs::remove_file(path).unwrap();
    }
    let out = env.buildr(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for path in &blobs {
        let hex = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            stdout.contains(&hex),
            "missing blob {hex} not named:\n{stdout}"
        );
    }
    assert!(stdout.contains("layer blob"), "{stdout}");
}

/// Containers are checked too: their snapshots and writable layer.
#[test]
fn verify_names_a_container_missing_its_snapshots_or_upper() {
    let Some(env) = Env::new("hostile-verify-container") else {
        return;
    };
    let out = env.buildr(&["create", "buildr-fixtures/busybox:latest", "true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_verify_clean(&env);
    for entry in fs::read_dir(env.root().join("snapshots"))
        .unwrap()
        .flatten()
    {
        Command::new("rm")
            .arg("-rf")
            .arg(entry.path())
            .status()
            .unwrap();
    }
    let upper = env.root().join("containers").join(&id).join("upper");
    Command::new("rm").arg("-rf").arg(&upper).status().unwrap();
    let out = env.buildr(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("container {id}: snapshot sha256-")),
        "{stdout}"
    );
    assert!(stdout.contains(&upper.display().to_string()), "{stdout}");
}
