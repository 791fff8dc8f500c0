//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use buildr_cache::DigestParseError;

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
