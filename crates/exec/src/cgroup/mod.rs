//! Cgroup limits on v1 (one hierarchy per controller) and v2 (unified),
//! detected at runtime from /proc/self/mountinfo and /proc/self/cgroup;
//! `live.rs` acts on a running sandbox's cgroup found from its pid
//! (freeze, thaw, new limits, counters).

mod live;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::spec::{CgroupPolicy, Limits};

pub use live::{CgroupStats, ContainerCgroup};

const CPU_PERIOD_US: u64 = 100_000;

/// One sandbox's cgroup: a directory per v1 controller, or one v2 directory.
#[derive(Debug)]
pub(crate) struct Cgroup {
    layout: Layout,
    memory_limit: Option<u64>,
    removed: bool,
}

#[derive(Debug, Clone)]
enum Layout {
    V2(PathBuf),
    /// Directories per controller name (memory, pids, cpu, ...); controllers
    /// mounted together (`cpu,cpuacct`) name the same directory.
    V1(Vec<(String, PathBuf)>),
}

impl Layout {
    fn dir(&self, ctrl: &str) -> Option<&Path> {
        match self {
            Layout::V2(dir) => Some(dir),
            Layout::V1(dirs) => dirs
                .iter()
                .find(|(c, _)| c == ctrl)
                .map(|(_, d)| d.as_path()),
        }
    }

    fn need(&self, ctrl: &'static str) -> Result<&Path> {
        self.dir(ctrl).ok_or_else(|| Error::Cgroup {
            op: "find controller",
            path: ctrl.into(),
            source: std::io::Error::other(format!("the {ctrl} controller is not available")),
        })
    }

    /// Each directory once.
    fn dirs(&self) -> Vec<&Path> {
        match self {
            Layout::V2(dir) => vec![dir.as_path()],
            Layout::V1(dirs) => {
                let mut out: Vec<&Path> = Vec::new();
                for (_, dir) in dirs {
                    if !out.contains(&dir.as_path()) {
                        out.push(dir);
                    }
                }
                out
            }
        }
    }

    fn is_v2(&self) -> bool {
        matches!(self, Layout::V2(_))
    }

    /// The file that freezes the cgroup and the words that freeze and
    /// thaw it: v1's `freezer.state`, v2's `cgroup.freeze`.
    fn freezer(&self) -> Option<(PathBuf, &'static str, &'static str)> {
        match self {
            Layout::V2(dir) => Some((dir.join("cgroup.freeze"), "1", "0")),
            Layout::V1(_) => self
                .dir("freezer")
                .map(|d| (d.join("freezer.state"), "FROZEN", "THAWED")),
        }
    }

    /// The pids of every process in it.
    fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

fn cg_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Cgroup { op, path, source }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(cg_err("write", path))
}

/// A cgroup hierarchy from mountinfo: v2 or not, super options (the v1
/// controllers), mount point, root of the mount inside the hierarchy.
#[derive(Debug)]
struct Hierarchy {
    v2: bool,
    options: String,
    mount_point: PathBuf,
    root: String,
}

impl Hierarchy {
    fn has(&self, ctrl: &str) -> bool {
        !self.v2 && self.options.split(',').any(|o| o == ctrl)
    }
}

fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let v2 = match right[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        mounts.push(Hierarchy {
            v2,
            options: right[2].to_string(),
            mount_point: PathBuf::from(left[4]),
            root: left[3].to_string(),
        });
    }
    mounts
}

/// Our own cgroup path per hierarchy, from /proc/self/cgroup:
/// `(controller list, "" for v2; path)`.
fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_string();
            let path = parts.next()?.to_string();
            Some((controllers, path))
        })
        .collect()
}

fn join_cgroup(mount: &Path, mount_root: &str, own: &str, name: &str) -> PathBuf {
    let relative = own
        .strip_prefix(mount_root)
        .unwrap_or(own)
        .trim_start_matches('/');
    mount.join(relative).join(name)
}

/// Whether `dir` is a cgroup buildr made for a sandbox's limits (named
/// `buildr-<pid>-<n>` by the launcher).
pub(crate) fn is_ours(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("buildr-"))
}

