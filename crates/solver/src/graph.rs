//! The build graph: vertices (an op plus ordered inputs) added through a
//! [`GraphBuilder`], checked and deduplicated into a [`Graph`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::{Error, Result};
use crate::event::VertexInfo;
use crate::key::VertexDigest;
use crate::op::Op;

/// A vertex handed out by [`GraphBuilder::add`]. Stays valid for the
/// [`Graph`] built from that builder, also when the vertex was merged with an
/// identical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VertexId(usize);

impl VertexId {
    /// The position in the order vertices were added.
    pub fn index(self) -> usize {
        self.0
    }
}

struct Pending<O> {
    op: Arc<dyn Op<O>>,
    inputs: Vec<VertexId>,
    location: String,
}

/// Collects vertices; [`build`](Self::build) checks them and merges identical
/// ones.
pub struct GraphBuilder<O> {
    vertices: Vec<Pending<O>>,
    /// Ids given to `add_input` as the vertex that this builder never handed out.
    unknown: Vec<usize>,
}

impl<O> Default for GraphBuilder<O> {
    fn default() -> Self {
        Self {
            vertices: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

impl<O> fmt::Debug for GraphBuilder<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphBuilder")
            .field("vertices", &self.vertices.len())
            .finish()
    }
}

impl<O> GraphBuilder<O> {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vertex running `op` on `inputs` (their outputs are passed to the
    /// op in this order). `location` is the caller's opaque "where does this
    /// come from" string, quoted in errors and events; it is not part of the
    /// vertex digest or the cache key.
    pub fn add(
        &mut self,
        op: impl Op<O> + 'static,
        inputs: &[VertexId],
        location: impl Into<String>,
    ) -> VertexId {
        self.add_shared(Arc::new(op), inputs, location)
    }

    /// Like [`add`](Self::add) for an op that is already shared.
    pub fn add_shared(
        &mut self,
        op: Arc<dyn Op<O>>,
        inputs: &[VertexId],
        location: impl Into<String>,
    ) -> VertexId {
        self.vertices.push(Pending {
            op,
            inputs: inputs.to_vec(),
            location: location.into(),
        });
        VertexId(self.vertices.len() - 1)
    }

    /// Appends `input` to the inputs of `vertex`, for inputs that are added
    /// after the vertex that uses them. Unknown ids and cycles are reported by
    /// [`build`](Self::build), not here.
    pub fn add_input(&mut self, vertex: VertexId, input: VertexId) {
        if let Some(pending) = self.vertices.get_mut(vertex.0) {
            pending.inputs.push(input);
        } else {
            self.unknown.push(vertex.0);
        }
    }

    /// Checks the graph (every id known, no cycle), computes vertex digests
    /// and merges vertices with equal digests: identical vertices run once.
    pub fn build(self) -> Result<Graph<O>> {
        let len = self.vertices.len();
        if let Some(&id) = self.unknown.first() {
            return Err(Error::UnknownVertex { id, len });
        }
        for pending in &self.vertices {
            if let Some(bad) = pending.inputs.iter().find(|input| input.0 >= len) {
                return Err(Error::UnknownVertex { id: bad.0, len });
            }
        }

        let mut dag: DiGraph<(), ()> = DiGraph::with_capacity(len, len);
        for _ in 0..len {
            dag.add_node(());
        }
        for (idx, pending) in self.vertices.iter().enumerate() {
            for input in &pending.inputs {
                dag.add_edge(NodeIndex::new(input.0), NodeIndex::new(idx), ());
            }
        }
        let order = toposort(&dag, None).map_err(|cycle| {
            let pending = &self.vertices[cycle.node_id().index()];
            Error::Cycle {
                name: pending.op.name(),
                location: pending.location.clone(),
            }
        })?;

        // Digests in topological order: an input's digest is known before
        // its users'.
        let mut digests = vec![None; len];
        let mut definitions: Vec<Vec<u8>> = vec![Vec::new(); len];
        for node_idx in order {
            let idx = node_idx.index();
            let pending = &self.vertices[idx];
            let input_digests: Vec<VertexDigest> = pending
                .inputs
                .iter()
                .filter_map(|input| digests[input.0])
                .collect();
            let definition = pending.op.definition();
            digests[idx] = Some(VertexDigest::compute(&definition, &input_digests));
            definitions[idx] = definition;
        }

        // Merge equal digests; the vertex added first represents them all.
        // `canonical[added index]` = index into `nodes`.
        let mut canonical = Vec::with_capacity(len);
        let mut by_digest: HashMap<VertexDigest, usize> = HashMap::with_capacity(len);
        let mut nodes: Vec<Node<O>> = Vec::with_capacity(len);
        let mut representatives: Vec<Vec<VertexId>> = Vec::with_capacity(len);
        for (idx, (pending, definition)) in self.vertices.into_iter().zip(definitions).enumerate() {
            let Some(digest) = digests[idx] else {
                // Unreachable: toposort succeeded, so every vertex was visited.
                return Err(Error::UnknownVertex { id: idx, len });
            };
            if let Some(&existing) = by_digest.get(&digest) {
                canonical.push(existing);
                continue;
            }
            by_digest.insert(digest, nodes.len());
            canonical.push(nodes.len());
            representatives.push(pending.inputs);
            nodes.push(Node {
                info: Arc::new(VertexInfo {
                    digest,
                    name: pending.op.name(),
                    location: pending.location,
                }),
                op: pending.op,
                inputs: Vec::new(),
                definition,
            });
        }
        for (node, inputs) in nodes.iter_mut().zip(representatives) {
            node.inputs = inputs.iter().map(|input| canonical[input.0]).collect();
        }
        Ok(Graph { nodes, canonical })
    }
}

/// A checked, deduplicated build graph, ready for
/// [`Solver::solve`](crate::Solver::solve).
pub struct Graph<O> {
    pub(crate) nodes: Vec<Node<O>>,
    /// Added [`VertexId`] -> index into `nodes`.
    canonical: Vec<usize>,
}

pub(crate) struct Node<O> {
    pub(crate) op: Arc<dyn Op<O>>,
    /// Indices into `Graph::nodes`, in the op's input order (may repeat).
    pub(crate) inputs: Vec<usize>,
    pub(crate) info: Arc<VertexInfo>,
    pub(crate) definition: Vec<u8>,
}

impl<O> fmt::Debug for Graph<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("vertices", &self.nodes.len())
            .field("added", &self.canonical.len())
            .finish()
    }
}

