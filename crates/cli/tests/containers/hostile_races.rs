//! Symlink races and planted symlinks against the real binary: mount
//! targets of `buildr run -v` that are (or become, while the container
//! starts) symlinks out of the rootfs (CVE-2021-30465's shape), a named
//! volume holding a symlink to `/`, `RUN --mount` targets whose parent the
//! step replaces with a symlink to a host path (CVE-2024-23651/23652:
//! teardown and the stub cleaner must not follow it), and a directory of
//! the build context swapped for a symlink while `buildr build` copies it.
//!
//! Every case asserts facts on the host: a canary directory's entries,
//! content, mode and owner unchanged, no mount over it, `buildr verify`
//! clean. Needs root, overlayfs, busybox-static, umoci and tar (see
//! `build_common`); skips loudly without them, fails under `CI=true`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::build_common::Env;

const IMAGE: &str = "buildr-fixtures/busybox:latest";

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

fn assert_verify_clean(env: &Env) {
    let out = env.buildr(&["verify"]);
    assert!(
        out.status.success(),
        "buildr verify found problems: {}",
        text(&out)
    );
}

/// A host directory that nothing in a sandbox may touch: a file with
/// content, an empty file and empty directories named like mount stubs
/// (`x`, `f`, `sub`), so that a cleaner or mkdir that follows a planted
/// symlink would visibly change it.
struct Canary {
    dir: PathBuf,
    before: BTreeMap<PathBuf, String>,
}

