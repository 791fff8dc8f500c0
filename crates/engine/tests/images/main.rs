//! Integration tests: images (one binary; each file a module).

#[path = "../support/images_common.rs"]
mod images_common;

mod images;
mod images_interop;
