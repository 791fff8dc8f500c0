//! Bridge networking for containers (`buildr run --network bridge`): a
//! bridge buildr creates, a veth pair per container, addresses from a
//! range buildr owns, optional NAT, published ports through [`PortProxy`].
//!
//! The bridge, its address, the NAT table and (if it was off)
//! `net.ipv4.ip_forward` exist only while at least one address is leased:
//! the last [`Endpoint`] to go removes them and restores the sysctl. The
//! lease file under the state dir, locked for every change, is the only
//! shared state; NAT is one nftables table of buildr's own
//! (`ip buildr_<bridge>`), removed as a whole.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::ipam::{LeaseFile, Subnet};
use super::netns::{NetNs, find_tool, run_tool};
use super::proxy::{PortMapping, PortProxy};
use crate::error::{Error, Result};
use crate::spec::Network;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Configuration of a bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Bridge interface name (at most 15 bytes of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// The private range buildr owns; the bridge takes the first address.
    pub subnet: Subnet,
    /// Masquerade traffic leaving the host from the subnet.
    pub nat: bool,
    /// Holds the lease file and its lock (e.g. `<store>/network/<name>`).
    pub state_dir: PathBuf,
    /// `nameserver` lines for containers; empty means the host's
    /// resolvers, loopback ones left out.
    pub nameservers: Vec<IpAddr>,
}

impl BridgeConfig {
    /// `buildr0` on `10.88.0.0/16` with NAT, state under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: "buildr0".into(),
            subnet: Subnet::DEFAULT,
            nat: true,
            state_dir: state_dir.into(),
            nameservers: Vec::new(),
        }
    }
}

/// A bridge network; containers join it through [`BridgeNetwork::attach`].
#[derive(Debug, Clone)]
pub struct BridgeNetwork {
    config: BridgeConfig,
    ip: PathBuf,
    nft: Option<PathBuf>,
}

impl BridgeNetwork {
    /// Checks the configuration and finds the tools (`ip`, and `nft` when
    /// NAT is on). Nothing is created until the first attach.
    pub fn new(config: BridgeConfig) -> Result<Self> {
        let name_ok = !config.name.is_empty()
            && config.name.len() <= 15
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !name_ok {
            return Err(Error::Spec(format!(
                "bridge name {:?} must be 1-15 bytes of letters, digits, '_', '.', '-'",
                config.name
            )));
        }
        let tool = |name: &str, package: &str| {
            find_tool(name).ok_or_else(|| Error::Sys {
                op: format!("find {name} for bridge {}", config.name),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("not in PATH (Debian package {package})"),
                ),
            })
        };
        let ip = tool("ip", "iproute2")?;
        let nft = if config.nat {
            Some(tool("nft", "nftables")?)
        } else {
            None
        };
        Ok(Self { config, ip, nft })
    }

    /// The configuration.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    /// Connects a new network namespace for `owner` (a container id) to
    /// the bridge, creating the bridge first if needed: a veth pair
    /// (`bvXXXXXXXX` on the host, `eth0` inside), the owner's address
    /// (the same one again if it holds a stale lease; an error if it is
    /// attached now), a default route through the bridge. On error nothing
    /// of it remains.
    pub fn attach(&self, owner: &str) -> Result<Endpoint> {
        let netns = NetNs::new()?;
        let mut file = LeaseFile::lock(&self.config.state_dir)?;
        let ip = file.leases.allocate(&self.config.subnet, owner)?;
        let host_veth = format!("bv{:08x}", u32::from(ip));
        if self.link_exists(&host_veth) {
            // A live endpoint: its lease and veth are not ours to touch.
            return Err(Error::Spec(format!(
                "{owner} is already attached to bridge {} as {ip}",
                self.config.name
            )));
        }
        file.save()?;
        let mut endpoint = Endpoint {
            network: self.clone(),
            owner: owner.to_string(),
            ip,
            host_veth,
            netns,
            detached: false,
        };
        // From here on, dropping `endpoint` undoes everything (it takes the
        // lock again, so release ours first on error).
        let wired = self.ensure_bridge(&mut file).and_then(|()| {
            drop(file);
            endpoint.wire()
        });
        match wired {
            Ok(()) => Ok(endpoint),
            Err(e) => {
                let _ = endpoint.teardown();
                endpoint.detached = true;
                Err(e)
            }
        }
    }

    /// Drops `owner`'s lease and veth, for cleaning up after a container
    /// whose supervisor died (its namespace, and so its veth pair, went
    /// with its processes). Removes the bridge if it was the last.
    pub fn release(&self, owner: &str) -> Result<()> {
        let mut file = LeaseFile::lock(&self.config.state_dir)?;
        if let Some(ip) = file.leases.release(owner) {
            let veth = format!("bv{:08x}", u32::from(ip));
            if self.link_exists(&veth) {
                self.ip(&["link", "del", &veth])?;
            }
        }
        file.save()?;
        if file.leases.leases.is_empty() {
            self.remove_bridge(&mut file)?;
        }
        Ok(())
    }

    fn ip(&self, args: &[&str]) -> Result<()> {
        run_tool(&self.ip.to_string_lossy(), args).map(drop)
    }

    /// Asks the kernel of the current network namespace (/sys/class/net
    /// shows the namespace of whoever mounted /sys, not necessarily ours).
    fn link_exists(&self, name: &str) -> bool {
        nix::net::if_::if_nametoindex(name).is_ok()
    }

    fn nat_table(&self) -> String {
        let name: String = self
            .config
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("buildr_{name}")
    }

    /// Bridge, gateway address, NAT table and forwarding, all idempotent.
    fn ensure_bridge(&self, file: &mut LeaseFile) -> Result<()> {
        let name = self.config.name.as_str();
        let subnet = &self.config.subnet;
        if !self.link_exists(name) {
            self.ip(&["link", "add", name, "type", "bridge"])?;
        }
        let gateway = format!("{}/{}", subnet.gateway(), subnet.prefix());
        self.ip(&["addr", "replace", &gateway, "dev", name])?;
        self.ip(&["link", "set", name, "up"])?;
        let Some(nft) = &self.nft else {
            return Ok(());
        };
        let table = self.nat_table();
        // Recreated in one transaction, so a repeat never duplicates rules.
        let script = format!(
            "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {subnet} oifname != \"{name}\" masquerade\n  }}\n}}\n"
        );
        nft_script(nft, &script)?;
        let forward = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
        if forward.trim() == "0" {
            std::fs::write(IP_FORWARD, "1").map_err(|source| Error::Io {
                op: "enable forwarding in",
                path: IP_FORWARD.into(),
                source,
            })?;
            file.leases.forward_was = Some("0".into());
            file.save()?;
        }
        Ok(())
    }

    /// Undoes [`Self::ensure_bridge`]; called with no lease left.
    fn remove_bridge(&self, file: &mut LeaseFile) -> Result<()> {
        let mut first_error = None;
        if self.link_exists(&self.config.name) {
            first_error = self.ip(&["link", "del", &self.config.name]).err();
        }
        if let Some(nft) = &self.nft {
            let table = self.nat_table();
            let script = format!("add table ip {table}\ndelete table ip {table}\n");
            if let Err(e) = nft_script(nft, &script) {
                first_error.get_or_insert(e);
            }
        }
        if let Some(value) = file.leases.forward_was.take() {
            if let Err(source) = std::fs::write(IP_FORWARD, value) {
                first_error.get_or_insert(Error::Io {
                    op: "restore forwarding in",
                    path: IP_FORWARD.into(),
                    source,
                });
            }
            file.save()?;
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn nft_script(nft: &Path, script: &str) -> Result<()> {
    use std::io::Write;
    let op = || format!("apply nftables rules with {}", nft.display());
    let mut child = std::process::Command::new(nft)
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| Error::Sys { op: op(), source })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|source| Error::Sys { op: op(), source })?;
    }
    let output = child
        .wait_with_output()
        .map_err(|source| Error::Sys { op: op(), source })?;
    if !output.status.success() {
        return Err(Error::Sys {
            op: op(),
            source: std::io::Error::other(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ),
        });
    }
    Ok(())
}

