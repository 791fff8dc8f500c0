//! `exec`: one more process in a running container, in its namespaces and
//! cgroup (the sandbox's pid 1 recorded in the state by the supervisor).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use buildr_exec::{Cancel, ExecSpec, ExitStatus, Sandbox, Stream};

use super::logs::LogStream;
use super::supervisor::{ExitInfo, proxy_signals};
use super::{Container, Containers};
use crate::error::{Error, Result};

/// What `exec` runs and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Program and arguments.
    pub cmd: Vec<String>,
    /// `KEY=value` added to (or replacing in) the container's environment.
    pub env: Vec<String>,
    /// User instead of the container's.
    pub user: Option<String>,
    /// Working directory instead of the container's.
    pub workdir: Option<String>,
    /// Hand this process's standard input to the command (`-i`).
    pub stdin: bool,
    /// A pty for the command, relayed to this process's stdin and stdout
    /// (`-t`); its output then goes to stdout, not to `on_output`.
    pub tty: bool,
    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 to the
    /// command. Blocks them in the calling thread: call before threads start.
    pub proxy_signals: bool,
}

impl Containers {
    /// Runs `options.cmd` in the running container `reference` until it
    /// exits, passing its output to `on_output`. Not logged, as with docker.
    pub fn exec(
        &self,
        reference: &str,
        options: &ExecOptions,
        on_output: impl FnMut(LogStream, &[u8]),
    ) -> Result<ExitInfo> {
        if options.cmd.is_empty() {
            return Err(Error::ContainerOption {
                message: "exec needs a command".into(),
            });
        }
        let container = self.get(reference)?;
        let pid1 = self.running_pid1(&container)?;
        let config = &container.config;
        let mut env = config.env.clone();
        for var in &options.env {
            let key = var.split('=').next().unwrap_or(var);
            env.retain(|v| v.split('=').next() != Some(key));
            env.push(var.clone());
        }
        let spec = ExecSpec {
            argv: options.cmd.clone(),
            env,
            cwd: options
                .workdir
                .clone()
                .unwrap_or_else(|| config.cwd.clone()),
            user: options.user.clone().unwrap_or_else(|| config.user.clone()),
            tty: options.tty,
            ..ExecSpec::default()
        };
        let cancel = Cancel::new()?;
        if options.proxy_signals {
            proxy_signals(&cancel);
        }
        let mut relay = None;
        let stdin = if options.tty {
            let (started, socket) = super::tty::Relay::start()?;
            relay = Some(started);
            Some(socket)
        } else if options.stdin {
            let fd = std::io::stdin().as_fd().try_clone_to_owned();
            Some(fd.map_err(|source| Error::Io {
                action: "duplicate stdin for",
                path: self.paths(&config.id).dir,
                source,
            })?)
        } else {
            None
        };
        let mut on_output = on_output;
        let result = Sandbox::new().exec_in(pid1, &spec, stdin, &cancel, |stream, chunk| {
            let stream = match stream {
                Stream::Stdout => LogStream::Stdout,
                Stream::Stderr => LogStream::Stderr,
            };
            on_output(stream, chunk);
        });
        if let Some(relay) = relay {
            relay.finish();
        }
        Ok(match result {
            Ok(outcome) => ExitInfo {
                exit_code: match outcome.status {
                    ExitStatus::Code(code) => code,
                    ExitStatus::Signal(signal) => 128 + signal,
                },
                oom_killed: false,
                error: None,
            },
            Err(buildr_exec::Error::Setup(message)) => ExitInfo {
                exit_code: if message.contains("not found") || message.contains("No such file") {
                    127
                } else {
                    126
                },
                oom_killed: false,
                error: Some(message),
            },
            Err(e) => return Err(e.into()),
        })
    }

    /// The sandbox pid 1 of a running container, waiting briefly for a
    /// supervisor that is still starting it to record it.
    pub(super) fn running_pid1(&self, container: &Container) -> Result<i32> {
        let id = &container.config.id;
        let not_running = || Error::ContainerConflict {
            container: id.clone(),
            reason: "is not running".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.get(id)?;
            if !now.is_running() {
                return Err(not_running());
            }
            if let (Some(pid), Some(supervisor)) = (now.state.pid, now.state.supervisor_pid)
                && buildr_exec::is_sandbox_pid1(pid, supervisor)
            {
                return Ok(pid);
            }
            if Instant::now() >= deadline {
                return Err(Error::ContainerConflict {
                    container: id.clone(),
                    reason: "is running but its process is not known yet (is its supervisor older than exec support?)".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
