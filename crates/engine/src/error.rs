//! The engine's error type.

use std::path::PathBuf;

/// Everything the engine can fail with; each variant names the object at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Dockerfile did not parse; the diagnostics say where and why.
    #[error(transparent)]
    Parse(#[from] buildr_parser::ParseError),
    /// A `.dockerignore` did not parse; the error names file and line.
    #[error(transparent)]
    DockerIgnore(#[from] crate::dockerignore::DockerIgnoreError),
    /// The content store failed (blob, tag, prune).
    #[error(transparent)]
    Store(#[from] buildr_cache::Error),
    /// An image document, layer or reference was refused.
    #[error(transparent)]
    Oci(#[from] buildr_oci::Error),
    /// A registry operation (pull, push, login) failed; the source says why.
    #[error("failed to {operation} {reference}")]
    Registry {
        operation: &'static str,
        reference: String,
        #[source]
        source: Box<buildr_oci::Error>,
    },
    /// No image matches the name or id.
    #[error("no such image: {reference}")]
    ImageNotFound { reference: String },
    /// An id prefix matches several images.
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    AmbiguousImage { prefix: String, count: usize },
    /// `rmi` by id of an image with several tags, without force.
    #[error(
        "conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories"
    )]
    ImageConflict { id: String },
    /// `rmi` of an image a container uses: docker's wording in `reason`.
    #[error("conflict: {reason}")]
    ImageInUse { reason: String },
    /// A reference cannot be used where it was given.
    #[error("invalid reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    /// An image in the store is inconsistent (manifest, config, layers).
    #[error("image {image} is invalid: {reason}")]
    BadImage { image: String, reason: String },
    /// A stored layer could not be read as a tar (to measure it).
    #[error("failed to read layer {digest}")]
    LayerRead {
        digest: buildr_cache::Digest,
        #[source]
        source: std::io::Error,
    },
    /// A `--filter` value (of `images`, `events`) docker would refuse, or
    /// an `events --since`/`--until` time it could not read.
    #[error("invalid filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    /// An archive given to `load` or `import` was refused.
    #[error("invalid archive {archive}: {reason}")]
    BadArchive {
        archive: String,
        reason: String,
        /// What made the archive unreadable, when something did.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A `COPY`/`ADD` source matches nothing in the build context (BuildKit's wording).
    #[error("failed to compute cache key: {source_path:?}: not found")]
    ContextSourceNotFound { source_path: String },
    /// A `COPY`/`ADD` source pattern is not a valid `filepath.Match` pattern.
    #[error("invalid source pattern {pattern:?}: syntax error in pattern")]
    ContextBadPattern { pattern: String },
    /// A `COPY` needs a FIFO, socket or device from the build context.
    #[error("cannot copy {} from the build context: it is a {kind}, not a regular file, directory or symlink", path.display())]
    ContextSpecialFile { path: PathBuf, kind: &'static str },
    /// An entry of the build context was replaced while the build read it.
    #[error("build context entry {} changed while it was being read", path.display())]
    ContextChanged { path: PathBuf },
    /// Too many symlinks while resolving a source in the build context.
    #[error("too many levels of symbolic links resolving {} in the build context", path.display())]
    ContextSymlinkLoop { path: PathBuf },
    /// The build context is not a directory.
    #[error("build context {} is not a directory", path.display())]
    ContextNotDir { path: PathBuf },
    /// A tar build context was refused by the extractor.
    #[error("failed to unpack the build context tar")]
    ContextTar {
        #[source]
        source: buildr_oci::Error,
    },
    /// A build step failed; `location` is `Dockerfile:LINE`.
    #[error("{location}: {message}")]
    Build { location: String, message: String },
    /// Our own value did not encode as JSON (it cannot in practice; a
    /// failure is an error, never a panic).
    #[error("cannot encode {what} as json")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A build step failed because of an underlying error, kept as the
    /// source; `location` is `Dockerfile:LINE`.
    #[error("{location}: {what}")]
    Step {
        location: String,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A build error located in the Dockerfile, with the lines it points
    /// at ([`Error::source_map`]); it displays as the error itself.
    #[error(transparent)]
    InDockerfile(Box<InDockerfile>),
    /// A build option is invalid (a `--build-arg`, `--target`, `--network`).
    #[error("invalid build option: {message}")]
    BuildOption { message: String },
    /// `FROM` names an image that is not in the local store.
    #[error(
        "{location}: base image {reference:?} is not in the local store and could not be pulled: {reason}"
    )]
    BaseImageNotFound {
        location: String,
        reference: String,
        reason: String,
    },
    /// The build graph could not be solved (a step failed, or it was cancelled).
    #[error(transparent)]
    Solve(Box<buildr_solver::Error>),
    /// The sandbox failed to run a `RUN` step.
    #[error(transparent)]
    Exec(Box<buildr_exec::Error>),
    /// No container matches the name or id (prefix).
    #[error("no such container: {reference}")]
    ContainerNotFound { reference: String },
    /// A container operation is refused in the container's current state,
    /// or a name is already taken.
    #[error("container {container}: {reason}")]
    ContainerConflict { container: String, reason: String },
    /// A `run`/`create` option is invalid (`-e`, `-v`, `--memory`, ...).
    #[error("invalid container option: {message}")]
    ContainerOption { message: String },
    /// A container's state or config file is unreadable or corrupt.
    #[error("container state {} is invalid: {reason}", path.display())]
    ContainerState { path: PathBuf, reason: String },
    /// A path of a container's filesystem (or the host directory of a
    /// `cp`) could not be read or written: `target` names the container or
    /// directory, `path` the file, `reason` what failed.
    #[error("{target}: {path}: {reason}")]
    ContainerPath {
        target: String,
        path: String,
        reason: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// A `cp` refused by docker's rules, in docker's words (which name the
    /// path).
    #[error("{message}")]
    CopyRefused { message: String },
    /// A `cp` path is not in the container (docker's words).
    #[error("Could not find the file {path} in container {container}")]
    ContainerPathNotFound { container: String, path: String },
    /// No volume with this name.
    #[error("no such volume: {name}")]
    VolumeNotFound { name: String },
    /// A volume operation is refused (in use, bad name).
    #[error("volume {name}: {reason}")]
    VolumeConflict { name: String, reason: String },
    /// No network matches the name or id (prefix).
    #[error("network {reference} not found")]
    NetworkNotFound { reference: String },
    /// A network operation is refused (name taken, in use, bad option).
    #[error("network {name}: {reason}")]
    NetworkConflict { name: String, reason: String },
}

impl Error {
    /// The Dockerfile lines this build error points at, which BuildKit
    /// prints above the error (`Dockerfile:2`, `>>>` on the instruction).
    pub fn source_map(&self) -> Option<&crate::source_map::SourceMap> {
        match self {
            Error::InDockerfile(located) => Some(&located.source_map),
            _ => None,
        }
    }

    /// This error with its [`source_map`](Error::source_map) when it is
    /// located at a line of `dockerfile` (whose bytes are `text`).
    pub(crate) fn in_dockerfile(
        self,
        dockerfile: &buildr_parser::Dockerfile,
        text: &[u8],
    ) -> Error {
        let location = match &self {
            Error::Build { location, .. }
            | Error::Step { location, .. }
            | Error::BaseImageNotFound { location, .. } => location,
            Error::Solve(solve) => match &**solve {
                buildr_solver::Error::OpFailed { location, .. } => location,
                _ => return self,
            },
            _ => return self,
        };
        match crate::source_map::SourceMap::locate(dockerfile, text, location) {
            Some(source_map) => Error::InDockerfile(Box::new(InDockerfile {
                error: self,
                source_map,
            })),
            None => self,
        }
    }
}

/// An error and the Dockerfile lines it points at: displays as the error
/// alone, with the error's own source chain.
#[derive(Debug)]
pub struct InDockerfile {
    pub error: Error,
    pub source_map: crate::source_map::SourceMap,
}

impl std::fmt::Display for InDockerfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for InDockerfile {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<buildr_solver::Error> for Error {
    fn from(err: buildr_solver::Error) -> Error {
        Error::Solve(Box::new(err))
    }
}

impl From<buildr_exec::Error> for Error {
    fn from(err: buildr_exec::Error) -> Error {
        Error::Exec(Box::new(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error for a failed `action` on `path`, for `map_err`.
pub(crate) fn io_at(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The error and its sources on one line: "failed to pull x: manifest unknown".
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<buildr_fs::atomic::AtomicWriteError> for Error {
    fn from(e: buildr_fs::atomic::AtomicWriteError) -> Error {
        Error::Io {
            action: e.step,
            path: e.path,
            source: e.source,
        }
    }
}