/// One container's place on a bridge. Dropping it (or [`Endpoint::detach`])
/// removes the veth pair, frees the address and, if it was the last,
/// the bridge and its NAT table.
#[derive(Debug)]
pub struct Endpoint {
    network: BridgeNetwork,
    owner: String,
    ip: Ipv4Addr,
    host_veth: String,
    netns: NetNs,
    detached: bool,
}

impl Endpoint {
    /// The container's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The host side of the veth pair.
    pub fn host_veth(&self) -> &str {
        &self.host_veth
    }

    /// The container's network namespace.
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// The choice to put in [`crate::SpawnSpec::network`].
    pub fn network(&self) -> Network {
        Network::Join {
            netns: self.netns.path(),
            nameservers: self.network.config.nameservers.clone(),
        }
    }

    /// Publishes a port of this container on the host (`-p`).
    pub fn publish(&self, mapping: &PortMapping) -> Result<PortProxy> {
        PortProxy::start(mapping, IpAddr::V4(self.ip))
    }

    /// Removes the endpoint now, reporting errors that drop would ignore.
    pub fn detach(mut self) -> Result<()> {
        self.detached = true;
        self.teardown()
    }

    fn wire(&mut self) -> Result<()> {
        let bridge = &self.network;
        let peer = self.netns.path();
        let veth = self.host_veth.as_str();
        bridge.ip(&[
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &peer.to_string_lossy(),
        ])?;
        bridge.ip(&["link", "set", veth, "master", &bridge.config.name, "up"])?;
        let subnet = &bridge.config.subnet;
        let addr = format!("{}/{}", self.ip, subnet.prefix());
        let gateway = subnet.gateway().to_string();
        let ip = bridge.ip.to_string_lossy().into_owned();
        let netns = &self.netns;
        netns.run(&ip, &["addr", "add", &addr, "dev", "eth0"])?;
        netns.run(&ip, &["link", "set", "eth0", "up"])?;
        netns.run(&ip, &["route", "add", "default", "via", &gateway])?;
        Ok(())
    }

    fn teardown(&mut self) -> Result<()> {
        let bridge = &self.network;
        let mut file = LeaseFile::lock(&bridge.config.state_dir)?;
        let mut first_error = None;
        if bridge.link_exists(&self.host_veth) {
            first_error = bridge.ip(&["link", "del", &self.host_veth]).err();
        }
        let held = file.leases.leases.get(&self.ip) == Some(&self.owner);
        if held {
            file.leases.release(&self.owner);
            file.save()?;
        }
        if file.leases.leases.is_empty()
            && let Err(e) = bridge.remove_bridge(&mut file)
        {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if !self.detached {
            self.detached = true;
            let _ = self.teardown();
        }
    }
}
