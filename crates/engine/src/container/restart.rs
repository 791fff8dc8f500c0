//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`),
//! applied by the container's detached supervisor: when the command
//! exits, [`record_exit`](super::supervisor) asks [`RestartPolicy::should_restart`]
//! and, if so, marks the container restarting (supervisor kept) instead of
//! exited; [`supervise`] waits docker's backoff and runs it again. A manual
//! `stop` (or `kill` with the stop signal or SIGKILL) is never undone by
//! the policy. With no daemon, a boot runs `start --all-restartable`
//! ([`Containers::restartable`]).

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::state::{ContainerState, Status, read_json, write_json};
use super::{AttachOptions, Container, Containers, ExitInfo};
use crate::error::{Error, Result};

/// The first wait before a restart; it doubles with each restart.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run this long resets the backoff to [`FIRST_BACKOFF`].
const RESET_AFTER: Duration = Duration::from_secs(10);

/// What happens when a container's command exits (docker's `--restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restarted (`no`).
    #[default]
    No,
    /// Restarted when it exits non-zero, at most `max_retries` times
    /// (0: no maximum).
    OnFailure {
        /// docker's `MaximumRetryCount`.
        max_retries: u32,
    },
    /// Always restarted, unless stopped by the user; started at boot.
    Always,
    /// As `Always`, but not started at boot when the user stopped it.
    UnlessStopped,
}

impl RestartPolicy {
    /// docker's `HostConfig.RestartPolicy.Name`.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// docker's `HostConfig.RestartPolicy.MaximumRetryCount`.
    pub fn maximum_retry_count(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max_retries } => *max_retries,
            _ => 0,
        }
    }

    /// Whether a container that exited with `exit_code` after
    /// `restart_count` restarts is restarted (docker's restart manager:
    /// `unless-stopped` not after the user stopped or killed it; a `stop`
    /// ends every policy, through [`ContainerState::exit_on_next`]).
    pub fn should_restart(
        &self,
        exit_code: i32,
        manually_stopped: bool,
        restart_count: u32,
    ) -> bool {
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !manually_stopped,
            RestartPolicy::OnFailure { max_retries } => {
                exit_code != 0 && (max_retries == 0 || restart_count < max_retries)
            }
        }
    }

    /// Whether `start --all-restartable` (a boot) starts a stopped
    /// container: `always`, or `unless-stopped` that the user did not stop.
    pub fn starts_at_boot(&self, manually_stopped: bool) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !manually_stopped,
            _ => false,
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::OnFailure { max_retries } if *max_retries > 0 => {
                write!(f, "on-failure:{max_retries}")
            }
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = Error;

    /// docker's syntax and messages: `no`, `always`, `unless-stopped`,
    /// `on-failure[:N]`.
    fn from_str(text: &str) -> Result<Self> {
        let invalid = |message: String| Error::ContainerOption { message };
        let (name, count) = match text.split_once(':') {
            Some(("", _)) => {
                return Err(invalid(
                    "invalid restart policy format: no policy provided before colon".into(),
                ));
            }
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let count: i64 = match count.filter(|c| !c.is_empty()) {
            Some(c) => c.parse().map_err(|_| {
                invalid(
                    "invalid restart policy format: maximum retry count must be an integer".into(),
                )
            })?,
            None => 0,
        };
        let only_on_failure = || {
            let mut message =
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_owned();
            if count < 0 {
                message.push_str(" and cannot be negative");
            }
            invalid(message)
        };
        let policy = match name {
            "no" | "" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max_retries = u32::try_from(count).map_err(|_| {
                    invalid("invalid restart policy: maximum retry count cannot be negative".into())
                })?;
                return Ok(RestartPolicy::OnFailure { max_retries });
            }
            other => {
                return Err(invalid(format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                )));
            }
        };
        if count != 0 {
            return Err(only_on_failure());
        }
        Ok(policy)
    }
}

/// docker's restart backoff: 100 ms, doubling up to a minute, back to
/// 100 ms after a run of 10 s or more.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Backoff {
    timeout: Duration,
}

