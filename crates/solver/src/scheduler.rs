//! Running a [`Graph`]: the [`Solver`] walks the vertices the targets need,
//! starts each one on a bounded pool the moment its own inputs are ready,
//! answers from the cache when it can, and stops everything on the first
//! failure.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use crate::backend::CacheBackend;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::event::{CacheStatus, Event, VertexReport};
use crate::graph::{Graph, Node, VertexId};
use crate::key::{CacheKey, VertexDigest};
use crate::op::ExecCtx;
use crate::sink::ProgressSink;

/// Solves graphs against one cache backend.
///
/// ```
/// use std::sync::Arc;
/// use buildr_solver::{BoxError, ExecCtx, GraphBuilder, MemoryBackend, Op, Solver};
///
/// struct Concat(&'static str);
/// impl Op<String> for Concat {
///     fn name(&self) -> String { format!("concat {}", self.0) }
///     fn definition(&self) -> Vec<u8> { self.0.as_bytes().to_vec() }
///     fn execute(&self, inputs: &[String], _: &ExecCtx) -> Result<String, BoxError> {
///         Ok(inputs.concat() + self.0)
///     }
/// }
///
/// let mut builder = GraphBuilder::new();
/// let a = builder.add(Concat("a"), &[], "line 1");
/// let b = builder.add(Concat("b"), &[a], "line 2");
/// let graph = builder.build()?;
/// let solver = Solver::new(Arc::new(MemoryBackend::new()));
/// let solution = solver.solve(&graph, &[b])?;
/// assert_eq!(solution.output(b).map(String::as_str), Some("ab"));
/// # Ok::<(), buildr_solver::Error>(())
/// ```
pub struct Solver<O> {
    backend: Arc<dyn CacheBackend<O>>,
    jobs: NonZeroUsize,
    events: Option<ProgressSink<Event>>,
    cancel: Option<CancelToken>,
}

impl<O> fmt::Debug for Solver<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Solver")
            .field("jobs", &self.jobs)
            .field("events", &self.events.is_some())
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

impl<O: Clone + Send + Sync> Solver<O> {
    /// A solver over `backend`, running as many ops at once as there are
    /// cores, with no progress channel.
    pub fn new(backend: Arc<dyn CacheBackend<O>>) -> Self {
        Self {
            backend,
            jobs: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            events: None,
            cancel: None,
        }
    }

    /// At most `jobs` vertices are looked at or run at the same time.
    pub fn jobs(mut self, jobs: NonZeroUsize) -> Self {
        self.jobs = jobs;
        self
    }

    /// Hands progress [`Event`]s to `events` (a `Sender<Event>`, whose
    /// dropped receiver is ignored, or any [`ProgressSink`]).
    pub fn events(mut self, events: impl Into<ProgressSink<Event>>) -> Self {
        self.events = Some(events.into());
        self
    }

    /// Cancels solves when `token` is cancelled; they then return
    /// [`Error::Cancelled`] unless a vertex failed first.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Computes `targets` and every vertex they need (and nothing else).
    ///
    /// A vertex starts as soon as all of its own inputs are ready. The first
    /// failure cancels the solve: running ops see
    /// [`ExecCtx::is_cancelled`] and their kill callbacks run, vertices not yet
    /// started never start, and that first error is returned.
    pub fn solve(&self, graph: &Graph<O>, targets: &[VertexId]) -> Result<Solution<O>> {
        let target_nodes = targets
            .iter()
            .map(|&id| graph.resolve(id))
            .collect::<Result<Vec<_>>>()?;
        let plan = Plan::new(graph, &target_nodes);

        let n_jobs = self.jobs.get();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n_jobs)
            .thread_name(|i| format!("buildr-solver-{i}"))
            .build()
            .map_err(|source| Error::Pool {
                jobs: n_jobs,
                source: Box::new(source),
            })?;

        let cancel = CancelToken::new();
        let _external = self.cancel.as_ref().map(|external| {
            let cancel = cancel.clone();
            external.on_cancel(move || cancel.cancel())
        });

        let mut run = Run {
            graph,
            backend: &*self.backend,
            events: self.events.clone(),
            cancel: cancel.clone(),
            plan,
            outputs: vec![None; graph.nodes.len()],
            keys: vec![None; graph.nodes.len()],
            reports: Vec::new(),
            running: 0,
            first_error: None,
        };
        pool.in_place_scope_fifo(|scope| run.coordinate(scope));

