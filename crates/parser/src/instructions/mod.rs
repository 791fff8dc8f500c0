//! Typed instructions: every raw [`Node`] becomes an [`Instruction`] with
//! typed flags, and the instructions are grouped into [`Stage`]s, with the
//! semantics of BuildKit's `frontend/dockerfile/instructions` package.
//!
//! Words stay unexpanded: the engine expands them with the build's variables
//! (see [`crate::expand`]). What this layer checks is everything that does
//! not depend on variables: argument counts, flag names and their types,
//! durations, mount options, stage names.

mod config;
mod copy;
mod flags;
mod from;
mod healthcheck;
mod mount;
mod run;
mod stage;

use std::fmt;

use crate::ast::{Args, Ast, Directives, Heredoc, Node};
use crate::diag::{Diagnostic, ParseError, Pos, Severity, Span};

pub use copy::{CopyLike, CopySource};
pub use healthcheck::{Healthcheck, HealthcheckCmd};
pub use mount::{Mount, MountError, MountKind, Sharing};
pub use run::{Device, Network, Run, Security};

/// Parse a Dockerfile: the raw syntax tree, then types and stages.
///
/// Errors from every instruction are collected, so one run reports them all;
/// warnings (lint rules, empty continuation lines) land in
/// [`Dockerfile::warnings`].
pub fn parse(file: &str, source: &[u8]) -> std::result::Result<Dockerfile, ParseError> {
    let ast = crate::syntax::parse_ast(file, source)?;
    from_ast(ast)
}

/// Give types to an already parsed [`Ast`] (what [`parse`] does after
/// `parse_ast`).
pub fn from_ast(ast: Ast) -> std::result::Result<Dockerfile, ParseError> {
    stage::build(ast)
}

/// A typed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file name as the user gave it.
    pub file: String,
    /// The physical source lines, to quote in later diagnostics
    /// (see [`Dockerfile::diagnostic`]).
    pub lines: Vec<String>,
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub meta_args: Vec<Spanned<ArgInstruction>>,
    /// The build stages in file order.
    pub stages: Vec<Stage>,
    /// Lint warnings and scanner warnings, in line order. Never printed.
    pub warnings: Vec<Diagnostic>,
}

impl Dockerfile {
    /// A diagnostic at `pos` of this file, quoting its line: for errors found
    /// after parsing (variable expansion, unknown stage in `--from`, ...).
    pub fn diagnostic(
        &self,
        severity: Severity,
        pos: Pos,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        make_diagnostic(&self.file, &self.lines, severity, pos, message.into(), help)
    }

    /// The stage called `name` (stage names are lower case), with its index.
    pub fn stage_by_name(&self, name: &str) -> Option<(usize, &Stage)> {
        let name = name.to_ascii_lowercase();
        self.stages
            .iter()
            .enumerate()
            .find(|(_, s)| s.name.as_deref() == Some(name.as_str()))
    }
}

/// A build stage: a `FROM` line and the instructions up to the next one.
#[derive(Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased as BuildKit does.
    pub name: Option<String>,
    /// The base image reference or stage name, unexpanded.
    pub base: String,
    /// `--platform` value, unexpanded.
    pub platform: Option<String>,
    /// Where the `FROM` line is.
    pub span: Span,
    /// The `FROM` line as written, trimmed.
    pub source: String,
    pub instructions: Vec<Spanned<Instruction>>,
}

/// A value and where it was written.
#[derive(Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
    /// The logical line as written (continuations joined), for history
    /// entries and `ONBUILD` triggers.
    pub source: String,
}

/// `line:col` or `line:col-end_line`, compact for snapshots and logs.
struct At(Span);

impl fmt::Debug for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Span { start, end_line } = self.0;
        write!(f, "{}:{}", start.line, start.col)?;
        if end_line > start.line {
            write!(f, "-{end_line}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("at", &At(self.span))
            .field("name", &self.name)
            .field("base", &self.base)
            .field("platform", &self.platform)
            .field("source", &self.source)
            .field("instructions", &self.instructions)
            .finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spanned")
            .field("at", &At(self.span))
            .field("source", &self.source)
            .field("value", &self.value)
            .finish()
    }
}

/// One typed instruction (`FROM` is a [`Stage`], not an instruction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Cmd(CommandLine),
    Label(Vec<KeyValue>),
    Maintainer(String),
    /// Ports as written (`80`, `53/udp`, `$PORT`), sorted as BuildKit does.
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Add(CopyLike),
    Copy(CopyLike),
    Entrypoint(CommandLine),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(ArgInstruction),
    Onbuild(Onbuild),
    Stopsignal(String),
    Healthcheck(Healthcheck),
    /// The new shell, always from JSON form.
    Shell(Vec<String>),
}

