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

/// Takes the lock that marks `dir` (a run's state dir, just made) as in
/// use: an exclusive `flock`, released when the launcher exits however it
/// exits (its fd is close-on-exec, so the sandbox never holds it). `None`
/// when the filesystem has no `flock`; the dir is then only reaped by age
/// and pid.
pub(crate) fn lock_state_dir(dir: &Path) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let file = std::fs::File::open(dir).ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

/// How old an unlocked state dir must be before it is reaped: a launcher
/// locks its dir right after making it, so only a dead one's is older and
/// unlocked.
const REAP_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the `buildr-exec-PID-*` state dirs of launchers that died
/// without cleaning up (SIGKILL, a power cut on a persistent runtime dir):
/// once per process, before its first run. A dir is reaped only when
/// nobody holds its lock ([`lock_state_dir`]), it is older than a minute,
/// and its pid is not alive here (a launcher in another pid namespace
/// shows another pid, which is why the lock decides); anything else, and a
/// dir that cannot be removed, is left alone.
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
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || !is_stale(&entry.path(), pid) {
            continue;
        }
        // remove_dir_all never follows a symlink out of the tree; a
        // failure leaves the dir for a later reap.
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Whether the state dir at `path`, made by launcher `pid`, is a dead
/// launcher's: unlocked, old, its pid gone.
fn is_stale(path: &Path, pid: i32) -> bool {
    let alive = pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
    let old = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= REAP_AFTER);
    // Taking the lock proves nobody holds it; it is dropped again at once.
    !alive && old && lock_state_dir(path).is_some()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    fn names(root: &Path) -> Vec<String> {
        let mut left: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        left
    }

    fn age(dir: &Path) {
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(dir)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }

    #[test]
    fn stale_state_dirs_of_dead_launchers_are_reaped() {
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let dir = |name: &str| root.path().join(name);
        for name in [
            format!("buildr-exec-{dead}-aaaaaa"),
            format!("buildr-exec-{dead}-eeeeee"),
            format!("buildr-exec-{me}-bbbbbb"),
            "buildr-exec-x-cccccc".to_owned(),
            "other".to_owned(),
        ] {
            std::fs::create_dir_all(dir(&name).join("etc")).unwrap();
        }
        std::os::unix::fs::symlink("/etc", dir(&format!("buildr-exec-{dead}-dddddd"))).unwrap();
        let all = names(root.path());
        // Made just now: not old enough to be a dead launcher's.
        super::reap_stale_state_dirs(root.path());
        assert_eq!(names(root.path()), all);
        // An hour old: the dead launcher's goes; a locked one (a live
        // launcher in another pid namespace) and a live pid's stay.
        for name in ["aaaaaa", "eeeeee"] {
            age(&dir(&format!("buildr-exec-{dead}-{name}")));
        }
        age(&dir(&format!("buildr-exec-{me}-bbbbbb")));
        let _held = super::lock_state_dir(&dir(&format!("buildr-exec-{dead}-eeeeee"))).unwrap();
        super::reap_stale_state_dirs(root.path());
        let mut want = vec![
            format!("buildr-exec-{dead}-dddddd"),
            format!("buildr-exec-{dead}-eeeeee"),
            format!("buildr-exec-{me}-bbbbbb"),
            "buildr-exec-x-cccccc".to_owned(),
            "other".to_owned(),
        ];
        want.sort();
        assert_eq!(names(root.path()), want);
        assert!(Path::new("/etc/passwd").exists());
    }
}
