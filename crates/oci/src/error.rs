//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use buildr_cache::{Digest, DigestParseError};

/// Everything that can go wrong in `buildr-oci`.
///
/// Variants carry the path, tar entry or document they are about, so a
/// message alone says where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation on a host path failed.
    #[error("failed to {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Walking a directory tree failed.
    #[error("failed to walk {}", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: walkdir::Error,
    },
    /// An overlayfs upper dir uses a feature a layer cannot express.
    #[error("unsupported overlay feature at {}: xattr {xattr} (mount without redirect_dir and metacopy)", path.display())]
    UnsupportedOverlay { path: PathBuf, xattr: String },
    /// Writing the layer stream (tar, compressor or sink) failed.
    #[error("failed to write layer entry {entry:?}")]
    Write {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// Reading the layer stream (decompression or tar framing) failed.
    #[error("failed to read layer stream after {entries} entries")]
    Read {
        entries: u64,
        #[source]
        source: io::Error,
    },
    /// A tar entry is malformed or hostile and was refused.
    #[error("refused layer entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    /// Applying a tar entry to the target directory failed.
    #[error("failed to {op} layer entry {entry:?}")]
    Apply {
        op: &'static str,
        entry: String,
        #[source]
        source: io::Error,
    },
    /// A resource limit from [`crate::ExtractOptions`] was hit.
    #[error("layer exceeds the limit of {limit} {what} (at entry {entry:?})")]
    Limit {
        what: &'static str,
        limit: u64,
        entry: String,
    },
    /// A JSON document is larger than allowed.
    #[error("{what} is larger than the limit of {limit} bytes")]
    JsonTooLarge { what: String, limit: u64 },
    /// A JSON document could not be read or decoded.
    #[error("failed to decode {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Reading a JSON document failed.
    #[error("failed to read {what}")]
    JsonRead {
        what: String,
        #[source]
        source: io::Error,
    },
    /// An image reference does not follow the docker grammar.
    #[error("invalid reference {input:?}: {reason}")]
    Reference { input: String, reason: &'static str },
    /// A digest inside a reference is invalid.
    #[error("invalid digest in reference {input:?}")]
    ReferenceDigest {
        input: String,
        #[source]
        source: DigestParseError,
    },
    /// The blob store refused or failed an operation.
    #[error("store: {what}")]
    Store {
        what: String,
        #[source]
        source: buildr_cache::Error,
    },
    /// Connecting to or talking with a registry failed (after retries).
    #[error("request {method} {url} failed")]
    Transport {
        method: &'static str,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// A registry answered with an unexpected status.
    #[error("{method} {url}: registry answered {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// Authentication with a registry or its token service failed.
    #[error("authentication with {registry} failed: {reason}")]
    Auth { registry: String, reason: String },
    /// Content from a registry did not match its descriptor.
    #[error("content {digest} from {url} is invalid: {reason}")]
    Verify {
        digest: Digest,
        url: String,
        reason: String,
    },
    /// A registry answer is malformed or breaks the protocol.
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    /// A blob to push is not in the store, and the caller's
    /// [`fetch_missing`](crate::PushOptions::fetch_missing) could not
    /// bring it in: the source says why.
    #[error("{url}: blob {digest} is not in the store")]
    MissingBlob {
        url: String,
        digest: Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No entry of an index matches the wanted platform.
    #[error("{reference}: no image for platform {platform} (available: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    /// The registry config file or docker config.json is invalid.
    #[error("invalid config {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    /// A docker credential helper failed.
    #[error("credential helper docker-credential-{helper} failed: {reason}")]
    CredentialHelper { helper: String, reason: String },
    /// A plain-HTTP connection was refused by policy.
    #[error(
        "refusing plain http to {host}: only loopback and registries configured insecure may use http"
    )]
    InsecureRefused { host: String },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl From<buildr_fs::atomic::AtomicWriteError> for Error {
    fn from(e: buildr_fs::atomic::AtomicWriteError) -> Error {
        Error::io(e.step, e.path, e.source)
    }
}
