//! Integration tests: build (one binary; each file a module).

#[path = "../support/build_common.rs"]
mod build_common;
#[path = "../support/compare_common.rs"]
mod compare_common;
#[path = "../support/modern_common.rs"]
mod modern_common;
#[path = "../support/registry_common.rs"]
mod registry_common;

mod build_add;
mod build_copy;
mod build_e2e;
mod build_layers;
mod build_mounts;
mod build_progress;
mod buildkit_compare;
mod buildkit_port;
mod bundle_interop;
mod cache_export;
mod compose_compare;
mod images_cli;
mod registry_cli;
