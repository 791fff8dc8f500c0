//! Scheduling: bounded parallelism, eager starts, failure, cancellation,
//! reachability and progress events. Overlap is judged from timestamps taken
//! inside the ops, and ordering from rendezvous between ops, never from a
//! wall-clock threshold.

mod common;

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use buildr_solver::{
    CacheBackend, CancelToken, Error, Event, GraphBuilder, LogStream, MemoryBackend, Solver,
};
use common::{Behavior, Fake, FakeError, Flag, Recorder, jobs};

fn solver(n_jobs: usize) -> Solver<String> {
    Solver::new(Arc::new(MemoryBackend::new()) as Arc<dyn CacheBackend<String>>).jobs(jobs(n_jobs))
}

fn sleepy_pair(rec: &Recorder) -> (buildr_solver::Graph<String>, Vec<buildr_solver::VertexId>) {
    let mut builder = GraphBuilder::new();
    let sleep = Behavior::Sleep(Duration::from_millis(150));
    let a = builder.add(Fake::new(rec, "a").behave(sleep.clone()), &[], "l1");
    let b = builder.add(Fake::new(rec, "b").behave(sleep), &[], "l2");
    (builder.build().unwrap(), vec![a, b])
}

#[test]
fn independent_ops_overlap_with_two_jobs() {
    let rec = Recorder::default();
    // Each op waits until the other has started: without two workers at once
    // neither would ever see the other, and the waits would time out.
    let (a_started, b_started) = (Flag::default(), Flag::default());
    let mut builder = GraphBuilder::new();
    let (mine, theirs) = (a_started.clone(), b_started.clone());
    let a = builder.add(
        Fake::new(&rec, "a").hook(move |_| {
            mine.raise();
            assert!(theirs.wait(), "b never started while a ran");
            Ok(false)
        }),
        &[],
        "l1",
    );
    let (mine, theirs) = (b_started, a_started);
    let b = builder.add(
        Fake::new(&rec, "b").hook(move |_| {
            mine.raise();
            assert!(theirs.wait(), "a never started while b ran");
            Ok(false)
        }),
        &[],
        "l2",
    );
    let graph = builder.build().unwrap();
    solver(2).solve(&graph, &[a, b]).unwrap();
    let (a, b) = (rec.run("a"), rec.run("b"));
    assert!(
        a.start_seq < b.end_seq && b.start_seq < a.end_seq,
        "{a:?} and {b:?} overlap"
    );
    assert!(a.start <= b.end && b.start <= a.end);
}

#[test]
fn one_job_runs_one_op_at_a_time() {
    let rec = Recorder::default();
    let (graph, targets) = sleepy_pair(&rec);
    solver(1).solve(&graph, &targets).unwrap();
    let (a, b) = (rec.run("a"), rec.run("b"));
    assert!(
        a.end <= b.start || b.end <= a.start,
        "{a:?} and {b:?} do not overlap"
    );
    assert!(a.end_seq < b.start_seq || b.end_seq < a.start_seq);
}

#[test]
fn a_vertex_starts_as_soon_as_its_own_inputs_are_ready() {
    //  slow ── slow_child ──┐
    //  fast ── fast_child ──┴── join
    // `slow` waits until `fast_child` has run: a level-by-level scheduler would
    // only start `fast_child` after `slow` finished, and `slow` would time out.
    let rec = Recorder::default();
    let fast_child_done = Flag::default();
    let signal = fast_child_done.clone();
    let mut builder = GraphBuilder::new();
    let slow = builder.add(
        Fake::new(&rec, "slow").hook(move |_| {
            assert!(
                fast_child_done.wait(),
                "fast_child did not run while slow ran"
            );
            Ok(false)
        }),
        &[],
        "l1",
    );
    let fast = builder.add(Fake::new(&rec, "fast"), &[], "l2");
    let slow_child = builder.add(Fake::new(&rec, "slow_child"), &[slow], "l3");
    let fast_child = builder.add(
        Fake::new(&rec, "fast_child").hook(move |_| {
            signal.raise();
            Ok(false)
        }),
        &[fast],
        "l4",
    );
    let join = builder.add(Fake::new(&rec, "join"), &[slow_child, fast_child], "l5");
    let graph = builder.build().unwrap();
    let solution = solver(2).solve(&graph, &[join]).unwrap();
    assert_eq!(
        solution.output(join).map(String::as_str),
        Some("(slow)(slow_child)+(fast)(fast_child)(join)")
    );
    let (slow, fast_child, slow_child) = (
        rec.run("slow"),
        rec.run("fast_child"),
        rec.run("slow_child"),
    );
    assert!(fast_child.start_seq < slow.end_seq);
    assert!(slow.end_seq < slow_child.start_seq);
    assert!(rec.run("join").start_seq > slow_child.end_seq);
}