        if let Some(error) = run.first_error {
            return Err(error);
        }
        let mut outputs = HashMap::with_capacity(targets.len());
        for (&id, &idx) in targets.iter().zip(&target_nodes) {
            match &run.outputs[idx] {
                Some(output) => outputs.insert(id, output.clone()),
                // Only a cancellation from outside leaves a target unsolved.
                None => return Err(Error::Cancelled),
            };
        }
        Ok(Solution {
            outputs,
            reports: run.reports,
        })
    }
}

/// The result of a successful solve.
#[derive(Debug, Clone)]
pub struct Solution<O> {
    outputs: HashMap<VertexId, O>,
    reports: Vec<VertexReport>,
}

impl<O> Solution<O> {
    /// The output of a requested target.
    pub fn output(&self, target: VertexId) -> Option<&O> {
        self.outputs.get(&target)
    }

    /// One report per vertex the targets needed, in completion order.
    pub fn reports(&self) -> &[VertexReport] {
        &self.reports
    }

    /// The report of the vertex with `digest`, if the solve needed it.
    pub fn report(&self, digest: &VertexDigest) -> Option<&VertexReport> {
        self.reports.iter().find(|r| r.vertex.digest == *digest)
    }

    /// How many vertices ran their op.
    pub fn executed(&self) -> usize {
        self.count(CacheStatus::Executed)
    }

    /// How many vertices came from the cache.
    pub fn cached(&self) -> usize {
        self.count(CacheStatus::Cached)
    }

    fn count(&self, status: CacheStatus) -> usize {
        self.reports.iter().filter(|r| r.status == status).count()
    }
}

/// Which vertices a solve needs and how they wait on each other.
struct Plan {
    /// Vertices the targets (transitively) need.
    needed: Vec<bool>,
    is_target: Vec<bool>,
    /// Distinct inputs not yet finished.
    waiting: Vec<usize>,
    /// Needed vertices using each vertex as an input (each user once).
    dependents: Vec<Vec<usize>>,
    /// Users not yet started; the output is dropped at zero unless a target.
    uses_left: Vec<usize>,
}

impl Plan {
    fn new<O>(graph: &Graph<O>, targets: &[usize]) -> Self {
        let len = graph.nodes.len();
        let mut needed = vec![false; len];
        let mut is_target = vec![false; len];
        let mut stack = targets.to_vec();
        for &idx in targets {
            is_target[idx] = true;
        }
        while let Some(idx) = stack.pop() {
            if std::mem::replace(&mut needed[idx], true) {
                continue;
            }
            stack.extend(graph.nodes[idx].inputs.iter().filter(|&&i| !needed[i]));
        }

        let mut waiting = vec![0; len];
        let mut dependents = vec![Vec::new(); len];
        for idx in (0..len).filter(|&idx| needed[idx]) {
            let mut inputs = graph.nodes[idx].inputs.clone();
            inputs.sort_unstable();
            inputs.dedup();
            waiting[idx] = inputs.len();
            for input in inputs {
                dependents[input].push(idx);
            }
        }
        let uses_left = dependents.iter().map(Vec::len).collect();
        Self {
            needed,
            is_target,
            waiting,
            dependents,
            uses_left,
        }
    }
}

/// State of one solve, owned by the coordinating (calling) thread.
struct Run<'g, O> {
    graph: &'g Graph<O>,
    backend: &'g dyn CacheBackend<O>,
    events: Option<ProgressSink<Event>>,
    cancel: CancelToken,
    plan: Plan,
    outputs: Vec<Option<O>>,
    keys: Vec<Option<CacheKey>>,
    reports: Vec<VertexReport>,
    running: usize,
    first_error: Option<Error>,
}

enum Outcome<O> {
    Done(Done<O>),
    /// Not started because the solve was cancelled.
    Skipped,
    Failed(Error),
}

struct Done<O> {
    output: O,
    key: CacheKey,
    status: CacheStatus,
    started: Instant,
    duration: Duration,
}

