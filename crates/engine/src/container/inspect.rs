//! `container inspect`: docker's document for a container, as types. They
//! serialize (serde) to the JSON docker prints, field names and nesting as
//! docker's; an embedder reads the fields.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::*;

/// Docker's `inspect` document of one container.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    /// `/NAME`, as docker.
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The command's program.
    pub path: Option<String>,
    /// The command's arguments.
    pub args: Vec<String>,
    pub state: InspectState,
    /// The image id (`sha256:...`).
    pub image: String,
    /// Restarts by the restart policy since the user last started it.
    pub restart_count: u32,
    pub log_path: PathBuf,
    pub host_config: InspectHostConfig,
    pub mounts: Vec<MountPoint>,
    pub network_settings: InspectNetwork,
    pub config: InspectConfig,
    pub graph_driver: GraphDriver,
}

/// `State`: what the container is doing or did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectState {
    /// `created`, `running`, `exited`, ...
    pub status: String,
    pub running: bool,
    /// Frozen by `pause`.
    pub paused: bool,
    /// Waiting to be run again by its restart policy.
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Its supervisor died and left it unmanaged.
    pub dead: bool,
    /// The container's init, while it runs.
    pub pid: Option<i32>,
    pub exit_code: i32,
    pub error: String,
    /// RFC 3339, `0001-01-01T00:00:00Z` for never.
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<InspectHealth>,
}

/// `State.Health`, for a container with a healthcheck.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectHealth {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLogEntry>,
}

/// One probe in `State.Health.Log`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLogEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// `HostConfig`: what `run` asked of the host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectHostConfig {
    pub network_mode: String,
    /// `-p` publications by container port (`80/tcp`), as asked (an empty
    /// `HostIp` for any address, an empty `HostPort` for a free one).
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// Bytes; 0 for no limit.
    pub memory: u64,
    pub pids_limit: Option<u64>,
    /// CPUs times 10^9; 0 for no limit.
    pub nano_cpus: i64,
    pub auto_remove: bool,
    pub readonly_rootfs: bool,
    pub restart_policy: InspectRestartPolicy,
    /// `--add-host`, as `NAME:IP`.
    pub extra_hosts: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
}

/// docker's `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRestartPolicy {
    /// `no`, `on-failure`, `always` or `unless-stopped`.
    pub name: String,
    /// `on-failure`'s maximum (0: none).
    pub maximum_retry_count: u32,
}

/// One entry of `Mounts`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// A volume's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host path (a volume's mountpoint); absent for a tmpfs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    pub destination: PathBuf,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// `NetworkSettings`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectNetwork {
    /// Empty unless on a bridge.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// The bridge's address; empty unless on a bridge.
    pub gateway: String,
    /// The publications as bound, by container port (`80/tcp`).
    pub ports: BTreeMap<String, Vec<PortBinding>>,
    /// The container's network by name (docker's map; one entry).
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// One network of a container (docker's `EndpointSettings`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    pub gateway: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// The names the network's DNS answers for it.
    #[serde(rename = "DNSNames")]
    pub dns_names: Vec<String>,
}

/// One host side of a publication (docker's `PortBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// Publications by container port: `(80/tcp, binding)` pairs grouped.
fn by_container_port(
    pairs: impl Iterator<Item = (String, PortBinding)>,
) -> BTreeMap<String, Vec<PortBinding>> {
    let mut map: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for (port, binding) in pairs {
        map.entry(port).or_default().push(binding);
    }
    map
}

/// `-p` specs (as stored) as docker's `HostConfig.PortBindings`.
fn port_bindings(specs: &[String]) -> BTreeMap<String, Vec<PortBinding>> {
    by_container_port(specs.iter().filter_map(|spec| {
        let m: PortMapping = spec.parse().ok()?;
        let binding = PortBinding {
            host_ip: if m.host_ip.is_unspecified() {
                String::new()
            } else {
                m.host_ip.to_string()
            },
            host_port: if m.host_port == 0 {
                String::new()
            } else {
                m.host_port.to_string()
            },
        };
        Some((container_port(&m), binding))
    }))
}

impl PortBinding {
    /// `IP:PORT` (`[IP]:PORT` for IPv6), as `docker port` prints it.
    pub fn host(&self) -> String {
        match self.host_ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", self.host_port),
            _ => format!("{}:{}", self.host_ip, self.host_port),
        }
    }
}

impl Container {
    /// The publications the supervisor bound, by container port (`80/tcp`):
    /// docker's `NetworkSettings.Ports`.
    pub fn published_ports(&self) -> BTreeMap<String, Vec<PortBinding>> {
        bound_ports(&self.state.ports)
    }
}

