//! `FROM`: the base image's layers, unpacked (once per store) into
//! snapshots in overlay form. `FROM scratch` is the empty state.

use std::sync::Arc;

use buildr_oci::{ExtractMode, ExtractOptions};
use buildr_solver::{BoxError, ExecCtx, LogStream, Op};

use super::commit::Env;
use super::{Layer, State, StateData, field, op_error};
use crate::error::Error;
use crate::image::layer_bytes::unpack_layer;

/// The base of a stage.
#[derive(Debug)]
pub(crate) struct FromOp {
    pub name: String,
    pub location: String,
    /// The manifest digest, `None` for scratch.
    pub manifest: Option<buildr_cache::Digest>,
    pub layers: Vec<Layer>,
    pub env: Env,
    /// What pulling the image while planning did (and how long it took):
    /// logged by the step, not part of its definition.
    pub note: Option<String>,
}

impl Op<State> for FromOp {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn definition(&self) -> Vec<u8> {
        let mut def = b"buildr/from/v1".to_vec();
        match &self.manifest {
            Some(digest) => field(&mut def, digest.to_string()),
            None => field(&mut def, "scratch"),
        }
        def
    }

    fn execute(&self, _inputs: &[State], ctx: &ExecCtx) -> Result<State, BoxError> {
        if let Some(note) = &self.note {
            ctx.log(LogStream::Stdout, note.as_bytes());
        }
        let store = &self.env.store;
        let opts = ExtractOptions {
            mode: ExtractMode::Overlay,
            ..ExtractOptions::default()
        };
        for layer in &self.layers {
            if ctx.is_cancelled() {
                return Err(op_error(&self.location, "cancelled"));
            }
            if store.has_snapshot(&layer.snapshot)? {
                continue;
            }
            store.create_snapshot::<Error, _>(&layer.snapshot, |dir| {
                unpack_layer(store, &layer.descriptor(), Some(&layer.diff_id), dir, &opts)?;
                Ok(())
            })?;
        }
        Ok(Arc::new(StateData {
            layers: self.layers.clone(),
            added: Vec::new(),
            created: super::unix_now(),
        }))
    }
}
