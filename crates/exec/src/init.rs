//! The sandbox side: code run by the re-executed binary.
//!
//! Process tree (the launcher is the embedding program, multi-threaded):
//!
//! ```text
//! launcher ──spawn (std, async-signal-safe pre_exec)──▶ I  (buildr binary, host pid ns)
//!     I: read config (fd 3); [rootless: unshare user ns, map caller to 0];
//!        unshare mnt|uts|ipc|pid|cgroup[|net]; fork ─▶ P1
//!     P1 (pid 1): mounts, pivot_root, hostname, lo up, user lookup,
//!        non-dumpable; fork ─▶ U; then reap and forward signals
//!     U: rlimits, umask, caps, setgroups/setgid/setuid, no_new_privs,
//!        every fd > 2 close-on-exec, chdir, execve
//! ```
//!
//! I and P1 are fresh single-threaded processes, so forking there is safe
//! and the children may allocate. Reports go back on fd 4 as JSON lines.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use serde::{Deserialize, Serialize};

use crate::mounts::{make_mountpoint, mask_paths, mount_root, mount_system};
use crate::spec::{Network, RlimitResource, SpawnSpec};
use crate::sys;
use buildr_fs::rooted::secure_join;

/// Environment variable that turns the binary into the sandbox init.
pub(crate) const INIT_ENV: &str = "_BUILDR_EXEC_INIT";
/// Descriptor carrying the JSON config into the init.
pub(crate) const CONFIG_FD: i32 = 3;
/// Descriptor carrying JSON reports out of the init.
pub(crate) const REPORT_FD: i32 = 4;

/// Docker's default capabilities: CHOWN(0) DAC_OVERRIDE(1) FOWNER(3)
/// FSETID(4) KILL(5) SETGID(6) SETUID(7) SETPCAP(8) NET_BIND_SERVICE(10)
/// NET_RAW(13) SYS_CHROOT(18) MKNOD(27) AUDIT_WRITE(29) SETFCAP(31).
pub const DOCKER_CAPS: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 10)
    | (1 << 13)
    | (1 << 18)
    | (1 << 27)
    | (1 << 29)
    | (1 << 31);

/// How the root is provided to the init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum RootSource {
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
    Dir(PathBuf),
}

/// Everything the init needs, sent as one JSON document on fd 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub spec: SpawnSpec,
    pub root: RootSource,
    /// Holds `root/` (the mountpoint), `etc/` (resolv.conf, hosts, hostname).
    pub state_dir: PathBuf,
    /// Not root in the initial user namespace (fewer mount options, no setgroups).
    pub rootless: bool,
    /// Not root at all: unshare a user namespace and map ourselves to 0.
    pub new_userns: bool,
    /// With `new_userns`: the launcher maps subordinate ids with newuidmap.
    pub external_maps: bool,
    pub host_uid: u32,
    pub host_gid: u32,
    /// The launcher handed a stdin for the command (`-i`): keep fd 0.
    #[serde(default)]
    pub stdin: bool,
}

/// Reports from the init, one JSON object per line on fd 4.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The init made its user namespace; the launcher should map ids.
    MapRequest {
        pid: i32,
    },
    /// Pid 1 of the sandbox, as the host sees it (signals are sent there).
    Init {
        pid: i32,
    },
    /// Setup done, the command was exec'd.
    Started {
        created: Vec<PathBuf>,
    },
    /// Setup failed; nothing ran.
    Failed {
        message: String,
        created: Vec<PathBuf>,
    },
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
}

/// Files bound over the image's from the state dir.
pub(crate) const ETC_FILES: [&str; 3] = ["resolv.conf", "hosts", "hostname"];