/// Bound publications (`IP:PORT->CTR/PROTO`, as the supervisor records
/// them) as docker's `NetworkSettings.Ports`.
fn bound_ports(bound: &[String]) -> BTreeMap<String, Vec<PortBinding>> {
    by_container_port(bound.iter().filter_map(|text| {
        let (host, ctr) = text.split_once("->")?;
        let host: std::net::SocketAddr = host.parse().ok()?;
        let binding = PortBinding {
            host_ip: host.ip().to_string(),
            host_port: host.port().to_string(),
        };
        Some((ctr.to_owned(), binding))
    }))
}

/// `80/tcp`.
fn container_port(m: &PortMapping) -> String {
    let spec = m.spec();
    let proto = spec.rsplit('/').next().unwrap_or("tcp");
    format!("{}/{proto}", m.container_port)
}

/// `Config`: the container's own configuration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    /// The whole command (entrypoint and arguments).
    pub cmd: Vec<String>,
    /// The image as named at `run`.
    pub image: String,
    pub working_dir: String,
    pub stop_signal: i32,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// `GraphDriver`: where the writable layer lives.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// `overlay2`.
    pub name: &'static str,
    pub data: GraphDriverData,
}

/// `GraphDriver.Data`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverData {
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
}

impl Containers {
    /// Docker's `inspect` document of a container.
    pub fn inspect(&self, reference: &str) -> Result<ContainerInspect> {
        let c = self.get(reference)?;
        let paths = self.paths(&c.config.id);
        Ok(ContainerInspect {
            id: c.config.id.clone(),
            name: format!("/{}", c.config.name),
            created: logs::format_time(c.config.created),
            path: c.config.argv.first().cloned(),
            args: c.config.argv.get(1..).unwrap_or_default().to_vec(),
            state: inspect_state(&c),
            image: c.config.image_id.clone(),
            restart_count: c.state.restart_count,
            log_path: paths.log(),
            host_config: InspectHostConfig {
                network_mode: c.config.network_name().to_owned(),
                port_bindings: port_bindings(&c.config.ports),
                memory: c.config.limits.memory.unwrap_or(0),
                pids_limit: c.config.limits.pids,
                nano_cpus: c.config.limits.cpus.map_or(0, |c| (c * 1e9) as i64),
                auto_remove: c.config.auto_remove,
                readonly_rootfs: c.config.read_only,
                restart_policy: InspectRestartPolicy {
                    name: c.config.restart.name().to_owned(),
                    maximum_retry_count: c.config.restart.maximum_retry_count(),
                },
                extra_hosts: c
                    .config
                    .extra_hosts
                    .iter()
                    .map(|(name, ip)| format!("{name}:{ip}"))
                    .collect(),
                dns: c.config.dns.iter().map(ToString::to_string).collect(),
            },
            mounts: self.mount_points(&c),
            network_settings: self.network_settings(&c),
            config: InspectConfig {
                hostname: c.config.hostname.clone(),
                user: c.config.user.clone(),
                env: c.config.env.clone(),
                cmd: c.config.argv.clone(),
                image: c.config.image.clone(),
                working_dir: c.config.cwd.clone(),
                stop_signal: c.config.stop_signal,
                labels: c.config.labels.clone(),
                tty: c.config.tty,
                open_stdin: c.config.open_stdin,
                healthcheck: c.config.healthcheck.clone(),
            },
            graph_driver: GraphDriver {
                name: "overlay2",
                data: GraphDriverData {
                    upper_dir: paths.upper(),
                    work_dir: paths.work(),
                },
            },
        })
    }

