//! The extra mounts of a `RUN` step, prepared on the host before its
//! sandbox starts and gone when the step ends: a path of another stage or
//! image copied out (`--mount=type=bind,from=`), cache directories (seeded
//! from a stage with `from=`), secrets as private read-only files, and
//! ssh-agent sockets behind a relay, and inline files (a `#!` heredoc run as
//! a script). All of it lives in the step's scratch
//! directory except the cache directories.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::merged::{Found, Merged};

const MAX_SYMLINKS: usize = 40;

/// A host-side mount of a `RUN` step that could not be made ready. The
/// step's error names the mount and shows this error's chain.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MountError {
    /// `op` on `path` failed: "create /x", "chmod /x".
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A path (as written, or on the host) could not be read.
    #[error("{}", path.display())]
    At {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the stage's merged view failed.
    #[error(transparent)]
    View(Box<crate::Error>),
    #[error("{0}: not found")]
    NotFound(String),
    #[error("{0}: too many levels of symbolic links")]
    SymlinkLoop(String),
    #[error("{}: no parent directory", .0.display())]
    NoParent(PathBuf),
    #[error("{}: the cache source is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("start the ssh agent relay")]
    Relay(#[source] io::Error),
}

impl From<crate::Error> for MountError {
    fn from(e: crate::Error) -> Self {
        MountError::View(Box::new(e))
    }
}

/// For `map_err`: `op` on `path` failed.
fn failed(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MountError {
    let path = path.to_owned();
    move |source| MountError::Io { op, path, source }
}

/// For `map_err`: `path` could not be read.
fn at(path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> MountError {
    let path = path.as_ref().to_owned();
    move |source| MountError::At { path, source }
}

/// `--mount=type=bind,from=STAGE|IMAGE,source=PATH`: input `input` of the
/// step is the stage's state.
#[derive(Debug, Clone)]
pub(crate) struct StageBind {
    pub input: usize,
    /// Path in the stage, resolved inside its root when the step runs.
    pub source: String,
    pub target: String,
    /// Without `rw`; with it, writes go to a copy dropped after the step.
    pub readonly: bool,
}

/// `--mount=type=secret`: the value is looked up by id when the step runs.
#[derive(Debug, Clone)]
pub(crate) struct SecretMount {
    pub id: String,
    /// A file at this path (read-only), if any.
    pub target: Option<String>,
    /// An environment variable of the command, if any.
    pub env: Option<String>,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A file the step reads at `target` (read-only), its content given by the
/// Dockerfile: a RUN heredoc starting with `#!`, run as a script.
#[derive(Debug, Clone)]
pub(crate) struct InlineFile {
    pub target: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Writes an inline file to a new file `name` in `dir` (created 0700).
pub(crate) fn write_inline(
    dir: &Path,
    name: &str,
    inline: &InlineFile,
) -> Result<PathBuf, MountError> {
    write_private(dir, name, &inline.content, None, inline.mode)
}

/// Writes `content` to a new file `name` in `dir` (the dir created 0700),
/// opened 0600 so no one else can read it while it is written, then given
/// `owner` (uid, gid) if any and `mode`.
fn write_private(
    dir: &Path,
    name: &str,
    content: &[u8],
    owner: Option<(u32, u32)>,
    mode: u32,
) -> Result<PathBuf, MountError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(failed("create", dir))?;
    }
    let path = dir.join(name);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(failed("create", &path))?;
    io::Write::write_all(&mut file, content).map_err(failed("write", &path))?;
    if let Some((uid, gid)) = owner {
        chown(&path, uid, gid).map_err(failed("chown", &path))?;
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(failed("chmod", &path))?;
    Ok(path)
}

/// `--mount=type=ssh`: the agent socket of `--ssh ID`.
#[derive(Debug, Clone)]
pub(crate) struct SshMount {
    pub id: String,
    pub target: String,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Sets the owner of `path` (not following a symlink). Without root this
/// only fails when it matters: an owner other than ours was asked for.
fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Err(_) if !is_root() => Ok(()),
        other => other,
    }
}

/// Copies `source` of a stage's merged view (symlinks resolved inside the
/// view, so nothing outside the stage is reachable) to `dest`, which must
/// not exist. Modes and owners are kept; sockets, fifos and devices are
/// skipped, hard links become copies.
pub(crate) fn copy_out(view: &Merged, source: &str, dest: &Path) -> Result<(), MountError> {
    let resolved = view.resolve(source, true)?;
    let found = if resolved.is_empty() {
        None
    } else {
        Some(
            view.lookup(&resolved)
                .ok_or_else(|| MountError::NotFound(source.to_owned()))?,
        )
    };
    copy_entry(view, &resolved, found.as_ref(), dest)
}

fn copy_entry(
    view: &Merged,
    rel: &str,
    found: Option<&Found>,
    dest: &Path,
) -> Result<(), MountError> {
    let io_err = |op: &'static str, source: io::Error| MountError::Io {
        op,
        path: dest.to_owned(),
        source,
    };
    let is_dir = found.is_none_or(|f| f.meta.is_dir());
    if is_dir {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dest)
            .map_err(|e| io_err("create", e))?;
        let children = view.list(rel)?;
        for (name, child) in &children {
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            copy_entry(view, &child_rel, Some(child), &dest.join(name))?;
        }
        let (mode, uid, gid) = found.map_or((0o755, 0, 0), |f| {
            use std::os::unix::fs::MetadataExt;
            (f.meta.mode() & 0o7777, f.meta.uid(), f.meta.gid())
        });
        chown(dest, uid, gid).map_err(|e| io_err("chown", e))?;
        fs::set_permissions(dest, fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("chmod", e))?;
        return Ok(());
    }
    let Some(found) = found else { return Ok(()) };
    use std::os::unix::fs::MetadataExt;
    let kind = found.meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(&found.host).map_err(|e| io_err("read link for", e))?;
        std::os::unix::fs::symlink(&target, dest).map_err(|e| io_err("create", e))?;
    } else if kind.is_file() {
        let mut src = File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&found.host)
            .map_err(failed("open", &found.host))?;
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| io_err("create", e))?;
        io::copy(&mut src, &mut out).map_err(|e| io_err("write", e))?;
        fs::set_permissions(dest, fs::Permissions::from_mode(found.meta.mode() & 0o7777))
            .map_err(|e| io_err("chmod", e))?;
    } else {
        return Ok(());
    }
    chown(dest, found.meta.uid(), found.meta.gid()).map_err(|e| io_err("chown", e))
}