/// Call first thing in `main` of the binary the launcher re-executes: when
/// the process was started as a sandbox init it runs the sandbox and never
/// returns; otherwise it returns at once.
pub fn init_main_if_requested() {
    let Some(mode) = std::env::var_os(INIT_ENV) else {
        return;
    };
    if mode == crate::net::dns::DNS_MODE {
        // Its stderr is the network's dns.log.
        let code = crate::net::dns::run_server().unwrap_or_else(|e| {
            eprintln!("buildr: network DNS server: {e}");
            1
        });
        std::process::exit(code);
    }
    let outcome = if mode == crate::enter::ENTER_MODE {
        crate::enter::run_enter()
    } else if mode == crate::rootless::HOLDER_MODE {
        Ok(crate::rootless::run_holder())
    } else {
        run_outer()
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            report(&Report::Failed {
                message: e.report_text(),
                created: Vec::new(),
            });
            1
        }
    };
    std::process::exit(code);
}

pub(crate) fn report(msg: &Report) {
    let Some(mut file) = REPORTS.get() else {
        return;
    };
    let Ok(mut line) = serde_json::to_vec(msg) else {
        return;
    };
    line.push(b'\n');
    let _ = file.write_all(&line);
}

/// The report pipe (fd 4), close-on-exec so the command never sees it.
static REPORTS: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// A step of the sandbox's setup that failed inside the init (namespaces,
/// mounts, user, working directory, exec...).
///
/// The init is another process and cannot hand an error object to the
/// launcher: [`InitError::report_text`] renders it into the `Failed`
/// report line at the pipe, and the launcher makes that text an
/// [`Error::Setup`](crate::Error::Setup).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    /// `what` failed because of `source`.
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure with no error beneath it: a value refused, a peer gone, or
    /// the text the command's process sent back over the exec pipe.
    #[error("{0}")]
    Refused(String),
    /// A lookup of the crate's own failed (the user, a path in the rootfs).
    #[error(transparent)]
    Exec(#[from] crate::Error),
}

impl InitError {
    /// The text of the report line: `what: cause` for a failed step (the
    /// cause's own message, as the launcher has always shown it), else the
    /// error's message.
    pub(crate) fn report_text(&self) -> String {
        match self {
            InitError::Step { what, source } => format!("{what}: {source}"),
            other => other.to_string(),
        }
    }
}

pub(crate) type Res<T> = std::result::Result<T, InitError>;

/// For `map_err`: the step `what` failed because of the error given.
pub(crate) fn ctx<E>(what: impl std::fmt::Display) -> impl FnOnce(E) -> InitError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| InitError::Step {
        what: what.to_string(),
        source: Box::new(e),
    }
}

/// Closes every inherited descriptor but 0-2 and the two protocol pipes,
/// installs the report pipe and returns the config pipe.
pub(crate) fn open_protocol() -> Res<std::io::BufReader<std::fs::File>> {
    // Only 0-2 and our two pipes may exist from here on.
    sys::close_from(REPORT_FD as u32 + 1).map_err(ctx("close inherited descriptors"))?;
    let config_fd = sys::take_inherited_fd(CONFIG_FD).map_err(ctx("take config fd"))?;
    let report_fd = sys::take_inherited_fd(REPORT_FD).map_err(ctx("take report fd"))?;
    nix::fcntl::fcntl(
        report_fd.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(ctx("set cloexec on report fd"))?;
    let _ = REPORTS.set(std::fs::File::from(report_fd));
    Ok(std::io::BufReader::new(std::fs::File::from(config_fd)))
}

/// Process I: read the config, enter namespaces, fork pid 1, wait for it.
fn run_outer() -> Res<i32> {
    let mut config_pipe = open_protocol()?;
    let mut text = Vec::new();
    std::io::BufRead::read_until(&mut config_pipe, b'\n', &mut text).map_err(ctx("read config"))?;
    let config: InitConfig = serde_json::from_slice(&text).map_err(ctx("parse config"))?;

    // Joined first, while we still hold our capabilities over the
    // namespaces of the launcher (a new user namespace would lose them).
    if let Network::Join { netns, .. } = &config.spec.network {
        let file = std::fs::File::open(netns)
            .map_err(ctx(format!("open network namespace {}", netns.display())))?;
        nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(ctx(format!("join network namespace {}", netns.display())))?;
    }
    if config.new_userns {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(ctx("unshare user namespace"))?;
        if config.external_maps {
            // The launcher runs newuidmap/newgidmap on us, then says go.
            report(&Report::MapRequest {
                pid: nix::unistd::getpid().as_raw(),
            });
            let mut go = [0u8; 1];
            config_pipe
                .read_exact(&mut go)
                .map_err(ctx("wait for id maps"))?;
            if go[0] != b'1' {
                return Err(InitError::Refused(
                    "the launcher could not set up id maps".into(),
                ));
            }
        } else {
            std::fs::write("/proc/self/setgroups", "deny").map_err(ctx("write setgroups"))?;
            std::fs::write("/proc/self/uid_map", format!("0 {} 1\n", config.host_uid))
                .map_err(ctx("write uid_map"))?;
            std::fs::write("/proc/self/gid_map", format!("0 {} 1\n", config.host_gid))
                .map_err(ctx("write gid_map"))?;
        }
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWCGROUP;
    if config.spec.network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).map_err(ctx("unshare namespaces"))?;

    // Pid 1 learns through this pipe whether we died before its
    // parent-death signal was armed (a kill right after the fork).
    let (alive_read, alive_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("create liveness pipe"))?;
    match sys::fork_single_threaded().map_err(ctx("fork pid 1"))? {
        ForkResult::Child => {
            drop(alive_write);
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            if parent_gone(&alive_read) {
                std::process::exit(1);
            }
            drop(alive_read);
            let code = run_pid1(&config);
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(alive_read);
            let _alive = alive_write;
            report(&Report::Init {
                pid: child.as_raw(),
            });
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                    Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(ctx("wait for pid 1")(e)),
                }
            }
        }
    }
}

