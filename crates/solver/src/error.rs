//! The solver's one error type.

use crate::key::{CacheKey, VertexDigest};
use crate::op::BoxError;

/// Everything that can go wrong while building a graph or solving it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The op of a vertex failed while executing.
    #[error("vertex `{name}` at {location} failed")]
    OpFailed {
        name: String,
        location: String,
        digest: VertexDigest,
        #[source]
        source: BoxError,
    },

    /// The op of a vertex failed to compute its content checksum.
    #[error("failed to compute content key of vertex `{name}` at {location}")]
    ContentKey {
        name: String,
        location: String,
        digest: VertexDigest,
        #[source]
        source: BoxError,
    },

    /// The cache backend failed for a vertex.
    #[error("cache {action} failed for vertex `{name}` at {location} (key {key})")]
    Backend {
        /// `lookup`, `save`, `lock` or `prepare`.
        action: &'static str,
        name: String,
        location: String,
        key: CacheKey,
        #[source]
        source: BoxError,
    },

    /// The op of a vertex panicked; the panic was contained.
    #[error("vertex `{name}` at {location} panicked: {message}")]
    Panicked {
        name: String,
        location: String,
        digest: VertexDigest,
        message: String,
    },

    /// The graph has a cycle; `name`/`location` is one vertex on it.
    #[error("build graph has a cycle through vertex `{name}` at {location}")]
    Cycle { name: String, location: String },

    /// A vertex id that this graph (builder) never handed out.
    #[error("unknown vertex id {id} (the graph has {len} vertices)")]
    UnknownVertex { id: usize, len: usize },

    /// The solve was cancelled from outside before it completed.
    #[error("solve cancelled")]
    Cancelled,

    /// The worker pool could not be started.
    #[error("failed to start a worker pool of {jobs} threads")]
    Pool {
        jobs: usize,
        #[source]
        source: BoxError,
    },

    /// A worker vanished without reporting (a solver bug, not an op error).
    #[error("a solver worker stopped without a result")]
    WorkerLost,
}

/// The solver's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
