//! What a vertex does: the [`Op`] trait, and the [`ExecCtx`] an op runs with
//! (cancellation, kill callbacks, log chunks).

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::{CancelRegistration, CancelToken};
use crate::event::{Event, LogStream, VertexInfo};
use crate::key::ContentHash;
use crate::sink::ProgressSink;

/// The error an op (or a cache backend) returns; the solver wraps it with the
/// vertex's name and location and keeps it as the `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One step of a build. The solver never learns what an op does: it hashes
/// [`definition`](Op::definition), asks for a
/// [`content_key`](Op::content_key) when it must, and calls
/// [`execute`](Op::execute) with the outputs of the vertex's inputs, in the
/// order the inputs were given.
///
/// `O` is the caller's opaque result type (a snapshot handle, a path, ...).
pub trait Op<O>: Send + Sync {
    /// A short human name for progress and errors, e.g. `RUN make`.
    fn name(&self) -> String;

    /// Canonical bytes that fully describe what the op does given its inputs.
    /// Two ops with equal definitions and equal inputs are the same vertex.
    /// Must not contain mtimes, wall-clock time or host paths.
    fn definition(&self) -> Vec<u8>;

    /// A checksum of content the op reads that its definition and input keys
    /// do not already pin down (e.g. files of the build context a `COPY`
    /// selects). `None` (the default) means the result is determined by the
    /// definition and the inputs.
    ///
    /// Called lazily: only when the definition-level key misses in the cache
    /// (or is not looked up, see [`reads_content`](Self::reads_content)),
    /// and with the inputs' outputs available. Whether an op returns `Some`
    /// must depend on its definition only (the solver never stores a
    /// content-reading op's result under its definition-level key).
    fn content_key(&self, inputs: &[&O], ctx: &ExecCtx) -> Result<Option<ContentHash>, BoxError> {
        let _ = (inputs, ctx);
        Ok(None)
    }

    /// Whether [`content_key`](Self::content_key) returns `Some`: such an
    /// op's result is never under its definition-level key, so the solver
    /// does not look that key up (a remote cache would answer a request for
    /// nothing). The default, `false`, is always correct, only slower for
    /// ops that do read content.
    fn reads_content(&self) -> bool {
        false
    }

    /// Runs the op. Long-running ops should poll [`ExecCtx::is_cancelled`] or
    /// register a kill callback with [`ExecCtx::on_cancel`].
    fn execute(&self, inputs: &[O], ctx: &ExecCtx) -> Result<O, BoxError>;

    /// Why this op may have missed the cache, carried in
    /// [`Event::Started`] (e.g. "context files changed: src/main.rs").
    fn explain_miss(&self) -> Option<String> {
        None
    }
}

/// What an op gets while it computes its content key or executes.
#[derive(Debug, Clone)]
pub struct ExecCtx {
    vertex: Arc<VertexInfo>,
    cancel: CancelToken,
    events: Option<ProgressSink<Event>>,
}

impl ExecCtx {
    pub(crate) fn new(
        vertex: Arc<VertexInfo>,
        cancel: CancelToken,
        events: Option<ProgressSink<Event>>,
    ) -> Self {
        Self {
            vertex,
            cancel,
            events,
        }
    }

    /// The vertex being run.
    pub fn vertex(&self) -> &VertexInfo {
        &self.vertex
    }

    /// True once the solve is cancelled (another vertex failed, or the caller
    /// cancelled). The op should stop as soon as it can.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Blocks up to `timeout` for cancellation; true if cancelled.
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        self.cancel.wait_timeout(timeout)
    }

    /// Registers `kill` to run once when the solve is cancelled (right away if
    /// it already is), e.g. to kill a running sandbox. Dropping the returned
    /// registration unregisters it.
    pub fn on_cancel(&self, kill: impl FnOnce() + Send + 'static) -> CancelRegistration {
        self.cancel.on_cancel(kill)
    }

    /// Sends a chunk of the op's output as an [`Event::Log`].
    pub fn log(&self, stream: LogStream, data: &[u8]) {
        if let Some(events) = &self.events {
            events.emit(Event::Log {
                vertex: Arc::clone(&self.vertex),
                stream,
                data: data.to_vec(),
            });
        }
    }
}
