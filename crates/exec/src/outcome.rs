//! What a run returns: exit status, OOM flag, timings.

use std::time::{Duration, Instant};

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// From the start of `run` until the command was exec'd.
    pub setup: Duration,
    /// From exec until the command's exit.
    pub run: Duration,
    /// The whole call, cleanup included.
    pub total: Duration,
}

impl Timings {
    /// Setup until `exec_at` (the command's exec; `ended` when it never
    /// ran), the run from there to `ended`, the total until now.
    pub(crate) fn measured(started: Instant, exec_at: Option<Instant>, ended: Instant) -> Timings {
        let exec_at = exec_at.unwrap_or(ended);
        Timings {
            setup: exec_at.saturating_duration_since(started),
            run: ended.saturating_duration_since(exec_at),
            total: started.elapsed(),
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code or signal of the command.
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of the sandbox.
    pub oom_killed: bool,
    /// The memory limit in force, for messages.
    pub memory_limit: Option<u64>,
    /// Killed because the spec's timeout passed.
    pub timed_out: bool,
    /// Killed through the [`crate::Cancel`] handle.
    pub cancelled: bool,
    /// Timings.
    pub timings: Timings,
}

impl Outcome {
    /// Exit code 0 and nothing killed.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0) && !self.oom_killed && !self.timed_out && !self.cancelled
    }

    /// A one-line, lower-case account: "exit code 2", "killed: out of
    /// memory, limit 256 MiB", "killed by signal 15".
    pub fn describe(&self) -> String {
        if self.oom_killed {
            return match self.memory_limit {
                Some(limit) => format!("killed: out of memory, limit {}", human_bytes(limit)),
                None => "killed: out of memory".into(),
            };
        }
        if self.cancelled {
            return "killed: cancelled".into();
        }
        if self.timed_out {
            return "killed: timed out".into();
        }
        match self.status {
            ExitStatus::Code(code) => format!("exit code {code}"),
            ExitStatus::Signal(sig) => format!("killed by signal {sig}"),
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes & (size - 1) == 0 {
            return format!("{} {unit}", bytes / size);
        }
    }
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_outcomes() {
        let base = Outcome {
            status: ExitStatus::Code(0),
            oom_killed: false,
            memory_limit: None,
            timed_out: false,
            cancelled: false,
            timings: Timings::default(),
        };
        let cases = [
            (
                Outcome {
                    status: ExitStatus::Code(3),
                    ..base.clone()
                },
                "exit code 3",
            ),
            (
                Outcome {
                    status: ExitStatus::Signal(15),
                    ..base.clone()
                },
                "killed by signal 15",
            ),
            (
                Outcome {
                    status: ExitStatus::Signal(9),
                    oom_killed: true,
                    memory_limit: Some(256 << 20),
                    ..base.clone()
                },
                "killed: out of memory, limit 256 MiB",
            ),
            (
                Outcome {
                    cancelled: true,
                    ..base.clone()
                },
                "killed: cancelled",
            ),
        ];
        for (outcome, want) in cases {
            assert_eq!(outcome.describe(), want);
        }
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
