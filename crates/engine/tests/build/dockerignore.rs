//! Docker's `.dockerignore` semantics, checked against docker's own test
//! tables (moby/patternmatcher `patternmatcher_test.go`, `ignorefile_test.go`),
//! against answers recorded from docker's real code, and by properties.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use buildr::dockerignore::Decision;
use buildr::dockerignore::DockerIgnore;
use buildr::dockerignore::DockerIgnoreError;
use buildr::dockerignore::PatternSyntax;
use proptest::prelude::*;

fn matcher(patterns: &[&str]) -> DockerIgnore {
    DockerIgnore::from_patterns(patterns)
        .unwrap_or_else(|err| panic!("patterns {patterns:?} rejected: {err}"))
}

/// patternmatcher_test.go `TestMatches`: one pattern, one path, through
/// `MatchesOrParentMatches`.
const MATCHES: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "/", true),
    ("**/", "/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    // Added for non-Windows hosts.
    ("a\\*b", "a*b", true),
];

/// patternmatcher_test.go `TestMatches`: several patterns, the last match wins.
const MULTI_MATCHES: &[(&[&str], &str, bool)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        true,
    ),
    (
        &[
            "**",
            "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        ],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    // The single-test functions at the top of patternmatcher_test.go.
    (&["*"], "fileutils.go", true),
    (&["*.go"], "fileutils.go", true),
    (&["!fileutils.go", "*.go"], "fileutils.go", true),
    (&["docs", "!docs/README.md"], "docs/README.md", false),
    (&["docs/", "!docs/README.md"], "docs/README.md", false),
    (&["docs/*", "!docs/README.md"], "docs/README.md", false),
    (&["*.go", "!fileutils.go"], "fileutils.go", false),
    (&["*.go"], ".", false),
    (&[], "/any/path/there", false),
];

/// patternmatcher_test.go `matchTests` (taken from Go's `filepath.Match`
/// tests): `Some(result)` or `None` for a pattern docker rejects.
const FILEPATH_MATCH: &[(&str, &str, Option<bool>)] = &[
    ("abc", "abc", Some(true)),
    ("*", "abc", Some(true)),
    ("*c", "abc", Some(true)),
    ("a*", "a", Some(true)),
    ("a*", "abc", Some(true)),
    ("a*", "ab/c", Some(true)),
    ("a*/b", "abc/b", Some(true)),
    ("a*/b", "a/c/b", Some(false)),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
    ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
    ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
    ("ab[c]", "abc", Some(true)),
    ("ab[b-d]", "abc", Some(true)),
    ("ab[e-g]", "abc", Some(false)),
    ("ab[^c]", "abc", Some(false)),
    ("ab[^b-d]", "abc", Some(false)),
    ("ab[^e-g]", "abc", Some(true)),
    ("a\\*b", "a*b", Some(true)),
    ("a\\*b", "ab", Some(false)),
    ("a?b", "a☺b", Some(true)),
    ("a[^a]b", "a☺b", Some(true)),
    ("a???b", "a☺b", Some(false)),
    ("a[^a][^a][^a]b", "a☺b", Some(false)),
    ("[a-ζ]*", "α", Some(true)),
    ("*[a-ζ]", "A", Some(false)),
    ("a?b", "a/b", Some(false)),
    ("a*b", "a/b", Some(false)),
    ("[\\]a]", "]", Some(true)),
    ("[\\-]", "-", Some(true)),
    ("[x\\-]", "x", Some(true)),
    ("[x\\-]", "-", Some(true)),
    ("[x\\-]", "z", Some(false)),
    ("[\\-x]", "x", Some(true)),
    ("[\\-x]", "-", Some(true)),
    ("[\\-x]", "a", Some(false)),
    ("[]a]", "]", None),
    ("[-]", "-", None),
    ("[x-]", "x", None),
    ("[x-]", "-", None),
    ("[x-]", "z", None),
    ("[-x]", "x", None),
    ("[-x]", "-", None),
    ("[-x]", "a", None),
    ("\\", "a", None),
    ("[a-b-c]", "a", None),
    ("[", "a", None),
    ("[^", "a", None),
    ("[^bc", "a", None),
    ("a[", "a", None),
    ("a[", "ab", None),
    ("*x", "xxx", Some(true)),
];

#[test]
fn docker_matches_table() {
    for &(pattern, path, want) in MATCHES {
        let got = matcher(&[pattern]).is_excluded(path);
        assert_eq!(got, want, "pattern {pattern:?} path {path:?}");
    }
}

#[test]
fn docker_multi_pattern_table() {
    for &(patterns, path, want) in MULTI_MATCHES {
        let got = matcher(patterns).is_excluded(path);
        assert_eq!(got, want, "patterns {patterns:?} path {path:?}");
    }
}

#[test]
fn go_filepath_match_table() {
    for &(pattern, path, want) in FILEPATH_MATCH {
        match (DockerIgnore::from_patterns(&[pattern]), want) {
            (Ok(ignore), Some(want)) => {
                assert_eq!(
                    ignore.is_excluded(path),
                    want,
                    "pattern {pattern:?} path {path:?}"
                );
            }
            (Err(DockerIgnoreError::Syntax { .. }), None) => {}
            (got, want) => panic!("pattern {pattern:?} path {path:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn docker_clean_patterns() {
    // TestCleanPatterns*, TestSingleExclamationError.
    assert_eq!(matcher(&["docs", "config"]).rules().len(), 2);
    assert_eq!(matcher(&["docs", "config", ""]).rules().len(), 2);
    assert!(matcher(&["docs", "!docs/README.md"]).has_exceptions());
    assert!(matcher(&["docs", "  !docs/README.md"]).has_exceptions());
    assert!(matcher(&["docs", "!docs/README.md  "]).has_exceptions());
    assert!(!matcher(&["docs", "config"]).has_exceptions());
    assert_eq!(
        DockerIgnore::from_patterns(&["!"]).unwrap_err(),
        DockerIgnoreError::EmptyException {
            file: "<patterns>".into(),
            line: 1
        }
    );
    // The regression case of moby/moby#52203 is a plain error, never a panic.
    assert!(DockerIgnore::from_patterns(&["[Local-Only]/"]).is_err());
}

#[test]
fn docker_read_all() {
    // ignorefile_test.go TestReadAll.
    let content =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    let lines = DockerIgnore::read_lines(".dockerignore", content).unwrap();
    let patterns: Vec<&str> = lines.iter().map(|l| l.pattern.as_str()).collect();
    assert_eq!(
        patterns,
        [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!"
        ]
    );
    let numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
    assert_eq!(numbers, [1, 2, 3, 5, 7, 8, 9]);
    assert!(
        DockerIgnore::read_lines(".dockerignore", "")
            .unwrap()
            .is_empty()
    );
    // The lone `!` on line 8 makes the file unusable, naming that line.
    assert_eq!(
        DockerIgnore::parse("ctx/.dockerignore", content).unwrap_err(),
        DockerIgnoreError::EmptyException {
            file: "ctx/.dockerignore".into(),
            line: 8
        }
    );
}

#[test]
fn reader_details() {
    let text = "\u{feff}# bom then comment\r\n  # indented: a pattern, not a comment\n\t/a//b/./c/ \r\n!  /x/../y\n\n//\n!!twice\n";
    let lines = DockerIgnore::read_lines("f", text).unwrap();
    let got: Vec<(usize, &str)> = lines.iter().map(|l| (l.line, l.pattern.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "# indented: a pattern, not a comment"),
            (3, "a/b/c"),
            (4, "!y"),
            (6, "/"),
            (7, "!!twice"),
        ]
    );
    let ignore = DockerIgnore::parse("f", text).unwrap();
    // `!!twice` is an exception for the literal name `!twice`.
    let last = &ignore.rules()[4];
    assert!(last.is_exception());
    assert_eq!(last.pattern(), "!twice");
    assert_eq!(last.line(), 7);
    assert_eq!(last.to_string(), "!!twice");
    assert!(ignore.is_excluded("# indented: a pattern, not a comment"));
    assert!(ignore.is_excluded("a/b/c/d"));
    // A BOM is only special at the very start of the file.
    let lines = DockerIgnore::read_lines("f", "a\n\u{feff}b").unwrap();
    assert_eq!(lines[1].pattern, "\u{feff}b");
}

#[test]
fn errors_name_file_line_and_pattern() {
    let text = "ok\n# fine\n  src/[a-  \n";
    let err = DockerIgnore::parse("app/.dockerignore", text).unwrap_err();
    assert_eq!(
        err,
        DockerIgnoreError::Syntax {
            file: "app/.dockerignore".into(),
            line: 3,
            pattern: "src/[a-".into(),
            reason: PatternSyntax::UnterminatedClass,
        }
    );
    assert_eq!(
        err.to_string(),
        "app/.dockerignore:3: syntax error in pattern `src/[a-`: unterminated character class, missing `]`"
    );
    let cases: &[(&str, PatternSyntax)] = &[
        ("a\\", PatternSyntax::TrailingBackslash),
        ("[", PatternSyntax::UnterminatedClass),
        ("x[^bc", PatternSyntax::UnterminatedClass),
        ("[]a]", PatternSyntax::MisplacedClassChar(']')),
        ("[-x]", PatternSyntax::MisplacedClassChar('-')),
        ("[z-a]", PatternSyntax::ReversedRange { lo: 'z', hi: 'a' }),
        (
            "[Local-Only]/",
            PatternSyntax::ReversedRange { lo: 'l', hi: 'O' },
        ),
        ("[*]", PatternSyntax::WildcardInClass('*')),
        ("a[x?]", PatternSyntax::WildcardInClass('?')),
        ("[[:alpha:]]", PatternSyntax::PosixClass),
        ("\\bword", PatternSyntax::UnsupportedEscape('b')),
        ("\\x41", PatternSyntax::UnsupportedEscape('x')),
        ("\\é", PatternSyntax::UnsupportedEscape('é')),
        ("[\\d-z]", PatternSyntax::PerlClassInRange('d')),
    ];
    for (pattern, reason) in cases {
        let text = format!("# header\n{pattern}\n");
        match DockerIgnore::parse(".dockerignore", &text) {
            Err(DockerIgnoreError::Syntax {
                line, reason: got, ..
            }) => {
                assert_eq!(line, 2, "{pattern:?}");
                assert_eq!(&got, reason, "{pattern:?}");
            }
            other => panic!("{pattern:?}: expected a syntax error, got {other:?}"),
        }
    }
    let long = "a".repeat(70_000);
    assert!(matches!(
        DockerIgnore::parse("f", &format!("x\n{long}\n")),
        Err(DockerIgnoreError::LineTooLong {
            line: 2,
            len: 70_000,
            ..
        })
    ));
    // The engine's error carries it.
    let engine: buildr::Error = err.into();
    assert!(engine.to_string().contains("app/.dockerignore:3"));
}

/// Where docker's rules differ from gitignore's.
#[test]
fn differs_from_gitignore() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        // Patterns are anchored at the root: `*.go` is not `**/*.go`.
        (
            "*.go",
            &["main.go", "main.go/inner"],
            &["cmd/main.go", "a/b/c.go"],
        ),
        (
            "**/*.go",
            &["main.go", "cmd/main.go", "a/b/c.go"],
            &["main.rs"],
        ),
        // A name without a slash is anchored too.
        ("foo", &["foo", "foo/bar"], &["a/foo", "foobar"]),
        // A trailing `/` is cleaned away: it also matches files.
        ("docs/", &["docs", "docs/x"], &["a/docs"]),
        // A leading `/` changes nothing in a file (a pattern handed to
        // `from_patterns` keeps it, like docker's `New`, and never matches).
        ("/docs", &["docs", "docs/x"], &["a/docs"]),
        // `**` glued to text is a plain string suffix or prefix.
        (
            "**.md",
            &["README.md", "a/b.md", "a/bmd.md"],
            &["md", "a/b.mdx"],
        ),
        ("build**", &["build", "builder", "build/x"], &["a/build"]),
        // `*` never crosses `/`, but a matching parent excludes its subtree.
        ("a/*", &["a/b", "a/b/c"], &["a", "ab/c"]),
        // `[^...]` negates (gitignore and Go agree); `[!...]` is a literal `!`.
        ("[^a]x", &["bx", "/x"], &["ax"]),
        ("[!a]x", &["!x", "ax"], &["bx"]),
        // `\` escapes, as in Go; `\#` is just `#`.
        ("\\#x", &["#x"], &["\\#x"]),
        // Dots and other regex characters are literal.
        ("a.c", &["a.c"], &["abc"]),
    ];
    for &(pattern, excluded, included) in cases {
        let ignore = DockerIgnore::parse(".dockerignore", pattern).unwrap();
        for path in excluded {
            assert!(
                ignore.is_excluded(path),
                "{pattern:?} should exclude {path:?}"
            );
        }
        for path in included {
            assert!(
                !ignore.is_excluded(path),
                "{pattern:?} should keep {path:?}"
            );
        }
    }
    // In gitignore a file under an excluded directory can never come back;
    // in docker the exception wins.
    let ignore = DockerIgnore::parse("f", "dir\n!dir/keep\n").unwrap();
    assert!(ignore.is_excluded("dir"));
    assert!(ignore.is_excluded("dir/other"));
    assert!(!ignore.is_excluded("dir/keep"));
    assert!(!ignore.is_excluded("dir/keep/below"));
    // A later pattern re-excludes: the last match wins.
    let ignore = DockerIgnore::parse("f", "*.md\n!README*.md\nREADME-secret.md\n").unwrap();
    assert!(ignore.is_excluded("a.md"));
    assert!(!ignore.is_excluded("README.md"));
    assert!(ignore.is_excluded("README-secret.md"));
}

#[test]
fn regex_quirks_of_docker_are_reproduced() {
    // An unescaped `^` in a pattern docker turns into a regex is an anchor ...
    assert!(matcher(&["^a*"]).is_excluded("ab"));
    assert!(!matcher(&["^a*"]).is_excluded("^ab"));
    // ... but a literal in a pattern docker compares as a string.
    assert!(matcher(&["^a"]).is_excluded("^a"));
    assert!(!matcher(&["^a"]).is_excluded("a"));
    // `**` as `.*` does not cross a newline, `*` as `[^/]*` does.
    assert!(!matcher(&["a/**/b"]).is_excluded("a/x\ny/b"));
    assert!(matcher(&["a/*/b"]).is_excluded("a/x\ny/b"));
    // Perl classes and control escapes mean what Go's regexp says.
    assert!(matcher(&["v\\d"]).is_excluded("v1"));
    assert!(!matcher(&["v\\d"]).is_excluded("vd"));
    assert!(matcher(&["a\\tb"]).is_excluded("a\tb"));
    assert!(matcher(&["[\\w]x"]).is_excluded("_x"));
    // `**` first makes a string-suffix pattern: `**file` matches `xfile`.
    assert!(matcher(&["**file"]).is_excluded("dir/xfile"));
    // ... while after a `*` it is the regex `(.*/)?`.
    assert!(!matcher(&["*/**file"]).is_excluded("a/xfile"));
    assert!(matcher(&["*/**file"]).is_excluded("a/b/file"));
}

/// Walks an in-memory tree (paths sorted, parents before children) the way a
/// context walker would, pruning subtrees on [`Decision::Exclude`].
fn walk(ignore: &DockerIgnore, tree: &BTreeSet<String>) -> BTreeSet<String> {
    let mut kept = BTreeSet::new();
    let mut pruned: Vec<String> = Vec::new();
    for path in tree {
        if pruned
            .iter()
            .any(|dir| path.starts_with(&format!("{dir}/")))
        {
            continue;
        }
        let is_dir = tree.iter().any(|p| p.starts_with(&format!("{path}/")));
        match ignore.decide(path, is_dir) {
            Decision::Include => {
                kept.insert(path.clone());
            }
            Decision::Exclude if is_dir => pruned.push(path.clone()),
            Decision::Exclude | Decision::ExcludeButDescend => {}
        }
    }
    kept
}

fn tree(paths: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for path in paths {
        let mut prefix = String::new();
        for seg in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(seg);
            out.insert(prefix.clone());
        }
    }
    out
}

