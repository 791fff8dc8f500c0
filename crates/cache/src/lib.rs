//! `buildr-cache`: the on-disk store under one root directory.
//!
//! It will hold an OCI-layout blob store (`blobs/sha256/<hex>`), unpacked layer
//! snapshots used as overlay lower dirs, crash-safe cache records (cache key ->
//! result), the image index (name:tag -> manifest digest), and garbage
//! collection primitives. Every write is atomic (temp file, fsync, rename).
//!
//! What it is not: it does not know tar, layers or image formats (that is
//! `buildr-oci`), nor how a result was produced.
//!
//! Status: not written yet (issue 3).
#![forbid(unsafe_code)]

mod digest;

pub use digest::{Digest, DigestParseError, Hasher};
