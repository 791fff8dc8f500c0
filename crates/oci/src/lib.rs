//! `buildr-oci`: OCI images and layers.
//!
//! It will turn filesystem diffs into OCI layer tars (whiteouts, hardlinks,
//! xattrs, deterministic order) while computing the diff id and blob digest in
//! one streaming pass, extract untrusted layers safely into snapshots, model
//! image configs, manifests and indexes (with Docker's extra fields), save and
//! load archives, and talk to registries (pull, push, auth).
//!
//! What it is not: it does not run processes or decide what to build.
//!
//! Status: not written yet (issues 3 and 6).
#![forbid(unsafe_code)]
