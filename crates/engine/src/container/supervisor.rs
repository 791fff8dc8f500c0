//! Running a container to its end in the calling process: the foreground
//! `run`, or the detached `__supervise` process. The caller becomes the
//! container's supervisor: it claims the state (pid + start time), serves
//! the control fifo (`signal N`, `stop N MILLIS`), streams output to the
//! json log (and the caller), and records the exit atomically (or, under
//! a restart policy that says so, that it is restarting).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use buildr_cache::SnapshotId;
use buildr_exec::{BindMount, Cancel, ExitStatus, Network, Rootfs, Sandbox, SpawnSpec, Stream};
use nix::sys::signal::{SigSet, Signal};

use super::health::{Health, Monitor, Target};
use super::logs::{DEFAULT_LOG_MAX, LogStream, LogWriter};
use super::state::{
    ContainerState, Paths, Status, now_nanos, process_start, read_json, supervisor_alive,
    write_json,
};
use super::tty::SharedLog;
use super::{Container, Containers};
use crate::error::{Error, Result};

/// How [`Containers::run_attached`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to
    /// this process to the container (docker's `--sig-proxy`). Blocks those
    /// signals in the calling thread, so call it before starting threads.
    pub proxy_signals: bool,
    /// Log file cap before rotation (default 10 MiB).
    pub log_max: Option<u64>,
    /// Hand this process's standard input to the container (`-i`).
    pub stdin: bool,
    /// A pty for the container, relayed to this process's stdin and stdout
    /// (`-t`, foreground only); its output then goes to stdout and is not
    /// logged or passed to `on_output`.
    pub tty: bool,
    /// Apply the container's restart policy at the exit: record it as
    /// restarting (this process still its supervisor, which runs it
    /// again) instead of exited. The detached supervisor does.
    pub restarts: bool,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// The code docker would report: the command's code, 128+signal when
    /// killed, 137 for OOM, 127/126 when the command could not be started.
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why it could not run, if it could not.
    pub error: Option<String>,
}

impl Containers {
    /// Runs a created or exited container in this process until it exits,
    /// passing its output to `on_output` as it arrives.
    pub fn run_attached(
        &self,
        reference: &str,
        options: AttachOptions,
        mut on_output: impl FnMut(LogStream, &[u8]),
    ) -> Result<ExitInfo> {
        let container = self.get(reference)?;
        let paths = self.paths(&container.config.id);
        let cancel = Cancel::new()?;
        // Before any thread starts: threads inherit the blocked mask, and a
        // thread that does not block them would take the default action.
        if options.proxy_signals {
            proxy_signals(&cancel);
        }
        let control = paths.control();
        // Claim the container, its control fifo ready before the state says
        // running: whoever sees "running" can signal it at once (the pipe
        // buffers lines until the control thread reads them).
        let (fifo, mut quit, started_at) = self.claim(&container, &paths)?;
        let control_thread = {
            let cancel = cancel.clone();
            std::thread::spawn(move || control_loop(fifo, &cancel))
        };

        // Records the sandbox's pid 1 once known (`exec` joins it).
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pid_thread = {
            let (cancel, done, state_path, lock_path) =
                (cancel.clone(), started.clone(), paths.state(), paths.lock());
            std::thread::spawn(move || record_pid1(&cancel, &done, &state_path, &lock_path))
        };
        let log = LogWriter::open(&paths.log(), options.log_max.unwrap_or(DEFAULT_LOG_MAX))?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(log));
        // Probes the healthcheck, if any, until the run ends.
        let monitor = Monitor::start(
            &container.config,
            &cancel,
            started_at,
            Target {
                state: paths.state(),
                lock: paths.lock(),
            },
        );
        // Bridge: the endpoint and the port proxies live as long as this call.
        let result = self.connect(&container, &paths).and_then(|network| {
            self.run_sandboxed(&container, network, &options, &log, &cancel, &mut on_output)
        });
        if let Some(monitor) = monitor {
            monitor.stop();
        }
        if let Ok(mut log) = log.lock() {
            log.flush();
        }
        started.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = pid_thread.join();
        let _ = quit.write_all(b"quit\n");
        let _ = control_thread.join();
        let _ = fs::remove_file(&control);

