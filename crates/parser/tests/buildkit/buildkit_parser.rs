//! BuildKit's own parser cases (`frontend/dockerfile/parser/testfiles*`) run
//! against [`buildr_parser::parse_ast`] and [`buildr_parser::dump`]. The data
//! lives outside the repository, in `shared/conformance/buildkit` (or
//! `$BUILDR_CONFORMANCE_DIR`); its README.md documents the dump format.

use std::path::{Path, PathBuf};

use buildr_parser::{dump, parse_ast};

/// The case directories under `dir`, sorted.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()));
    let mut cases: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
}

#[test]
fn testfiles_dump_matches() {
    let Some(dir) = crate::conformance("frontend/dockerfile/parser") else {
        return;
    };
    let cases = cases(&dir.join("testfiles"));
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let source = read(&case.join("Dockerfile"));
        let expected = String::from_utf8(read(&case.join("result"))).expect("utf-8 result");
        match parse_ast("Dockerfile", &source) {
            Ok(ast) => {
                let got = dump(&ast);
                if got != expected {
                    failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
                }
            }
            Err(err) => failures.push(format!("{name}: failed to parse:\n{err}")),
        }
    }
    eprintln!(
        "buildkit testfiles: {} of {} match",
        cases.len() - failures.len(),
        cases.len()
    );
    assert_eq!(cases.len(), 33, "expected BuildKit's 33 parser cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn testfiles_negative_fail() {
    let Some(dir) = crate::conformance("frontend/dockerfile/parser") else {
        return;
    };
    let cases = cases(&dir.join("testfiles-negative"));
    let mut parsed = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        match parse_ast("Dockerfile", &read(&case.join("Dockerfile"))) {
            Ok(ast) => parsed.push(format!("{name} parsed:\n{}", dump(&ast))),
            Err(err) => {
                let diagnostic = &err.diagnostics[0];
                assert!(!diagnostic.message.is_empty(), "{name}: empty message");
                assert!(diagnostic.pos.line >= 1, "{name}: no line in {err}");
            }
        }
    }
    eprintln!(
        "buildkit testfiles-negative: {} of {} rejected",
        cases.len() - parsed.len(),
        cases.len()
    );
    assert_eq!(cases.len(), 4, "expected BuildKit's 4 negative cases");
    assert!(parsed.is_empty(), "{}", parsed.join("\n"));
}

#[test]
fn testfile_line_numbers() {
    let Some(dir) = crate::conformance("frontend/dockerfile/parser") else {
        return;
    };
    let ast = parse_ast("Dockerfile", &read(&dir.join("testfile-line/Dockerfile")))
        .unwrap_or_else(|e| panic!("testfile-line: {e}"));
    let lines: Vec<(u32, u32)> = ast
        .nodes
        .iter()
        .map(|node| (node.span.start.line, node.span.end_line))
        .collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
    // The empty lines inside the RUN continuation are reported.
    assert_eq!(ast.warnings.len(), 1, "{:?}", ast.warnings);
    assert_eq!(ast.warnings[0].pos.line, 19);
}