/// Copies the host tree at `src` (not following symlinks) to `dest`,
/// which must not exist: a `rw` bind from the context gets a copy, so its
/// writes are dropped after the step and never reach the context.
pub(crate) fn copy_host_tree(src: &Path, dest: &Path) -> Result<(), MountError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(src).map_err(at(src))?;
    let io_err = |op: &'static str, source: io::Error| MountError::Io {
        op,
        path: dest.to_owned(),
        source,
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dest)
            .map_err(|e| io_err("create", e))?;
        let entries = fs::read_dir(src).map_err(failed("list", src))?;
        for entry in entries {
            let entry = entry.map_err(failed("list", src))?;
            copy_host_tree(&entry.path(), &dest.join(entry.file_name()))?;
        }
    } else if kind.is_symlink() {
        let target = fs::read_link(src).map_err(at(src))?;
        std::os::unix::fs::symlink(&target, dest).map_err(|e| io_err("create", e))?;
        return Ok(());
    } else if kind.is_file() {
        let mut from = File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(src)
            .map_err(failed("open", src))?;
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| io_err("create", e))?;
        io::copy(&mut from, &mut out).map_err(|e| io_err("write", e))?;
    } else {
        return Ok(());
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| io_err("chmod", e))
}

/// `rel` under `root` with every symlink resolved inside `root` (an
/// absolute or `..` target cannot leave it, as BuildKit scopes a bind
/// source); the result holds no symlink and exists.
pub(crate) fn resolve_in(root: &Path, rel: &str) -> Result<PathBuf, MountError> {
    let mut pending: Vec<String> = parts(rel).into_iter().rev().collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let candidate = root.join(done.join("/")).join(&part);
        let meta = fs::symlink_metadata(&candidate).map_err(at(rel))?;
        if !meta.file_type().is_symlink() {
            done.push(part);
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINKS {
            return Err(MountError::SymlinkLoop(rel.to_owned()));
        }
        let target = fs::read_link(&candidate).map_err(at(rel))?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            done.clear();
        }
        pending.extend(parts(&target).into_iter().rev());
    }
    Ok(root.join(done.join("/")))
}

fn parts(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect()
}

