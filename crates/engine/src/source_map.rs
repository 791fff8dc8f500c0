//! The Dockerfile lines a build error points at, as BuildKit prints them
//! under a failed build (its "source map" block, `solver/errdefs/source.go`):
//!
//! ```text
//! Dockerfile:2
//! --------------------
//!    1 |     FROM busybox
//!    2 | >>> RUN wh\
//!    3 | >>> at
//!    4 |     ENV bar=baz
//! --------------------
//! ```

use std::fmt;

use buildr_parser::{Dockerfile, Span};

/// A located build error's source excerpt: the instruction's lines marked
/// `>>>`, with BuildKit's context lines around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMap {
    /// The Dockerfile's name, as in the error's `file:line`.
    pub file: String,
    /// The first line of the instruction (the header's line).
    pub line: u32,
    /// The lines shown, in order.
    pub lines: Vec<SourceLine>,
}

/// One line of a [`SourceMap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// 1-based line number.
    pub number: u32,
    /// Part of the instruction the error is about (`>>>`).
    pub marked: bool,
    /// The line as written, without its line ending.
    pub text: String,
}

impl SourceMap {
    /// The excerpt for an error at `location` (`file:line`) of `dockerfile`
    /// (whose bytes are `text`): the whole instruction starting on that
    /// line is marked, as BuildKit marks the instruction's range. `None`
    /// when the location is not a line of this file.
    pub(crate) fn locate(dockerfile: &Dockerfile, text: &[u8], location: &str) -> Option<Self> {
        let (file, line) = location.rsplit_once(':')?;
        if file != dockerfile.file {
            return None;
        }
        let line: u32 = line.parse().ok()?;
        let span = instruction_span(dockerfile, line);
        let end = span.map_or(line, |s| s.end_line.max(line));
        Self::render_range(&dockerfile.file, text, line, end)
    }

    /// BuildKit's window around the marked lines `start..=end` (1-based):
    /// one line of context each side for a multi-line range, two for a
    /// single line, fewer at the ends of the file. Lines are the text split
    /// at `\n`, so a final newline gives a last, empty line, as BuildKit's.
    fn render_range(file: &str, text: &[u8], start: u32, end: u32) -> Option<Self> {
        let text = String::from_utf8_lossy(text);
        let all: Vec<&str> = text.split('\n').collect();
        let count = all.len();
        let (start, end) = (start as usize, end as usize);
        if start < 1 || start > count {
            return None;
        }
        let (mut first, mut last) = (start, end.min(count));
        // The same loop as BuildKit's `Source.Print`, quirks included.
        let pad = if last == start { 4 } else { 2 };
        let mut p = 0;
        while p < pad {
            if first > 1 {
                first -= 1;
                p += 1;
            }
            if last != count {
                last += 1;
                p += 1;
            }
            p += 1;
        }
        let lines = (first..=last)
            .map(|n| SourceLine {
                number: n as u32,
                marked: (start..=end).contains(&n),
                text: all[n - 1].trim_end_matches('\r').to_owned(),
            })
            .collect();
        Some(SourceMap {
            file: file.to_owned(),
            line: start as u32,
            lines,
        })
    }
}

/// The span of the instruction (a `FROM`, a global `ARG` or a stage's
/// instruction) that starts on `line`.
fn instruction_span(dockerfile: &Dockerfile, line: u32) -> Option<Span> {
    let meta = dockerfile.meta_args.iter().map(|a| a.span);
    let stages = dockerfile
        .stages
        .iter()
        .flat_map(|s| std::iter::once(s.span).chain(s.instructions.iter().map(|i| i.span)));
    meta.chain(stages).find(|span| span.start.line == line)
}

impl fmt::Display for SourceMap {
    /// BuildKit's block, each line ending in `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RULE: &str = "--------------------";
        writeln!(f, "{}:{}", self.file, self.line)?;
        writeln!(f, "{RULE}")?;
        for line in &self.lines {
            let marker = if line.marked { ">>>" } else { "   " };
            writeln!(f, " {:>3} | {marker} {}", line.number, line.text)?;
        }
        writeln!(f, "{RULE}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str, location: &str) -> Option<String> {
        let dockerfile = buildr_parser::parse("Dockerfile", text.as_bytes()).unwrap();
        SourceMap::locate(&dockerfile, text.as_bytes(), location).map(|m| m.to_string())
    }

    #[test]
    fn a_continued_instruction_is_marked_whole_with_one_line_around() {
        let text = "FROM scratch\nENV a=b\nRUN wh\\\n  at\nENV bar=baz\n";
        assert_eq!(
            map(text, "Dockerfile:3").unwrap(),
            "Dockerfile:3\n--------------------\n   2 |     ENV a=b\n   3 | >>> RUN wh\\\n   4 | >>>   at\n   5 |     ENV bar=baz\n--------------------\n"
        );
    }

    #[test]
    fn the_first_and_last_lines_bound_the_window() {
        // As BuildKit 0.13 prints the ported errors/multiline-run-range.
        let text = "from busybox\nrun wh\\\nat\nenv bar=baz";
        assert_eq!(
            map(text, "Dockerfile:2").unwrap(),
            "Dockerfile:2\n--------------------\n   1 |     from busybox\n   2 | >>> run wh\\\n   3 | >>> at\n   4 |     env bar=baz\n--------------------\n"
        );
        // A single line gets up to two lines each side; the final newline
        // makes an empty last line.
        assert_eq!(
            map("FROM \"\" AS foo\n", "Dockerfile:1").unwrap(),
            "Dockerfile:1\n--------------------\n   1 | >>> FROM \"\" AS foo\n   2 |     \n--------------------\n"
        );
        let text = "FROM a\nENV a=1\nENV b=2\nRUN x\nENV c=3\nENV d=4\nENV e=5\n";
        assert_eq!(
            map(text, "Dockerfile:4").unwrap(),
            "Dockerfile:4\n--------------------\n   2 |     ENV a=1\n   3 |     ENV b=2\n   4 | >>> RUN x\n   5 |     ENV c=3\n   6 |     ENV d=4\n--------------------\n"
        );
    }

    #[test]
    fn other_files_and_lines_outside_the_file_have_none() {
        let text = "FROM scratch\n";
        assert_eq!(map(text, "other:1"), None);
        assert_eq!(map(text, "Dockerfile:9"), None);
        assert_eq!(map(text, "Dockerfile:0"), None);
        assert_eq!(map(text, "Dockerfile"), None);
    }
}
