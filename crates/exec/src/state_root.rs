//! Where sandboxes keep their per-run state (`buildr-exec-PID-*` dirs on a
//! tmpfs), and the reaping of what dead launchers left there.

use std::path::{Path, PathBuf};

/// Where per-run state goes by default: the first tmpfs among
/// `$XDG_RUNTIME_DIR`, `/run` and `/dev/shm` (small files created and
/// removed on every run: a disk would cost milliseconds), else the temp dir.
/// For an ordinary user (rootless, inside its namespace or not) the user's
/// private runtime directory ([`crate::rootless::user_runtime_dir`]), never
/// a directory shared with root or other users; when that cannot be had
/// (someone else planted it), a fresh private directory of this process's
/// (what it makes is then not shared with the user's other commands; the
/// CLI refuses to start in that case, with the reason, before it gets here).
pub fn default_state_root() -> PathBuf {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    if crate::rootless::is_rootless() {
        return crate::rootless::user_runtime_dir().unwrap_or_else(|_| private_fallback());
    }
    let candidates = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/run"), PathBuf::from("/dev/shm")]);
    for dir in candidates {
        let on_tmpfs = statfs(&dir).is_ok_and(|fs| fs.filesystem_type() == TMPFS_MAGIC);
        if on_tmpfs && nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok() {
            return dir;
        }
    }
    std::env::temp_dir()
}

/// A private directory made once per process, for [`default_state_root`]
/// when the user's runtime directory is unusable: never a guessable path
/// another user could have planted.
fn private_fallback() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let template = std::env::temp_dir().join("buildr-run-XXXXXX");
        // mkdtemp makes it 0700 and fails rather than reuse a name; if even
        // that fails, a path in procfs that nothing can be created under,
        // so whatever needs it fails by name instead of using a stray dir.
        nix::unistd::mkdtemp(&template)
            .unwrap_or_else(|_| PathBuf::from("/proc/self/buildr-no-runtime-dir"))
    })
    .clone()
}

/// Removes the `buildr-exec-PID-*` state dirs of launchers that died
/// without cleaning up (SIGKILL, a power cut on a persistent runtime dir):
/// once per process, before its first run. A dir whose pid is alive is
/// left alone (it may be another launcher's, or a reused pid's: the next
/// reap gets it); a dir that cannot be removed (a mount still on it) too.
pub(crate) fn reap_stale_state_dirs(state_root: &Path) {
    let Ok(entries) = std::fs::read_dir(state_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("buildr-exec-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = pid > 0
            && !matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            );
        if !alive && entry.file_type().is_ok_and(|t| t.is_dir()) {
            // remove_dir_all never follows a symlink out of the tree; a
            // failure leaves the dir for a later reap.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_state_dirs_of_dead_launchers_are_reaped() {
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        for name in [
            format!("buildr-exec-{dead}-aaaaaa"),
            format!("buildr-exec-{me}-bbbbbb"),
            "buildr-exec-x-cccccc".to_owned(),
            "other".to_owned(),
        ] {
            std::fs::create_dir_all(root.path().join(&name).join("etc")).unwrap();
        }
        std::os::unix::fs::symlink(
            "/etc",
            root.path().join(format!("buildr-exec-{dead}-dddddd")),
        )
        .unwrap();
        super::reap_stale_state_dirs(root.path());
        let mut left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![
            format!("buildr-exec-{dead}-dddddd"),
            format!("buildr-exec-{me}-bbbbbb"),
            "buildr-exec-x-cccccc".to_owned(),
            "other".to_owned(),
        ];
        want.sort();
        assert_eq!(left, want);
        assert!(std::path::Path::new("/etc/passwd").exists());
    }
}
