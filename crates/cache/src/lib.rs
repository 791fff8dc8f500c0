//! `buildr-cache`: the on-disk store under one root directory.
//!
//! It holds an OCI-layout blob store (`blobs/sha256/<hex>`), unpacked layer
//! snapshots used as overlay lower dirs, cache records (blake3 record key ->
//! result), the image index (name:tag -> manifest digest), and garbage
//! collection primitives. Several processes share one store without a
//! daemon; every write is atomic (temp file under `tmp/`, fsync, rename,
//! directory fsync), so a crash at any point leaves only complete content
//! under final names. Inside a [`DeferredSync`] (a build) the fsyncs are
//! left out and one `syncfs` makes the writes durable; a power loss in
//! between is detected by a boot-id stamped marker and re-checked on the
//! next open. See [`Store`] for the directory layout.
//!
//! What it is not: it does not know tar, layers, compression or image
//! formats beyond the digests an OCI manifest references (that is
//! `buildr-oci`), nor how a result was produced (that is the solver).
//!
//! Main types: [`Store`] (open with [`Store::open`] at [`default_root`]),
//! [`BlobWriter`] / [`BlobReader`] (streaming, verified), [`SnapshotId`],
//! [`Record`] keyed by [`RecordKey`] (blake3, never convertible to or from
//! the sha256 [`Digest`]), [`PruneOptions`] / [`PruneReport`], [`Problem`]
//! and [`DiskUsage`], and the one [`Error`].
#![forbid(unsafe_code)]

mod blob;
mod content_size;
mod digest;
mod durability;
mod error;
mod gc;
mod key;
mod record;
mod snapshot;
mod store;
mod tags;
mod util;

pub use blob::{BlobInfo, BlobReader, BlobWriter};
pub use digest::{Digest, DigestParseError, Hasher};
pub use durability::DeferredSync;
pub use error::{Error, Result};
pub use gc::{DiskUsage, Problem, PruneOptions, PruneReport, Roots, Usage};
pub use key::{KeyHasher, RecordKey};
pub use record::Record;
pub use snapshot::SnapshotId;
pub use store::{LAYOUT_VERSION, Store, StoreLease, default_root, default_root_for};
