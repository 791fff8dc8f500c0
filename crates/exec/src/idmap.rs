//! User namespace id maps for rootless runs: the caller as 0, plus its
//! subordinate ranges (/etc/subuid, /etc/subgid) through the setuid
//! newuidmap/newgidmap helpers when both are present.

use std::process::{Command, Stdio};

/// newuidmap/newgidmap arguments (after the pid) mapping the caller to 0
/// and its subordinate ranges from /etc/subuid and /etc/subgid to 1..;
/// `None` when the tools or the entries are missing.
pub(crate) fn subordinate_maps() -> Option<(Vec<String>, Vec<String>)> {
    let tool = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).exists()))
    };
    if !tool("newuidmap") || !tool("newgidmap") {
        return None;
    }
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let name = caller_name();
    let range = |file: &str, id: u32| -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|line| {
            let mut f = line.trim().split(':');
            let who = f.next()?;
            let start = f.next()?.parse().ok()?;
            let count = f.next()?.parse().ok()?;
            (who == id.to_string() || Some(who) == name.as_deref()).then_some((start, count))
        })
    };
    let (uid_start, uid_count) = range("/etc/subuid", uid.as_raw())?;
    // Both files are keyed by user (name or uid), as newgidmap reads them.
    let (gid_start, gid_count) = range("/etc/subgid", uid.as_raw())?;
    let args = |own: u32, start: u64, count: u64| {
        vec![
            "0".into(),
            own.to_string(),
            "1".into(),
            "1".into(),
            start.to_string(),
            count.to_string(),
        ]
    };
    Some((
        args(uid.as_raw(), uid_start, uid_count),
        args(gid.as_raw(), gid_start, gid_count),
    ))
}

/// The invoking user's name, from the host's user database: the one
/// host-side lookup buildr makes (for its /etc/subuid ranges and messages
/// about them; never an image's user).
pub(crate) fn caller_name() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Runs newuidmap and newgidmap on `pid`.
pub(crate) fn apply_maps(pid: i32, maps: &(Vec<String>, Vec<String>)) -> bool {
    [("newuidmap", &maps.0), ("newgidmap", &maps.1)]
        .iter()
        .all(|(tool, args)| {
            Command::new(tool)
                .arg(pid.to_string())
                .args(args.iter())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Whether we run in the initial user namespace (full identity uid map).
pub(crate) fn in_initial_userns() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}
