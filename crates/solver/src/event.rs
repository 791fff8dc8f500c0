//! Progress as data: one [`Event`] per vertex state change, handed to the
//! [`ProgressSink`](crate::ProgressSink) given to
//! [`Solver::events`](crate::Solver::events).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::key::{CacheKey, VertexDigest};

/// Who a vertex is, for humans and for matching events up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexInfo {
    /// Graph identity of the vertex.
    pub digest: VertexDigest,
    /// The op's [`name`](crate::Op::name).
    pub name: String,
    /// The caller's opaque location string (e.g. `Dockerfile:12`), as given
    /// when the vertex was added first.
    pub location: String,
}

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A vertex state change. Every vertex that is looked at ends in exactly one
/// of `Cached`, `Finished` or `Failed`, unless the solve was cancelled before
/// it started (then it has no event at all).
#[derive(Debug, Clone)]
pub enum Event {
    /// The vertex missed the cache and its op starts executing.
    Started {
        vertex: Arc<VertexInfo>,
        key: CacheKey,
        at: Instant,
        /// Why it missed, from the cache backend or the op, if either knows.
        explain: Option<String>,
    },
    /// The vertex's result came from the cache; its op did not run.
    Cached {
        vertex: Arc<VertexInfo>,
        key: CacheKey,
        at: Instant,
    },
    /// A chunk of output from a running op.
    Log {
        vertex: Arc<VertexInfo>,
        stream: LogStream,
        data: Vec<u8>,
    },
    /// The op finished and its result was saved.
    Finished {
        vertex: Arc<VertexInfo>,
        key: CacheKey,
        started: Instant,
        duration: Duration,
    },
    /// The op (or computing its key, or the cache) failed.
    Failed {
        vertex: Arc<VertexInfo>,
        started: Instant,
        duration: Duration,
        /// The error, rendered.
        message: String,
    },
}

impl Event {
    /// The vertex the event is about.
    pub fn vertex(&self) -> &VertexInfo {
        match self {
            Self::Started { vertex, .. }
            | Self::Cached { vertex, .. }
            | Self::Log { vertex, .. }
            | Self::Finished { vertex, .. }
            | Self::Failed { vertex, .. } => vertex,
        }
    }
}

/// How a vertex got its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// Its op ran.
    Executed,
    /// It came from the cache.
    Cached,
}

/// What happened to one vertex in a successful solve.
#[derive(Debug, Clone)]
pub struct VertexReport {
    pub vertex: Arc<VertexInfo>,
    pub key: CacheKey,
    pub status: CacheStatus,
    /// When the solver began looking at the vertex (its inputs were ready).
    pub started: Instant,
    /// From `started` to the result being available (cache lookups included).
    pub duration: Duration,
}
