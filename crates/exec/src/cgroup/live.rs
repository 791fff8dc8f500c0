//! A running sandbox's own cgroup, found from one of its pids
//! (`/proc/PID/cgroup` against this process's mounts): freezing and
//! thawing it (v1 `freezer.state`, v2 `cgroup.freeze`), new limits, and
//! the counters `stats` shows.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Layout, apply, cg_err, is_ours, join_cgroup, parse_mountinfo, parse_proc_cgroup};
use crate::error::{Error, Result};
use crate::spec::Limits;

/// How long a freeze or thaw may take before it is an error.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// v1 writes this (or more) for "no limit".
const V1_UNLIMITED: u64 = 1 << 62;

/// The cgroup buildr made for a running sandbox (its directories named
/// `buildr-*`), found from a pid inside it.
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    pid: i32,
    layout: Layout,
}

/// What a sandbox's cgroup has counted, for `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time used by every process in it, in nanoseconds.
    pub cpu_nanos: Option<u64>,
    /// Memory in use, less the inactive file cache (as docker's CLI counts).
    pub memory_usage: Option<u64>,
    /// The memory limit, `None` when there is none.
    pub memory_limit: Option<u64>,
    /// Processes and threads in it.
    pub pids: Option<u64>,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
}

impl ContainerCgroup {
    /// The cgroup of the sandbox process `pid`: every hierarchy where it is
    /// in a directory buildr made. An error when it is in none.
    pub fn of_pid(pid: i32) -> Result<ContainerCgroup> {
        let mountinfo = Path::new("/proc/self/mountinfo");
        let mounts = std::fs::read_to_string(mountinfo).map_err(cg_err("read", mountinfo))?;
        let membership_path = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let membership =
            std::fs::read_to_string(&membership_path).map_err(cg_err("read", &membership_path))?;
        let hierarchies = parse_mountinfo(&mounts);
        let mut v1 = Vec::new();
        let mut v2 = None;
        for (controllers, path) in parse_proc_cgroup(&membership) {
            let found = hierarchies.iter().find(|h| {
                if controllers.is_empty() {
                    h.v2
                } else {
                    controllers
                        .split(',')
                        .all(|c| h.options.split(',').any(|o| o == c))
                }
            });
            let Some(h) = found else { continue };
            let dir = join_cgroup(&h.mount_point, &h.root, &path, "");
            let dir = dir.components().collect::<PathBuf>();
            if !is_ours(&dir) {
                continue;
            }
            if h.v2 {
                v2 = Some(dir);
            } else {
                for ctrl in controllers.split(',') {
                    v1.push((ctrl.to_owned(), dir.clone()));
                }
            }
        }
        let layout = match (v1.is_empty(), v2) {
            (false, _) => Layout::V1(v1),
            (true, Some(dir)) => Layout::V2(dir),
            (true, None) => return Err(Error::NoCgroup { pid, what: "" }),
        };
        Ok(ContainerCgroup { pid, layout })
    }

    /// Every process in it.
    pub fn pids(&self) -> Vec<i32> {
        self.layout.pids()
    }

    /// Freezes every process in it, waiting until the kernel says frozen.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws it, waiting until the kernel says thawed.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    /// Whether it is frozen now.
    pub fn is_frozen(&self) -> bool {
        self.frozen_now().unwrap_or(false)
    }

    fn freezer(&self) -> Result<(PathBuf, &'static str, &'static str)> {
        self.layout.freezer().ok_or(Error::NoCgroup {
            pid: self.pid,
            what: " with a freezer",
        })
    }

