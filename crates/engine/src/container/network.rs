//! User-defined networks (`network create|ls|inspect|rm|prune`,
//! `run --network NAME`): a definition per network under
//! `<root>/networks/<id>.json`, and at run time a bridge of its own
//! (`br-<id12>`) with a DNS server on its gateway, so containers on it
//! resolve each other by name and alias while other networks cannot reach
//! them ([`buildr_exec::BridgeNetwork`] does the plumbing).
//!
//! The predefined networks are docker's: `bridge` (buildr's default
//! bridge, `buildr0`, no DNS between containers, as docker0), `host` and
//! `none`; they are listed but cannot be created or removed.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use buildr_exec::Subnet;
use serde::{Deserialize, Serialize};

use super::state::{lock, now_nanos, read_json, write_json};
use crate::error::{Error, Result};

/// The names of docker's predefined networks.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// A fixed id per predefined network (docker's are random per daemon).
fn predefined_id(name: &str) -> String {
    let digest = blake3::hash(format!("buildr predefined network {name}").as_bytes());
    digest.to_hex().to_string()
}

/// One network as `network inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// `bridge`, or `host`/`null` for the predefined ones (docker's words).
    pub driver: String,
    /// `A.B.C.D/N`; empty for `host` and `none`.
    pub subnet: String,
    /// The bridge's address, the containers' gateway and DNS server.
    pub gateway: String,
    /// `--internal`: no route out.
    pub internal: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// Nanoseconds since the epoch (0 for the predefined ones).
    pub created: i128,
}

impl Network {
    /// One of `bridge`, `host`, `none`.
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str()) && self.id == predefined_id(&self.name)
    }

    /// When it was created, RFC 3339.
    pub fn created_rfc3339(&self) -> String {
        super::logs::format_time(self.created)
    }

    /// The bridge interface of a user-defined network.
    pub fn bridge_name(&self) -> String {
        format!("br-{}", &self.id[..12.min(self.id.len())])
    }
}

/// What `network create` accepts.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreateOptions {
    /// `--subnet`; the first free `/24` of `10.89.0.0/16` otherwise.
    pub subnet: Option<Subnet>,
    /// `--internal`.
    pub internal: bool,
    /// `--label KEY=VALUE`.
    pub labels: Vec<(String, String)>,
}

