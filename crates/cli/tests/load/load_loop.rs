//! Load through the real binary: 50 containers `run --rm` and 50
//! `run -d` + `rm -f` against one store leave nothing behind (no mount
//! under the store, no container or sandbox state dir, no cgroup named
//! for their supervisors, no network namespace or veth, no process, no
//! fd on the store held by anyone); and a 60-second run of
//! `benches/soak.sh` (build with a cache miss / run / rm / prune) whose
//! peak RSS, supervisor fds, store size, mounts and processes stay flat.
//!
//! Needs root, overlayfs, busybox-static, umoci, tar (`build_common`) and
//! /usr/bin/time; skips loudly without them, fails under `CI=true`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::build_common::{BIN, Env, workspace};

const IMAGE: &str = "buildr-fixtures/busybox:latest";

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pids of processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Open fds, in any process, on a path under `dir`.
fn fds_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && target.starts_with(dir)
            {
                found.push(format!("{} -> {}", fd.path().display(), target.display()));
            }
        }
    }
    found
}

/// Cgroup directories (depth 4) whose name starts with `buildr-PID-` for
/// any of `pids`.
fn cgroups_of(pids: &BTreeSet<u32>) -> Vec<PathBuf> {
    fn walk(dir: &Path, prefixes: &[String], depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if prefixes.iter().any(|p| name.starts_with(p)) {
                found.push(entry.path());
            }
            if depth > 0 {
                walk(&entry.path(), prefixes, depth - 1, found);
            }
        }
    }
    let prefixes: Vec<String> = pids.iter().map(|p| format!("buildr-{p}-")).collect();
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), &prefixes, 4, &mut found);
    found
}

/// Sandbox state dirs (`buildr-exec-PID-*`) and container runtime dirs
/// under the tmpfs roots the launcher uses.
fn state_dirs(pids: &BTreeSet<u32>, ids: &BTreeSet<String>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let runtime = std::env::var("XDG_RUNTIME_DIR").unwrap_or_default();
    for base in [runtime.as_str(), "/run", "/dev/shm"] {
        if base.is_empty() {
            continue;
        }
        for dir in [PathBuf::from(base), Path::new(base).join("buildr")] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if pids
                    .iter()
                    .any(|p| name.starts_with(&format!("buildr-exec-{p}-")))
                {
                    found.push(entry.path());
                }
            }
        }
        let containers = Path::new(base).join("buildr/containers");
        for id in ids {
            if containers.join(id).exists() {
                found.push(containers.join(id));
            }
        }
    }
    found
}

fn netns_entries() -> BTreeSet<String> {
    fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn own_fd_count() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The tests of this file run one at a time: the first counts this
/// process's own fds, which the other's children and pipes would move.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn fifty_run_rm_and_fifty_detached_rm_f_leave_nothing_behind() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(env) = Env::new("load-fifty-containers") else {
        return;
    };
    let root = env.root();
    let netns_before = netns_entries();
    let fds_before = own_fd_count();
    let mut supervisors = BTreeSet::new();
    let mut ids = BTreeSet::new();

    // 50 foreground `run --rm`: the CLI process is the supervisor.
    for i in 0..50 {
        let child = Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(["run", "--rm", "-v", "/anon", IMAGE, "sh", "-c"])
            .arg(format!("echo run-{i} > /anon/f; cat /anon/f"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        supervisors.insert(child.id());
        let out = ok(child.wait_with_output().unwrap(), "run --rm");
        assert_eq!(out, format!("run-{i}\n"));
    }
    // 50 `run -d` in batches of 10, each batch removed with `rm -f`.
    for batch in 0..5 {
        let mut batch_ids = Vec::new();
        for _ in 0..10 {
            let id = ok(env.buildr(&["run", "-d", IMAGE, "sleep", "600"]), "run -d")
                .trim()
                .to_owned();
            assert_eq!(id.len(), 64, "{id}");
            let state: serde_json::Value = serde_json::from_slice(
                &fs::read(root.join("containers").join(&id).join("state.json")).unwrap(),
            )
            .unwrap();
            if let Some(pid) = state["supervisor_pid"].as_u64() {
                supervisors.insert(pid as u32);
            }
            batch_ids.push(id);
        }
        let running = ok(env.buildr(&["ps", "-q"]), "ps");
        assert_eq!(running.lines().count(), 10, "batch {batch}: {running}");
        let mut args = vec!["rm", "-f"];
        args.extend(batch_ids.iter().map(String::as_str));
        ok(env.buildr(&args), "rm -f");
        ids.extend(batch_ids);
    }

    assert_eq!(ok(env.buildr(&["ps", "-aq"]), "ps -a"), "");
    assert_eq!(ok(env.buildr(&["volume", "ls", "-q"]), "volume ls"), "");
    let dirs: Vec<_> = fs::read_dir(root.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    assert!(dirs.is_empty(), "container dirs left: {dirs:?}");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = root.display().to_string();
    let left: Vec<&str> = mountinfo.lines().filter(|l| l.contains(&store)).collect();
    assert!(left.is_empty(), "mounts left under the store: {left:?}");
    assert_eq!(
        processes_with(&store),
        Vec::<String>::new(),
        "processes left"
    );
    let alive: Vec<u32> = supervisors
        .iter()
        .copied()
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&store))
        })
        .collect();
    assert!(alive.is_empty(), "supervisors still alive: {alive:?}");
    assert_eq!(
        cgroups_of(&supervisors),
        Vec::<PathBuf>::new(),
        "cgroups left"
    );
    assert_eq!(
        state_dirs(&supervisors, &ids),
        Vec::<PathBuf>::new(),
        "state dirs left"
    );
    assert_eq!(netns_entries(), netns_before, "network namespaces left");
    assert_eq!(fds_under(&root), Vec::<String>::new(), "fds on the store");
    assert_eq!(own_fd_count(), fds_before, "the test's own fds leaked");
    let tmp: Vec<_> = fs::read_dir(root.join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "store tmp/ not empty: {tmp:?}");
    let out = env.buildr(&["verify"]);
    ok(out, "verify");
}

#[test]
fn a_sixty_second_soak_keeps_memory_fds_and_the_store_flat() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let test = "load-soak-60s";
    let Some(env) = Env::new(test) else {
        return;
    };
    if !buildr_testkit::prereq::need_tool(test, "/usr/bin/time") {
        return;
    }
    let dir = env.dir.path().join("soak");
    fs::create_dir(&dir).unwrap();
    let out = Command::new("bash")
        .arg(workspace().join("benches/soak.sh"))
        .env("BUILDR", BIN)
        .env("SOAK_SECONDS", "60")
        .env("SOAK_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("soak: ok"),
        "soak failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // At least a few windows with work in each: the loop really ran.
    let windows: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .collect();
    assert!(windows.len() >= 5, "too few windows:\n{stdout}");
    for line in &windows {
        let iters: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(iters > 0, "an empty window: {line}");
    }
}