/// Whether every write end of `pipe` is closed: its holder died.
pub(crate) fn parent_gone(pipe: &std::os::fd::OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Process P1 (its parent-death signal already armed).
fn run_pid1(config: &InitConfig) -> i32 {
    let mut created = Vec::new();
    let prepared = prepare(config, &mut created);
    let (identity, env) = match prepared {
        Ok(v) => v,
        Err(e) => {
            let message = e.report_text();
            report(&Report::Failed { message, created });
            return 1;
        }
    };
    match supervise(config, &identity, &env, &created) {
        Ok(status) => {
            // `Started` was reported before the wait; the final word:
            report(&status);
            0
        }
        Err(e) => {
            let message = e.report_text();
            report(&Report::Failed { message, created });
            1
        }
    }
}

/// Everything up to the fork of the command, as root in the new namespaces.
fn prepare(
    config: &InitConfig,
    created: &mut Vec<PathBuf>,
) -> Res<(crate::user::Identity, Vec<CString>)> {
    let spec = &config.spec;
    let root = config.state_dir.join("root");
    mount_tree(config, &root, created)?;
    enter_root(&root)?;
    command_stdio(config)?;
    nix::unistd::sethostname(&spec.hostname).map_err(ctx("set hostname"))?;
    if spec.network == Network::None {
        sys::loopback_up().map_err(ctx("bring up loopback"))?;
    }

    let identity = user_identity(spec)?;
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    if !identity_mapped(&identity, &uid_map, &gid_map) {
        return Err(InitError::Refused(format!(
            "user {:?} ({}:{}) is not mapped in this sandbox's user namespace (rootless: add subordinate ids in /etc/subuid and /etc/subgid and install newuidmap)",
            spec.user, identity.uid, identity.gid
        )));
    }
    let env = command_env(spec, &identity)?;
    check_cwd(spec)?;
    // Created as root, as Docker does for WORKDIR.
    std::fs::create_dir_all(&spec.cwd)
        .map_err(ctx(format!("create working directory {}", spec.cwd)))?;
    if spec.readonly_rootfs {
        // Last, once mountpoints and the working directory exist.
        crate::mounts::remount_readonly(Path::new("/"))?;
    }
    nix::sys::prctl::set_dumpable(false).map_err(ctx("set non-dumpable"))?;
    Ok((identity, env))
}

/// The sandbox's mount tree under `root`, in order: every mount private,
/// the root filesystem, the system mounts, the spec's binds and tmpfs
/// mounts, then the masked paths over all of them.
fn mount_tree(config: &InitConfig, root: &Path, created: &mut Vec<PathBuf>) -> Res<()> {
    let spec = &config.spec;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ctx("make mounts private"))?;
    mount_root(config, root)?;
    mount_system(config, root, created)?;
    for bind in &spec.binds {
        let dst = secure_join(root, &bind.dst).map_err(ctx("resolve bind target"))?;
        // Held open until the bind is made: the source is that inode.
        let (src, _held) = crate::mounts::bind_source(bind)?;
        let is_dir = std::fs::metadata(&src)
            .map_err(ctx(format!("bind source {}", bind.src.display())))?
            .is_dir();
        make_mountpoint(root, &dst, is_dir, created)?;
        crate::mounts::bind_in_root(root, &src, &dst, bind.readonly)?;
    }
    for tmpfs in &spec.tmpfs {
        let dst = secure_join(root, &tmpfs.dst).map_err(ctx("resolve tmpfs target"))?;
        make_mountpoint(root, &dst, true, created)?;
        let data = match tmpfs.size {
            Some(size) => format!("mode=1777,size={size}"),
            None => "mode=1777".to_string(),
        };
        let target = crate::mounts::Target::open(root, &dst)?;
        mount(
            Some("tmpfs"),
            &target.proc_path(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data.as_str()),
        )
        .map_err(ctx(format!("mount tmpfs at {}", tmpfs.dst.display())))?;
    }
    mask_paths(root)
}

