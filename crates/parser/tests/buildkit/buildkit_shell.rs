//! BuildKit's own shell-lexer cases (`envVarTest`, `wordsTest`) run against
//! [`buildr_parser::Lexer`]. The data lives outside the repository, in
//! `shared/conformance/buildkit` (or `$BUILDR_CONFORMANCE_DIR`); see its
//! README.md for the formats.

use buildr_parser::Lexer;

fn read(name: &str) -> Option<String> {
    let path = crate::conformance("frontend/dockerfile/shell")?.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => panic!("failed to read {}: {e}", path.display()),
    }
}

#[test]
fn env_var_test() {
    let Some(text) = read("envVarTest") else {
        return;
    };
    let env = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ];
    let lexer = Lexer::new('\\');
    let (mut ran, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest:{line_no}: want 3 fields: {line:?}"
        );
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => {
                skipped += 1;
                continue;
            }
            other => panic!("envVarTest:{line_no}: bad platform {other:?}"),
        }
        ran += 1;
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(result), expected) => result.value == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "envVarTest:{line_no}: {input:?}: want {expected:?}, got {got:?}"
            ));
        }
    }
    eprintln!(
        "envVarTest: {ran} cases run, {skipped} windows-only skipped, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran > 200, "only {ran} cases found: wrong file?");
}

#[test]
fn words_test() {
    let Some(text) = read("wordsTest") else {
        return;
    };
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = 0;
    let mut failures = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            // Trailing spaces in the value count.
            let assignment = assignment.trim_start_matches(' ');
            let (key, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.push((key.to_string(), value.to_string()));
            continue;
        }
        let Some((input, expected)) = line.split_once('|') else {
            panic!("wordsTest:{line_no}: want exactly one '|': {line:?}");
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        ran += 1;
        let got = match lexer.process_words(input, &env) {
            Ok(words) => words,
            Err(_) => vec!["error".to_string()],
        };
        if got != expected {
            failures.push(format!(
                "wordsTest:{line_no}: {input:?}: want {expected:?}, got {got:?}"
            ));
        }
    }
    eprintln!("wordsTest: {ran} cases run, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran > 20, "only {ran} cases found: wrong file?");
}
