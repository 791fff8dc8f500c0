//! `COPY --parents` sources, as BuildKit's Dockerfile frontend lowers them.
//!
//! Each source is split at its first `/./` into a pivot directory (the root
//! of the context or stage when there is none) and an include pattern
//! relative to the pivot. Everything below the pivot that the pattern
//! matches (a directory with its whole subtree) is copied to the destination
//! under its path relative to the pivot, and the directories between the
//! pivot and a match are recreated with their source metadata, as fsutil's
//! copy with include patterns does.
//!
//! The pattern has the syntax of Docker's pattern matcher (the one
//! `.dockerignore` uses): `*`, `?` and `[...]` stay within one path element,
//! `**` spans any number of directories, and a pattern matching a directory
//! takes everything below it. A source matching nothing is accepted unless
//! neither its pivot nor its pattern has wildcards (BuildKit's
//! `RequiredPaths`): then the path must exist.

use std::collections::HashMap;

use super::join;
use crate::dockerignore::{DockerIgnore, DockerIgnoreError};
use crate::gopath::clean_relative;
use crate::gopath::glob::contains_wildcards;

/// One `--parents` source, split and compiled.
#[derive(Debug)]
pub(super) struct ParentsSource {
    /// The pivot directory as written before `/./` (cleaned, may hold
    /// wildcards); `""` for the root.
    pub pivot: String,
    /// The include pattern, cleaned and relative to the pivot; `""` takes
    /// everything below the pivot.
    pub pattern: String,
    matcher: Option<DockerIgnore>,
}

/// One entry to copy: an index into the listing given to [`select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pick {
    pub idx: usize,
    /// The pattern matches the entry and not its parent directory: the
    /// entry stands for its whole subtree (a cache key covers it whole).
    pub top: bool,
    /// Matched by the pattern (itself or through a parent); `false` for a
    /// directory recreated only because something below it matched.
    pub matched: bool,
}

impl ParentsSource {
    /// Splits `source` at its first `/./` and compiles the pattern.
    pub(super) fn parse(source: &str) -> Result<ParentsSource, DockerIgnoreError> {
        let (pivot, pattern) = match source.split_once("/./") {
            Some((pivot, pattern)) => (clean_relative(pivot), clean_relative(pattern)),
            None => (String::new(), clean_relative(source)),
        };
        let matcher = if pattern.is_empty() {
            None
        } else {
            Some(DockerIgnore::from_patterns(&[pattern.as_str()])?)
        };
        Ok(ParentsSource {
            pivot,
            pattern,
            matcher,
        })
    }

    /// The path (relative to the root) that must exist: set when neither the
    /// pivot nor the pattern has wildcards.
    pub(super) fn required(&self) -> Option<String> {
        (!contains_wildcards(&self.pivot) && !contains_wildcards(&self.pattern))
            .then(|| join(&self.pivot, &self.pattern))
    }

    /// Whether the pivot has wildcards (then it may match several
    /// directories, or none).
    pub(super) fn pivot_has_wildcards(&self) -> bool {
        contains_wildcards(&self.pivot)
    }

    /// Whether the pattern matches `rel` (relative to the pivot) or one of
    /// its parent directories.
    pub(super) fn matches(&self, rel: &str) -> bool {
        self.matcher
            .as_ref()
            .is_none_or(|matcher| matcher.is_excluded(rel))
    }
}

/// What to copy from one pivot: `entries` are its descendants as `(path
/// relative to the pivot, is a directory)`, parents before children. The
/// result lists, in that order, every entry the pattern matches and
/// `excluded` (`--exclude`) lets through, each preceded by the directories
/// between the pivot and it that are not listed yet.
pub(super) fn select(
    entries: &[(&str, bool)],
    source: &ParentsSource,
    excluded: impl Fn(&str, bool) -> bool,
) -> Vec<Pick> {
    let dirs: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, (_, is_dir))| *is_dir)
        .map(|(idx, (rel, _))| (*rel, idx))
        .collect();
    let mut picked = vec![false; entries.len()];
    let mut out = Vec::new();
    for (idx, &(rel, is_dir)) in entries.iter().enumerate() {
        if rel.is_empty() || !source.matches(rel) || excluded(rel, is_dir) {
            continue;
        }
        let parent = rel.rfind('/').map_or("", |at| &rel[..at]);
        // Ancestors first, outermost first.
        let mut at = 0;
        while let Some(pos) = rel[at..].find('/') {
            let ancestor = &rel[..at + pos];
            at += pos + 1;
            if let Some(&dir) = dirs.get(ancestor)
                && !picked[dir]
            {
                picked[dir] = true;
                out.push(Pick {
                    idx: dir,
                    top: false,
                    matched: false,
                });
            }
        }
        if !picked[idx] {
            picked[idx] = true;
            out.push(Pick {
                idx,
                top: parent.is_empty() || !source.matches(parent),
                matched: true,
            });
        }
    }
    out
}

