//! The crate's error type: every variant names the file, line and key.

use std::path::PathBuf;

use crate::yaml::Pos;

/// What went wrong while finding, reading or resolving compose files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML itself is malformed.
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        /// The file, as shown to the user.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A value does not fit its key (`compose.yaml:12: services.web.ports[0]: invalid port "abc"`).
    #[error("{pos}: {key}{}{message}", if key.is_empty() { "" } else { ": " })]
    Invalid {
        /// Where the value was written.
        pos: Pos,
        /// The key's path (`services.web.ports[0]`), empty when none applies.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No compose file was given and none was found.
    #[error(
        "no configuration file provided: none of compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml in {} or a parent directory",
        dir.display()
    )]
    NotFound {
        /// Where the search started.
        dir: PathBuf,
    },
    /// An `extends` or `include` chain comes back to where it started.
    #[error("{pos}: {key}: circular reference through {what}")]
    Cycle {
        /// Where the reference was written.
        pos: Pos,
        /// The key's path.
        key: String,
        /// The service or file the cycle runs through.
        what: String,
    },
}

impl Error {
    /// An [`Error::Invalid`] at `pos` for `key`.
    pub(crate) fn invalid(pos: &Pos, key: &str, message: impl Into<String>) -> Error {
        Error::Invalid {
            pos: pos.clone(),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}
