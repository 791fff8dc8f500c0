//! A container's files under `<root>/containers/<id>/`: its config (fixed
//! at create), its state (rewritten on every transition), both written
//! atomically (temp file, fsync, rename) under the container's lock.
//!
//! ```text
//! config.json      what to run: argv, env, mounts, limits, lowers
//! state.json       created | running (supervisor pid + start time, paused)
//!                  | restarting (supervisor waiting) | exited
//! lock             flock: serializes state read-modify-write
//! control          fifo the supervisor reads `signal N` / `stop N T` from
//! container.log    json lines, docker's json-file format (+ .1 rotated)
//! upper/ work/     the writable overlay layer
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use buildr_exec::{BindMount, Limits, TmpfsMount};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use buildr_fs::atomic::AtomicWrite;

pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const LOCK_FILE: &str = "lock";
pub(crate) const CONTROL_FIFO: &str = "control";
/// State and config files are small; anything larger is corrupt.
const MAX_JSON: u64 = 4 << 20;

/// How the container's network is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Loopback only.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A veth on buildr's bridge (`buildr0`), ports published by the supervisor.
    Bridge,
    /// A veth on a user-defined network's bridge
    /// ([`ContainerConfig::attachment`] says which), with its DNS.
    User,
}

impl NetworkMode {
    /// `none`, `host`, `bridge`, or `user` (the network's name is in the
    /// container's [`ContainerConfig::attachment`]).
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Bridge => "bridge",
            NetworkMode::User => "user",
        }
    }

    /// On a bridge (the default or a user-defined one): an address of its
    /// own, ports may be published.
    pub fn is_bridged(self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::User)
    }
}

/// A container's place on a user-defined network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// The network's id.
    pub network_id: String,
    /// Its name when the container was created.
    pub network: String,
    /// `--network-alias`: more names the network's DNS gives the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `--ip`: a fixed address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
}

/// A volume mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The volume's name (a random hex id for anonymous volumes).
    pub name: String,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
    /// Created for the image's `VOLUME` (or a bare `-v /path`): removed by `rm -v`.
    pub anonymous: bool,
}

/// What a container runs, fixed at create time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// The reference the user gave.
    pub image: String,
    /// The image id (config digest).
    pub image_id: String,
    /// Unpacked layers (snapshot ids), bottom first.
    pub snapshots: Vec<String>,
    /// Creation time, nanoseconds since the epoch.
    pub created: i128,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    pub network: NetworkMode,
    pub binds: Vec<BindMount>,
    pub volumes: Vec<VolumeMount>,
    pub tmpfs: Vec<TmpfsMount>,
    pub limits: Limits,
    /// Signal number `stop` sends first.
    pub stop_signal: i32,
    /// `--rm`: removed (with its anonymous volumes) when it exits.
    pub auto_remove: bool,
    /// `-p`/`-P` publications in docker's syntax (bridge only).
    #[serde(default)]
    pub ports: Vec<String>,
    /// `--read-only`: the root filesystem is mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// The image's healthcheck with the `--health-*` flags over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<super::health::Healthcheck>,
    /// The image's labels with `--label` over them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `-t`: the command gets a pty; a detached supervisor holds its
    /// master, logs its output and serves it to `attach` clients.
    #[serde(default)]
    pub tty: bool,
    /// `-i`: attach clients may write to its stdin.
    #[serde(default)]
    pub open_stdin: bool,
    /// The image's `SHELL` (a `CMD-SHELL` healthcheck runs with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
    /// `--restart`: what the supervisor does when the command exits.
    #[serde(default)]
    pub restart: super::restart::RestartPolicy,
    /// The user-defined network of [`NetworkMode::User`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<NetworkAttachment>,
    /// User-defined networks joined besides the first (`network
    /// connect`), as `ethN` without the default route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkAttachment>,
    /// `--add-host NAME:IP` lines of /etc/hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--dns`: the container's nameservers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<std::net::IpAddr>,
}

