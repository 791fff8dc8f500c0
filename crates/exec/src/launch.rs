//! The launcher side: [`Sandbox::run`] prepares the state dir and cgroup,
//! re-executes the init binary, streams output and cleans up on every path.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nix::fcntl::OFlag;

use crate::cancel::Cancel;
use crate::cgroup::Cgroup;
use crate::error::{Error, Result, io, sys};
use crate::idmap::{in_initial_userns, subordinate_maps};
use crate::init::{CONFIG_FD, ETC_FILES, INIT_ENV, InitConfig, REPORT_FD, Report, RootSource};
use crate::outcome::{ExitStatus, Outcome, Stream, Timings};
use crate::pump::Pump;
use crate::rootfs::Manifest;
use crate::spec::{Network, RootfsMode, SpawnSpec};

/// Runs commands in sandboxes by re-executing an init binary.
///
/// The binary must call [`crate::init_main_if_requested`] first thing in
/// `main`. By default that is the running program (`/proc/self/exe`).
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub(crate) init_exe: PathBuf,
    state_root: PathBuf,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            init_exe: PathBuf::from("/proc/self/exe"),
            state_root: crate::state_root::default_state_root(),
        }
    }
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Everything a run owns on the host; dropping it kills and cleans up.
#[derive(Debug)]
pub(crate) struct RunGuard {
    pub(crate) child: Option<Child>,
    pub(crate) cgroup: Option<Cgroup>,
    pub(crate) state_dir: PathBuf,
    /// An exclusive `flock` on the state dir while the run lasts: what
    /// tells [`crate::state_root::reap_stale_state_dirs`] the dir is in use.
    pub(crate) _state_lock: Option<nix::fcntl::Flock<std::fs::File>>,
    /// Copy mode: the snapshot, emptied if the run does not get to the diff.
    pub(crate) snapshot: Option<PathBuf>,
}

impl RunGuard {
    /// Removes the run's cgroup, if it has one, after reading whether the
    /// OOM killer struck in it and its memory limit.
    fn remove_cgroup(&mut self) -> Result<(bool, Option<u64>)> {
        let oom_killed = self.cgroup.as_ref().is_some_and(|c| c.oom_killed());
        let memory_limit = self.cgroup.as_ref().and_then(|c| c.memory_limit());
        if let Some(mut cgroup) = self.cgroup.take() {
            cgroup.remove()?;
        }
        Ok((oom_killed, memory_limit))
    }

    pub(crate) fn kill(&mut self) {
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut cgroup) = self.cgroup.take() {
            let _ = cgroup.remove();
        }
        if !self.state_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
        if let Some(snapshot) = self.snapshot.take() {
            let _ = crate::rootfs::clear_dir(&snapshot);
        }
    }
}

impl Sandbox {
    /// A sandbox launcher re-executing `/proc/self/exe`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Re-execute this binary as the init instead of the running one.
    pub fn with_init_exe(mut self, path: impl Into<PathBuf>) -> Self {
        self.init_exe = path.into();
        self
    }