        let info = exit_info(result);
        // Before the state says so: `stop` logs its event after this one.
        let code = info.exit_code.to_string();
        self.emit(&container.config, "die", Some(("exitCode", code)));
        record_exit(&paths, &info, options.restarts)?;
        Ok(info)
    }

    /// The container's run in its sandbox, its output logged and passed
    /// to `on_output`; what was set up for it (the run dir, the terminal,
    /// the bridge endpoint) is undone whatever happens.
    fn run_sandboxed(
        &self,
        container: &Container,
        network: Option<(buildr_exec::Endpoint, Vec<buildr_exec::PortProxy>)>,
        options: &AttachOptions,
        log: &SharedLog,
        cancel: &Cancel,
        on_output: &mut impl FnMut(LogStream, &[u8]),
    ) -> Result<buildr_exec::Outcome> {
        let mut spec = self.spawn_spec(container)?;
        if let Some((endpoint, _proxies)) = &network {
            spec.network = endpoint.network();
        }
        // A state root of its own, so that what a killed supervisor
        // leaves (resolv.conf, hosts) is found and removed by id.
        let run_dir = super::run_dir(&container.config.id);
        fs::create_dir_all(&run_dir).map_err(|source| Error::Io {
            action: "create",
            path: run_dir.clone(),
            source,
        })?;
        let undo = |network: Option<(buildr_exec::Endpoint, Vec<buildr_exec::PortProxy>)>| {
            let _ = fs::remove_dir_all(&run_dir);
            match network {
                Some((endpoint, proxies)) => {
                    drop(proxies);
                    self.release_extra_networks(&container.config.id);
                    endpoint.detach().map_err(Error::from)
                }
                None => Ok(()),
            }
        };
        let paths = self.paths(&container.config.id);
        let terminal = match Terminal::open(options, container, &paths, log, &mut spec) {
            Ok(terminal) => terminal,
            Err(e) => {
                // Nothing ran: undo what was set up for it.
                let _ = undo(network);
                return Err(e);
            }
        };
        let forward = |stream, chunk: &[u8]| {
            let stream = match stream {
                Stream::Stdout => LogStream::Stdout,
                Stream::Stderr => LogStream::Stderr,
            };
            if let Ok(mut log) = log.lock() {
                log.write(stream, chunk);
            }
            on_output(stream, chunk);
        };
        let sandbox = Sandbox::new().with_state_root(&run_dir);
        let outcome = match terminal.stdin {
            Some(stdin) => sandbox.run_with_stdin(&spec, stdin, cancel, forward),
            None => sandbox.run(&spec, cancel, forward),
        }
        .map_err(Error::from);
        if let Some(relay) = terminal.relay {
            relay.finish();
        }
        if let Some(server) = terminal.server {
            server.finish();
        }
        undo(network)?;
        outcome
    }

    /// Claims a container for this supervisor: its control fifo made and
    /// opened (twice: the loop's end and the quit line's), then its state
    /// set running, under the state lock; refused if another supervisor
    /// runs it. The fifo is ready before the state says running: whoever
    /// sees "running" can signal it at once (the pipe buffers lines until
    /// the control thread reads them). Returns the fifo, its writer and
    /// the start time.
    fn claim(&self, container: &Container, paths: &Paths) -> Result<(File, File, i128)> {
        let control = paths.control();
        let _lock = super::state::lock(&paths.lock())?;
        let mut current: ContainerState = read_json(&paths.state())?;
        let pid = std::process::id();
        // Run again by this supervisor under its restart policy, not
        // started by the user: the count goes on.
        let restart = current.status == Status::Restarting && current.supervisor_pid == Some(pid);
        if restart && current.exit_on_next {
            let code = current.exit_code.unwrap_or(0);
            current.mark_exited(code, current.error.clone());
            write_json(&paths.state(), &current)?;
            return Err(Error::ContainerConflict {
                container: container.config.id.clone(),
                reason: "was stopped while waiting to restart".into(),
            });
        }
        let active = matches!(current.status, Status::Running | Status::Restarting);
        if !restart && active && supervisor_alive(&current) {
            return Err(Error::ContainerConflict {
                container: container.config.id.clone(),
                reason: "is already running".into(),
            });
        }
        let _ = fs::remove_file(&control);
        nix::unistd::mkfifo(&control, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(
            |e| Error::Io {
                action: "create control fifo",
                path: control.clone(),
                source: e.into(),
            },
        )?;
        // Read and write: the fifo never reports end-of-file to the loop.
        let open_error = |source| Error::Io {
            action: "open control fifo",
            path: control.clone(),
            source,
        };
        let fifo = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&control)
            .map_err(open_error)?;
        let quit = fifo.try_clone().map_err(open_error)?;
        let active_check = container
            .config
            .healthcheck
            .as_ref()
            .is_some_and(|c| c.probe_argv(&container.config.shell).is_some());
        let state = ContainerState {
            status: Status::Running,
            supervisor_pid: Some(pid),
            supervisor_start: process_start(pid),
            started_at: Some(now_nanos()),
            health: active_check.then(Health::default),
            restart_count: if restart { current.restart_count } else { 0 },
            manually_stopped: restart && current.manually_stopped,
            ..ContainerState::default()
        };
        // Before the state says so: whoever sees it running (`restart`)
        // logs its own event after this one.
        self.emit(&container.config, "start", None);
        write_json(&paths.state(), &state)?;
        Ok((fifo, quit, state.started_at.unwrap_or_default()))
    }

    /// Attaches a bridge container to the bridge and publishes its ports,
    /// recording the address and the bound ports in its state.
    fn connect(
        &self,
        container: &Container,
        paths: &super::state::Paths,
    ) -> Result<Option<(buildr_exec::Endpoint, Vec<buildr_exec::PortProxy>)>> {
        let Some(bridge) = self.bridge_of(&container.config)? else {
            return Ok(None);
        };
        let config = &container.config;
        let options = match &config.attachment {
            Some(attachment) => buildr_exec::AttachOptions {
                ip: attachment.ip,
                names: super::network::dns_names(config, &attachment.aliases),
                netns: None,
            },
            None => buildr_exec::AttachOptions::default(),
        };
        // Say what failed, with the tool's own words, and how to do
        // without it.
        let endpoint = bridge.attach_with(&config.id, &options).map_err(|e| {
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                chain.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            Error::ContainerConflict {
                container: config.name.clone(),
                reason: format!(
                    "cannot connect it to the {} network: {chain} (--network none runs it without one)",
                    config.network_name()
                ),
            }
        })?;
        let mut proxies = Vec::new();
        for text in &container.config.ports {
            let mapping: buildr_exec::PortMapping =
                text.parse()
                    .map_err(|e: buildr_exec::Error| Error::ContainerOption {
                        message: e.to_string(),
                    })?;
            proxies.push(endpoint.publish(&mapping)?);
        }
        let _lock = super::state::lock(&paths.lock())?;
        // The networks joined with `network connect`, in its namespace.
        let mut network_ips = std::collections::BTreeMap::new();
        for extra in &config.networks {
            match self.join_extra(config, extra, &endpoint.netns().path()) {
                Ok(ip) => {
                    network_ips.insert(extra.network_id.clone(), ip.to_string());
                }
                Err(e) => {
                    self.release_extra_networks(&config.id);
                    return Err(Error::ContainerConflict {
                        container: config.name.clone(),
                        reason: format!("cannot connect it to network {}: {e}", extra.network),
                    });
                }
            }
        }
        let mut state: ContainerState = read_json(&paths.state())?;
        state.ip = Some(endpoint.ip().to_string());
        state.ports = proxies.iter().map(|p| p.mapping().to_string()).collect();
        state.network_ips = network_ips;
        write_json(&paths.state(), &state)?;
        Ok(Some((endpoint, proxies)))
    }

    /// The snapshot directories a container's upper dir lies over, topmost
    /// first; snapshots pruned while it was stopped are unpacked again
    /// from the image's blobs, if the image is still there.
    pub(super) fn lower_dirs(&self, config: &super::ContainerConfig) -> Result<Vec<PathBuf>> {
        let mut ids = Vec::with_capacity(config.snapshots.len());
        for id in &config.snapshots {
            ids.push(SnapshotId::new(id)?);
        }
        let mut missing = false;
        for id in &ids {
            missing |= !self.store().has_snapshot(id)?;
        }
        if missing {
            let image = self.images.resolve(&config.image_id)?;
            ids = crate::image::ensure_snapshots(self.store(), &image, |_| {})?;
        }
        let mut lowers = Vec::with_capacity(ids.len());
        for id in ids.iter().rev() {
            lowers.push(self.store().snapshot_path(id)?);
        }
        Ok(lowers)
    }

    /// The sandbox spec of a container.
    fn spawn_spec(&self, container: &Container) -> Result<SpawnSpec> {
        let config = &container.config;
        let paths = self.paths(&config.id);
        let lowers = self.lower_dirs(config)?;
        let mut binds = config.binds.clone();
        for volume in &config.volumes {
            let found = self.volumes.inspect(&volume.name)?;
            binds.push(BindMount {
                src: found.mountpoint,
                dst: PathBuf::from(&volume.destination),
                readonly: volume.readonly,
                subpath: None,
            });
        }
        // Parents before children, as docker sorts mounts: `-v vol:/v` is
        // mounted before `-v /host:/v/sub`, which must land in the volume.
        binds.sort_by_key(|b| b.dst.components().count());
        Ok(SpawnSpec {
            rootfs: Rootfs {
                lowers,
                upper: paths.upper(),
                work: paths.work(),
                ..Rootfs::default()
            },
            argv: config.argv.clone(),
            env: config.env.clone(),
            cwd: config.cwd.clone(),
            user: config.user.clone(),
            hostname: config.hostname.clone(),
            network: match config.network {
                super::NetworkMode::None => Network::None,
                super::NetworkMode::Host => Network::Host,
                // Replaced by the endpoint's namespace in `run_attached`.
                super::NetworkMode::Bridge | super::NetworkMode::User => Network::None,
            },
            extra_hosts: config.extra_hosts.clone(),
            dns: config.dns.clone(),
            binds,
            tmpfs: config.tmpfs.clone(),
            limits: config.limits,
            readonly_rootfs: config.read_only,
            // `pause`, `stats` and `update` act on it.
            cgroup: buildr_exec::CgroupPolicy::Always,
            ..SpawnSpec::default()
        })
    }
}

