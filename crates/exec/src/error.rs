//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while preparing, running or cleaning up a sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host-side filesystem operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done ("create", "read", "copy", ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed on the host side.
    #[error("failed to {op}")]
    Sys {
        /// What was being done.
        op: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec is unusable as given.
    #[error("invalid sandbox spec: {0}")]
    Spec(String),
    /// Overlay was forced but is not available.
    #[error("overlayfs is not available: {0}")]
    OverlayUnavailable(String),
    /// A cgroup operation failed.
    #[error("failed to {op} cgroup {path}")]
    Cgroup {
        /// What was being done.
        op: &'static str,
        /// The cgroup file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Setting up the sandbox failed inside it (mounts, user, cwd, exec...).
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// The init process broke the protocol or died without a word.
    #[error("sandbox init failed: {0}")]
    Init(String),
    /// The init sent a report line that is not one of its reports.
    #[error("sandbox init failed: bad report {line:?}")]
    BadReport {
        /// The line as received (lossily decoded).
        line: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Rootless mode cannot work here, and why (what to set up).
    #[error("rootless: {0}")]
    Rootless(String),
    /// A user name, group name or `USER` value could not be resolved.
    #[error("{0}")]
    User(String),
    /// A sandbox process has no cgroup of its own (one started without,
    /// or a host that refused one), or not the controller asked for.
    #[error("process {pid} has no cgroup of its own{what}")]
    NoCgroup {
        /// The process asked about.
        pid: i32,
        /// What is missing, worded after the message (`" with a freezer"`).
        what: &'static str,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let op = op.into();
    move |errno| Error::Sys {
        op,
        source: errno.into(),
    }
}

/// `err` and its sources, joined with `: `.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
