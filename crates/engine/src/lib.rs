//! `buildr`: the embeddable Dockerfile build engine and container runtime.
//!
//! This is the crate other Rust tools depend on. It ties the leaves together:
//! the parser (Dockerfile -> AST), the solver (build graph -> parallel, cached
//! execution), the store (blobs, snapshots, cache records, image index), the
//! sandbox (RUN steps and containers) and the OCI layer/image code.
//!
//! Today it offers [`check`]: parse a Dockerfile and collect its errors and
//! warnings; and [`Images`]: list, tag, remove, inspect, save, load, import
//! and prune images in the store, with docker's semantics. The build and
//! container operations arrive with their issues.
//!
//! What it is not: it never prints or installs a tracing subscriber; progress
//! and diagnostics are returned as data for the caller to render.
#![forbid(unsafe_code)]

mod check;
mod context;
mod dockerignore;
mod error;
mod image;

pub use buildr_cache::{Digest, PruneReport};
pub use buildr_parser as parser;
pub use check::{CheckOptions, CheckReport, DockerfileSource, check};
pub use context::{
    BuildContext, Change, ChangeKind, ContextEntry, ContextOptions, ContextStats, EntryKind,
    RACY_WINDOW_NS, Selection, SourceMatch, find_dockerignore, load_dockerignore,
};
pub use dockerignore::{
    Decision, DockerIgnore, DockerIgnoreError, IgnoreLine, IgnoreRule, PatternSyntax,
};
pub use error::{Error, Result};
pub use image::{
    ArchiveFormat, DiskUsageRow, Image, ImageInspect, ImageSummary, Images, ImportOptions,
    Imported, InspectDescriptor, InspectMetadata, InspectRootFs, LoadReport, LoadedImage,
    PruneImagesOptions, SaveOptions, SystemDf, default_root, familiar_name, format_size,
};