/// Makes the cache directory `host` if it does not exist yet: empty, or
/// seeded from a stage's path; atomically (a half-seeded cache is never
/// seen). `mode`, `uid` and `gid` apply to a new directory (BuildKit's
/// defaults 0755 root:root for an empty one).
pub(crate) fn ensure_cache_dir(
    host: &Path,
    seed: Option<(&Merged, &str)>,
    mode: Option<u32>,
    owner: (Option<u32>, Option<u32>),
) -> Result<(), MountError> {
    if host.is_dir() {
        return Ok(());
    }
    let parent = host
        .parent()
        .ok_or_else(|| MountError::NoParent(host.to_owned()))?;
    fs::create_dir_all(parent).map_err(failed("create", parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(parent)
        .map_err(failed("create a temp dir in", parent))?;
    let dir = tmp.path().join("dir");
    let seeded = seed.is_some();
    match seed {
        Some((view, source)) => copy_out(view, source, &dir)?,
        None => fs::create_dir(&dir).map_err(failed("create", &dir))?,
    }
    if !dir.is_dir() {
        return Err(MountError::NotADirectory(host.to_owned()));
    }
    let mode = mode.or((!seeded).then_some(0o755));
    if let Some(mode) = mode {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(failed("chmod", &dir))?;
    }
    if owner.0.is_some() || owner.1.is_some() || !seeded {
        chown(&dir, owner.0.unwrap_or(0), owner.1.unwrap_or(0)).map_err(failed("chown", &dir))?;
    }
    match fs::rename(&dir, host) {
        Ok(()) => Ok(()),
        // Another build made it first; theirs is as good.
        Err(_) if host.is_dir() => Ok(()),
        Err(e) => Err(failed("rename into", host)(e)),
    }
}

/// Writes a secret's value to a new private file in `dir` (mode 0700).
pub(crate) fn write_secret(
    dir: &Path,
    name: &str,
    value: &[u8],
    mount: &SecretMount,
) -> Result<PathBuf, MountError> {
    write_private(dir, name, value, Some((mount.uid, mount.gid)), mount.mode)
}

/// A socket in the step's scratch dir relaying each connection to an
/// ssh-agent socket, so the sandbox gets its own mode and owner and never
/// the agent's path. Stops (and removes nothing else) when dropped.
pub(crate) struct AgentRelay {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AgentRelay {
    pub(crate) fn start(
        upstream: &Path,
        path: &Path,
        mount: &SshMount,
    ) -> Result<Self, MountError> {
        let listener = UnixListener::bind(path).map_err(failed("listen on", path))?;
        chown(path, mount.uid, mount.gid).map_err(failed("chown", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mount.mode & 0o7777))
            .map_err(failed("chmod", path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_path_buf();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("ssh-agent-relay".to_owned())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = conn else {
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            continue;
                        };
                        let upstream = upstream.clone();
                        let _ = std::thread::Builder::new()
                            .name("ssh-agent-conn".to_owned())
                            .spawn(move || relay(client, &upstream));
                    }
                })
                .map_err(MountError::Relay)?
        };
        Ok(AgentRelay {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies both ways between a sandbox client and the agent until either
/// side closes.
fn relay(client: UnixStream, upstream: &Path) {
    let Ok(server) = UnixStream::connect(upstream) else {
        return;
    };
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_in_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ctx");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::os::unix::fs::symlink("/", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("up")).unwrap();
        std::os::unix::fs::symlink("a/b", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve_in(&root, "rel").unwrap(), root.join("a/b"));
        assert_eq!(resolve_in(&root, "abs/a").unwrap(), root.join("a"));
        assert_eq!(resolve_in(&root, "../../a").unwrap(), root.join("a"));
        // `../outside` from the root is `outside` inside it: missing.
        assert!(resolve_in(&root, "up").is_err());
        assert!(
            resolve_in(&root, "loop")
                .unwrap_err()
                .to_string()
                .contains("too many")
        );
    }

    #[test]
    fn agent_relay_forwards_both_ways() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let upstream = dir.path().join("agent.sock");
        let agent = UnixListener::bind(&upstream).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = agent.accept().unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&[buf, *b"-ack"].concat()).unwrap();
        });
        let mount = SshMount {
            id: "default".to_owned(),
            target: "/run/buildkit/ssh_agent.0".to_owned(),
            required: false,
            mode: 0o600,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        };
        let relay = AgentRelay::start(&upstream, &dir.path().join("relay.sock"), &mount).unwrap();
        let meta = fs::metadata(relay.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        let mut client = UnixStream::connect(relay.path()).unwrap();
        client.write_all(b"ping").unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"ping-ack");
        server.join().unwrap();
        drop(relay);
        assert!(UnixStream::connect(dir.path().join("relay.sock")).is_err());
    }
}
