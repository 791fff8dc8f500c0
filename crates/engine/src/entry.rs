//! The one entry hook of a program that embeds buildr: [`entry_hook`].
//!
//! buildr runs some of its work in processes of their own, started by
//! running the current program again with a marker in the environment: a
//! build step's or container's sandbox init, the helper `exec` enters a
//! container with, the rootless namespace holder, and a detached
//! container's supervisor. The hook, called first thing in `main`, turns
//! such a process into what it was started as; anywhere else it returns at
//! once. No argument parsing is involved, so an embedder's own command line
//! stays its own.

use std::path::PathBuf;

use crate::error::{Error, Result, error_chain};

/// Set (to the container id) in a detached supervisor's environment.
pub(crate) const SUPERVISE_ENV: &str = "_BUILDR_SUPERVISE";
/// The store root a detached supervisor opens.
pub(crate) const SUPERVISE_ROOT_ENV: &str = "_BUILDR_SUPERVISE_ROOT";
/// Set when the supervisor takes over a container a foreground run left
/// exited, to apply its restart policy.
pub(crate) const SUPERVISE_RESUME_ENV: &str = "_BUILDR_SUPERVISE_RESUME";

/// Call first thing in `main`, before threads start, in every program that
/// runs builds or containers with this library. When this process was
/// started by buildr as a sandbox init, an `exec` helper, the rootless
/// holder or a detached container's supervisor, it does that work and
/// exits (a supervisor with the container's exit code); otherwise it
/// returns at once.
pub fn entry_hook() {
    buildr_exec::init_main_if_requested();
    let Some(id) = std::env::var_os(SUPERVISE_ENV) else {
        return;
    };
    let code = match supervise(std::env::var_os(SUPERVISE_ROOT_ENV).map(PathBuf::from), id) {
        Ok(code) => code,
        Err(err) => {
            // This process's stderr is the container's supervisor.log.
            eprintln!("buildr: error: {}", error_chain(&err));
            1
        }
    };
    std::process::exit(code);
}

fn supervise(root: Option<PathBuf>, id: std::ffi::OsString) -> Result<i32> {
    let bad = |message: String| Error::ContainerOption { message };
    let root = root.ok_or_else(|| bad(format!("{SUPERVISE_ROOT_ENV} is not set")))?;
    let id = id
        .into_string()
        .map_err(|id| bad(format!("{SUPERVISE_ENV} {id:?} is not a container id")))?;
    // The parent has usually entered the user's namespace already (the
    // child inherits it); entering is a no-op then.
    buildr_exec::rootless::enter()?;
    let info = if std::env::var_os(SUPERVISE_RESUME_ENV).is_some() {
        crate::container::supervise_restarts(&root, &id)?
    } else {
        crate::container::supervise(&root, &id)?
    };
    Ok(info.exit_code.rem_euclid(256))
}
