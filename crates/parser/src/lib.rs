//! `buildr-parser`: Dockerfile text to a typed, span-carrying syntax tree.
//!
//! The pipeline inside the crate:
//! 1. a hand-written scanner (`scan.rs`) turns bytes into logical lines: BOM,
//!    parser directives, continuation with the active escape character,
//!    comments inside continuations, heredoc bodies.
//! 2. a pest grammar (`instruction.pest`) splits each logical line into
//!    keyword, flags and arguments, giving the raw [`Ast`] that BuildKit's
//!    dump prints ([`parse_ast`], [`dump`]).
//! 3. the typing pass gives every node a type ([`Instruction`]) with typed
//!    flags and groups them into [`Stage`]s of a [`Dockerfile`] ([`parse`]).
//! 4. the [`Lexer`] expands words (`$v`, `${v:-w}`, quotes) exactly as
//!    BuildKit's shell lexer; the engine calls it with the build's variables.
//!
//! What it is not: it never touches the filesystem or the network, and it
//! never prints: warnings are returned as [`Diagnostic`]s.
#![forbid(unsafe_code)]

mod ast;
mod diag;
mod dump;
mod expand;
mod instructions;
mod lint;
mod scan;
mod suggest;
mod syntax;

pub use ast::{Args, Ast, Directives, Flag, Heredoc, Node, Pair};
pub use diag::{Diagnostic, ParseError, Pos, Severity, Span};
pub use dump::{dump, quote as go_quote};
pub use expand::{
    Env, ExpandError, ExpandErrorKind, ExpandResult, Lexer, MAX_DEPTH, MAX_WORD_BYTES,
};
pub use instructions::{
    ArgDecl, ArgInstruction, CommandLine, CopyLike, CopySource, Device, Dockerfile, Healthcheck,
    HealthcheckCmd, Instruction, KeyValue, Mount, MountError, MountKind, Network, Onbuild, Run,
    Security, Sharing, Spanned, Stage, from_ast, parse,
};
pub use suggest::did_you_mean;
pub use syntax::parse_ast;
