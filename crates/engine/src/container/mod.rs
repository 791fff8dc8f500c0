//! Containers: create, run (attached or under a detached supervisor), list,
//! signal, stop, wait, logs, inspect, remove, attach (to the pty a detached
//! supervisor serves), healthchecks (probed by the supervisor), `system
//! prune`; their filesystems (`cp`, `diff`, `export`); and volumes.
//!
//! A container is a directory `<root>/containers/<id>/` (see `state.rs` for
//! its files): a writable overlay layer over the image's snapshots, a fixed
//! config and a state rewritten atomically under a lock. No daemon: the
//! process that runs the container (the foreground `run`, or a
//! `__supervise` process started by `run -d`/`start`, which outlives the
//! CLI like conmon) records itself as supervisor by pid and start time,
//! streams output to the log, and records the exit. A supervisor that died
//! (its pid gone or reused) is detected by every reader: its container is
//! reported as exited, never as running. The sandbox's init dies with its
//! supervisor (parent-death signal), so nothing runs unsupervised.
//!
//! Invariants: a container directory appears under its final name only
//! once its config and state are written; state is never written without
//! the container's lock; nothing here follows a path from an image or a
//! user outside its root (bind sources excepted: they are the user's).

mod bundle;
mod commit;
mod cp;
mod create;
mod diff;
mod exec;
mod fs_access;
mod health;
mod inspect;
mod logs;
mod mounted;
mod names;
mod network;
mod options;
mod prune;
mod resources;
mod restart;
mod state;
mod supervisor;
mod tarout;
mod tree;
mod tty;
mod untar;
mod volume;

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use buildr_cache::Store;

use crate::error::{Error, Result};
use crate::image::Images;
pub use buildr_exec::Limits;
pub use buildr_exec::PortMapping;
pub use buildr_exec::Subnet;
pub use bundle::{BUNDLE_OCI_VERSION, BundleRunOptions, OciBundle, UnpackedBundle};
pub use commit::Committed;
pub use cp::Copied;
pub use create::{CreateOptions, NetworkRequest};
pub use diff::{Change, ChangeKind};
pub use exec::ExecOptions;
pub use fs_access::{CopyOptions, PathStat};
pub use health::{Health, HealthOptions, HealthResult, HealthStatus, Healthcheck, parse_duration};
pub use inspect::{
    ContainerInspect, GraphDriver, GraphDriverData, HealthLogEntry, InspectConfig, InspectHealth,
    InspectHostConfig, InspectNetwork, InspectRestartPolicy, InspectState, MountPoint, PortBinding,
};
pub use logs::{LogEntry, LogOptions, LogStream};
pub use network::{
    Ipam, IpamConfig, Network, NetworkCreateOptions, NetworkEndpoint, NetworkInspect, Networks,
    PREDEFINED as PREDEFINED_NETWORKS,
};
pub use options::{EnvVar, Label, Mount, parse_bytes, parse_signal};
pub use prune::{ContainerSize, SystemPruneOptions, SystemPruneReport};
pub use resources::{ContainerStats, UpdateOptions};
pub use restart::{RestartPolicy, supervise, supervise_restarts};
pub use state::{
    ContainerConfig, ContainerState, NetworkAttachment, NetworkMode, Status, VolumeMount,
};
pub use supervisor::{AttachOptions, ExitInfo};
pub use volume::{Volume, Volumes};

pub(crate) use logs::format_time;
use state::{Paths, now_nanos, read_json, supervisor_alive, write_json};

/// Exit code recorded when a supervisor died without recording one.
pub const EXIT_SUPERVISOR_DIED: i32 = 255;

/// One container: its config and its (liveness-checked) state.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    pub state: ContainerState,
}