/// Waits for the sandbox to report its pid 1 and records it in the state,
/// unless the run ends first (`done`).
fn record_pid1(
    cancel: &Cancel,
    done: &std::sync::atomic::AtomicBool,
    state_path: &std::path::Path,
    lock_path: &std::path::Path,
) {
    use std::sync::atomic::Ordering;
    let pid = loop {
        if done.load(Ordering::SeqCst) {
            return;
        }
        if let Some(pid) = cancel.pid1() {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let Ok(_lock) = super::state::lock(lock_path) else {
        return;
    };
    let Ok(mut state) = read_json::<ContainerState>(state_path) else {
        return;
    };
    if state.status == Status::Running && state.supervisor_pid == Some(std::process::id()) {
        state.pid = Some(pid);
        let _ = write_json(state_path, &state);
    }
}

/// Serves control lines until `quit`.
fn control_loop(fifo: fs::File, cancel: &Cancel) {
    let reader = BufReader::new(fifo);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["quit"] => return,
            ["signal", sig] => {
                if let Ok(sig) = sig.parse::<i32>() {
                    send(cancel, sig);
                }
            }
            ["stop", sig, millis] => {
                let (Ok(sig), Ok(millis)) = (sig.parse::<i32>(), millis.parse::<u64>()) else {
                    continue;
                };
                send(cancel, sig);
                let cancel = cancel.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(millis));
                    cancel.cancel();
                });
            }
            _ => {}
        }
    }
}

