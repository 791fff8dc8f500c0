//! One more process in a running sandbox: [`crate::Sandbox::exec_in`].
//!
//! ```text
//! launcher ──spawn (as for a run)──▶ E (buildr binary, host pid ns)
//!     E: read config (fd 3); join pid 1's cgroups; open its namespace
//!        files; setns user (when it differs), ipc, uts, net, cgroup,
//!        pid, mnt; chdir /; non-dumpable; user lookup in the sandbox's
//!        /etc/passwd; fork ─▶ X; wait for X, forwarding signals
//!     X (in the sandbox's pid ns): parent-death SIGKILL, then what the
//!        first command gets: rlimits, umask, Docker's capabilities,
//!        setgroups/setgid/setuid, no_new_privs, fds > 2 close-on-exec,
//!        chdir, execve
//! ```
//!
//! E stays in the host's pid namespace, so nothing in the sandbox sees it;
//! X is non-dumpable (inherited) until its execve, so nothing in the
//! sandbox can open `/proc/X/exe` (the host binary) meanwhile. E never
//! signals anything but X: unlike pid 1, `kill(-1)` from E would reach
//! the host.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::init::{
    InitError, Report, Res, check_cwd, command_env, ctx, exec_command, find_program, forwarded,
    identity_mapped, open_protocol, report, user_identity,
};
use crate::launch::{RunGuard, Sandbox, command_status, config_line};
use crate::outcome::{ExitStatus, Outcome, Stream, Timings};
use crate::pump::Pump;
use crate::spec::{ExecSpec, SpawnSpec};

/// Value of the init environment variable that selects the exec path.
pub(crate) const ENTER_MODE: &str = "enter";

/// What E is told, one JSON line on fd 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnterConfig {
    /// The sandbox's pid 1 as the host sees it.
    pid1: i32,
    spec: ExecSpec,
}

/// Namespaces joined, in order: the user namespace first (it grants the
/// capabilities over the others), the mount namespace last (after it the
/// host's /proc is out of reach).
const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

