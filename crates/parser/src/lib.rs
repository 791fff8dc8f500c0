//! `buildr-parser`: Dockerfile text to a typed, span-carrying syntax tree.
//!
//! The pipeline inside the crate:
//! 1. [`scan`](crate::scan): a hand-written scanner turns bytes into logical
//!    lines: BOM, parser directives, continuation with the active escape
//!    character, comments inside continuations, heredoc bodies.
//! 2. a pest grammar (`instruction.pest`) splits each logical line into keyword,
//!    flags and arguments, giving the raw [`Ast`] that BuildKit's dump prints.
//! 3. [`instructions`] gives every node a type ([`Instruction`]) with typed
//!    flags, and groups them into [`Stage`]s.
//! 4. [`expand`] expands words (`$v`, `${v:-w}`, quotes) exactly as BuildKit's
//!    shell lexer; the engine calls it with the build's variables.
//!
//! What it is not: it never touches the filesystem or the network, and it
//! never prints: warnings are returned as [`Diagnostic`]s.
#![forbid(unsafe_code)]

mod ast;
mod diag;

pub use ast::{Args, Ast, Directives, Flag, Heredoc, Node, Pair};
pub use diag::{Diagnostic, ParseError, Pos, Severity, Span};