impl ContainerConfig {
    /// The network's name as docker shows it (`HostConfig.NetworkMode`,
    /// ps's NETWORKS).
    pub fn network_name(&self) -> &str {
        match (&self.network, &self.attachment) {
            (NetworkMode::User, Some(attachment)) => &attachment.network,
            (mode, _) => mode.as_str(),
        }
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    /// Exited, its supervisor waiting to run it again (restart policy).
    Restarting,
    Exited,
}

impl Status {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// A container's runtime state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// The supervising process (the foreground `run`, or `__supervise`).
    pub supervisor_pid: Option<u32>,
    /// Its start time in clock ticks since boot (field 22 of
    /// `/proc/PID/stat`), so a recycled pid is never taken for it.
    pub supervisor_start: Option<u64>,
    /// Nanoseconds since the epoch.
    pub started_at: Option<i128>,
    pub finished_at: Option<i128>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Why the container did not run or how it ended abnormally.
    pub error: Option<String>,
    /// Published ports while running, host side bound:
    /// `127.0.0.1:32768->80/tcp`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// The container's address on the bridge while running.
    #[serde(default)]
    pub ip: Option<String>,
    /// The container's pid 1 as the host sees it, while running (`exec`
    /// joins its namespaces).
    #[serde(default)]
    pub pid: Option<i32>,
    /// Healthcheck results (containers with a healthcheck only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
    /// Restarts by the restart policy since the user last started it.
    #[serde(default)]
    pub restart_count: u32,
    /// Frozen by `pause` (while running).
    #[serde(default)]
    pub paused: bool,
    /// The user stopped or killed it since starting it: no restart, and
    /// `unless-stopped` is not started at boot.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Its next exit is final whatever the policy (`stop`, `kill` with the
    /// stop signal or SIGKILL); a restart wait ends at once.
    #[serde(default)]
    pub exit_on_next: bool,
    /// Addresses on the networks joined after the first (`network
    /// connect`), by network id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub network_ips: std::collections::BTreeMap<String, String>,
}

impl ContainerState {
    /// The state of a run that ended with `exit_code` (and `error`, when it
    /// ended abnormally): exited now, no supervisor, pid, address or
    /// ports; an active healthcheck ends unhealthy, as docker's once its
    /// monitor has stopped.
    pub(crate) fn mark_exited(&mut self, exit_code: i32, error: Option<String>) {
        self.status = Status::Exited;
        self.exit_code = Some(exit_code);
        self.error = error;
        self.finished_at = Some(now_nanos());
        self.supervisor_pid = None;
        self.supervisor_start = None;
        self.ports.clear();
        self.ip = None;
        self.pid = None;
        self.paused = false;
        if let Some(health) = &mut self.health {
            health.status = super::health::HealthStatus::Unhealthy;
        }
    }
}

/// Now, in nanoseconds since the epoch.
pub(crate) fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Reads a small JSON file.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let file = File::open(path).map_err(|source| Error::Io {
        action: "open",
        path: path.to_owned(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_JSON {
        return Err(Error::ContainerState {
            path: path.to_owned(),
            reason: format!("{len} bytes, more than the {MAX_JSON} allowed"),
        });
    }
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| Error::ContainerState {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes `value` as JSON to `path` atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Encode {
        what: path.display().to_string(),
        source,
    })?;
    AtomicWrite::new().bytes(path, &bytes)?;
    Ok(())
}

/// An exclusive hold on one container's lock file.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Takes the exclusive flock on `path` (created if missing), waiting.
pub(crate) fn lock(path: &Path) -> Result<Lock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| Error::Io {
            action: "open lock file",
            path: path.to_owned(),
            source,
        })?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| Error::Io {
        action: "lock",
        path: path.to_owned(),
        source: e.into(),
    })?;
    Ok(Lock { _file: file })
}

/// The start time (clock ticks since boot) of process `pid`, `None` if it
/// does not exist.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after ')'; starttime is field 22.
    let start = rest.split_whitespace().nth(19)?;
    let state = rest.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    start.parse().ok()
}

/// Whether the recorded supervisor is still the same live process.
pub(crate) fn supervisor_alive(state: &ContainerState) -> bool {
    match (state.supervisor_pid, state.supervisor_start) {
        (Some(pid), Some(start)) => process_start(pid) == Some(start),
        _ => false,
    }
}

/// The paths of one container's directory.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }
    pub fn control(&self) -> PathBuf {
        self.dir.join(CONTROL_FIFO)
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_dead_one_is_not() {
        let me = std::process::id();
        let start = process_start(me).expect("own start time");
        let alive = ContainerState {
            supervisor_pid: Some(me),
            supervisor_start: Some(start),
            ..ContainerState::default()
        };
        assert!(supervisor_alive(&alive));
        // Same pid, other start time: a recycled pid.
        let recycled = ContainerState {
            supervisor_start: Some(start + 1),
            ..alive.clone()
        };
        assert!(!supervisor_alive(&recycled));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process_start(pid), None);
    }

    #[test]
    fn state_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let state = ContainerState {
            status: Status::Exited,
            exit_code: Some(137),
            oom_killed: true,
            ..ContainerState::default()
        };
        write_json(&path, &state).unwrap();
        let back: ContainerState = read_json(&path).unwrap();
        assert_eq!(back, state);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left behind");
        fs::write(&path, b"{not json").unwrap();
        let err = read_json::<ContainerState>(&path).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