impl<O> Graph<O> {
    /// Number of distinct vertices (after merging identical ones).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if no vertex was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Who `id` is; `None` if this graph never handed `id` out.
    pub fn vertex(&self, id: VertexId) -> Option<&VertexInfo> {
        self.resolve(id).ok().map(|idx| &*self.nodes[idx].info)
    }

    /// `id` and, following each vertex's first input, the vertices it is
    /// built on, in that order: for a graph of stages, a stage's steps back
    /// to its base. Empty if this graph never handed `id` out.
    pub fn first_input_chain(&self, id: VertexId) -> Vec<VertexDigest> {
        let mut out = Vec::new();
        let mut next = self.resolve(id).ok();
        while let Some(idx) = next {
            // Checked graphs are acyclic; the bound only guards the loop.
            if out.len() > self.nodes.len() {
                break;
            }
            out.push(self.nodes[idx].info.digest);
            next = self.nodes[idx].inputs.first().copied();
        }
        out
    }

    pub(crate) fn resolve(&self, id: VertexId) -> Result<usize> {
        self.canonical
            .get(id.0)
            .copied()
            .filter(|&idx| idx < self.nodes.len())
            .ok_or(Error::UnknownVertex {
                id: id.0,
                len: self.canonical.len(),
            })
    }
}