/// The cgroup directories of process `pid`, one per mounted hierarchy it
/// belongs to, as this process sees them (for joining them).
pub(crate) fn dirs_of(pid: i32) -> std::io::Result<Vec<PathBuf>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    Ok(plan_dirs(
        &parse_mountinfo(&mountinfo),
        &parse_proc_cgroup(&membership),
    ))
}

fn plan_dirs(hierarchies: &[Hierarchy], membership: &[(String, String)]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for (controllers, path) in membership {
        let found = hierarchies.iter().find(|h| {
            if controllers.is_empty() {
                h.v2
            } else {
                controllers
                    .split(',')
                    .all(|c| h.options.split(',').any(|o| o == c))
            }
        });
        if let Some(h) = found {
            let dir = join_cgroup(&h.mount_point, &h.root, path, "");
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// Where the cgroup goes, decided from the text of /proc/self/mountinfo and
/// /proc/self/cgroup alone.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// One directory per needed v1 controller, under our own cgroup there.
    V1(Vec<(String, PathBuf)>),
    /// A sibling of our own v2 cgroup (a child would break the
    /// no-internal-processes rule once controllers are enabled), or a
    /// child of the root when we are in the root.
    V2 { parent: PathBuf, dir: PathBuf },
}

const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The v1 controllers a container's own cgroup joins when mounted
/// ([`CgroupPolicy::Always`]): what `stats`, `pause` and `update` read
/// and write.
const CONTAINER_V1: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "freezer", "blkio"];

/// The v2 controllers a container's cgroup enables when its parent has them.
const CONTAINER_V2: [&str; 4] = ["memory", "pids", "cpu", "io"];

fn wanted(limits: &Limits) -> Vec<&'static str> {
    let on = [
        limits.memory.is_some(),
        limits.pids.is_some(),
        limits.cpus.is_some(),
    ];
    CONTROLLERS
        .iter()
        .zip(on)
        .filter(|(_, on)| *on)
        .map(|(c, _)| *c)
        .collect()
}

/// Why no cgroup can be placed for the limits asked for.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum PlanError {
    #[error("the {0} controller is not mounted")]
    NotMounted(&'static str),
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
}

/// v1 when a needed controller is mounted as a v1 hierarchy (hybrid hosts
/// keep an empty v2 tree beside them), v2 otherwise. With
/// [`CgroupPolicy::Always`] and no limits, v1 when any container
/// controller is a v1 hierarchy, each such one joined.
fn plan(
    mountinfo: &str,
    proc_cgroup: &str,
    name: &str,
    limits: &Limits,
    policy: CgroupPolicy,
) -> Result<Plan, PlanError> {
    let mounts = parse_mountinfo(mountinfo);
    let own = parse_proc_cgroup(proc_cgroup);
    let mut wanted = wanted(limits);
    let v1_mounted = |c: &&str| mounts.iter().any(|m| m.has(c));
    let mut use_v1 = wanted.iter().any(v1_mounted);
    if policy == CgroupPolicy::Always && (use_v1 || wanted.is_empty()) {
        for ctrl in CONTAINER_V1.iter().filter(|c| v1_mounted(c)) {
            if !wanted.contains(ctrl) {
                wanted.push(ctrl);
            }
        }
        use_v1 = wanted.iter().any(v1_mounted);
    }
    if use_v1 {
        let mut dirs = Vec::new();
        for ctrl in wanted {
            let mount = mounts
                .iter()
                .find(|m| m.has(ctrl))
                .ok_or(PlanError::NotMounted(ctrl))?;
            let own_path = own
                .iter()
                .find(|(c, _)| c.split(',').any(|c| c == ctrl))
                .map(|(_, p)| p.as_str())
                .unwrap_or("/");
            dirs.push((
                ctrl.to_string(),
                join_cgroup(&mount.mount_point, &mount.root, own_path, name),
            ));
        }
        return Ok(Plan::V1(dirs));
    }
    let mount = mounts.iter().find(|m| m.v2).ok_or(PlanError::NoHierarchy)?;
    let own_path = own
        .iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| p.as_str())
        .unwrap_or("/");
    let own_dir = join_cgroup(&mount.mount_point, &mount.root, own_path, "");
    let parent = if own_dir == mount.mount_point || own_dir.parent().is_none() {
        mount.mount_point.clone()
    } else {
        own_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| mount.mount_point.clone())
    };
    let dir = parent.join(name);
    Ok(Plan::V2 { parent, dir })
}

