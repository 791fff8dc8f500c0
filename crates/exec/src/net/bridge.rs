//! Bridge networking for containers (`buildr run --network bridge` and
//! user-defined networks): a bridge buildr creates, a veth pair per
//! container, addresses from a range buildr owns, NAT unless the network
//! is internal, published ports through [`PortProxy`], and for networks
//! with DNS a name server on the gateway ([`super::dns`]).
//!
//! The bridge, its address and its nftables table (`ip buildr_<bridge>`:
//! NAT, and the forward rules that keep other networks out) are made by
//! the first container and then stay, as docker0 does, until
//! [`BridgeNetwork::remove`]: a container joining a bridge that is up costs
//! a handful of netlink requests and no `nft` run. The lease file under
//! the state dir, locked for every change, is the only shared state.
//!
//! Links, addresses and routes are made over rtnetlink ([`Netlink`]), not
//! by running `ip`.

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
    /// No way out: traffic from the bridge to anywhere else is dropped
    /// (`network create --internal`); implies no NAT.
    pub internal: bool,
    /// Serve the endpoints' names on the gateway (user-defined networks):
    /// containers get the gateway as their only nameserver, and what it
    /// does not know goes to `nameservers` (empty: the host's resolvers).
    pub dns: bool,
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
            internal: false,
            dns: false,
        }
    }
}

/// How an endpoint joins: a fixed address (`--ip`), the names it
/// answers to on the network's DNS, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// The address to take instead of the lowest free one.
    pub ip: Option<Ipv4Addr>,
    /// Names for the network's DNS (container name, aliases, short id).
    pub names: Vec<String>,
    /// Join this existing network namespace (a running container's
    /// `/proc/PID/ns/net`, or another endpoint's) as its next `ethN`,
    /// without a default route (`network connect`); `None` makes a new
    /// namespace whose `eth0` routes through the bridge.
    pub netns: Option<PathBuf>,
}

/// A bridge network; containers join it through [`BridgeNetwork::attach`].
#[derive(Debug, Clone)]
pub struct BridgeNetwork {
    config: BridgeConfig,
    nft: PathBuf,
}