/// Makes `root` the process's `/`: pivot_root(".", ".") then detach the
/// old root stacked on top.
fn enter_root(root: &Path) -> Res<()> {
    nix::unistd::chdir(root).map_err(ctx("chdir to new root"))?;
    nix::unistd::pivot_root(".", ".").map_err(ctx("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx("detach old root"))?;
    nix::unistd::chdir("/").map_err(ctx("chdir /"))?;
    Ok(())
}

/// The command's standard streams: with a tty, a new pty's slave on 0, 1
/// and 2; without one and without a stdin from the launcher, /dev/null
/// on 0.
fn command_stdio(config: &InitConfig) -> Res<()> {
    if config.spec.tty {
        // Stdin is the launcher's socket: the master goes back on it.
        let slave = crate::pty::make_and_send(std::io::stdin().as_fd())?;
        nix::unistd::dup2_stdin(slave.as_fd()).map_err(ctx("pty as stdin"))?;
        nix::unistd::dup2_stdout(slave.as_fd()).map_err(ctx("pty as stdout"))?;
        nix::unistd::dup2_stderr(slave.as_fd()).map_err(ctx("pty as stderr"))?;
    } else if !config.stdin
        && let Ok(null) = std::fs::File::options().read(true).open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(null.as_fd());
    }
    Ok(())
}

/// The spec's user, looked up in the (sandbox's) /etc/passwd and /etc/group.
pub(crate) fn user_identity(spec: &SpawnSpec) -> Res<crate::user::Identity> {
    let passwd = crate::user::read_db(Path::new("/etc/passwd"))?;
    let group = crate::user::read_db(Path::new("/etc/group"))?;
    Ok(crate::user::resolve(&spec.user, &passwd, &group)?)
}

/// Whether the user, its group and its supplementary groups all fall in
/// the ranges of the uid_map and gid_map texts.
pub(crate) fn identity_mapped(
    identity: &crate::user::Identity,
    uid_map: &str,
    gid_map: &str,
) -> bool {
    let unmapped_gid = std::iter::once(&identity.gid)
        .chain(&identity.groups)
        .find(|g| !id_mapped(gid_map, **g));
    id_mapped(uid_map, identity.uid) && unmapped_gid.is_none()
}

/// The command's environment: the spec's, plus `HOME` from the user's
/// passwd entry when the spec sets none.
pub(crate) fn command_env(spec: &SpawnSpec, identity: &crate::user::Identity) -> Res<Vec<CString>> {
    let mut env: Vec<CString> = Vec::new();
    for var in &spec.env {
        env.push(CString::new(var.as_str()).map_err(ctx("environment variable with NUL"))?);
    }
    if !spec.env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(CString::new(format!("HOME={}", identity.home)).map_err(ctx("home with NUL"))?);
    }
    Ok(env)
}