impl Canary {
    fn new(name: &str) -> Canary {
        let dir = std::env::temp_dir().join(format!(
            "buildr-canary-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("keep"), "host canary, do not touch\n").unwrap();
        fs::set_permissions(dir.join("keep"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(dir.join("f"), "").unwrap();
        for sub in ["x", "sub", "p", "mnt"] {
            fs::create_dir(dir.join(sub)).unwrap();
        }
        let before = tree(&dir);
        Canary { dir, before }
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Entries, contents, modes and owners as they were; no mount on it.
    fn assert_untouched(&self, case: &str) {
        assert_eq!(
            tree(&self.dir),
            self.before,
            "{case}: host canary {} changed",
            self.dir.display()
        );
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let over: Vec<&str> = mountinfo
            .lines()
            .filter(|l| l.contains(self.path()))
            .collect();
        assert!(
            over.is_empty(),
            "{case}: host mounts on the canary: {over:?}"
        );
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Every entry under `root`, never following symlinks: kind, mode, owner
/// and content (or link target).
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_owned();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &path, out);
                "dir".to_owned()
            } else {
                format!("file {:?}", fs::read(&path).unwrap_or_default())
            };
            out.insert(
                rel,
                format!("{what} {:o} {}:{}", meta.mode(), meta.uid(), meta.gid()),
            );
        }
    }
    let mut out = BTreeMap::new();
    let meta = fs::symlink_metadata(root).unwrap();
    out.insert(
        PathBuf::from("."),
        format!("{:o} {}:{}", meta.mode(), meta.uid(), meta.gid()),
    );
    walk(root, root, &mut out);
    out
}

/// Some host files a mount escaping to `/etc` would cover or change.
fn host_etc() -> BTreeMap<String, String> {
    ["/etc/passwd", "/etc/group", "/etc/hostname", "/etc/hosts"]
        .iter()
        .filter_map(|p| {
            let meta = fs::symlink_metadata(p).ok()?;
            let content = fs::read(p).unwrap_or_default();
            Some((
                (*p).to_owned(),
                format!(
                    "{:o} {}:{} {:?}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    content
                ),
            ))
        })
        .collect()
}

fn context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// A host directory to bind into containers, named uniquely so that the
/// container can find its mount in its own mountinfo.
fn host_dir(env: &Env, name: &str) -> (PathBuf, String) {
    let unique = format!("bindsrc-{name}-{}", std::process::id());
    let dir = env.dir.path().join(&unique);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("marker"), "bind source\n").unwrap();
    (dir, unique)
}

/// Whether the container's mountinfo (its stdout) shows a mount of the
/// host directory named `unique`: every mount a container can see is
/// inside its root (the old root is detached at pivot_root).
fn mounted_inside(mountinfo: &str, unique: &str) -> Option<String> {
    mountinfo
        .lines()
        .find(|l| {
            l.split(' ')
                .nth(3)
                .is_some_and(|root| root.ends_with(unique))
        })
        .and_then(|l| l.split(' ').nth(4).map(str::to_owned))
}

#[test]
fn bind_targets_through_image_symlinks_land_inside_the_rootfs() {
    let Some(env) = Env::new("races-bind-symlinks") else {
        return;
    };
    let canary = Canary::new("bind");
    let etc = host_etc();
    let ctx = context(
        &env,
        "links",
        &format!(
            "FROM {IMAGE}\n\
             RUN ln -s /etc /target && mkdir -p /a/b && ln -s ../../.. /a/b/up \
             && ln -s {canary} /canary && ln -s /nonexistent-{pid} /dangling\n",
            canary = canary.path(),
            pid = std::process::id()
        ),
    );
    env.build(&ctx, &["-t", "links:latest"]);
    let (src, unique) = host_dir(&env, "links");
    let bind = |target: &str| format!("{}:{target}", src.display());
    let cases = [
        // (target as written, where it must show inside the container)
        ("/target", "/etc"),
        ("/target/sub", "/etc/sub"),
        ("/a/b/up/etc/x", "/etc/x"),
        ("/canary/sub", &format!("{}/sub", canary.path())),
        ("/canary", canary.path()),
        ("/dangling", &format!("/nonexistent-{}", std::process::id())),
    ];
    for (target, inside) in cases {
        let out = env.buildr(&[
            "run",
            "--rm",
            "-v",
            &bind(target),
            "links:latest",
            "sh",
            "-c",
            "cat /proc/self/mountinfo",
        ]);
        let mountinfo = ok(out, &format!("run -v ...:{target}"));
        let at = mounted_inside(&mountinfo, &unique)
            .unwrap_or_else(|| panic!("{target}: the bind is not visible inside:\n{mountinfo}"));
        assert_eq!(at, inside, "{target}: mounted at {at}");
        canary.assert_untouched(target);
        assert_eq!(host_etc(), etc, "{target}: host /etc changed");
        assert!(
            !Path::new(&format!("/nonexistent-{}", std::process::id())).exists(),
            "{target}: a directory was made on the host"
        );
    }
    // Writes through the bind reach the source, and only the source.
    let out = env.buildr(&[
        "run",
        "--rm",
        "-v",
        &bind("/canary/sub"),
        "links:latest",
        "sh",
        "-c",
        "echo from-container > /canary/sub/written",
    ]);
    ok(out, "write through the bind");
    assert_eq!(
        fs::read_to_string(src.join("written")).unwrap(),
        "from-container\n"
    );
    canary.assert_untouched("write");
    assert_verify_clean(&env);
}

/// Swaps `dir/name` between a directory and a symlink to `target` as fast
/// as it can, each swap one atomic `renameat2(RENAME_EXCHANGE)` (the
/// CVE-2021-30465 exploit's move), until `stop`. Returns the swap count.
fn swapper(
    dir: PathBuf,
    name: &str,
    target: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    let real = dir.join(name);
    let link = dir.join(format!("{name}.link"));
    let _ = fs::create_dir(&real);
    let _ = fs::remove_file(&link);
    symlink(&target, &link).unwrap();
    std::thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            renameat2(
                AT_FDCWD,
                &real,
                AT_FDCWD,
                &link,
                RenameFlags::RENAME_EXCHANGE,
            )
            .unwrap_or_else(|e| panic!("exchange {} and {}: {e}", real.display(), link.display()));
            swaps += 1;
        }
        // Leave the directory in place.
        if fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = renameat2(
                AT_FDCWD,
                &real,
                AT_FDCWD,
                &link,
                RenameFlags::RENAME_EXCHANGE,
            );
        }
        swaps
    })
}

