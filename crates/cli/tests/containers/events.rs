//! `buildr events`: the engine logs containers' and images' state changes;
//! `events` replays them (`--since`), follows new ones until `--until`
//! passes or it is stopped, filters them and prints docker's lines or
//! `--format` documents. Containers run with `--network none`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::container_common::{Env, IMAGE, prerequisites};

fn unix_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// `Type Action name` of each `{{json .}}` line.
fn summary(lines: &str) -> Vec<String> {
    lines
        .lines()
        .map(|line| {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            format!(
                "{} {} {}",
                doc["Type"].as_str().unwrap(),
                doc["Action"].as_str().unwrap(),
                doc["Actor"]["Attributes"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn events_replay_follow_and_filter_state_changes() {
    if !prerequisites("events_replay_follow_and_filter_state_changes") {
        return;
    }
    let env = Env::new();
    let t0 = unix_now();
    // A follower started before the changes sees them live.
    let mut follower = env
        .command(&[
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{json .}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // It starts at the log's end: give it a moment to open the log.
    std::thread::sleep(Duration::from_millis(500));

    env.ok(&["tag", IMAGE, "ev:1"]);
    env.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "quick",
        IMAGE,
        "sh",
        "-c",
        "exit 3",
    ]);
    env.ok(&["rename", "quick", "quicker"]);
    env.ok(&["rm", "quicker"]);
    env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "sleeper",
        IMAGE,
        "sleep",
        "60",
    ]);
    env.ok(&["restart", "-t", "1", "sleeper"]);
    env.ok(&["kill", "sleeper"]);
    env.ok(&["wait", "sleeper"]);
    env.ok(&["rm", "sleeper"]);
    env.ok(&["rmi", "ev:1"]);
    let t1 = unix_now();

    let expected = [
        "container create quick",
        "container start quick",
        "container die quick",
        "container rename quicker",
        "container destroy quicker",
        "container create sleeper",
        "container start sleeper",
        "container kill sleeper",
        "container die sleeper",
        "container stop sleeper",
        "container start sleeper",
        "container restart sleeper",
        "container kill sleeper",
        "container die sleeper",
        "container destroy sleeper",
    ];
    let mut live = Vec::new();
    while live.len() < expected.len() {
        match lines_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => live.push(line),
            Err(_) => break,
        }
    }
    follower.kill().unwrap();
    let _ = follower.wait();
    assert_eq!(summary(&live.join("\n")), expected, "followed live");

    // Replayed: --since and --until bound it, and it exits by itself.
    let replay = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--format",
        "{{json .}}",
    ]);
    let all = summary(&replay);
    assert_eq!(
        all.first().map(String::as_str),
        Some("image tag ev:1"),
        "{all:?}"
    );
    // ev:1 was not the image's last name: untagged, not deleted.
    assert_eq!(
        all.last().map(String::as_str),
        Some("image untag ev:1"),
        "{all:?}"
    );
    assert_eq!(all.len(), expected.len() + 2, "{all:?}");
    let deleted = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "-f",
        "event=delete",
    ]);
    assert_eq!(deleted, "", "{deleted}");

    // docker's text line, and filters ANDed across keys.
    let dies = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=die",
        "--filter",
        "container=quick",
    ]);
    let dies: Vec<&str> = dies.lines().collect();
    assert_eq!(dies.len(), 1, "{dies:?}");
    assert!(
        dies[0].contains(" container die ")
            && dies[0].ends_with(&format!("(exitCode=3, image={IMAGE}, name=quick)")),
        "{}",
        dies[0]
    );
    let kills = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "-f",
        "event=kill",
        "--format",
        "{{.Actor.Attributes.signal}}",
    ]);
    assert_eq!(
        kills.lines().collect::<Vec<_>>(),
        ["15", "9"],
        "stop's TERM, kill's KILL"
    );
    // An image imported, then its last name removed: untagged and deleted.
    let tar = crate::container_common::busybox_tar(env.dir.path());
    let t2 = unix_now();
    env.ok(&["import", tar.to_str().unwrap(), "solo:1"]);
    env.ok(&["rmi", "solo:1"]);
    let solo = env.ok(&[
        "events",
        "--since",
        &t2,
        "--until",
        &unix_now(),
        "--format",
        "{{json .}}",
    ]);
    assert_eq!(
        summary(&solo),
        [
            "image import solo:1",
            "image untag solo:1",
            "image delete solo:1"
        ]
    );
    // An --until already past and no --since: nothing, at once.
    assert_eq!(env.ok(&["events", "--until", &t0]), "");
    let err = env.fails(&["events", "--filter", "type=network"]);
    assert!(err.contains("invalid filter \"type=network\""), "{err}");
    let err = env.fails(&["events", "--since", "yesterday"]);
    assert!(err.contains("\"yesterday\""), "{err}");
}

#[test]
fn the_event_log_rotates_within_its_bound() {
    if !prerequisites("the_event_log_rotates_within_its_bound") {
        return;
    }
    let env = Env::new();
    let t0 = unix_now();
    // Each tag and rmi logs an event of ~200 bytes: 1 MiB needs ~5000.
    // Fill the log directly, as a crash-free writer would, then add one.
    let dir = env.root().join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let line = format!(
        "{{\"type\":\"image\",\"action\":\"tag\",\"actor\":\"sha256:00\",\"attributes\":{{\"name\":\"old:{}\"}},\"time_nano\":1}}\n",
        "x".repeat(100)
    );
    let filler = line.repeat((1 << 20) / line.len() + 1);
    std::fs::write(dir.join("log.jsonl"), &filler).unwrap();
    env.ok(&["tag", IMAGE, "after:rotation"]);
    let rotated = std::fs::metadata(dir.join("log.1.jsonl")).unwrap().len();
    let current = std::fs::metadata(dir.join("log.jsonl")).unwrap().len();
    assert_eq!(
        rotated,
        filler.len() as u64,
        "the full log moved aside whole"
    );
    assert!(
        current < 1000,
        "the new log holds the new event: {current} bytes"
    );
    // Readers read both files: the old events, then the new one.
    let names = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &unix_now(),
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(names.len(), (1 << 20) / line.len() + 2);
    assert_eq!(names.last().copied(), Some("after:rotation"));
    let since = env.ok(&["events", "--since", &t0, "--until", &unix_now()]);
    assert_eq!(since.lines().count(), 1, "{since}");
}