    /// Keep per-run state (resolv.conf, hosts, the mountpoint) under `dir`.
    pub fn with_state_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_root = dir.into();
        self
    }

    /// Runs `spec`, streaming output to `on_output` as it arrives. Returns
    /// when the command and everything it started are gone, mounts are
    /// gone, the cgroup is removed and, in copy mode, the diff is in
    /// `spec.rootfs.upper`.
    pub fn run(
        &self,
        spec: &SpawnSpec,
        cancel: &Cancel,
        on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<Outcome> {
        self.run_io(spec, None, cancel, on_output)
    }

    /// As [`Sandbox::run`], with `stdin` as the command's standard input
    /// (`docker run -i`) instead of /dev/null.
    pub fn run_with_stdin(
        &self,
        spec: &SpawnSpec,
        stdin: OwnedFd,
        cancel: &Cancel,
        on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<Outcome> {
        self.run_io(spec, Some(stdin), cancel, on_output)
    }

    fn run_io(
        &self,
        spec: &SpawnSpec,
        stdin: Option<OwnedFd>,
        cancel: &Cancel,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<Outcome> {
        let started = Instant::now();
        validate(spec)?;
        if let Network::Join { netns, .. } = &spec.network {
            crate::net::ensure_started(netns)?;
        }
        let new_userns = !nix::unistd::geteuid().is_root();
        let rootless = new_userns || !in_initial_userns();
        let id_maps = if new_userns { subordinate_maps() } else { None };
        let direct = spec.rootfs.mode == RootfsMode::Direct;
        let copy = copies_rootfs(spec.rootfs.mode, rootless)?;

        let HostSetup {
            mut guard,
            root,
            manifest,
            scratch,
            absent_dirs,
        } = self.prepare_host(spec, direct, copy)?;
        let rootfs = &spec.rootfs;

        let config = InitConfig {
            spec: spec.clone(),
            root,
            state_dir: guard.state_dir.clone(),
            rootless,
            new_userns,
            external_maps: id_maps.is_some(),
            host_uid: nix::unistd::geteuid().as_raw(),
            host_gid: nix::unistd::getegid().as_raw(),
            stdin: stdin.is_some(),
        };
        let config_json = config_line(&config)?;
        let pipes = self.spawn_init("1", &config_json, stdin, id_maps.is_some(), &mut guard)?;
        let mut pump = Pump::new(pipes, id_maps.as_ref());
        pump.run(
            &mut guard,
            cancel,
            spec.timeout.map(|t| started + t),
            &mut on_output,
        )?;
        let Pump {
            reports,
            exec_at,
            timed_out,
            killed,
            ..
        } = pump;
        let exit = guard.child.as_mut().map(|c| c.wait());
        let ended = Instant::now();
        if let Some(child) = guard.child.take() {
            drop(child);
        }

        let (created, final_status, failure) = read_reports(reports);
        let (oom_killed, memory_limit) = guard.remove_cgroup()?;
        remove_mountpoints(&scratch, &created, &absent_dirs);
        if let Some(manifest) = manifest {
            manifest.write_diff(&rootfs.work, &rootfs.upper, &rootfs.lowers)?;
            guard.snapshot = None;
        }
        if let Some(message) = failure {
            return Err(Error::Setup(message));
        }
        let cancelled = cancel.is_cancelled() && killed;
        let status = command_status(final_status, killed || oom_killed, exit, "init")?;
        Ok(Outcome {
            status,
            oom_killed,
            memory_limit,
            timed_out: timed_out && killed,
            cancelled,
            timings: Timings::measured(started, exec_at, ended),
        })
    }

    /// The host side of a run before its init starts, cleaned up by the
    /// returned guard: the state dir (locked while the run lasts) and its
    /// files, the root (a copy is made now), and the cgroup when the run
    /// has limits.
    fn prepare_host(&self, spec: &SpawnSpec, direct: bool, copy: bool) -> Result<HostSetup> {
        let (n, state_dir) = self.make_state_dir()?;
        let mut guard = RunGuard {
            child: None,
            cgroup: None,
            _state_lock: crate::state_root::lock_state_dir(&state_dir),
            state_dir: state_dir.clone(),
            snapshot: None,
        };
        write_state_files(&state_dir, spec)?;

        let (root, manifest, scratch) = root_source(&spec.rootfs, direct, copy, &mut guard)?;
        let absent_dirs = absent_mountpoint_dirs(&scratch, spec);

        // Without limits the pid namespace alone bounds the tree: killing
        // the init kills pid 1, and with it everything inside. A container
        // always gets one (best effort without limits: `pause`, `stats`).
        let always = spec.cgroup == crate::spec::CgroupPolicy::Always;
        if !spec.limits.is_empty() || always {
            let name = format!("buildr-{}-{n}", std::process::id());
            match Cgroup::create(&name, &spec.limits, spec.cgroup) {
                Ok(cgroup) => guard.cgroup = Some(cgroup),
                Err(_) if spec.limits.is_empty() => {}
                Err(e) => return Err(e),
            }
        }

        Ok(HostSetup {
            guard,
            root,
            manifest,
            scratch,
            absent_dirs,
        })
    }

    /// A new state dir for a run under the state root, named after the
    /// launcher's pid, and the run's number in this process (the first run
    /// reaps the state dirs of dead launchers first).
    fn make_state_dir(&self) -> Result<(u64, PathBuf)> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            crate::state_root::reap_stale_state_dirs(&self.state_root);
        }
        // The launcher's pid in the name tells whose state dir it is.
        let template = self
            .state_root
            .join(format!("buildr-exec-{}-XXXXXX", std::process::id()));
        let state_dir = nix::unistd::mkdtemp(&template)
            .map_err(sys(format!("create {}", template.display())))?;
        Ok((n, state_dir))
    }

    /// Starts the init (this binary re-executed in `mode`: a sandbox's
    /// init, or `exec`'s entering process) with the config on one pipe and
    /// its reports on another, in the guard's cgroup if there is one; the
    /// config pipe stays open when id maps are still to come.
    pub(crate) fn spawn_init(
        &self,
        mode: &str,
        config_json: &[u8],
        stdin: Option<OwnedFd>,
        maps_follow: bool,
        guard: &mut RunGuard,
    ) -> Result<InitPipes> {
        let (config_read, config_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create config pipe"))?;
        let (report_read, report_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create report pipe"))?;
        let mut cmd = Command::new(&self.init_exe);
        cmd.env_clear()
            .env(INIT_ENV, mode)
            .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::sys::map_fds_on_spawn(
            &mut cmd,
            [
                (config_read.as_raw_fd(), CONFIG_FD),
                (report_write.as_raw_fd(), REPORT_FD),
            ],
            true,
        );
        let mut child = cmd.spawn().map_err(io("execute", &self.init_exe))?;
        drop((config_read, report_write));
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let pid = child.id();
        guard.child = Some(child);
        if let Some(cgroup) = &guard.cgroup {
            cgroup.add(pid)?;
        }
        // A failed write means the init died; its report or exit says why.
        let mut config_write = std::fs::File::from(config_write);
        let _ = config_write.write_all(config_json);
        Ok(InitPipes {
            stdout,
            stderr,
            report_read,
            config_write: maps_follow.then_some(config_write),
        })
    }
}

/// What [`Sandbox::prepare_host`] set up for a run.
struct HostSetup {
    guard: RunGuard,
    root: RootSource,
    /// Copy mode: the snapshot's manifest, to diff against after the run.
    manifest: Option<Manifest>,
    /// The dir the command's writes land in.
    scratch: PathBuf,
    /// Ancestor dirs of mountpoints that did not exist before the run.
    absent_dirs: Vec<PathBuf>,
}

/// The sandbox's root: the upper dir itself (direct), a copy of the layers
/// in the work dir with a manifest to diff against later (copy mode), or
/// an overlay of the layers; and the dir the command's writes land in.
fn root_source(
    rootfs: &crate::spec::Rootfs,
    direct: bool,
    copy: bool,
    guard: &mut RunGuard,
) -> Result<(RootSource, Option<Manifest>, PathBuf)> {
    Ok(if direct {
        (
            RootSource::Dir(rootfs.upper.clone()),
            None,
            rootfs.upper.clone(),
        )
    } else if copy {
        crate::rootfs::clear_dir(&rootfs.work)?;
        guard.snapshot = Some(rootfs.work.clone());
        // What an earlier run left in the upper dir is the top layer,
        // as it would be for overlay.
        let layers: Vec<PathBuf> = std::iter::once(rootfs.upper.clone())
            .chain(rootfs.lowers.iter().cloned())
            .collect();
        crate::rootfs::populate(&layers, &rootfs.work)?;
        (
            RootSource::Dir(rootfs.work.clone()),
            Some(Manifest::take(&rootfs.work)?),
            rootfs.work.clone(),
        )
    } else {
        let root = RootSource::Overlay {
            lowers: rootfs.lowers.clone(),
            upper: rootfs.upper.clone(),
            work: rootfs.work.clone(),
        };
        (root, None, rootfs.upper.clone())
    })
}

/// Whether the run copies the layers instead of mounting them: copy mode
/// does, direct and overlay do not (overlay fails when the kernel cannot
/// give it), auto copies when overlay is unavailable.
fn copies_rootfs(mode: RootfsMode, rootless: bool) -> Result<bool> {
    Ok(match mode {
        RootfsMode::Copy => true,
        RootfsMode::Direct => false,
        RootfsMode::Overlay => {
            if !crate::rootfs::overlay_available(rootless) {
                return Err(Error::OverlayUnavailable(
                    "not in /proc/filesystems, or kernel too old for rootless overlay".into(),
                ));
            }
            false
        }
        RootfsMode::Auto => !crate::rootfs::overlay_available(rootless),
    })
}

/// A config for the init as the one JSON line it reads on its config pipe.
pub(crate) fn config_line(config: &impl serde::Serialize) -> Result<Vec<u8>> {
    let mut json =
        serde_json::to_vec(config).map_err(|e| Error::Init(format!("encode config: {e}")))?;
    json.push(b'\n');
    Ok(json)
}

/// The command's status from the init's reports; without one, a SIGKILL
/// when the run was killed, else an error naming how `who` (the process
/// that should have reported) exited.
pub(crate) fn command_status(
    reported: Option<ExitStatus>,
    killed: bool,
    exit: Option<std::io::Result<std::process::ExitStatus>>,
    who: &str,
) -> Result<ExitStatus> {
    match reported {
        Some(status) => Ok(status),
        None if killed => Ok(ExitStatus::Signal(libc::SIGKILL)),
        None => Err(Error::Init(format!(
            "{who} exited ({}) without reporting the command's status",
            match exit {
                Some(Ok(status)) => status.to_string(),
                Some(Err(e)) => e.to_string(),
                None => "never started".into(),
            }
        ))),
    }
}

/// The launcher's ends of a started init's pipes.
pub(crate) struct InitPipes {
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    pub(crate) report_read: OwnedFd,
    /// Open while the init waits for its id maps.
    pub(crate) config_write: Option<std::fs::File>,
}

/// What the init's reports say: the mountpoints it created, the command's
/// status, or why setup failed.
fn read_reports(reports: Vec<Report>) -> (Vec<PathBuf>, Option<ExitStatus>, Option<String>) {
    let mut created = Vec::new();
    let mut final_status = None;
    let mut failure = None;
    for report in reports {
        match report {
            Report::Init { .. } | Report::MapRequest { .. } => {}
            Report::Started { created: c } => created = c,
            Report::Failed {
                message,
                created: c,
            } => {
                created = c;
                failure = Some(message);
            }
            Report::Exited { code } => final_status = Some(ExitStatus::Code(code)),
            Report::Signaled { signal } => final_status = Some(ExitStatus::Signal(signal)),
        }
    }
    (created, final_status, failure)
}

fn validate(spec: &SpawnSpec) -> Result<()> {
    if spec.argv.is_empty() {
        return Err(Error::Spec("empty command".into()));
    }
    let rootfs = &spec.rootfs;
    if rootfs.mode == RootfsMode::Direct && !rootfs.lowers.is_empty() {
        return Err(Error::Spec(
            "a direct root filesystem takes no lower dirs".into(),
        ));
    }
    for path in rootfs.lowers.iter().chain([&rootfs.upper, &rootfs.work]) {
        let text = path.to_string_lossy();
        if !path.is_absolute() || text.contains([',', ':', '\n']) {
            return Err(Error::Spec(format!(
                "rootfs path {} must be absolute and free of ',' and ':'",
                path.display()
            )));
        }
    }
    for bind in &spec.binds {
        if !bind.dst.is_absolute() {
            return Err(Error::Spec(format!(
                "bind target {} is not absolute",
                bind.dst.display()
            )));
        }
    }
    if matches!(spec.network, Network::Join { .. }) && !nix::unistd::geteuid().is_root() {
        return Err(Error::Spec(
            "joining a network namespace needs root (or root of the user namespace that owns it)"
                .into(),
        ));
    }
    for (name, _) in &spec.extra_hosts {
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
        if !ok {
            return Err(Error::Spec(format!(
                "extra host name {name:?} must be 1-253 printable characters without spaces or '#'"
            )));
        }
    }
    if spec.hostname.len() > 64 {
        return Err(Error::Spec(format!(
            "hostname {:?} is longer than 64 bytes",
            spec.hostname
        )));
    }
    Ok(())
}

/// resolv.conf, hosts and hostname as Docker writes them.
fn write_state_files(state_dir: &Path, spec: &SpawnSpec) -> Result<()> {
    for dir in ["root", "etc", "empty"] {
        let path = state_dir.join(dir);
        std::fs::create_dir(&path).map_err(io("create", &path))?;
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = String::new();
    let mut nameservers = 0;
    for line in host_resolv.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["nameserver", addr, ..] => {
                // Loopback resolvers of the host are unreachable from a
                // netns; a joined network may bring its own.
                let own = match &spec.network {
                    Network::Join { nameservers, .. } => !nameservers.is_empty(),
                    _ => false,
                };
                let loopback = addr.starts_with("127.") || *addr == "::1";
                if own || !spec.dns.is_empty() || (spec.network != Network::Host && loopback) {
                    continue;
                }
                nameservers += 1;
                resolv.push_str(line);
                resolv.push('\n');
            }
            ["search", ..] | ["options", ..] | ["domain", ..] => {
                resolv.push_str(line);
                resolv.push('\n');
            }
            _ => {}
        }
    }
    let own: &[std::net::IpAddr] = match &spec.network {
        _ if !spec.dns.is_empty() => &spec.dns,
        Network::Join { nameservers, .. } => nameservers,
        _ => &[],
    };
    {
        for addr in own {
            nameservers += 1;
            resolv.push_str(&format!("nameserver {addr}\n"));
        }
    }
    if nameservers == 0 {
        resolv.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    let hostname = &spec.hostname;
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    for (name, addr) in &spec.extra_hosts {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    for (name, content) in ETC_FILES
        .iter()
        .zip([resolv, hosts, format!("{hostname}\n")])
    {
        let path = state_dir.join("etc").join(name);
        std::fs::write(&path, content).map_err(io("write", &path))?;
    }
    Ok(())
}

/// Ancestor dirs of mountpoints that do not exist in the upper (or
/// snapshot) dir before the run; removed afterwards if left empty.
fn absent_mountpoint_dirs(scratch: &Path, spec: &SpawnSpec) -> Vec<PathBuf> {
    let targets = ETC_FILES
        .iter()
        .map(|f| PathBuf::from("etc").join(f))
        .chain(spec.binds.iter().map(|b| b.dst.clone()))
        .chain(spec.tmpfs.iter().map(|t| t.dst.clone()));
    let mut absent = Vec::new();
    for target in targets {
        let rel: PathBuf = target
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        for dir in rel
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
        {
            if std::fs::symlink_metadata(scratch.join(dir)).is_err()
                && !absent.contains(&dir.to_path_buf())
            {
                absent.push(dir.to_path_buf());
            }
        }
    }
    // Deepest first.
    absent.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    absent
}

/// Removes the mountpoints the init created (empty files, empty dirs) and
/// copied-up parents that ended up empty, so they never reach the diff.
/// The command had the run to replace a parent with a symlink: a path
/// through a symlink is left alone rather than followed out of `scratch`.
fn remove_mountpoints(scratch: &Path, created: &[PathBuf], absent_dirs: &[PathBuf]) {
    for rel in created.iter().rev() {
        if !within_without_symlinks(scratch, rel) {
            continue;
        }
        let path = scratch.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() == 0 => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(meta) if meta.is_dir() => {
                let _ = std::fs::remove_dir(&path);
            }
            _ => {}
        }
    }
    for rel in absent_dirs {
        if within_without_symlinks(scratch, rel) {
            let _ = std::fs::remove_dir(scratch.join(rel));
        }
    }
}

/// Whether `rel` is a plain relative path whose parents under `root` are
/// real directories (no symlink, no `..`).
fn within_without_symlinks(root: &Path, rel: &Path) -> bool {
    use std::path::Component;
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return false;
    }
    let mut cursor = root.to_path_buf();
    let mut parents = rel.components().peekable();
    while let Some(part) = parents.next() {
        if parents.peek().is_none() {
            return true;
        }
        cursor.push(part);
        match std::fs::symlink_metadata(&cursor) {
            Ok(meta) if meta.is_dir() => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn cleanup_never_follows_symlinks_out_of_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("upper"), tmp.path().join("outside"));
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("hosts"), "").unwrap();
        std::fs::write(root.join("real/hosts"), "").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
        let created = ["etc/hosts", "real/hosts", "../outside/hosts"].map(PathBuf::from);
        remove_mountpoints(&root, &created, &[PathBuf::from("etc")]);
        assert!(
            outside.join("hosts").exists(),
            "followed a symlink out of the root"
        );
        assert!(
            root.join("etc").exists(),
            "removed the symlink itself as a dir"
        );
        assert!(!root.join("real/hosts").exists());
    }
}