/// The error for a cgroup we may not create: for an ordinary user, says
/// that limits need a delegated cgroup and how to get one (never a silent
/// run without the limits asked for).
fn not_delegated(path: &Path, source: std::io::Error, limits: &Limits) -> Error {
    let denied = matches!(
        source.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) || source.raw_os_error() == Some(libc::EPERM);
    if denied && crate::rootless::is_rootless() {
        let asked: Vec<&str> = wanted(limits)
            .into_iter()
            .map(|c| match c {
                "memory" => "--memory",
                "pids" => "--pids-limit",
                _ => "--cpus",
            })
            .collect();
        let verb = if asked.len() == 1 { "needs" } else { "need" };
        return Error::Rootless(format!(
            "{} {verb} a cgroup this user may create, and {} is not delegated to uid {} ({source}): run buildr in a delegated cgroup (systemd: `systemd-run --user --scope -p Delegate=yes buildr ...`, with user@.service delegating memory, pids and cpu), or run without these limits",
            asked.join(", "),
            path.display(),
            crate::rootless::host_uid(),
        ));
    }
    cg_err("create", path)(source)
}

impl Cgroup {
    /// Creates the cgroup `name` (see [`Plan`]) and applies `limits`.
    pub(crate) fn create(name: &str, limits: &Limits, policy: CgroupPolicy) -> Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let plan =
            plan(&mountinfo, &proc_cgroup, name, limits, policy).map_err(|e| Error::Cgroup {
                op: "place",
                path: "/sys/fs/cgroup".into(),
                source: std::io::Error::other(e),
            })?;
        let layout = match plan {
            Plan::V1(dirs) => {
                let required = wanted(limits);
                let mut made: Vec<(String, PathBuf)> = Vec::new();
                for (ctrl, dir) in dirs {
                    // `cpu,cpuacct` mounted together: one directory.
                    let exists = made.iter().any(|(_, d)| *d == dir);
                    if !exists && let Err(e) = std::fs::create_dir(&dir) {
                        // A controller no limit needs is best effort (a
                        // read-only or undelegated hierarchy goes without).
                        if !required.contains(&ctrl.as_str()) {
                            continue;
                        }
                        let mut created: Vec<&PathBuf> = made.iter().map(|(_, d)| d).collect();
                        created.dedup();
                        for dir in created {
                            let _ = std::fs::remove_dir(dir);
                        }
                        return Err(not_delegated(&dir, e, limits));
                    }
                    made.push((ctrl, dir));
                }
                if made.is_empty() {
                    return Err(Error::Cgroup {
                        op: "create",
                        path: name.into(),
                        source: std::io::Error::other("no cgroup hierarchy took it"),
                    });
                }
                Layout::V1(made)
            }
            Plan::V2 { parent, dir } => {
                let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control"))
                    .unwrap_or_default();
                let missing: Vec<String> = wanted(limits)
                    .into_iter()
                    .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
                    .map(|c| format!("+{c}"))
                    .collect();
                if !missing.is_empty() {
                    let control = parent.join("cgroup.subtree_control");
                    std::fs::write(&control, missing.join(" "))
                        .map_err(|e| not_delegated(&control, e, limits))?;
                }
                if policy == CgroupPolicy::Always {
                    enable_available(&parent);
                }
                std::fs::create_dir(&dir).map_err(|e| not_delegated(&dir, e, limits))?;
                Layout::V2(dir)
            }
        };
        let cgroup = Self {
            layout,
            memory_limit: limits.memory,
            removed: false,
        };
        cgroup.apply(limits)?;
        Ok(cgroup)
    }

    fn dirs(&self) -> Vec<&Path> {
        self.layout.dirs()
    }

    fn apply(&self, limits: &Limits) -> Result<()> {
        apply(&self.layout, limits)
    }

    /// Moves `pid` into every hierarchy of this cgroup.
    pub(crate) fn add(&self, pid: u32) -> Result<()> {
        for dir in self.dirs() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn pids(&self) -> Vec<i32> {
        self.layout.pids()
    }

    /// Kills every process in the cgroup and waits until it is empty; a
    /// frozen cgroup is thawed first (a frozen task does not die).
    pub(crate) fn kill_all(&self) {
        if let Some((file, _, thawed)) = self.layout.freezer() {
            let _ = std::fs::write(file, thawed);
        }
        if let Layout::V2(dir) = &self.layout {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        }
        for _ in 0..500 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether the kernel OOM-killed something in this cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        let Some(dir) = self.layout.dir("memory") else {
            return false;
        };
        let field = |file: &str, key: &str| -> Option<u64> {
            let text = std::fs::read_to_string(dir.join(file)).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        };
        match self.layout {
            Layout::V2(_) => field("memory.events", "oom_kill ").unwrap_or(0) > 0,
            Layout::V1(_) => match field("memory.oom_control", "oom_kill ") {
                Some(n) => n > 0,
                None => {
                    std::fs::read_to_string(dir.join("memory.failcnt"))
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                        > 0
                }
            },
        }
    }

    /// The memory limit that was set, for the OOM message.
    pub(crate) fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Kills what is left and removes the directories.
    pub(crate) fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.kill_all();
        let mut result = Ok(());
        for dir in self.dirs() {
            let mut last = None;
            for _ in 0..200 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(e) = last {
                result = Err(cg_err("remove", dir)(e));
            }
        }
        self.removed = true;
        result
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Enables in `parent` each container controller it has but does not
/// enable yet, one at a time (best effort: one refused is left out).
fn enable_available(parent: &Path) {
    let available = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    let enabled =
        std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    for ctrl in CONTAINER_V2 {
        let has = |text: &str| text.split_whitespace().any(|c| c == ctrl);
        if has(&available) && !has(&enabled) {
            let _ = std::fs::write(parent.join("cgroup.subtree_control"), format!("+{ctrl}"));
        }
    }
}

/// Writes `limits` (the ones set) into the cgroup's files.
fn apply(layout: &Layout, limits: &Limits) -> Result<()> {
    let v2 = layout.is_v2();
    if let Some(bytes) = limits.memory {
        let dir = layout.need("memory")?;
        if v2 {
            write(&dir.join("memory.max"), &bytes.to_string())?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                write(&swap, "0")?;
            }
        } else {
            set_v1_memory(dir, bytes)?;
        }
    }
    if let Some(max) = limits.pids {
        write(&layout.need("pids")?.join("pids.max"), &max.to_string())?;
    }
    if let Some(cpus) = limits.cpus {
        if !(cpus > 0.0 && cpus.is_finite()) {
            return Err(Error::Spec(format!(
                "cpu limit must be positive, got {cpus}"
            )));
        }
        let quota = ((cpus * CPU_PERIOD_US as f64) as u64).max(1000);
        let dir = layout.need("cpu")?;
        if v2 {
            write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
        } else {
            write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
    }
    Ok(())
}

/// v1's memory limit, swap included where memsw accounting is on. The
/// kernel keeps `memsw >= memory` at every step, so a limit going up
/// writes memsw first and one going down writes it last.
fn set_v1_memory(dir: &Path, bytes: u64) -> Result<()> {
    let limit = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let value = bytes.to_string();
    if !memsw.exists() {
        write(&limit, &value)?;
    } else {
        let current = std::fs::read_to_string(&memsw)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if bytes > current {
            write(&memsw, &value)?;
            write(&limit, &value)?;
        } else {
            write(&limit, &value)?;
            write(&memsw, &value)?;
        }
    }
    // Swappiness 0 keeps the limit a limit when memsw accounting is off.
    let _ = std::fs::write(dir.join("memory.swappiness"), "0");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_to_the_mount_root() {
        let cases = [
            (
                "/sys/fs/cgroup/memory",
                "/",
                "/a/b",
                "/sys/fs/cgroup/memory/a/b/x",
            ),
            ("/sys/fs/cgroup", "/", "/", "/sys/fs/cgroup/x"),
            ("/sys/fs/cgroup", "/a", "/a/b", "/sys/fs/cgroup/b/x"),
        ];
        for (mount, root, own, want) in cases {
            assert_eq!(
                join_cgroup(Path::new(mount), root, own, "x"),
                PathBuf::from(want)
            );
        }
    }

    const HYBRID_MOUNTS: &str = "\
35 26 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 35 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 35 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 35 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
";
    const HYBRID_PROC: &str = "4:memory:/process_api/abc\n3:pids:/\n2:cpu,cpuacct:/svc\n0::/\n";
    const V2_MOUNTS: &str =
        "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn plans_v1_v2_and_hybrid_layouts() {
        let all = Limits {
            memory: Some(1),
            pids: Some(2),
            cpus: Some(0.5),
        };
        let v1 = |pairs: &[(&str, &str)]| {
            Plan::V1(
                pairs
                    .iter()
                    .map(|(c, d)| (c.to_string(), PathBuf::from(d)))
                    .collect(),
            )
        };
        let cases = [
            (
                HYBRID_MOUNTS,
                HYBRID_PROC,
                all,
                Ok(v1(&[
                    ("memory", "/sys/fs/cgroup/memory/process_api/abc/n"),
                    ("pids", "/sys/fs/cgroup/pids/n"),
                    ("cpu", "/sys/fs/cgroup/cpu,cpuacct/svc/n"),
                ])),
            ),
            (
                HYBRID_MOUNTS,
                HYBRID_PROC,
                Limits {
                    pids: Some(5),
                    ..Limits::default()
                },
                Ok(v1(&[("pids", "/sys/fs/cgroup/pids/n")])),
            ),
            (
                V2_MOUNTS,
                "0::/user.slice/user-0.slice/session-1.scope\n",
                all,
                Ok(Plan::V2 {
                    parent: "/sys/fs/cgroup/user.slice/user-0.slice".into(),
                    dir: "/sys/fs/cgroup/user.slice/user-0.slice/n".into(),
                }),
            ),
            (
                V2_MOUNTS,
                "0::/\n",
                all,
                Ok(Plan::V2 {
                    parent: "/sys/fs/cgroup".into(),
                    dir: "/sys/fs/cgroup/n".into(),
                }),
            ),
            (
                "",
                "",
                all,
                Err("no cgroup hierarchy is mounted".to_string()),
            ),
        ];
        for (mounts, proc_cgroup, limits, want) in cases {
            assert_eq!(
                plan(mounts, proc_cgroup, "n", &limits, CgroupPolicy::ForLimits)
                    .map_err(|e| e.to_string()),
                want,
                "{proc_cgroup}"
            );
        }
        // A hybrid host without a v1 cpu hierarchy cannot take a cpu limit.
        let no_cpu = HYBRID_MOUNTS
            .lines()
            .filter(|l| !l.contains("cpu"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan(&no_cpu, HYBRID_PROC, "n", &all, CgroupPolicy::ForLimits).is_err());
    }

    #[test]
    fn a_container_cgroup_joins_every_mounted_container_controller() {
        let none = Limits::default();
        let hybrid = format!(
            "{HYBRID_MOUNTS}40 35 0:35 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
        );
        let got = plan(&hybrid, HYBRID_PROC, "n", &none, CgroupPolicy::Always).unwrap();
        let Plan::V1(dirs) = got else {
            panic!("v1 expected: {got:?}")
        };
        let names: Vec<&str> = dirs.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["memory", "pids", "cpu", "cpuacct", "freezer"]);
        // cpu and cpuacct mounted together: one directory for both.
        assert_eq!(dirs[2].1, dirs[3].1);
        assert_eq!(dirs[4].1, PathBuf::from("/sys/fs/cgroup/freezer/n"));
        // Without limits a build run gets no cgroup; pure v2 stays v2.
        assert!(wanted(&none).is_empty());
        assert_eq!(
            plan(V2_MOUNTS, "0::/\n", "n", &none, CgroupPolicy::Always).unwrap(),
            Plan::V2 {
                parent: "/sys/fs/cgroup".into(),
                dir: "/sys/fs/cgroup/n".into(),
            }
        );
    }
}
