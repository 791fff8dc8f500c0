//! The raw syntax tree: one [`Node`] per instruction, as BuildKit's parser
//! produces it before instructions are typed. Arguments are still unexpanded.

use crate::diag::Span;

/// A parsed Dockerfile before instructions are given types.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ast {
    /// The file name as the user gave it, used in diagnostics.
    pub file: String,
    /// The physical source lines (BOM and line endings removed), so later
    /// stages can quote a line in a diagnostic without the source text.
    pub lines: Vec<String>,
    /// The parser directives found at the top of the file.
    pub directives: Directives,
    /// One node per instruction, in file order.
    pub nodes: Vec<Node>,
    /// Warnings found while scanning (empty continuation lines, ...).
    pub warnings: Vec<crate::diag::Diagnostic>,
}

/// Parser directives (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# syntax=` value, if present.
    pub syntax: Option<String>,
    /// `# check=` value, if present.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// One instruction as written: keyword, flags and arguments, unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword, lower-cased (`"from"`, `"run"`, ...).
    pub keyword: String,
    /// Flags as written after the keyword, e.g. `--mount=type=cache,target=/x`.
    pub flags: Vec<Flag>,
    /// The arguments, as BuildKit's dump lists them.
    pub args: Args,
    /// Heredocs attached to this instruction, in the order they were opened.
    /// An ONBUILD node and the instruction it wraps both carry them.
    pub heredocs: Vec<Heredoc>,
    /// The logical line with continuations joined (BuildKit's `Original`).
    pub original: String,
    /// Where the instruction stands: first line/col to the last line.
    pub span: Span,
}

/// A `--name` or `--name=value` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Name without the leading dashes.
    pub name: String,
    /// Value after `=`; `None` for a bare `--name`.
    pub value: Option<String>,
    /// Where the flag stands in the file.
    pub span: Span,
}

/// The arguments of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Whitespace-separated words (FROM, COPY, ADD, EXPOSE, ...), or the JSON
    /// array's strings when `json` is set. Shell form keeps the whole command
    /// as one string (RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD). No arguments
    /// give no words; an unknown instruction gives one empty word, as
    /// BuildKit's parser does.
    Words { words: Vec<String>, json: bool },
    /// `key=value` pairs (ENV, LABEL, ARG). `sep` is `"="` for `k=v` and `""`
    /// for the legacy `ENV k v` form. For ARG, a bare `name` has `value`
    /// `None` (and `sep` `""`).
    Pairs(Vec<Pair>),
    /// ONBUILD's wrapped instruction.
    Nested(Box<Node>),
}

/// One `key=value` pair, value raw (quotes and escapes kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: Option<String>,
    pub sep: String,
}

/// A heredoc body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`), quotes removed.
    pub name: String,
    /// The body, with the trailing newline kept; tabs stripped for `<<-`.
    /// Line endings are kept as written (`\r\n` in a CRLF file), as BuildKit.
    pub content: String,
    /// Whether variables in the body are expanded (unquoted delimiter).
    pub expand: bool,
    /// Whether leading tabs were stripped (`<<-`).
    pub chomp: bool,
    /// The file descriptor prefix (`3<<EOF`), if any.
    pub fd: Option<u32>,
}