    /// `NetworkSettings`: the address, gateway and the one network entry
    /// (none for `--network none`, as docker's `none` entry is empty).
    fn network_settings(&self, c: &Container) -> InspectNetwork {
        let ip = c.state.ip.clone().unwrap_or_default();
        let (network_id, subnet) = match (&c.config.network, &c.config.attachment) {
            (NetworkMode::User, Some(a)) => match self.networks().get(&a.network_id) {
                Ok(n) => (n.id, n.subnet.parse::<buildr_exec::Subnet>().ok()),
                Err(_) => (a.network_id.clone(), None),
            },
            (mode, _) => match self.networks().get(mode.as_str()) {
                Ok(n) => (n.id, n.subnet.parse().ok()),
                Err(_) => (String::new(), None),
            },
        };
        let bridged = c.config.network.is_bridged() && !ip.is_empty();
        let gateway = match subnet {
            Some(subnet) if bridged => subnet.gateway().to_string(),
            _ => String::new(),
        };
        let aliases = c
            .config
            .attachment
            .as_ref()
            .map(|a| a.aliases.clone())
            .unwrap_or_default();
        let dns_names = match c.config.network {
            NetworkMode::User => super::network::dns_names(&c.config, &aliases),
            _ => Vec::new(),
        };
        let endpoint = EndpointSettings {
            network_id,
            ip_address: ip.clone(),
            gateway: gateway.clone(),
            ip_prefix_len: subnet.filter(|_| bridged).map_or(0, |s| s.prefix()),
            aliases,
            dns_names,
        };
        let mut networks = BTreeMap::from([(c.config.network_name().to_owned(), endpoint)]);
        for extra in &c.config.networks {
            let subnet = self
                .networks()
                .get(&extra.network_id)
                .ok()
                .and_then(|n| n.subnet.parse::<buildr_exec::Subnet>().ok());
            let ip = c.state.network_ips.get(&extra.network_id).cloned();
            let joined = ip.is_some() && c.state.status == Status::Running;
            networks.insert(
                extra.network.clone(),
                EndpointSettings {
                    network_id: extra.network_id.clone(),
                    ip_address: ip.filter(|_| joined).unwrap_or_default(),
                    gateway: subnet
                        .filter(|_| joined)
                        .map(|s| s.gateway().to_string())
                        .unwrap_or_default(),
                    ip_prefix_len: subnet.filter(|_| joined).map_or(0, |s| s.prefix()),
                    aliases: extra.aliases.clone(),
                    dns_names: super::network::dns_names(&c.config, &extra.aliases),
                },
            );
        }
        InspectNetwork {
            ip_address: ip,
            gateway,
            ports: c.published_ports(),
            networks,
        }
    }

    fn mount_points(&self, c: &Container) -> Vec<MountPoint> {
        let binds = c.config.binds.iter().map(|bind| MountPoint {
            kind: "bind",
            name: None,
            source: Some(bind.src.clone()),
            destination: bind.dst.clone(),
            rw: !bind.readonly,
        });
        let volumes = c.config.volumes.iter().map(|volume| MountPoint {
            kind: "volume",
            name: Some(volume.name.clone()),
            source: self
                .volumes
                .inspect(&volume.name)
                .map(|v| v.mountpoint)
                .ok(),
            destination: volume.destination.clone().into(),
            rw: !volume.readonly,
        });
        let tmpfs = c.config.tmpfs.iter().map(|t| MountPoint {
            kind: "tmpfs",
            name: None,
            source: None,
            destination: t.dst.clone(),
            rw: true,
        });
        binds.chain(volumes).chain(tmpfs).collect()
    }
}

fn inspect_state(c: &Container) -> InspectState {
    let time =
        |t: Option<i128>| t.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), logs::format_time);
    let running = c.is_running();
    InspectState {
        status: c.status_word().to_owned(),
        // docker's: true while paused or waiting to restart too.
        running: c.is_active(),
        paused: running && c.state.paused,
        restarting: c.state.status == Status::Restarting,
        oom_killed: c.state.oom_killed,
        dead: c.state.exit_code == Some(EXIT_SUPERVISOR_DIED) && c.state.error.is_some(),
        pid: if running {
            c.state
                .pid
                .or(c.state.supervisor_pid.and_then(|p| i32::try_from(p).ok()))
        } else {
            None
        },
        exit_code: c.state.exit_code.unwrap_or(0),
        error: c.state.error.clone().unwrap_or_default(),
        started_at: time(c.state.started_at),
        finished_at: time(c.state.finished_at),
        health: c.state.health.as_ref().map(Health::inspect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publications_in_docker_shapes() {
        let asked = port_bindings(&[
            "127.0.0.1::80/tcp".to_owned(),
            "8080:80/tcp".to_owned(),
            "53/udp".to_owned(),
        ]);
        let want = |ip: &str, port: &str| PortBinding {
            host_ip: ip.to_owned(),
            host_port: port.to_owned(),
        };
        assert_eq!(asked["80/tcp"], [want("127.0.0.1", ""), want("", "8080")]);
        assert_eq!(asked["53/udp"], [want("", "")]);
        let bound = bound_ports(&[
            "127.0.0.1:32768->80/tcp".to_owned(),
            "[::1]:9000->90/udp".to_owned(),
            "garbage".to_owned(),
        ]);
        assert_eq!(bound["80/tcp"], [want("127.0.0.1", "32768")]);
        assert_eq!(bound["90/udp"], [want("::1", "9000")]);
        assert_eq!(bound["90/udp"][0].host(), "[::1]:9000");
        assert_eq!(bound["80/tcp"][0].host(), "127.0.0.1:32768");
        assert_eq!(bound.len(), 2);
    }
}
