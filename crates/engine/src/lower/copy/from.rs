//! `COPY --from`: a stage of this Dockerfile (by `AS` name or index) or an
//! image. As BuildKit 0.13, the value is taken as written (no variable
//! expansion), and a stage must be defined before the stage copying from it.

use buildr_solver::VertexId;

use super::super::{Lowering, StageLowering, stages};
use crate::error::{Error, Result};

impl Lowering<'_> {
    /// The vertex `COPY --from=<from>` in stage `st` reads.
    pub(super) fn copy_from(
        &mut self,
        st: &StageLowering,
        from: &str,
        location: &str,
    ) -> Result<VertexId> {
        let dockerfile = self.plan.dockerfile;
        let fail = |message: String| Error::Build {
            location: location.to_owned(),
            message,
        };
        if let Some(idx) = stages::stage_ref(dockerfile, from) {
            let out = self.outs.get(&idx).filter(|_| idx < st.idx);
            let Some(out) = out else {
                let current = dockerfile.stages[st.idx].name.clone().unwrap_or_default();
                return Err(fail(format!(
                    "cannot copy from stage {from:?}, it needs to be defined before current stage {current:?}"
                )));
            };
            return Ok(out.vertex);
        }
        if let Err(e) = buildr_oci::Reference::parse(from) {
            return Err(fail(format!("failed to parse stage name {from:?}: {e}")));
        }
        // An implicit stage in BuildKit: its FROM has no prefix.
        let (vertex, _) = self.base_image(from, location, "", st.uncached)?;
        Ok(vertex)
    }
}
