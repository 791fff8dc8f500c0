//! Deduplication and caching: identical vertices run once, within a solve,
//! across solves, and across two solves running at the same time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::Duration;

use buildr_solver::{
    BoxError, CacheBackend, CacheKey, CacheStatus, Error, Event, GraphBuilder, KeyLock,
    MemoryBackend, Solver,
};
use common::{Fake, Recorder, jobs};

fn solver(backend: &Arc<MemoryBackend<String>>) -> Solver<String> {
    Solver::new(Arc::clone(backend) as Arc<dyn CacheBackend<String>>).jobs(jobs(2))
}

#[test]
fn same_vertex_added_twice_runs_once() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let base = builder.add(Fake::new(&rec, "base"), &[], "Dockerfile:1");
    let first = builder.add(Fake::new(&rec, "step"), &[base], "Dockerfile:2");
    let second = builder.add(Fake::new(&rec, "step"), &[base], "Dockerfile:7");
    let join = builder.add(Fake::new(&rec, "join"), &[first, second], "Dockerfile:8");
    let graph = builder.build().unwrap();
    assert_eq!(
        graph.len(),
        3,
        "the two identical `step` vertices are merged"
    );
    assert_eq!(graph.vertex(first), graph.vertex(second));
    // The merged vertex keeps the location it was added with first.
    assert_eq!(graph.vertex(second).unwrap().location, "Dockerfile:2");

    let backend = Arc::new(MemoryBackend::new());
    let solution = solver(&backend)
        .solve(&graph, &[first, second, join])
        .unwrap();
    assert_eq!(rec.names(), ["base", "join", "step"]);
    assert_eq!(solution.output(first), solution.output(second));
    assert_eq!(
        solution.output(join).map(String::as_str),
        Some("(base)(step)+(base)(step)(join)"),
        "a repeated input is passed twice, in order"
    );
    assert_eq!(solution.reports().len(), 3);
}

#[test]
fn second_solve_hits_the_cache() {
    let rec = Recorder::default();
    let build = || {
        let mut builder = GraphBuilder::new();
        let a = builder.add(Fake::new(&rec, "a"), &[], "l1");
        let b = builder.add(Fake::new(&rec, "b"), &[a], "l2");
        let c = builder.add(Fake::new(&rec, "c"), &[a, b], "l3");
        (builder.build().unwrap(), c)
    };
    let backend = Arc::new(MemoryBackend::new());

    let (graph, target) = build();
    let first = solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(first.executed(), 3);
    assert_eq!(first.cached(), 0);
    assert_eq!(rec.count("a") + rec.count("b") + rec.count("c"), 3);

    // A fresh graph with the same ops: same keys, nothing runs.
    let (graph, target) = build();
    let second = solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(second.executed(), 0);
    assert_eq!(second.cached(), 3);
    assert_eq!(rec.runs().len(), 3, "no op ran again");
    assert_eq!(first.output(target), second.output(target));
    let keys = |s: &buildr_solver::Solution<String>| {
        let mut keys: Vec<CacheKey> = s.reports().iter().map(|r| r.key).collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&first), keys(&second));
}

#[test]
fn changed_input_reruns_only_its_dependents() {
    //   base ── lib ── app ──┐
    //     └──── tool ────────┴── final
    let rec = Recorder::default();
    let build = |lib_def: &str| {
        let mut builder = GraphBuilder::new();
        let base = builder.add(Fake::new(&rec, "base"), &[], "l1");
        let lib = builder.add(Fake::new(&rec, "lib").def(lib_def), &[base], "l2");
        let app = builder.add(Fake::new(&rec, "app"), &[lib], "l3");
        let tool = builder.add(Fake::new(&rec, "tool"), &[base], "l4");
        let last = builder.add(Fake::new(&rec, "final"), &[app, tool], "l5");
        (builder.build().unwrap(), last)
    };
    let backend = Arc::new(MemoryBackend::new());
    let (graph, target) = build("lib v1");
    solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(rec.runs().len(), 5);

    rec.clear();
    let (graph, target) = build("lib v2");
    let solution = solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(rec.names(), ["app", "final", "lib"]);
    let status = |name: &str| {
        solution
            .reports()
            .iter()
            .find(|r| r.vertex.name == name)
            .map(|r| r.status)
            .unwrap()
    };
    assert_eq!(status("base"), CacheStatus::Cached);
    assert_eq!(status("tool"), CacheStatus::Cached);
    assert_eq!(status("lib"), CacheStatus::Executed);
    assert_eq!(status("final"), CacheStatus::Executed);
}