#[test]
fn failure_names_the_vertex_and_location() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let base = builder.add(Fake::new(&rec, "FROM alpine"), &[], "Dockerfile:1");
    let bad = builder.add(
        Fake::new(&rec, "RUN make").behave(Behavior::Fail("exit code 2")),
        &[base],
        "Dockerfile:3",
    );
    let after = builder.add(Fake::new(&rec, "COPY out /"), &[bad], "Dockerfile:4");
    let graph = builder.build().unwrap();
    let (tx, rx) = mpsc::channel();
    let error = solver(2).events(tx).solve(&graph, &[after]).unwrap_err();

    let Error::OpFailed {
        name,
        location,
        digest,
        ..
    } = &error
    else {
        panic!("expected OpFailed, got {error:?}");
    };
    assert_eq!(name, "RUN make");
    assert_eq!(location, "Dockerfile:3");
    assert_eq!(*digest, graph.vertex(bad).unwrap().digest);
    assert_eq!(
        error.to_string(),
        "vertex `RUN make` at Dockerfile:3 failed"
    );
    let source = error.source().unwrap().downcast_ref::<FakeError>().unwrap();
    assert_eq!(source.0, "exit code 2");
    assert_eq!(
        rec.count("COPY out /"),
        0,
        "a dependent of a failed vertex never runs"
    );

    let failed: Vec<String> = rx
        .try_iter()
        .filter_map(|event| match event {
            Event::Failed {
                vertex, message, ..
            } => Some(format!("{}: {message}", vertex.name)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        ["RUN make: vertex `RUN make` at Dockerfile:3 failed: fake failure: exit code 2"]
    );
}

#[test]
fn first_failure_cancels_running_and_unstarted_vertices() {
    //  long (waits for cancellation) ── after_long
    //  gate (waits for cancellation, then succeeds) ── after_gate
    //  bad (fails once `long` and `gate` are running)
    let rec = Recorder::default();
    let kills = Arc::new(AtomicUsize::new(0));
    let (long_started, gate_started) = (Flag::default(), Flag::default());
    let mut builder = GraphBuilder::new();

    let (started, killed) = (long_started.clone(), Arc::clone(&kills));
    let long = builder.add(
        Fake::new(&rec, "long").hook(move |ctx| {
            let killed = Arc::clone(&killed);
            let _kill = ctx.on_cancel(move || {
                killed.fetch_add(1, Ordering::SeqCst);
            });
            started.raise();
            Ok(ctx.wait_cancelled(Duration::from_secs(10)))
        }),
        &[],
        "l1",
    );
    let after_long = builder.add(Fake::new(&rec, "after_long"), &[long], "l2");
    let started = gate_started.clone();
    let gate = builder.add(
        Fake::new(&rec, "gate").hook(move |ctx| {
            started.raise();
            let cancelled = ctx.wait_cancelled(Duration::from_secs(10));
            Ok(cancelled)
        }),
        &[],
        "l3",
    );
    let after_gate = builder.add(Fake::new(&rec, "after_gate"), &[gate], "l4");
    let bad = builder.add(
        Fake::new(&rec, "bad").hook(move |_| {
            assert!(long_started.wait() && gate_started.wait());
            Err(Box::new(FakeError("boom")))
        }),
        &[],
        "l5",
    );
    let graph = builder.build().unwrap();
    let error = solver(3)
        .solve(&graph, &[after_long, after_gate, bad])
        .unwrap_err();

    assert!(
        matches!(&error, Error::OpFailed { name, .. } if name == "bad"),
        "the first failure is returned: {error:?}"
    );
    let (long, gate, bad) = (rec.run("long"), rec.run("gate"), rec.run("bad"));
    assert!(long.saw_cancel, "the running op observed cancellation");
    assert!(gate.saw_cancel);
    assert!(long.end_seq > bad.end_seq && gate.end_seq > bad.end_seq);
    assert_eq!(
        kills.load(Ordering::SeqCst),
        1,
        "the kill callback ran once"
    );
    assert_eq!(rec.count("after_long"), 0);
    assert_eq!(
        rec.count("after_gate"),
        0,
        "a vertex whose inputs succeed after the failure never starts"
    );
}

#[test]
fn cancelling_from_outside_stops_the_solve() {
    let rec = Recorder::default();
    let token = CancelToken::new();
    let started = Flag::default();
    let mut builder = GraphBuilder::new();
    let signal = started.clone();
    let long = builder.add(
        Fake::new(&rec, "long").hook(move |ctx| {
            signal.raise();
            Ok(ctx.wait_cancelled(Duration::from_secs(10)))
        }),
        &[],
        "l1",
    );
    let after = builder.add(Fake::new(&rec, "after"), &[long], "l2");
    let graph = builder.build().unwrap();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            assert!(started.wait());
            token.cancel();
        })
    };
    let error = solver(2)
        .cancel_token(token)
        .solve(&graph, &[after])
        .unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(error, Error::Cancelled), "{error:?}");
    assert!(rec.run("long").saw_cancel);
    assert_eq!(rec.count("after"), 0);
}

