//! Image configs, manifests, indexes and descriptors, OCI and Docker both.
//!
//! Own serde types rather than `oci-spec`: its `Config` has no place for the
//! fields Docker writes and BuildKit keeps (`Healthcheck`, `OnBuild`,
//! `Shell`, `ArgsEscaped`), so reading a Docker-built image and writing it
//! back would lose them. Every struct keeps unknown fields in `extra`, so a
//! round trip preserves what this crate does not model. Decoding is bounded
//! by [`decode_json_capped`]; serde_json's recursion limit guards nesting,
//! and [`Digest`] refuses anything but `sha256:<64 hex>`.

use std::collections::BTreeMap;
use std::io::Read;

use buildr_cache::Digest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Media types buildr reads and writes.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// containerd's non-standard Docker zstd type: read, never written.
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Deprecated by OCI, still read: the counterparts of Docker's foreign layers.
    pub const OCI_NONDIST_LAYER: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_NONDIST_LAYER_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_NONDIST_LAYER_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}

/// Default cap for manifests, indexes and configs (BuildKit and containerd
/// use 4 MiB for manifests; configs with long histories can be larger).
pub const DEFAULT_JSON_CAP: u64 = 8 << 20;

/// Decodes `T` from `reader`, refusing documents over `max_bytes`.
///
/// `what` names the document in errors ("manifest sha256:...").
pub fn decode_json_capped<T: DeserializeOwned, R: Read>(
    reader: R,
    max_bytes: u64,
    what: &str,
) -> Result<T> {
    let mut buf = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| Error::JsonRead {
            what: what.to_owned(),
            source,
        })?;
    if buf.len() as u64 > max_bytes {
        return Err(Error::JsonTooLarge {
            what: what.to_owned(),
            limit: max_bytes,
        });
    }
    serde_json::from_slice(&buf).map_err(|source| Error::Json {
        what: what.to_owned(),
        source,
    })
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            extra: Map::new(),
        }
    }
}

/// The platform an image or index entry is for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

/// An image manifest (OCI, or Docker schema 2, which has the same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image config (OCI `application/vnd.oci.image.config.v1+json`, Docker
/// `application/vnd.docker.container.image.v1+json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The runtime defaults of an image, with Docker's field names and extras.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `"80/tcp": {}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Map<String, Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Map<String, Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Docker's `HEALTHCHECK`; durations in nanoseconds as Docker writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The layer diff ids of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A manifest or an index, told apart by media type (or shape when absent).
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestOrIndex {
    Manifest(Box<Manifest>),
    Index(Box<Index>),
}

impl ManifestOrIndex {
    /// Decodes a registry response; `content_type` is the HTTP header if any.
    pub fn decode(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<ManifestOrIndex> {
        let probe: Value = decode_json_capped(bytes, DEFAULT_JSON_CAP, what)?;
        let declared = probe
            .get("mediaType")
            .and_then(Value::as_str)
            .or(content_type);
        let is_index = match declared {
            Some(media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST) => true,
            Some(media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST) => false,
            _ => probe.get("manifests").is_some(),
        };
        let json = |source| Error::Json {
            what: what.to_owned(),
            source,
        };
        if is_index {
            serde_json::from_value(probe)
                .map(ManifestOrIndex::Index)
                .map_err(json)
        } else {
            serde_json::from_value(probe)
                .map(ManifestOrIndex::Manifest)
                .map_err(json)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_CONFIG: &str = r#"{
      "architecture": "amd64",
      "config": {
        "Hostname": "",
        "User": "app",
        "ExposedPorts": {"80/tcp": {}},
        "Env": ["PATH=/usr/bin"],
        "Cmd": ["sh"],
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000,
                        "Timeout": 5000000000, "StartPeriod": 1000000000,
                        "StartInterval": 2000000000, "Retries": 3},
        "ArgsEscaped": true,
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Entrypoint": null,
        "OnBuild": ["RUN echo hi"],
        "Labels": {"a": "b"},
        "StopSignal": "SIGTERM",
        "Shell": ["/bin/bash", "-c"]
      },
      "created": "2024-01-01T00:00:00Z",
      "history": [{"created_by": "ADD x /", "comment": "buildkit.dockerfile.v0"},
                  {"created_by": "CMD [\"sh\"]", "empty_layer": true}],
      "os": "linux",
      "rootfs": {"type": "layers", "diff_ids": ["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
      "moby.buildkit.buildinfo.v1": "e30="
    }"#;

    #[test]
    fn docker_config_round_trips_with_extras() {
        let cfg: ImageConfig =
            decode_json_capped(DOCKER_CONFIG.as_bytes(), DEFAULT_JSON_CAP, "config").unwrap();
        let c = cfg.config.as_ref().unwrap();
        let hc = c.healthcheck.as_ref().unwrap();
        assert_eq!(hc.interval, Some(30_000_000_000));
        assert_eq!(hc.start_interval, Some(2_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(c.on_build.as_deref(), Some(&["RUN echo hi".to_owned()][..]));
        assert_eq!(c.shell.as_ref().unwrap()[0], "/bin/bash");
        assert_eq!(c.args_escaped, Some(true));
        assert_eq!(c.extra.get("Hostname"), Some(&Value::String(String::new())));
        assert_eq!(cfg.history[1].empty_layer, Some(true));
        assert_eq!(cfg.rootfs.diff_ids.len(), 1);
        assert!(cfg.extra.contains_key("moby.buildkit.buildinfo.v1"));
        let again: ImageConfig =
            serde_json::from_slice(&serde_json::to_vec(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn hostile_json_errors_without_panicking() {
        let deep = "[".repeat(100_000);
        let cases: Vec<(&str, &[u8])> = vec![
            ("deep nesting", deep.as_bytes()),
            ("bad digest", br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../x","size":1},"layers":[]}"#),
            ("negative size", br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}}"#),
            ("huge schema", br#"{"schemaVersion":99999999999,"config":{}}"#),
            ("not json", b"\xff\xfe"),
            ("empty", b""),
        ];
        for (name, bytes) in cases {
            let r: Result<Manifest> = decode_json_capped(bytes, DEFAULT_JSON_CAP, name);
            assert!(r.is_err(), "{name} should fail");
        }
        let big = vec![b' '; 1025];
        let r: Result<Value> = decode_json_capped(&big[..], 1024, "big");
        assert!(matches!(r, Err(Error::JsonTooLarge { limit: 1024, .. })));
    }

    #[test]
    fn tells_index_from_manifest() {
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
          "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":7,
          "platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let ManifestOrIndex::Index(idx) = ManifestOrIndex::decode(list, None, "list").unwrap()
        else {
            panic!("expected an index");
        };
        assert_eq!(
            idx.manifests[0]
                .platform
                .as_ref()
                .unwrap()
                .variant
                .as_deref(),
            Some("v8")
        );
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json",
          "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":2},"layers":[]}"#;
        assert!(matches!(
            ManifestOrIndex::decode(m, Some(media_type::OCI_MANIFEST), "m").unwrap(),
            ManifestOrIndex::Manifest(_)
        ));
    }
}
