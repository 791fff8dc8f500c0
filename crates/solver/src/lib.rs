//! `buildr-solver`: a generic build-graph solver.
//!
//! It will hold a DAG of vertices (petgraph), each an op behind a trait plus its
//! inputs, and execute it on a bounded pool (rayon): identical vertices run once,
//! every vertex has a blake3 cache key over its definition, its inputs' keys and
//! the content it reads, and progress is reported as events on a channel.
//!
//! What it is not: it knows nothing of Dockerfiles, images or sandboxes; the
//! engine lowers Dockerfile stages into vertices and supplies the concrete ops.
//!
//! Status: not written yet (issue 5).
#![forbid(unsafe_code)]
