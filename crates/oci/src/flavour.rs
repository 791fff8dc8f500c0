//! Manifest flavours: a manifest's config and layer descriptors name their
//! blobs in the manifest's own family of media types.
//!
//! An image built FROM a Docker-typed base and written as an OCI manifest
//! would otherwise carry `application/vnd.docker.image.rootfs.diff.tar.gzip`
//! layers, which umoci and strict registries refuse. The conversion renames
//! descriptors only: the blobs, and so every digest but the manifest's own,
//! stay the same. Docker has no zstd layer type, so a zstd layer keeps a
//! manifest OCI whatever was asked. This is the one place that maps media
//! types between the flavours; everything that writes a manifest goes
//! through [`Manifest::image`] or [`Manifest::converted`].

use buildr_cache::Digest;
use serde::Serialize;
use serde_json::Map;

use crate::image::{Descriptor, Manifest, media_type};

/// The names each flavour gives the blob kind `media_type` is (`None`:
/// that flavour has no name for it), `None` for a type neither knows.
type Names = (Option<&'static str>, Option<&'static str>);

fn names(media_type: &str) -> Option<Names> {
    use media_type::*;
    Some(match media_type {
        OCI_CONFIG | DOCKER_CONFIG => (Some(OCI_CONFIG), Some(DOCKER_CONFIG)),
        OCI_LAYER | DOCKER_LAYER => (Some(OCI_LAYER), Some(DOCKER_LAYER)),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => (Some(OCI_LAYER_GZIP), Some(DOCKER_LAYER_GZIP)),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => (Some(OCI_LAYER_ZSTD), None),
        OCI_NONDIST_LAYER | DOCKER_FOREIGN_LAYER => {
            (Some(OCI_NONDIST_LAYER), Some(DOCKER_FOREIGN_LAYER))
        }
        OCI_NONDIST_LAYER_GZIP | DOCKER_FOREIGN_LAYER_GZIP => (
            Some(OCI_NONDIST_LAYER_GZIP),
            Some(DOCKER_FOREIGN_LAYER_GZIP),
        ),
        OCI_NONDIST_LAYER_ZSTD => (Some(OCI_NONDIST_LAYER_ZSTD), None),
        _ => return None,
    })
}

/// The two families of image manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `application/vnd.oci.image.manifest.v1+json` and OCI descriptors.
    Oci,
    /// Docker schema 2 (`application/vnd.docker.distribution.manifest.v2+json`).
    Docker,
}

impl Flavour {
    /// The flavour a manifest media type declares; OCI when it declares
    /// none (OCI lets `mediaType` be absent, Docker schema 2 does not).
    pub fn of_manifest(media_type: Option<&str>) -> Option<Flavour> {
        match media_type {
            None | Some(media_type::OCI_MANIFEST) => Some(Flavour::Oci),
            Some(media_type::DOCKER_MANIFEST) => Some(Flavour::Docker),
            Some(_) => None,
        }
    }

    /// This flavour's manifest media type.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Flavour::Oci => media_type::OCI_MANIFEST,
            Flavour::Docker => media_type::DOCKER_MANIFEST,
        }
    }

    fn pick(self, names: Names) -> Option<&'static str> {
        match self {
            Flavour::Oci => names.0,
            Flavour::Docker => names.1,
        }
    }
}

/// `media_type` (a config's or a layer's) as `flavour` names the same blob
/// kind. Types neither flavour knows (artifact configs, attestations, ...)
/// come back unchanged; `None` when `flavour` has no name for it (a zstd
/// layer in Docker).
pub fn convert_media_type(media_type: &str, flavour: Flavour) -> Option<&str> {
    match names(media_type) {
        Some(names) => flavour.pick(names),
        None => Some(media_type),
    }
}

impl Manifest {
    /// A new image manifest over `config` and `layers` whose descriptors
    /// all name their blobs as `preferred` does (OCI when Docker cannot
    /// name a layer).
    pub fn image(preferred: Flavour, config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(preferred.manifest_media_type().to_owned()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
            extra: Map::new(),
        };
        manifest.converted(preferred).unwrap_or(manifest)
    }

