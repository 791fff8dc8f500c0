//! `buildr compose config --format json` against docker compose 2.26's (the
//! modern anchor) on the projects under `fixtures/compose`: the keys buildr
//! models must resolve to the same values. The anchor is found (or started)
//! as every modern comparison finds it; under `CI=true` its absence fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

use crate::build_common::{BIN, workspace};
use crate::modern_common::{Docker, modern};

/// The service keys buildr models (`docs/compose.md`).
const SERVICE_KEYS: &[&str] = &[
    "image",
    "container_name",
    "command",
    "entrypoint",
    "environment",
    "ports",
    "expose",
    "volumes",
    "depends_on",
    "healthcheck",
    "restart",
    "user",
    "working_dir",
    "labels",
    "hostname",
    "init",
    "stop_signal",
    "stop_grace_period",
    "extra_hosts",
    "tty",
    "stdin_open",
    "profiles",
    "secrets",
    "configs",
];

/// The `build` keys buildr models.
const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "cache_from",
    "cache_to",
    "network",
    "platforms",
];

fn project(name: &str) -> PathBuf {
    workspace().join("fixtures/compose").join(name)
}

fn docker_config(docker: &Docker, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = docker.command();
    cmd.current_dir(dir)
        .arg("compose")
        .args(args)
        .args(["config", "--format", "json"]);
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run docker compose");
    assert!(
        out.status.success(),
        "docker compose {args:?} config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("docker compose prints JSON")
}

fn buildr_config(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(BIN)
        .current_dir(dir)
        .arg("compose")
        .args(args)
        .args(["config", "--format", "json"])
        .envs(env.iter().copied())
        .output()
        .expect("run buildr compose");
    assert!(
        out.status.success(),
        "buildr compose {args:?} config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("buildr compose prints JSON")
}

/// `value[key]`, a missing key read as null.
fn at<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// Only `keys` of an object (nulls dropped, so missing and null agree).
fn only(value: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for key in keys {
        let v = at(value, key);
        if !v.is_null() {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// What buildr models of a resolved project.
fn modelled(config: &Value) -> Value {
    let mut services = Map::new();
    for (name, service) in at(config, "services").as_object().into_iter().flatten() {
        let mut kept = only(service, SERVICE_KEYS);
        let map = kept.as_object_mut().expect("object");
        extensions(service, map);
        if let Some(build) = service.get("build") {
            map.insert("build".into(), only(build, BUILD_KEYS));
        }
        // Networks by name with the settings buildr models.
        if let Some(networks) = service.get("networks").and_then(Value::as_object) {
            let nets: Map<String, Value> = networks
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        only(v, &["aliases", "ipv4_address", "ipv6_address"]),
                    )
                })
                .collect();
            map.insert("networks".into(), Value::Object(nets));
        }
        if let Some(deploy) = service.get("deploy") {
            let limits = deploy
                .pointer("/resources/limits")
                .cloned()
                .unwrap_or(Value::Null);
            map.insert(
                "deploy".into(),
                serde_json::json!({"replicas": at(deploy, "replicas"), "limits": limits}),
            );
        }
        services.insert(name.clone(), kept);
    }
    let names = |section: &str| -> Value {
        at(config, section)
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), at(v, "name").clone()))
            .collect::<Map<String, Value>>()
            .into()
    };
    let files = |section: &str| -> Value {
        at(config, section)
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    only(v, &["name", "file", "environment", "content", "external"]),
                )
            })
            .collect::<Map<String, Value>>()
            .into()
    };
    let mut out = serde_json::json!({
        "name": at(config, "name"),
        "services": services,
        "networks": names("networks"),
        "volumes": names("volumes"),
        "secrets": files("secrets"),
        "configs": files("configs"),
    });
    extensions(config, out.as_object_mut().expect("object"));
    out
}

/// Copies `value`'s `x-` keys into `into`.
fn extensions(value: &Value, into: &mut Map<String, Value>) {
    for (k, v) in value.as_object().into_iter().flatten() {
        if k.starts_with("x-") {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// Compares the two tools on one invocation; the difference named by key.
fn compare(docker: &Docker, dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let theirs = modelled(&docker_config(docker, dir, args, env));
    let ours = modelled(&buildr_config(dir, args, env));
    if theirs == ours {
        return;
    }
    let mut diffs = Vec::new();
    for (name, service) in at(&theirs, "services").as_object().into_iter().flatten() {
        let mine = at(at(&ours, "services"), name);
        for (key, value) in service.as_object().into_iter().flatten() {
            if at(mine, key) != value {
                diffs.push(format!(
                    "services.{name}.{key}:\n  docker compose: {value}\n  buildr:         {}",
                    at(mine, key)
                ));
            }
        }
    }
    panic!(
        "{} {args:?}: buildr's resolved project differs from docker compose's:\n{}\nwhole:\n docker compose: {theirs}\n buildr:         {ours}",
        dir.display(),
        diffs.join("\n")
    );
}

#[test]
fn compose_config_matches_docker_compose_on_the_fixtures() {
    let Some(docker) = modern("compose_config_matches_docker_compose_on_the_fixtures") else {
        return;
    };
    let webapp = project("webapp");
    compare(&docker, &webapp, &[], &[]);
    compare(&docker, &webapp, &["--profile", "debug"], &[]);
    compare(
        &docker,
        &webapp,
        &["-f", "compose.yaml", "-p", "other"],
        &[("TAG", "9.9"), ("WEB_PORT", "18080")],
    );
    compare(
        &docker,
        &webapp,
        &["--env-file", "prod.env", "--profile", "debug"],
        &[],
    );
    compare(&docker, &project("kitchen"), &[], &[("VERSION", "2.0")]);
    compare(&docker, &project("kitchen"), &[], &[]);
    compare(
        &docker,
        &project("edge"),
        &[],
        &[("CONFIG_VALUE", "from-env")],
    );
}

/// Needs no anchor: a bad file fails with file:line: key: what.
#[test]
fn compose_config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n    ports:\n      - \"8080:abc\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["compose", "config"])
        .output()
        .expect("run buildr compose");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad port passed: {stderr}");
    assert!(
        stderr.contains("compose.yaml:5: services.web.ports[0]: invalid port \"8080:abc\""),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing printed on error");
}
