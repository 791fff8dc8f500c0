//! `buildr-solver`: a generic build-graph solver.
//!
//! A [`Graph`] is a DAG of vertices, each an [`Op`] plus its ordered inputs,
//! assembled with a [`GraphBuilder`]. A [`Solver`] computes the vertices a set
//! of targets needs on a bounded pool: a vertex starts the moment its own
//! inputs are ready, results come from a shared [`CacheBackend`] when they
//! can, the first failure cancels the rest, and progress is reported as
//! [`Event`]s on a channel. The result is a [`Solution`]: the targets'
//! outputs and one [`VertexReport`] (timing, cache hit or miss) per vertex.
//!
//! What it is not: it knows nothing of Dockerfiles, images, sandboxes or the
//! store. The engine lowers Dockerfile stages into vertices, supplies the
//! concrete ops (whose output type `O` is its own) and a file-backed cache.
//!
//! # Identity and cache keys
//!
//! - [`VertexDigest`]: blake3 of the op definition and the input digests.
//!   Vertices with equal digests are merged by [`GraphBuilder::build`]: added
//!   twice, run once.
//! - [`CacheKey`]: first the definition-level key, blake3 of the op definition
//!   and the input *cache keys*; it is looked up first. On a miss the op is
//!   asked, lazily, for a [`ContentHash`] of the content it reads
//!   ([`Op::content_key`]); if it has one, the final key mixes it in. Keys
//!   never include mtimes, wall-clock time, host paths or vertex locations:
//!   the solver hashes only what ops return, and ops keep those out.
//!
//! # Deduplication across solves
//!
//! For a key it must compute, the solver takes the backend's per-key
//! [`lock`](CacheBackend::lock), looks the key up again and only then runs the
//! op and saves the result. Two solves (threads or processes) sharing a
//! backend that reach the same key run the op once; the other one hits.
//!
//! # Invariants
//!
//! - The solver never panics on a bad graph: cycles and unknown ids are
//!   [`Error`]s, and a panicking op becomes [`Error::Panicked`].
//! - Only vertices reachable from the requested targets are looked at.
//! - After the first failure no vertex starts; running ops see
//!   [`ExecCtx::is_cancelled`] and their [`ExecCtx::on_cancel`] callbacks run.
#![forbid(unsafe_code)]

mod backend;
mod cancel;
mod error;
mod event;
mod graph;
mod key;
mod op;
mod scheduler;
mod sink;

pub use backend::{CacheBackend, KeyLock, MemoryBackend};
pub use cancel::{CancelRegistration, CancelToken};
pub use error::{Error, Result};
pub use event::{CacheStatus, Event, LogStream, VertexInfo, VertexReport};
pub use graph::{Graph, GraphBuilder, VertexId};
pub use key::{CacheKey, ContentHash, ContentHasher, VertexDigest};
pub use op::{BoxError, ExecCtx, Op};
pub use scheduler::{Solution, Solver};
pub use sink::ProgressSink;
