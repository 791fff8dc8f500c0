//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::{Digest, RecordKey, SnapshotId};

/// Everything that can go wrong with the store.
///
/// Content problems (a corrupt blob, a record that is not JSON) are errors,
/// never panics, and name the digest, key or path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("store at {root} has layout version {found}, this buildr supports up to {supported}")]
    NewerLayout {
        root: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("store layout file {path} is invalid: {reason}")]
    BadLayout { path: PathBuf, reason: String },

    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("blob {digest} is corrupt: {reason}")]
    CorruptBlob { digest: Digest, reason: String },

    #[error("blob {digest} is {size} bytes, more than the {max} allowed here")]
    BlobTooLarge { digest: Digest, size: u64, max: u64 },

    #[error("blob {digest} not found in the store")]
    BlobNotFound { digest: Digest },

    #[error("snapshot {id} not found in the store")]
    SnapshotNotFound { id: SnapshotId },

    #[error("invalid snapshot id {input:?}: {reason}")]
    InvalidSnapshotId { input: String, reason: &'static str },

    #[error("invalid record key {input:?}: {reason}")]
    InvalidRecordKey { input: String, reason: &'static str },

    #[error("invalid tag name {input:?}: {reason}")]
    InvalidTag { input: String, reason: &'static str },

    #[error("cache record {key} at {path} is corrupt: {reason}")]
    CorruptRecord {
        key: RecordKey,
        path: PathBuf,
        reason: String,
    },

    #[error("cannot write cache record {key}: it names {what}, which is not in the store")]
    MissingReferent { key: RecordKey, what: String },

    #[error("cannot tag {name:?}: manifest {digest} is not in the store")]
    TagTargetMissing { name: String, digest: Digest },

    #[error("tag file {path} is corrupt: {reason}")]
    CorruptTags { path: PathBuf, reason: String },

    #[error("no default store root: neither $XDG_DATA_HOME nor $HOME is set")]
    NoDefaultRoot,
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds path context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl From<buildr_fs::atomic::AtomicWriteError> for Error {
    fn from(e: buildr_fs::atomic::AtomicWriteError) -> Error {
        Error::Io {
            op: e.step,
            path: e.path,
            source: e.source,
        }
    }
}