    /// The flavour this manifest declares, `None` for a media type that is
    /// neither (left alone by [`Manifest::normalized`]).
    pub fn flavour(&self) -> Option<Flavour> {
        Flavour::of_manifest(self.media_type.as_deref())
    }

    /// The flavour this manifest can take when `preferred` is asked: OCI
    /// when a descriptor has no Docker name.
    pub fn reachable_flavour(&self, preferred: Flavour) -> Flavour {
        let all_named = std::iter::once(&self.config)
            .chain(&self.layers)
            .all(|d| convert_media_type(&d.media_type, preferred).is_some());
        if all_named { preferred } else { Flavour::Oci }
    }

    /// This manifest in `preferred`'s terms (see
    /// [`Manifest::reachable_flavour`]): its own type, config and layers;
    /// `None` when it already is. Blobs and their digests stay the same.
    pub fn converted(&self, preferred: Flavour) -> Option<Manifest> {
        let flavour = self.reachable_flavour(preferred);
        let mut out = self.clone();
        for d in std::iter::once(&mut out.config).chain(&mut out.layers) {
            if let Some(m) = convert_media_type(&d.media_type, flavour) {
                d.media_type = m.to_owned();
            }
        }
        if self.flavour() != Some(flavour) {
            out.media_type = Some(flavour.manifest_media_type().to_owned());
        }
        (out != *self).then_some(out)
    }

    /// This manifest with its descriptors in its own declared flavour;
    /// `None` when they already agree or the flavour is unknown.
    pub fn normalized(&self) -> Option<Manifest> {
        self.converted(self.flavour()?)
    }
}

/// A manifest's (or an index's) JSON and digest, as written to a store,
/// an archive or a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedManifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