impl Sandbox {
    /// Runs `spec` inside the running sandbox whose pid 1 is `pid1` (host
    /// pid, from [`Cancel::pid1`]), like `docker exec`: it joins that
    /// sandbox's namespaces and cgroup, resolves its user in the sandbox's
    /// /etc/passwd and gets Docker's capabilities. Output streams to
    /// `on_output`; `stdin`, when given, is its standard input (else
    /// /dev/null). Signals sent through `cancel` go to the process;
    /// cancelling kills it. Returns when it has exited; what it started
    /// stays in the sandbox, as with docker.
    pub fn exec_in(
        &self,
        pid1: i32,
        spec: &ExecSpec,
        stdin: Option<OwnedFd>,
        cancel: &Cancel,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<Outcome> {
        let started = Instant::now();
        if spec.argv.is_empty() {
            return Err(Error::Spec("empty command".into()));
        }
        if pid1 <= 1 {
            return Err(Error::Spec(format!("invalid sandbox pid {pid1}")));
        }
        let config = EnterConfig {
            pid1,
            spec: spec.clone(),
        };
        let config_json = config_line(&config)?;
        let mut guard = RunGuard {
            child: None,
            cgroup: None,
            state_dir: Default::default(),
            _state_lock: None,
            snapshot: None,
        };
        // A failed config write means E died; its report or exit says why.
        let pipes = self.spawn_init(ENTER_MODE, &config_json, stdin, false, &mut guard)?;
        let mut pump = Pump::new(pipes, None);
        pump.run(&mut guard, cancel, None, &mut on_output)?;
        let exit = guard.child.as_mut().map(|c| c.wait());
        let ended = Instant::now();
        let mut status = None;
        let mut failure = None;
        for report in &pump.reports {
            match report {
                Report::Failed { message, .. } => failure = Some(message.clone()),
                Report::Exited { code } => status = Some(ExitStatus::Code(*code)),
                Report::Signaled { signal } => status = Some(ExitStatus::Signal(*signal)),
                _ => {}
            }
        }
        if let Some(message) = failure {
            return Err(Error::Setup(message));
        }
        let status = command_status(status, pump.killed, exit, "exec helper")?;
        Ok(Outcome {
            status,
            oom_killed: false,
            memory_limit: None,
            timed_out: false,
            cancelled: cancel.is_cancelled() && pump.killed,
            timings: Timings::measured(started, pump.exec_at, ended),
        })
    }
}

/// Process E: join the sandbox, fork the command, report its end.
pub(crate) fn run_enter() -> Res<i32> {
    let mut config_pipe = open_protocol()?;
    let mut text = Vec::new();
    std::io::BufRead::read_until(&mut config_pipe, b'\n', &mut text).map_err(ctx("read config"))?;
    let config: EnterConfig = serde_json::from_slice(&text).map_err(ctx("parse config"))?;
    let pid1 = config.pid1;
    let spec = config.spec.as_spawn();

    // The cgroups first: their files are the host's.
    join_cgroups(pid1)?;
    // The id maps of the user namespace we are about to share; from the
    // host's /proc, since ours will be the sandbox's, where E has no pid.
    let uid_map = std::fs::read_to_string(format!("/proc/{pid1}/uid_map"))
        .map_err(ctx(format!("read uid_map of pid {pid1}")))?;
    let gid_map = std::fs::read_to_string(format!("/proc/{pid1}/gid_map"))
        .map_err(ctx(format!("read gid_map of pid {pid1}")))?;
    // /proc/self will not name us once in the sandbox's mount namespace.
    let one_thread = crate::sys::single_threaded().map_err(ctx("count threads"))?;
    join_namespaces(pid1)?;

    // -t: a pty of the sandbox's devpts; stdin is the launcher's socket.
    let slave = if spec.tty {
        Some(crate::pty::make_and_send(std::io::stdin().as_fd())?)
    } else {
        None
    };
    let command = Command::resolve(&spec, &uid_map, &gid_map)?;
    let signals = forwarded();
    signals.thread_block().map_err(ctx("block signals"))?;
    let (child, _alive) = fork_command(one_thread, &spec, slave.as_ref(), &command)?;
    report(&Report::Init {
        pid: child.as_raw(),
    });
    report(&Report::Started {
        created: Vec::new(),
    });
    wait_forwarding(child, &signals)
}

/// Moves E into pid 1's cgroups (the ones E is not already in). Rootless,
/// a cgroup that is not buildr's and refuses the move is skipped.
fn join_cgroups(pid1: i32) -> Res<()> {
    let dirs = crate::cgroup::dirs_of(pid1).map_err(ctx(format!("read cgroups of pid {pid1}")))?;
    let own =
        crate::cgroup::dirs_of(i32::try_from(std::process::id()).unwrap_or(0)).unwrap_or_default();
    let rootless = crate::rootless::is_rootless();
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        if own.contains(&dir) || !procs.exists() {
            continue;
        }
        match std::fs::write(&procs, "0") {
            Ok(()) => {}
            // Rootless, a container without limits has no cgroup of its
            // own, only the one its supervisor started in, which this
            // user may not be allowed to move into: nothing is lost.
            Err(e)
                if rootless
                    && e.kind() == std::io::ErrorKind::PermissionDenied
                    && !crate::cgroup::is_ours(&dir) => {}
            Err(e) => return Err(ctx(format!("join cgroup {}", dir.display()))(e)),
        }
    }
    Ok(())
}

/// Joins pid 1's namespaces that differ from E's, in [`NAMESPACES`]
/// order, after making E non-dumpable; ends in the sandbox's `/`.
fn join_namespaces(pid1: i32) -> Res<()> {
    let mut joins = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid1}/ns/{name}");
        let file = std::fs::File::open(&theirs).map_err(ctx(format!("open {theirs}")))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .map_err(ctx(format!("stat own {name} namespace")))?;
        let same = file
            .metadata()
            .is_ok_and(|m| m.ino() == ours.ino() && m.dev() == ours.dev());
        if !same {
            joins.push((name, flag, file));
        }
    }
    // Nothing from the sandbox may attach to us once we are in its pid
    // namespace's view (X inherits this until its execve).
    nix::sys::prctl::set_dumpable(false).map_err(ctx("set non-dumpable"))?;
    for (name, flag, file) in &joins {
        nix::sched::setns(file, *flag)
            .map_err(ctx(format!("join {name} namespace of pid {pid1}")))?;
    }
    drop(joins);
    nix::unistd::chdir("/").map_err(ctx("chdir /"))?;
    Ok(())
}

