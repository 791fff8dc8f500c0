//! The second half of `COPY --link` / `ADD --link`: the copy ran on an
//! empty state, so its layer and its cache key are independent of the stage
//! below; this op stacks that layer on the stage, as BuildKit's MergeOp
//! does. It reads no file, so when only the stage below changed, the copy
//! stays cached and only this cheap step reruns.

use std::sync::Arc;

use buildr_solver::{BoxError, ExecCtx, Op};

use crate::ops::{State, StateData, input};

/// Input 0: the stage so far; input 1: the `--link` copy's own state.
#[derive(Debug)]
pub(crate) struct LinkOp {
    pub name: String,
}

impl Op<State> for LinkOp {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn definition(&self) -> Vec<u8> {
        b"buildr/link/v1".to_vec()
    }

    fn execute(&self, inputs: &[State], _ctx: &ExecCtx) -> Result<State, BoxError> {
        let base = input(inputs, 0);
        let linked = input(inputs, 1);
        let mut next = StateData::clone(&base);
        next.layers.extend(linked.layers.iter().cloned());
        next.added.extend(linked.added.iter().copied());
        // Both cached: the same `created`, so the same image id.
        next.created = base.created.max(linked.created);
        Ok(Arc::new(next))
    }
}
