//! `inspect`: the JSON document `docker image inspect` prints.

use serde::Serialize;
use serde_json::Value;

use super::{Image, Images, familiar_name};
use crate::error::Result;

/// What `docker image inspect` prints for one image, fields in docker's
/// order. `RepoDigests` lists the digest pins recorded by pulls by digest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: Option<String>,
    pub docker_version: String,
    pub author: String,
    pub config: Value,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: u64,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    pub metadata: InspectMetadata,
    pub descriptor: InspectDescriptor,
}

/// `RootFS`: the layer diff ids.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

/// `Metadata`: buildr does not record tag times.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectMetadata {
    pub last_tag_time: String,
}

/// `Descriptor`: the manifest, as docker's containerd store shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Images {
    /// `docker image inspect` for one image argument (name, id or prefix).
    pub fn inspect(&self, input: &str) -> Result<ImageInspect> {
        let image = self.resolve(input)?;
        let pins = self.pins_of(&image.id)?;
        let size = self.image_size(&image)?;
        Ok(inspect_json(&image, &pins, size))
    }
}

fn inspect_json(image: &Image, pins: &[String], size: u64) -> ImageInspect {
    let config = &image.config;
    let comment = config
        .extra
        .get("comment")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| config.history.last().and_then(|h| h.comment.clone()))
        .unwrap_or_default();
    ImageInspect {
        id: image.id.to_string(),
        repo_tags: image.names.iter().map(|n| familiar_name(n)).collect(),
        repo_digests: pins.iter().map(|n| familiar_name(n)).collect(),
        parent: String::new(),
        comment,
        created: config.created.clone(),
        docker_version: String::new(),
        author: config.author.clone().unwrap_or_default(),
        config: config
            .config
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or(Value::Null),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        os: config.os.clone(),
        os_version: config.os_version.clone(),
        size,
        root_fs: InspectRootFs {
            kind: config.rootfs.kind.clone(),
            layers: config
                .rootfs
                .diff_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
        },
        metadata: InspectMetadata {
            last_tag_time: "0001-01-01T00:00:00Z".to_owned(),
        },
        descriptor: InspectDescriptor {
            media_type: image.manifest_media_type.clone(),
            digest: image.manifest_digest.to_string(),
            size: image.manifest_size,
        },
    }
}
