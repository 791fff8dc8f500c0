//! What acts on a running container's processes and cgroup: `pause` and
//! `unpause` (the cgroup freezer), `top` (the processes of its pid
//! namespace), `stats` (its cgroup's counters and its network
//! namespace's), `update` (new limits in the cgroup and the config, a new
//! restart policy).

use std::path::PathBuf;
use std::time::Instant;

use buildr_exec::{CgroupStats, ContainerCgroup};

use super::state::{ContainerConfig, ContainerState, read_json, write_json};
use super::{Container, Containers, Limits, NetworkMode, RestartPolicy, Status};
use crate::error::{Error, Result};

/// What [`Containers::update`] changes; what is `None` stays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpdateOptions {
    /// The limits that are set replace the container's.
    pub limits: Limits,
    /// `--restart`.
    pub restart: Option<RestartPolicy>,
}

/// One reading of a container's counters (`stats`); CPU % needs two.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    /// When the counters were read.
    pub read_at: Instant,
    /// Its cgroup's counters.
    pub cgroup: CgroupStats,
    /// The memory limit: the cgroup's, or the host's memory without one
    /// (as docker shows it).
    pub memory_limit: u64,
    /// Bytes received and sent on its network interfaces but loopback
    /// (zero with the host's network, as docker).
    pub net_rx: u64,
    pub net_tx: u64,
}

fn conflict(c: &Container, reason: &str) -> Error {
    Error::ContainerConflict {
        container: c.config.id.clone(),
        reason: reason.to_owned(),
    }
}

impl Containers {
    /// The sandbox's pid 1 of a running container (docker's errors for
    /// one that is not running or restarting).
    fn running_pid(&self, c: &Container) -> Result<i32> {
        if c.state.status == Status::Restarting {
            return Err(conflict(
                c,
                "is restarting, wait until the container is running",
            ));
        }
        self.running_pid1(c)
    }

    fn cgroup_of(&self, c: &Container) -> Result<ContainerCgroup> {
        open_cgroup(c, self.running_pid(c)?)
    }

    /// Changes the `paused` flag of a running container under its lock,
    /// after `act` (the freeze or the thaw) succeeded.
    fn set_paused(
        &self,
        c: &Container,
        paused: bool,
        act: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let paths = self.paths(&c.config.id);
        let _lock = super::state::lock(&paths.lock())?;
        let mut state: ContainerState = read_json(&paths.state())?;
        if state.status != Status::Running {
            return Err(conflict(c, "is not running"));
        }
        act()?;
        state.paused = paused;
        write_json(&paths.state(), &state)
    }

    /// Freezes every process of a running container (`docker pause`).
    pub fn pause(&self, reference: &str) -> Result<()> {
        let c = self.get(reference)?;
        let cgroup = self.cgroup_of(&c)?;
        if c.state.paused {
            return Err(conflict(&c, "is already paused"));
        }
        self.set_paused(&c, true, || Ok(cgroup.freeze()?))
    }

    /// Thaws a paused container (`docker unpause`).
    pub fn unpause(&self, reference: &str) -> Result<()> {
        let c = self.get(reference)?;
        if !c.state.paused || !c.is_running() {
            return Err(conflict(&c, "is not paused"));
        }
        let cgroup = self.cgroup_of(&c)?;
        self.set_paused(&c, false, || Ok(cgroup.thaw()?))
    }

    /// Thaws a paused container that was just sent its last signal, so
    /// the signal is delivered (docker's order for `stop` and `kill`).
    pub(crate) fn thaw_for_exit(&self, c: &Container) -> Result<()> {
        if let Ok(cgroup) = self.cgroup_of(c) {
            let _ = cgroup.thaw();
        }
        match self.set_paused(c, false, || Ok(())) {
            // It exited meanwhile: the exit cleared the flag.
            Err(Error::ContainerConflict { .. }) => Ok(()),
            other => other,
        }
    }

