//! The scanner: source bytes to logical lines, by hand (pest cannot carry the
//! state this needs).
//!
//! It follows BuildKit's `parser.Parse` loop line for line:
//! - the source must be UTF-8 without NUL bytes; a leading BOM is dropped;
//! - physical lines end with `\n`, `\r\n` or a lone `\r`;
//! - parser directives (`# syntax=`, `# escape=`, `# check=`) are read until
//!   the first line that is not one (an empty line, another comment, an
//!   instruction); a repeated directive or a bad escape token is an error;
//! - a line whose last non-blank character is the escape character continues
//!   on the next line; comment lines inside a continuation are dropped, empty
//!   ones too but they give a warning;
//! - heredoc bodies are read raw, on request of the node builder, after the
//!   logical line that opened them.
//!
//! A logical line remembers where each of its pieces came from, so any byte
//! offset in it maps back to a physical line and column.

use std::cell::Cell;

use crate::ast::Directives;
use crate::diag::{Diagnostic, ParseError, Pos, Severity};

const BOM: &str = "\u{feff}";

/// Checks that the source is UTF-8 text without NUL bytes and drops a
/// leading byte-order mark.
pub(crate) fn decode<'a>(file: &str, source: &'a [u8]) -> Result<&'a str, ParseError> {
    let (utf8_err, valid) = match std::str::from_utf8(source) {
        Ok(text) => (None, text.len()),
        Err(err) => (Some(err), err.valid_up_to()),
    };
    let nul = source[..valid].iter().position(|&b| b == 0);
    let bad = match (nul, utf8_err) {
        (Some(at), _) => Some((at, "nul byte in dockerfile".to_string())),
        (None, Some(err)) => {
            let at = err.valid_up_to();
            let byte = source.get(at).copied().unwrap_or_default();
            Some((at, format!("invalid utf-8 (byte 0x{byte:02x})")))
        }
        (None, None) => None,
    };
    if let Some((at, message)) = bad {
        // The prefix before `at` is valid UTF-8 by construction.
        let prefix = std::str::from_utf8(&source[..at]).unwrap_or_default();
        let prefix = prefix.strip_prefix(BOM).unwrap_or(prefix);
        let line_start = prefix.rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let line_no = count_line_breaks(prefix) + 1;
        let col = prefix[line_start..].chars().count() + 1;
        let rest = &source[at - (prefix.len() - line_start)..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        return Err(ParseError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: file.to_string(),
                pos: Pos {
                    line: to_u32(line_no),
                    col: to_u32(col),
                },
                message,
                line_text: String::from_utf8_lossy(&rest[..end]).replace('\0', "\u{fffd}"),
                help: Some("a Dockerfile must be UTF-8 text without NUL bytes".to_string()),
            }],
        });
    }
    let text = std::str::from_utf8(source).unwrap_or_default();
    Ok(text.strip_prefix(BOM).unwrap_or(text))
}

fn count_line_breaks(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut n = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if (b == b'\n' && (i == 0 || bytes[i - 1] != b'\r')) || b == b'\r' {
            n += 1;
        }
    }
    n
}

pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Splits text into physical lines, without their line endings.
#[cfg(test)]
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    split_lines_with_endings(text).0
}

/// Splits text into physical lines and their line endings (`"\n"`,
/// `"\r\n"`, `"\r"`, or `""` for a last line without one).
fn split_lines_with_endings(text: &str) -> (Vec<&str>, Vec<&str>) {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut endings = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let end = i;
        match bytes[i] {
            b'\n' => {}
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 1,
            b'\r' => {}
            _ => {
                i += 1;
                continue;
            }
        }
        lines.push(&text[start..end]);
        endings.push(&text[end..=i]);
        i += 1;
        start = i;
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
        endings.push("");
    }
    (lines, endings)
}

/// One piece of a logical line: `text[text_off..]` starts at byte
/// `phys_off` of physical line `line` (0-based).
#[derive(Debug, Clone, Copy)]
struct Segment {
    text_off: usize,
    line: usize,
    phys_off: usize,
}