#[test]
fn a_volume_swapped_for_a_symlink_while_containers_start_never_mounts_outside() {
    let Some(env) = Env::new("races-volume-swap") else {
        return;
    };
    let canary = Canary::new("swap");
    let etc = host_etc();
    let out = env.buildr(&["volume", "create", "racevol"]);
    ok(out, "volume create");
    let out = env.buildr(&["volume", "inspect", "racevol"]);
    let doc: serde_json::Value = serde_json::from_str(&ok(out, "volume inspect")).unwrap();
    let data = PathBuf::from(doc[0]["Mountpoint"].as_str().unwrap());
    let (src, unique) = host_dir(&env, "swap");

    let stop = Arc::new(AtomicBool::new(false));
    // Absolute (the host's canary) and relative (up and out of the rootfs)
    // symlinks, swapped in for the directory the second mount targets.
    let abs = swapper(data.clone(), "sub", canary.dir.clone(), stop.clone());
    let rel = swapper(
        data.clone(),
        "rel",
        PathBuf::from("../../../../../../../../..").join(canary.dir.strip_prefix("/").unwrap()),
        stop.clone(),
    );
    let (mut landed, mut refused) = (0, 0);
    // BUILDR_RACE_RUNS raises the count for a longer hunt by hand.
    let n_runs: usize = std::env::var("BUILDR_RACE_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    for i in 0..n_runs {
        let target = if i % 2 == 0 { "/v/sub" } else { "/v/rel" };
        let out = env.buildr(&[
            "run",
            "--rm",
            "-v",
            "racevol:/v",
            "-v",
            // `mnt` exists in the canary too: a mount that followed the
            // swapped symlink on the host would land there (invisibly to
            // the container) instead of failing.
            &format!("{}:{target}/mnt", src.display()),
            IMAGE,
            "cat",
            "/proc/self/mountinfo",
        ]);
        if out.status.success() {
            let mountinfo = String::from_utf8_lossy(&out.stdout).into_owned();
            // The mount is either inside the rootfs, or nowhere: never
            // left on a host path the container cannot see.
            assert!(
                mounted_inside(&mountinfo, &unique).is_some(),
                "run {i}: the bind of {} escaped the rootfs (not in the container's mountinfo):\n{mountinfo}",
                src.display()
            );
            landed += 1;
        } else {
            // A refusal names what it refused.
            let message = text(&out);
            assert!(
                message.contains("/v/") || message.contains("sub") || message.contains("rel"),
                "run {i}: failed without naming the target:\n{message}"
            );
            refused += 1;
        }
        canary.assert_untouched(&format!("run {i}"));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = abs.join().unwrap() + rel.join().unwrap();
    eprintln!("{landed} runs landed inside, {refused} refused, {swaps} swaps");
    assert!(swaps > 100, "the swapper barely ran ({swaps} swaps)");
    assert!(landed > 0, "no run succeeded at all");
    assert_eq!(host_etc(), etc);
    canary.assert_untouched("after the race");
    assert!(
        fs::read_dir(&src).unwrap().count() == 1,
        "the bind source gained entries"
    );
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = env.root().display().to_string();
    let left: Vec<&str> = mountinfo.lines().filter(|l| l.contains(&store)).collect();
    assert!(left.is_empty(), "mounts left under the store: {left:?}");
    assert_verify_clean(&env);
}

#[test]
fn a_volume_holding_a_symlink_to_root_keeps_mounts_inside() {
    let Some(env) = Env::new("races-volume-root-link") else {
        return;
    };
    let canary = Canary::new("volroot");
    let etc = host_etc();
    ok(
        env.buildr(&["volume", "create", "rootlink"]),
        "volume create",
    );
    let out = env.buildr(&["volume", "inspect", "rootlink"]);
    let doc: serde_json::Value = serde_json::from_str(&ok(out, "volume inspect")).unwrap();
    let data = PathBuf::from(doc[0]["Mountpoint"].as_str().unwrap());
    symlink("/", data.join("root")).unwrap();
    symlink("../../../../../../../..", data.join("up")).unwrap();
    symlink(&canary.dir, data.join("canary")).unwrap();
    let (src, unique) = host_dir(&env, "volroot");
    let probe = format!("probe-{}", std::process::id());
    for target in [
        format!("/v/root/{probe}"),
        format!("/v/up/{probe}"),
        "/v/canary/mnt".to_owned(),
        "/v/canary".to_owned(),
    ] {
        let out = env.buildr(&[
            "run",
            "--rm",
            "-v",
            "rootlink:/v",
            "-v",
            &format!("{}:{target}", src.display()),
            IMAGE,
            "sh",
            "-c",
            "cat /proc/self/mountinfo; ls /v/root/ > /dev/null",
        ]);
        let mountinfo = ok(out, &format!("run with a bind at {target}"));
        assert!(
            mounted_inside(&mountinfo, &unique).is_some(),
            "{target}: bind not inside:\n{mountinfo}"
        );
        assert!(
            !Path::new("/").join(&probe).exists(),
            "{target}: created /{probe} on the host"
        );
        canary.assert_untouched(&target);
    }
    // The volume itself mounted where its own symlinks point, and a
    // container writing through them writes into its own root.
    let out = env.buildr(&[
        "run",
        "--rm",
        "-v",
        "rootlink:/v",
        IMAGE,
        "sh",
        "-c",
        &format!("echo x > /v/root/{probe}; echo y > /v/canary/keep; echo z > /v/up/tmp/{probe}"),
    ]);
    ok(out, "writes through the volume's symlinks");
    assert!(!Path::new("/").join(&probe).exists());
    assert!(!Path::new("/tmp").join(&probe).exists());
    canary.assert_untouched("writes through the volume's symlinks");
    assert_eq!(host_etc(), etc);
    assert_verify_clean(&env);
}

#[test]
fn run_mount_teardown_never_follows_a_planted_symlink() {
    let Some(env) = Env::new("races-run-mount-teardown") else {
        return;
    };
    let canary = Canary::new("runmount");
    let mounts_before = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let c = canary.path();
    let ctx = context(
        &env,
        "teardown",
        &format!(
            "FROM {IMAGE}\n\
             RUN --mount=type=cache,target=/x sh -c 'rm -rf /x; ln -s / /x; true'\n\
             RUN --mount=type=cache,target=/p/x sh -c 'mv /p /p.moved && ln -s {c} /p'\n\
             RUN --mount=type=tmpfs,target=/q/sub sh -c 'mv /q /q.moved && ln -s {c} /q'\n\
             RUN --mount=type=bind,target=/r/f,source=Dockerfile sh -c 'mv /r /r.moved && ln -s {c} /r'\n\
             RUN --mount=type=tmpfs,target=/s/x sh -c 'rmdir /s/x 2>/dev/null; mv /s /s.moved && ln -s ../../../../../../../..{c} /s'\n"
        ),
    );
    let built = env.build(&ctx, &["-t", "teardown:latest"]);
    let _ = built;
    canary.assert_untouched("after the build");
    let mounts_after = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert_eq!(mounts_before, mounts_after, "host mount table changed");

    // The layer diffs: no stub at a mount target, and nothing under the
    // planted symlinks (they are links in the layer, never followed).
    let unpacked = env.unpack("teardown:latest");
    let n_layers = unpacked.manifest()["layers"].as_array().unwrap().len();
    // The first RUN changes nothing once its stub is gone: no layer.
    assert_eq!(n_layers, 1 + 4, "busybox's layer and one per changing RUN");
    let layers: Vec<Vec<String>> = (1..n_layers).map(|i| unpacked.layer_entries(i)).collect();
    for entries in &layers {
        assert!(
            !entries.iter().any(|e| e.trim_end_matches('/') == "x"),
            "the cache mount's stub /x reached a layer: {entries:?}"
        );
    }
    for (entries, link) in layers.iter().zip(["p", "q", "r", "s"]) {
        assert!(
            entries.iter().any(|e| e == link),
            "the planted symlink /{link} is missing: {entries:?}"
        );
        assert!(
            !entries.iter().any(|e| e.starts_with(&format!("{link}/"))),
            "entries through the symlink /{link}: {entries:?}"
        );
    }
    let rootfs = unpacked.rootfs();
    for link in ["p", "q", "r", "s"] {
        let meta = fs::symlink_metadata(rootfs.join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "/{link} is not a symlink");
    }
    canary.assert_untouched("after unpacking");
    assert_verify_clean(&env);
}

#[test]
fn a_context_directory_swapped_for_a_symlink_mid_build_is_never_followed_out() {
    let Some(env) = Env::new("races-context-swap") else {
        return;
    };
    let secret = format!("host-secret-{}", std::process::id());
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    for i in 0..50 {
        fs::write(outside.join(format!("s{i}")), &secret).unwrap();
    }
    let ctx = context(
        &env,
        "swapctx",
        &format!("FROM {IMAGE}\nCOPY data /data\nRUN ! grep -rqs {secret} /data\n"),
    );
    let data = ctx.join("data");
    fs::create_dir(&data).unwrap();
    for i in 0..400 {
        fs::write(data.join(format!("f{i}")), format!("context file {i}\n")).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(ctx.clone(), "data", outside.clone(), stop.clone());
    let (mut built, mut refused) = (0, 0);
    for i in 0..8 {
        let build = env.try_build(&ctx, &["--no-cache", "-t", &format!("swap{i}:latest")]);
        if build.output.status.success() {
            built += 1;
            // The image's /data is the context's directory (or the
            // symlink itself), never the outside directory's files.
            let out = env.buildr(&[
                "run",
                "--rm",
                &format!("swap{i}:latest"),
                "sh",
                "-c",
                &format!("grep -rls {secret} /data; ls /data | head -3; true"),
            ]);
            let listing = ok(out, "list /data");
            assert!(
                !listing.contains(&secret) && !listing.contains("s0"),
                "build {i} copied files from outside the context:\n{listing}"
            );
        } else {
            refused += 1;
            let stderr = build.stderr();
            assert!(
                stderr.contains("data") || stderr.contains("Dockerfile:2"),
                "build {i} failed without naming the source:\n{stderr}"
            );
            assert!(
                !stderr.contains("Dockerfile:3"),
                "build {i} copied the secret:\n{stderr}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    eprintln!("{built} builds copied, {refused} refused, {swaps} swaps");
    assert!(swaps > 100, "the swapper barely ran ({swaps} swaps)");
    for i in 0..50 {
        assert_eq!(
            fs::read_to_string(outside.join(format!("s{i}"))).unwrap(),
            secret
        );
    }
    assert_verify_clean(&env);
}