    /// The host pids of a running container's processes (`docker top`):
    /// every process in the pid namespace of its pid 1, in pid order.
    pub fn top(&self, reference: &str) -> Result<Vec<i32>> {
        let c = self.get(reference)?;
        let pid1 = self.running_pid(&c)?;
        let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let want = ns_of(&pid1.to_string()).ok_or_else(|| conflict(&c, "is not running"))?;
        let proc_dir = PathBuf::from("/proc");
        let entries = std::fs::read_dir(&proc_dir).map_err(|source| Error::Io {
            action: "list processes in",
            path: proc_dir,
            source,
        })?;
        let mut pids: Vec<i32> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid: i32 = name.parse().ok()?;
                (ns_of(&name)? == want).then_some(pid)
            })
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// One reading of a running container's counters.
    pub fn stats(&self, reference: &str) -> Result<ContainerStats> {
        let c = self.get(reference)?;
        let pid = self.running_pid(&c)?;
        let cgroup = open_cgroup(&c, pid)?.stats();
        let (net_rx, net_tx) = if c.config.network == NetworkMode::Host {
            (0, 0)
        } else {
            net_dev(&std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default())
        };
        Ok(ContainerStats {
            id: c.config.id.clone(),
            name: c.config.name.clone(),
            read_at: Instant::now(),
            memory_limit: cgroup.memory_limit.unwrap_or_else(host_memory),
            cgroup,
            net_rx,
            net_tx,
        })
    }

    /// Changes a container's limits and restart policy (`docker update`):
    /// in its cgroup when it runs (first: a limit the kernel refuses
    /// changes nothing), then in its config.
    pub fn update(&self, reference: &str, options: &UpdateOptions) -> Result<()> {
        let c = self.get(reference)?;
        if c.config.auto_remove && options.restart.is_some_and(|p| p != RestartPolicy::No) {
            return Err(conflict(
                &c,
                "restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        if let Some(cpus) = options.limits.cpus
            && !(cpus.is_finite() && cpus > 0.0)
        {
            return Err(Error::ContainerOption {
                message: format!("invalid --cpus {cpus}: must be a positive number"),
            });
        }
        let paths = self.paths(&c.config.id);
        let _lock = super::state::lock(&paths.lock())?;
        let mut config: ContainerConfig = read_json(&paths.config())?;
        let state: ContainerState = read_json(&paths.state())?;
        if state.status == Status::Running && !options.limits.is_empty() {
            let pid = state
                .pid
                .ok_or_else(|| conflict(&c, "has not reported its process yet"))?;
            open_cgroup(&c, pid)?.set_limits(&options.limits)?;
        }
        let new = options.limits;
        config.limits = Limits {
            memory: new.memory.or(config.limits.memory),
            pids: new.pids.or(config.limits.pids),
            cpus: new.cpus.or(config.limits.cpus),
        };
        if let Some(policy) = options.restart {
            config.restart = policy;
        }
        write_json(&paths.config(), &config)
    }
}

/// The cgroup of container `c`'s process `pid`; one that has none (an
/// ordinary user without a delegated cgroup, a container started before
/// containers got one) says what it needs.
fn open_cgroup(c: &Container, pid: i32) -> Result<ContainerCgroup> {
    match ContainerCgroup::of_pid(pid) {
        Ok(cgroup) => Ok(cgroup),
        Err(buildr_exec::Error::NoCgroup { .. }) => Err(conflict(
            c,
            "has no cgroup of its own (rootless: run buildr in a delegated cgroup, see docs/rootless.md; or restart a container started by an older buildr)",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Bytes received and sent on every interface but loopback, from the
/// text of `/proc/PID/net/dev` (the namespace of PID).
fn net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() >= 9 {
            rx = rx.saturating_add(fields[0]);
            tx = tx.saturating_add(fields[8]);
        }
    }
    (rx, tx)
}

/// The host's memory in bytes (`MemTotal`), 0 if unreadable.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_counters_skip_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    2048      10    0    0    0     0          0         0      512       4    0    0    0     0       0          0\n";
        assert_eq!(net_dev(text), (2048, 512));
        assert_eq!(net_dev(""), (0, 0));
        assert!(host_memory() > 0);
    }
}
