//! Integration tests: containers (one binary; each file a module).

#[path = "../support/build_common.rs"]
mod build_common;
#[path = "../support/container_common.rs"]
mod container_common;

mod cp_diff_export;
mod docker_compat;
mod events;
mod fault_kill9;
mod history;
mod hostile_faults;
mod hostile_inputs;
mod hostile_races;
mod hostile_sandbox;
mod images_filters;
mod rootless;
mod run_attach;
mod run_exec;
mod run_health;
mod run_lifecycle;
mod run_network;
mod run_restart;
mod shell_files;
