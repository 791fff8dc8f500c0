//! Fake ops with call counters and timestamps taken inside the ops.
#![allow(dead_code)]

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use buildr_solver::{BoxError, ContentHash, ExecCtx, LogStream, Op};

/// One execution of a fake op, as seen from inside it.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub start: Instant,
    pub end: Instant,
    /// Global sequence numbers: start and end, from one counter.
    pub start_seq: usize,
    pub end_seq: usize,
    pub saw_cancel: bool,
}

/// Shared log of every fake op execution.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    runs: Arc<Mutex<Vec<Run>>>,
    seq: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.runs().into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    pub fn count(&self, name: &str) -> usize {
        self.runs().iter().filter(|r| r.name == name).count()
    }

    pub fn run(&self, name: &str) -> Run {
        let runs: Vec<Run> = self.runs().into_iter().filter(|r| r.name == name).collect();
        assert_eq!(
            runs.len(),
            1,
            "expected exactly one run of {name}: {runs:?}"
        );
        runs.into_iter().next().unwrap()
    }

    pub fn clear(&self) {
        self.runs.lock().unwrap().clear();
    }

    fn next_seq(&self) -> usize {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }
}

pub type Hook = Arc<dyn Fn(&ExecCtx) -> Result<bool, BoxError> + Send + Sync>;

/// What a fake op does while it runs. Every behaviour returns whether the op
/// saw cancellation.
#[derive(Clone)]
pub enum Behavior {
    Ok,
    Sleep(Duration),
    Fail(&'static str),
    Panic,
    /// Waits up to 10 s for cancellation, then returns Ok.
    UntilCancelled,
    /// Arbitrary code (rendezvous with other ops).
    Hook(Hook),
}

/// A fake op: output = its inputs' outputs joined by `+`, then `(name)`.
#[derive(Clone)]
pub struct Fake {
    pub name: String,
    pub definition: String,
    pub behavior: Behavior,
    pub rec: Recorder,
    /// External content this op "reads" (like files of a build context).
    pub content: Option<Arc<Mutex<String>>>,
    pub content_calls: Arc<AtomicUsize>,
    pub explain: Option<String>,
}

impl Fake {
    pub fn new(rec: &Recorder, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            definition: format!("fake {name}"),
            behavior: Behavior::Ok,
            rec: rec.clone(),
            content: None,
            content_calls: Arc::new(AtomicUsize::new(0)),
            explain: None,
        }
    }

    pub fn def(mut self, definition: &str) -> Self {
        self.definition = definition.to_owned();
        self
    }

    pub fn behave(mut self, behavior: Behavior) -> Self {
        self.behavior = behavior;
        self
    }

    pub fn hook(
        self,
        hook: impl Fn(&ExecCtx) -> Result<bool, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.behave(Behavior::Hook(Arc::new(hook)))
    }

    pub fn reads(mut self, content: &Arc<Mutex<String>>) -> Self {
        self.content = Some(Arc::clone(content));
        self
    }

    pub fn explain(mut self, why: &str) -> Self {
        self.explain = Some(why.to_owned());
        self
    }
}

#[derive(Debug)]
pub struct FakeError(pub &'static str);

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fake failure: {}", self.0)
    }
}

impl std::error::Error for FakeError {}

impl Op<String> for Fake {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn definition(&self) -> Vec<u8> {
        self.definition.as_bytes().to_vec()
    }

    fn content_key(
        &self,
        _inputs: &[&String],
        _ctx: &ExecCtx,
    ) -> Result<Option<ContentHash>, BoxError> {
        self.content_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .content
            .as_ref()
            .map(|content| ContentHash::of(content.lock().unwrap().as_bytes())))
    }

    fn execute(&self, inputs: &[String], ctx: &ExecCtx) -> Result<String, BoxError> {
        let start = Instant::now();
        let start_seq = self.rec.next_seq();
        ctx.log(
            LogStream::Stdout,
            format!("running {}\n", self.name).as_bytes(),
        );
        let result: Result<bool, BoxError> = match &self.behavior {
            Behavior::Ok => Ok(false),
            Behavior::Sleep(duration) => {
                std::thread::sleep(*duration);
                Ok(false)
            }
            Behavior::Fail(why) => Err(Box::new(FakeError(why))),
            Behavior::Panic => panic!("fake op {} panicked", self.name),
            Behavior::UntilCancelled => Ok(ctx.wait_cancelled(Duration::from_secs(10))),
            Behavior::Hook(hook) => hook(ctx),
        };
        let end_seq = self.rec.next_seq();
        let saw_cancel = *result.as_ref().unwrap_or(&false);
        self.rec.runs.lock().unwrap().push(Run {
            name: self.name.clone(),
            start,
            end: Instant::now(),
            start_seq,
            end_seq,
            saw_cancel,
        });
        result?;
        let mut output = inputs.join("+");
        output.push('(');
        output.push_str(&self.name);
        output.push(')');
        Ok(output)
    }

    fn explain_miss(&self) -> Option<String> {
        self.explain.clone()
    }
}

pub fn jobs(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// A one-shot flag other ops can wait on, with a generous timeout so a
/// scheduler that never raises it fails the test instead of hanging it.
#[derive(Debug, Clone, Default)]
pub struct Flag(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Flag {
    pub fn raise(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// True if raised within 10 s.
    pub fn wait(&self) -> bool {
        let guard = self.0.0.lock().unwrap();
        let (guard, _) = self
            .0
            .1
            .wait_timeout_while(guard, Duration::from_secs(10), |raised| !*raised)
            .unwrap();
        *guard
    }
}