fn send(cancel: &Cancel, signal: i32) {
    if signal == nix::libc::SIGKILL {
        cancel.cancel();
    } else {
        cancel.send_signal(signal);
    }
}

/// Blocks the proxied signals here and forwards them from a thread.
pub(super) fn proxy_signals(cancel: &Cancel) {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(signal);
    }
    if set.thread_block().is_err() {
        return;
    }
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        while let Ok(signal) = set.wait() {
            cancel.send_signal(signal as i32);
        }
    });
}

/// Docker's exit information for a run: the command's code (137 when the
/// kernel killed it for memory, 128+N for signal N), or 127/126 when it
/// could not start.
fn exit_info(result: Result<buildr_exec::Outcome>) -> ExitInfo {
    match result {
        Ok(outcome) => ExitInfo {
            exit_code: if outcome.oom_killed {
                137
            } else {
                match outcome.status {
                    ExitStatus::Code(code) => code,
                    ExitStatus::Signal(signal) => 128 + signal,
                }
            },
            oom_killed: outcome.oom_killed,
            error: None,
        },
        Err(e) => {
            let message = e.to_string();
            let not_found = message.contains("not found") || message.contains("No such file");
            ExitInfo {
                exit_code: if not_found { 127 } else { 126 },
                oom_killed: false,
                error: Some(message),
            }
        }
    }
}