impl<'g, O: Clone + Send + Sync> Run<'g, O> {
    fn coordinate<'s>(&mut self, scope: &rayon::ScopeFifo<'s>)
    where
        'g: 's,
    {
        let (done_tx, done_rx) = mpsc::channel::<(usize, Outcome<O>)>();
        let ready: Vec<usize> = (0..self.graph.nodes.len())
            .filter(|&idx| self.plan.needed[idx] && self.plan.waiting[idx] == 0)
            .collect();
        for idx in ready {
            self.launch(scope, &done_tx, idx);
        }
        while self.running > 0 {
            // Every worker sends exactly once (panics are caught), and we hold
            // a sender, so this only fails if that promise is broken.
            let Ok((idx, outcome)) = done_rx.recv() else {
                self.fail(Error::WorkerLost);
                return;
            };
            self.running -= 1;
            match outcome {
                Outcome::Done(done) => self.complete(scope, &done_tx, idx, done),
                Outcome::Skipped => {}
                Outcome::Failed(error) => self.fail(error),
            }
        }
    }

    fn fail(&mut self, error: Error) {
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
        self.cancel.cancel();
    }

    fn complete<'s>(
        &mut self,
        scope: &rayon::ScopeFifo<'s>,
        done_tx: &Sender<(usize, Outcome<O>)>,
        idx: usize,
        done: Done<O>,
    ) where
        'g: 's,
    {
        self.reports.push(VertexReport {
            vertex: Arc::clone(&self.graph.nodes[idx].info),
            key: done.key,
            status: done.status,
            started: done.started,
            duration: done.duration,
        });
        self.keys[idx] = Some(done.key);
        self.outputs[idx] = Some(done.output);
        for pos in 0..self.plan.dependents[idx].len() {
            let dependent = self.plan.dependents[idx][pos];
            self.plan.waiting[dependent] -= 1;
            if self.plan.waiting[dependent] == 0 && !self.cancel.is_cancelled() {
                self.launch(scope, done_tx, dependent);
            }
        }
    }

    fn launch<'s>(
        &mut self,
        scope: &rayon::ScopeFifo<'s>,
        done_tx: &Sender<(usize, Outcome<O>)>,
        idx: usize,
    ) where
        'g: 's,
    {
        let node: &'g Node<O> = &self.graph.nodes[idx];
        let mut inputs = Vec::with_capacity(node.inputs.len());
        let mut input_keys = Vec::with_capacity(node.inputs.len());
        for &input in &node.inputs {
            match (&self.outputs[input], self.keys[input]) {
                (Some(output), Some(key)) => {
                    inputs.push(output.clone());
                    input_keys.push(key);
                }
                _ => {
                    self.fail(Error::WorkerLost);
                    return;
                }
            }
        }
        self.release_inputs(node);

        let job = Job {
            node,
            inputs,
            input_keys,
            backend: self.backend,
            ctx: ExecCtx::new(
                Arc::clone(&node.info),
                self.cancel.clone(),
                self.events.clone(),
            ),
            events: self.events.clone(),
        };
        let done_tx = done_tx.clone();
        self.running += 1;
        scope.spawn_fifo(move |_| {
            let outcome = job.run();
            let _ = done_tx.send((idx, outcome));
        });
    }

    /// Drops outputs no later vertex needs (targets are kept).
    fn release_inputs(&mut self, node: &Node<O>) {
        let mut inputs = node.inputs.clone();
        inputs.sort_unstable();
        inputs.dedup();
        for input in inputs {
            self.plan.uses_left[input] -= 1;
            if self.plan.uses_left[input] == 0 && !self.plan.is_target[input] {
                self.outputs[input] = None;
            }
        }
    }
}

/// One vertex, on a pool thread.
struct Job<'g, O> {
    node: &'g Node<O>,
    inputs: Vec<O>,
    input_keys: Vec<CacheKey>,
    backend: &'g dyn CacheBackend<O>,
    ctx: ExecCtx,
    events: Option<ProgressSink<Event>>,
}

