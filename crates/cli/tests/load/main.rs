//! Integration tests: load (one binary; each file a module).

#[path = "../support/build_common.rs"]
mod build_common;

mod load_loop;