#[test]
fn content_key_is_lazy_and_mixed_into_the_key() {
    let rec = Recorder::default();
    let context = Arc::new(Mutex::new("hello v1".to_owned()));
    let base = Fake::new(&rec, "base");
    let copy = Fake::new(&rec, "copy").reads(&context);
    let run = Fake::new(&rec, "run");
    let (base_calls, copy_calls) = (
        Arc::clone(&base.content_calls),
        Arc::clone(&copy.content_calls),
    );
    let build = || {
        let mut builder = GraphBuilder::new();
        let b = builder.add(base.clone(), &[], "l1");
        let c = builder.add(copy.clone(), &[b], "l2");
        let r = builder.add(run.clone(), &[c], "l3");
        (builder.build().unwrap(), r)
    };
    let backend = Arc::new(MemoryBackend::new());

    let (graph, target) = build();
    solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(rec.names(), ["base", "copy", "run"]);
    assert_eq!(
        base_calls.load(Ordering::SeqCst),
        1,
        "asked once, on the miss"
    );

    // Same content: everything cached; the plain op's content key is not
    // computed again (its definition-level key decides), the copy's is.
    rec.clear();
    let (graph, target) = build();
    let solution = solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(solution.cached(), 3);
    assert!(rec.runs().is_empty());
    assert_eq!(base_calls.load(Ordering::SeqCst), 1);
    assert_eq!(copy_calls.load(Ordering::SeqCst), 2);

    // The content changes, the definition does not: copy and run rerun.
    *context.lock().unwrap() = "hello v2".to_owned();
    let (graph, target) = build();
    let solution = solver(&backend).solve(&graph, &[target]).unwrap();
    assert_eq!(rec.names(), ["copy", "run"]);
    assert_eq!(solution.cached(), 1);

    // And back: the old result is still cached under the old content.
    rec.clear();
    *context.lock().unwrap() = "hello v1".to_owned();
    let (graph, target) = build();
    let solution = solver(&backend).solve(&graph, &[target]).unwrap();
    assert!(rec.runs().is_empty());
    assert_eq!(solution.cached(), 3);
}

/// A backend that counts `lock` calls, so an op can wait until the other
/// solve is blocked on the same key.
#[derive(Default)]
struct CountingBackend {
    inner: MemoryBackend<String>,
    locks: Mutex<usize>,
    locked: Condvar,
}

impl CountingBackend {
    fn wait_for_locks(&self, n: usize) -> bool {
        let guard = self.locks.lock().unwrap();
        let (guard, _) = self
            .locked
            .wait_timeout_while(guard, Duration::from_secs(10), |count| *count < n)
            .unwrap();
        *guard >= n
    }
}

impl CacheBackend<String> for CountingBackend {
    fn lookup(&self, key: &CacheKey) -> Result<Option<String>, BoxError> {
        self.inner.lookup(key)
    }

    fn save(&self, key: &CacheKey, output: &String) -> Result<(), BoxError> {
        self.inner.save(key, output)
    }

    fn lock(&self, key: &CacheKey) -> Result<KeyLock<'_>, BoxError> {
        *self.locks.lock().unwrap() += 1;
        self.locked.notify_all();
        self.inner.lock(key)
    }
}

