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
//!
//! Links, addresses and routes are made over rtnetlink ([`Netlink`]), not
//! by running `ip`: a container costs a handful of netlink requests. `nft`
//! runs only when the first lease creates the bridge and when the last
//! removes it.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::ipam::{LeaseFile, Subnet};
use super::netlink::Netlink;
use super::netns::{NetNs, find_tool};
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
    /// The network namespace the bridge, its NAT and the host ends of the
    /// veths live in (a path naming it); `None` is this process's own.
    /// Rootless: the user's network home ([`crate::rootless::network_home`]),
    /// connected to the outside by slirp4netns, where published ports
    /// connect from too.
    pub home: Option<PathBuf>,
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
            home: None,
        }
    }
}

/// A bridge network; containers join it through [`BridgeNetwork::attach`].
#[derive(Debug, Clone)]
pub struct BridgeNetwork {
    config: BridgeConfig,
    nft: Option<PathBuf>,
}

impl BridgeNetwork {
    /// Checks the configuration and finds `nft` when NAT is on. Nothing is
    /// created until the first attach.
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
        let nft = if config.nat {
            Some(tool("nft", "nftables")?)
        } else {
            None
        };
        Ok(Self { config, nft })
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
        self.at_home(|| self.attach_here(owner))
    }

    /// Runs `work` in the bridge's namespace ([`BridgeConfig::home`]): on
    /// a thread that entered it, so netlink sockets and the `nft` it
    /// starts are there; directly when the home is ours.
    fn at_home<T: Send>(&self, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        match &self.config.home {
            None => work(),
            Some(home) => NetNs::open(home)?.enter(work)?,
        }
    }

    fn attach_here(&self, owner: &str) -> Result<Endpoint> {
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
        // Whether someone else holds a lease, and so set the bridge up
        // before us under this lock.
        let shared = file.leases.leases.values().any(|held| held != owner);
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
        let wired = self.ensure_bridge(&mut file, shared).and_then(|bridge| {
            drop(file);
            endpoint.wire(bridge)
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
        self.at_home(|| self.release_here(owner))
    }

    fn release_here(&self, owner: &str) -> Result<()> {
        let mut file = LeaseFile::lock(&self.config.state_dir)?;
        if let Some(ip) = file.leases.release(owner) {
            let veth = format!("bv{:08x}", u32::from(ip));
            let deleted = Netlink::open().and_then(|mut nl| nl.del_link(&veth));
            deleted.map_err(self.sys(format!("delete veth {veth}")))?;
        }
        file.save()?;
        if file.leases.leases.is_empty() {
            self.remove_bridge(&mut file, None)?;
        }
        Ok(())
    }

    /// Wraps a netlink failure in an error naming the bridge and `op`.
    fn sys(&self, op: String) -> impl FnOnce(std::io::Error) -> Error {
        let op = format!("{op} (bridge {})", self.config.name);
        move |source| Error::Sys { op, source }
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

    /// Bridge, gateway address, NAT table and forwarding, all idempotent;
    /// returns the bridge's link index. The bridge goes up last, so a
    /// bridge that is up while another lease is held (`shared`) was set
    /// up completely under the lease lock and is taken as it is: NAT and
    /// forwarding are only touched by the first lease, and redone by it
    /// whatever a crash left half-made.
    fn ensure_bridge(&self, file: &mut LeaseFile, shared: bool) -> Result<u32> {
        let name = self.config.name.as_str();
        let subnet = &self.config.subnet;
        let mut nl = Netlink::open().map_err(self.sys("open a netlink socket".into()))?;
        let link = nl
            .link(name)
            .map_err(self.sys(format!("look up bridge {name}")))?;
        if let Some(link) = link
            && link.up
            && shared
        {
            return Ok(link.index);
        }
        if let Some(nft) = &self.nft {
            let table = self.nat_table();
            // Recreated in one transaction, so a repeat never duplicates rules.
            let script = format!(
                "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {subnet} oifname != \"{name}\" masquerade\n  }}\n}}\n"
            );
            NftRun::start(nft, &script)?.wait()?;
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
        }
        if link.is_none() {
            nl.add_bridge(name)
                .map_err(self.sys(format!("create bridge {name}")))?;
        }
        let index = match link {
            Some(link) => link.index,
            None => {
                nl.link(name)
                    .map_err(self.sys(format!("look up bridge {name}")))?
                    .ok_or_else(|| {
                        self.sys(format!("look up bridge {name}"))(
                            std::io::Error::from_raw_os_error(libc::ENODEV),
                        )
                    })?
                    .index
            }
        };
        let gateway = subnet.gateway();
        nl.add_addr(index, gateway, subnet.prefix(), true)
            .map_err(self.sys(format!(
                "set address {gateway}/{} on bridge {name}",
                subnet.prefix()
            )))?;
        nl.set_up(index, None)
            .map_err(self.sys(format!("set bridge {name} up")))?;
        Ok(index)
    }

    /// Starts the `nft` process that removes the NAT table (if there is
    /// one), to run while the kernel deletes links, which takes it tens of
    /// milliseconds; [`Self::remove_bridge`] waits for it.
    fn start_nat_removal(&self) -> Option<Result<NftRun>> {
        let nft = self.nft.as_deref()?;
        let table = self.nat_table();
        let script = format!("add table ip {table}\ndelete table ip {table}\n");
        Some(NftRun::start(nft, &script))
    }

    /// Undoes [`Self::ensure_bridge`]; called with no lease left.
    /// `nat_removal` is [`Self::start_nat_removal`] if already started.
    fn remove_bridge(
        &self,
        file: &mut LeaseFile,
        nat_removal: Option<Result<NftRun>>,
    ) -> Result<()> {
        let nat_removal = nat_removal.or_else(|| self.start_nat_removal());
        let name = &self.config.name;
        let deleted = Netlink::open().and_then(|mut nl| nl.del_link(name));
        let mut first_error = deleted
            .map_err(self.sys(format!("delete bridge {name}")))
            .err();
        if let Some(Err(e) | Ok(Err(e))) = nat_removal.map(|run| run.map(NftRun::wait)) {
            first_error.get_or_insert(e);
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

/// An `nft -f -` process applying a script.
#[derive(Debug)]
struct NftRun {
    child: std::process::Child,
    op: String,
}

impl NftRun {
    fn start(nft: &Path, script: &str) -> Result<Self> {
        use std::io::Write;
        let op = format!("apply nftables rules with {}", nft.display());
        let child = std::process::Command::new(nft)
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| Error::Sys {
                op: op.clone(),
                source,
            })?;
        let mut run = Self { child, op };
        // A few hundred bytes: the pipe takes them without blocking.
        let written = match run.child.stdin.take() {
            Some(mut stdin) => stdin.write_all(script.as_bytes()),
            None => Ok(()),
        };
        if let Err(source) = written {
            let op = run.op.clone();
            let _ = run.child.kill();
            let _ = run.child.wait();
            return Err(Error::Sys { op, source });
        }
        Ok(run)
    }

    fn wait(self) -> Result<()> {
        let Self { child, op } = self;
        let output = child.wait_with_output().map_err(|source| Error::Sys {
            op: op.clone(),
            source,
        })?;
        if !output.status.success() {
            return Err(Error::Sys {
                op,
                source: std::io::Error::other(
                    String::from_utf8_lossy(&output.stderr).trim().to_string(),
                ),
            });
        }
        Ok(())
    }
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
        let upstream_ns = match &self.network.config.home {
            Some(home) => Some(NetNs::open(home)?),
            None => None,
        };
        PortProxy::start_to(mapping, IpAddr::V4(self.ip), upstream_ns)
    }

    /// Removes the endpoint now, reporting errors that drop would ignore.
    pub fn detach(mut self) -> Result<()> {
        self.detached = true;
        self.teardown()
    }

    /// The veth pair: host side enslaved to bridge `bridge_index` and up;
    /// inside, `eth0` with the address, up, and the default route.
    fn wire(&mut self, bridge_index: u32) -> Result<()> {
        let bridge = &self.network;
        let veth = self.host_veth.as_str();
        let mut nl = Netlink::open().map_err(bridge.sys("open a netlink socket".into()))?;
        nl.add_veth(veth, "eth0", self.netns.as_fd())
            .map_err(bridge.sys(format!(
                "create veth {veth} with eth0 in network namespace net:[{}]",
                self.netns.id()
            )))?;
        let index = nl
            .link(veth)
            .map_err(bridge.sys(format!("look up veth {veth}")))?
            .ok_or_else(|| {
                bridge.sys(format!("look up veth {veth}"))(std::io::Error::from_raw_os_error(
                    libc::ENODEV,
                ))
            })?
            .index;
        nl.set_up(index, Some(bridge_index))
            .map_err(bridge.sys(format!(
                "set veth {veth} up with master {}",
                bridge.config.name
            )))?;
        let subnet = &bridge.config.subnet;
        let (ip, prefix, gateway) = (self.ip, subnet.prefix(), subnet.gateway());
        let inside = self.netns.enter(|| -> std::io::Result<()> {
            let mut nl = Netlink::open()?;
            let eth0 = nl
                .link("eth0")?
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV))?;
            nl.add_addr(eth0.index, ip, prefix, false)?;
            nl.set_up(eth0.index, None)?;
            nl.add_default_route(gateway)
        })?;
        inside.map_err(bridge.sys(format!(
            "configure eth0 ({ip}/{prefix} via {gateway}) in network namespace net:[{}]",
            self.netns.id()
        )))
    }

    fn teardown(&mut self) -> Result<()> {
        let network = self.network.clone();
        network.at_home(|| self.teardown_here())
    }

    fn teardown_here(&mut self) -> Result<()> {
        let bridge = &self.network;
        let mut file = LeaseFile::lock(&bridge.config.state_dir)?;
        let held = file.leases.leases.get(&self.ip) == Some(&self.owner);
        // With no other lease the bridge and NAT table go too; nft starts
        // now to overlap the link deletions.
        let last = file
            .leases
            .leases
            .iter()
            .all(|(ip, owner)| *ip == self.ip && *owner == self.owner);
        let nat_removal = last.then(|| bridge.start_nat_removal()).flatten();
        let veth = &self.host_veth;
        let deleted = Netlink::open().and_then(|mut nl| nl.del_link(veth));
        let mut first_error = deleted
            .map_err(bridge.sys(format!("delete veth {veth}")))
            .err();
        if held {
            file.leases.release(&self.owner);
            if let Err(e) = file.save() {
                first_error.get_or_insert(e);
            }
        }
        // Even if the release was not saved: a lease on disk without a
        // bridge makes the next attach set everything up again.
        if last && let Err(e) = bridge.remove_bridge(&mut file, nat_removal) {
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
