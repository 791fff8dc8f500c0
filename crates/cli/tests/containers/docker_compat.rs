//! `docs/docker-compat.md` stays true: every `supported` or `differs` row
//! names a command (and flag) `buildr COMMAND --help` shows.

use std::process::Command;

use crate::build_common::BIN;
use buildr_testkit::workspace;

/// The table rows: (command, flag, status).
fn rows() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(workspace().join("docs/docker-compat.md")).unwrap();
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // "| command | flag | status | note |" -> ["", c, f, s, n, ""]
            let [_, command, flag, status, _, _] = cells.as_slice() else {
                return None;
            };
            let status = *status;
            (["supported", "differs", "not yet"].contains(&status))
                .then(|| (command.to_string(), flag.to_string(), status.to_owned()))
        })
        .collect()
}

#[test]
fn every_supported_row_of_the_docker_table_exists() {
    let rows = rows();
    assert!(rows.len() > 50, "the table has {} rows", rows.len());
    let help = |command: &str| {
        let out = Command::new(BIN)
            .args([command, "--help"])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut wrong = Vec::new();
    for (command, flag, status) in &rows {
        if status == "not yet" {
            // A missing command says so, never guessing a similar one.
            if flag.is_empty() {
                let out = Command::new(BIN).arg(command).output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                if out.status.code() != Some(1) || !stderr.contains("does not have yet") {
                    wrong.push(format!("{command}: not yet, but buildr says {stderr:?}"));
                }
            }
            continue;
        }
        let text = help(command);
        match text {
            None => wrong.push(format!("{command}: no such command")),
            Some(text) if !flag.is_empty() && !text.contains(flag.as_str()) => {
                wrong.push(format!("{command} {flag}: not in its --help"));
            }
            Some(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/docker-compat.md claims:\n{}",
        wrong.join("\n")
    );
    let supported = rows.iter().filter(|r| r.2 == "supported").count();
    let differs = rows.iter().filter(|r| r.2 == "differs").count();
    let missing = rows.iter().filter(|r| r.2 == "not yet").count();
    eprintln!("docker-compat: {supported} supported, {differs} differ, {missing} not yet");
}

#[test]
fn version_and_info_answer_scripts() {
    let root = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--root")
            .arg(root.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        run(&["version", "--format", "{{.Server.Version}}"]),
        version
    );
    assert!(run(&["version"]).contains(&format!("Version:           {version}")));
    assert_eq!(
        run(&[
            "info",
            "-f",
            "{{.Driver}} {{.Containers}} {{.Images}} {{.OSType}}"
        ]),
        "overlay2 0 0 linux"
    );
    let info = run(&["info", "--format", "{{json .}}"]);
    let doc: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(doc["DockerRootDir"], root.path().display().to_string());
    assert!(doc["NCPU"].as_u64().unwrap() >= 1, "{doc}");
    assert!(run(&["info"]).contains("Storage Driver: overlay2"));
    assert!(run(&["container", "prune", "-f"]).starts_with("Deleted Containers:"));
}