/// What X execs, resolved by E inside the sandbox before the fork, so X
/// only has to drop privileges and exec.
struct Command {
    identity: crate::user::Identity,
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl Command {
    /// The user from the sandbox's /etc/passwd and /etc/group (refused when
    /// the user namespace does not map it), the environment, an absolute
    /// working directory, and the program found on the command's PATH.
    fn resolve(spec: &SpawnSpec, uid_map: &str, gid_map: &str) -> Res<Command> {
        let identity = user_identity(spec)?;
        if !identity_mapped(&identity, uid_map, gid_map) {
            return Err(InitError::Refused(format!(
                "user {:?} ({}:{}) is not mapped in the sandbox's user namespace",
                spec.user, identity.uid, identity.gid
            )));
        }
        let env = command_env(spec, &identity)?;
        check_cwd(spec)?;
        let argv: Vec<CString> = spec
            .argv
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<std::result::Result<_, _>>()
            .map_err(ctx("argument with NUL"))?;
        let Some(first) = spec.argv.first() else {
            return Err(InitError::Refused("empty command".into()));
        };
        let program = find_program(first, &env)?;
        Ok(Command {
            identity,
            program,
            argv,
            env,
        })
    }
}

/// Forks X and waits until it has exec'd the command (or failed to: its
/// error comes back on a close-on-exec pipe and is returned). Returns X
/// and the liveness pipe's write end, which E holds while it lives.
fn fork_command(
    one_thread: crate::sys::SingleThreaded,
    spec: &SpawnSpec,
    slave: Option<&OwnedFd>,
    command: &Command,
) -> Res<(Pid, OwnedFd)> {
    let (err_read, err_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("create exec pipe"))?;

    // X learns through this pipe whether E died before X's parent-death
    // signal was armed.
    let (alive_read, alive_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("create liveness pipe"))?;
    let child = match crate::sys::fork_proven(one_thread).map_err(ctx("fork command"))? {
        ForkResult::Child => {
            drop((err_read, alive_write));
            let message = match child_stdio(slave, &alive_read) {
                Ok(()) => exec_command(
                    spec,
                    &command.identity,
                    &command.program,
                    &command.argv,
                    &command.env,
                ),
                Err(e) => e.report_text(),
            };
            let _ = nix::unistd::write(&err_write, message.as_bytes());
            std::process::exit(127);
        }
        ForkResult::Parent { child } => child,
    };
    drop((err_write, alive_read));
    let mut exec_error = String::new();
    let _ = std::fs::File::from(err_read).read_to_string(&mut exec_error);
    if !exec_error.is_empty() {
        let _ = waitpid(child, None);
        return Err(InitError::Refused(exec_error));
    }
    Ok((child, alive_write))
}

/// Forwards the signals E receives to X until X ends, then reports how.
fn wait_forwarding(child: Pid, signals: &SigSet) -> Res<i32> {
    loop {
        let Ok(signal) = signals.wait() else { continue };
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, signal);
            continue;
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                report(&Report::Exited { code });
                return Ok(0);
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                report(&Report::Signaled {
                    signal: signal as i32,
                });
                return Ok(0);
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(ctx("wait for the command")(e)),
        }
    }
}

/// In X before the common exec path: parent-death signal (and E still
/// alive), the pty slave (with `-t`) as 0, 1 and 2.
fn child_stdio(slave: Option<&OwnedFd>, alive: &OwnedFd) -> Res<()> {
    // Killing E (a cancelled exec) kills the command too.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(ctx("set parent-death signal"))?;
    if crate::init::parent_gone(alive) {
        return Err(InitError::Refused("the exec helper died".into()));
    }
    if let Some(slave) = slave {
        nix::unistd::dup2_stdin(slave.as_fd()).map_err(ctx("pty as stdin"))?;
        nix::unistd::dup2_stdout(slave.as_fd()).map_err(ctx("pty as stdout"))?;
        nix::unistd::dup2_stderr(slave.as_fd()).map_err(ctx("pty as stderr"))?;
    }
    Ok(())
}

/// Whether `pid` is still the sandbox pid 1 its supervisor started:
/// its parent (the init) is a child of `supervisor`.
pub fn is_sandbox_pid1(pid: i32, supervisor: u32) -> bool {
    let parent = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: skip past the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse().ok()
    };
    parent(pid)
        .and_then(parent)
        .is_some_and(|grand| i64::from(grand) == i64::from(supervisor))
}
