//! buildr's compose-file model: finds compose files as docker compose does,
//! reads them (YAML with positions), interpolates variables, merges several
//! files, applies `include`, `extends` and profiles, and resolves the result
//! into a typed [`Project`].
//!
//! It is not a runtime: it starts nothing and touches no store. `up`/`down`
//! are to be built on [`Project`]. Every error names the file, line and key
//! (`compose.yaml:12: services.web.ports[0]: invalid port "abc"`).
//!
//! Main items: [`load`] with [`Options`], [`Project`] and its [`Service`]s,
//! [`to_json`] and [`to_yaml`] for `compose config`.

#![forbid(unsafe_code)]

mod dotenv;
mod duration;
mod error;
mod fields;
mod interpolate;
mod load;
mod merge;
mod model;
mod order;
mod output;
mod ports;
mod resolve;
mod service;
mod volumes;
mod yaml;

pub use duration::Duration;
pub use error::Error;
pub use load::{FILE_NAMES, Options, load, normalize_name};
pub use model::{
    BindOptions, Build, Condition, Dependency, Deploy, EnvFile, FileObject, FileRef, Healthcheck,
    Ipam, IpamPool, Limits, Mount, MountKind, Network, Port, Project, Resources, Service,
    ServiceNetwork, TmpfsOptions, Volume, VolumeOptions,
};
pub use output::{to_json, to_yaml};
pub use yaml::Pos;