/// Refuses a working directory that is not absolute.
pub(crate) fn check_cwd(spec: &SpawnSpec) -> Res<()> {
    if !spec.cwd.starts_with('/') {
        return Err(InitError::Refused(format!(
            "working directory {:?} is not absolute",
            spec.cwd
        )));
    }
    Ok(())
}

/// Whether `id` falls in one of the ranges of a uid_map/gid_map text.
pub(crate) fn id_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && f[0] <= u64::from(id) && u64::from(id) < f[0] + f[2]
    })
}

/// Signals pid 1 passes on to the command.
pub(crate) fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGCHLD,
    ] {
        set.add(sig);
    }
    set
}

/// Forks the command, then reaps everything; when the command exits, kills
/// whatever is left in the pid namespace and returns the command's status.
fn supervise(
    config: &InitConfig,
    identity: &crate::user::Identity,
    env: &[CString],
    created: &[PathBuf],
) -> Res<Report> {
    let spec = &config.spec;
    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(ctx("argument with NUL"))?;
    if argv.is_empty() {
        return Err(InitError::Refused("empty command".into()));
    }
    let program = find_program(&spec.argv[0], env)?;
    let signals = forwarded();
    signals.thread_block().map_err(ctx("block signals"))?;
    let (err_read, err_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("create exec pipe"))?;

    let child = match sys::fork_single_threaded().map_err(ctx("fork command"))? {
        ForkResult::Child => {
            drop(err_read);
            let message = exec_command(&config.spec, identity, &program, &argv, env);
            let _ = nix::unistd::write(&err_write, message.as_bytes());
            std::process::exit(127);
        }
        ForkResult::Parent { child } => child,
    };
    drop(err_write);
    let mut exec_error = String::new();
    let _ = std::fs::File::from(err_read).read_to_string(&mut exec_error);
    if !exec_error.is_empty() {
        let _ = waitpid(child, None);
        return Err(InitError::Refused(exec_error));
    }
    report(&Report::Started {
        created: created.to_vec(),
    });

    let status = loop {
        let Ok(signal) = signals.wait() else { continue };
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, signal);
            continue;
        }
        if let Some(status) = reap(child) {
            break status;
        }
    };
    // The step is over: nothing the command started may outlive it.
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
    while waitpid(None::<Pid>, None).is_ok() {}
    Ok(status)
}

/// Reaps every exited child; returns the command's status once it is among them.
fn reap(command: Pid) -> Option<Report> {
    let mut found = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => {
                found = Some(Report::Exited { code })
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                found = Some(Report::Signaled {
                    signal: signal as i32,
                })
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => continue,
        }
    }
}

/// Looks `name` up in the command's own `PATH` (not ours).
pub(crate) fn find_program(name: &str, env: &[CString]) -> Res<CString> {
    if name.contains('/') {
        return CString::new(name).map_err(ctx("program with NUL"));
    }
    let path = env
        .iter()
        .find_map(|v| v.to_bytes().strip_prefix(b"PATH="))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            && candidate.metadata().map(|m| m.is_file()).unwrap_or(false)
        {
            return CString::new(candidate.as_os_str().as_bytes()).map_err(ctx("program with NUL"));
        }
    }
    Err(InitError::Refused(format!(
        "exec {name}: executable file not found in $PATH"
    )))
}

