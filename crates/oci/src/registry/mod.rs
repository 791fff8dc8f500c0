//! The registry client: pull and push over the OCI distribution protocol
//! with docker's authentication, credentials and registry settings.
//!
//! - [`RegistryClient`] (built from [`ClientOptions`]) pulls into and pushes
//!   from a [`buildr_cache::Store`]: [`RegistryClient::pull`],
//!   [`RegistryClient::push`], [`RegistryClient::fetch_manifest`],
//!   [`RegistryClient::check_login`]; and for content that is not an image
//!   (a build cache): [`RegistryClient::find_manifest`],
//!   [`RegistryClient::push_tagged`], [`RegistryClient::fetch_blobs_into`],
//!   [`RegistryClient::list_tags`], [`RegistryClient::delete_manifest`].
//! - [`RegistryConfig`]: mirrors and insecure registries from
//!   `config.toml`.
//! - [`DockerConfig`]: docker's `config.json` (auths, credsStore,
//!   credHelpers) for reading credentials and for login/logout.
//!
//! Invariants: content is verified against digest and size before it is
//! committed to the store, and a tag is set (pull) or moved (push) only
//! after everything it points at is in place; credentials are never sent to
//! an origin other than the registry's (or the token realm it names), never
//! in plain HTTP except to loopback or registries configured insecure, and
//! never logged.

mod artifact;
mod auth;
mod client;
mod config;
mod creds;
mod pull;
mod push;
mod transport;

pub use client::{
    ClientOptions, FetchedManifest, Progress, ProgressFn, RegistryClient, SkipReason,
};
pub use config::{RegistryConfig, RegistryHost, default_paths as config_paths};
pub use creds::{
    Anonymous, CredentialSource, Credentials, DOCKER_HUB_KEY, DockerConfig, StaticCredentials,
};
pub use pull::{
    PullOptions, PulledImage, host_platform, is_layer_media_type, parse_platform, unpack_layer,
    unpack_layer_as,
};
pub use push::{FetchMissingFn, PushOptions, PushReport};