impl<O: Clone + Send + Sync> Job<'_, O> {
    fn run(self) -> Outcome<O> {
        if self.ctx.is_cancelled() {
            return Outcome::Skipped;
        }
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| self.attempt(started)))
            .unwrap_or_else(|payload| Err(self.panicked(payload.as_ref())));
        match result {
            Ok(Some(done)) => Outcome::Done(done),
            Ok(None) => Outcome::Skipped,
            Err(error) => {
                self.send(Event::Failed {
                    vertex: Arc::clone(&self.node.info),
                    started,
                    duration: started.elapsed(),
                    message: error_chain(&error),
                });
                Outcome::Failed(error)
            }
        }
    }

    /// Cache lookups, then the op. `None` if cancelled before the op started.
    fn attempt(&self, started: Instant) -> Result<Option<Done<O>>> {
        let node = self.node;
        let definition_key = CacheKey::definition(&node.definition, &self.input_keys);
        let reads_content = node.op.reads_content();
        if !reads_content && let Some(output) = self.lookup(&definition_key)? {
            return Ok(Some(self.cached(definition_key, output, started)));
        }

        // The definition-level key cannot decide: ask for the content the op
        // reads. Content-reading ops are never saved under the definition key.
        let input_refs: Vec<&O> = self.inputs.iter().collect();
        let content = node
            .op
            .content_key(&input_refs, &self.ctx)
            .map_err(|source| Error::ContentKey {
                name: node.info.name.clone(),
                location: node.info.location.clone(),
                digest: node.info.digest,
                source,
            })?;
        let key = match content {
            Some(content) => {
                let key = definition_key.with_content(&content);
                if let Some(output) = self.lookup(&key)? {
                    return Ok(Some(self.cached(key, output, started)));
                }
                key
            }
            None => {
                if reads_content && let Some(output) = self.lookup(&definition_key)? {
                    return Ok(Some(self.cached(definition_key, output, started)));
                }
                definition_key
            }
        };

        let guard = self
            .backend
            .lock(&key)
            .map_err(|source| self.backend_error("lock", key, source))?;
        // Another solve may have computed it while we waited for the lock.
        if let Some(output) = self.lookup(&key)? {
            return Ok(Some(self.cached(key, output, started)));
        }
        if self.ctx.is_cancelled() {
            return Ok(None);
        }

        let explain = self
            .backend
            .explain_miss(&node.info, &key)
            .or_else(|| node.op.explain_miss());
        let exec_started = Instant::now();
        self.send(Event::Started {
            vertex: Arc::clone(&node.info),
            key,
            at: exec_started,
            explain,
        });
        self.backend
            .prepare(&self.inputs)
            .map_err(|source| self.backend_error("prepare", key, source))?;
        let output =
            node.op
                .execute(&self.inputs, &self.ctx)
                .map_err(|source| Error::OpFailed {
                    name: node.info.name.clone(),
                    location: node.info.location.clone(),
                    digest: node.info.digest,
                    source,
                })?;
        self.backend
            .save(&key, &output)
            .map_err(|source| self.backend_error("save", key, source))?;
        drop(guard);
        self.send(Event::Finished {
            vertex: Arc::clone(&node.info),
            key,
            started: exec_started,
            duration: exec_started.elapsed(),
        });
        Ok(Some(Done {
            output,
            key,
            status: CacheStatus::Executed,
            started,
            duration: started.elapsed(),
        }))
    }

    fn lookup(&self, key: &CacheKey) -> Result<Option<O>> {
        self.backend
            .lookup(key)
            .map_err(|source| self.backend_error("lookup", *key, source))
    }

    fn cached(&self, key: CacheKey, output: O, started: Instant) -> Done<O> {
        self.send(Event::Cached {
            vertex: Arc::clone(&self.node.info),
            key,
            at: Instant::now(),
        });
        Done {
            output,
            key,
            status: CacheStatus::Cached,
            started,
            duration: started.elapsed(),
        }
    }

    fn backend_error(&self, action: &'static str, key: CacheKey, source: crate::BoxError) -> Error {
        Error::Backend {
            action,
            name: self.node.info.name.clone(),
            location: self.node.info.location.clone(),
            key,
            source,
        }
    }

    fn panicked(&self, payload: &(dyn std::any::Any + Send)) -> Error {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Error::Panicked {
            name: self.node.info.name.clone(),
            location: self.node.info.location.clone(),
            digest: self.node.info.digest,
            message,
        }
    }

    fn send(&self, event: Event) {
        if let Some(events) = &self.events {
            events.emit(event);
        }
    }
}

/// `error: cause: cause`, for the `Failed` event.
fn error_chain(error: &Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
