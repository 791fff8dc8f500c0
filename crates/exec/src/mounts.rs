//! The sandbox's mounts, made by pid 1 in its new mount namespace before
//! `pivot_root`: the root (overlay or a bind of the copy), /proc, /sys,
//! a small /dev, the Docker-style /etc files, and runc's masked and
//! read-only paths. Every target inside the root is resolved with
//! [`secure_join`], so a symlink in the image cannot redirect a mount; user
//! binds and tmpfs mounts are then made and mounted through descriptors
//! the kernel resolved inside the root ([`Target`]), so a directory swapped
//! for a symlink meanwhile (a shared volume) cannot either.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

use crate::init::{ETC_FILES, InitConfig, InitError, Res, RootSource, ctx};
use buildr_fs::rooted::secure_join;

/// runc's masked paths (`linux.maskedPaths` of `runc spec`), and more.
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// runc's read-only paths (`linux.readonlyPaths`).
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

pub(crate) fn mount_root(config: &InitConfig, root: &Path) -> Res<()> {
    match &config.root {
        RootSource::Overlay {
            lowers,
            upper,
            work,
        } => {
            let empty = config.state_dir.join("empty");
            let lowers: Vec<&Path> = if lowers.is_empty() {
                vec![empty.as_path()]
            } else {
                lowers.iter().map(|p| p.as_path()).collect()
            };
            let (cwd, data) = overlay_options(&lowers, upper, work, config.rootless)?;
            if let Some(dir) = &cwd {
                nix::unistd::chdir(dir.as_path())
                    .map_err(ctx(format!("chdir to {}", dir.display())))?;
            }
            mount(
                Some("overlay"),
                root,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(ctx(format!(
                "mount overlay at {} ({} lower dirs)",
                root.display(),
                lowers.len()
            )))
        }
        RootSource::Dir(dir) => bind_mount(dir, root, false),
    }
}

/// The kernel reads mount options as one page.
const MOUNT_DATA_MAX: usize = 4095;

/// Overlay mount options. When absolute paths do not fit in a page (many
/// layers), they are made relative to their common ancestor, which the
/// caller must make the working directory (returned), as containerd does.
fn overlay_options(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    rootless: bool,
) -> Res<(Option<PathBuf>, String)> {
    let build = |base: Option<&Path>| {
        let show = |p: &Path| {
            base.and_then(|b| p.strip_prefix(b).ok())
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        };
        let lower: Vec<String> = lowers.iter().map(|l| show(l)).collect();
        let mut data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            show(upper),
            show(work)
        );
        if rootless {
            data.push_str(",userxattr");
        }
        data
    };
    let data = build(None);
    if data.len() <= MOUNT_DATA_MAX {
        return Ok((None, data));
    }
    let mut base = upper.to_path_buf();
    for path in lowers.iter().copied().chain([work]) {
        while !path.starts_with(&base) {
            if !base.pop() {
                break;
            }
        }
    }
    let data = build(Some(&base));
    if data.len() > MOUNT_DATA_MAX || base.parent().is_none() {
        return Err(InitError::Refused(format!(
            "{} lower dirs do not fit in one overlay mount ({} bytes of options)",
            lowers.len(),
            data.len()
        )));
    }
    Ok((Some(base), data))
}

pub(crate) fn bind_mount(src: &Path, dst: &Path, readonly: bool) -> Res<()> {
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(ctx(format!("bind {} at {}", src.display(), dst.display())))?;
    if readonly {
        remount_readonly(dst)?;
    }
    Ok(())
}

/// Remounts a bind mount read-only, keeping the flags the kernel locks in a
/// user namespace (nosuid, nodev, noexec...).
pub(crate) fn remount_readonly(path: &Path) -> Res<()> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let current = statvfs(path)
        .map_err(ctx(format!("statvfs {}", path.display())))?
        .flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(fs) {
            flags |= ms;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(ctx(format!("remount {} read-only", path.display())))
}

