//! Integration tests: buildkit (one binary; each file a module).

mod buildkit_parser;
mod buildkit_shell;

/// `sub` (e.g. `frontend/dockerfile/parser`) of BuildKit's test data in
/// `shared/conformance/buildkit`, or `$BUILDR_CONFORMANCE_DIR`; `None`
/// after a loud skip when it is absent (a failure under `CI=true`).
fn conformance(sub: &str) -> Option<std::path::PathBuf> {
    let root = match std::env::var_os("BUILDR_CONFORMANCE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance/buildkit"),
    };
    let dir = root.join(sub);
    let found = dir.is_dir()
        || buildr_testkit::prereq::missing(
            "BuildKit conformance",
            &format!(
                "its data is not at {} (set BUILDR_CONFORMANCE_DIR)",
                dir.display()
            ),
        );
    found.then_some(dir)
}
