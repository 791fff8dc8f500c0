//! The workspace's architecture invariants, checked against the real manifests
//! and sources: which crate may depend on which, and where `unsafe` may live.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The dependency arrows of ARCHITECTURE.md: package -> buildr packages it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("buildr-fs", &[]),
    ("buildr-parser", &[]),
    ("buildr-solver", &[]),
    ("buildr-cache", &["buildr-fs"]),
    ("buildr-exec", &["buildr-fs"]),
    ("buildr-oci", &["buildr-cache", "buildr-fs"]),
    (
        "buildr",
        &[
            "buildr-parser",
            "buildr-solver",
            "buildr-cache",
            "buildr-exec",
            "buildr-oci",
            "buildr-fs",
        ],
    ),
    ("buildr-compose", &[]),
    ("buildr-cli", &["buildr", "buildr-compose"]),
    ("buildr-testkit", &[]),
];

/// The test-support crate, which any crate may use for its tests only.
const TESTKIT: &str = "buildr-testkit";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/engine sits two levels below the workspace root")
        .to_owned()
}

/// package name -> (manifest dir, names of buildr packages it depends on:
/// any kind, but the test kit as a dev-dependency, which every crate may use).
fn workspace_packages() -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut packages = BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_owned();
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let deps = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| !(d["name"] == TESTKIT && d["kind"] == "dev"))
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .filter(|d| d == "buildr" || d.starts_with("buildr-"))
            .collect();
        packages.insert(name, (manifest.parent().unwrap().to_owned(), deps));
    }
    packages
}

#[test]
fn dependency_arrows_point_one_way() {
    let packages = workspace_packages();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let names: BTreeSet<&str> = packages.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = allowed.keys().copied().collect();
    assert_eq!(
        names, expected,
        "workspace members differ from ARCHITECTURE.md"
    );
    for (name, (_, deps)) in &packages {
        for dep in deps {
            assert!(
                allowed[name.as_str()].contains(&dep.as_str()),
                "{name} depends on {dep}, which ARCHITECTURE.md does not allow"
            );
        }
    }
    assert!(
        packages
            .values()
            .all(|(_, deps)| !deps.contains("buildr-cli")),
        "nothing may depend on the cli"
    );
}

#[test]
fn only_exec_may_contain_unsafe() {
    for (name, (dir, _)) in workspace_packages() {
        let root = if name == "buildr-cli" {
            dir.join("src/main.rs")
        } else {
            dir.join("src/lib.rs")
        };
        let text = std::fs::read_to_string(&root).unwrap();
        let forbids = text.contains("#![forbid(unsafe_code)]");
        if name == "buildr-exec" {
            assert!(!forbids, "exec is the one crate that needs unsafe");
        } else {
            assert!(forbids, "{} lacks #![forbid(unsafe_code)]", root.display());
        }
    }
}
