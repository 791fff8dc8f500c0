//! Test support shared by buildr's integration tests (`publish = false`).
//!
//! What every crate's tests used to copy: the prerequisite rule (a missing
//! tool or privilege is a loud skip, and a failure under `CI=true`), running
//! a command and asserting it succeeded, a `docker-registry` on a free
//! loopback port, snapshots of a directory tree to compare two trees, and
//! data-driven cases with their expected files (`expect`).
//! It depends on no buildr crate, so every crate can use it as a
//! dev-dependency. What is specific to one crate's tests (the `buildr`
//! binary runner of the CLI tests, the fake ops of the solver tests) stays
//! in that crate's `tests/support/`.

#![forbid(unsafe_code)]

pub mod expect;
pub mod prereq;
pub mod process;
pub mod registry;
pub mod tree;

use std::path::PathBuf;

/// The workspace root (the directory holding `Cargo.lock`).
pub fn workspace() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or(manifest.clone(), PathBuf::from)
}

/// The libtest name of the test function `$f` in the calling module (its
/// module path within the test binary, then the name), for a test that
/// re-runs itself in a child process with `--exact`.
#[macro_export]
macro_rules! test_name {
    ($f:ident) => {
        $crate::test_path(module_path!(), stringify!($f))
    };
}

/// `module::f` without the binary's own crate name: what `--exact` matches.
pub fn test_path(module: &str, f: &str) -> String {
    match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{f}"),
        None => f.to_owned(),
    }
}