impl Instruction {
    /// The keyword in upper case, as users write it (`RUN`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Stopsignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

/// A command in exec form (JSON array) or shell form (one string, run by
/// the stage's shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

impl CommandLine {
    pub fn is_shell(&self) -> bool {
        matches!(self, CommandLine::Shell(_))
    }
}

/// One `key=value` of ENV or LABEL; key and value raw (quotes kept) until
/// the engine expands them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `ENV key value` form (no `=`).
    pub legacy: bool,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgInstruction {
    pub args: Vec<ArgDecl>,
}

/// One declared build argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// The default, raw (unexpanded); `None` without `=`.
    pub default: Option<String>,
}

/// `ONBUILD <instruction>`: the trigger typed and as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger, checked now so errors show at build time of this image.
    pub instruction: Box<Instruction>,
    /// The trigger as written (without `ONBUILD`, heredoc bodies appended),
    /// what goes into the image config's `OnBuild` list.
    pub expression: String,
}

/// An error or warning being built: message and help, positioned later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) pos: Pos,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

impl Problem {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

pub(crate) type Result<T> = std::result::Result<T, Problem>;

pub(crate) fn make_diagnostic(
    file: &str,
    lines: &[String],
    severity: Severity,
    pos: Pos,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    let line_text = (pos.line as usize)
        .checked_sub(1)
        .and_then(|i| lines.get(i))
        .cloned()
        .unwrap_or_default();
    Diagnostic {
        severity,
        file: file.to_string(),
        pos,
        message,
        line_text,
        help,
    }
}

/// The view of one node the per-instruction parsers work on.
pub(crate) struct Req<'a> {
    pub(crate) node: &'a Node,
    pub(crate) lines: &'a [String],
    /// The keyword as written (`FROM`, `from`, `From`).
    pub(crate) written: &'a str,
    /// The keyword upper-cased, for messages (`COPY requires ...`).
    pub(crate) upper: String,
}

impl<'a> Req<'a> {
    pub(crate) fn new(node: &'a Node, lines: &'a [String]) -> Req<'a> {
        let trimmed = node.original.trim_start();
        let end = trimmed
            .find(|c: char| c.is_whitespace())
            .unwrap_or(trimmed.len());
        let mut written = &trimmed[..end];
        if !written.eq_ignore_ascii_case(&node.keyword) {
            written = &node.keyword;
        }
        Req {
            node,
            lines,
            written,
            upper: node.keyword.to_ascii_uppercase(),
        }
    }

    pub(crate) fn start(&self) -> Pos {
        self.node.span.start
    }

    /// The argument words (JSON elements or shell string for exec/shell
    /// forms) and whether they came from JSON.
    pub(crate) fn words(&self) -> (Vec<String>, bool) {
        match &self.node.args {
            Args::Words { words, json } => (words.clone(), *json),
            Args::Pairs(pairs) => (
                pairs
                    .iter()
                    .map(|p| match &p.value {
                        Some(v) => format!("{}{}{}", p.key, p.sep, v),
                        None => p.key.clone(),
                    })
                    .collect(),
                false,
            ),
            Args::Nested(inner) => (vec![inner.keyword.clone()], false),
        }
    }

    /// Where `word` is written: searched in the instruction's lines after
    /// the keyword, falling back to the instruction's start.
    pub(crate) fn pos_of(&self, word: &str) -> Pos {
        if word.is_empty() {
            return self.start();
        }
        let start = self.node.span.start;
        let last = self.node.span.end_line.max(start.line);
        for line_no in start.line..=last {
            let Some(text) = (line_no as usize)
                .checked_sub(1)
                .and_then(|i| self.lines.get(i))
            else {
                break;
            };
            let mut skip_chars = if line_no == start.line {
                start.col.saturating_sub(1) as usize + self.written.chars().count()
            } else {
                0
            };
            // Arguments come after the flags: skip past the last flag on
            // this line (its text length, quotes aside, is a lower bound).
            if let Some(flag) = self
                .node
                .flags
                .iter()
                .rev()
                .find(|f| f.span.start.line == line_no)
            {
                let len = 2
                    + flag.name.chars().count()
                    + flag.value.as_ref().map_or(0, |v| 1 + v.chars().count());
                skip_chars = skip_chars.max(flag.span.start.col.saturating_sub(1) as usize + len);
            }
            let skip_bytes = text
                .char_indices()
                .nth(skip_chars)
                .map_or(text.len(), |(i, _)| i);
            if let Some(found) = text[skip_bytes..].find(word) {
                let col = text[..skip_bytes + found].chars().count() as u32 + 1;
                return Pos { line: line_no, col };
            }
        }
        start
    }

    /// The position right after the keyword: where missing arguments go.
    pub(crate) fn after_keyword(&self) -> Pos {
        let start = self.start();
        Pos {
            line: start.line,
            col: start.col + self.written.chars().count() as u32,
        }
    }

    pub(crate) fn heredocs(&self) -> &'a [Heredoc] {
        &self.node.heredocs
    }
}

#[cfg(test)]
mod tests;