#[test]
fn walker_decisions() {
    let ignore = DockerIgnore::parse("f", "dir\n!dir/keep\nlogs\n*.tmp\n").unwrap();
    assert_eq!(ignore.decide("dir", true), Decision::ExcludeButDescend);
    assert_eq!(ignore.decide("dir/keep", false), Decision::Include);
    assert_eq!(ignore.decide("dir/other", true), Decision::Exclude);
    assert_eq!(ignore.decide("logs", true), Decision::Exclude);
    assert_eq!(ignore.decide("a.tmp", false), Decision::Exclude);
    assert_eq!(ignore.decide("src", true), Decision::Include);

    // No exceptions: every excluded directory is skipped whole.
    let ignore = matcher(&["node_modules", "**/target"]);
    assert!(!ignore.may_contain_exceptions("node_modules"));
    assert_eq!(ignore.decide("a/target", true), Decision::Exclude);

    // A wildcard exception may reach into any directory.
    let ignore = matcher(&["dir", "!*/keep"]);
    assert_eq!(ignore.decide("dir", true), Decision::ExcludeButDescend);
    assert!(!ignore.is_excluded("dir/keep"));
    let ignore = matcher(&["**/cache", "!**/cache/keep.txt"]);
    assert_eq!(
        ignore.decide("x/y/cache", true),
        Decision::ExcludeButDescend
    );
    // An exception elsewhere does not keep a directory open ...
    let ignore = matcher(&["dir", "!other/keep", "!d*r/x/[ab]"]);
    assert_eq!(ignore.decide("dir", true), Decision::ExcludeButDescend);
    let ignore = matcher(&["dir", "!other/keep", "!e*/x"]);
    assert_eq!(ignore.decide("dir", true), Decision::Exclude);
    // ... nor does one overridden by a later pattern matching the directory.
    let ignore = matcher(&["dir", "!dir/keep", "dir"]);
    assert_eq!(ignore.decide("dir", true), Decision::Exclude);
    assert!(ignore.is_excluded("dir/keep"));

    let files = tree(&[
        "dir/keep/a",
        "dir/drop",
        "src/main.rs",
        "src/x.tmp",
        "logs/today",
        "dir2/keep",
    ]);
    let ignore = DockerIgnore::parse("f", "dir*\n!dir/keep\n*/*.tmp\nlogs\n").unwrap();
    let kept: Vec<String> = walk(&ignore, &files).into_iter().collect();
    assert_eq!(kept, ["dir/keep", "dir/keep/a", "src", "src/main.rs"]);
}

#[test]
fn many_double_stars_stay_linear() {
    // 30 `**/` segments against a 200-segment path that almost matches: a
    // backtracking matcher would explore ~200^30 splits.
    let pattern = format!("{}x", "**/".repeat(30));
    let pattern = format!("a{pattern}");
    let ignore = matcher(&[pattern.as_str(), "!**/a*a*a*a*a*a*a*a*a*a*a*a*b"]);
    let path = vec!["a"; 200].join("/") + "/y";
    let long_name = "a".repeat(5000);
    let started = Instant::now();
    assert!(!ignore.is_excluded(&path));
    assert!(!ignore.is_excluded(&long_name));
    assert!(ignore.is_excluded(&(vec!["a"; 200].join("/") + "/x")));
    assert!(ignore.may_contain_exceptions(&path));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

/// Patterns over a tiny tree: path-shaped ones, half of them exceptions, and
/// some raw character soup.
fn walk_pattern() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec![
        "a", "b", "ab", "*", "**", "a*", "?", "[ab]", "b?", "[^a]",
    ]);
    let path_like =
        (any::<bool>(), prop::collection::vec(segment, 1..4)).prop_map(|(exception, segs)| {
            let bang = if exception { "!" } else { "" };
            format!("{bang}{}", segs.join("/"))
        });
    prop_oneof![3 => path_like, 1 => "!?[ab*?/\\[\\]^]{1,7}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No pattern, path or file text makes the matcher panic.
    #[test]
    fn never_panics(
        patterns in prop::collection::vec(
            prop_oneof!["\\PC{0,12}", "[ab*?/!\\\\\\[\\]^:.-]{0,12}", ".{0,12}"],
            0..5,
        ),
        path in prop_oneof!["\\PC{0,24}", "[ab*/.\\\\^\n]{0,24}"],
        text in ".{0,80}",
    ) {
        if let Ok(ignore) = DockerIgnore::from_patterns(&patterns) {
            let _ = ignore.is_excluded(&path);
            let _ = ignore.may_contain_exceptions(&path);
            let _ = ignore.decide(&path, true);
            for rule in ignore.rules() {
                let _ = rule.to_string();
            }
        }
        if let Ok(ignore) = DockerIgnore::parse(".dockerignore", &text) {
            let _ = ignore.is_excluded(&path);
        }
    }

    /// Skipping the directories [`DockerIgnore::decide`] says to skip never
    /// loses a path that [`DockerIgnore::is_excluded`] keeps.
    #[test]
    fn pruned_walk_equals_brute_force(
        patterns in prop::collection::vec(walk_pattern(), 1..6),
        paths in prop::collection::vec("(a|b|ab|ba)(/(a|b|ab|ba)){0,3}", 1..12),
    ) {
        let Ok(ignore) = DockerIgnore::from_patterns(&patterns) else {
            return Ok(());
        };
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let files = tree(&refs);
        let brute: BTreeSet<String> =
            files.iter().filter(|p| !ignore.is_excluded(p)).cloned().collect();
        prop_assert_eq!(walk(&ignore, &files), brute, "patterns {:?}", patterns);
    }
}

#[test]
fn agrees_with_recorded_docker_answers() {
    let oracle: serde_json::Value = serde_json::from_str(DOCKER_ORACLE).unwrap();
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let mut n_checks = 0;
    for case in oracle["matches"].as_array().unwrap() {
        let patterns = strings(&case["patterns"]);
        let parsed = DockerIgnore::from_patterns(&patterns);
        if case.get("error").is_some() {
            assert!(
                parsed.is_err(),
                "docker rejects {patterns:?}, buildr accepted it"
            );
            n_checks += 1;
            continue;
        }
        let ignore = parsed.unwrap_or_else(|err| panic!("docker accepts {patterns:?}: {err}"));
        for path in strings(&case["excluded"]) {
            assert!(
                ignore.is_excluded(&path),
                "{patterns:?} should exclude {path:?}"
            );
            n_checks += 1;
        }
        for path in strings(&case["included"]) {
            assert!(
                !ignore.is_excluded(&path),
                "{patterns:?} should keep {path:?}"
            );
            n_checks += 1;
        }
    }
    for case in oracle["files"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got: Vec<String> = DockerIgnore::read_lines("f", text)
            .unwrap()
            .into_iter()
            .map(|l| l.pattern)
            .collect();
        assert_eq!(got, strings(&case["lines"]), "file {text:?}");
        n_checks += 1;
    }
    assert!(n_checks > 1000, "only {n_checks} recorded answers checked");
}