/// Creates a missing mountpoint (and missing parents), recording what it
/// created relative to the root so the launcher can remove it from the diff.
///
/// `path` was resolved by [`secure_join`], but a directory in a volume or
/// bind may be swapped for a symlink since (CVE-2021-30465): every step
/// is taken by the kernel inside `root` (`openat2(RESOLVE_IN_ROOT)`) and
/// each missing component is made relative to its parent's descriptor,
/// never following a symlink, so nothing is ever created outside `root`.
pub(crate) fn make_mountpoint(
    root: &Path,
    path: &Path,
    dir: bool,
    created: &mut Vec<PathBuf>,
) -> Res<()> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let rel = path.strip_prefix(root).map_err(|_| not_under_root(path))?;
    let root_fd = open_root(root)?;
    let parts: Vec<_> = rel.components().collect();
    for depth in 1..=parts.len() {
        let prefix: PathBuf = parts[..depth].iter().collect();
        match open_beneath(&root_fd, &prefix) {
            Ok(_) => continue,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(ctx(format!("open {} in the rootfs", prefix.display()))(e)),
        }
        let parent: PathBuf = parts[..depth - 1].iter().collect();
        let parent_fd = open_beneath(&root_fd, &parent)
            .map_err(ctx(format!("open {} in the rootfs", parent.display())))?;
        let name = parts[depth - 1].as_os_str();
        let create = ctx(format!("create {}", root.join(&prefix).display()));
        if depth < parts.len() || dir {
            mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o777)).map_err(create)?;
        } else {
            openat(
                &parent_fd,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            )
            .map_err(create)?;
        }
        created.push(prefix);
    }
    Ok(())
}

/// The error for a mount target outside the root it is to be made in.
fn not_under_root(path: &Path) -> InitError {
    InitError::Refused(format!(
        "mount target {} is not under the root",
        path.display()
    ))
}

fn open_root(root: &Path) -> Res<std::os::fd::OwnedFd> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ctx(format!("open the rootfs {}", root.display())))
}

/// The path to bind for `bind`: its `src`, or its `subpath` opened inside
/// `src` by the kernel and named through `/proc/self/fd/N` (so `mount`
/// binds the very inode found inside), with the descriptor to hold until
/// the bind is made.
pub(crate) fn bind_source(
    bind: &crate::spec::BindMount,
) -> Res<(PathBuf, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::AsRawFd;
    let Some(subpath) = &bind.subpath else {
        return Ok((bind.src.clone(), None));
    };
    let root_fd = open_root(&bind.src)?;
    let rel = subpath.strip_prefix("/").unwrap_or(subpath);
    let fd = open_beneath(&root_fd, rel).map_err(ctx(format!(
        "bind source {} inside {}",
        subpath.display(),
        bind.src.display()
    )))?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok((path, Some(fd)))
}

