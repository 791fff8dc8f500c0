//! The concrete ops of a build graph: what a vertex of a lowered Dockerfile
//! does. Each op takes the [`State`] of its stage so far (input 0, and for
//! `COPY --from` the source stage's state as input 1) and returns the new
//! state. The solver never learns what they mean.
//!
//! A state is immutable and shared: the ordered layers (each with its blob
//! digest and its unpacked snapshot in overlay form) and, per build step,
//! whether it added a layer (for `empty_layer` in the history).

pub(crate) mod archive;
pub(crate) mod commit;
pub(crate) mod copy;
pub(crate) mod export;
pub(crate) mod fetch;
pub(crate) mod from;
pub(crate) mod merged;
pub(crate) mod mounts;
pub(crate) mod run;

use std::sync::Arc;

use buildr_cache::{Digest, SnapshotId};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One layer of a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Layer {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// The unpacked layer, overlay form (whiteouts as 0/0 char devices).
    pub snapshot: SnapshotId,
}

impl Layer {
    /// The layer as a manifest names it.
    pub(crate) fn descriptor(&self) -> buildr_oci::Descriptor {
        buildr_oci::Descriptor::new(&self.media_type, self.digest, self.size)
    }
}

/// The filesystem of a stage after some step: what vertices pass along.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateData {
    /// Bottom layer first.
    pub layers: Vec<Layer>,
    /// One entry per build step since `FROM`: did it add a layer.
    pub added: Vec<bool>,
    /// When the last step that produced this state ran (seconds since the
    /// epoch): the image's `created` unless `SOURCE_DATE_EPOCH` is set, so
    /// a fully cached rebuild gives the same image id. Never in a key.
    #[serde(default)]
    pub created: i64,
}

/// Seconds since the epoch, now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A shared, immutable [`StateData`]: the solver's output type.
pub(crate) type State = Arc<StateData>;

/// The error an op returns to the solver: the engine's error, located.
pub(crate) fn op_error(location: &str, message: impl std::fmt::Display) -> buildr_solver::BoxError {
    Box::new(Error::Build {
        location: location.to_owned(),
        message: message.to_string(),
    })
}

/// The error an op returns to the solver when `what` failed because of
/// `source`, which stays the error's source.
pub(crate) fn op_failure(
    location: &str,
    what: impl std::fmt::Display,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> buildr_solver::BoxError {
    Box::new(Error::Step {
        location: location.to_owned(),
        what: what.to_string(),
        source: source.into(),
    })
}

/// Appends a definition field, length-framed so fields cannot run together.
pub(crate) fn field(def: &mut Vec<u8>, bytes: impl AsRef<[u8]>) {
    let bytes = bytes.as_ref();
    def.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    def.extend_from_slice(bytes);
}

/// The input state at `idx`, or an empty one (a stage `FROM scratch`).
pub(crate) fn input(inputs: &[State], idx: usize) -> State {
    inputs.get(idx).cloned().unwrap_or_default()
}
