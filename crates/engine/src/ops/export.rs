//! Export: the image config and manifest of a solved stage into the store,
//! tags set last (a reader never sees a tag before its blobs).

use buildr_cache::{Digest, Store};
use buildr_oci::{Descriptor, Flavour, History, ImageConfig, Manifest, RootFs, media_type};

use super::StateData;
use crate::error::Result;
use crate::image::to_json;

/// One history entry of the final stage as lowering recorded it.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub created_by: String,
    /// Produced by a vertex (RUN, COPY, ...): it may have added a layer.
    pub from_op: bool,
    pub comment: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub(crate) struct Exported {
    pub config: Digest,
    pub manifest: Digest,
}

/// Writes config and manifest for `state` (base history first) and returns
/// their digests. `config` carries everything but rootfs and the new history.
pub(crate) fn export(
    store: &Store,
    state: &StateData,
    mut config: ImageConfig,
    steps: &[Step],
    created: &str,
) -> Result<Exported> {
    let mut added = state.added.iter();
    for step in steps {
        let empty = if step.from_op {
            !added.next().copied().unwrap_or(false)
        } else {
            true
        };
        config.history.push(History {
            created: Some(created.to_owned()),
            created_by: Some(step.created_by.clone()),
            comment: step.comment.clone(),
            empty_layer: empty.then_some(true),
            ..History::default()
        });
    }
    config.created = Some(created.to_owned());
    config.rootfs = RootFs {
        kind: "layers".to_owned(),
        diff_ids: state.layers.iter().map(|l| l.diff_id).collect(),
    };
    let config_blob = store.put_blob(&to_json(&config)?)?;
    // Base layers keep their blobs; a Docker-typed base's descriptors are
    // renamed to agree with the OCI manifest.
    let manifest = Manifest::image(
        Flavour::Oci,
        Descriptor::new(media_type::OCI_CONFIG, config_blob.digest, config_blob.size),
        state
            .layers
            .iter()
            .map(|l| Descriptor::new(&l.media_type, l.digest, l.size))
            .collect(),
    );
    let manifest_blob = store.put_blob(&to_json(&manifest)?)?;
    Ok(Exported {
        config: config_blob.digest,
        manifest: manifest_blob.digest,
    })
}
