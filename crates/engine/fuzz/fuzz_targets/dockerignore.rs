//! Fuzz target: `.dockerignore` parsing and matching never panic, and the
//! walker's pruning shortcut is sound.
//!
//! Layout: the input up to the first NUL is the `.dockerignore` text; the
//! rest is a list of context paths, one per line, cleaned the way the
//! context walker produces them (no empty, `.` or `..` components).
//!
//! Checked for every path `p` and every directory `d` above it: when
//! `decide(d, true)` is `Exclude` (the walker skips `d`'s whole subtree),
//! `p` must be excluded too; nothing an exception could bring back may be
//! pruned. `is_excluded` and `decide` agree, and the root is never excluded.
#![no_main]

use buildr::{Decision, DockerIgnore};
use libfuzzer_sys::fuzz_target;

fn clean(line: &str) -> Option<String> {
    let parts: Vec<&str> = line
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (patterns, paths) = text.split_once('\0').unwrap_or((&text, ""));
    let Ok(ignore) = DockerIgnore::parse(".dockerignore", patterns) else {
        return;
    };
    assert!(!ignore.is_excluded(""));
    assert!(!ignore.is_excluded("."));
    for path in paths.lines().take(64).filter_map(clean) {
        let excluded = ignore.is_excluded(&path);
        for is_dir in [false, true] {
            let decision = ignore.decide(&path, is_dir);
            assert_eq!(
                decision == Decision::Include,
                !excluded,
                "decide and is_excluded disagree on {path:?}"
            );
        }
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if ignore.decide(&dir, true) == Decision::Exclude {
                assert!(
                    excluded,
                    "{dir:?} is pruned but {path:?} below it is included by {patterns:?}"
                );
            }
        }
    }
});
