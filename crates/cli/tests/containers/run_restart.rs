//! Restart policies applied by the detached supervisor, and what acts on a
//! running container's cgroup, through the real `buildr` binary on the
//! busybox fixture (`--network none`): `on-failure:2` runs a failing
//! command three times (RestartCount 2, exit 3), also when started in the
//! foreground (a supervisor takes the restarts over); `update --restart`
//! decides a running container's next exit; `always` runs it again after
//! it exits, stays exited after `stop`, and `start --all-restartable`
//! starts it again; `--restart` with `--rm` is refused as docker refuses
//! it; `pause` stops a counter and `unpause` resumes it; `top` lists the
//! container's `sleep`; `stats --no-stream` prints its memory; `update
//! --memory` changes the cgroup's limit (read back from the cgroup file);
//! `stop` and `kill` end a paused one. Root and busybox are needed: under
//! CI=true their absence fails the test, otherwise it says loudly that it
//! skips.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::container_common::{Env, IMAGE, prerequisites};

/// Polls `inspect --format TEMPLATE NAME` until `want` holds (10 s).
fn wait_for(env: &Env, name: &str, template: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = env.ok(&["inspect", "--format", template, name]);
        let got = got.trim().to_owned();
        if want(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {template} is still {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn restart_policies_restart_and_stop_as_dockers() {
    let test = "restart_policies_restart_and_stop_as_dockers";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let none = ["--network", "none"];
    let err = env.fails(&["run", "--rm", "--restart", "always", IMAGE, "true"]);
    assert!(
        err.contains("cannot specify both --restart and --rm"),
        "{err}"
    );
    let err = env.fails(&["create", "--restart", "sometimes", IMAGE, "true"]);
    assert!(err.contains("unknown policy 'sometimes'"), "{err}");

    // on-failure:2: three runs, then it stays exited with the last code;
    // `wait` returns at the first exit, as docker's.
    env.ok(&[
        &["run", "-d", "--name", "fail"][..],
        &none,
        &["--restart", "on-failure:2", IMAGE, "sh", "-c", "exit 3"],
    ]
    .concat());
    assert_eq!(env.ok(&["wait", "fail"]), "3\n");
    let got = wait_for(
        &env,
        "fail",
        "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
        |s| s.starts_with("exited"),
    );
    assert_eq!(got, "exited 2 3");
    // A foreground run ends with the first exit, as docker's CLI; the
    // restarts go on in the background.
    let out = env.run(
        &[
            &["run", "--name", "fg"][..],
            &none,
            &[
                "--restart",
                "on-failure:1",
                IMAGE,
                "sh",
                "-c",
                "echo once; exit 4",
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "once\n");
    let got = wait_for(&env, "fg", "{{.State.Status}} {{.RestartCount}}", |s| {
        s == "exited 1"
    });
    assert_eq!(got, "exited 1");
    let logs = env.ok(&["logs", "fg"]);
    assert_eq!(logs, "once\nonce\n");
    let policy = env.ok(&[
        "inspect",
        "--format",
        "{{json .HostConfig.RestartPolicy}}",
        "fail",
    ]);
    assert_eq!(
        policy.trim(),
        r#"{"MaximumRetryCount":2,"Name":"on-failure"}"#
    );

    // `update --restart` on a running container applies to its exit.
    env.ok(&[
        &["run", "-d", "--name", "later"][..],
        &none,
        &[IMAGE, "sh", "-c", "sleep 2; exit 5"],
    ]
    .concat());
    env.ok(&["update", "--restart", "on-failure:1", "later"]);
    let got = wait_for(
        &env,
        "later",
        "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
        |s| s == "exited 1 5",
    );
    assert_eq!(got, "exited 1 5");

    // always: run again after each exit; `stop` is final.
    env.ok(&[
        &["run", "-d", "--name", "loop"][..],
        &none,
        &[
            "--restart",
            "always",
            IMAGE,
            "sh",
            "-c",
            "sleep 0.2; exit 0",
        ],
    ]
    .concat());
    wait_for(&env, "loop", "{{.RestartCount}}", |n| {
        n.parse::<u32>().unwrap() >= 2
    });
    env.ok(&["stop", "-t", "1", "loop"]);
    let stopped = env.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.RestartCount}}",
        "loop",
    ]);
    assert!(stopped.starts_with("exited"), "{stopped}");
    std::thread::sleep(Duration::from_millis(800));
    let later = env.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.RestartCount}}",
        "loop",
    ]);
    assert_eq!(
        later, stopped,
        "a stopped `always` container was started again"
    );

    // A boot: `always` starts again (count reset: a start by the user);
    // on-failure does not.
    let started = env.ok(&["container", "start", "--all-restartable"]);
    assert_eq!(started.trim(), "loop");
    let got = env.ok(&["inspect", "--format", "{{.State.Status}}", "loop"]);
    assert!(matches!(got.trim(), "running" | "restarting"), "{got}");
    // `restart` works with a policy, and `ps` names what it waits for.
    env.ok(&["restart", "-t", "1", "loop"]);
    wait_for(&env, "loop", "{{.State.Status}}", |s| s == "restarting");
    env.ok(&["rm", "-f", "loop"]);
}

