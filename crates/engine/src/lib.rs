//! `buildr`: the embeddable Dockerfile build engine and container runtime.
//!
//! This is the crate other Rust tools depend on. It ties the leaves together:
//! the parser (Dockerfile -> AST), the solver (build graph -> parallel, cached
//! execution), the store (blobs, snapshots, cache records, image index), the
//! sandbox (RUN steps and containers) and the OCI layer/image code.
//!
//! What it is not: it never prints or installs a tracing subscriber; progress
//! and diagnostics are returned as data for the caller to render.
#![forbid(unsafe_code)]

pub use buildr_parser as parser;
