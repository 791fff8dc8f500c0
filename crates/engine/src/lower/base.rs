//! Base images: what a `FROM`, a `COPY --from=<image>` or a
//! `RUN --mount=from=<image>` names, resolved through [`BaseImages`] (the
//! store and its registries in a build, canned configs in lowering's
//! tests) into a FROM vertex and the image's config.

use std::sync::Arc;
use std::time::{Duration, Instant};

use buildr_oci::{ContainerConfig, ImageConfig};
use buildr_solver::VertexId;

use super::{LoweredOp, Lowering};
use crate::error::{Error, Result, error_chain};
use crate::image::{Image, Images};
use crate::ops::Layer;
use crate::ops::from::FromOp;
use crate::registry::{PullPolicy, PullReport, ensure_image};

/// Where lowering finds the images stages are built on. Lowering needs an
/// image's manifest and config while it plans (the config decides how the
/// stage lowers), never its layers.
pub(crate) trait BaseImages: std::fmt::Debug {
    /// The image `reference` names for `platform` (`os/arch[/variant]`).
    /// An image that cannot be found is [`Error::ImageNotFound`],
    /// [`Error::BadReference`] or [`Error::Registry`]; lowering turns those
    /// into [`Error::BaseImageNotFound`] at the line naming it.
    fn resolve(&self, reference: &str, platform: &str) -> Result<ResolvedBase>;
}

/// A resolved base image.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedBase {
    pub image: Image,
    /// What resolving it did (a pull, and how long it took), logged by the
    /// FROM step when it runs; never part of its definition.
    pub note: Option<String>,
}

/// The build's base images: the local store, pulled from their registry
/// when missing (or always, with `--pull`).
#[derive(Debug)]
pub(crate) struct StoreImages<'a> {
    pub images: &'a Images,
    /// [`PullPolicy::Always`] under `--pull`, else [`PullPolicy::Missing`].
    pub policy: PullPolicy,
    /// Pull lazily (config now, layers when read): the build has
    /// `--cache-from` sources, so its steps may never read them.
    pub lazy: bool,
}

impl BaseImages for StoreImages<'_> {
    fn resolve(&self, reference: &str, platform: &str) -> Result<ResolvedBase> {
        let started = Instant::now();
        let (image, pulled) = ensure_image(
            self.images,
            reference,
            Some(platform),
            self.policy,
            None,
            self.lazy,
        )?;
        // The pull happens here, while planning; the FROM step reports it
        // when it runs.
        let note = pulled.map(|report| pull_note(&report, started.elapsed()));
        Ok(ResolvedBase { image, note })
    }
}

/// `resolve REF to DIGEST: pulled N blobs, SIZE in 1.2s` (or `image is up
/// to date`).
fn pull_note(report: &PullReport, elapsed: Duration) -> String {
    let what = if report.downloaded {
        format!(
            "pulled {} blobs, {}",
            report.blobs_fetched,
            crate::image::format_size(report.bytes_fetched)
        )
    } else {
        "image is up to date".to_owned()
    };
    format!(
        "resolve {} to {}: {what} in {:.1}s\n",
        report.reference,
        report.digest,
        elapsed.as_secs_f64()
    )
}

impl Lowering<'_> {
    /// A base image (or `scratch`), as a FROM vertex. `prefix` opens its
    /// progress title (`[build 1/3] `, or nothing for an image named by
    /// `--from`); the title goes on as BuildKit's: `FROM` and the
    /// normalized reference pinned to the digest it resolved to.
    pub(crate) fn base_image(
        &mut self,
        reference: &str,
        location: &str,
        prefix: &str,
        uncached: bool,
    ) -> Result<(VertexId, ImageConfig)> {
        let key = (reference.to_owned(), uncached);
        if let Some(found) = self.bases.get(&key) {
            return Ok(found.clone());
        }
        let (op, config) = if reference == "scratch" {
            let op = FromOp {
                name: format!("{prefix}FROM {reference}"),
                location: location.to_owned(),
                manifest: None,
                layers: Vec::new(),
                env: self.plan.env.clone(),
                note: None,
            };
            (op, scratch_config(&self.plan.platform))
        } else {
            let resolved = match self.resolved.get(reference) {
                // Resolved for a stage with the other cache setting: the
                // pull (and its note) happened there.
                Some(image) => Ok(ResolvedBase {
                    image: image.clone(),
                    note: None,
                }),
                None => self
                    .plan
                    .base_images
                    .resolve(reference, &self.plan.platform),
            };
            let resolved = resolved.map_err(|e| match e {
                Error::ImageNotFound { .. }
                | Error::BadReference { .. }
                | Error::Registry { .. } => Error::BaseImageNotFound {
                    location: location.to_owned(),
                    reference: reference.to_owned(),
                    reason: error_chain(&e),
                },
                other => other,
            })?;
            let ResolvedBase { image, note } = resolved;
            self.resolved.insert(reference.to_owned(), image.clone());
            let op = FromOp {
                name: format!(
                    "{prefix}FROM {}",
                    pinned_reference(reference, &image.manifest_digest)
                ),
                location: location.to_owned(),
                manifest: Some(image.manifest_digest),
                layers: layers(reference, &image)?,
                env: self.plan.env.clone(),
                note,
            };
            (op, image.config)
        };
        let op = LoweredOp::From(Arc::new(op));
        let vertex = self.add(op, &[], location.to_owned(), uncached);
        self.bases.insert(key, (vertex, config.clone()));
        Ok((vertex, config))
    }
}

/// The config of `scratch` for `platform`.
fn scratch_config(platform: &str) -> ImageConfig {
    let mut config = ImageConfig {
        architecture: platform.split('/').nth(1).unwrap_or("amd64").to_owned(),
        os: "linux".to_owned(),
        // As BuildKit's `emptyImage`: a scratch image works in `/`.
        config: Some(ContainerConfig {
            working_dir: Some("/".to_owned()),
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    };
    config.rootfs.kind = "layers".to_owned();
    config
}

/// The image's layers: its manifest's blobs paired with its config's diff
/// ids, which must be as many.
fn layers(reference: &str, image: &Image) -> Result<Vec<Layer>> {
    if image.manifest.layers.len() != image.config.rootfs.diff_ids.len() {
        return Err(Error::BadImage {
            image: reference.to_owned(),
            reason: "manifest layers and config diff_ids differ in number".to_owned(),
        });
    }
    Ok(image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
        .map(|(desc, diff_id)| Layer {
            diff_id: *diff_id,
            digest: desc.digest,
            size: desc.size,
            media_type: desc.media_type.clone(),
            snapshot: buildr_cache::SnapshotId::from_digest(diff_id),
        })
        .collect())
}

/// `reference` as BuildKit titles a FROM: normalized (`docker.io/library/`,
/// `:latest`) and pinned to the manifest digest it resolved to.
fn pinned_reference(reference: &str, digest: &buildr_oci::Digest) -> String {
    match buildr_oci::Reference::parse(reference) {
        Ok(parsed) if parsed.digest().is_some() => parsed.to_string(),
        Ok(parsed) => format!("{parsed}@{digest}"),
        Err(_) => format!("{reference}@{digest}"),
    }
}
