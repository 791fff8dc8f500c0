//! Docker's `.dockerignore`: which files of a build context are left out.
//!
//! The semantics are those of `docker build` (moby/patternmatcher and its
//! `ignorefile` reader), not gitignore's:
//!
//! - Lines starting with `#` are comments (only in the first column), blank
//!   lines are skipped, whitespace around a pattern is trimmed, a UTF-8 BOM
//!   on the first line is dropped.
//! - A leading `!` makes the pattern an exception that re-includes paths.
//! - Patterns are cleaned like Go's `filepath.Clean` (`a//b/./c/` ->
//!   `a/b/c`) and a leading `/` is dropped: every pattern is anchored at the
//!   context root, so `*.go` matches `main.go` but not `cmd/main.go`.
//! - Go's `filepath.Match` syntax (`*` and `?` never cross `/`, `[a-z]`,
//!   `[^a-z]`, `\` escapes) plus `**`, which matches any number of
//!   directories, none included.
//! - A pattern excludes a path when it matches the path or one of its parent
//!   directories; the last pattern that matches decides, so an exception after
//!   `dir` re-includes `dir/keep`.
//!
//! [`DockerIgnore`] holds the compiled patterns; [`DockerIgnore::decide`] tells
//! a context walker, for each path, whether to send it and whether an
//! excluded directory must still be entered because an exception may
//! re-include something below it.
//!
//! Two deliberate differences from docker, both about patterns docker itself
//! mishandles: constructs that docker's pattern-to-regex translation turns
//! into something else (`*` or `?` inside `[...]`, `[:` POSIX classes,
//! escapes such as `\b`, `\x41`, `\pL`) and reversed ranges such as `[z-a]`
//! (which make docker fail when it first matches) are rejected when the file
//! is parsed, naming the line; and matching follows docker's
//! `MatchesOrParentMatches` throughout, where BuildKit's incremental walker can
//! disagree for an include pattern repeated after an exception.

mod pattern;

use std::fmt;

use pattern::Pattern;
pub use pattern::PatternSyntax;

/// Docker's reader (a `bufio.Scanner`) fails on lines of 64 KiB or more.
const MAX_LINE_BYTES: usize = 64 * 1024 - 1;

/// A `.dockerignore` that cannot be used; each variant names file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerIgnoreError {
    /// A pattern that does not parse.
    #[error("{file}:{line}: syntax error in pattern `{pattern}`: {reason}")]
    Syntax {
        file: String,
        line: usize,
        pattern: String,
        reason: PatternSyntax,
    },
    /// A `!` with no pattern after it.
    #[error(
        "{file}:{line}: illegal exclusion pattern `!`: an exception needs a pattern after the `!`"
    )]
    EmptyException { file: String, line: usize },
    /// A line docker's reader refuses.
    #[error("{file}:{line}: line is {len} bytes long; docker reads at most {MAX_LINE_BYTES}")]
    LineTooLong {
        file: String,
        line: usize,
        len: usize,
    },
}

/// One pattern line of an ignore file, as docker's reader returns it:
/// trimmed, cleaned, without a leading `/`, `!` kept in front of exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub pattern: String,
}

/// One compiled rule of a [`DockerIgnore`].
#[derive(Debug, Clone)]
pub struct IgnoreRule {
    line: usize,
    text: String,
    exception: bool,
    pattern: Pattern,
}

impl IgnoreRule {
    /// The cleaned pattern, without the `!` of an exception.
    pub fn pattern(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception, which re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// The 1-based line (or list position) the rule came from.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Docker's `MatchesOrParentMatches` for one pattern: the pattern matches
    /// `path` or one of the directories in `parent` (`Dir(path)`, if not `.`).
    fn applies_to(&self, path: &str, parent: Option<&str>) -> bool {
        self.pattern.matches(path)
            || parent.is_some_and(|dir| self.pattern.matches_a_prefix_dir(dir))
    }
}

impl fmt::Display for IgnoreRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exception {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// What a context walker does with one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the path (for a directory: and walk into it).
    Include,
    /// Leave the path out; for a directory, skip everything below it.
    Exclude,
    /// A directory that is excluded, but an exception may re-include
    /// something below it: walk into it, and send it only as the parent of
    /// something included, as docker does.
    ExcludeButDescend,
}

/// The compiled patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<IgnoreRule>,
    has_exceptions: bool,
}

impl DockerIgnore {
    /// Parses the text of an ignore file; `file_name` is only used in errors.
    pub fn parse(file_name: &str, text: &str) -> Result<Self, DockerIgnoreError> {
        let lines = Self::read_lines(file_name, text)?;
        Self::compile(
            file_name,
            lines.iter().map(|l| (l.line, l.pattern.as_str())),
        )
    }