/// Process U: drop to the requested identity and exec. Returns only with an
/// error message: the text written to the exec pipe, the one way back from
/// the forked command's process.
pub(crate) fn exec_command(
    spec: &SpawnSpec,
    identity: &crate::user::Identity,
    program: &CString,
    argv: &[CString],
    env: &[CString],
) -> String {
    match drop_privileges(spec, identity) {
        Ok(()) => {}
        Err(e) => return e.report_text(),
    }
    let cwd = &spec.cwd;
    if let Err(e) = nix::unistd::chdir(cwd.as_str()) {
        return format!("chdir to working directory {cwd}: {e}");
    }
    // The cwd must be inside the new root (CVE-2024-21626: a leaked host
    // directory fd as cwd would resolve outside it).
    match std::env::current_dir() {
        Ok(dir) if dir.starts_with("/") => {}
        _ => return format!("working directory {cwd} is outside the container root"),
    }
    let e = nix::unistd::execve(program, argv, env).unwrap_err();
    format!("exec {}: {e}", program.to_string_lossy())
}

fn drop_privileges(spec: &SpawnSpec, identity: &crate::user::Identity) -> Res<()> {
    sys::reset_signal_dispositions().map_err(ctx("reset signal dispositions"))?;
    SigSet::all()
        .thread_unblock()
        .map_err(ctx("unblock signals"))?;
    // Its own session, as a container's first process.
    nix::unistd::setsid().map_err(ctx("setsid"))?;
    if spec.tty {
        sys::set_controlling_tty(0).map_err(ctx("make the pty the controlling terminal"))?;
    }
    for rlimit in &spec.rlimits {
        use nix::sys::resource::Resource;
        let resource = match rlimit.resource {
            RlimitResource::Core => Resource::RLIMIT_CORE,
            RlimitResource::Cpu => Resource::RLIMIT_CPU,
            RlimitResource::Data => Resource::RLIMIT_DATA,
            RlimitResource::Fsize => Resource::RLIMIT_FSIZE,
            RlimitResource::Memlock => Resource::RLIMIT_MEMLOCK,
            RlimitResource::Nofile => Resource::RLIMIT_NOFILE,
            RlimitResource::Nproc => Resource::RLIMIT_NPROC,
            RlimitResource::Stack => Resource::RLIMIT_STACK,
            RlimitResource::As => Resource::RLIMIT_AS,
        };
        nix::sys::resource::setrlimit(resource, rlimit.soft, rlimit.hard)
            .map_err(ctx(format!("setrlimit {:?}", rlimit.resource)))?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));

    let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let allowed = spec.capabilities.unwrap_or(DOCKER_CAPS);
    for cap in 0..=last_cap {
        if allowed & (1 << cap) == 0 {
            sys::capbset_drop(cap)
                .map_err(ctx(format!("drop capability {cap} from bounding set")))?;
        }
    }
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    // Denied setgroups (rootless without newgidmap) can only leave the
    // primary group alone, so nothing else may be asked for there.
    if !(setgroups_denied && identity.groups.iter().all(|g| *g == identity.gid)) {
        let groups: Vec<Gid> = identity
            .process_groups()
            .into_iter()
            .map(Gid::from_raw)
            .collect();
        nix::unistd::setgroups(&groups).map_err(ctx("setgroups"))?;
    }
    let gid = Gid::from_raw(identity.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(ctx(format!("setgid {}", identity.gid)))?;
    let uid = Uid::from_raw(identity.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(ctx(format!("setuid {}", identity.uid)))?;
    let caps = if identity.uid == 0 { allowed } else { 0 };
    sys::capset(caps, caps, 0).map_err(ctx("set capabilities"))?;
    sys::ambient_clear_all().map_err(ctx("clear ambient capabilities"))?;
    if spec.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(ctx("set no_new_privs"))?;
    }
    // Nothing but 0-2 survives exec; the exec-error pipe closes on success.
    sys::cloexec_from(3).map_err(ctx("mark descriptors close-on-exec"))?;
    Ok(())
}

/// Parses one report line; anything else is an init protocol error.
pub(crate) fn parse_report(line: &[u8]) -> crate::Result<Report> {
    serde_json::from_slice(line).map_err(|source| crate::Error::BadReport {
        line: String::from_utf8_lossy(line).into_owned(),
        source,
    })
}