impl Container {
    /// The first 12 characters of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.config.id[..12.min(self.config.id.len())]
    }

    /// Whether it is running now (paused included).
    pub fn is_running(&self) -> bool {
        self.state.status == Status::Running
    }

    /// Whether docker counts it as running: running, paused, or waiting
    /// to restart (what `ps` lists without `-a`).
    pub fn is_active(&self) -> bool {
        matches!(self.state.status, Status::Running | Status::Restarting)
    }

    /// docker's `State.Status`: `created`, `running`, `paused`,
    /// `restarting` or `exited`.
    pub fn status_word(&self) -> &'static str {
        if self.is_running() && self.state.paused {
            "paused"
        } else {
            self.state.status.as_str()
        }
    }

    /// Its creation time in RFC 3339 with nanoseconds, UTC (`...Z`).
    pub fn created_rfc3339(&self) -> String {
        logs::format_time(self.config.created)
    }
}

/// How [`Containers::remove`] removes (docker's `rm -f`, `rm -v`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Kill a running container first instead of refusing.
    pub force: bool,
    /// Remove its anonymous volumes too.
    pub volumes: bool,
}

/// The container commands over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Containers {
    images: Images,
    dir: PathBuf,
    volumes: Volumes,
    networks: Networks,
}

impl Containers {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Containers> {
        let store = Store::open(root)?;
        let dir = store.root().join("containers");
        let volumes = Volumes::new(store.root());
        let networks = Networks::new(store.root());
        Ok(Containers {
            images: Images::with_store(store),
            dir,
            volumes,
            networks,
        })
    }

    /// The store's volumes.
    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    /// The store's user-defined networks.
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// The bridge a container's network is on, if it is on one.
    pub(crate) fn bridge_of(
        &self,
        config: &ContainerConfig,
    ) -> Result<Option<buildr_exec::BridgeNetwork>> {
        match (config.network, &config.attachment) {
            (NetworkMode::Bridge, _) => Ok(Some(self.bridge()?)),
            (NetworkMode::User, Some(attachment)) => {
                let network = self.networks.get(&attachment.network_id).map_err(|_| {
                    Error::NetworkNotFound {
                        reference: attachment.network.clone(),
                    }
                })?;
                Ok(Some(network::bridge_of(&network)?))
            }
            _ => Ok(None),
        }
    }

    /// The bridge network containers with `--network bridge` join. The
    /// bridge is host-wide, so its leases are too: they live on the runtime
    /// tmpfs (`/run/buildr/network/buildr0`), shared by every store, and
    /// vanish with the bridge at reboot. Rootless, the bridge is the
    /// user's own: in the user's network home (reaching out through
    /// slirp4netns, whose DNS forwarder containers use), leases in the
    /// user's runtime directory.
    pub(crate) fn bridge(&self) -> Result<buildr_exec::BridgeNetwork> {
        let config = network::host_bridge_config("buildr0")?;
        Ok(buildr_exec::BridgeNetwork::new(config)?)
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        self.images.store()
    }

    /// Records a container event (`events`): one call per state change.
    pub(crate) fn emit(
        &self,
        config: &ContainerConfig,
        action: &str,
        extra: Option<(&str, String)>,
    ) {
        let mut event = crate::events::container_event(config, action);
        if let Some((key, value)) = extra {
            event = event.with(key, value);
        }
        crate::events::emit(self.store().root(), event);
    }

    fn paths(&self, id: &str) -> Paths {
        Paths {
            dir: self.dir.join(id),
        }
    }

