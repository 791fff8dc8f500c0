//! Healthchecks, docker's way: the image's `Healthcheck` merged with the
//! `run --health-*` flags at create time, then probed by the container's
//! supervisor on its schedule, each probe an `exec` into the container
//! killed when it outlives its timeout. Results land in `State.Health`
//! (status, failing streak, the last five probes) under the container's
//! lock, exactly as `docker inspect` shows them.
//!
//! Docker's rules kept here: the first probe runs one interval after the
//! start; during the start period a failure does not count (and the
//! start interval, when set, replaces the interval while still
//! `starting`); `retries` consecutive failures make it `unhealthy`, one
//! success `healthy`; a probe over its timeout is a failure with exit code
//! -1; output is capped at 4 KiB; the status reads `unhealthy` once the
//! monitor has stopped with the container.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use buildr_exec::{Cancel, ExecSpec, ExitStatus, Sandbox};
use serde::{Deserialize, Serialize};

use super::state::{ContainerConfig, ContainerState, Status, now_nanos, read_json, write_json};
use crate::error::{Error, Result};

const SECOND: i64 = 1_000_000_000;
/// Docker's defaults, for a zero (unset) field.
pub const DEFAULT_INTERVAL: i64 = 30 * SECOND;
pub const DEFAULT_TIMEOUT: i64 = 30 * SECOND;
pub const DEFAULT_START_INTERVAL: i64 = 5 * SECOND;
pub const DEFAULT_RETRIES: i64 = 3;
/// Probes kept in `State.Health.Log`.
const MAX_LOG_ENTRIES: usize = 5;
/// Output kept per probe; more is cut and marked with `...`.
const MAX_OUTPUT: usize = 4096;

/// `run`/`create` healthcheck flags; `None` keeps the image's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthOptions {
    /// `--health-cmd`: run with the container's shell (`CMD-SHELL`).
    pub cmd: Option<String>,
    /// `--health-interval`.
    pub interval: Option<Duration>,
    /// `--health-timeout`.
    pub timeout: Option<Duration>,
    /// `--health-start-period`.
    pub start_period: Option<Duration>,
    /// `--health-start-interval`.
    pub start_interval: Option<Duration>,
    /// `--health-retries`.
    pub retries: Option<u32>,
    /// `--no-healthcheck`: disable any image healthcheck.
    pub disable: bool,
}

/// A container's healthcheck as docker's `Config.Healthcheck` holds it:
/// durations in nanoseconds, zero meaning docker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", prog, args...]` or `["CMD-SHELL", command]`.
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: i64,
    #[serde(default)]
    pub timeout: i64,
    #[serde(default)]
    pub start_period: i64,
    #[serde(default)]
    pub start_interval: i64,
    #[serde(default)]
    pub retries: i64,
}

fn or_default(value: i64, default: i64) -> i64 {
    if value > 0 { value } else { default }
}

impl Healthcheck {
    /// The probe's argv, `None` when disabled (`NONE`, no test) or of a
    /// kind docker does not know (it then runs no monitor either).
    /// `CMD-SHELL` runs with `shell` (the image's `SHELL`), else `/bin/sh -c`.
    pub fn probe_argv(&self, shell: &[String]) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, [command])) if kind == "CMD-SHELL" => {
                let mut argv = if shell.is_empty() {
                    vec!["/bin/sh".to_owned(), "-c".to_owned()]
                } else {
                    shell.to_vec()
                };
                argv.push(command.clone());
                Some(argv)
            }
            _ => None,
        }
    }

    fn interval(&self) -> Duration {
        nanos(or_default(self.interval, DEFAULT_INTERVAL))
    }
    fn timeout(&self) -> Duration {
        nanos(or_default(self.timeout, DEFAULT_TIMEOUT))
    }
    fn start_interval(&self) -> Duration {
        nanos(or_default(self.start_interval, DEFAULT_START_INTERVAL))
    }
    fn start_period(&self) -> i64 {
        self.start_period.max(0)
    }
    fn retries(&self) -> i64 {
        or_default(self.retries, DEFAULT_RETRIES)
    }
}

fn nanos(value: i64) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(0))
}

fn duration_nanos(value: Duration, flag: &str) -> Result<i64> {
    let nanos = i64::try_from(value.as_nanos()).unwrap_or(i64::MAX);
    if nanos != 0 && nanos < 1_000_000 {
        return Err(Error::ContainerOption {
            message: format!("{flag} cannot be less than 1ms"),
        });
    }
    Ok(nanos)
}