/// An instruction's text with its continuations joined (BuildKit's
/// `Original`), and where it came from.
#[derive(Debug)]
pub(crate) struct LogicalLine {
    pub text: String,
    /// 1-based number of the first physical line.
    pub start_line: u32,
    /// 1-based number of the last physical line (before heredoc bodies).
    pub end_line: u32,
    segments: Vec<Segment>,
    /// Last mapped position (segment, physical byte, 0-based column), so
    /// that mapping increasing offsets stays linear on a long line.
    cursor: Cell<(usize, usize, usize)>,
}

impl LogicalLine {
    /// The file position of byte `off` of `text`.
    pub fn pos(&self, lines: &[&str], off: usize) -> Pos {
        let idx = self
            .segments
            .partition_point(|s| s.text_off <= off)
            .saturating_sub(1);
        let Some(seg) = self.segments.get(idx) else {
            return Pos {
                line: self.start_line,
                col: 1,
            };
        };
        let phys = lines.get(seg.line).copied().unwrap_or_default();
        let byte = (seg.phys_off + off.saturating_sub(seg.text_off)).min(phys.len());
        let (c_seg, c_byte, c_col) = self.cursor.get();
        let col = match phys.get(c_byte..byte) {
            Some(between) if c_seg == idx => c_col + between.chars().count(),
            _ => phys.get(..byte).map_or(0, |s| s.chars().count()),
        };
        self.cursor.set((idx, byte, col));
        Pos {
            line: to_u32(seg.line + 1),
            col: to_u32(col + 1),
        }
    }
}

/// Parser directive state, as BuildKit's `DirectiveParser`.
#[derive(Debug, Default)]
struct DirectiveState {
    done: bool,
    seen_syntax: bool,
    seen_escape: bool,
    seen_check: bool,
}

/// Go's regexp `\s`: ASCII whitespace without `\v`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` as Go's regexp does.
fn match_directive(s: &str) -> Option<(&str, &str)> {
    let key_len = s.bytes().take_while(|b| b.is_ascii_alphanumeric()).count();
    if key_len == 0 || !s.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    let (key, after) = s.split_at(key_len);
    let after = after.trim_start_matches(is_go_space).strip_prefix('=')?;
    let trimmed = after.trim_end_matches(is_go_space);
    let value = if trimmed.is_empty() {
        // `\s*` gives back one character so that `.+?` matches something.
        let last = after.char_indices().last()?.0;
        &after[last..]
    } else {
        trimmed.trim_start_matches(is_go_space)
    };
    Some((key, value))
}