/// The container's cgroup directory for `controller` (v1) or its v2 one.
fn cgroup_dir(env: &Env, name: &str, controller: &str) -> PathBuf {
    let pid = env.ok(&["inspect", "--format", "{{.State.Pid}}", name]);
    let text = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if controllers.split(',').any(|c| c == controller) && path.contains("buildr-") {
            return PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"));
        }
        if controllers.is_empty() && path.contains("buildr-") {
            return PathBuf::from(format!("/sys/fs/cgroup{path}"));
        }
    }
    panic!("{name} has no buildr cgroup for {controller}: {text}");
}

#[test]
fn pause_top_stats_and_update_act_on_the_cgroup() {
    let test = "pause_top_stats_and_update_act_on_the_cgroup";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let counter = "sleep 300 & i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done";
    env.ok(&[
        "run",
        "-d",
        "--name",
        "count",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        counter,
    ]);
    let read = || {
        env.ok(&["exec", "count", "cat", "/tmp/n"])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    let err = env.fails(&["unpause", "count"]);
    assert!(err.contains("is not paused"), "{err}");

    env.ok(&["pause", "count"]);
    let state = env.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        "count",
    ]);
    assert_eq!(state.trim(), "paused true true");
    let ps = env.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    let err = env.fails(&["exec", "count", "true"]);
    assert!(err.contains("is paused"), "{err}");
    let err = env.fails(&["pause", "count"]);
    assert!(err.contains("is already paused"), "{err}");
    let listed = env.ok(&["ps", "-q", "--filter", "status=paused"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let info = env.ok(&[
        "info",
        "--format",
        "{{.ContainersRunning}} {{.ContainersPaused}}",
    ]);
    assert_eq!(info.trim(), "0 1");
    // Read through the filesystem: exec cannot join a frozen container.
    let upper = env.ok(&[
        "inspect",
        "--format",
        "{{.GraphDriver.Data.UpperDir}}",
        "count",
    ]);
    let file = PathBuf::from(upper.trim()).join("tmp/n");
    let frozen = std::fs::read_to_string(&file).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        frozen,
        "the counter moved while paused"
    );
    env.ok(&["unpause", "count"]);
    let before = read();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read() <= before {
        assert!(Instant::now() < deadline, "the counter did not resume");
        std::thread::sleep(Duration::from_millis(50));
    }

    let top = env.ok(&["top", "count"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.lines().any(|l| l.ends_with("sleep 300")), "{top}");
    let top = env.ok(&["top", "count", "-o", "pid,comm"]);
    assert!(
        top.lines().any(|l| l.trim_end().ends_with("sleep")),
        "{top}"
    );

    let stats = env.ok(&["stats", "--no-stream", "count"]);
    let mut lines = stats.lines();
    assert!(
        lines.next().unwrap().starts_with("CONTAINER ID   NAME"),
        "{stats}"
    );
    let row = lines.next().unwrap();
    assert!(row.contains(" count ") && row.contains("iB / "), "{stats}");
    let usage = env.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "count"]);
    assert!(!usage.starts_with("0B"), "{usage}");

    env.ok(&["update", "--memory", "96m", "--pids-limit", "77", "count"]);
    let memory = cgroup_dir(&env, "count", "memory");
    let limit = ["memory.limit_in_bytes", "memory.max"]
        .iter()
        .find_map(|f| std::fs::read_to_string(memory.join(f)).ok())
        .unwrap();
    assert_eq!(limit.trim(), (96u64 << 20).to_string());
    let pids = std::fs::read_to_string(cgroup_dir(&env, "count", "pids").join("pids.max")).unwrap();
    assert_eq!(pids.trim(), "77");
    let recorded = env.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
        "count",
    ]);
    assert_eq!(recorded.trim(), format!("{} 77", 96u64 << 20));

    // A paused container stops as docker's: thawed, so the signal lands.
    env.ok(&["pause", "count"]);
    env.ok(&["stop", "-t", "5", "count"]);
    let state = env.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Paused}}",
        "count",
    ]);
    assert_eq!(state.trim(), "exited false");
    let err = env.fails(&["pause", "count"]);
    assert!(err.contains("is not running"), "{err}");
    // And `kill` (SIGKILL) of a paused one: 137, as docker's.
    env.ok(&["start", "count"]);
    env.ok(&["pause", "count"]);
    env.ok(&["kill", "count"]);
    assert_eq!(env.ok(&["wait", "count"]), "137\n");
    env.ok(&["rm", "count"]);
}
