//! The resolved project: typed services, networks, volumes, secrets, configs.
//!
//! Every value here is final: variables interpolated, files merged, `extends`
//! and `include` applied, profiles filtered, relative paths made absolute,
//! short syntaxes turned into their long forms. Serialised with serde, it is
//! the shape `docker compose config --format json` prints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::duration::Duration;

/// A compose project, resolved.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Project {
    /// The project name (`-p`, `name:`, else the project directory's name), normalised.
    pub name: String,
    /// The project directory: relative paths in the files resolve against it.
    #[serde(skip)]
    pub working_dir: PathBuf,
    /// The services enabled by the active profiles, by name.
    pub services: BTreeMap<String, Service>,
    /// Networks, by their key in the file (`default` included when a service uses it).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    /// Named volumes, by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// Secrets, by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    /// Configs, by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
    /// Top-level `x-` extensions, kept as written (values typed as YAML types them).
    #[serde(flatten)]
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// Services left out because none of their profiles is active.
    #[serde(skip)]
    pub disabled: BTreeMap<String, Service>,
    /// Warnings met while loading (unset variables, keys buildr ignores).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Service {
    /// Profiles that enable the service; none means always enabled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// How to build the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// The image to run (and the tag of a built one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `container_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The command, as argv (a string in the file is split as a shell would).
    pub command: Option<Vec<String>>,
    /// The entrypoint, as argv.
    pub entrypoint: Option<Vec<String>>,
    /// Environment, `environment` over `env_file`; `None` values come from nowhere.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, Option<String>>,
    /// Env files, already read into `environment` (compose's `config` does not print them).
    #[serde(skip)]
    pub env_file: Vec<EnvFile>,
    /// Published ports, long form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Exposed ports (`80`, `8000-8010/udp`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// Mounts, long form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// Networks the service joins, with its settings on each.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    /// Services to start first, and when they count as ready.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Dependency>,
    /// The health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Restart policy: `no`, `always`, `on-failure[:N]`, `unless-stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// `user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `working_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Container labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `hostname`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Run an init process as PID 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// The signal that stops the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// How long to wait after the stop signal before killing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// `deploy`: replicas and resource limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// `extra_hosts`, as `host=ip`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Allocate a terminal.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Keep stdin open.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    /// Secrets mounted into the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    /// Configs mounted into the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileRef>,
    /// The service's `x-` extensions, kept as written (compose's `config` does not print them).
    #[serde(skip)]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

/// `build:`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Build {
    /// The context: an absolute directory, or a URL kept as written.
    pub context: String,
    /// The Dockerfile, relative to the context (`Dockerfile` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// A Dockerfile written in the compose file (then `dockerfile` is unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Build arguments; `None` takes the value from the environment at build time.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Option<String>>,
    /// The stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Image labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `cache_from`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// `cache_to`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    /// The network RUN steps use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Target platforms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// SSH agent sockets or keys (`default`, `id=path`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<String>,
    /// Build secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
}

/// An `env_file` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvFile {
    /// The file, absolute.
    pub path: PathBuf,
    /// Whether a missing file is an error.
    pub required: bool,
}

/// A published port, long form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Port {
    /// A name for the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` or `host`.
    pub mode: String,
    /// The host address to bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The container port.
    pub target: u16,
    /// The host port or range (`8080`, `8000-8010`); none picks one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// An application protocol hint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// A mount, long form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mount {
    /// What is mounted.
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// A volume name or an absolute host path; none for tmpfs and anonymous volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The path in the container.
    pub target: String,
    /// Mount read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Bind options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// tmpfs options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

/// A mount's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A named or anonymous volume.
    Volume,
    /// A host path.
    Bind,
    /// A memory file system.
    Tmpfs,
}

/// Options of a bind mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BindOptions {
    /// Mount propagation (`rprivate`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create the host path when missing (true for the short syntax).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create_host_path: bool,
    /// SELinux relabel: `z` or `Z`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// Options of a volume mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
    /// Mount a sub-directory of the volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// Options of a tmpfs mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TmpfsOptions {
    /// Size in bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bytes_as_text"
    )]
    pub size: Option<u64>,
    /// File mode of the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A service's settings on one network.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceNetwork {
    /// Further names the service answers to on the network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A fixed IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    /// A fixed IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
}

/// A `depends_on` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dependency {
    /// When the dependency counts as ready.
    pub condition: Condition,
    /// Restart this service when the dependency is restarted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
    /// Whether the dependency must exist.
    pub required: bool,
}

/// `depends_on.*.condition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Started.
    ServiceStarted,
    /// Healthy.
    ServiceHealthy,
    /// Exited with status 0.
    ServiceCompletedSuccessfully,
}

/// `healthcheck`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Healthcheck {
    /// `["CMD", argv...]`, `["CMD-SHELL", script]` or `["NONE"]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// How long one check may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Failures before unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Grace time after start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Turn off the image's health check.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable: bool,
}

/// `deploy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Deploy {
    /// How many containers run the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    /// Resource limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

/// `deploy.resources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Resources {
    /// Upper limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// `deploy.resources.limits`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Limits {
    /// CPUs (fractional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory in bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bytes_as_text"
    )]
    pub memory: Option<u64>,
    /// Process count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// A service's reference to a secret or config.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileRef {
    /// The top-level secret or config.
    pub source: String,
    /// Where it appears in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Owner uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Owner gid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// File mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A top-level network.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Network {
    /// The network's real name (`<project>_<key>` unless set or external).
    pub name: String,
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// Address management.
    pub ipam: Ipam,
    /// Made outside the project; never created or removed by it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// No outside connectivity.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// IPv6 on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub enable_ipv6: bool,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `ipam`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ipam {
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Pools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}

/// One `ipam.config` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IpamPool {
    /// CIDR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Gateway address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Sub-range to allocate from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

/// A top-level volume.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Volume {
    /// The volume's real name (`<project>_<key>` unless set or external).
    pub name: String,
    /// Driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// Made outside the project.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config (file-based, environment-based or inline).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileObject {
    /// Its name (`<project>_<key>` unless set).
    pub name: String,
    /// A host file, absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// An environment variable holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Inline content (configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Made outside the project.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

/// Byte counts print as decimal strings, as compose prints them.
fn bytes_as_text<S: serde::Serializer>(
    value: &Option<u64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(n) => serializer.collect_str(n),
        None => serializer.serialize_none(),
    }
}