impl Backoff {
    /// The wait before the next start of a run that lasted `ran_for`.
    pub(crate) fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.timeout = Duration::ZERO;
        }
        self.timeout = if self.timeout.is_zero() {
            FIRST_BACKOFF
        } else {
            (self.timeout * 2).min(MAX_BACKOFF)
        };
        self.timeout
    }
}

/// The detached supervisor's work ([`crate::entry_hook`] calls it in the
/// process [`Containers::start_detached`] started): leaves the caller's
/// session, runs the container, runs it again as its restart policy
/// says (docker's backoff between), and removes it at its end when it
/// was created with `--rm`.
pub fn supervise(root: &Path, id: &str) -> Result<ExitInfo> {
    supervise_from(root, id, false)
}

/// As [`supervise`], for a container a foreground run (`run` without
/// `-d`, `start -a`) left exited: its restart policy is applied from that
/// exit on ([`Containers::hand_off_restart`] starts this).
pub fn supervise_restarts(root: &Path, id: &str) -> Result<ExitInfo> {
    supervise_from(root, id, true)
}

fn supervise_from(root: &Path, id: &str, resume: bool) -> Result<ExitInfo> {
    let _ = nix::unistd::setsid();
    let containers = Containers::open(root)?;
    let options = AttachOptions {
        restarts: true,
        ..AttachOptions::default()
    };
    let mut backoff = Backoff::default();
    let mut info = if resume {
        match containers.take_over_restart(id)? {
            (true, info) => info,
            (false, info) => return Ok(info),
        }
    } else {
        containers.run_attached(id, options, |_, _| {})?
    };
    let mut ran_since = Instant::now();
    loop {
        let delay = backoff.next(ran_since.elapsed());
        if !containers.wait_to_restart(id, delay)? {
            break;
        }
        ran_since = Instant::now();
        match containers.run_attached(id, options, |_, _| {}) {
            Ok(next) => info = next,
            // Stopped between the wait and the start: it stays exited.
            Err(_) if containers.get(id)?.state.status == Status::Exited => break,
            Err(e) => return Err(e),
        }
    }
    let container = containers.get(id)?;
    if container.config.auto_remove {
        containers.remove_dir(&container, true)?;
    }
    Ok(info)
}

impl Containers {
    /// After a foreground run of a container with a restart policy: when
    /// the policy restarts it, a detached supervisor takes it over (the
    /// foreground process is about to end, as docker's CLI ends while the
    /// daemon restarts the container). Returns whether one was started.
    pub fn hand_off_restart(&self, reference: &str) -> Result<bool> {
        let c = self.get(reference)?;
        if !would_restart(&c.config.restart, &c.state) {
            return Ok(false);
        }
        // The supervisor decides again under the lock.
        self.spawn_supervisor(&c.config.id, true)?;
        Ok(true)
    }

    /// The resumed supervisor's claim: an exited container its policy
    /// restarts becomes restarting under this process. Returns whether it
    /// did, and the last exit.
    fn take_over_restart(&self, id: &str) -> Result<(bool, ExitInfo)> {
        let paths = self.paths(id);
        let config: super::ContainerConfig = read_json(&paths.config())?;
        let _lock = super::state::lock(&paths.lock())?;
        let mut state: ContainerState = read_json(&paths.state())?;
        let info = ExitInfo {
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed,
            error: state.error.clone(),
        };
        if !would_restart(&config.restart, &state) {
            return Ok((false, info));
        }
        let pid = std::process::id();
        state.status = Status::Restarting;
        state.restart_count += 1;
        state.supervisor_pid = Some(pid);
        state.supervisor_start = super::state::process_start(pid);
        write_json(&paths.state(), &state)?;
        Ok((true, info))
    }