    /// Builds a matcher from patterns given one by one (docker's
    /// `patternmatcher.New`, e.g. exclude patterns from an API caller); errors
    /// name the pattern's 1-based position as its line.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, DockerIgnoreError> {
        Self::compile(
            "<patterns>",
            patterns
                .iter()
                .enumerate()
                .map(|(idx, p)| (idx + 1, p.as_ref())),
        )
    }

    /// Docker's `ignorefile.ReadAll`: the pattern lines of an ignore file,
    /// before compilation (a lone `!` is returned, and rejected only by
    /// [`DockerIgnore::parse`]).
    pub fn read_lines(file_name: &str, text: &str) -> Result<Vec<IgnoreLine>, DockerIgnoreError> {
        let mut out = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rest = text;
        let mut line = 0;
        while !rest.is_empty() {
            let (raw, after) = rest.split_once('\n').unwrap_or((rest, ""));
            rest = after;
            line += 1;
            if raw.len() > MAX_LINE_BYTES {
                return Err(DockerIgnoreError::LineTooLong {
                    file: file_name.to_owned(),
                    line,
                    len: raw.len(),
                });
            }
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = crate::gopath::clean(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            if exception {
                cleaned.insert(0, '!');
            }
            out.push(IgnoreLine {
                line,
                pattern: cleaned,
            });
        }
        Ok(out)
    }

    fn compile<'a>(
        file_name: &str,
        patterns: impl Iterator<Item = (usize, &'a str)>,
    ) -> Result<Self, DockerIgnoreError> {
        let mut rules = Vec::new();
        for (line, raw) in patterns {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = crate::gopath::clean(trimmed);
            let (exception, text) = match cleaned.strip_prefix('!') {
                Some("") => {
                    return Err(DockerIgnoreError::EmptyException {
                        file: file_name.to_owned(),
                        line,
                    });
                }
                Some(rest) => (true, rest.to_owned()),
                None => (false, cleaned),
            };
            let pattern = Pattern::compile(&text).map_err(|reason| DockerIgnoreError::Syntax {
                file: file_name.to_owned(),
                line,
                pattern: raw.to_owned(),
                reason,
            })?;
            rules.push(IgnoreRule {
                line,
                text,
                exception,
                pattern,
            });
        }
        let has_exceptions = rules.iter().any(|rule| rule.exception);
        Ok(Self {
            rules,
            has_exceptions,
        })
    }

    /// The compiled rules, in file order.
    pub fn rules(&self) -> &[IgnoreRule] {
        &self.rules
    }

    /// Whether no pattern was given: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule is a `!` exception (docker's `Exclusions()`).
    pub fn has_exceptions(&self) -> bool {
        self.has_exceptions
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated, as a
    /// walker produces it) is left out of the build context. The last rule
    /// matching the path or one of its parent directories decides. The
    /// context root (`""` or `.`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if self.rules.is_empty() || rel_path.is_empty() || rel_path == "." {
            return false;
        }
        let parent = crate::gopath::dir(rel_path);
        let parent = (parent != ".").then_some(parent.as_str());
        self.rules
            .iter()
            .rev()
            .find(|rule| rule.applies_to(rel_path, parent))
            .is_some_and(|rule| !rule.exception)
    }

    /// Whether some path strictly below the directory `rel_dir` could be
    /// included by an exception. When this is false for an excluded
    /// directory, a walker may skip the directory's whole subtree: nothing in
    /// it can come back. May answer true too often, never too rarely.
    pub fn may_contain_exceptions(&self, rel_dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        if rel_dir.is_empty() || rel_dir == "." {
            return true;
        }
        let probe = format!("{rel_dir}/");
        let parent = crate::gopath::dir(rel_dir);
        let parent = (parent != ".").then_some(parent.as_str());
        // Walk back from the last rule: an include rule that matches the
        // directory also matches everything below it, so it overrides every
        // exception before it.
        for rule in self.rules.iter().rev() {
            if rule.exception {
                if rule.applies_to(rel_dir, parent) || rule.pattern.may_match_with_prefix(&probe) {
                    return true;
                }
            } else if rule.applies_to(rel_dir, parent) {
                return false;
            }
        }
        false
    }

    /// What a context walker does with `rel_path`: [`Decision::Include`] it,
    /// [`Decision::Exclude`] it (for a directory: with its whole subtree), or
    /// for an excluded directory that an exception may reach into,
    /// [`Decision::ExcludeButDescend`].
    pub fn decide(&self, rel_path: &str, is_dir: bool) -> Decision {
        if !self.is_excluded(rel_path) {
            return Decision::Include;
        }
        if is_dir && self.may_contain_exceptions(rel_path) {
            return Decision::ExcludeButDescend;
        }
        Decision::Exclude
    }
}