/// `rel` opened `O_PATH` with every component resolved by the kernel
/// inside `root_fd`: `..` and absolute symlinks stop at the root, magic
/// links are refused.
fn open_beneath(
    root_fd: &std::os::fd::OwnedFd,
    rel: &Path,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{OFlags, ResolveFlags};
    buildr_fs::rooted::open_beneath(
        root_fd,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// A mount target held open: the mount goes on `/proc/self/fd/N`, the
/// very inode the kernel found inside the root, whatever the path names
/// by the time `mount` runs (runc's fix for CVE-2021-30465).
#[derive(Debug)]
pub(crate) struct Target {
    fd: std::os::fd::OwnedFd,
    shown: PathBuf,
}

impl Target {
    /// `path` (under `root`, from [`secure_join`]) resolved inside `root`.
    pub(crate) fn open(root: &Path, path: &Path) -> Res<Target> {
        let rel = path.strip_prefix(root).map_err(|_| not_under_root(path))?;
        let fd = open_beneath(&open_root(root)?, rel)
            .map_err(ctx(format!("open mount target {}", path.display())))?;
        Ok(Target {
            fd,
            shown: path.to_path_buf(),
        })
    }

    /// The magic link naming the held inode.
    pub(crate) fn proc_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The mount the held inode is on (`mnt_id` of its fdinfo).
    fn mount_id(&self) -> Res<u64> {
        use std::os::fd::AsRawFd;
        let info = format!("/proc/self/fdinfo/{}", self.fd.as_raw_fd());
        let text = std::fs::read_to_string(&info).map_err(ctx(format!("read {info}")))?;
        text.lines()
            .find_map(|l| l.strip_prefix("mnt_id:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| InitError::Refused(format!("no mnt_id in {info}")))
    }
}

/// Binds `src` on `dst` (under `root`, from [`secure_join`]) through a
/// [`Target`]; read-only binds are remounted through a second descriptor
/// that must be the root of the new mount (same inode as `src`, another
/// mount than the target was on), or the bind fails.
pub(crate) fn bind_in_root(root: &Path, src: &Path, dst: &Path, readonly: bool) -> Res<()> {
    use std::os::unix::fs::MetadataExt;
    let target = Target::open(root, dst)?;
    mount(
        Some(src),
        &target.proc_path(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(ctx(format!("bind {} at {}", src.display(), dst.display())))?;
    if !readonly {
        return Ok(());
    }
    let mounted = Target::open(root, dst)?;
    let want = std::fs::metadata(src).map_err(ctx(format!("stat {}", src.display())))?;
    let got = std::fs::metadata(mounted.proc_path())
        .map_err(ctx(format!("stat {}", mounted.shown.display())))?;
    if mounted.mount_id()? == target.mount_id()?
        || (got.dev(), got.ino()) != (want.dev(), want.ino())
    {
        return Err(InitError::Refused(format!(
            "mount target {} changed while {} was bound there; refusing to leave it writable",
            dst.display(),
            src.display()
        )));
    }
    remount_readonly(&mounted.proc_path())
}

/// nosuid, nodev and noexec: the flags of the sandbox's kernel filesystems.
const NSD: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The system mounts under `root`, in order: /proc, /sys, /dev with its
/// devices, ptys, shm and mqueue, then the /etc files bound read-only from
/// the state dir. Mountpoints made in the image go to `created`.
pub(crate) fn mount_system(
    config: &InitConfig,
    root: &Path,
    created: &mut Vec<PathBuf>,
) -> Res<()> {
    let proc_dir = resolve_in(root, "/proc")?;
    make_mountpoint(root, &proc_dir, true, created)?;
    mount(Some("proc"), &proc_dir, Some("proc"), NSD, None::<&str>).map_err(ctx("mount /proc"))?;
    mount_sys(root, created)?;
    mount_dev(config, root, created)?;
    for name in ETC_FILES {
        let target = resolve_in(root, &format!("/etc/{name}"))?;
        make_mountpoint(root, &target, false, created)?;
        bind_mount(&config.state_dir.join("etc").join(name), &target, true)?;
    }
    Ok(())
}

/// `path` (absolute, in the sandbox) resolved inside `root`.
fn resolve_in(root: &Path, path: &str) -> Res<PathBuf> {
    secure_join(root, Path::new(path)).map_err(ctx(format!("resolve {path}")))
}

/// A read-only sysfs at /sys; where the kernel refuses one (in a user
/// namespace without a network namespace of our own), the host's /sys
/// bound recursively with every submount read-only.
fn mount_sys(root: &Path, created: &mut Vec<PathBuf>) -> Res<()> {
    let sys_dir = resolve_in(root, "/sys")?;
    make_mountpoint(root, &sys_dir, true, created)?;
    if mount(
        Some("sysfs"),
        &sys_dir,
        Some("sysfs"),
        NSD | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .is_ok()
    {
        return Ok(());
    }
    // Not allowed without our own net ns in a user ns: bind the host's
    // (recursively: its submounts are locked) and make all of it read-only.
    bind_mount(Path::new("/sys"), &sys_dir, true)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(ctx("read /proc/self/mountinfo"))?;
    for line in mountinfo.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        let point = Path::new(point);
        if point != sys_dir && point.starts_with(&sys_dir) {
            remount_readonly(point)?;
        }
    }
    Ok(())
}

/// A small tmpfs /dev: the [`DEVICES`] the host has, devpts, shm, mqueue
/// and the usual links.
fn mount_dev(config: &InitConfig, root: &Path, created: &mut Vec<PathBuf>) -> Res<()> {
    let dev = resolve_in(root, "/dev")?;
    make_mountpoint(root, &dev, true, created)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(ctx("mount /dev"))?;
    make_devices(&dev)?;
    mount_dev_filesystems(config, &dev)?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(ctx(format!("link /dev/{link}")))?;
    }
    Ok(())
}

/// Each of [`DEVICES`] the host has, in `dev`: a device node with the
/// host's numbers, or where mknod is not allowed, a bind of the host's.
fn make_devices(dev: &Path) -> Res<()> {
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let Ok(meta) = std::fs::metadata(&host) else {
            continue;
        };
        let target = dev.join(name);
        if make_device(&target, meta.rdev())? {
            continue;
        }
        std::fs::File::create(&target).map_err(ctx(format!("create /dev/{name}")))?;
        mount(
            Some(&host),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(ctx(format!("bind /dev/{name}")))?;
    }
    Ok(())
}

/// devpts (a new instance; group tty unless rootless), shm and mqueue
/// under `dev`.
fn mount_dev_filesystems(config: &InitConfig, dev: &Path) -> Res<()> {
    let pts = dev.join("pts");
    std::fs::create_dir(&pts).map_err(ctx("create /dev/pts"))?;
    let pts_opts = if config.rootless {
        "newinstance,ptmxmode=0666,mode=0620"
    } else {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    };
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(pts_opts),
    )
    .map_err(ctx("mount /dev/pts"))?;
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).map_err(ctx("create /dev/shm"))?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        NSD,
        Some("mode=1777,size=65536k"),
    )
    .map_err(ctx("mount /dev/shm"))?;
    let mqueue = dev.join("mqueue");
    std::fs::create_dir(&mqueue).map_err(ctx("create /dev/mqueue"))?;
    mount(Some("mqueue"), &mqueue, Some("mqueue"), NSD, None::<&str>)
        .map_err(ctx("mount /dev/mqueue"))
}

/// Makes `/dev/<name>` the sandbox's own character device `rdev`, mode
/// 0666, as runc does. A bind of the host's node instead would be the
/// host's inode: root in a sandbox without a user namespace could chmod or
/// touch the host's /dev/null through it. `false` when the kernel refuses
/// mknod (a user namespace, or no CAP_MKNOD): then only a bind is left, and
/// the host's root-owned node cannot be changed from there.
fn make_device(target: &Path, rdev: u64) -> Res<bool> {
    use nix::sys::stat::{Mode, SFlag};
    use std::os::unix::fs::PermissionsExt as _;
    let mode = Mode::from_bits_truncate(0o666);
    match nix::sys::stat::mknod(target, SFlag::S_IFCHR, mode, rdev) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) => return Ok(false),
        Err(e) => return Err(ctx(format!("mknod {}", target.display()))(e)),
    }
    // mknod's mode passes through the umask; the node was just made in
    // our own tmpfs, so the path is that node.
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o666))
        .map_err(ctx(format!("chmod {}", target.display())))?;
    Ok(true)
}