impl BridgeNetwork {
    /// Checks the configuration and finds `nft`. Nothing is created until
    /// the first attach.
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
        let nft = tool("nft", "nftables")?;
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
        self.attach_with(owner, &AttachOptions::default())
    }

    /// [`Self::attach`] with a fixed address and DNS names.
    pub fn attach_with(&self, owner: &str, options: &AttachOptions) -> Result<Endpoint> {
        self.at_home(|| self.attach_here(owner, options))
    }

    /// Removes the bridge, its address, its nftables table and the DNS
    /// server, and restores `ip_forward`; refused while containers are
    /// attached. Nothing to remove is not an error.
    pub fn remove(&self) -> Result<()> {
        self.at_home(|| {
            let mut file = LeaseFile::lock(&self.config.state_dir)?;
            if !file.leases.leases.is_empty() {
                let owners: Vec<&str> = file.leases.leases.values().map(String::as_str).collect();
                return Err(Error::Spec(format!(
                    "bridge {} has attached endpoints: {}",
                    self.config.name,
                    owners.join(", ")
                )));
            }
            if let Some(server) = file.leases.dns.take() {
                super::dns::stop(&server);
            }
            let removed = self.remove_bridge(&mut file);
            file.leases.ready = false;
            file.save()?;
            removed
        })
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

    fn attach_here(&self, owner: &str, options: &AttachOptions) -> Result<Endpoint> {
        let (netns, primary) = match &options.netns {
            Some(path) => (NetNs::open(path)?, false),
            None => (NetNs::new()?, true),
        };
        let mut file = LeaseFile::lock(&self.config.state_dir)?;
        let ip = file
            .leases
            .allocate_wanted(&self.config.subnet, owner, options.ip)?;
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
        if !options.names.is_empty() {
            file.leases.names.insert(ip, options.names.clone());
        }
        file.save()?;
        let mut endpoint = Endpoint {
            network: self.clone(),
            owner: owner.to_string(),
            ip,
            host_veth,
            netns,
            primary,
            detached: false,
        };
        // From here on, dropping `endpoint` undoes everything (it takes the
        // lock again, so release ours first on error).
        let wired = self
            .ensure_bridge(&mut file, shared)
            .and_then(|bridge| {
                self.ensure_dns(&mut file)?;
                Ok(bridge)
            })
            .and_then(|bridge| {
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
        if file.leases.leases.is_empty() {
            self.stop_dns(&mut file);
        }
        file.save()
    }

    /// Starts the network's DNS server unless it runs (or the network has
    /// none); records it in the lease file.
    fn ensure_dns(&self, file: &mut LeaseFile) -> Result<()> {
        if !self.config.dns || file.leases.dns.is_some_and(|server| server.alive()) {
            return Ok(());
        }
        let server = super::dns::start(
            &self.config.state_dir,
            self.config.subnet.gateway(),
            &self.config.nameservers,
        )?;
        file.leases.dns = Some(server);
        file.save()
    }

    /// Stops the DNS server, when the last endpoint has gone.
    fn stop_dns(&self, file: &mut LeaseFile) {
        if let Some(server) = file.leases.dns.take() {
            super::dns::stop(&server);
        }
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

    /// Bridge, gateway address, nftables table and forwarding, all
    /// idempotent; returns the bridge's link index. The bridge goes up
    /// last, so a bridge that is up while another lease is held (`shared`)
    /// or that the lease file records as set up (`ready`) was set up
    /// completely under the lease lock and is taken as it is; otherwise
    /// everything is redone, whatever a crash left half-made.
    fn ensure_bridge(&self, file: &mut LeaseFile, shared: bool) -> Result<u32> {
        let name = self.config.name.as_str();
        let subnet = &self.config.subnet;
        let mut nl = Netlink::open().map_err(self.sys("open a netlink socket".into()))?;
        let link = nl
            .link(name)
            .map_err(self.sys(format!("look up bridge {name}")))?;
        if let Some(link) = link
            && link.up
            && (shared || file.leases.ready)
        {
            return Ok(link.index);
        }
        file.leases.ready = false;
        NftRun::start(&self.nft, &self.nft_script())?.wait()?;
        if self.config.nat && !self.config.internal {
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
        file.leases.ready = true;
        file.save()?;
        Ok(index)
    }

    /// The bridge's nftables table, recreated in one transaction (so a
    /// repeat never duplicates rules): masquerade for NAT, and in the
    /// forward hook, connections into the bridge from elsewhere (another
    /// network's bridge, the outside) dropped unless they answer one made
    /// from inside, as Docker isolates its networks; an internal network
    /// also drops everything leaving it; a network's DNS port on the
    /// gateway answers only its own bridge. Published ports are reached
    /// through a proxy on the host, not forwarded, and so stay reachable.
    fn nft_script(&self) -> String {
        let (table, name, subnet) = (self.nat_table(), &self.config.name, self.config.subnet);
        let mut rules = format!(
            "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    oifname \"{name}\" iifname != \"{name}\" ct state established,related accept\n    oifname \"{name}\" iifname != \"{name}\" drop\n"
        );
        if self.config.internal {
            rules.push_str(&format!(
                "    iifname \"{name}\" oifname != \"{name}\" drop\n"
            ));
        }
        rules.push_str("  }\n");
        if self.config.dns {
            // The network's DNS answers its own containers only.
            let gateway = self.config.subnet.gateway();
            rules.push_str(&format!(
                "  chain input {{\n    type filter hook input priority filter; policy accept;\n    ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport 53 iifname != \"{name}\" drop\n  }}\n"
            ));
        }
        if self.config.nat && !self.config.internal {
            rules.push_str(&format!(
                "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {subnet} oifname != \"{name}\" masquerade\n  }}\n"
            ));
        }
        rules.push_str("}\n");
        rules
    }

    /// Undoes [`Self::ensure_bridge`]; called with no lease left. The
    /// `nft` removing the table runs while the kernel deletes the link,
    /// which takes it tens of milliseconds.
    fn remove_bridge(&self, file: &mut LeaseFile) -> Result<()> {
        let table = self.nat_table();
        let script = format!("add table ip {table}\ndelete table ip {table}\n");
        let nat_removal = Some(NftRun::start(&self.nft, &script));
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
    /// `eth0` with the default route in a namespace of its own, or a
    /// further interface in a namespace it joined.
    primary: bool,
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
        let config = &self.network.config;
        let nameservers = if config.dns {
            vec![IpAddr::V4(config.subnet.gateway())]
        } else {
            config.nameservers.clone()
        };
        Network::Join {
            netns: self.netns.path(),
            nameservers,
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

    /// Leaves the endpoint in place when dropped, for a container that
    /// outlives this process (`network connect` to a running one):
    /// [`BridgeNetwork::release`] removes it later.
    pub fn keep(mut self) {
        self.detached = true;
    }

    /// Removes the endpoint now, reporting errors that drop would ignore.
    pub fn detach(mut self) -> Result<()> {
        self.detached = true;
        self.teardown()
    }

    /// The veth pair: host side enslaved to bridge `bridge_index` and up;
    /// inside, `eth0` with the address, up, and the default route (or,
    /// joining a namespace, the first free `ethN` without a route).
    fn wire(&mut self, bridge_index: u32) -> Result<()> {
        let bridge = &self.network;
        let ns_id = self.netns.id();
        let inside_name = if self.primary {
            "eth0".to_owned()
        } else {
            let free = self.netns.enter(|| -> std::io::Result<String> {
                let mut nl = Netlink::open()?;
                for n in 0..64 {
                    let name = format!("eth{n}");
                    if nl.link(&name)?.is_none() {
                        return Ok(name);
                    }
                }
                Err(std::io::Error::other("no free ethN name"))
            })?;
            free.map_err(bridge.sys(format!(
                "find an interface name in network namespace net:[{ns_id}]"
            )))?
        };
        let veth = self.host_veth.as_str();
        let mut nl = Netlink::open().map_err(bridge.sys("open a netlink socket".into()))?;
        nl.add_veth(veth, &inside_name, self.netns.as_fd())
            .map_err(bridge.sys(format!(
                "create veth {veth} with {inside_name} in network namespace net:[{ns_id}]"
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
        let primary = self.primary;
        let name = inside_name.clone();
        let inside = self.netns.enter(move || -> std::io::Result<()> {
            let mut nl = Netlink::open()?;
            let link = nl
                .link(&name)?
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV))?;
            nl.add_addr(link.index, ip, prefix, false)?;
            nl.set_up(link.index, None)?;
            if primary {
                nl.add_default_route(gateway)?;
            }
            Ok(())
        })?;
        inside.map_err(bridge.sys(format!(
            "configure {inside_name} ({ip}/{prefix} via {gateway}) in network namespace net:[{ns_id}]"
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
        let veth = &self.host_veth;
        let deleted = Netlink::open().and_then(|mut nl| nl.del_link(veth));
        // (Already gone is no error: its namespace died, or `release`
        // took it.)
        let first_error = deleted
            .map_err(bridge.sys(format!("delete veth {veth}")))
            .err();
        if held {
            file.leases.release(&self.owner);
            if file.leases.leases.is_empty() {
                bridge.stop_dns(&mut file);
            }
            if let Err(e) = file.save() {
                return Err(first_error.unwrap_or(e));
            }
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
