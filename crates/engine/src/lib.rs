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
//! container operations arrive with their issues. [`Registry`] pulls images
//! (layers unpacked into snapshots), pushes them, and logs in and out, with
//! docker's names and `config.json`. [`Containers`] creates and runs
//! containers (attached, or under a detached supervisor that outlives the
//! caller), lists, signals, stops, removes and commits them, and manages
//! [`Volumes`], with docker's semantics and no daemon.
//!
//! What it is not: it never prints or installs a tracing subscriber; progress
//! and diagnostics are returned as data for the caller to render.
#![forbid(unsafe_code)]

mod build;
mod build_cache;
mod check;
mod container;
mod context;
mod dockerignore;
mod error;
mod gopath;
mod image;
mod lower;
mod ops;
mod registry;
mod source_map;
mod verify;

pub use build::{
    BuildResult, Builder, CacheDestination, CacheExport, CacheExportReport, CacheImport, CacheMode,
    CachePruneReport, DEFAULT_GZIP_LEVEL, LayerCompression, LogStream, NetworkMode, Output,
    ProgressEvent, RewriteTimestamp, SecretSource, StepReport, VertexInfo, parse_ssh,
    prune_registry_cache,
};
pub use buildr_cache::{Digest, PruneReport};
pub use buildr_exec::Limits;
pub use buildr_exec::init_main_if_requested;
pub use buildr_exec::rootless;
pub use buildr_oci::{ClientOptions as RegistryOptions, Credentials, RegistryConfig};
pub use buildr_parser as parser;
pub use buildr_solver::{CacheKey, CancelToken};
pub use check::{CheckOptions, CheckReport, DockerfileSource, check};
pub use container::{
    AttachOptions, BUNDLE_OCI_VERSION, BundleRunOptions, Committed, Container, ContainerConfig,
    ContainerState, Containers, CreateOptions, EXIT_SUPERVISOR_DIED, ExecOptions, ExitInfo, Health,
    HealthOptions, HealthResult, HealthStatus, Healthcheck, LogEntry, LogOptions,
    LogStream as ContainerLogStream, NetworkMode as ContainerNetwork, OciBundle,
    Status as ContainerStatus, SystemPruneOptions, SystemPruneReport, UnpackedBundle, Volume,
    VolumeMount, Volumes, parse_bytes, parse_duration, parse_signal, supervise,
};
pub use context::{
    BuildContext, Change, ChangeKind, ContextEntry, ContextOptions, ContextStats, EntryKind,
    RACY_WINDOW_NS, Selection, SourceMatch, VisitError, find_dockerignore, load_dockerignore,
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
pub use registry::{
    PullOptions, PullPolicy, PullReport, PushOptions, PushReport, Registry, RegistryEvent,
    RegistryProgress, repository_name,
};
pub use source_map::{SourceLine, SourceMap};
pub use verify::{Problem as VerifyProblem, RepairReport, repair, verify};