/// The healthcheck a new container gets: the image's, with the flags
/// over it (docker's merge: a flag replaces only the field it names).
pub(crate) fn resolve(
    image: Option<&buildr_oci::HealthConfig>,
    options: &HealthOptions,
) -> Result<Option<Healthcheck>> {
    let any_flag = options.cmd.is_some()
        || options.interval.is_some()
        || options.timeout.is_some()
        || options.start_period.is_some()
        || options.start_interval.is_some()
        || options.retries.is_some();
    if options.disable {
        if any_flag {
            return Err(Error::ContainerOption {
                message: "--no-healthcheck conflicts with --health-* options".into(),
            });
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        }));
    }
    let mut check = match image {
        Some(hc) => Healthcheck {
            test: hc.test.clone().unwrap_or_default(),
            interval: hc.interval.unwrap_or(0).max(0),
            timeout: hc.timeout.unwrap_or(0).max(0),
            start_period: hc.start_period.unwrap_or(0).max(0),
            start_interval: hc.start_interval.unwrap_or(0).max(0),
            retries: hc.retries.unwrap_or(0).max(0),
        },
        None => Healthcheck::default(),
    };
    if let Some(cmd) = &options.cmd {
        check.test = vec!["CMD-SHELL".into(), cmd.clone()];
    }
    if let Some(d) = options.interval {
        check.interval = duration_nanos(d, "--health-interval")?;
    }
    if let Some(d) = options.timeout {
        check.timeout = duration_nanos(d, "--health-timeout")?;
    }
    if let Some(d) = options.start_period {
        check.start_period = duration_nanos(d, "--health-start-period")?;
    }
    if let Some(d) = options.start_interval {
        check.start_interval = duration_nanos(d, "--health-start-interval")?;
    }
    if let Some(retries) = options.retries {
        check.retries = i64::from(retries);
    }
    if check == Healthcheck::default() {
        return Ok(None);
    }
    Ok(Some(check))
}

/// Parses a Go duration as docker's flags take it: `30s`, `1m30s`,
/// `500ms`, `1.5h`, `0` (units ns, us, µs, ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || Error::ContainerOption {
        message: format!("invalid duration {text:?}: expected e.g. 30s, 1m30s or 500ms"),
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if number_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if !total.is_finite() || total > 1e10 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// A duration as Go's `%v` prints it: `30s`, `1m30s`, `500ms`, `1.5s`.
pub(crate) fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos as f64 / 1e6));
    }
    let secs = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{}s", trim_fraction(s as f64 + f64::from(frac) / 1e9))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