#[test]
fn a_panicking_op_is_an_error_not_a_crash() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let bad = builder.add(Fake::new(&rec, "bad").behave(Behavior::Panic), &[], "l9");
    let graph = builder.build().unwrap();
    let error = solver(1).solve(&graph, &[bad]).unwrap_err();
    assert!(
        matches!(&error, Error::Panicked { name, location, message, .. }
            if name == "bad" && location == "l9" && message.contains("fake op bad panicked")),
        "{error:?}"
    );
}

#[test]
fn only_vertices_the_targets_need_run() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let a = builder.add(Fake::new(&rec, "a"), &[], "l1");
    let b = builder.add(Fake::new(&rec, "b"), &[a], "l2");
    let _unrelated = builder.add(Fake::new(&rec, "unrelated"), &[], "l3");
    let _user_of_a = builder.add(Fake::new(&rec, "user_of_a"), &[a], "l4");
    let graph = builder.build().unwrap();
    let solution = solver(2).solve(&graph, &[b]).unwrap();
    assert_eq!(rec.names(), ["a", "b"]);
    assert_eq!(solution.reports().len(), 2);
    assert_eq!(
        solution.output(a),
        None,
        "only targets' outputs are returned"
    );

    // No targets: nothing runs.
    let solution = solver(2).solve(&graph, &[]).unwrap();
    assert!(solution.reports().is_empty());
    assert_eq!(rec.runs().len(), 2);
}

#[test]
fn events_report_every_vertex() {
    let rec = Recorder::default();
    let backend: Arc<dyn CacheBackend<String>> = Arc::new(MemoryBackend::new());
    let build = || {
        let mut builder = GraphBuilder::new();
        let a = builder.add(Fake::new(&rec, "a").explain("no record for a"), &[], "l1");
        let b = builder.add(Fake::new(&rec, "b"), &[a], "l2");
        (builder.build().unwrap(), a, b)
    };
    let (graph, a, b) = build();
    let (tx, rx) = mpsc::channel();
    let solver = Solver::new(Arc::clone(&backend)).jobs(jobs(2)).events(tx);
    let solution = solver.solve(&graph, &[b]).unwrap();
    drop(solver);
    let events: Vec<Event> = rx.iter().collect();

    let digest_a = graph.vertex(a).unwrap().digest;
    let of_a: Vec<&Event> = events
        .iter()
        .filter(|e| e.vertex().digest == digest_a)
        .collect();
    assert!(
        matches!(of_a.as_slice(), [
        Event::Started { explain: Some(why), .. },
        Event::Log { stream: LogStream::Stdout, data, .. },
        Event::Finished { .. },
    ] if why == "no record for a" && data == b"running a\n"),
        "{of_a:#?}"
    );
    let report = solution.report(&digest_a).unwrap();
    let Event::Finished { key, duration, .. } = of_a[2] else {
        unreachable!()
    };
    assert_eq!(*key, report.key);
    assert!(*duration <= report.duration);
    // b's events all come after a finished.
    let first_b = events.iter().position(|e| e.vertex().name == "b").unwrap();
    let a_done = events
        .iter()
        .position(|e| matches!(e, Event::Finished { vertex, .. } if vertex.name == "a"))
        .unwrap();
    assert!(a_done < first_b);

    // Second solve: two Cached events and nothing else.
    let (graph, _, b) = build();
    let (tx, rx) = mpsc::channel();
    let solver = Solver::new(backend).jobs(jobs(2)).events(tx);
    solver.solve(&graph, &[b]).unwrap();
    drop(solver);
    let events: Vec<Event> = rx.iter().collect();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| matches!(e, Event::Cached { .. })));
}
