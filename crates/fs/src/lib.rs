//! Filesystem rules that several of buildr's crates apply and that must
//! agree everywhere, each in one place:
//!
//! - [`overlay`]: overlayfs' on-disk conventions and the OCI layer format's
//!   spelling of them: whiteouts (`.wh.NAME` in a tar, a 0/0 character
//!   device in an upper dir), opaque directories (`.wh..wh..opq`, the
//!   `trusted.overlay.opaque`/`user.overlay.opaque` xattr) and the overlay
//!   xattrs a layer must never carry.
//! - [`atomic`]: writing a file so that readers see the old content or the
//!   new, never a prefix.
//! - [`rooted`]: resolving a path inside a root without leaving it.
//!
//! What it is not: it knows nothing of images, stores or sandboxes; the
//! layer reader (`buildr_oci`), the snapshot differ (`buildr_exec`) and the
//! merged view of build states (`buildr`) use these rules.

#![forbid(unsafe_code)]

pub mod atomic;
pub mod overlay;
pub mod rooted;