fn trim_fraction(value: f64) -> String {
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `starting`, `healthy` or `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result; times in nanoseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    pub start: i128,
    pub end: i128,
    /// The probe's exit code; -1 when it timed out or could not run.
    pub exit_code: i32,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The last five probes, oldest first.
    pub log: Vec<HealthResult>,
}

impl Health {
    /// `State.Health` of docker's inspect document.
    pub fn inspect(&self) -> super::inspect::InspectHealth {
        super::inspect::InspectHealth {
            status: self.status.as_str().to_owned(),
            failing_streak: self.failing_streak,
            log: self
                .log
                .iter()
                .map(|r| super::inspect::HealthLogEntry {
                    start: super::logs::format_time(r.start),
                    end: super::logs::format_time(r.end),
                    exit_code: r.exit_code,
                    output: r.output.clone(),
                })
                .collect(),
        }
    }

    /// Docker's `handleProbeResult`.
    fn record(&mut self, check: &Healthcheck, started_at: i128, result: HealthResult) {
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else {
            let in_start_period = self.status == HealthStatus::Starting
                && result.start - started_at < i128::from(check.start_period());
            if !in_start_period {
                self.failing_streak = self.failing_streak.saturating_add(1);
                if i64::from(self.failing_streak) >= check.retries() {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        self.log.push(result);
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
    }
}

/// Output capped at [`MAX_OUTPUT`] bytes, as docker's `limitedBuffer`.
#[derive(Debug, Default)]
struct Limited {
    buf: Vec<u8>,
    truncated: bool,
}

impl Limited {
    fn push(&mut self, chunk: &[u8]) {
        let room = MAX_OUTPUT - self.buf.len();
        if chunk.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            text.push_str("...");
        }
        text
    }
}

/// Where the monitor records results.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub state: PathBuf,
    pub lock: PathBuf,
}

#[derive(Debug, Default)]
struct Shared {
    stopped: Mutex<bool>,
    wake: Condvar,
    probe: Mutex<Option<Cancel>>,
}

/// The supervisor's probing thread; [`Monitor::stop`] ends it, killing a
/// probe in flight.
#[derive(Debug)]
pub(super) struct Monitor {
    shared: Arc<Shared>,
    thread: std::thread::JoinHandle<()>,
}

impl Monitor {
    /// Starts probing the container run by `run` (its pid 1 is read from
    /// it), or returns `None` when the container has no active check.
    pub(super) fn start(
        config: &ContainerConfig,
        run: &Cancel,
        started_at: i128,
        target: Target,
    ) -> Option<Monitor> {
        let check = config.healthcheck.clone()?;
        let argv = check.probe_argv(&config.shell)?;
        let spec = ExecSpec {
            argv,
            env: config.env.clone(),
            cwd: config.cwd.clone(),
            user: config.user.clone(),
            ..ExecSpec::default()
        };
        let shared = Arc::new(Shared::default());
        let thread = {
            let (shared, run) = (shared.clone(), run.clone());
            std::thread::spawn(move || monitor(&shared, &run, &check, &spec, started_at, &target))
        };
        Some(Monitor { shared, thread })
    }

    /// Stops probing; a probe in flight is killed. Returns once the
    /// thread has ended, so nothing probes a stopped container.
    pub(super) fn stop(self) {
        if let Ok(mut stopped) = self.shared.stopped.lock() {
            *stopped = true;
        }
        self.shared.wake.notify_all();
        if let Ok(probe) = self.shared.probe.lock()
            && let Some(cancel) = probe.as_ref()
        {
            cancel.cancel();
        }
        let _ = self.thread.join();
    }
}

/// Sleeps `delay` unless stopped first; returns whether it was stopped.
fn sleep_unless_stopped(shared: &Shared, delay: Duration) -> bool {
    let Ok(guard) = shared.stopped.lock() else {
        return true;
    };
    match shared
        .wake
        .wait_timeout_while(guard, delay, |stopped| !*stopped)
    {
        Ok((stopped, _)) => *stopped,
        Err(_) => true,
    }
}

fn monitor(
    shared: &Shared,
    run: &Cancel,
    check: &Healthcheck,
    spec: &ExecSpec,
    started_at: i128,
    target: &Target,
) {
    let mut status = HealthStatus::Starting;
    loop {
        let in_start_period = now_nanos() - started_at < i128::from(check.start_period());
        let delay = if in_start_period && status == HealthStatus::Starting {
            check.start_interval()
        } else {
            check.interval()
        };
        if sleep_unless_stopped(shared, delay) {
            return;
        }
        let Some(pid1) = run.pid1() else {
            continue;
        };
        // A frozen container would freeze the probe too: none while paused.
        if read_json::<ContainerState>(&target.state).is_ok_and(|s| s.paused) {
            continue;
        }
        let Some(result) = probe(shared, pid1, spec, check.timeout()) else {
            return;
        };
        match record(target, check, started_at, result) {
            Some(now) => status = now,
            None => return,
        }
    }
}

/// Runs one probe with its timeout; `None` when the monitor was stopped
/// before it began.
fn probe(shared: &Shared, pid1: i32, spec: &ExecSpec, timeout: Duration) -> Option<HealthResult> {
    let start = now_nanos();
    let failed = |output: String| HealthResult {
        start,
        end: now_nanos(),
        exit_code: -1,
        output,
    };
    let cancel = match Cancel::new() {
        Ok(c) => c,
        Err(e) => return Some(failed(e.to_string())),
    };
    {
        let mut slot = shared.probe.lock().ok()?;
        if shared.stopped.lock().map_or(true, |s| *s) {
            return None;
        }
        *slot = Some(cancel.clone());
    }
    let (done, watch) = mpsc::channel::<()>();
    let watchdog = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            let timed_out = matches!(
                watch.recv_timeout(timeout),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            if timed_out {
                cancel.cancel();
            }
            timed_out
        })
    };
    let mut output = Limited::default();
    let outcome = Sandbox::new().exec_in(pid1, spec, None, &cancel, |_, chunk| output.push(chunk));
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    if let Ok(mut slot) = shared.probe.lock() {
        *slot = None;
    }
    if timed_out {
        return Some(failed(format!(
            "Health check exceeded timeout ({})",
            format_go_duration(timeout)
        )));
    }
    Some(match outcome {
        Ok(outcome) => HealthResult {
            start,
            end: now_nanos(),
            exit_code: match outcome.status {
                ExitStatus::Code(code) => code,
                ExitStatus::Signal(signal) => 128 + signal,
            },
            output: output.text(),
        },
        Err(e) => failed(e.to_string()),
    })
}

/// Records a result in the state, if the container still runs under this
/// supervisor; returns the new status, `None` when it no longer runs.
fn record(
    target: &Target,
    check: &Healthcheck,
    started_at: i128,
    result: HealthResult,
) -> Option<HealthStatus> {
    let _lock = super::state::lock(&target.lock).ok()?;
    let mut state: ContainerState = read_json(&target.state).ok()?;
    if state.status != Status::Running || state.supervisor_pid != Some(std::process::id()) {
        return None;
    }
    let health = state.health.get_or_insert_with(Health::default);
    health.record(check, started_at, result);
    let status = health.status;
    if let Err(e) = write_json(&target.state, &state) {
        tracing::warn!("cannot record a health probe: {e}");
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(start: i128, exit_code: i32) -> HealthResult {
        HealthResult {
            start,
            end: start + 1,
            exit_code,
            output: String::new(),
        }
    }

    #[test]
    fn durations_parse_and_print_like_go() {
        let cases = [
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("2h", Duration::from_secs(7200)),
            ("0", Duration::ZERO),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
        for bad in ["", "s", "10", "1x", "-1s", "1e400s", "1..s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(format_go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_secs(3661)), "1h1m1s");
    }

    #[test]
    fn flags_merge_over_the_image_healthcheck() {
        let image = buildr_oci::HealthConfig {
            test: Some(vec!["CMD".into(), "true".into()]),
            interval: Some(10 * SECOND),
            retries: Some(5),
            ..Default::default()
        };
        let merged = resolve(
            Some(&image),
            &HealthOptions {
                cmd: Some("exit 1".into()),
                timeout: Some(Duration::from_secs(2)),
                ..HealthOptions::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(merged.test, ["CMD-SHELL", "exit 1"]);
        assert_eq!(merged.interval, 10 * SECOND);
        assert_eq!(merged.timeout, 2 * SECOND);
        assert_eq!(merged.retries, 5);
        assert_eq!(
            merged.probe_argv(&[]).unwrap(),
            ["/bin/sh", "-c", "exit 1"].map(String::from)
        );
        let shell = ["/bin/ash".to_owned(), "-ec".to_owned()];
        assert_eq!(
            merged.probe_argv(&shell).unwrap(),
            ["/bin/ash", "-ec", "exit 1"].map(String::from)
        );

        let none = resolve(
            Some(&image),
            &HealthOptions {
                disable: true,
                ..HealthOptions::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(none.probe_argv(&[]), None);
        let conflict = HealthOptions {
            disable: true,
            cmd: Some("true".into()),
            ..HealthOptions::default()
        };
        assert!(resolve(None, &conflict).is_err());
        assert_eq!(resolve(None, &HealthOptions::default()).unwrap(), None);
        let tiny = HealthOptions {
            interval: Some(Duration::from_micros(10)),
            ..HealthOptions::default()
        };
        assert!(resolve(None, &tiny).is_err());
        // Unknown kinds and empty CMDs run no probe, never panic.
        for test in [vec!["BOGUS".to_owned()], vec!["CMD".to_owned()], vec![]] {
            let check = Healthcheck {
                test,
                ..Healthcheck::default()
            };
            assert_eq!(check.probe_argv(&[]), None);
        }
    }

    #[test]
    fn results_follow_dockers_state_machine() {
        let check = Healthcheck {
            test: vec!["CMD".into(), "x".into()],
            retries: 2,
            start_period: 10 * SECOND,
            ..Healthcheck::default()
        };
        let started = 1_000 * i128::from(SECOND);
        let mut health = Health::default();
        // Inside the start period, failures do not count.
        health.record(&check, started, result(started + 1, 1));
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Starting, 0)
        );
        health.record(
            &check,
            started,
            result(started + 11 * i128::from(SECOND), 1),
        );
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Starting, 1)
        );
        health.record(
            &check,
            started,
            result(started + 12 * i128::from(SECOND), -1),
        );
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Unhealthy, 2)
        );
        health.record(
            &check,
            started,
            result(started + 13 * i128::from(SECOND), 0),
        );
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Healthy, 0)
        );
        for i in 0..10 {
            health.record(
                &check,
                started,
                result(started + (20 + i) * i128::from(SECOND), 0),
            );
        }
        assert_eq!(health.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(health.log[0].start, started + 25 * i128::from(SECOND));
    }

    #[test]
    fn output_is_capped_at_4_kib() {
        let mut out = Limited::default();
        out.push(&[b'a'; 3000]);
        out.push(&[b'b'; 3000]);
        let text = out.text();
        assert_eq!(text.len(), MAX_OUTPUT + 3);
        assert!(text.ends_with("bbb..."));
    }
}
