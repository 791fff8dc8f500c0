//! Address allocation for bridge networks, persisted under a state dir and
//! serialised by a file lock, so two processes never hand out one address.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io};

/// An IPv4 network in CIDR form, e.g. `10.88.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// buildr's default range, `10.88.0.0/16`.
    pub const DEFAULT: Subnet = Subnet {
        network: Ipv4Addr::new(10, 88, 0, 0),
        prefix: 16,
    };

    /// `network/prefix`; the address must be the network's first and the
    /// prefix leave room for a gateway and hosts (8 to 30).
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Self> {
        if !(8..=30).contains(&prefix) {
            return Err(Error::Spec(format!(
                "subnet {network}/{prefix}: prefix must be between 8 and 30"
            )));
        }
        let subnet = Self { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            return Err(Error::Spec(format!(
                "subnet {network}/{prefix}: host bits are set (did you mean {}/{prefix}?)",
                Ipv4Addr::from(u32::from(network) & subnet.mask())
            )));
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// Prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The bridge's own address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.network) & mask == u32::from(other.network) & mask
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Addresses containers may get: after the gateway, before broadcast.
    fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let broadcast = u32::from(self.network) | !self.mask();
        (first..broadcast).map(Ipv4Addr::from)
    }
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::Spec(format!("invalid subnet {text:?}: expected A.B.C.D/N"));
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        Self::new(
            addr.parse().map_err(|_| bad())?,
            prefix.parse().map_err(|_| bad())?,
        )
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What the state file records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Leases {
    /// The subnet the leases were made in (a changed config is refused
    /// while leases are held).
    pub subnet: Option<String>,
    /// Address -> owner (a container id).
    pub leases: BTreeMap<Ipv4Addr, String>,
    /// `net.ipv4.ip_forward` before the bridge turned it on, to restore
    /// when the bridge is removed.
    pub forward_was: Option<String>,
    /// The bridge, its address and its nftables table were set up
    /// completely (under this lock); cleared when the bridge is removed.
    /// The bridge outlives its endpoints, so a container that finds it
    /// ready and up costs no `nft` run.
    #[serde(default)]
    pub ready: bool,
    /// Address -> the names its owner answers to on the network's DNS
    /// (container name, aliases, short id); dropped with the lease.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<Ipv4Addr, Vec<String>>,
    /// The network's DNS server process, while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<ProcessRecord>,
}

/// A process buildr started and must later stop: its pid and start time
/// (so a recycled pid is never signalled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessRecord {
    pub pid: u32,
    pub start: u64,
}

impl ProcessRecord {
    /// The running process `pid`, if it exists.
    pub fn of(pid: u32) -> Option<Self> {
        let (_, start) = process_stat(pid)?;
        Some(Self { pid, start })
    }

    /// Whether the recorded process still runs (same pid, same start,
    /// not a zombie waiting for its reaper).
    pub fn alive(&self) -> bool {
        process_stat(self.pid).is_some_and(|(state, start)| state != 'Z' && start == self.start)
    }
}

