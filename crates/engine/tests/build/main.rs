//! Integration tests: build (one binary; each file a module).

mod architecture;
mod build_library;
mod context;
mod copy_reuse;
mod dockerignore;
mod layer_bytes;