/// Answers recorded from docker's own code on generated patterns, paths and
/// files: moby/patternmatcher at 5a6d842 (`New` + `MatchesOrParentMatches`)
/// and its `ignorefile.ReadAll`, run with Go 1.19 whose `filepath.Match` was
/// given the whole-pattern syntax check of current Go (the one docker ships
/// with). `"error": true`: docker rejects a pattern, in `New` or at its first
/// match. Left out: the 9 generated sets docker accepts and buildr rejects on
/// purpose (`\b` escapes, `*` or `?` inside `[...]`), and the path `.`.
const DOCKER_ORACLE: &str = r###"
{"matches": [
{"excluded":["^a/^a","^a/ab/a.b","^a/dir/b/[a]"],"included":["a/a","ba/a*b/a/a.b","file.go/file.go","keep/c1/keep","x y/b"],"patterns":["**/^a"]},
{"excluded":[],"included":[".a/b","[a]/keep/a\\b/é","a*b/dir/file.go","ab","ba","x y/ab/c1/c1","x.txt/^a","x.txt/a\\b/c1/[a]"],"patterns":["**x a..","!**"]},
{"excluded":["[a]/a*b/a\nb","^a/.a","a*b/.a/b/file.go","ba/.a","file.go/a\\b/x y/x y","x.txt/ab"],"included":[".a","a*b"],"patterns":[" **/dir**/./ ","file.go","*/*","\\[**"]},
{"excluded":["a.b/a\nb/x.txt","a.b/a.b/a.b/ba","a.b/a/a\\b","a/é","ab/ba","ba/.a/a/dir","keep/keep/a\nb/a.b"],"included":["x y/^a/é"],"patterns":["**","a.b/a\nb/x.txt","!x ?"]},
{"excluded":[],"included":["^a/ba/ab","a*b/ab","a.b/a\nb/a\nb/file.go","ab/[a]","ba/x.txt/b/file.go","file.go/a\nb/a\nb","x y","é/[a]"],"patterns":["(x**\\d1"]},
{"excluded":[],"included":["ab/x y/a/b","b/x y/é/a\\b","dir/x y/a\\b/a\\b","dir/é","keep","keep/a*b","keep/keep","keep/x y/ab"],"patterns":["!**","!..","\\wab[ab][é-ê][!a]*.txt","!b*"]},
{"excluded":["file.go/c1"],"included":["^a/dir/é/.a","a*b","a/ab/file.go","a\\b","a\\b/dir","é/a\\b","é/ba/c1/c1"],"patterns":["!$","f?le.go","!keep","!a\\\\b"]},
{"excluded":["a*b/a\nb","a*b/é","a/ab/ab","ab","b/.a/b","c1/a.b/b/keep","file.go/ba","keep/[a]/a.b/é"],"included":[],"patterns":["!*","**/**","**/*","a"]},
{"excluded":["a\nb"],"included":[".a/.a/x.txt/file.go",".a/é/a","b/c1/x.txt","c1/dir/a*b/a","c1/x y/file.go/x.txt","dir/a","dir/a*b/ab"],"patterns":["[a]\nb","a\nb"]},
{"excluded":["x y/^a"],"included":["^a/a\\b","b/x.txt/dir","c1","file.go/a\nb/ba","keep/c1/c1/é","keep/keep"],"patterns":["x y/^a","**^*/****x"]},
{"excluded":["a","a.b/keep/[a]","ba/a*b/é","ba/c1/[a]/ab","x.txt/keep"],"included":["a*b/a\\b/dir/ab","dir/c1/keep","x y/a.b/a.b"],"patterns":["[b]a/*","a","*/keep"]},
{"excluded":[],"included":["^a/a/a*b","a*b/a\\b","a/dir","ab/a*b","dir/file.go/x y/dir","file.go","keep/file.go/x.txt/x.txt","x y"],"patterns":["^?/**","!*","![a]*b","!a\\*b"]},
{"excluded":[".a/b/ab/é"],"included":["[a]/a*b/^a","a\\b","ab","c1/^a","keep","x y/ba"],"patterns":["dir*.txt","!*/**","!x y",".a/b*/**"]},
{"excluded":[".a/b","[a]/^a/.a","^a","a*b/file.go","a/x y/dir","c1/.a","c1/b/keep","file.go/ba/keep/c1"],"included":[],"patterns":["^*","dirb","[ab]^x**/","*x**"]},
{"excluded":["b/ab/[a]/ba"],"included":[".a/^a","a\nb/a.b/file.go/a\\b","a.b","ab","dir/ba","file.go/a\nb","keep/file.go"],"patterns":["!..*/x","*.go.x?","b/"," ![!a](x**/ "]},
{"excluded":["[a]/c1/a\\b"],"included":[".a/.a/dir/b",".a/c1/ba","a\nb/^a","a\nb/b/x y/a\nb","ab/dir","x y/a\nb/^a","x.txt/x y/a.b"],"patterns":[" .. [ab]..***x/ ","\\[a]/c1/*","é\\[^\\d ","!*/^a"]},
{"excluded":["x y/dir"],"included":["[a]/x.txt/é/a*b","ab","c1/[a]/[a]","keep/a\nb/file.go","x.txt/^a/x y/é","x.txt/ba/a*b/x.txt","x.txt/keep"],"patterns":["[ab]ab[^a].1","x y"]},
{"excluded":["^a/c1/é/a\\b","a\nb","a\nb/x y/b/a*b","a/file.go"],"included":["^a/^a","c1","é/.a/^a/c1"],"patterns":["![a]\nb","*/c1","a*"]},
{"excluded":[".a/a\\b",".a/a\\b/a\\b/[a]","b"],"included":["a\nb/dir/b/.a","ba/ba","c1","keep"],"patterns":["[b]","*/a\\\\b","[.]a/*/a\\\\b"]},
{"excluded":["a\nb/dir/a"],"included":["^a/a\\b","ba","c1/[a]/a*b","dir/keep/a\nb/b","x y/b/é/x y","é","é/é/x.txt/^a"],"patterns":["/*.txt[\\]a]\\*+","a?b","ab+**b","/[a-c]é\\*\\*"]},
{"excluded":["[a]/dir/ab/é","a\nb/ab/é/b","a*b/b/a*b/keep","a/a/x.txt","a\\b/c1/ba","b/keep","c1/b","keep/a\\b"],"included":[],"patterns":["**/*"]},
{"excluded":[],"included":["^a/ab/file.go","a/.a","a/ab","a\\b/file.go","a\\b/keep/keep","ab/keep/[a]","b/é","x.txt/[a]"],"patterns":["[ab]**x+**x","*/**?\\*","1*.go**/","!**/é*"]},
{"excluded":["file.go/a.b/file.go/^a","file.go/é","keep/^a"],"included":["[a]/x.txt","b","dir","x y/[a]/[a]/a.b","é"],"patterns":["!+$*/***.txt1","k*/*","file.go/**","**/^a"]},
{"excluded":["a.b/dir/a\nb"],"included":["a\nb/dir/ba/.a","a\nb/x y/file.go/b","a*b/a\nb/x.txt","a/.a/a","a\\b/[a]/ab/c1","ab/a\\b/.a/ab","x y/file.go/.a/x y"],"patterns":["a.b/d*/a\nb"]},
{"excluded":["^a/a*b","^a/c1/a.b/a","a\nb","a*b","a.b","c1/a\nb","c1/ab"],"included":["a/ab/keep/^a"],"patterns":["a*","*","dir","!^?"]},
{"excluded":[],"included":["a\nb/a*b","a.b/.a","ba/a*b/a/a.b","ba/a.b/a*b/b","dir","dir/dir","x.txt/^a/a","é"],"patterns":["!*/a\\*b","!dir/dir","!**","![é-ê]é"]},
{"excluded":["dir"],"included":[".a/x y/ab/dir","[a]","a*b/dir/ba/a\nb","c1/a\\b/a\\b","c1/ba","x y","é"],"patterns":["dir"]},
{"error":true,"patterns":["**/a*?/*/a.b","[z-a]"]},
{"error":true,"patterns":[" /a/ ","\\wkeep^é","ab[a-c]$b\\a","a\\"]},
{"excluded":["^a/x y/a/x.txt"],"included":["[a]/file.go","a.b/a.b/x.txt/ab","ba/ba","dir","dir/ab/ab/keep","x y/a\\b/a\\b/a","é"],"patterns":["**ab+keepkeep","^a"]},
{"excluded":[],"included":[".a/a\\b/a\nb","[a]","[a]/é/keep","ab","c1/[a]","keep/dir/x.txt/c1","x y/a\nb/keep/dir","x.txt/keep/b"],"patterns":["![^a]","*/a\nb","!x*/a\nb"]},
{"excluded":[],"included":[".a","[a]/ba/x y","a","ab/a\\b/x y","ba","dir/.a","dir/a*b","é/a*b/ab"],"patterns":["!*"]},
{"excluded":[],"included":["a\nb","a.b","a\\b/c1","b","dir","x y/ba/keep/.a","x.txt/a\\b/é"],"patterns":["!a\nb"]},
{"excluded":[],"included":["[a]/ba/a.b/dir","^a/a.b","a*b/file.go","ab/a*b/a.b","ba/b/ba/x y","dir","file.go/dir","x.txt"],"patterns":["!b","a\\*b","!*/file.go"]},
{"error":true,"patterns":["!a\\*b","[a?/^*","!a*"]},
{"excluded":["ab/ab/a/c1","x y/[a]/a\\b/b"],"included":[".a/a.b/c1/^a","^a/é/é","a\nb/a.b","ba/ba/file.go/[a]","keep/x y/c1/x y","x.txt/ba"],"patterns":["x y","ab/**/a*"]},
{"excluded":["a\\b/é/b"],"included":["^a/file.go","b/.a/b/ab","ba/file.go/[a]","file.go/x.txt/.a","x y","x.txt/a/^a/.a","é/a/keep"],"patterns":["a*/é/b*","!(*.txt*/***[ab]"]},
{"excluded":[],"included":["[a]/.a/a\\b","[a]/a\nb/b/[a]","^a/keep/a\\b","a\nb/ab","a\nb/ba","a*b/keep","a.b/é/x.txt","file.go/.a/a.b/[a]"],"patterns":["..$","\\[a]/**/**/\\[a]","/+/"]},
{"excluded":[".a/a\nb/a\\b",".a/a*b/file.go/ba","ba/ab"],"included":["a\nb","a.b/x y/.a/ba","ab/file.go/x y","dir/é","x y/x.txt/c1/^a"],"patterns":["!x***.go**\\wé\\*","*/a*","*^[a-c](\\wab","*/a*?/file.go"]},
{"excluded":["ab/ab/keep","b","c1/c1/file.go","x y/a\\b","x.txt","é","é/b/c1"],"included":[],"patterns":["**","é*/b/c1","c1/c*/file.go","[é-ê]b[\\]a]é"]},
{"excluded":[".a/ab/[a]","^a","b/ba/x y/x y","c1","x y/a*b/é/b"],"included":["x.txt","x.txt/^a/a*b/a.b","x.txt/dir/.a"],"patterns":["**","!x.txt/^*","!x.txt","éab\\d"]},
{"excluded":[],"included":["a","a\nb/a\\b/x y/a*b","ab/ba","ab/x.txt/é","ba","ba/dir","keep","é/x y/é/b"],"patterns":["!+ [é-ê]**x","a\nb/**/x*","..","!a\nb/**/x y/[a]*b"]},
{"excluded":["b/[a]","b/ba/keep","file.go/dir/x.txt/b"],"included":["a.b/dir/a*b/ba","a\\b/a*b","keep/ab","x y/ba","x y/dir/a.b"],"patterns":["b/[\\]a]","b","file.go/**","^\\d"]},
{"excluded":["[a]/ab","a*b","a/ab/dir/é","a\\b/x.txt","c1","dir","keep/[a]","é/a/a\nb/[a]"],"included":[],"patterns":["!c*","**","*.txt*.go*.goab"]},
{"excluded":[],"included":["^a/[a]","ba","dir/[a]","file.go","file.go/é/a\nb/keep","keep/a","keep/a\nb/keep","x y/file.go"],"patterns":["*.txt"]},
{"excluded":["a/file.go"],"included":[".a/[a]/b/^a","a\nb","a.b/a.b/c1","ab","dir/b/a\nb","x.txt","x.txt/a*b/c1"],"patterns":["!**/b/*","a","a1b?\\w\\a"]},
{"excluded":[".a/a\nb/a.b/ba","file.go/é/é/file.go","x y/a\\b/b","x y/ba/dir/^a"],"included":["a*b","a.b","a/keep/b","ab/a\nb/a*b"],"patterns":["x?y","?a/a\nb/a.b/b*","x?y","file.?o/é"]},
{"excluded":[],"included":[".a/[a]/a\\b/a.b","^a","^a/a\\b","a.b/b/ab","a\\b/b/é","ab","c1/a\\b/keep","dir/x.txt/file.go/a.b"],"patterns":["!$..**/?x**","!?a","!1*/**é**x"]},
{"excluded":[".a/keep/file.go","[a]/keep","ab","dir/.a/b/.a","dir/c1/é","file.go/^a/a","x y/x y/x y","x.txt/a/a*b"],"included":[],"patterns":["**","*/.a/b/.a","/[é-ê]x**$x**"]},
{"excluded":["a\\b/ab/dir","dir/a\nb/b","dir/a\\b/.a/file.go"],"included":["^a/a\\b/x.txt/^a","a.b/^a/file.go/b","ab","file.go","keep/é/ab/a\nb"],"patterns":["dir","[!a]","*/ab/d*"]},
{"excluded":["ab/b"],"included":["a\nb","a\\b","a\\b/a\\b/.a","x y","x y/é/ba","x.txt/a","x.txt/x y/c1/ba"],"patterns":["ab"]},
{"excluded":["a/file.go/ab","a\\b/ab/a","dir/x.txt/dir","keep/a\nb/[a]","x y/^a/.a","x y/a*b","x.txt/x y/.a/a\\b"],"included":["x y/a*b/.a"],"patterns":["**/*","!x y/a\\*b/?a"]},
{"excluded":["keep/c1/x y"],"included":["a*b/[a]/a\\b","a*b/a*b/ab/b","a*b/x y/a/c1","b","b/b","file.go/[a]/a*b"],"patterns":["k*/?1/x y"]},
{"excluded":[".a/dir/é/dir","a/x y/dir","a\\b/x y","ab/a\\b","b/x.txt/a/keep","file.go/ba","keep/c1","x y/b"],"included":[],"patterns":["/$[é-ê]dir*.go\\d","file.go/b*","**","?*.go**x"]},
{"excluded":[],"included":[".a/a/ab/ba",".a/keep/x y","[a]/[a]/x y/ab","^a/é/c1/x.txt","a\nb","a\\b","ba/a\\b/file.go/é","c1/keep"],"patterns":["![ab]b[^a]?"]},
{"excluded":["a\nb/file.go/a/keep","a.b/a.b/ba/keep","a.b/ab/a\nb/a.b","ab/^a/c1","é/x y/file.go/^a"],"included":["[a]","^a/a\nb","c1/a\nb/ba"],"patterns":["**/a.b","*/** "]},
{"excluded":["ab","ab/.a/dir/[a]"],"included":[".a","^a","c1/keep/a\\b","x.txt/c1","é"],"patterns":["ab","!é"]},
{"excluded":["[a]/a\\b","a*b/dir/dir/a*b","a.b/x.txt/é/dir","ab","ba","c1/c1","dir/a/file.go","x y/a/a.b/dir"],"included":[],"patterns":["**","\\[\\[[^a]"]},
{"excluded":["a*b","a/ba"],"included":["^a/a\\b/é","^a/b","file.go/file.go/a\nb","x y/c1","x.txt/ba/a*b/c1","x.txt/c1/x.txt/keep"],"patterns":["a*","[\\]a][é-ê][^a]é?[^a]"]},
{"excluded":[],"included":["[a]","^a/^a/ba","a/a.b/x y","a\\b/ab/file.go/a\nb","dir","keep/é","x.txt/a","é/a\nb"],"patterns":["^a/^a"," [^a][a-c]/ ","!1[^a]..*a","!*"]},
{"excluded":["b/ba/keep"],"included":["[a]/[a]/b","a\nb/a\\b/a\\b","a.b/a*b/b/x.txt","ab/a.b/x.txt","ba","file.go","file.go/a\nb/keep"],"patterns":["[a-c]","/..é","![a].b/**"]},
{"excluded":["ab/a.b/a\nb","b/a.b/ab/c1","file.go/[a]","keep","x.txt/a/x.txt"],"included":["ba","x.txt"],"patterns":["keep","!+\\[+$*.txt[a-c]","*/**"]},
{"excluded":["x y/a*b/x.txt","é/a*b/dir","é/c1/x y","é/x.txt/a\\b/x.txt"],"included":[".a/x.txt/a\nb/b","[a]/keep/b","dir/^a/a/a*b","dir/x.txt"],"patterns":["[x] y/*/x*","[é-ê]","é/[c]1/x y"]},
{"excluded":["a/file.go","a\\b","b","b/a/a.b","b/dir/c1","ba/ba","c1/ba/ba/x.txt","keep/a\nb/ba"],"included":[],"patterns":["!a","*","c1"]},
{"excluded":[],"included":["a*b/^a/x.txt/x y","ab/b/a*b","ab/é","c1/.a/a.b","dir/a.b","keep/x y","x y","x.txt"],"patterns":["!*","keep/? y","!**"]},
{"excluded":["x y/ab"],"included":["^a/a\nb","a\nb/dir/é","a\nb/file.go/[a]","a*b/^a/é","c1/ba/x.txt","é","é/keep/^a"],"patterns":["[\\]a]\\w\\w**/","[x] y","a\\*b/^a"]},
{"excluded":[".a/a\\b/file.go/c1","a\nb","a.b/.a/c1","a.b/^a/ab/a\\b","a/é/x y/a\nb","ab/b","c1","c1/keep/a.b"],"included":[],"patterns":["*","a*/é","/dir"]},
{"excluded":[],"included":[".a/keep/^a","a.b/a.b/x y","a\\b/a.b/é","b/[a]","dir/a\\b/ba","file.go/[a]/a/^a","keep/a\\b","x y/dir/dir/^a"],"patterns":[" [é-ê]\\*[ab]+ab/ "]},
{"excluded":["file.go"],"included":["a.b","a/a*b/c1","a/b","a\\b","ab","keep/a\\b","x y"],"patterns":["!a*","\\a**","file.?o","file.go"]},
{"excluded":["^a/file.go/.a/a","c1/file.go/ab","dir","dir/x y","x.txt","x.txt/a.b/a*b/keep","é/keep/keep"],"included":[],"patterns":["*"]},
{"excluded":["dir/x.txt/file.go"],"included":["[a]/x.txt/a/x.txt","^a/dir/a\\b/a\\b","a\nb/dir/dir","a.b/file.go/a*b","ba/dir/a\nb/é","file.go","x.txt/a/c1"],"patterns":[" \\w*.go\\*\\a./ ","dir"]},
{"excluded":[],"included":["[a]/ba","a*b/file.go","a*b/x.txt","dir","file.go","file.go/^a/ba/a*b","file.go/^a/keep","é/c1"],"patterns":["!*","/x","x"]},
{"excluded":[],"included":["a*b/b/x.txt/[a]","a*b/c1/b/ba","a*b/file.go","b/a/é","c1/é","dir","keep/ab/ab/[a]","x.txt"],"patterns":["dir","!**","!**/c1/b"]},
{"excluded":["[a]/a\\b/a\\b","a\nb/é/b","a/ba/a\nb","a\\b/^a/b","a\\b/ba","ab/a\nb/a","ab/a\nb/file.go","é/é/keep"],"included":[],"patterns":["é","a\\\\b/ba","**","!**/**/file.go"]},
{"excluded":[],"included":["a\nb/x y/.a","a\\b","c1/[a]/ba","c1/a/file.go/x y","dir/dir/ba","x y","é"],"patterns":["!a\nb/x y","!**/a*/file.go"]},
{"excluded":["a.b/a/b"],"included":[".a",".a/^a","a\nb/keep/b/a","a\\b","b/ba","ba/.a"],"patterns":["**/a*/b","/^"]},
{"excluded":["a\nb/b/x y/ba","ab","ab/x.txt/^a/a"],"included":["a\nb/c1/^a","a/a*b","ba","dir","dir/a/x.txt/.a"],"patterns":["ab/x.?xt/**/a*","[a]b","a*/b/x y","1*.txtab[!a]"]},
{"excluded":["ba/b/ba"],"included":["[a]/a/file.go/keep","[a]/é/b/x.txt","a/[a]/dir/a","ab/file.go/é/ab","file.go/x.txt/x.txt","keep/ab","x y"],"patterns":["[é-ê]?é[!a]","^\\a[a-c]+x*/**","b*"]},
{"excluded":[],"included":[".a","a*b","a.b","a.b/x y/x y","dir","keep/^a/.a/[a]","x y/ba","é/c1"],"patterns":["!keep/^*/.a"]},
{"excluded":["a\nb/a.b/[a]","a/a\\b/a","a/a\\b/c1","a\\b/é"],"included":["file.go/a*b/a\\b","x y/a*b/ab/file.go","x.txt/a*b/b/a\\b","é/keep/ab"],"patterns":["a*","ab?é(*.txt[\\]a]","[a]\nb","a*"]},
{"excluded":["^a/a.b/^a"],"included":[".a/x.txt","a","a\nb","a\\b/c1/b","ab/ba/x.txt","dir/ab/b","x y"],"patterns":[" /\\a.ab*.go[é-ê]/ ","  */**[!a]/ ","^a","\\w**/^"]},
{"excluded":["ba/é/.a/keep"],"included":["^a","^a/file.go","a.b","ab","ab/a*b","x y/ab/[a]","é/a.b/keep"],"patterns":["!ab","+[!a]dirab[ab]b","!*","*/é"]},
{"excluded":["a*b/a\nb"],"included":["a\nb/a*b","a.b/a*b","a/c1/a.b","a/é/x.txt","b/[a]","dir","keep/.a/file.go"],"patterns":["a\\*b/*"]},
{"excluded":["x y/a/c1/é"],"included":[".a/a*b/keep/a\\b","a","a\nb/a\nb/b","a/ab/ab/dir","a/x y/^a/é","a/x.txt/keep","x y"],"patterns":["x*/a/c*/é","!a","/x**$*.go*.txt"]},
{"excluded":[],"included":["^a/a*b","^a/c1/ba","ab","b","file.go/a.b/a","x y","x y/dir/é/x y","x.txt/.a/b"],"patterns":["!x y","!**"]},
{"excluded":["[a]/keep/file.go","^a"],"included":[".a/a.b","ab","ab/é","c1/file.go/a\nb","x.txt","x.txt/a.b/a\\b"],"patterns":["^a","\\[a]"]},
{"excluded":[],"included":[".a","^a/a\\b/[a]","a\nb","a*b/a","a.b/b/x y","b","dir/x y","file.go/é"],"patterns":["!**"]},
{"excluded":[],"included":[".a","^a/é","a\nb/a/a/ab","ab/a*b/keep/^a","b","b/x y","ba/a*b/a/[a]","x y/file.go"],"patterns":["!/[é-ê]..","/a1","!b*/*"]},
{"excluded":["a\nb/keep","a\nb/x.txt/keep","a/keep","ab","ba/file.go","c1/[a]/a/ba","dir","x y/ba/é"],"included":[],"patterns":["a\nb/k*","!**/ab[\\]a]dira","**"]},
{"excluded":["c1/.a/a\nb"],"included":["^a/[a]","a\nb","a.b","a/x.txt","a\\b","ab/a*b/ab","keep/file.go/a\\b/.a"],"patterns":["!keep/fil?.go","!a/x.txt","c1/.*/a\nb"]},
{"excluded":["a\nb/b"],"included":["a*b/.a/dir","a*b/file.go/keep","a\\b/a\nb/^a/file.go","b/a\\b","c1","x y","é/a.b"],"patterns":["a\n?"]},
{"error":true,"patterns":["ba/ba","!c1","ab","[*"]},
{"excluded":["x y/x.txt/^a/é"],"included":["a\nb","a\\b/[a]","b","dir/x.txt","file.go/.a/[a]","file.go/a","x y/a"],"patterns":["**x*.txt*/**","[^a]/\\d[é-ê]","!*/.a","/[a-c]éx**.bab"]},
{"excluded":["[a]/ab/file.go","a/dir/a*b","a\\b/.a/dir/é","ab/file.go/[a]","b/^a/a/a*b","b/a\nb/keep","ba/a*b/a/a\\b","c1"],"included":[],"patterns":["*"," é*/ ","a*/*/a\\*b"]},
{"excluded":[],"included":["^a/ba/^a","a*b/é/ba","a/file.go/x y","ab","b/a/[a]/a\\b","ba/dir/ab/é","keep/a\nb/[a]/x.txt","é/b"],"patterns":[" /keep/ "]},
{"excluded":["b/a.b","b/ba","ba/.a"],"included":["a\nb/a\nb/ba","a\\b/^a","c1","é/a","é/c1/a*b"],"patterns":["!b","b","[!a] \\adir","\\wa"]},
{"excluded":[".a/dir/b/ab","a\nb","a.b/^a/dir","ab/a\\b","keep/c1/a.b","x.txt"],"included":["c1/é/a*b/a\\b"],"patterns":["**","!c1/[é]/*","*?b"," dir\\[dir/ "]},
{"excluded":[".a","a*b/.a/a.b/dir"],"included":["a*b/a.b/c1","a\\b/x.txt/a\\b/dir","b/dir/a.b","keep","keep/b/a\\b/dir","x.txt"],"patterns":["**/.a"]},
{"excluded":["x.txt/keep"],"included":["[a]/[a]/dir/.a","a\\b","ab/ab/a\nb/ba","ba","file.go/ba","keep/file.go/dir","keep/é/[a]/a\nb"],"patterns":["[!a]\\*x\\d","x*/?eep","x.?xt","![!a]."]},
{"excluded":[],"included":[".a/^a/x y","a/file.go/a/[a]","a\\b","ba/a.b","ba/ba","dir/a/ba/é","keep","é/.a/dir/x.txt"],"patterns":["!*/[f]ile.go/[a]"]},
{"excluded":["a*b","a*b/a.b","a.b/é/a*b","a/ba/a\\b/[a]","a\\b/[a]/ba","b/a.b/dir","file.go/^a/file.go","file.go/x.txt"],"included":[],"patterns":["fi?e.go","*","x**\\*\\d\\*dir","a*?"]},
{"excluded":["^a","^a/[a]"],"included":["a*b/x.txt","a\\b/b/c1","b/.a/.a/[a]","ba/x.txt/ba","c1/a*b","c1/dir/dir"],"patterns":["^a"]},
{"excluded":[],"included":["^a","^a/a\\b","a/dir/.a","ab","b","c1","file.go/ba","x.txt/b/c1"],"patterns":["!**","x**a"]},
{"excluded":[],"included":[".a/a","a\nb/a/keep/é","a\nb/keep/ab/a*b","a\nb/é/a*b/c1","a*b/^a","a.b/é/file.go/é","ba/x y","c1"],"patterns":["!\\w"]},
{"excluded":["b/a.b/[a]/x.txt","b/ba/[a]"],"included":[".a/keep/ba/dir","a*b","a.b/[a]/ba","a\\b/x.txt/keep/x.txt","ab/^a/x y","ba/a*b/ba/a"],"patterns":["[b]","é\\["]},
{"excluded":["keep/b/^a","x.txt","x.txt/x y"],"included":["^a/a*b/b/ab","a.b","b/a\nb/ab/keep","c1/b","dir/a\nb/é"],"patterns":["!keep/**","keep/","x?txt"]},
{"excluded":["a.b/file.go/é/keep","a.b/x.txt","keep/ab"],"included":["[a]","b/x.txt/a\nb","ba/[a]","x.txt","x.txt/keep"],"patterns":["ke?p/a*","a.b"]},
{"error":true,"patterns":["[^","!**/[^a]","!\\[a]/a\\*b","1("]},
{"excluded":[".a/x.txt/a.b","a\nb/a\\b/a","a\\b/ab/^a/é","b/keep","ba/ba/é/a\\b","ba/file.go/é","keep"],"included":["ab/a*b/.a"],"patterns":["[ab]","*","!**/a\\*b/.a","**/keep"]},
{"excluded":["c1/x y/^a"],"included":["a","a\nb/dir","ab","ab/b/[a]","x y/a\nb/keep/file.go","x y/a*b","x.txt/a\nb/ba/[a]"],"patterns":["^[^a]1"]},
{"excluded":["ab"],"included":["^a/keep/.a/^a","a.b/a\nb","a.b/b","a\\b/ba/a*b/.a","ba/c1","file.go","keep/[a]/[a]"],"patterns":["\\*..é*/**","ab","!keep"]},
{"excluded":["c1/.a/[a]"],"included":["[a]/x.txt/a\nb","^a/a*b/[a]","a\nb","a\nb/é/.a","a*b","a.b/c1","ba/a.b/[a]/.a"],"patterns":["c1"]},
{"excluded":["^a/c1/c1/.a","a.b"],"included":["a\nb/keep","a\nb/x.txt","a*b/ab/c1","ab","keep","x.txt/x y"],"patterns":["a.b","^a/**"," a+/ "]},
{"excluded":[".a/é/dir","[a]/b","^a","a/a*b/[a]","a\\b/a\nb/a/a\nb","ab/[a]","c1","keep/file.go/a*b/a.b"],"included":[],"patterns":["**","*+\\*dir","\\dxkeep",".?/**"]},
{"excluded":["[a]/a*b/ba","^a/ab/a\\b/a*b","a","a.b","a/[a]/keep/é","b/dir/dir","file.go","file.go/ab/keep/c1"],"included":[],"patterns":["!file.go/*/keep/c1","file.go","**"]},
{"excluded":[],"included":[".a/dir/file.go/^a","^a","a.b/é/a\nb/dir","ba","c1","dir/.a/ab","x.txt/.a/ab/^a","x.txt/x.txt/ba"],"patterns":["!*.txtkeep"]},
{"excluded":[],"included":["^a/a*b/x.txt","a","a.b/a.b/a*b","c1/ba/.a/é","dir","dir/c1","file.go/a.b/^a/file.go","x y/x y"],"patterns":["xx**\\*[\\]a][\\]a]"]},
{"excluded":[],"included":["[a]/c1/keep/a*b","^a","^a/a","^a/a\nb/a.b","a.b","file.go/a","é/dir"],"patterns":["!**/keep\\[ab","\\[a]/c1","^a","!^*"]},
{"excluded":["^a","a\nb/a.b","a\nb/x.txt/c1/ba","a*b/é/a/a","a\\b","dir/keep/b/a\\b","é/ba/a*b/a\nb"],"included":["ba/a\nb/c1"],"patterns":["*","b?/a\n?","!b*","*.txtx\\* \\w*"]},
{"excluded":["c1/a.b/x.txt"],"included":["[a]","^a/.a/keep/x.txt","a*b/x.txt/a\nb/x.txt","dir/file.go/b/a\\b","file.go/b","keep/[a]/a.b","x.txt/a\\b/a\\b"],"patterns":["keep/[\\[]a]","[!a]x+[ab]\\aé","!*/\\[a]","c*"]},
{"excluded":[],"included":["ab/b","ba/[a]/[a]","c1/a\\b/c1","keep/a/a.b/a.b","x y/ba","x y/ba/a/keep","x.txt","x.txt/[a]"],"patterns":["!?a","!*/a*/a.b","a\\d/1\\*\\d"]},
{"excluded":[],"included":["^a/a/[a]/[a]","a\nb/a\nb/.a/c1","a\nb/x.txt/b","ab/c1/a\nb","b/ba","dir/a*b","é/[a]","é/é/é/x y"],"patterns":["b[ab] /dirkeep"]},
{"excluded":["keep/.a/dir"],"included":[".a",".a/a","a/b/dir/keep","a/dir","a\\b","file.go","é"],"patterns":["!.a","?eep/.?/d*","![.]a"]},
{"excluded":["a*b/a\nb/ba","a.b/^a/keep/a*b","a.b/c1"],"included":["[a]/ba/[a]/é","b","b/x.txt/x y/ba","file.go/a\nb/a/[a]","file.go/b/x y"],"patterns":["/*.txt **x**/*.go","a*","!**/**/x?y"]},
{"excluded":["[a]/x.txt","^a/ba/ab/x.txt","ab/ab","ba/[a]","file.go/a.b/file.go","file.go/ab/dir","x y/ba/ab","x.txt/x.txt/a*b/x.txt"],"included":[],"patterns":["**"," !**x\\**/****/ ","ba"]},
{"excluded":["a\nb/[a]/b/a*b","a*b"],"included":["[a]/ba","^a","b/keep/c1/x y","dir","x.txt/é/x y/x y"],"patterns":[" /[a-c](+**xb../ ","?a]","!\\[a]/ba","a*"]},
{"excluded":["[a]","a*b/ab/keep/file.go","a.b/file.go/a\\b","a/ba/.a/keep","a\\b","ab","dir/[a]"],"included":[],"patterns":[" !*.go\\d[^a][!a]/ ","**/**","[^a]+**"]},
{"excluded":[],"included":[".a",".a/ab",".a/dir/dir","[a]/keep/b/c1","a\nb/a\nb/dir","dir","x y","é/x y/a*b"],"patterns":["[\\]a]a"]},
{"excluded":[],"included":["[a]/a.b/.a/.a","[a]/x.txt/b/dir","^a/a\\b/.a/a*b","a\nb/a.b/^a","a\\b/a*b/keep/.a","a\\b/b/a*b/[a]","b/a*b/a.b","x y/é/b/keep"],"patterns":["!\\*","[!a](**/*.go"]},
{"excluded":["ab/.a/a*b"],"included":["^a/a.b","a*b/dir/a","a.b/.a/ab","ba/b","dir/[a]/ba/ab","file.go/c1/a.b/^a","x y/ba/x y"],"patterns":["file.g?/*/**/^*","*/**...","ab/.*"]},
{"excluded":["a\nb","a.b","a/file.go/keep","a\\b","ba/ba/a\nb/a\nb"],"included":["[a]","[a]/^a/a.b"],"patterns":["!*.**x**x**x+","!\\[a]","**","!\\[a]"]},
{"error":true,"patterns":["[^a]a*.go*.go..[a-c]","!a*/?1/**","**","a["]},
{"excluded":["[a]/x y/x.txt","a\nb/a\\b","a*b","a.b/keep/[a]/.a","dir/ba","keep/a.b/.a/é","x y/ba/dir/a*b","x.txt/a*b/[a]/^a"],"included":[],"patterns":["[^a]","*"]},
{"excluded":["a\nb/file.go/a.b/a*b"],"included":["[a]/a\nb","a.b/é/é","ab/é/[a]","c1/file.go","c1/x y/x y","é/.a/a\nb/a\nb","é/a*b/é"],"patterns":[".?\\d","a\nb/file.?o"]},
{"excluded":["a\\b/a*b"],"included":["a.b/[a]/[a]","c1","c1/a\\b/b","dir/c1/é/a*b","keep/a*b/^a","x y","x.txt/x.txt/keep/ba"],"patterns":["a*/a\\*b"]},
{"excluded":[],"included":["a\nb","a\nb/x y/dir/^a","a*b/ab/ab/file.go","a.b/keep/b/a*b","a\\b/.a","c1","x y/dir/keep","x.txt/a.b/dir/c1"],"patterns":["![\\]a]"]},
{"excluded":["dir/ab"],"included":["a/a*b","ab/ab","ab/dir/^a/c1","ba/ba","ba/é/x y","file.go/c1/c1","keep/a\nb"],"patterns":["dir/ab"]},
{"excluded":["a/a.b/[a]/a\nb"],"included":[".a","[a]/file.go/^a","a\nb/x y/a.b/file.go","a/x y/dir","keep/b/ba","x y"],"patterns":["+b/..+[a-c]","*/a.b/*/a\nb"]},
{"excluded":[".a","[a]","a*b/a\\b","a.b/ab/é","a/ab/x y/^a","ba","ba/a\nb","keep/file.go/a\\b"],"included":[],"patterns":["!?a","![^a]a","*"]},
{"excluded":[],"included":["a.b/x y","ab/file.go/^a/a\\b","b","c1/[a]/a*b/a\nb","keep/file.go/[a]","keep/é/x y/a\nb","x y/a\\b/ab","x y/ba/.a/a.b"],"patterns":["!b"]},
{"excluded":[".a/ab/a","a*b/.a","a\\b/a\nb"],"included":["a/x y","c1","c1/a.b/ab/x.txt","file.go","file.go/x.txt/a.b/x.txt"],"patterns":["*/a\nb",".a/ab/a*","a\\*b"]},
{"excluded":[],"included":["a\nb/dir/a\\b/x y","a.b/keep/ab","a/a.b/a.b/a\\b","ab/^a/x.txt","file.go/[a]/ba","keep","x.txt/a*b/c1/a","x.txt/ab/b/ab"],"patterns":["^**x*.gox.**/","\\*","/[ab]^"]},
{"excluded":["[a]","a\nb/a*b/a\\b/a.b","a*b/dir","a\\b/a*b/^a/[a]","ab/a.b/dir","b/^a/c1/a*b","ba/dir/b","é/b/.a/b"],"included":[],"patterns":["**","é\\***x ","[\\]a]^1b^ab","b/*"]},
{"excluded":["a.b/dir/dir/[a]"],"included":[".a","[a]/é/dir","a\\b/b/x y/a\nb","ab/[a]/keep","ba","dir","file.go/a*b/^a"],"patterns":["?.b/*/**"]},
{"excluded":["c1/b/ab/a"],"included":["^a/x.txt/a\nb","ba/a.b/a*b/ab","dir/[a]","file.go/x.txt","keep/a*b/a\\b/b","keep/c1","x.txt/ba/a\nb"],"patterns":["!*","?\\*b","c?"]},
{"excluded":["ba/c1/.a/b"],"included":["^a/dir/c1","a*b","a\\b/.a/.a","a\\b/a\\b/a/.a","b","dir","dir/keep"],"patterns":["![!a]","[b]a"]},
{"excluded":["[a]/a\nb","a/[a]/a\nb","a/x y/b","a\\b/b","ab","ab/a\\b","b/a","ba/keep/keep"],"included":[],"patterns":["ab","**","x[!a]*.txt*\\a?"]},
{"excluded":["a.b/ba/keep"],"included":["[a]/a/a\\b","^a","a","ab/^a/[a]/[a]","x y/a*b","x.txt/a*b","é"],"patterns":["!?b/^?/*/\\[a]","!a*","a.b"]},
{"excluded":[".a/x y/a\\b","^a","a\nb/a\nb/x.txt","a.b","ba/a/é/b","file.go/[a]/a.b","keep","x y/x y"],"included":[],"patterns":["**/**/a*","*"]},
{"excluded":["a\nb"],"included":["[a]/^a/a*b","^a","ab","b","c1/^a","keep/.a/c1/[a]"],"patterns":["a\nb"]},
{"excluded":["x.txt"],"included":["[a]/^a/^a/.a","a\\b/ba/a","ab/x.txt/a","b","b/file.go/a\nb","dir/ab/file.go","keep/b"],"patterns":["x** ","!*.txt[a-c]$\\a*/**[\\]a]"]},
{"excluded":[],"included":["a/b","a\\b","a\\b/a\nb","b/dir/x y","ba/.a/a","dir/^a/é","file.go/a/c1/x y","keep/x y"],"patterns":["/**/abx**..[é-ê]"]},
{"excluded":[],"included":["^a/dir","a*b","a.b/a/a*b","c1","dir/[a]/a.b/[a]","keep/a\\b/a","keep/dir"],"patterns":["![\\]a][é-ê]","\\*[ab][\\]a]*.txt/[^a]","*/**?\\*  ^"," ![é-ê]/\\a/ "]},
{"excluded":[],"included":["a","a\nb/file.go/keep","a/a*b/a*b","keep/a\nb","keep/ba/b","x y","x.txt","é"],"patterns":["xa (dir+","/keep.akeep"]},
{"excluded":["x y/ba","x.txt/ba/file.go"],"included":["^a/c1/file.go/ab","a.b","a.b/^a/a/a.b","a/a*b","a/a*b/a\nb/a","b/a*b/é/x y"],"patterns":["**/ba"]},
{"excluded":["[a]/dir/.a","a","a*b/ba/a*b","a.b/a\\b/[a]/ba","a\\b/a\nb/x y/a\nb","c1/[a]/x y","file.go","keep/^a"],"included":[],"patterns":["**x..[ab]*/**","**"]},
{"excluded":[],"included":["a\nb/ba","a*b","a\\b","b/a.b","b/ba/file.go","file.go/a\\b/c1/x.txt","keep","é"],"patterns":["!édir..[^a]**x"]},
{"excluded":["x y/ba/dir/keep"],"included":["[a]/x.txt/dir","^a/ba/ba/ba","a.b/a/a\nb","a\\b/a\nb/a","ab/a\\b/x.txt","ba/dir","é"],"patterns":["x y/ba/dir","b/\\w^x**x"]},
{"excluded":["[a]/keep/a\\b"],"included":["^a/^a","a\\b/b/file.go","ba/dir/a\nb","dir/a.b","keep/a.b/a\nb/[a]","x.txt","x.txt/keep"],"patterns":["\\[a]/**"]},
{"excluded":["c1/ba/dir/^a"],"included":[".a","[a]/file.go/c1/a*b","^a/keep","a\nb","a*b/ab/é","dir/x y/c1/a\nb","x.txt/x y/a\nb/x.txt"],"patterns":["!\\[[^a]?\\*[!a]","..a","c*","keep[!a]"]},
{"error":true,"patterns":["b/[^]a/**","*??\\[x** ","!b"]},
{"excluded":["ba/a\nb"],"included":[".a/c1/a/.a","^a/keep","a","a*b/[a]/a.b","b/c1/[a]/c1","file.go/ab/.a","keep"],"patterns":["!x**\\adir\\w","ba/*","..ab "]},
{"excluded":["a*b/ba/a*b","b/ba"],"included":["[a]/a.b/é","a*b","dir/x.txt/.a/file.go","file.go/.a/a/a\\b","keep/c1","keep/x y/x y/a\\b"],"patterns":["éxx","**/ba/a?b","b/b*"]},
{"excluded":[],"included":[".a/b/é/b","[a]/a*b/b","^a/b","a/ba/file.go","a\\b","file.go","keep/dir/ba"],"patterns":["*.txt\\*\\[\\a","[!a]$*.go","...","\\*+\\akeep*/**"]},
{"excluded":["a/x.txt/[a]","a\\b/x.txt"],"included":[".a/a.b","ab","file.go","keep/dir/c1/keep","x.txt","é"],"patterns":["x*/****/","*/x.txt","**\\*$","(..keep+*/**"]},
{"excluded":[],"included":[".a/.a/^a/[a]",".a/a.b/dir","[a]/[a]","a\nb","a\nb/b/^a","a.b/x.txt","c1/c1","x y/.a/keep/ab"],"patterns":["!*/**","[ab]**x\\ax","!*"]},
{"excluded":[],"included":["^a/.a/a\nb/keep","a","a/a*b/x y/dir","a\\b/keep/a.b/.a","x y","x y/ab/é/[a]","x.txt","x.txt/keep"],"patterns":["//\\*[!a]","/..***.go","**[^a][a-c][é-ê]/dir"]},
{"excluded":["a.b","a.b/dir"],"included":["a/a.b/^a/c1","ba/.a/ba","ba/dir/a\\b","ba/keep/ab","dir/file.go/file.go","keep/c1"],"patterns":["\\w\\d**x\\w","a.b"]},
{"excluded":["b","b/[a]","x.txt/ba/x.txt"],"included":["a/keep/a\nb/file.go","c1","dir/x y/x.txt","file.go/b/é/a\nb","file.go/x y"],"patterns":["x.?xt/?a/x.t?t","\\a","[b]","! dir*"]},
{"excluded":["c1","c1/a*b/[a]/^a"],"included":["[a]/keep","a","a*b/a\nb/x.txt/file.go","a*b/c1/a\\b","a.b/ab/ab","a/x y/ba/^a"],"patterns":[".\\a(**/\\*","c1","**/*/\\[a]"]},
{"excluded":[],"included":[".a/^a/x.txt/dir","[a]","a\nb","dir/a\\b/x y/file.go","file.go","file.go/a.b/b/x y","file.go/x y","x y"],"patterns":["!*.txt( keep","!.a"]},
{"excluded":["dir/a\\b"],"included":[".a/a.b/é","a/é/.a","a\\b/c1/a","b","ba","ba/a*b/ab/ba","é/[a]"],"patterns":["dir/a*"]},
{"excluded":["a\nb/.a/a\nb/keep","c1/a*b/^a"],"included":["^a/file.go/a*b/ab","a","a*b/a","b/a*b/é","keep/ab/b","x y/ba"],"patterns":["c1/*","a*/**/*/*","a**x(*.goab**/"]},
{"excluded":[],"included":["[a]/c1/ba","^a/a\nb/a.b","ab","b/x.txt","ba","dir/a\nb/.a","file.go/é","keep/file.go/b"],"patterns":["**xdir*.go(1x"]},
{"excluded":["a.b/a\\b/b","a/.a","a/ab/b","b","b/a.b"],"included":["^a/a\nb","keep/^a/file.go","x y/a/a\nb/^a"],"patterns":["a*","!^a","b"]},
{"excluded":["b/a\\b","b/dir","b/dir/ab"],"included":["[a]","^a/file.go/^a/b","file.go/a*b","x y/é/[a]/file.go","é/b/x.txt/dir"],"patterns":["b*/**/ab","b","/a1$\\d"]},
{"excluded":[],"included":[".a/a/ab",".a/file.go/é","a","a.b","ab/^a/a*b/c1","dir/x.txt/keep/dir","x.txt","é"],"patterns":[".a/a*","!*/**","!a.b"]},
{"excluded":[],"included":["^a","^a/é","a*b/c1/a.b","a.b/a\nb","file.go/é/x y/dir","é","é/a\\b/file.go"],"patterns":["*.go[^a][é-ê]..ab+","x","!a.b/a\nb","!é"]},
{"excluded":["é/[a]/x y/b"],"included":["[a]","[a]/^a/a\nb/x y","[a]/ab/a*b","a\nb/a.b","ab/a\\b/x y/.a","ba/.a","ba/a.b/keep/a\nb"],"patterns":["!*","^?/"]},
{"excluded":["ab","ab/file.go/a","b/b","ba/x y","c1","x y/ab/c1","x.txt/c1","x.txt/x.txt/ba"],"included":[],"patterns":["/?dir..x(","**"]},
{"excluded":["a*b","c1","dir","file.go/dir/.a/dir","file.go/x.txt","keep","é/b/a"],"included":[],"patterns":["d*","*/*","**","..[ab]"]},
{"excluded":["b/x.txt/c1"],"included":["[a]/^a/^a","a*b/.a/a*b/[a]","a*b/a.b/ab/é","a/c1/[a]","dir/ab","file.go/.a","x.txt/ab"],"patterns":["b/x.txt/**"]},
{"excluded":["a.b/x.txt/x.txt","é/.a"],"included":["[a]","[a]/a\nb/c1","^a","a\nb/a","dir","keep"],"patterns":["!*/*","é","+\\a**/\\a","a.b"]},
{"excluded":[],"included":["[a]","[a]/a\\b","a\nb/a\\b","a*b","a.b/é","a/a/.a","dir","keep/b/a.b"],"patterns":["!*/a\\\\b","a\nb/a\\\\b","!\\[a]","!**"]},
{"excluded":[".a","c1/keep/a/file.go","c1/x y"],"included":["a.b/x.txt","keep","x y/a*b/c1/a\\b","x y/x y/file.go/[a]","é/dir"],"patterns":["?1","/","![ab]x*.go","[.]a"]},
{"excluded":[".a/keep","a.b","a\\b","dir/[a]","file.go/a/ba","file.go/a\\b/.a/ab","keep/ba/keep/[a]","x.txt/b"],"included":[],"patterns":["**"]},
{"excluded":["[a]","[a]/x y/a\nb/x y","^a/a*b/a\\b","a.b","b","dir/b","dir/file.go","é/^a/a.b/c1"],"included":[],"patterns":["a?b","!dir/b","*","éb"]},
{"excluded":[],"included":["^a/é","a*b/c1","a.b/c1/a.b","ab/c1/a.b/^a","b/dir","file.go","file.go/x.txt","keep/a*b"],"patterns":[" !a/?*.txt/ ","$**","([^a]"]},
{"excluded":["[a]","[a]/ab","a\nb/c1","a.b/é","a\\b/é/a\\b/a","ab/file.go","c1/ba","x.txt/é"],"included":[],"patterns":["**/*"]},
{"excluded":["a/dir/é","x.txt"],"included":["a*b/x y/ba","ab/c1","b","b/a*b","dir","dir/.a/x.txt"],"patterns":["a/dir","a","x.txt"]},
{"excluded":["é/b/file.go"],"included":["[a]/b","a\nb","a\nb/c1/a.b","a.b","a/dir/é","ab","x y/.a/ba"],"patterns":["ab?[!a]","(","é*","!(b*.go[ab]"]},
{"excluded":[],"included":[".a","a\nb","a\nb/ba/a","a.b/ba","ab/a\\b/é/x y","ba/a*b","c1/ba/a*b","keep/keep"],"patterns":["!a\n?"]},
{"excluded":["file.go/a.b/keep"],"included":["[a]","^a","^a/a.b","a\nb/c1/a.b/a*b","dir","file.go/a.b/a*b/ba","x.txt/é"],"patterns":["file.go/**/keep"]},
{"excluded":["[a]/a\\b/^a","a*b/keep/ba/keep","c1","keep/c1/b","é"],"included":["file.go","file.go/a\\b/ab"],"patterns":["*","!file.go"]},
{"excluded":["a\nb/keep/keep/.a"],"included":["a/é/a\\b","ab/^a","b/x y","c1","dir","x.txt","x.txt/a.b"],"patterns":["/ab/[\\]a] ","a\nb/keep/keep","!c1","!b/x y"]},
{"excluded":[".a/a\nb/ba/^a","a\nb/a.b","keep/a\nb/x y"],"included":["a/c1/[a]","ba/^a/b","ba/a*b/x.txt","keep","é"],"patterns":["**/[a]\nb"]},
{"excluded":["[a]/a*b/ba/^a","a.b/.a/.a/x.txt","ab/a/dir","ba/a\\b","file.go/a*b/.a/dir"],"included":[".a","a*b","dir/file.go/dir"],"patterns":["**/?*b","!a\\*b","1[ab]\\d"]},
{"excluded":["[a]/^a/file.go"],"included":[".a/é/keep/^a","[a]/ab/a.b/c1","ba","dir","dir/a/keep/a\nb","keep","x.txt/a\nb"],"patterns":["[\\[]a]/*","\\[a]/ab/**","!\\[a]/*/a.b/c1","\\a\\*\\d**/..1"]},
{"excluded":["x y/a"],"included":["-*",".a/ba/a*b/ab","[\n/^","[.[","a/a","b/a/é/a\nb","é/.a/a\\b"],"patterns":["x?y","!!].!]bb^","]a?!?]a"]},
{"excluded":["a/-/ab\\/-","a/]*]","ba/c1/x.txt"],"included":["\n/a"," b\n/b-/ba/.","b*","dir/b","é/.a/b/ab"],"patterns":["*a","\\^"]},
{"error":true,"patterns":["*[!^-^*!?"]},
{"error":true,"patterns":["!*","/a[bb^","[*"]},
{"error":true,"patterns":["!]/???.!","\\a\\?\\"]},
{"error":true,"patterns":["!].[]-b?]","\\!/*-["]},
{"error":true,"patterns":["/[","[\n]^^"]},
{"excluded":["a.b/é","x.txt"],"included":["*","[/b/? ","]","a","keep/^a","é/ab/a\nb"],"patterns":["?.?*","*b.?a","bb]ba"]},
{"excluded":["file.go/a.b/file.go/x y","keep"],"included":["-]/a","a","a/*b/a","a/a-","b]^/a/b\\/^?","x y/x.txt/file.go/file.go"],"patterns":["keep","!b]^/a/**","f*/a.b/file.go"]},
{"error":true,"patterns":["!b\\","/a][?b-ab","[?]"]},
{"error":true,"patterns":["\\?/ba]//]","\\/^","[-"]},
{"excluded":[],"included":["-/\\","^a","^a/.a","^a/ba/^a/^a","a\nb/x.txt/dir/x y","a/[^a/a","ab/[a]/a\nb/file.go","file.go/ba/x y"],"patterns":["^\\a\\/]\\!",".-"]},
{"excluded":["x.txt"],"included":["]?/\na\n/*/b]","a","a\nb/a.b/a/a.b","a-","a.b/[a]","c1","dir/dir/b"],"patterns":["x.txt"]},
{"error":true,"patterns":["[.\\/*","!\\?","--a"]},
{"excluded":["a/ /\\","a/ab"],"included":["\n/*\\]","\\/a/]a\\/a","b","b/ba/^a","file.go/^a","keep/a.b/x.txt/a\nb"],"patterns":["?].","a"]},
{"error":true,"patterns":[".]*-!?.","[].b?","?^-**?b["]},
{"error":true,"patterns":["![*","]]//.[?"]},
{"excluded":[],"included":[".\\/*\n.","a\nb","a-/^/b^/[[[","b/é","ba/c1/keep","ba/x.txt/ba/^a","keep/ab/file.go/a*b","é/é/a.b/x.txt"],"patterns":["]]","!ba/*/kee?"]},
{"excluded":[],"included":["\n/.^\n"," /b]",".a/.a/a\\b","a","a/?/]b","a/[]]/a.[/\\a","a/[a\\/\n","ba/^a/a.b"],"patterns":["!ba/^*/*"]},
{"excluded":["a/ .","b/a/]"],"included":["^a/b","a/]/^","b\n-/ */]\n\\","b*b","ba/ab/ab/file.go","x y"],"patterns":["a/ *","]*.!]","[b]/*"]},
{"excluded":[],"included":["\n[-"," \n?/? */*^?","-[/\n[/a/]a","?/a/a/b","^a/a.b/[a]/ba","b\\/a/a","dir/a\\b/a\nb","é/[a]/dir/b"],"patterns":["?/a/^","*^*bb?]","/\\?a!"]},
{"error":true,"patterns":["b//??-","b-]]]*[\\"]},
{"excluded":[],"included":["\\*/a/^/^\n","a","a.b/a","a/a/**./a","a\\b/file.go/a/.a","a\\b/file.go/ab","b\n-/a/-**","file.go"],"patterns":["\\/*]***?-","b/.a?\\a.]","//\\[]"]},
{"excluded":[],"included":[" ","]\n","] ?","a","a.b/b","a\\b/a\nb/[a]","ba/b/x.txt","dir/ab"],"patterns":["*!"]},
{"excluded":["a/a.\\/ bb"],"included":["./b\n",".a","a/][./?/a","a\\/a/a/a","dir/dir","file.go/ab/x y/^a","x y"],"patterns":["**/a.\\\\","!-/*"]},
{"excluded":[],"included":[" \\[","*^\\/a","./*/\n","./]a/a",".a/b/ab","^/]**/a\\","a\nb/^a","file.go/b"],"patterns":["]",".?.]"]},
{"error":true,"patterns":["^/\\*-/\\","ab\\a!*!/"]},
{"error":true,"patterns":["*\\?-","^*^a","-!^b\\"]},
{"error":true,"patterns":["^/-[","\\","[/?"]},
{"error":true,"patterns":["\\\\//","][\\-a","-b!^*]*"]},
{"excluded":["[a]/^a/ba/a\nb","a/^","a\\b","b/[a]","file.go/dir/dir/c1","keep/a.b/é","keep/b/.a/keep","é/a.b"],"included":[],"patterns":["*"]},
{"excluded":[" ^-/]-\\",".a","^ \n/- [/?-^","a","a/a[/?/*]","c1/keep/c1","dir/a/ba/dir","file.go/keep"],"included":[],"patterns":["*","*a/!/!-"]},
{"error":true,"patterns":["/*^[aa","^[\\\\^]"]},
{"error":true,"patterns":["[]"]},
{"excluded":[],"included":["[b?/[/*/a","a\nb/a.b/dir","a/ / /*b.","a/?","a/a/]^/][","a\\b/dir/é","ba","c1/x y/^a"],"patterns":[".?]"]},
{"error":true,"patterns":["a^\\.bba[/"]},
{"error":true,"patterns":["\\[","\\[/aa*b[]"]},
{"excluded":[" ^/]b]","ba"],"included":[".b\n","^]^","a*b/file.go","a.b/.a","a.b/a\nb/c1/^a","a/é/a\nb/a*b"],"patterns":["??","/\\[!^b"]},
{"excluded":[],"included":["\n^b/ \n\\/*^","?/\\./ \n/a","[/ /b??","^a","ab-/..]/\\?^","b-/?. / ]","b?/a","c1/a\\b"],"patterns":["b?a/\\.\\a","[!!!]]b/a",".!/aa]^a"]},
{"excluded":["-/b*","file.go/ba"],"included":["?b./\\ -","a/-[]","a]","c1/^a/ab","keep/ab/[a]","keep/x.txt/b/dir"],"patterns":["..*//]","-/b\\*","file.go"]},
{"excluded":["dir","dir/ab/^a"],"included":["?./]\\*/?. ","^*/[*]","c1","é","é/dir","é/dir/c1/x y"],"patterns":["!é/dir/c1","?ir"]},
{"error":true,"patterns":["^?-b]\\","b[[.[b"]},
{"excluded":[],"included":["\n","  -/ ","\\","^a/c1","a/.a","a/a\\b/a/a\nb","b/ba","dir/x y/file.go/^a"],"patterns":["!a**/","b?*/"]},
{"excluded":[],"included":["\nb/a/^a","*^\n/a/]^/^-\\","?^a","^\n.","a\nb","a\nb/a/x y/a.b","a/[a]/ab","x.txt/ba"],"patterns":["\\].]-"]},
{"error":true,"patterns":["*/\\*","a-\\-\\!.[^","-*/!*a.a^"]},
{"error":true,"patterns":["[.b","a/a[[^--^","\\[a]"]},
{"excluded":["*^-","-a[",". ]/\n\\/a/ ",".a/x y/a\\b/a.b","?-/\\*","^a/.a","a/\n*","b^/]?b/  /\\"],"included":[],"patterns":["**","^a","*/.a"]},
{"error":true,"patterns":["["]},
{"error":true,"patterns":["^..[","?","!dir/b*/x*/**"]},
{"error":true,"patterns":["[^"]},
{"excluded":[],"included":["a\nb/file.go/[a]","a.b","a/*/-","ab/keep","b/ba/ba/b","b/c1/a\nb/^a","ba/a.b/keep/ab","c1/.a/dir/file.go"],"patterns":[".]/.a",".^[!-.!]!"]},
{"excluded":[" []/ /a","^a/dir/a.b/dir","a","a/a/-]/ -","ab/dir","b/x.txt/[a]/é","ba","dir/[a]/ab/file.go"],"included":[],"patterns":["**/**/**"]},
{"error":true,"patterns":["\\","^?-[!^?-."]},
{"error":true,"patterns":["[aa","b.b^","a/**/*"]},
{"error":true,"patterns":[".?[","a!b"]},
{"error":true,"patterns":["*[-"]},
{"excluded":[],"included":[" /\n\n\n/\\","\\/b-^","^a","a/^","b/ab/a/dir","c1/a\nb/ba","keep/a/x y","é/a\nb/é/a\nb"],"patterns":["]!.!?\\.a"]},
{"error":true,"patterns":["*^[-b-\\","?-!/?]["]},
{"excluded":["b"],"included":[" *b"," -./-/b\n\\","? /.\\/*\\/a","^/a","ba/file.go/x.txt/dir","file.go","é/x y/a/a.b"],"patterns":["b"]},
{"error":true,"patterns":["/[]"]},
{"error":true,"patterns":["!ba","[\\^b\\!\\","b*"]},
{"excluded":[],"included":["*/*[/^*/a","*?","-/^]/][b/bb",".a/ab/^a","[a]/a\nb","]^-/a/a","a^/b-/./a","ba/x y/[a]"],"patterns":["\\.-."]},
{"excluded":[],"included":["\n/a/*?\\"," */a/*?\\"," \\/\\","./  ?",".a/x.txt/^a/a.b","ba","c1","dir/a.b/é"],"patterns":["/a.b-b.a","?b*^"]},
{"excluded":["\\*a/[a"],"included":[" [././a",".  ","[a]/dir/c1","] ","a/a.b","file.go/[a]","x y/x y/ab"],"patterns":["*a^!","\\\\\\*a"]},
{"excluded":["a/a/ */\\"],"included":["??]/a","\\\\/.ab","b/.a","b/^a/a.b","ba/x.txt/keep","file.go/keep","keep/x.txt"],"patterns":["/.\\!-","b^?-]^*","a/*/ \\*/\\\\"]},
{"excluded":[".a/[/[^/a","a","a/a/[","a\\b","c1/file.go/ab"],"included":["--/]b","[a]","ba/file.go"],"patterns":["**/a*"]},
{"excluded":[],"included":["./b?",".a/a\nb",".a/ba/a\nb","a\n^/a/a","a.b/x.txt","ba/x.txt","file.go","x.txt/a*b/ba"],"patterns":["-.?^b*"]},
{"excluded":[],"included":["-]/]\n/?-",".a",".a/a","^a-/a","a","a\n/a/??","a\nb","a\\b/a.b"],"patterns":["!.a"]},
{"error":true,"patterns":["/[!*][b?b"]},
{"excluded":[],"included":["\n^/[b[","*b-","]/*/\n/b","]\\]/a[[","^","a./ b/a","a/ ","file.go/.a"],"patterns":["^/\\]*","!*/\\[b\\[","!??*-."]},
{"excluded":[],"included":["\nb "," [","*b/\na./]b","\\--/a/ [^","a","a/a/-?/[?","b\n*/a","dir/x y/^a/x.txt"],"patterns":["]?]^."]},
{"error":true,"patterns":["keep","\\?*^?-?["]},
{"error":true,"patterns":["^[.[!a^?"]},
{"error":true,"patterns":["!^*/a","b-\\a!["]},
{"excluded":[" [-/\\ a","* ^","?","[a]/a\nb/a","a/.","a\\b/x y","b/\\^[/a/ ","x y/.a/.a"],"included":[],"patterns":["/?","**","!\\* ^"]},
{"excluded":[],"included":["./^\\","?[ ","]\n/a/?/*\n-","b/\n/ /a.","x.txt/ab","x.txt/x y/x.txt","é","é/a\\b"],"patterns":["a"]},
{"excluded":["a\nb"],"included":["**","]]\\/*\\]/a/.^b","a","a/]/a/^a]","a/a","b*/^a/a","keep"],"patterns":["a\nb"]},
{"error":true,"patterns":["!a","!-\\][]?b"]},
{"error":true,"patterns":["/!^/a]-\\","."]},
{"excluded":["a","a/["],"included":[". [/*]?/-b/a","[a]","^a","a\\b","b"],"patterns":[".]!!/^a","a"]},
{"error":true,"patterns":["!\nb /**","b[./b?a^!","?\\/a/.?"]},
{"error":true,"patterns":["^/?","a/.*","[/!-"]},
{"error":true,"patterns":["!\\?^]-aa","\\.b[.-b","/].!a^\\"]},
{"excluded":["c1","c1/ba/é"],"included":["-?]/b/?[/[","[","[a]/a\\b/keep","^--/a/[.","a/x y","x y"],"patterns":["^","a..?!-?-","c1"]},
{"excluded":[],"included":["\n*^/a","]/b\\^","a/\n","a/\\/a/a","a/a]/^","a/b","ab","b/.a/x y/a"],"patterns":["\\]!."]},
{"excluded":[],"included":[" b-/] ","*ba/a/[bb/--","-/\\^ /a","-\\\n","[a]","\\","a\nb/.a/b","a/*?-/]"],"patterns":["*.-b"]},
{"excluded":[],"included":[" - /\\a/\n"," \\^",".\na/[\\/a/ ^a","\\?/[\n/a","a\\b/x y/a*b","file.go/a*b/c1/file.go","x.txt/x.txt/x y","é/keep/a.b/a\\b"],"patterns":["a?","-^","]"]},
{"excluded":[],"included":["a","a\nb/a\nb","a/\\\n","a/a/b[/*bb","a\\b","ab/keep","b","file.go"],"patterns":["/\\?/"]},
{"excluded":["a"],"included":["./b?/\n\n /\n\n\\",".a/^a/a*b","[./[/\n","b-?/[/ -?","ba/.a/keep/a*b","file.go/x.txt/ba","x y/a.b/a.b"],"patterns":["a","].","a]"]},
{"excluded":["a.b/ab/ba","a/a/?^"],"included":["\n\\*/\n/a/.^\\","]]/\\a\n","a/./-","b/é/é","bb","x y"],"patterns":["*/a*","???\\\\-","a.b"]},
{"error":true,"patterns":["[//","!*?-]^","*/*!?[^!"]},
{"excluded":[".a/b"],"included":["\\^","]\n\n","^a","a","a^*/./[/a","b/c1"],"patterns":[".a"]},
{"excluded":["dir/keep"],"included":["*/?./[/\\]","[../[-/b?/\\\\","\\^ /b^","]/^\\/ .[/b.","]^/[a./b\\a/^","^a/a.b","é/.a/keep"],"patterns":["-.","d?r"]},
{"error":true,"patterns":["^..a.!!!?","\\a\\^!/","[ab"]},
{"excluded":["^/a/ /a"],"included":["*]?",".\n /?b-/a/*.?","]","^a/*/a","a","b","x.txt"],"patterns":["^^-^b","**/a/**/a*"]},
{"excluded":[".\na",".\\./** ",".a/.a/ba/keep","[a]/b/ab/ab","\\?/?","ab","ba/x y/c1","x.txt"],"included":[],"patterns":["**/*"]},
{"excluded":["b/^/a/*^\\"],"included":["**/ a/a","-/ ^","a","a/*/a","a/[^?","a\\/ /[\n /\\\\b","x.txt/.a"],"patterns":["b","!!"]},
{"error":true,"patterns":["..^].\\"]},
{"excluded":["a\nb/a.b/é","a/./a"],"included":[".a","?/[/a","\\/ ","^b","x y","é/a\nb/b/é"],"patterns":["a*/."]},
{"excluded":[],"included":["*/?-/.b./a","./\\?/*",".??/]",".a/a/a.b/x y","a","a/?/a/]\\","a\\b/.a","ba/file.go/.a"],"patterns":["a!!.]^.","."]},
{"excluded":[],"included":["-[/a",".a/a\\b/a*b","^[/^..","a/a/\\*/ a\\","a/é","dir","file.go","keep/a*b"],"patterns":["!.-^^"]},
{"error":true,"patterns":["^]]!][\\.\\","]?.^[*\\a"]},
{"excluded":[" \\/a/a","-?./.\\",".[-","]\\\n/\nb/[/a","a","a/.","aa[/^*"],"included":[],"patterns":["*/a?-/!","*"]},
{"excluded":["\n","]]?","^/a/\\\n","a*b","a/?? / b/* ","a/a/a","c1"],"included":[],"patterns":["*"]},
{"excluded":[],"included":["*a?",".a/]/a","]\\ ","a/ ]./^.","a/?./a","a/a/[a\n/\\","ba/a/é/keep","x.txt/^a"],"patterns":["b]-","!-/?"]},
{"excluded":["-"],"included":[" "," / /^/ .","[a]/[a]/[a]","a/]]/^/a","a/a/.b./a","ab/keep","file.go/é"],"patterns":[" / /**/ .","^","-*"]},
{"excluded":["a","b"],"included":[".a/a\nb","[a]/file.go","^ \n","^?]/[/ ]","a\nb/a","a\nb/a\nb/^a"],"patterns":["^-","?"]},
{"error":true,"patterns":["?b/","]-.[b["]},
{"error":true,"patterns":["//a./**","]ab","[]\\]-/*b"]},
{"error":true,"patterns":["*/\\[/-*/\\\\","[a]\\b/a?b","?\\^/\\/"]},
{"error":true,"patterns":["aa^?b[b","^!"]},
{"excluded":[".a/file.go/a\nb/keep"],"included":["\n\n ","-a^/-","?^/*\\","^.?/a","^/\n ","a","a/\\?"],"patterns":["*/file.go",".?/**/a\nb/*"]},
{"excluded":[],"included":["\n-^/[**/-.-/[","./\nba/a/*b^","[","\\\n/ .","a\nb/x y/[a]","a\\b/a.b","ba","x.txt/ab"],"patterns":["\\[!-\\!*","**!--"]},
{"excluded":[],"included":[" ./ /]^/]]]","[a]/a*b","a*b/b","a^^/a/?-","b/keep","b]/a/a","c1/a.b/^a/^a","x.txt"],"patterns":["*!\\^","!*/a/a","aa!/]^b!/"]},
{"error":true,"patterns":["/a?/["]},
{"error":true,"patterns":[".\\"]},
{"excluded":[],"included":["[]*/^/\n","a/-/./a","a/a*b/x y/x.txt","a/a?b/.","ab*/\\/]","b/ab/x.txt","x y/b/a.b"],"patterns":["a*/-/./a"]},
{"error":true,"patterns":["*\\*","^a\\","]-?-\\"]},
{"error":true,"patterns":["/\\**-][","]a*]a\\",".-[/?"]},
{"error":true,"patterns":["a[.","!-.?-","!a^/*?\\"]},
{"excluded":[],"included":["*","- */]\\/a","-?/a?/a/[*a","\\^-/a","^^/ /b\\*","dir/^a","keep","x.txt/c1"],"patterns":[".a-.!]\\!]","/","]*]-??-"]},
{"error":true,"patterns":["b.?a!","\\"]},
{"excluded":["]bb/\n]/?a]"],"included":["\n/-[/[ /\\b","*/a/*/a",".]/ [/a/a\\?","^/a/ ^","a\nb/keep/b","a/\\b./^- ","b/x y/a\\b/a"],"patterns":["!^/a/*","]b?/\n?","!b"]},
{"excluded":[],"included":["a/aa","a\\b/a.b/file.go/a\nb","c1/a/a.b/x.txt","c1/é/ab","dir/ab/^a/a","dir/dir/a\nb","file.go/^a/ba","keep/x y"],"patterns":["!*","-]!]*?^-"]},
{"excluded":[],"included":["*-?/?\\-/*","--/?[",".a/a*b","a","a*b/b/keep/dir","a/a.?","x y/a","x y/a*b"],"patterns":["-!^*b"]},
{"excluded":["c1"],"included":["^b/[?","b","b/é","dir","dir/keep","x y/b/b","é/.a/c1"],"patterns":["c1","!^./^b."]},
{"error":true,"patterns":["].^?\\","b-[\\*-/","a*"]},
{"error":true,"patterns":["*","["]},
{"excluded":[],"included":["[a]","]/*\nb/[^/a","a","a\nb/c1/ab/é","a\nb/x.txt","a*b/dir","dir/ba/x y/[a]"],"patterns":["]-**"]},
{"excluded":[],"included":["*/^/**","]/.?","a","a/a\n?/a/*\\","ab/a.b","b/b","keep","keep/x y/a*b/.a"],"patterns":["]aa-a]"]},
{"excluded":["?/]/a"],"included":["\n]\n/-b./a",".a/é/a.b/[a]","a*b/b/x.txt/ab","a*b/x.txt/x y/[a]","a/\\.","b/x.txt/x y/dir","x y/ba/x y/file.go"],"patterns":["!\n]?/*","\\?/]","!x y/ba"]},
{"excluded":[],"included":["?a/\\","[a]","]","a/\\?","a/ab/é/a.b","a\\b","c1","x.txt/x y/b"],"patterns":["/]!"]},
{"error":true,"patterns":["^\\^.].!!","-/b!..","[!/!!-*"]},
{"error":true,"patterns":["!]]][/"]},
{"error":true,"patterns":["*\\*^bb*","?\\?!^\\/","][]!/-?["]},
{"error":true,"patterns":["b","^[??]\\]","[[a!^b"]},
{"error":true,"patterns":["!","/"]},
{"error":true,"patterns":["]/[*ba//!","!**","]a!^]!"]},
{"excluded":["?/a/\\b-/\n?","[a]/a*b/a/keep","^a/c1/x y/^a","a*b/x.txt","a/a\\b","ba/keep/é/x.txt","dir/.a/a.b/[a]","file.go/.a/a*b"],"included":[],"patterns":["a!.-a^/","!!^-?a-","*"]},
{"error":true,"patterns":["?![[[?*","[?"]},
{"excluded":[],"included":["-/a/]a","a.b/.a","a/^]?/ a?/[]","a\\b/file.go/a*b/ab","b","b a/a].","keep/keep"],"patterns":["a??\\a[[]?"]},
{"excluded":["a*b","a\\b/.a","b/ab/[a]"],"included":[" /a/[/^","-/b/\n-/a","-[/a","b^ /[ ^/]]]","x.txt/a*b/.a/x.txt"],"patterns":["**/ab","a*"]},
{"excluded":[],"included":["\n /\n-"," ./]/?a",".b/]^b","[*^/a/a/*  ","^a","ab/a","ba/c1","c1/file.go/a\\b"],"patterns":["\\a?/a/b"]},
{"excluded":["a*b/a*b/x.txt"],"included":["\n*/.^/*^/[a",".a","[ab/^/a","a","a/]?\n/\\a*/?.","é","é/a/dir"],"patterns":["\\^]a*-^*b","a\\*b/*"]},
{"excluded":["a]./a/\\-["],"included":["\naa/^*./ \\/-","\\","^a/ba/é","^a/file.go/x y/^a","a*b/.a/.a","a/^b/b","c1/dir/file.go/x y"],"patterns":["/b^\\?!-*^","a]."]},
{"excluded":[],"included":["* \n/b?*/a/ .","*a\n/?*","^a/a*b","a/-/a/a","b\n/a","c1","file.go/dir"],"patterns":["]^"]},
{"error":true,"patterns":["b![b.\\","*/b/[^]a/file.go"]},
{"error":true,"patterns":["ba","[?*bb]","["]},
{"error":true,"patterns":[".[*]*","[*!./","./-[//-!\\"]},
{"excluded":["ab/ba"],"included":["\n[/?\n?/[","^ba/ ^","a","b/ab/ab","dir/.a/a\\b","dir/a/a*b/[a]"],"patterns":["ab/ba"]},
{"excluded":["**-/?-"],"included":["?","?/?./a","[a]","\\?/bb","a\nb","b/\n.a/  \n","c1"],"patterns":["\\*\\*-"]},
{"excluded":[],"included":[" ]^/[./[","**","./a","[b/[\\^/a^[","\\.\n","^a","a/x y/dir/^a","b-/\\-\n/?a["],"patterns":["-\\!/"]},
{"excluded":["b"],"included":["**/ ?\n","-^]/a","a/a/a","a/b/-","keep/x.txt","x.txt/b/file.go","x.txt/é/^a"],"patterns":["*b"]},
{"excluded":["a/b/a/^[[","c1/x y/x y/ba"],"included":["?[/ ?","[a]/.a/b","a","a/[/?]?","a/a/ / ","é/a"],"patterns":["*/b/a","!^^.ab","c?"]},
{"excluded":["keep"],"included":["*/a/\n[^","-","[-/\n.-/a/].","^a/ab/c1","a/a^/a.-/?]?","a/dir/file.go","x.txt/.a"],"patterns":["!b","[k]eep"]},
{"excluded":[],"included":["*]/\n?","../b\nb/./\n",".[^","^a","a\nb/dir","a.b/a\\b/c1/a","a/a?b/a","a?/a/b*^/a"],"patterns":["]","^/"]},
{"excluded":["\n/a",".a/file.go","[\n./b \n","\\/^-","a/?]","a?/a/?","b/ba/.a/c1","keep/é/.a/b"],"included":[],"patterns":["/?..a","*"]},
{"excluded":[],"included":["\na\\","./bb/\n / b?","[a]/keep","]","^a/x y/c1/a*b","a.b","ba/c1/^a/^a","ba/x y"],"patterns":["/bb*]]/"]},
{"excluded":["?/.\nb/-*/^","\\","a/ \n[/\n^]","a/a","a/bb","a/file.go/x y","b/[*","keep"],"included":[],"patterns":["**/**","\\a]","-??/!.*!"]},
{"excluded":["-]/a","-a-/a/^","?[[/[ -/a","a","a/a^/-a","ba/a.b","dir/^a/x.txt/b","x.txt"],"included":[],"patterns":["!-a-/**/^","*"]},
{"error":true,"patterns":["-b-!","["]},
{"excluded":["[a]/ab/x.txt/a\\b","é/file.go/a*b"],"included":["-?\n/[?/^/-[^","?\\/ ","a","ba/a.b/c1","dir/^a","é/file.go"],"patterns":["é*/file.go/*","?.","\\[a]"]},
{"excluded":["a*b/file.go/.a/a.b","a/?/\\.","a/[-/^b"],"included":["*^\\/--b","[a]/.a/b","a","bb"],"patterns":["a*/?*/**"]},
{"excluded":[],"included":[".a/a\nb","[^\\/-","\\","^a/x.txt/a\\b/a\nb","a/a","a/dir/a.b/é","b./^/a"],"patterns":["]!??\\a^^"]},
{"error":true,"patterns":["*?-!*!?","]a\\?/[?"]},
{"error":true,"patterns":["ab*\\b\\","a","!*"]},
{"error":true,"patterns":["-[a--"]},
{"error":true,"patterns":["]["]},
{"excluded":["?"],"included":[" /a/?a/b","**?/^/[\n]/\\","a/ /*/a","a/]-/?","a/a","a\\b/a.b/a\\b","ba/a\nb/ba"],"patterns":["\\?","*a\\a"]},
{"error":true,"patterns":["/[]^*"]},
{"error":true,"patterns":["[\\-b"]},
{"excluded":[],"included":["\n-/^?]/[","[a]","\\\\/^.","^a/a\nb","a^/? ","b/^a","dir","x y/b/x.txt/file.go"],"patterns":["!*"]},
{"excluded":[],"included":["*[]/*.[/]?\\","-/.\\/- .","\\/\n","a\nb","a*b","a/b[[/a","ba/[a]/ab/é","file.go"],"patterns":["*-a"]},
{"error":true,"patterns":["--/","!a[-/."]},
{"error":true,"patterns":["\\?[]*?"]},
{"error":true,"patterns":["[bbb[b.*?","/[aa/!]]","aa..*]^"]},
{"excluded":["file.go/dir/ba"],"included":["\\","]\n?","a\nb/c1/ba/keep","a.b","ab","keep/a.b","x y"],"patterns":["f?le.go/dir/**"]},
{"excluded":["a","a/ab"],"included":["*.^/\\/a","[a]/x.txt/é","^?/a","b","x.txt/ba/keep/a\\b"],"patterns":["a*","!b"]},
{"excluded":["a/ba-/b]"],"included":[" /a","*?/\n]","?b/*","[-./\n/-*\\","[a]/ab/keep","]-./\n**","file.go"],"patterns":["a/","^","?*..."]},
{"excluded":["a\nb/x y/keep/a"],"included":["-^","./-^b","?a-/ ","\\\\/ ]/?-","a.b","a.b/b/a.b","keep"],"patterns":["a\nb"]},
{"error":true,"patterns":["b^^][?!b!"]},
{"excluded":["[a]","\\","^?[","^a/dir/a/file.go","a","a\nb/.a","a/a","file.go/x y/a*b"],"included":[],"patterns":["!**","*","b]!^*"]},
{"excluded":["^/[ "],"included":["*b]/*/\n\\","]]/\n../a/a","a\nb/ab","a/ **/a/a .","b/a/a","c1/dir/[a]/^a","x.txt/dir/a.b/file.go"],"patterns":["^/."]},
{"excluded":[],"included":["?\\\\/bb[","[a]/a\\b/c1","^/.\\","^a/a\\b/file.go/a*b","a\nb","a/file.go/^a/a.b","dir","dir/é/dir"],"patterns":["^?^."]},
{"excluded":["\n][/b\n"," ]*/./a","^a/x y","a","dir/^a/ab","dir/keep/keep/é","file.go/keep/a*b"],"included":[],"patterns":["^?**"]},
{"excluded":["-/\\/]-^"],"included":["]/a/\nb.","a /.^","a*b/^a/[a]","a/a/[/a","a\\b/^a","c1/[a]","x.txt/ab/file.go/.a"],"patterns":["\\a","-"]},
{"excluded":[],"included":["\\[?/\\/a/]","^a/.a/b","a*b/file.go/x y/file.go","a/]a/^/a","a/a","a/a\\b/a.b/a*b","b/a.b","x.txt/keep/ba"],"patterns":["^"]},
{"error":true,"patterns":["!","a!--*!!^"]},
{"excluded":["-/\\/a/a"],"included":["\n[/?","a/a/a-","a\\b/file.go","b-.","dir/^a/ba/^a","keep/ab","keep/keep/keep/dir"],"patterns":["-"]},
{"excluded":["a\nb","a\nb/ba/é"],"included":["-*]/a]/^/?","-[","[\\-/b","^ /a","a","x.txt"],"patterns":["-!","a\nb"]},
{"error":true,"patterns":["\\a/^","\\"]},
{"error":true,"patterns":["!.\\/","bb?[b*b[","!]\\\\?!.^!"]},
{"error":true,"patterns":["-!*]a?*/!","]\\b[[^*!","\\"]}
], "files": [
{"lines":["../up","!","!/"],"text":"﻿../up\n! \n!/\n"},
{"lines":["a/b"],"text":"﻿/a/b/\n"},
{"lines":["../up","here","a","﻿z","﻿z"],"text":"../up\n./here/.\n# comment\na\r\n﻿z\n﻿z"},
{"lines":["*.go","!"],"text":"\n   \n\t*.go\t\n! \n"},
{"lines":["!x/y","a/b","../up","# not a comment"],"text":"! /x//y\n/a/b/\n../up\n  # not a comment\n"},
{"lines":["a/b"],"text":"﻿/a/b/"},
{"lines":["!","*.go","a","a","!","/"],"text":"﻿! \n\t*.go\t\na\r\na\r\n!\n/\n"},
{"lines":["/"],"text":"﻿/"},
{"lines":["../up"],"text":"../up\n   \n"},
{"lines":["!","a","a","!x/y","../up"],"text":"﻿! \na\na\n! /x//y\n\n../up\n"},
{"lines":["a","!/","﻿z","!!a"],"text":"a\n!/\n﻿z\n!!a\n"},
{"lines":["# not a comment","﻿z"],"text":"  # not a comment\n﻿z"},
{"lines":["a"],"text":"﻿   \na\r"},
{"lines":["﻿z","!","/"],"text":"﻿﻿z\n! \n/\n"},
{"lines":["a","a","﻿z"],"text":"﻿a\na\r\n# comment\n﻿z\n   "},
{"lines":["# not a comment","a","# not a comment","!/"],"text":"  # not a comment\na\r\n  # not a comment\n!/"},
{"lines":["/"],"text":"﻿/"},
{"lines":["﻿z","a","!"],"text":"﻿# comment\n   \n﻿z\na\r\n! "},
{"lines":["a/b","!/","a","here"],"text":"\n/a/b/\n!/\na\n./here/.\n"},
{"lines":["# not a comment"],"text":"  # not a comment"},
{"lines":["here","﻿z","﻿z","﻿z"],"text":"./here/.\n﻿z\n﻿z\n﻿z\n\n"},
{"lines":["!"],"text":"﻿!\n"},
{"lines":["!","a","*.go","!"],"text":"!\na\n\t*.go\t\n! "},
{"lines":["/","!/","*.go","!","﻿z","/"],"text":"﻿/\n!/\n\t*.go\t\n! \n﻿z\n/\n"},
{"lines":["*.go","/","../up","!!a","﻿z"],"text":"\t*.go\t\n/\n../up\n!!a\n﻿z"},
{"lines":["!","!/"],"text":"﻿!\n!/\n   \n"},
{"lines":["!x/y","!"],"text":"﻿! /x//y\n!"},
{"lines":["a/b","﻿z"],"text":"﻿/a/b/\n﻿z"},
{"lines":["a/b","!"],"text":"/a/b/\n!\n"},
{"lines":["*.go","a/b","!","../up"],"text":"\t*.go\t\n/a/b/\n!\n../up\n"},
{"lines":["here"],"text":"./here/."},
{"lines":["!","a","/","!/","﻿z"],"text":"! \na\n/\n!/\n﻿z\n"},
{"lines":["!","here","here"],"text":"! \n# comment\n./here/.\n# comment\n./here/.\n"},
{"lines":["!"],"text":"! \n"},
{"lines":["*.go","/"],"text":"\t*.go\t\n/"},
{"lines":["!!a","a","!"],"text":"!!a\na\n! "},
{"lines":["a","here","a"],"text":"﻿a\r\n./here/.\n\na\n\n"},
{"lines":["!","!","../up"],"text":"!\n   \n! \n   \n../up"},
{"lines":["!","a","!x/y","!/"],"text":"!\na\r\n# comment\n! /x//y\n!/"},
{"lines":["../up"],"text":"\n../up\n"}
]}
"###;
