//! `buildr-oci`: OCI images and layers.
//!
//! - [`Diff`] computes the changes of a layer from an overlayfs upper dir or
//!   from two trees, and writes them as a deterministic tar
//!   ([`Diff::write_layer`]) while [`LayerWriter`] computes the diff id, blob
//!   digest and size in the same streaming pass (gzip on every core, zstd, or
//!   none).
//! - [`extract_layer`] unpacks an untrusted layer into a directory without
//!   ever writing outside it, applying whiteouts or converting them to
//!   overlayfs form.
//! - [`ImageConfig`], [`Manifest`], [`Index`], [`Descriptor`]: the JSON
//!   documents, OCI and Docker, with [`decode_json_capped`] for bounded reads;
//!   [`Flavour`] and [`Manifest::converted`]: the one mapping of descriptor
//!   media types between OCI and Docker manifests (same blobs, new names).
//! - [`Reference`]: image names normalized as docker does.
//! - [`RegistryClient`]: pull and push over the distribution protocol, with
//!   docker's auth ([`DockerConfig`]) and registry settings
//!   ([`RegistryConfig`]: mirrors, insecure registries).
//!
//! What it is not: it does not run containers (its only child processes are
//! docker credential helpers), decide what to build, or own
//! the blob store (it writes to `Write` sinks and reads `Read` sources; the
//! store is `buildr-cache`, which the registry client pulls into).
#![forbid(unsafe_code)]

mod compress;
mod diff;
mod error;
mod extract;
mod flavour;
mod image;
mod reference;
mod registry;
mod stat;
mod tarwrite;

pub use compress::{
    CompressOptions, Compression, GZIP_CHUNK, HashCount, LayerDigests, LayerWriter, decompress,
    detect_compression,
};
pub use diff::{Diff, DiffSource};
pub use error::{Error, Result};
pub use extract::{
    ExtractMode, ExtractOptions, ExtractStats, ParentMap, extract_layer, extract_layer_mapped,
};
pub use flavour::{EncodedManifest, Flavour, convert_media_type};
pub use image::{
    ContainerConfig, DEFAULT_JSON_CAP, Descriptor, HealthConfig, History, ImageConfig, Index,
    Manifest, ManifestOrIndex, Platform, RootFs, decode_json_capped, media_type,
};
pub use reference::{DEFAULT_DOMAIN, Reference};
pub use registry::{
    Anonymous, ClientOptions, CredentialSource, Credentials, DOCKER_HUB_KEY, DockerConfig,
    FetchMissingFn, FetchedManifest, Progress, ProgressFn, PullOptions, PulledImage, PushOptions,
    PushReport, RegistryClient, RegistryConfig, RegistryHost, SkipReason, StaticCredentials,
    config_paths, host_platform, is_layer_media_type, parse_platform, unpack_layer,
    unpack_layer_as,
};
pub use tarwrite::LayerOptions;

pub use buildr_cache::Digest;
