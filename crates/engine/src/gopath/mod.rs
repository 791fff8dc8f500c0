//! Go's path semantics, the one home of them in buildr: BuildKit and docker
//! are Go, and where a Dockerfile's paths and patterns mean what Go's
//! `path/filepath` says, buildr answers the same.
//!
//! - [`clean`] and [`dir`]: `filepath.Clean` and `Dir` on Unix (ignore
//!   patterns and the paths they match); [`clean_relative`]: a path inside
//!   a root, `..` clamped at it (COPY sources and destinations, mounts).
//! - [`glob`]: `filepath.Match` for one element, and which elements are
//!   patterns.

pub(crate) mod glob;

/// Go's `filepath.Clean`: the shortest equivalent path by pure lexical
/// processing (`//` -> `/`, `.` elements dropped, `x/..` removed, `..` at the
/// root dropped, no trailing `/`); `.` for an empty result.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let joined = clean_parts(path, rooted).join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// A path inside a root, relative to it: `clean("/" + path)` without the
/// leading `/` (no `.` elements, no trailing `/`, `..` clamped at the root;
/// `""` for the root itself).
pub(crate) fn clean_relative(path: &str) -> String {
    clean_parts(path, true).join("/")
}

/// The elements of `path` cleaned as Go does; `rooted` drops `..` at the
/// top instead of keeping it.
fn clean_parts(path: &str, rooted: bool) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    parts
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned.
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(idx) => clean(&path[..=idx]),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{clean, clean_relative, dir};

    #[test]
    fn clean_matches_go() {
        // From Go's path/filepath cleantests.
        let cases = [
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("", "."),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/.", "/"),
            ("/", "/"),
            ("////", "/"),
            ("/foo", "/"),
            ("x/", "x"),
            ("abc", "."),
            ("abc/def", "abc"),
            ("a/b/.x", "a/b"),
            ("a/b/c.", "a/b"),
            ("a/b/c.x", "a/b"),
            ("a//b", "a"),
        ];
        for (input, want) in cases {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }

    #[test]
    fn clean_relative_clamps_at_the_root() {
        for (path, want) in [
            ("", ""),
            ("/", ""),
            ("a/b/../c/", "a/c"),
            ("/a/./b//c", "a/b/c"),
            ("../../x", "x"),
            ("a/../..", ""),
            ("./a/..", ""),
        ] {
            assert_eq!(clean_relative(path), want, "{path:?}");
            assert_eq!(clean(&format!("/{path}")), format!("/{want}"), "{path:?}");
        }
    }
}
