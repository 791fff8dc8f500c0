//! Data-driven cases: input files in a directory, each with the expected
//! rendering next to it (`case.Dockerfile` and `case.expected`), compared
//! with what the code under test renders. `UPDATE_SNAPSHOTS=1` rewrites
//! the expected files; otherwise a missing one is a failure.

use std::fs;
use std::path::{Path, PathBuf};

/// The variable that, set to `1`, makes [`check`] write expected files.
pub const UPDATE_VAR: &str = "UPDATE_SNAPSHOTS";

/// The files in `dir` whose extension is `extension`, sorted; panics when
/// there is none (a test over no case asserts nothing).
pub fn cases(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.{extension} cases in {}",
        dir.display()
    );
    files
}

/// Compares `actual` with the file next to `case` with the extension
/// `expected`, or writes that file under `UPDATE_SNAPSHOTS=1`. Returns a
/// failure message instead of panicking, so every case is checked.
pub fn check(case: &Path, expected: &str, actual: &str) -> Option<String> {
    let expected_path = case.with_extension(expected);
    if std::env::var_os(UPDATE_VAR).is_some_and(|v| v == "1") {
        fs::write(&expected_path, actual).expect("write snapshot");
        return None;
    }
    let Ok(expected) = fs::read_to_string(&expected_path) else {
        return Some(format!(
            "{}: missing snapshot {} (run with {UPDATE_VAR}=1)",
            case.display(),
            expected_path.display()
        ));
    };
    (expected != actual).then(|| {
        format!(
            "{}: snapshot differs ({UPDATE_VAR}=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            case.display()
        )
    })
}
