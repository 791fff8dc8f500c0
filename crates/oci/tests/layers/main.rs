//! Integration tests: layers (one binary; each file a module).

#[path = "../support/registry.rs"]
mod support;

mod fuzz;
mod hostile;
mod hostile_configs;
mod hostile_tar;
mod layer;