/// `path` as a source that names exactly it: each wildcard character (and
/// `\`) escaped for Go's `filepath.Match`.
pub(super) fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(source: &str, entries: &[(&str, bool)]) -> Vec<(String, bool)> {
        let source = ParentsSource::parse(source).unwrap();
        select(entries, &source, |_, _| false)
            .into_iter()
            .map(|p| (entries[p.idx].0.to_owned(), p.top))
            .collect()
    }

    const TREE: &[(&str, bool)] = &[
        ("a", true),
        ("a/b", true),
        ("a/b/c.txt", false),
        ("a/b/d.md", false),
        ("a/b/deep", true),
        ("a/b/deep/e.txt", false),
        ("a/top.txt", false),
        ("z.txt", false),
    ];

    #[test]
    fn pivot_is_split_at_the_first_dot_component() {
        let s = ParentsSource::parse("a/./b/c.txt").unwrap();
        assert_eq!((s.pivot.as_str(), s.pattern.as_str()), ("a", "b/c.txt"));
        let s = ParentsSource::parse("./x/**/*.txt").unwrap();
        assert_eq!((s.pivot.as_str(), s.pattern.as_str()), ("", "x/**/*.txt"));
        let s = ParentsSource::parse("/a/./b/./c").unwrap();
        assert_eq!((s.pivot.as_str(), s.pattern.as_str()), ("a", "b/c"));
        let s = ParentsSource::parse("../../a/b").unwrap();
        assert_eq!((s.pivot.as_str(), s.pattern.as_str()), ("", "a/b"));
        assert_eq!(s.required().as_deref(), Some("a/b"));
        assert_eq!(ParentsSource::parse("a/*/./b").unwrap().required(), None);
        assert_eq!(
            ParentsSource::parse("a/./b\\*").unwrap().required(),
            Some("a/b\\*".into())
        );
    }

    #[test]
    fn double_star_spans_directories_and_single_star_does_not() {
        let txt = picks("a/**/*.txt", TREE);
        assert_eq!(
            txt,
            [
                ("a".to_owned(), false),
                ("a/b".to_owned(), false),
                ("a/b/c.txt".to_owned(), true),
                ("a/b/deep".to_owned(), false),
                ("a/b/deep/e.txt".to_owned(), true),
                ("a/top.txt".to_owned(), true),
            ]
        );
        let one = picks("a/*/*.txt", TREE);
        let names: Vec<&str> = one.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c.txt"]);
    }

    #[test]
    fn a_matched_directory_brings_its_subtree() {
        let got = picks("a/b", TREE);
        let names: Vec<(&str, bool)> = got.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(
            names,
            [
                ("a", false),
                ("a/b", true),
                ("a/b/c.txt", false),
                ("a/b/d.md", false),
                ("a/b/deep", false),
                ("a/b/deep/e.txt", false),
            ]
        );
        assert!(picks("nothing/**", TREE).is_empty());
        assert_eq!(picks("", TREE).len(), TREE.len());
    }

    #[test]
    fn excluded_entries_and_their_subtrees_are_skipped() {
        let source = ParentsSource::parse("a").unwrap();
        let got = select(TREE, &source, |rel, _| rel.starts_with("a/b/deep"));
        let names: Vec<&str> = got.iter().map(|p| TREE[p.idx].0).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c.txt", "a/b/d.md", "a/top.txt"]);
    }

    #[test]
    fn wildcards_are_told_as_go_does() {
        assert!(contains_wildcards("a/*.txt"));
        assert!(contains_wildcards("a[0-9]"));
        assert!(!contains_wildcards("a\\*b"));
        assert!(!contains_wildcards("plain/path"));
        assert_eq!(escape("a*b/[c]"), "a\\*b/\\[c]");
    }
}