    /// Waits `delay` before a restart; `false` (and the container marked
    /// exited) when the user stopped it meanwhile, or when it is not
    /// restarting.
    fn wait_to_restart(&self, id: &str, delay: Duration) -> Result<bool> {
        let paths = self.paths(id);
        let deadline = Instant::now() + delay;
        loop {
            let state: ContainerState = read_json(&paths.state())?;
            if state.status != Status::Restarting {
                return Ok(false);
            }
            if state.exit_on_next {
                let _lock = super::state::lock(&paths.lock())?;
                let mut state: ContainerState = read_json(&paths.state())?;
                if state.status == Status::Restarting {
                    let code = state.exit_code.unwrap_or(0);
                    state.mark_exited(code, state.error.clone());
                    write_json(&paths.state(), &state)?;
                }
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stopped containers a boot starts (`start --all-restartable`):
    /// policy `always`, or `unless-stopped` and not stopped by the user.
    pub fn restartable(&self) -> Result<Vec<Container>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| matches!(c.state.status, Status::Exited | Status::Created))
            .filter(|c| c.config.restart.starts_at_boot(c.state.manually_stopped))
            .collect())
    }

    /// Records that the user stopped (or killed) a container, so that its
    /// policy does not restart it; `exit_on_next` also ends a restart wait.
    pub(crate) fn mark_stopped(&self, id: &str, exit_on_next: bool) -> Result<()> {
        let paths = self.paths(id);
        let _lock = super::state::lock(&paths.lock())?;
        let mut state: ContainerState = read_json(&paths.state())?;
        state.manually_stopped = true;
        state.exit_on_next |= exit_on_next;
        write_json(&paths.state(), &state)
    }
}

/// Whether an exited container's policy restarts it now.
fn would_restart(policy: &RestartPolicy, state: &ContainerState) -> bool {
    state.status == Status::Exited
        && !state.exit_on_next
        && policy.should_restart(
            state.exit_code.unwrap_or(0),
            state.manually_stopped,
            state.restart_count,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_as_docker() {
        let ok = [
            ("no", RestartPolicy::No, "no"),
            ("always", RestartPolicy::Always, "always"),
            (
                "unless-stopped",
                RestartPolicy::UnlessStopped,
                "unless-stopped",
            ),
            (
                "on-failure",
                RestartPolicy::OnFailure { max_retries: 0 },
                "on-failure",
            ),
            (
                "on-failure:2",
                RestartPolicy::OnFailure { max_retries: 2 },
                "on-failure:2",
            ),
        ];
        for (text, want, shown) in ok {
            let got: RestartPolicy = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), shown);
        }
        let bad = [
            ("sometimes", "unknown policy 'sometimes'"),
            ("always:3", "can only be used with 'on-failure'"),
            ("no:-1", "and cannot be negative"),
            ("on-failure:-1", "cannot be negative"),
            ("on-failure:x", "must be an integer"),
            (":3", "no policy provided before colon"),
        ];
        for (text, want) in bad {
            let err = text.parse::<RestartPolicy>().unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn restarts_follow_dockers_restart_manager() {
        let on_failure = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(on_failure.should_restart(3, false, 0));
        assert!(on_failure.should_restart(3, false, 1));
        assert!(!on_failure.should_restart(3, false, 2));
        assert!(!on_failure.should_restart(0, false, 0));
        let unlimited = RestartPolicy::OnFailure { max_retries: 0 };
        assert!(unlimited.should_restart(1, false, 1000));
        assert!(RestartPolicy::Always.should_restart(0, false, 7));
        assert!(RestartPolicy::Always.should_restart(0, true, 0));
        assert!(!RestartPolicy::UnlessStopped.should_restart(0, true, 0));
        assert!(!RestartPolicy::No.should_restart(1, false, 0));
        assert!(RestartPolicy::Always.starts_at_boot(true));
        assert!(!RestartPolicy::UnlessStopped.starts_at_boot(true));
        assert!(RestartPolicy::UnlessStopped.starts_at_boot(false));
        assert!(!on_failure.starts_at_boot(false));
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_ten_seconds() {
        let mut backoff = Backoff::default();
        let short = Duration::from_millis(5);
        let waits: Vec<u128> = (0..4).map(|_| backoff.next(short).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800]);
        for _ in 0..20 {
            backoff.next(short);
        }
        assert_eq!(backoff.next(short), MAX_BACKOFF);
        assert_eq!(backoff.next(Duration::from_secs(10)), FIRST_BACKOFF);
    }
}
