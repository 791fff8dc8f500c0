//! Graph shape: cycles and unknown ids are errors, and a large random DAG
//! runs every vertex once, in an order that respects every edge.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use buildr_solver::{CacheBackend, Error, GraphBuilder, MemoryBackend, Solver, VertexId};
use common::{Fake, Recorder, jobs};
use proptest::prelude::*;

fn solver(n_jobs: usize) -> Solver<String> {
    Solver::new(Arc::new(MemoryBackend::new()) as Arc<dyn CacheBackend<String>>).jobs(jobs(n_jobs))
}

#[test]
fn a_cycle_is_an_error() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::<String>::new();
    let a = builder.add(Fake::new(&rec, "a"), &[], "stage a");
    let b = builder.add(Fake::new(&rec, "b"), &[a], "stage b");
    let c = builder.add(Fake::new(&rec, "c"), &[b], "stage c");
    builder.add_input(a, c);
    let error = builder.build().unwrap_err();
    let Error::Cycle { name, location } = &error else {
        panic!("expected a cycle, got {error:?}");
    };
    assert!(["a", "b", "c"].contains(&name.as_str()));
    assert!(location.starts_with("stage "));
    assert!(
        error
            .to_string()
            .starts_with("build graph has a cycle through vertex")
    );
}

#[test]
fn a_self_loop_is_an_error() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::<String>::new();
    let a = builder.add(Fake::new(&rec, "a"), &[], "l1");
    builder.add_input(a, a);
    assert!(matches!(builder.build(), Err(Error::Cycle { name, .. }) if name == "a"));
}

#[test]
fn forward_references_work_without_a_cycle() {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::<String>::new();
    let user = builder.add(Fake::new(&rec, "user"), &[], "l1");
    let later = builder.add(Fake::new(&rec, "later"), &[], "l2");
    builder.add_input(user, later);
    let graph = builder.build().unwrap();
    let solution = solver(2).solve(&graph, &[user]).unwrap();
    assert_eq!(
        solution.output(user).map(String::as_str),
        Some("(later)(user)")
    );
}

#[test]
fn unknown_ids_are_errors() {
    let rec = Recorder::default();
    let mut other = GraphBuilder::<String>::new();
    let mut foreign = other.add(Fake::new(&rec, "x"), &[], "l1");
    for i in 0..5 {
        foreign = other.add(Fake::new(&rec, &format!("x{i}")), &[], "l1");
    }

    let mut builder = GraphBuilder::<String>::new();
    builder.add(Fake::new(&rec, "a"), &[foreign], "l1");
    assert!(matches!(
        builder.build(),
        Err(Error::UnknownVertex { id: 5, len: 1 })
    ));

    let mut builder = GraphBuilder::<String>::new();
    let a = builder.add(Fake::new(&rec, "a"), &[], "l1");
    builder.add_input(foreign, a);
    assert!(matches!(
        builder.build(),
        Err(Error::UnknownVertex { id: 5, .. })
    ));

    let mut builder = GraphBuilder::<String>::new();
    builder.add(Fake::new(&rec, "a"), &[], "l1");
    let graph = builder.build().unwrap();
    assert!(graph.vertex(foreign).is_none());
    assert!(matches!(
        solver(1).solve(&graph, &[foreign]),
        Err(Error::UnknownVertex { id: 5, len: 1 })
    ));
}

/// xorshift64*: a fixed-seed generator, so the DAG is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Edges `(input, user)` with `input < user`, up to `max_inputs` per vertex.
fn random_dag(seed: u64, len: usize, max_inputs: usize) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed);
    (0..len)
        .map(|idx| {
            if idx == 0 {
                return Vec::new();
            }
            (0..rng.below(max_inputs + 1))
                .map(|_| rng.below(idx))
                .collect()
        })
        .collect()
}

/// Builds `dag` with distinct ops, solves every vertex, and checks each ran
/// once, after all of its inputs.
fn check_dag(dag: &[Vec<usize>], n_jobs: usize) -> Result<(), TestCaseError> {
    let rec = Recorder::default();
    let mut builder = GraphBuilder::new();
    let mut ids: Vec<VertexId> = Vec::with_capacity(dag.len());
    for (idx, inputs) in dag.iter().enumerate() {
        let inputs: Vec<VertexId> = inputs.iter().map(|&i| ids[i]).collect();
        ids.push(builder.add(
            Fake::new(&rec, &format!("v{idx}")),
            &inputs,
            format!("l{idx}"),
        ));
    }
    let graph = builder.build().unwrap();
    prop_assert_eq!(graph.len(), dag.len());
    let backend = Arc::new(MemoryBackend::new());
    let solver =
        Solver::new(Arc::clone(&backend) as Arc<dyn CacheBackend<String>>).jobs(jobs(n_jobs));
    let solution = solver.solve(&graph, &ids).unwrap();

    let runs: HashMap<String, common::Run> = rec
        .runs()
        .into_iter()
        .map(|run| (run.name.clone(), run))
        .collect();
    prop_assert_eq!(rec.runs().len(), dag.len(), "every vertex ran exactly once");
    prop_assert_eq!(runs.len(), dag.len());
    for (idx, inputs) in dag.iter().enumerate() {
        let user = &runs[&format!("v{idx}")];
        for input in inputs {
            let input = &runs[&format!("v{input}")];
            prop_assert!(
                input.end_seq < user.start_seq,
                "v{} started before its input {} ended",
                idx,
                input.name
            );
        }
        // The output is built from the inputs' outputs, in order.
        let expected_inputs: Vec<&str> = inputs
            .iter()
            .map(|&i| solution.output(ids[i]).unwrap().as_str())
            .collect();
        let expected = format!("{}(v{idx})", expected_inputs.join("+"));
        prop_assert_eq!(solution.output(ids[idx]), Some(&expected));
    }

    // Again: everything from the cache, nothing runs.
    let again = solver.solve(&graph, &ids).unwrap();
    prop_assert_eq!(again.cached(), dag.len());
    prop_assert_eq!(rec.runs().len(), dag.len());

    // Only the last vertex as target, on an empty cache: intermediate outputs
    // are dropped once their users started, and the result is the same.
    let last = ids[dag.len() - 1];
    let fresh = Solver::new(Arc::new(MemoryBackend::new()) as Arc<dyn CacheBackend<String>>)
        .jobs(jobs(n_jobs));
    let only_last = fresh.solve(&graph, &[last]).unwrap();
    prop_assert_eq!(only_last.output(last), solution.output(last));
    Ok(())
}

#[test]
fn a_thousand_vertex_random_dag_runs_each_vertex_once_in_order() {
    let dag = random_dag(0x5eed_b111_d000, 1000, 4);
    assert!(dag.iter().map(Vec::len).sum::<usize>() > 1000);
    check_dag(&dag, 4).unwrap();
    check_dag(&dag, 1).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_small_dags_respect_edges(seed in any::<u64>(), len in 1usize..60, n_jobs in 1usize..5) {
        check_dag(&random_dag(seed | 1, len, 3), n_jobs)?;
    }
}