impl EncodedManifest {
    /// Encodes `document` (compact JSON, as every manifest buildr writes).
    pub fn encode<T: Serialize>(document: &T) -> crate::Result<EncodedManifest> {
        let bytes = serde_json::to_vec(document).map_err(|source| crate::Error::Json {
            what: "a manifest (encoding)".to_owned(),
            source,
        })?;
        let mut hasher = buildr_cache::Hasher::new();
        hasher.update(&bytes);
        Ok(EncodedManifest {
            digest: hasher.finish(),
            bytes,
        })
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    /// A Docker manifest whose layers carry `layers` as they are.
    fn docker_manifest(layers: &[&str]) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type::DOCKER_MANIFEST.to_owned()),
            artifact_type: None,
            config: Descriptor::new(media_type::DOCKER_CONFIG, digest(0), 10),
            layers: layers
                .iter()
                .zip(1..)
                .map(|(t, n)| Descriptor::new(t, digest(n), 100 + u64::from(n)))
                .collect(),
            subject: None,
            annotations: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn every_known_type_maps_both_ways() {
        use media_type::*;
        let pairs = [
            (OCI_CONFIG, DOCKER_CONFIG),
            (OCI_LAYER, DOCKER_LAYER),
            (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
            (OCI_NONDIST_LAYER, DOCKER_FOREIGN_LAYER),
            (OCI_NONDIST_LAYER_GZIP, DOCKER_FOREIGN_LAYER_GZIP),
        ];
        for (oci, docker) in pairs {
            for from in [oci, docker] {
                assert_eq!(convert_media_type(from, Flavour::Oci), Some(oci), "{from}");
                assert_eq!(
                    convert_media_type(from, Flavour::Docker),
                    Some(docker),
                    "{from}"
                );
            }
        }
    }

    #[test]
    fn zstd_has_no_docker_name_and_unknown_types_pass() {
        use media_type::*;
        for zstd in [OCI_LAYER_ZSTD, DOCKER_LAYER_ZSTD] {
            assert_eq!(convert_media_type(zstd, Flavour::Oci), Some(OCI_LAYER_ZSTD));
            assert_eq!(convert_media_type(zstd, Flavour::Docker), None);
        }
        assert_eq!(
            convert_media_type(OCI_NONDIST_LAYER_ZSTD, Flavour::Docker),
            None
        );
        let intoto = "application/vnd.in-toto+json";
        assert_eq!(convert_media_type(intoto, Flavour::Docker), Some(intoto));
        assert_eq!(convert_media_type(intoto, Flavour::Oci), Some(intoto));
    }

    #[test]
    fn mixed_manifest_converts_to_oci_with_the_same_blobs() {
        let mut mixed = docker_manifest(&[media_type::DOCKER_LAYER_GZIP, media_type::OCI_LAYER]);
        mixed.media_type = Some(media_type::OCI_MANIFEST.to_owned());
        let fixed = mixed.normalized().expect("a mixed manifest changes");
        assert_eq!(fixed.media_type.as_deref(), Some(media_type::OCI_MANIFEST));
        assert_eq!(fixed.config.media_type, media_type::OCI_CONFIG);
        let types: Vec<_> = fixed.layers.iter().map(|l| l.media_type.as_str()).collect();
        assert_eq!(types, [media_type::OCI_LAYER_GZIP, media_type::OCI_LAYER]);
        let blobs = |m: &Manifest| -> Vec<(Digest, u64)> {
            std::iter::once(&m.config)
                .chain(&m.layers)
                .map(|d| (d.digest, d.size))
                .collect()
        };
        assert_eq!(blobs(&fixed), blobs(&mixed));
        assert_eq!(fixed.normalized(), None, "conversion is idempotent");
    }

    #[test]
    fn docker_target_with_zstd_layer_becomes_oci() {
        let m = docker_manifest(&[media_type::DOCKER_LAYER_GZIP, media_type::OCI_LAYER_ZSTD]);
        assert_eq!(m.reachable_flavour(Flavour::Docker), Flavour::Oci);
        let fixed = m.converted(Flavour::Docker).expect("zstd forces oci");
        assert_eq!(fixed.flavour(), Some(Flavour::Oci));
        assert_eq!(fixed.config.media_type, media_type::OCI_CONFIG);
        assert_eq!(fixed.layers[0].media_type, media_type::OCI_LAYER_GZIP);
        assert_eq!(fixed.layers[1].media_type, media_type::OCI_LAYER_ZSTD);
    }

    #[test]
    fn consistent_manifests_are_left_alone() {
        let docker = docker_manifest(&[media_type::DOCKER_LAYER_GZIP]);
        assert_eq!(docker.normalized(), None);
        let oci = docker
            .converted(Flavour::Oci)
            .expect("docker to oci changes");
        assert_eq!(oci.converted(Flavour::Oci), None);
        let mut untyped = oci.clone();
        untyped.media_type = None;
        assert_eq!(untyped.normalized(), None, "an absent mediaType is OCI");
        let mut odd = docker.clone();
        odd.media_type = Some("application/x-unknown".to_owned());
        assert_eq!(odd.normalized(), None);
    }

    #[test]
    fn image_writes_the_preferred_flavour() {
        let m = Manifest::image(
            Flavour::Oci,
            Descriptor::new(media_type::DOCKER_CONFIG, digest(0), 1),
            vec![Descriptor::new(
                media_type::DOCKER_FOREIGN_LAYER_GZIP,
                digest(1),
                2,
            )],
        );
        assert_eq!(m.media_type.as_deref(), Some(media_type::OCI_MANIFEST));
        assert_eq!(m.config.media_type, media_type::OCI_CONFIG);
        assert_eq!(m.layers[0].media_type, media_type::OCI_NONDIST_LAYER_GZIP);
    }

    #[test]
    fn encoded_manifest_digest_is_its_sha256() {
        let m = docker_manifest(&[media_type::DOCKER_LAYER_GZIP]);
        let encoded = EncodedManifest::encode(&m).unwrap();
        let mut hasher = buildr_cache::Hasher::new();
        hasher.update(&encoded.bytes);
        assert_eq!(encoded.digest, hasher.finish());
        let back: Manifest = serde_json::from_slice(&encoded.bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(encoded.size(), encoded.bytes.len() as u64);
        let empty = EncodedManifest::encode(&serde_json::json!({})).unwrap();
        assert_eq!(
            empty.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
