//! Positions and diagnostics: `Dockerfile:12:5: error: ...`, the line, a caret.

use std::fmt;

/// A position in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A source range: start position and the last line it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: Pos,
    pub end_line: u32,
}

impl Span {
    pub fn at(line: u32, col: u32) -> Span {
        Span {
            start: Pos { line, col },
            end_line: line,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One error or warning, with everything needed to render it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file name as the user gave it (`Dockerfile`, `build/Dockerfile.dev`).
    pub file: String,
    pub pos: Pos,
    /// Lower-case message: "unknown instruction: RUNN".
    pub message: String,
    /// The physical source line the position points into, without newline.
    pub line_text: String,
    /// What was expected, or a "did you mean" hint.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: severity: message`, then the line, a caret under the
    /// column, and the help text if any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.pos.line, self.pos.col, self.severity, self.message
        )?;
        let gutter = self.pos.line.to_string();
        writeln!(f, " {gutter} | {}", self.line_text)?;
        let pad: String = self
            .line_text
            .chars()
            .take(self.pos.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, " {} | {pad}^", " ".repeat(gutter.len()))?;
        if let Some(help) = &self.help {
            write!(f, "\n {} = help: {help}", " ".repeat(gutter.len()))?;
        }
        Ok(())
    }
}

/// The error type of the parser: one or more error diagnostics, plus the
/// warnings found in the same file (check `severity`), sorted by position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ParseError {
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
