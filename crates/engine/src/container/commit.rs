//! `commit`: a container's writable layer becomes a new image on top of
//! the one it was created from.
//!
//! The upper dir (overlay form: whiteouts as 0/0 character devices, opaque
//! xattrs) is diffed and streamed through the compressor into a blob; the
//! config is the base image's with the container's environment, one more
//! history entry and the new diff id; the tag is set last, so a reader
//! never sees a tag before its blobs. The layer's snapshot is unpacked on
//! first use like any other layer.

use buildr_oci::{
    Descriptor, Diff, DiffSource, Flavour, History, LayerOptions, Manifest, media_type,
};

use super::Containers;
use super::state::now_nanos;
use crate::error::{Error, Result};
use crate::image::to_json;

/// What `commit` made.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new image id (config digest).
    pub id: buildr_cache::Digest,
    /// The tag set, normalized; `None` for an untagged commit.
    pub name: Option<String>,
}

impl Containers {
    /// Commits a container that is not running as a new image, tagged
    /// `reference` when given.
    pub fn commit(&self, container: &str, reference: Option<&str>) -> Result<Committed> {
        let container = self.get(container)?;
        if container.is_active() {
            return Err(Error::ContainerConflict {
                container: container.config.id.clone(),
                reason: format!(
                    "is {}: stop it before committing (commit of a running container is not supported yet)",
                    container.status_word()
                ),
            });
        }
        let name = reference.map(crate::image::tag_name).transpose()?;
        let base = self.images.resolve(&container.config.image_id)?;
        let store = self.store();
        let _lease = store.lease()?;
        let upper = self.paths(&container.config.id).upper();
        let diff = Diff::compute(DiffSource::OverlayUpper(&upper))?;
        let writer = store.blob_writer()?;
        let (digests, writer) = diff.write_layer(writer, &LayerOptions::default())?;
        let blob = writer.commit(Some(digests.digest))?;

        let created = super::logs::format_time(now_nanos());
        let mut config = base.config.clone();
        let mut runtime = config.config.clone().unwrap_or_default();
        runtime.env = Some(container.config.env.clone());
        config.config = Some(runtime);
        config.created = Some(created.clone());
        config.history.push(History {
            created: Some(created),
            created_by: Some(container.config.argv.join(" ")),
            comment: Some(format!("buildr commit {}", container.config.id)),
            ..History::default()
        });
        config.rootfs.diff_ids.push(digests.diff_id);
        let config_blob = store.put_blob(&to_json(&config)?)?;
        let mut layers = base.manifest.layers.clone();
        layers.push(Descriptor::new(digests.media_type, blob.digest, blob.size));
        // The base's layers may be Docker-typed: renamed for the OCI manifest.
        let manifest = Manifest::image(
            Flavour::Oci,
            Descriptor::new(media_type::OCI_CONFIG, config_blob.digest, config_blob.size),
            layers,
        );
        let manifest_blob = store.put_blob(&to_json(&manifest)?)?;
        if let Some(name) = &name {
            store.set_tag(name, &manifest_blob.digest)?;
        }
        let image = config_blob.digest.to_string();
        self.emit(&container.config, "commit", Some(("imageID", image)));
        Ok(Committed {
            id: config_blob.digest,
            name,
        })
    }
}