    fn frozen_now(&self) -> Result<bool> {
        let (file, frozen, _) = self.freezer()?;
        if self.layout.is_v2() {
            // `cgroup.freeze` says what was asked; `cgroup.events` what is.
            let events = file.with_file_name("cgroup.events");
            let text = std::fs::read_to_string(&events).map_err(cg_err("read", &events))?;
            return Ok(text.lines().any(|l| l.trim() == "frozen 1"));
        }
        let text = std::fs::read_to_string(&file).map_err(cg_err("read", &file))?;
        Ok(text.trim() == frozen)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let (file, freeze, thaw) = self.freezer()?;
        let word = if frozen { freeze } else { thaw };
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        loop {
            // v1 may stay FREEZING while a task is busy in the kernel:
            // writing again retries it, as runc does.
            super::write(&file, word)?;
            if self.frozen_now()? == frozen {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Cgroup {
                    op: if frozen { "freeze" } else { "thaw" },
                    path: file,
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("not done within {} s", FREEZE_TIMEOUT.as_secs()),
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Writes the limits that are set (`docker update`); the others stay.
    pub fn set_limits(&self, limits: &Limits) -> Result<()> {
        apply(&self.layout, limits)
    }

    /// What it has counted so far.
    pub fn stats(&self) -> CgroupStats {
        let layout = &self.layout;
        let read = |ctrl: &str, file: &str| -> Option<String> {
            std::fs::read_to_string(layout.dir(ctrl)?.join(file)).ok()
        };
        let number =
            |ctrl: &str, file: &str| -> Option<u64> { read(ctrl, file)?.trim().parse().ok() };
        if layout.is_v2() {
            let memory_stat = read("memory", "memory.stat").unwrap_or_default();
            let (block_read, block_write) = v2_io(&read("io", "io.stat").unwrap_or_default());
            return CgroupStats {
                cpu_nanos: read("cpu", "cpu.stat")
                    .and_then(|t| field(&t, "usage_usec"))
                    .map(|us| us.saturating_mul(1000)),
                memory_usage: number("memory", "memory.current")
                    .map(|u| u.saturating_sub(field(&memory_stat, "inactive_file").unwrap_or(0))),
                memory_limit: number("memory", "memory.max"),
                pids: number("pids", "pids.current"),
                block_read,
                block_write,
            };
        }
        let memory_stat = read("memory", "memory.stat").unwrap_or_default();
        let blkio = read("blkio", "blkio.throttle.io_service_bytes_recursive")
            .or_else(|| read("blkio", "blkio.throttle.io_service_bytes"))
            .unwrap_or_default();
        let (block_read, block_write) = v1_blkio(&blkio);
        CgroupStats {
            cpu_nanos: number("cpuacct", "cpuacct.usage"),
            memory_usage: number("memory", "memory.usage_in_bytes")
                .map(|u| u.saturating_sub(field(&memory_stat, "total_inactive_file").unwrap_or(0))),
            memory_limit: number("memory", "memory.limit_in_bytes").filter(|&l| l < V1_UNLIMITED),
            pids: number("pids", "pids.current"),
            block_read,
            block_write,
        }
    }
}

/// The value of `key value` in a flat-keyed cgroup file.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// v1 `blkio.throttle.io_service_bytes`: `MAJ:MIN Read N` lines, summed.
fn v1_blkio(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = words.as_slice() {
            let n: u64 = n.parse().unwrap_or(0);
            match *op {
                "Read" => read = read.saturating_add(n),
                "Write" => write = write.saturating_add(n),
                _ => {}
            }
        }
    }
    (read, write)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N ...` lines, summed.
fn v2_io(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for word in text.split_whitespace() {
        if let Some(n) = word.strip_prefix("rbytes=") {
            read = read.saturating_add(n.parse().unwrap_or(0));
        } else if let Some(n) = word.strip_prefix("wbytes=") {
            write = write.saturating_add(n.parse().unwrap_or(0));
        }
    }
    (read, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_as_the_kernel_writes_them() {
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:16 Read 100\nTotal 4708\n";
        assert_eq!(v1_blkio(v1), (4196, 512));
        let v2 = "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=5 wbytes=0\n";
        assert_eq!(v2_io(v2), (15, 20));
        let stat = "cache 100\ntotal_inactive_file 4096\ninactive_file 7\n";
        assert_eq!(field(stat, "total_inactive_file"), Some(4096));
        assert_eq!(field(stat, "inactive_file"), Some(7));
        assert_eq!(field(stat, "missing"), None);
        assert_eq!(
            field("usage_usec 12\nuser_usec 3\n", "usage_usec"),
            Some(12)
        );
    }

    #[test]
    fn a_process_outside_buildr_cgroups_has_none() {
        let me = i32::try_from(std::process::id()).unwrap();
        // The test runner is in no `buildr-*` cgroup.
        match ContainerCgroup::of_pid(me) {
            Err(Error::NoCgroup { pid, .. }) => assert_eq!(pid, me),
            other => panic!("expected NoCgroup, got {other:?}"),
        }
    }
}