/// The networks of one store.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    /// The networks under `<root>/networks`.
    pub fn new(root: &Path) -> Networks {
        Networks {
            dir: root.join("networks"),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Creates a network; its bridge comes up with its first container.
    pub fn create(&self, name: &str, options: &NetworkCreateOptions) -> Result<Network> {
        let conflict = |reason: String| Error::NetworkConflict {
            name: name.to_owned(),
            reason,
        };
        if !super::volume::valid_name(name) {
            return Err(conflict(
                "invalid name: must match [a-zA-Z0-9][a-zA-Z0-9_.-]+".into(),
            ));
        }
        if PREDEFINED.contains(&name) {
            return Err(conflict(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            action: "create",
            path: self.dir.clone(),
            source,
        })?;
        let _lock = lock(&self.dir.join(".lock"))?;
        let existing = self.user_defined()?;
        if existing.iter().any(|n| n.name == name) {
            return Err(conflict("a network with this name already exists".into()));
        }
        let taken: Vec<Subnet> = existing
            .iter()
            .filter_map(|n| n.subnet.parse().ok())
            .chain([Subnet::DEFAULT])
            .collect();
        let subnet = match options.subnet {
            Some(subnet) => {
                if let Some(other) = taken.iter().find(|t| t.overlaps(&subnet)) {
                    return Err(conflict(format!(
                        "subnet {subnet} overlaps {other}, already used by buildr"
                    )));
                }
                subnet
            }
            None => free_subnet(&taken, &host_routes())
                .ok_or_else(|| conflict("no free /24 left in 10.89.0.0/16".into()))?,
        };
        let mut labels = BTreeMap::new();
        for (key, value) in &options.labels {
            labels.insert(key.clone(), value.clone());
        }
        let network = Network {
            id: super::random_hex(32)?,
            name: name.to_owned(),
            driver: "bridge".into(),
            subnet: subnet.to_string(),
            gateway: subnet.gateway().to_string(),
            internal: options.internal,
            labels,
            created: now_nanos(),
        };
        write_json(&self.path(&network.id), &network)?;
        Ok(network)
    }

    /// The user-defined networks, oldest first.
    pub(crate) fn user_defined(&self) -> Result<Vec<Network>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    action: "list networks in",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match read_json::<Network>(&entry.path()) {
                Ok(network) => out.push(network),
                // Removed meanwhile.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|n| (n.created, n.name.clone()));
        Ok(out)
    }

    /// Every network: the predefined ones, then the user's.
    pub fn list(&self) -> Result<Vec<Network>> {
        let mut all: Vec<Network> = PREDEFINED.iter().map(|n| predefined(n)).collect();
        all.extend(self.user_defined()?);
        Ok(all)
    }

    /// The network named by its name, full id or a unique id prefix.
    pub fn get(&self, reference: &str) -> Result<Network> {
        let not_found = || Error::NetworkNotFound {
            reference: reference.to_owned(),
        };
        if reference.is_empty() {
            return Err(not_found());
        }
        let all = self.list()?;
        if let Some(found) = all
            .iter()
            .find(|n| n.name == reference || n.id == reference)
        {
            return Ok(found.clone());
        }
        let mut prefixed = all.iter().filter(|n| n.id.starts_with(reference));
        match (prefixed.next(), prefixed.next()) {
            (Some(one), None) => Ok(one.clone()),
            _ => Err(not_found()),
        }
    }

    /// Removes a user-defined network with no container attached: its
    /// bridge, nftables table and DNS server go, then its definition.
    pub fn remove(&self, reference: &str) -> Result<Network> {
        let network = self.get(reference)?;
        if network.is_predefined() {
            return Err(Error::NetworkConflict {
                name: network.name.clone(),
                reason: format!(
                    "{} is a pre-defined network and cannot be removed",
                    network.name
                ),
            });
        }
        let _lock = lock(&self.dir.join(".lock"))?;
        bridge_of(&network)?
            .remove()
            .map_err(|e| Error::NetworkConflict {
                name: network.name.clone(),
                reason: format!("cannot remove it: {e}"),
            })?;
        let path = self.path(&network.id);
        fs::remove_file(&path).map_err(|source| Error::Io {
            action: "remove",
            path,
            source,
        })?;
        Ok(network)
    }
}

/// docker's `network inspect` document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    pub name: String,
    pub id: String,
    /// RFC 3339.
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    /// The running containers on it, by id.
    pub containers: BTreeMap<String, NetworkEndpoint>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// `IPAM`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: String,
    pub config: Vec<IpamConfig>,
}

/// One `IPAM.Config` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
    pub gateway: String,
}

/// One entry of a network's `Containers`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkEndpoint {
    pub name: String,
    /// `A.B.C.D/N`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// The names a container answers to on a network's DNS: its name, the
/// aliases, its short id.
pub(crate) fn dns_names(config: &super::ContainerConfig, aliases: &[String]) -> Vec<String> {
    std::iter::once(config.name.clone())
        .chain(aliases.iter().cloned())
        .chain([config.id[..12.min(config.id.len())].to_owned()])
        .collect()
}