pub(crate) fn mask_paths(root: &Path) -> Res<()> {
    let dev_null = root.join("dev/null");
    for path in MASKED {
        let target = root.join(path.trim_start_matches('/'));
        let Ok(meta) = std::fs::symlink_metadata(&target) else {
            continue;
        };
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(ctx(format!("mask {path}")))?;
        } else {
            mount(
                Some(&dev_null),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(ctx(format!("mask {path}")))?;
        }
    }
    for path in READONLY {
        let target = root.join(path.trim_start_matches('/'));
        if std::fs::symlink_metadata(&target).is_err() {
            continue;
        }
        bind_mount(&target, &target, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_fit_in_a_page() {
        let few = [Path::new("/s/l1"), Path::new("/s/l0")];
        let (cwd, data) =
            overlay_options(&few, Path::new("/s/u"), Path::new("/s/w"), true).unwrap();
        assert_eq!(cwd, None);
        assert_eq!(
            data,
            "lowerdir=/s/l1:/s/l0,upperdir=/s/u,workdir=/s/w,userxattr"
        );

        let base = "/var/lib/buildr/snapshots/by-a-rather-long-directory-name";
        let many: Vec<PathBuf> = (0..120)
            .map(|i| PathBuf::from(format!("{base}/{i:064}")))
            .collect();
        let many: Vec<&Path> = many.iter().map(|p| p.as_path()).collect();
        let upper = PathBuf::from(format!("{base}/upper"));
        let work = PathBuf::from(format!("{base}/work"));
        let (cwd, data) = overlay_options(&many[..50], &upper, &work, false).unwrap();
        assert_eq!(cwd, Some(PathBuf::from(base)));
        assert!(data.starts_with(&format!("lowerdir={:064}:", 0)), "{data}");
        assert!(data.ends_with(",upperdir=upper,workdir=work"), "{data}");
        assert!(data.len() <= MOUNT_DATA_MAX);

        let err = overlay_options(&many, &upper, &work, false)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("120 lower dirs do not fit"), "{err}");
    }
}
