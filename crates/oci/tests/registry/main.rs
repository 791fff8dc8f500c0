//! Integration tests: registry (one binary; each file a module).

#[path = "../support/registry.rs"]
mod support;

mod registry_downgrade;
mod registry_e2e;
mod registry_faults;
mod registry_throughput;