impl super::Containers {
    /// A request for a user-defined network checked against it: the
    /// network exists and is not predefined, `--ip` lies in its subnet,
    /// aliases are host names.
    pub(crate) fn resolve_request(
        &self,
        request: &super::NetworkRequest,
    ) -> Result<super::NetworkAttachment> {
        let option = |message: String| Error::ContainerOption { message };
        let network = self.networks().get(&request.network)?;
        if network.is_predefined() {
            return Err(option(format!(
                "{} is not a user-defined network",
                network.name
            )));
        }
        if let Some(ip) = request.ip {
            let subnet: Subnet = network
                .subnet
                .parse()
                .map_err(|e: buildr_exec::Error| option(e.to_string()))?;
            if !subnet.contains(ip) || ip == subnet.gateway() {
                return Err(option(format!(
                    "--ip {ip} is not a host address of network {}'s subnet {subnet}",
                    network.name
                )));
            }
        }
        for alias in &request.aliases {
            let valid = alias.len() <= 253
                && alias.starts_with(|c: char| c.is_ascii_alphanumeric())
                && alias
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(option(format!("invalid network alias {alias:?}")));
            }
        }
        Ok(super::NetworkAttachment {
            network_id: network.id,
            network: network.name,
            aliases: request.aliases.clone(),
            ip: request.ip,
        })
    }

    /// Joins a running container's network namespace (`netns`) to a
    /// further network; the endpoint stays until
    /// [`Self::release_extra_networks`]. Returns its address.
    pub(crate) fn join_extra(
        &self,
        config: &super::ContainerConfig,
        attachment: &super::NetworkAttachment,
        netns: &Path,
    ) -> Result<Ipv4Addr> {
        let network = self.networks().get(&attachment.network_id)?;
        let options = buildr_exec::AttachOptions {
            ip: attachment.ip,
            names: dns_names(config, &attachment.aliases),
            netns: Some(netns.to_path_buf()),
        };
        let endpoint = bridge_of(&network)?.attach_with(&config.id, &options)?;
        let ip = endpoint.ip();
        endpoint.keep();
        Ok(ip)
    }

    /// Frees a container's addresses on the networks it joined after the
    /// first (its namespace, and so the veths, went or goes with it).
    pub(crate) fn release_extra_networks(&self, id: &str) {
        let Ok(config) = read_json::<super::ContainerConfig>(&self.paths(id).config()) else {
            return;
        };
        for attachment in &config.networks {
            if let Ok(network) = self.networks().get(&attachment.network_id)
                && let Ok(bridge) = bridge_of(&network)
            {
                let _ = bridge.release(id);
            }
        }
    }

    /// docker's `network connect`: the container joins a user-defined
    /// network besides its first, at once if it runs (as its next
    /// `ethN`, without the default route), at every start after.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<()> {
        let attachment = self.resolve_request(&super::NetworkRequest {
            network: network.to_owned(),
            aliases: aliases.to_vec(),
            ip,
        })?;
        let found = self.get(container)?;
        let paths = self.paths(&found.config.id);
        let _lock = lock(&paths.lock())?;
        let mut config: super::ContainerConfig = read_json(&paths.config())?;
        let conflict = |reason: String| Error::ContainerConflict {
            container: config.name.clone(),
            reason,
        };
        if !config.network.is_bridged() {
            return Err(conflict(format!(
                "is on network {}: a container without a bridge of its own cannot join another network",
                config.network_name()
            )));
        }
        let on_it = config
            .attachment
            .iter()
            .chain(&config.networks)
            .any(|a| a.network_id == attachment.network_id);
        if on_it {
            return Err(conflict(format!(
                "endpoint with name {} already exists in network {}",
                config.name, attachment.network
            )));
        }
        let mut state: super::ContainerState = read_json(&paths.state())?;
        let running = match (state.status, state.pid) {
            (super::Status::Running, Some(pid)) => Some(pid),
            _ => None,
        };
        if let Some(pid) = running {
            let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let ip = self.join_extra(&config, &attachment, &netns)?;
            state
                .network_ips
                .insert(attachment.network_id.clone(), ip.to_string());
            write_json(&paths.state(), &state)?;
        }
        config.networks.push(attachment);
        write_json(&paths.config(), &config)
    }

    /// docker's `network disconnect` of a network joined with
    /// [`Self::connect_network`]; the network a container was created on
    /// stays (buildr cannot take a container's first network yet).
    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let network = self.networks().get(network)?;
        let found = self.get(container)?;
        let paths = self.paths(&found.config.id);
        let _lock = lock(&paths.lock())?;
        let mut config: super::ContainerConfig = read_json(&paths.config())?;
        let conflict = |reason: String| Error::ContainerConflict {
            container: config.name.clone(),
            reason,
        };
        let first = config.network_name() == network.name
            || config
                .attachment
                .as_ref()
                .is_some_and(|a| a.network_id == network.id);
        if first {
            return Err(conflict(format!(
                "was created on network {}: buildr disconnects only networks joined with `network connect`",
                network.name
            )));
        }
        let Some(at) = config
            .networks
            .iter()
            .position(|a| a.network_id == network.id)
        else {
            return Err(conflict(format!(
                "is not connected to network {}",
                network.name
            )));
        };
        config.networks.remove(at);
        let mut state: super::ContainerState = read_json(&paths.state())?;
        if state.network_ips.remove(&network.id).is_some() {
            bridge_of(&network)?.release(&config.id)?;
            write_json(&paths.state(), &state)?;
        }
        write_json(&paths.config(), &config)
    }

    /// docker's `network inspect` of one network, with the running
    /// containers on it.
    pub fn inspect_network(&self, reference: &str) -> Result<NetworkInspect> {
        let network = self.networks().get(reference)?;
        let prefix = network.subnet.parse::<Subnet>().map_or(0, |s| s.prefix());
        let mut containers = BTreeMap::new();
        for c in self.list()? {
            let first = match (&c.config.network, &c.config.attachment) {
                (super::NetworkMode::User, Some(a)) => a.network_id == network.id,
                (mode, _) => mode.as_str() == network.name && network.is_predefined(),
            };
            let ip = if first {
                Some(c.state.ip.clone().unwrap_or_default())
            } else {
                c.state.network_ips.get(&network.id).cloned()
            };
            if let Some(ip) = ip.filter(|_| c.state.status == super::Status::Running) {
                containers.insert(
                    c.config.id.clone(),
                    NetworkEndpoint {
                        name: c.config.name.clone(),
                        ipv4_address: if ip.is_empty() {
                            ip
                        } else {
                            format!("{ip}/{prefix}")
                        },
                    },
                );
            }
        }
        let mut options = BTreeMap::new();
        if network.driver == "bridge" {
            let bridge = if network.is_predefined() {
                "buildr0".to_owned()
            } else {
                network.bridge_name()
            };
            options.insert("com.docker.network.bridge.name".to_owned(), bridge);
        }
        let config = if network.subnet.is_empty() {
            Vec::new()
        } else {
            vec![IpamConfig {
                subnet: network.subnet.clone(),
                gateway: network.gateway.clone(),
            }]
        };
        Ok(NetworkInspect {
            created: super::logs::format_time(network.created),
            scope: "local".into(),
            enable_ipv6: false,
            ipam: Ipam {
                driver: "default".into(),
                config,
            },
            internal: network.internal,
            attachable: false,
            containers,
            options,
            labels: network.labels.clone(),
            driver: network.driver,
            name: network.name,
            id: network.id,
        })
    }

    /// Removes a user-defined network; refused while a running container
    /// is on it (its bridge refuses too, as the last word).
    pub fn remove_network(&self, reference: &str) -> Result<Network> {
        let inspect = self.inspect_network(reference)?;
        if let Some(user) = inspect.containers.values().next() {
            return Err(Error::NetworkConflict {
                name: inspect.name,
                reason: format!("it has active endpoints (container {})", user.name),
            });
        }
        self.networks().remove(&inspect.id)
    }

    /// Removes every user-defined network no running container is on;
    /// returns their names.
    pub fn prune_networks(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for network in self.networks().user_defined()? {
            match self.remove_network(&network.id) {
                Ok(network) => removed.push(network.name),
                Err(Error::NetworkConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

fn predefined(name: &str) -> Network {
    let (driver, subnet) = match name {
        "bridge" => ("bridge", Subnet::DEFAULT.to_string()),
        "host" => ("host", String::new()),
        _ => ("null", String::new()),
    };
    let gateway = subnet
        .parse::<Subnet>()
        .map(|s| s.gateway().to_string())
        .unwrap_or_default();
    Network {
        id: predefined_id(name),
        name: name.to_owned(),
        driver: driver.to_owned(),
        subnet,
        gateway,
        internal: false,
        labels: BTreeMap::new(),
        created: 0,
    }
}

/// The bridge of a user-defined network. Its leases live on the runtime
/// tmpfs, as the default bridge's; rootless, in the user's network home,
/// relaying names it does not know to slirp4netns's resolver.
pub(crate) fn bridge_of(network: &Network) -> Result<buildr_exec::BridgeNetwork> {
    let bridge = network.bridge_name();
    let subnet: Subnet =
        network
            .subnet
            .parse()
            .map_err(|e: buildr_exec::Error| Error::NetworkConflict {
                name: network.name.clone(),
                reason: e.to_string(),
            })?;
    let mut config = host_bridge_config(&bridge)?;
    config.name = bridge;
    config.subnet = subnet;
    config.internal = network.internal;
    config.nat = !network.internal;
    config.dns = true;
    Ok(buildr_exec::BridgeNetwork::new(config)?)
}

/// The configuration every buildr bridge shares: leases on the runtime
/// tmpfs (`<runtime>/buildr/network/<bridge>`, host-wide like the bridge,
/// gone with it at reboot) and, rootless, the user's network home, with
/// slirp4netns's resolver for names.
pub(crate) fn host_bridge_config(bridge: &str) -> Result<buildr_exec::BridgeConfig> {
    let mut config = buildr_exec::BridgeConfig::new(
        buildr_exec::default_state_root()
            .join("buildr")
            .join("network")
            .join(bridge),
    );
    if let Some(home) = buildr_exec::rootless::network_home()? {
        config.home = Some(home);
        config.nameservers = vec![IpAddr::V4(buildr_exec::SLIRP_DNS)];
    }
    Ok(config)
}

/// The first `/24` of `10.89.0.0/16` that overlaps neither buildr's
/// networks nor a route of the host.
fn free_subnet(taken: &[Subnet], routes: &[Subnet]) -> Option<Subnet> {
    (0..=255u8).find_map(|third| {
        let candidate = Subnet::new(Ipv4Addr::new(10, 89, third, 0), 24).ok()?;
        let clash = taken
            .iter()
            .chain(routes)
            .any(|other| other.overlaps(&candidate));
        (!clash).then_some(candidate)
    })
}

/// The host's IPv4 routes other than the default one (/proc/net/route:
/// destination and mask in hex, in the kernel's byte order).
fn host_routes() -> Vec<Subnet> {
    let text = fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // Printed as the native-endian value of network-order bytes.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            if !(8..=30).contains(&prefix) {
                return None;
            }
            Subnet::new(dest, prefix).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_created_listed_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let networks = Networks::new(dir.path());
        let names: Vec<String> = networks
            .list()
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["bridge", "host", "none"]);
        let one = networks
            .create("one", &NetworkCreateOptions::default())
            .unwrap();
        assert!(one.subnet.starts_with("10.89."), "{}", one.subnet);
        assert_eq!(one.bridge_name().len(), 15);
        let fixed = NetworkCreateOptions {
            subnet: Some("172.31.5.0/24".parse().unwrap()),
            internal: true,
            labels: vec![("team".into(), "a".into())],
        };
        let two = networks.create("two", &fixed).unwrap();
        assert_eq!(two.gateway, "172.31.5.1");
        assert_ne!(one.subnet, two.subnet);
        assert_eq!(networks.get("one").unwrap(), one);
        assert_eq!(networks.get(&two.id[..10]).unwrap(), two);
        for (name, options) in [
            ("one", NetworkCreateOptions::default()),
            ("bridge", NetworkCreateOptions::default()),
            ("bad name", NetworkCreateOptions::default()),
            ("three", fixed.clone()),
        ] {
            let err = networks.create(name, &options).unwrap_err();
            assert!(
                matches!(err, Error::NetworkConflict { .. }),
                "{name}: {err}"
            );
        }
        assert!(matches!(
            networks.get("nope").unwrap_err(),
            Error::NetworkNotFound { .. }
        ));
        assert!(networks.remove("host").is_err());
    }

    #[test]
    fn a_free_subnet_avoids_taken_ranges_and_routes() {
        let taken = vec![Subnet::DEFAULT, "10.89.0.0/24".parse().unwrap()];
        let routes = vec!["10.89.1.0/24".parse().unwrap()];
        assert_eq!(
            free_subnet(&taken, &routes).unwrap().to_string(),
            "10.89.2.0/24"
        );
        let all = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(free_subnet(&all, &[]).is_none());
    }
}