/// A process's state letter and start time in clock ticks (fields 3 and
/// 22 of /proc/PID/stat), read at once.
fn process_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl Leases {
    /// The owner's address, allocating the lowest free one if it has none.
    #[cfg(test)]
    pub fn allocate(&mut self, subnet: &Subnet, owner: &str) -> Result<Ipv4Addr> {
        self.allocate_wanted(subnet, owner, None)
    }

    /// The owner's address: `wanted` (`--ip`) if given, which must lie in
    /// the subnet, not be the gateway and be free; else the one it holds
    /// or the lowest free one.
    pub fn allocate_wanted(
        &mut self,
        subnet: &Subnet,
        owner: &str,
        wanted: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr> {
        let recorded = subnet.to_string();
        match &self.subnet {
            Some(held) if *held != recorded && !self.leases.is_empty() => {
                return Err(Error::Spec(format!(
                    "bridge addresses are leased from {held}, not {recorded}: remove its containers first"
                )));
            }
            _ => self.subnet = Some(recorded),
        }
        let held = self
            .leases
            .iter()
            .find(|(_, o)| *o == owner)
            .map(|(ip, _)| *ip);
        if let Some(wanted) = wanted {
            if !subnet.hosts().any(|ip| ip == wanted) {
                return Err(Error::Spec(format!(
                    "address {wanted} is not a host address of {subnet} (the gateway is {})",
                    subnet.gateway()
                )));
            }
            match self.leases.get(&wanted) {
                Some(other) if other != owner => {
                    return Err(Error::Spec(format!(
                        "address {wanted} is already in use on {subnet}"
                    )));
                }
                _ => {}
            }
            if let Some(held) = held.filter(|ip| *ip != wanted) {
                self.leases.remove(&held);
                self.names.remove(&held);
            }
            self.leases.insert(wanted, owner.to_string());
            return Ok(wanted);
        }
        if let Some(ip) = held {
            return Ok(ip);
        }
        let ip = subnet
            .hosts()
            .find(|ip| !self.leases.contains_key(ip))
            .ok_or_else(|| Error::Spec(format!("no free address left in {subnet}")))?;
        self.leases.insert(ip, owner.to_string());
        Ok(ip)
    }

    /// Drops the owner's lease; returns its address if it had one.
    pub fn release(&mut self, owner: &str) -> Option<Ipv4Addr> {
        let ip = self
            .leases
            .iter()
            .find(|(_, o)| *o == owner)
            .map(|(ip, _)| *ip)?;
        self.leases.remove(&ip);
        self.names.remove(&ip);
        Some(ip)
    }
}

/// The lease file of a state dir, held under an exclusive lock.
#[derive(Debug)]
pub(crate) struct LeaseFile {
    _lock: nix::fcntl::Flock<File>,
    path: PathBuf,
    pub leases: Leases,
}

impl LeaseFile {
    /// Locks `dir/lock` (blocking until other processes are done) and reads
    /// `dir/leases.json`.
    pub fn lock(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let lock_path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, errno)| Error::Io {
                op: "lock",
                path: lock_path.clone(),
                source: errno.into(),
            },
        )?;
        let path = dir.join("leases.json");
        let leases = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Io {
                op: "parse",
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Leases::default(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(Self {
            _lock: lock,
            path,
            leases,
        })
    }

    /// Writes the leases back: temp file, fsync, rename, fsync of the dir.
    pub fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.leases).map_err(|e| Error::Io {
            op: "encode",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io("rename", &tmp))?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_validate() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("10.88.0.0/16", Some(("10.88.0.1", "10.88.0.2"))),
            ("192.168.7.0/24", Some(("192.168.7.1", "192.168.7.2"))),
            ("172.30.0.4/30", Some(("172.30.0.5", "172.30.0.6"))),
            ("10.88.0.1/16", None),
            ("10.88.0.0/31", None),
            ("10.88.0.0/7", None),
            ("10.88.0.0", None),
            ("10.88.0/16", None),
            ("", None),
            ("10.88.0.0/x", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<Subnet>();
            match want {
                Some((gw, first)) => {
                    let subnet = got.unwrap_or_else(|e| panic!("{text}: {e}"));
                    assert_eq!(subnet.to_string(), *text);
                    assert_eq!(subnet.gateway().to_string(), *gw, "{text}");
                    assert_eq!(subnet.hosts().next().unwrap().to_string(), *first);
                }
                None => assert!(got.is_err(), "{text} should be refused"),
            }
        }
    }

    #[test]
    fn allocation_is_lowest_free_idempotent_and_bounded() {
        let subnet: Subnet = "172.30.0.0/29".parse().unwrap();
        let mut leases = Leases::default();
        let a = leases.allocate(&subnet, "a").unwrap();
        let b = leases.allocate(&subnet, "b").unwrap();
        assert_eq!(
            (a.to_string().as_str(), b.to_string().as_str()),
            ("172.30.0.2", "172.30.0.3")
        );
        assert_eq!(leases.allocate(&subnet, "a").unwrap(), a);
        assert_eq!(leases.release("a"), Some(a));
        assert_eq!(leases.release("a"), None);
        // The freed, lower address is reused first.
        assert_eq!(leases.allocate(&subnet, "c").unwrap(), a);
        for owner in ["d", "e", "f"] {
            leases.allocate(&subnet, owner).unwrap();
        }
        // .2 to .6: five host addresses in a /29.
        assert!(leases.allocate(&subnet, "g").is_err());
        let other: Subnet = "10.99.0.0/24".parse().unwrap();
        assert!(
            leases.allocate(&other, "h").is_err(),
            "subnet changed under leases"
        );
    }

    #[test]
    fn concurrent_allocators_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = "10.77.0.0/24".parse().unwrap();
        // Each thread opens the lock file itself: flock excludes open file
        // descriptions, as it would separate processes.
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..20 {
                        let mut file = LeaseFile::lock(&dir).unwrap();
                        let ip = file.leases.allocate(&subnet, &format!("t{t}-{i}")).unwrap();
                        file.save().unwrap();
                        got.push(ip);
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an address was handed out twice");
        let file = LeaseFile::lock(dir.path()).unwrap();
        assert_eq!(file.leases.leases.len(), 160);
    }

    #[test]
    fn a_corrupt_lease_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leases.json"), "{not json").unwrap();
        let err = LeaseFile::lock(dir.path()).unwrap_err();
        assert!(err.to_string().contains("leases.json"), "{err}");
    }
}