#[test]
fn two_concurrent_solves_run_a_shared_vertex_once() {
    let rec = Recorder::default();
    let backend = Arc::new(CountingBackend::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(2));

    let solves: Vec<_> = (0..2)
        .map(|_| {
            let (rec, backend, calls, start) = (
                rec.clone(),
                Arc::clone(&backend),
                Arc::clone(&calls),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                let waiter = Arc::clone(&backend);
                let shared = Fake::new(&rec, "shared").hook(move |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Only finish once the other solve waits on this key: a
                    // solver without the per-key lock would run it twice.
                    assert!(
                        waiter.wait_for_locks(2),
                        "the other solve never reached the lock"
                    );
                    Ok(false)
                });
                let mut builder = GraphBuilder::new();
                let id = builder.add(shared, &[], "l1");
                let graph = builder.build().unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                let solver = Solver::new(backend as Arc<dyn CacheBackend<String>>)
                    .jobs(jobs(1))
                    .events(tx);
                start.wait();
                let solution = solver.solve(&graph, &[id]).unwrap();
                drop(solver);
                let events: Vec<Event> = rx.iter().collect();
                (solution.executed(), solution.output(id).cloned(), events)
            })
        })
        .collect();
    let results: Vec<_> = solves.into_iter().map(|s| s.join().unwrap()).collect();

    assert_eq!(calls.load(Ordering::SeqCst), 1, "the op ran once in total");
    let mut executed: Vec<usize> = results.iter().map(|r| r.0).collect();
    executed.sort();
    assert_eq!(
        executed,
        [0, 1],
        "one solve ran it, the other hit the cache"
    );
    assert_eq!(results[0].1, results[1].1);
    assert_eq!(results[0].1.as_deref(), Some("(shared)"));
    let cached_events = results
        .iter()
        .flat_map(|r| &r.2)
        .filter(|e| matches!(e, Event::Cached { .. }))
        .count();
    assert_eq!(cached_events, 1);
}

/// A backend that explains misses and can be told to fail saves.
#[derive(Default)]
struct PickyBackend {
    inner: MemoryBackend<String>,
    fail_saves: bool,
}

impl CacheBackend<String> for PickyBackend {
    fn lookup(&self, key: &CacheKey) -> Result<Option<String>, BoxError> {
        self.inner.lookup(key)
    }

    fn save(&self, key: &CacheKey, output: &String) -> Result<(), BoxError> {
        if self.fail_saves {
            return Err("disk full".into());
        }
        self.inner.save(key, output)
    }

    fn lock(&self, key: &CacheKey) -> Result<KeyLock<'_>, BoxError> {
        self.inner.lock(key)
    }

    fn explain_miss(&self, vertex: &buildr_solver::VertexInfo, _key: &CacheKey) -> Option<String> {
        (vertex.name == "a").then(|| format!("no previous record at {}", vertex.location))
    }
}

#[test]
fn backend_explains_misses_before_the_op_does() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let a = builder.add(Fake::new(&rec, "a").explain("op says"), &[], "l1");
    let b = builder.add(Fake::new(&rec, "b").explain("op says"), &[a], "l2");
    let graph = builder.build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    Solver::new(Arc::new(PickyBackend::default()) as Arc<dyn CacheBackend<String>>)
        .events(tx)
        .solve(&graph, &[b])
        .unwrap();
    let mut explained: Vec<(String, String)> = rx
        .iter()
        .filter_map(|event| match event {
            Event::Started {
                vertex,
                explain: Some(why),
                ..
            } => Some((vertex.name.clone(), why)),
            _ => None,
        })
        .collect();
    explained.sort();
    assert_eq!(
        explained,
        [
            ("a".to_owned(), "no previous record at l1".to_owned()),
            ("b".to_owned(), "op says".to_owned())
        ]
    );
}

#[test]
fn backend_failure_names_the_vertex_and_action() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let a = builder.add(Fake::new(&rec, "a"), &[], "Dockerfile:5");
    let graph = builder.build().unwrap();
    let backend = PickyBackend {
        fail_saves: true,
        ..PickyBackend::default()
    };
    let error = Solver::new(Arc::new(backend) as Arc<dyn CacheBackend<String>>)
        .solve(&graph, &[a])
        .unwrap_err();
    assert!(
        matches!(&error, Error::Backend { action: "save", name, location, .. }
            if name == "a" && location == "Dockerfile:5"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("cache save failed for vertex `a` at Dockerfile:5")
    );
    assert_eq!(
        std::error::Error::source(&error).unwrap().to_string(),
        "disk full"
    );
}
