//! Runs one command in a sandbox; also the re-executed init for tests.
//!
//! `buildr-sandbox [--copy] [--timings] [--net-host] [--netns PATH] [--memory BYTES] [--pids N] [--user U] [--upper DIR --work DIR] ROOTFS -- CMD...`
//! ROOTFS is the (only) lower dir. Without --upper/--work, throwaway ones
//! are made next to the state dir. Exit status: the command's.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use buildr_exec::{Cancel, ExitStatus, Rootfs, RootfsMode, Sandbox, SpawnSpec, Stream};

/// What stops the runner before the command's own exit status.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(
        "usage: buildr-sandbox [--copy] [--timings] [--net-host] [--netns PATH] [--memory BYTES] [--pids N] [--user U] [--upper DIR --work DIR] ROOTFS -- CMD..."
    )]
    Usage,
    /// A directory given or made for the run is unusable.
    #[error("{}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sandbox(#[from] buildr_exec::Error),
}

fn main() -> ExitCode {
    buildr_exec::init_main_if_requested();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("buildr-sandbox: {}", error_chain(&e));
            ExitCode::from(125)
        }
    }
}

/// For `map_err`: the directory `path` is unusable.
fn dir_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_owned();
    move |source| RunError::Dir { path, source }
}

fn run() -> Result<ExitCode, RunError> {
    let mut args = std::env::args().skip(1);
    let mut timings = false;
    let mut network = buildr_exec::Network::None;
    let mut limits = buildr_exec::Limits::default();
    let number = |v: Option<String>| v.and_then(|v| v.parse::<u64>().ok()).ok_or(RunError::Usage);
    let (mut copy, mut user, mut upper, mut work, mut lower) =
        (false, String::new(), None, None, None);
    let mut argv = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--copy" => copy = true,
            "--timings" => timings = true,
            "--net-host" => network = buildr_exec::Network::Host,
            "--netns" => {
                network = buildr_exec::Network::Join {
                    netns: PathBuf::from(args.next().ok_or(RunError::Usage)?),
                    nameservers: Vec::new(),
                }
            }
            "--memory" => limits.memory = Some(number(args.next())?),
            "--pids" => limits.pids = Some(number(args.next())?),
            "--user" => user = args.next().ok_or(RunError::Usage)?,
            "--upper" => upper = Some(PathBuf::from(args.next().ok_or(RunError::Usage)?)),
            "--work" => work = Some(PathBuf::from(args.next().ok_or(RunError::Usage)?)),
            "--" => {
                argv = args.by_ref().collect();
                break;
            }
            _ if lower.is_none() => lower = Some(PathBuf::from(arg)),
            _ => return Err(RunError::Usage),
        }
    }
    let lower = lower.ok_or(RunError::Usage)?;
    let lower = std::fs::canonicalize(&lower).map_err(dir_err(&lower))?;
    let scratch = match (&upper, &work) {
        (Some(_), Some(_)) => None,
        _ => Some(tempdir()?),
    };
    let (upper, work) = match &scratch {
        Some(dir) => (dir.join("upper"), dir.join("work")),
        None => (upper.unwrap_or_default(), work.unwrap_or_default()),
    };
    for dir in [&upper, &work] {
        std::fs::create_dir_all(dir).map_err(dir_err(dir))?;
    }
    let spec = SpawnSpec {
        rootfs: Rootfs {
            lowers: vec![lower],
            upper,
            work,
            mode: if copy {
                RootfsMode::Copy
            } else {
                RootfsMode::Auto
            },
        },
        argv,
        user,
        limits,
        network,
        ..SpawnSpec::default()
    };
    let cancel = Cancel::new()?;
    let result = Sandbox::new().run(&spec, &cancel, |stream, chunk| {
        let _ = match stream {
            Stream::Stdout => std::io::stdout().write_all(chunk),
            Stream::Stderr => std::io::stderr().write_all(chunk),
        };
    });
    if let Some(dir) = scratch {
        remove_scratch(&dir);
    }
    let outcome = result?;
    if timings {
        let t = outcome.timings;
        eprintln!(
            "buildr-sandbox: setup {:?}, run {:?}, total {:?}",
            t.setup, t.run, t.total
        );
    }
    Ok(match outcome.status {
        ExitStatus::Code(code) => ExitCode::from(code.clamp(0, 255) as u8),
        ExitStatus::Signal(sig) => {
            eprintln!("buildr-sandbox: {}", outcome.describe());
            ExitCode::from((128 + sig).clamp(0, 255) as u8)
        }
    })
}

fn tempdir() -> Result<PathBuf, RunError> {
    let base =
        buildr_exec::default_state_root().join(format!("buildr-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(dir_err(&base))?;
    Ok(base)
}

/// Removes the throwaway upper/work dirs. Overlay leaves `work/work` with
/// mode 000, which an unprivileged caller cannot delete until it is opened up.
fn remove_scratch(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let inner = dir.join("work").join("work");
    let _ = std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700));
    let _ = std::fs::remove_dir_all(dir);
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