/// The hand-written line scanner. The node builder pulls logical lines with
/// [`Scanner::next_line`] and heredoc bodies with [`Scanner::read_heredoc`].
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    endings: Vec<&'a str>,
    next: usize,
    directives: Directives,
    state: DirectiveState,
    warnings: Vec<Diagnostic>,
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Scanner<'a> {
        let (lines, endings) = split_lines_with_endings(text);
        Scanner {
            file,
            lines,
            endings,
            next: 0,
            directives: Directives::default(),
            state: DirectiveState::default(),
            warnings: Vec::new(),
        }
    }

    pub fn lines(&self) -> &[&'a str] {
        &self.lines
    }

    #[cfg(test)]
    pub fn directives(&self) -> &Directives {
        &self.directives
    }

    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// 1-based number of the last physical line consumed.
    pub fn current_line(&self) -> u32 {
        to_u32(self.next)
    }

    pub fn into_parts(self) -> (Vec<&'a str>, Directives, Vec<Diagnostic>) {
        (self.lines, self.directives, self.warnings)
    }

    fn error(&self, idx: usize, col: usize, message: String, help: &str) -> ParseError {
        ParseError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: self.file.to_string(),
                pos: Pos {
                    line: to_u32(idx + 1),
                    col: to_u32(col + 1),
                },
                message,
                line_text: self.lines.get(idx).copied().unwrap_or_default().to_string(),
                help: Some(help.to_string()),
            }],
        }
    }

    /// Feeds one line (leading whitespace already trimmed, starting at
    /// column `col`) to the directive parser.
    fn directive(&mut self, idx: usize, col: usize, line: &str) -> Result<(), ParseError> {
        if self.state.done {
            return Ok(());
        }
        let Some(after_hash) = line.strip_prefix('#') else {
            self.state.done = true;
            return Ok(());
        };
        let Some((key, value)) = match_directive(after_hash.trim_start()) else {
            self.state.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        let seen = match key.as_str() {
            "syntax" => &mut self.state.seen_syntax,
            "escape" => &mut self.state.seen_escape,
            "check" => &mut self.state.seen_check,
            _ => {
                self.state.done = true;
                return Ok(());
            }
        };
        if std::mem::replace(seen, true) {
            return Err(self.error(
                idx,
                col,
                format!("only one {key} parser directive can be used"),
                "remove the repeated directive; each parser directive may appear once",
            ));
        }
        match key.as_str() {
            "escape" => match value {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                _ => {
                    return Err(self.error(
                        idx,
                        col,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                        "use `# escape=\\` (the default) or `# escape=``",
                    ));
                }
            },
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(())
    }

    /// The next logical line, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<LogicalLine>, ParseError> {
        loop {
            let Some(&raw) = self.lines.get(self.next) else {
                return Ok(None);
            };
            let first = self.next;
            self.next += 1;
            let lead = raw.len() - raw.trim_start().len();
            let trimmed = &raw[lead..];
            self.directive(first, raw[..lead].chars().count(), trimmed)?;
            let escape = self.escape();
            let content = if trimmed.starts_with('#') {
                ""
            } else {
                trimmed
            };
            let (content, mut done) = trim_continuation(content, escape);
            if done && content.is_empty() {
                continue;
            }
            let mut text = content.to_string();
            let mut segments = vec![Segment {
                text_off: 0,
                line: first,
                phys_off: lead,
            }];
            let mut empty_line = None;
            let mut last = first;
            while !done {
                let Some(&raw) = self.lines.get(self.next) else {
                    break;
                };
                last = self.next;
                self.next += 1;
                let body = raw.trim_start();
                if body.starts_with('#') {
                    continue;
                }
                if body.is_empty() {
                    empty_line.get_or_insert(last);
                    continue;
                }
                let (content, end) = trim_continuation(raw, escape);
                segments.push(Segment {
                    text_off: text.len(),
                    line: last,
                    phys_off: 0,
                });
                text.push_str(content);
                done = end;
            }
            if let Some(idx) = empty_line {
                self.warnings.push(Diagnostic {
                    severity: Severity::Warning,
                    file: self.file.to_string(),
                    pos: Pos {
                        line: to_u32(idx + 1),
                        col: 1,
                    },
                    message: "empty continuation line".to_string(),
                    line_text: self.lines[idx].to_string(),
                    help: Some(
                        "remove the empty line; empty continuation lines will become errors \
                         in a future release"
                            .to_string(),
                    ),
                });
            }
            return Ok(Some(LogicalLine {
                text,
                start_line: to_u32(first + 1),
                end_line: to_u32(last + 1),
                segments,
                cursor: Cell::new((0, 0, 0)),
            }));
        }
    }

    /// Reads a heredoc body up to the line equal to `name` (after stripping
    /// leading tabs when `chomp`). Returns `None` if the file ends first.
    /// Body lines keep their line endings as written (BuildKit copies the
    /// bytes); with `chomp` their leading tabs go.
    pub fn read_heredoc(&mut self, name: &str, chomp: bool) -> Option<String> {
        let mut content = String::new();
        while let Some(&line) = self.lines.get(self.next) {
            let ending = self.endings.get(self.next).copied().unwrap_or_default();
            self.next += 1;
            let line = if chomp {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == name {
                return Some(content);
            }
            content.push_str(line);
            content.push_str(ending);
        }
        None
    }
}

/// Removes a line-continuation escape at the end of `line`, as BuildKit's
/// regexp `([^E])E[ \t]*$|^E[ \t]*$`: the escape character, then only blanks,
/// not itself escaped. Returns the line and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let blank_trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = blank_trimmed.strip_suffix(escape)
        && !before.ends_with(escape)
    {
        return (before, false);
    }
    (line, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logical(src: &str) -> (Vec<String>, Scanner<'_>) {
        let mut scanner = Scanner::new("Dockerfile", src);
        let mut out = Vec::new();
        while let Some(line) = scanner.next_line().expect("scan") {
            out.push(line.text);
        }
        (out, scanner)
    }

    fn scan_err(src: &str) -> Diagnostic {
        let mut scanner = Scanner::new("Dockerfile", src);
        loop {
            match scanner.next_line() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("expected an error for {src:?}"),
                Err(err) => return err.diagnostics[0].clone(),
            }
        }
    }

    #[test]
    fn line_endings_lf_crlf_cr() {
        assert_eq!(split_lines("a\nb\r\nc\rd"), ["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n"), ["a"]);
        assert_eq!(split_lines("a\n\n"), ["a", ""]);
        assert_eq!(split_lines("\r\n\r\n"), ["", ""]);
        let (lines, _) = logical("FROM a\r\nRUN x \\\r\n  y\r\nRUN z\rRUN w \\\r  v");
        assert_eq!(lines, ["FROM a", "RUN x   y", "RUN z", "RUN w   v"]);
    }

    #[test]
    fn continuation_rules() {
        let (lines, _) = logical("RUN a \\  \t\n b\nRUN c\\\\\nRUN d\\\\\\\n e\nRUN \\\n\\\n f");
        // `\\` at the end is an escaped escape, not a continuation; `\\\` is
        // not one either (BuildKit's documented regexp limitation).
        assert_eq!(
            lines,
            ["RUN a  b", "RUN c\\\\", "RUN d\\\\\\", "e", "RUN  f"]
        );
    }

    #[test]
    fn backtick_escape() {
        let src = "# escape=`\nFROM a\nRUN dir C:\\ `\n  && echo \\\nCOPY x `\n y";
        let (lines, scanner) = logical(src);
        assert_eq!(scanner.escape(), '`');
        assert_eq!(lines, ["FROM a", "RUN dir C:\\   && echo \\", "COPY x  y"]);
    }

    #[test]
    fn comments_inside_continuation_are_dropped() {
        let src = "RUN a \\\n# comment \\\n   # indented\n  b";
        let (lines, scanner) = logical(src);
        assert_eq!(lines, ["RUN a   b"]);
        assert!(scanner.warnings.is_empty());
    }

    #[test]
    fn empty_continuation_line_warns() {
        let src = "FROM a\nRUN a \\\n\n   \n  b\nRUN c";
        let (lines, scanner) = logical(src);
        assert_eq!(lines, ["FROM a", "RUN a   b", "RUN c"]);
        assert_eq!(scanner.warnings.len(), 1);
        let warning = &scanner.warnings[0];
        assert_eq!(warning.severity, Severity::Warning);
        assert_eq!(warning.message, "empty continuation line");
        assert_eq!(warning.pos, Pos { line: 3, col: 1 });
    }

    #[test]
    fn directives_are_read_at_the_top_only() {
        let (_, scanner) =
            logical("# syntax = docker/dockerfile:1\n#ESCAPE=`\n# check=skip=all\nFROM a");
        let d = scanner.directives();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.escape, '`');
        assert_eq!(d.check.as_deref(), Some("skip=all"));

        // After an instruction, an empty line or another comment: a comment.
        for src in [
            "FROM a\n# escape=`\nRUN b",
            "\n# escape=`\nFROM a",
            "# hello\n# escape=`\nFROM a",
            "# unknown=x\n# escape=`\nFROM a",
        ] {
            let (_, scanner) = logical(src);
            assert_eq!(scanner.escape(), '\\', "{src:?}");
        }
    }

    #[test]
    fn duplicate_directive_is_an_error() {
        let d = scan_err("# escape=`\n# ESCAPE=\\\nFROM a");
        assert_eq!(d.message, "only one escape parser directive can be used");
        assert_eq!(d.pos, Pos { line: 2, col: 1 });
        let d = scan_err("# syntax=a\n  # syntax=b\nFROM a");
        assert_eq!(d.pos, Pos { line: 2, col: 3 });
    }

    #[test]
    fn bad_escape_directive_is_an_error() {
        let d = scan_err("# escape=x\nFROM a");
        assert!(
            d.message.starts_with("invalid escape token 'x'"),
            "{}",
            d.message
        );
        assert_eq!(d.line_text, "# escape=x");
        // `\s*` gives back a blank so that the value is not empty, as in Go.
        let d = scan_err("# escape= \nFROM a");
        assert!(
            d.message.starts_with("invalid escape token ' '"),
            "{}",
            d.message
        );
    }

    #[test]
    fn directive_regexp() {
        assert_eq!(match_directive("escape=`"), Some(("escape", "`")));
        assert_eq!(match_directive("escape =  ` \t"), Some(("escape", "`")));
        assert_eq!(match_directive("check = a b "), Some(("check", "a b")));
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("1x=y"), None);
        assert_eq!(match_directive("x y=z"), None);
    }

    #[test]
    fn nul_and_invalid_utf8_are_errors_with_positions() {
        let err = decode("Dockerfile", b"FROM a\nRUN a\0b\n").unwrap_err();
        let d = &err.diagnostics[0];
        assert_eq!(d.pos, Pos { line: 2, col: 6 });
        assert_eq!(d.message, "nul byte in dockerfile");

        let err = decode("Dockerfile", b"FROM a\r\nRUN \xc3\xa9\xff x\n").unwrap_err();
        let d = &err.diagnostics[0];
        assert_eq!(d.pos, Pos { line: 2, col: 6 });
        assert_eq!(d.message, "invalid utf-8 (byte 0xff)");
        assert_eq!(d.line_text, "RUN \u{e9}\u{fffd} x");

        let err = decode("Dockerfile", b"\xef\xbb\xbf\xfe").unwrap_err();
        assert_eq!(err.diagnostics[0].pos, Pos { line: 1, col: 1 });
    }

    #[test]
    fn bom_is_dropped() {
        assert_eq!(decode("f", b"\xef\xbb\xbfFROM a").unwrap(), "FROM a");
    }

    #[test]
    fn heredoc_bodies() {
        let src = "RUN <<A <<-B\none\r\n\tA\nA\n\ttwo\r\t\tB\nRUN x";
        let mut scanner = Scanner::new("f", src);
        scanner.next_line().unwrap().unwrap();
        assert_eq!(scanner.read_heredoc("A", false).unwrap(), "one\r\n\tA\n");
        assert_eq!(scanner.read_heredoc("B", true).unwrap(), "two\r");
        assert_eq!(scanner.current_line(), 6);
        assert_eq!(scanner.next_line().unwrap().unwrap().text, "RUN x");
        let mut scanner = Scanner::new("f", "RUN <<A\nbody");
        scanner.next_line().unwrap().unwrap();
        assert_eq!(scanner.read_heredoc("A", false), None);
    }

    #[test]
    fn positions_map_back_through_continuations() {
        let src = "  RUN a \\\n# c\n  bé \\\n\tc";
        let lines = split_lines(src);
        let mut scanner = Scanner::new("f", src);
        let line = scanner.next_line().unwrap().unwrap();
        assert_eq!(line.text, "RUN a   bé \tc");
        assert_eq!((line.start_line, line.end_line), (1, 4));
        assert_eq!(line.pos(&lines, 0), Pos { line: 1, col: 3 });
        assert_eq!(line.pos(&lines, 4), Pos { line: 1, col: 7 });
        assert_eq!(line.pos(&lines, 8), Pos { line: 3, col: 3 });
        assert_eq!(line.pos(&lines, 11), Pos { line: 3, col: 5 });
        assert_eq!(line.pos(&lines, 12), Pos { line: 4, col: 1 });
        assert_eq!(line.pos(&lines, 13), Pos { line: 4, col: 2 });
        // Going backwards recounts.
        assert_eq!(line.pos(&lines, 1), Pos { line: 1, col: 4 });
    }
}
