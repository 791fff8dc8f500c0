//! `buildr`: the embeddable Dockerfile build engine and container runtime.
//!
//! This is the crate other Rust tools depend on. It ties the leaves together:
//! the parser (Dockerfile -> AST), the solver (build graph -> parallel, cached
//! execution), the store (blobs, snapshots, cache records, image index), the
//! sandbox (RUN steps and containers) and the OCI layer/image code.
//!
//! One module per concern, each with docker's semantics and no daemon:
//!
//! - [`build`]: [`Builder`] turns a Dockerfile and a context into an image,
//!   with progress events, registry and local build caches, outputs;
//!   [`context`] and [`dockerignore`] are what it reads.
//! - [`mod@check`]: parse a Dockerfile and collect its errors and warnings.
//! - [`image`]: [`Images`] lists, tags, removes, inspects, saves, loads,
//!   imports and prunes images in the store.
//! - [`registry`]: [`Registry`] pulls, pushes, logs in and out, with
//!   docker's names and `config.json`.
//! - [`container`]: [`Containers`] creates and runs containers (attached, or
//!   under a detached supervisor that outlives the caller), lists, signals,
//!   stops, removes and commits them, and manages volumes.
//! - [`mod@verify`]: a whole-store consistency check and repair.
//!
//! The crates underneath are re-exported ([`oci`], [`store`], [`sandbox`],
//! [`solver`], [`parser`]), so the types the API exposes need no
//! version-matched dependency of the embedder's own.
//!
//! A binary that runs builds or containers calls [`entry_hook`] first thing
//! in `main` (it may be run again as a sandbox's init, the rootless
//! namespace holder or a detached container's supervisor), and, to run
//! rootless as an ordinary user, [`sandbox::rootless::enter`] before
//! starting threads.
//!
//! What it is not: it never prints or installs a tracing subscriber; progress
//! and diagnostics are returned as data for the caller to render, and log
//! events go to whatever subscriber the caller installs.
#![forbid(unsafe_code)]

pub mod build;
mod build_cache;
pub mod check;
pub mod container;
pub mod context;
pub mod dockerignore;
mod entry;
mod error;
pub mod events;
mod gopath;
pub mod image;
mod lower;
mod ops;
pub mod registry;
pub mod source_map;
pub mod verify;

pub use buildr_cache as store;
pub use buildr_exec as sandbox;
pub use buildr_oci as oci;
pub use buildr_parser as parser;
pub use buildr_solver as solver;

pub use build::{Builder, ProgressSink};
pub use check::check;
pub use container::Containers;
pub use entry::entry_hook;
pub use error::{Error, Result};
pub use image::{Images, default_root};
pub use registry::Registry;