/// Records the end of a run in the container's state: exited, its code,
/// no supervisor, pid, address or ports; an active healthcheck ends
/// unhealthy, as docker's. With `restarts`, when the container's restart
/// policy (as recorded now: `update --restart` may have changed it)
/// restarts it and no `stop` came since, restarting instead: this process
/// stays its supervisor.
fn record_exit(paths: &Paths, info: &ExitInfo, restarts: bool) -> Result<()> {
    let _lock = super::state::lock(&paths.lock())?;
    let mut state: ContainerState = read_json(&paths.state())?;
    let policy = if restarts {
        read_json::<super::ContainerConfig>(&paths.config())?.restart
    } else {
        super::RestartPolicy::No
    };
    let restart = !state.exit_on_next
        && policy.should_restart(info.exit_code, state.manually_stopped, state.restart_count);
    let supervisor = (state.supervisor_pid, state.supervisor_start);
    state.mark_exited(info.exit_code, info.error.clone());
    state.oom_killed = info.oom_killed;
    if restart {
        state.status = Status::Restarting;
        state.restart_count += 1;
        (state.supervisor_pid, state.supervisor_start) = supervisor;
    }
    write_json(&paths.state(), &state)
}

/// The container's stdin and what serves it: this process's terminal
/// through a pty relay (`run -it`), a pty server a later `attach` reaches
/// (detached `-t`), this process's stdin (`-i`), or nothing.
struct Terminal {
    stdin: Option<std::os::fd::OwnedFd>,
    relay: Option<super::tty::Relay>,
    server: Option<super::tty::Server>,
}

impl Terminal {
    /// Sets `spec` up for a pty when one is used.
    fn open(
        options: &AttachOptions,
        container: &Container,
        paths: &super::state::Paths,
        log: &SharedLog,
        spec: &mut SpawnSpec,
    ) -> Result<Terminal> {
        let mut terminal = Terminal {
            stdin: None,
            relay: None,
            server: None,
        };
        if options.tty {
            spec.tty = true;
            let (relay, socket) = super::tty::Relay::start_logged(Some(log.clone()))?;
            terminal.relay = Some(relay);
            terminal.stdin = Some(socket);
        } else if container.config.tty {
            // Detached with a pty: this supervisor holds the master.
            spec.tty = true;
            let (server, socket) = super::tty::Server::start(
                &super::attach_socket(&container.config.id),
                log.clone(),
                container.config.open_stdin,
            )?;
            terminal.server = Some(server);
            terminal.stdin = Some(socket);
        } else if options.stdin {
            let stdin = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| Error::Io {
                    action: "duplicate stdin for",
                    path: paths.dir.clone(),
                    source,
                })?;
            terminal.stdin = Some(stdin);
        }
        Ok(terminal)
    }
}