    /// Every container, oldest first, with dead supervisors detected.
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut all = self.all()?;
        for container in &mut all {
            self.check_alive(container)?;
        }
        Ok(all)
    }

    fn all(&self) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|source| Error::Io {
            action: "list containers in",
            path: self.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // A container removed meanwhile is skipped, not an error.
            match self.load(&name) {
                Ok(container) => out.push(container),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|c| c.config.created);
        Ok(out)
    }

    fn load(&self, id: &str) -> Result<Container> {
        let paths = self.paths(id);
        Ok(Container {
            config: read_json(&paths.config())?,
            state: read_json(&paths.state())?,
        })
    }

    /// Marks a running container whose supervisor died as exited, on disk.
    fn check_alive(&self, container: &mut Container) -> Result<()> {
        if !container.is_active() || supervisor_alive(&container.state) {
            return Ok(());
        }
        let paths = self.paths(&container.config.id);
        let _lock = state::lock(&paths.lock())?;
        let mut state: ContainerState = read_json(&paths.state())?;
        if state.status == Status::Restarting && !supervisor_alive(&state) {
            // Died while waiting to restart: it stays as it last exited.
            let code = state.exit_code.unwrap_or(EXIT_SUPERVISOR_DIED);
            state.mark_exited(code, state.error.clone());
            write_json(&paths.state(), &state)?;
        }
        if state.status == Status::Running && !supervisor_alive(&state) {
            let why = format!(
                "supervisor (pid {}) died without recording an exit",
                state.supervisor_pid.unwrap_or(0)
            );
            state.mark_exited(EXIT_SUPERVISOR_DIED, Some(why));
            write_json(&paths.state(), &state)?;
            // What the dead supervisor's sandbox left on the tmpfs.
            let _ = fs::remove_dir_all(run_dir(&container.config.id));
            // Its namespace died with it; the lease and veth did not.
            if let Ok(Some(bridge)) = self.bridge_of(&container.config) {
                let _ = bridge.release(&container.config.id);
            }
            self.release_extra_networks(&container.config.id);
        }
        container.state = state;
        Ok(())
    }

    /// The container named by a full id, a name, or a unique id prefix.
    pub fn get(&self, reference: &str) -> Result<Container> {
        let not_found = || Error::ContainerNotFound {
            reference: reference.to_owned(),
        };
        if reference.is_empty() {
            return Err(not_found());
        }
        let name = reference.strip_prefix('/').unwrap_or(reference);
        let all = self.all()?;
        let mut found = all
            .iter()
            .find(|c| c.config.id == reference || c.config.name == name)
            .cloned();
        if found.is_none() {
            let matches: Vec<&Container> = all
                .iter()
                .filter(|c| c.config.id.starts_with(reference))
                .collect();
            match matches.as_slice() {
                [one] => found = Some((*one).clone()),
                [] => {}
                _ => {
                    return Err(Error::ContainerConflict {
                        container: reference.to_owned(),
                        reason: format!(
                            "id prefix is ambiguous: it matches {} containers",
                            matches.len()
                        ),
                    });
                }
            }
        }
        let mut container = found.ok_or_else(not_found)?;
        self.check_alive(&mut container)?;
        Ok(container)
    }

    /// Sends `signal` to a running container's command (`kill -s`);
    /// `SIGKILL` kills the whole tree at once.
    ///
    /// A paused container is thawed after SIGKILL or its stop signal, so
    /// that the signal is delivered (docker's order); the user's kill
    /// keeps the restart policy from starting it again.
    pub fn kill(&self, reference: &str, signal: i32) -> Result<()> {
        let container = self.get(reference)?;
        if container.state.status == Status::Restarting {
            return Err(Error::ContainerConflict {
                container: container.config.id.clone(),
                reason: "is restarting, wait until the container is running".into(),
            });
        }
        let last = signal == nix::libc::SIGKILL || signal == container.config.stop_signal;
        if container.is_running() {
            self.mark_stopped(&container.config.id, last)?;
        }
        self.control(&container, &format!("signal {signal}"))?;
        self.emit(
            &container.config,
            "kill",
            Some(("signal", signal.to_string())),
        );
        if last && container.state.paused {
            self.thaw_for_exit(&container)?;
        }
        Ok(())
    }

    /// Sends the image's stop signal, then SIGKILL after `timeout`; waits
    /// for the exit. A container that is not running is left alone.
    ///
    /// A paused container is thawed after the signal; one waiting to
    /// restart stays exited. Either way its restart policy does not start
    /// it again.
    pub fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let container = self.get(reference)?;
        if container.state.status == Status::Restarting {
            self.mark_stopped(&container.config.id, true)?;
            return self.wait_exit(&container.config.id, None);
        }
        if !container.is_running() {
            return Ok(container);
        }
        self.mark_stopped(&container.config.id, true)?;
        let line = format!(
            "stop {} {}",
            container.config.stop_signal,
            timeout.as_millis()
        );
        match self.control(&container, &line) {
            Ok(()) => {}
            // It exited between the check and the write (and may be
            // waiting to restart: the mark above ends that).
            Err(Error::ContainerConflict { .. }) => {
                return self.wait_exit(&container.config.id, Some(Duration::from_secs(10)));
            }
            Err(e) => return Err(e),
        }
        let signal = container.config.stop_signal.to_string();
        self.emit(&container.config, "kill", Some(("signal", signal)));
        if container.state.paused {
            self.thaw_for_exit(&container)?;
        }
        let stopped = self.wait_exit(&container.config.id, None)?;
        self.emit(&stopped.config, "stop", None);
        Ok(stopped)
    }

    /// docker's `restart`: [`Containers::stop`] (if running), then
    /// [`Containers::start_detached`] (a user start: the restart count
    /// starts again).
    pub fn restart(&self, reference: &str, timeout: Duration) -> Result<Container> {
        self.stop(reference, timeout)?;
        let container = self.start_detached(reference)?;
        self.emit(&container.config, "restart", None);
        Ok(container)
    }

    /// Blocks until the container has exited (at most `timeout`); returns
    /// it. An exit its restart policy restarts counts, as docker's `wait`
    /// returns at each stop.
    pub fn wait(&self, reference: &str, timeout: Option<Duration>) -> Result<Container> {
        let container = self.get(reference)?;
        let before = container.state.finished_at;
        self.wait_until(&container.config.id, timeout, |c| {
            c.state.status == Status::Restarting && c.state.finished_at != before
        })
    }

    /// Blocks until the container has exited for good (at most `timeout`).
    fn wait_exit(&self, id: &str, timeout: Option<Duration>) -> Result<Container> {
        self.wait_until(id, timeout, |_| false)
    }

    /// Blocks until the container has exited or `also` holds (at most
    /// `timeout`); returns it.
    fn wait_until(
        &self,
        id: &str,
        timeout: Option<Duration>,
        also: impl Fn(&Container) -> bool,
    ) -> Result<Container> {
        let started = Instant::now();
        loop {
            let container = match self.get(id) {
                Ok(c) => c,
                // Removed by --rm meanwhile.
                Err(Error::ContainerNotFound { .. }) => {
                    return Err(Error::ContainerNotFound {
                        reference: id.to_owned(),
                    });
                }
                Err(e) => return Err(e),
            };
            // Created: `wait` waits for a start and an exit, like docker.
            let done = container.state.status == Status::Exited
                || (container.state.status == Status::Created && timeout.is_some())
                || also(&container);
            if done {
                return Ok(container);
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Ok(container);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Writes one control line to the container's supervisor.
    fn control(&self, container: &Container, line: &str) -> Result<()> {
        let not_running = || Error::ContainerConflict {
            container: container.config.id.clone(),
            reason: "is not running".into(),
        };
        if !container.is_running() {
            return Err(not_running());
        }
        let path = self.paths(&container.config.id).control();
        // Non-blocking: no reader means no supervisor (ENXIO).
        let mut fifo = match fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENXIO | nix::libc::ENOENT)) => {
                return Err(not_running());
            }
            Err(source) => {
                return Err(Error::Io {
                    action: "open control fifo",
                    path,
                    source,
                });
            }
        };
        fifo.write_all(format!("{line}\n").as_bytes())
            .map_err(|source| Error::Io {
                action: "write control fifo",
                path,
                source,
            })
    }

    /// Removes a container: its directory (the writable layer), and with
    /// [`RemoveOptions::volumes`] (or for `--rm` containers) its anonymous
    /// volumes. A running one is refused unless [`RemoveOptions::force`].
    pub fn remove(&self, reference: &str, options: RemoveOptions) -> Result<()> {
        let RemoveOptions { force, volumes } = options;
        let mut container = self.get(reference)?;
        if container.state.status == Status::Restarting {
            if !force {
                return Err(Error::ContainerConflict {
                    container: container.config.id.clone(),
                    reason: "cannot remove a restarting container: stop it first, or use force"
                        .into(),
                });
            }
            self.mark_stopped(&container.config.id, true)?;
            container = self.wait_exit(&container.config.id, Some(Duration::from_secs(30)))?;
        }
        if container.is_running() {
            if !force {
                return Err(Error::ContainerConflict {
                    container: container.config.id.clone(),
                    reason: "cannot remove a running container: stop it first, or use force".into(),
                });
            }
            let _ = self.control(&container, &format!("signal {}", nix::libc::SIGKILL));
            container = self.wait_exit(&container.config.id, Some(Duration::from_secs(30)))?;
            if container.is_running() {
                return Err(Error::ContainerConflict {
                    container: container.config.id.clone(),
                    reason: "did not exit within 30 s of SIGKILL".into(),
                });
            }
        }
        self.remove_dir(&container, volumes || container.config.auto_remove)
    }

    fn remove_dir(&self, container: &Container, volumes: bool) -> Result<()> {
        let paths = self.paths(&container.config.id);
        let _ = fs::remove_dir_all(run_dir(&container.config.id));
        // Rename first: the container disappears at once, then is deleted.
        let trash = self.dir.join(format!(".rm-{}", container.config.id));
        fs::rename(&paths.dir, &trash).map_err(|source| Error::Io {
            action: "remove container",
            path: paths.dir.clone(),
            source,
        })?;
        match fs::remove_dir_all(&trash) {
            Ok(()) => {}
            // A concurrent prune took the leftovers.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    action: "remove container",
                    path: trash.clone(),
                    source,
                });
            }
        }
        self.emit(&container.config, "destroy", None);
        if volumes {
            for volume in container.config.volumes.iter().filter(|v| v.anonymous) {
                if !self.volume_in_use(&volume.name)? {
                    self.volumes.remove_unchecked(&volume.name)?;
                }
            }
        }
        Ok(())
    }

    /// What containers keep alive for a store prune: the images (config
    /// and layer blobs) and snapshots every container was created from,
    /// running or not. `Images::prune` does not call this yet.
    pub fn gc_roots(&self) -> Result<buildr_cache::Roots> {
        let mut roots = buildr_cache::Roots::default();
        for container in self.all()? {
            for id in &container.config.snapshots {
                roots.snapshots.insert(buildr_cache::SnapshotId::new(id)?);
            }
            if let Ok(image) = self.images.resolve(&container.config.image_id) {
                roots.blobs.insert(image.manifest_digest);
                roots.blobs.insert(image.id);
                roots
                    .blobs
                    .extend(image.manifest.layers.iter().map(|l| l.digest));
            }
        }
        Ok(roots)
    }

    /// Removes every stopped container, and what a crashed `create` or
    /// `rm` left (`.tmp-*`, `.rm-*`); returns the containers' ids.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        {
            // Under the names lock: no `create` is between mkdir and rename.
            let _names = state::lock(&self.dir.join(".lock"))?;
            if let Ok(entries) = fs::read_dir(&self.dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with(".tmp-") || name.starts_with(".rm-") {
                        let _ = fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        for container in self.list()? {
            if !container.is_active() {
                self.remove_dir(&container, false)?;
                removed.push(container.config.id);
            }
        }
        Ok(removed)
    }

    /// Streams a container's log entries.
    pub fn logs(
        &self,
        reference: &str,
        options: LogOptions,
        on_entry: impl FnMut(&LogEntry) -> std::io::Result<()>,
    ) -> Result<()> {
        let container = self.get(reference)?;
        let id = container.config.id.clone();
        let running = || self.get(&id).is_ok_and(|c| c.is_running());
        logs::read(&self.paths(&id).log(), options, running, on_entry)
    }

    /// Connects to a running `-t` container's pty (served by its detached
    /// supervisor): what the stream yields is the container's output, what
    /// is written to it its input (with `-i`). End-of-file when it exits.
    pub fn attach(&self, reference: &str) -> Result<std::os::unix::net::UnixStream> {
        let container = self.get(reference)?;
        let id = &container.config.id;
        if !container.config.tty {
            return Err(Error::ContainerConflict {
                container: id.clone(),
                reason: "was not created with -t: attach needs a pty (use `logs -f`)".into(),
            });
        }
        let path = attach_socket(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if !self.get(id)?.is_running() {
                return Err(Error::ContainerConflict {
                    container: id.clone(),
                    reason: "is not running".into(),
                });
            }
            match std::os::unix::net::UnixStream::connect(&path) {
                Ok(stream) => return Ok(stream),
                Err(source) if Instant::now() >= deadline => {
                    return Err(Error::Io {
                        action: "connect to attach socket",
                        path,
                        source,
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Starts a created or exited container under a detached supervisor:
    /// this program run again, which becomes the supervisor in
    /// [`crate::entry_hook`] (so a binary that starts detached containers
    /// calls it first thing in `main`). Returns once the container runs (or
    /// has already exited).
    pub fn start_detached(&self, reference: &str) -> Result<Container> {
        let container = self.get(reference)?;
        if container.is_active() {
            return Ok(container);
        }
        let before = container.state.started_at;
        let (mut child, log_path) = self.spawn_supervisor(&container.config.id, false)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.get(&container.config.id)?;
            if now.state.started_at != before {
                return Ok(now);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let text = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(Error::ContainerConflict {
                    container: container.config.id.clone(),
                    reason: format!(
                        "supervisor exited ({status}) before starting: {}",
                        text.trim()
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::ContainerConflict {
                    container: container.config.id.clone(),
                    reason: "supervisor did not start the container within 60 s".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts a detached supervisor for container `id` (this program run
    /// again, its stderr the container's `supervisor.log`); with `resume`
    /// it takes over a container that just exited under a foreground run
    /// and applies its restart policy from there.
    pub(crate) fn spawn_supervisor(
        &self,
        id: &str,
        resume: bool,
    ) -> Result<(std::process::Child, PathBuf)> {
        let paths = self.paths(id);
        let program = std::env::current_exe().map_err(|source| Error::Io {
            action: "find this program to start a supervisor",
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        let log_path = paths.dir.join("supervisor.log");
        let log = fs::File::create(&log_path).map_err(|source| Error::Io {
            action: "create",
            path: log_path.clone(),
            source,
        })?;
        let mut command = std::process::Command::new(&program);
        command
            .env(crate::entry::SUPERVISE_ENV, id)
            .env(crate::entry::SUPERVISE_ROOT_ENV, self.store().root());
        if resume {
            command.env(crate::entry::SUPERVISE_RESUME_ENV, "1");
        }
        let child = command
            // For `ps` only: the hook reads the environment, never these.
            .arg("--root")
            .arg(self.store().root())
            .arg("__supervise")
            .arg(id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| Error::Io {
                action: "start supervisor",
                path: program.clone(),
                source,
            })?;
        Ok((child, log_path))
    }
}

/// The sandbox's per-run state root of container `id`, on the runtime
/// tmpfs: `<tmpfs>/buildr/containers/<id>`.
pub(crate) fn run_dir(id: &str) -> PathBuf {
    buildr_exec::default_state_root()
        .join("buildr")
        .join("containers")
        .join(id)
}

/// The unix socket a detached `-t` container's supervisor serves its pty
/// on (short: `sun_path` holds 108 bytes).
pub(crate) fn attach_socket(id: &str) -> PathBuf {
    run_dir(id).join("attach.sock")
}

fn libc_sigterm() -> i32 {
    nix::libc::SIGTERM
}

fn valid_container_name(name: &str) -> bool {
    volume::valid_name(name) || (name.len() == 1 && name.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// `bytes` random bytes from the kernel, hex-encoded.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    let urandom = Path::new("/dev/urandom");
    fs::File::open(urandom)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .map_err(|source| Error::Io {
            action: "read",
            path: urandom.to_owned(),
            source,
        })?;
    let mut out = String::with_capacity(bytes * 2);
    for b in buf {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}
