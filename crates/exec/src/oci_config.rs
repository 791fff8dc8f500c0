//! An OCI runtime bundle (`config.json` + root filesystem, as `runc run`
//! and `umoci unpack` know it) read into a [`SpawnSpec`].
//!
//! The sandbox is not a general OCI runtime: it always makes its own mount,
//! pid, ipc, uts and cgroup namespaces and its own /proc, /sys and /dev.
//! What a config asks and the sandbox does differently is either an error
//! (a namespace it cannot make or join, a mount type it cannot place) or a
//! warning naming the field (seccomp, AppArmor, hooks, ...), so a caller
//! never runs a bundle believing a protection is there when it is not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Linux, LinuxNamespaceType, LinuxResources, Mount, PosixRlimitType, Process, Spec,
};

use crate::error::{Error, Result};
use crate::init::DOCKER_CAPS;
use crate::spec::{
    BindMount, Limits, Network, Rlimit, RlimitResource, Rootfs, RootfsMode, SpawnSpec, TmpfsMount,
};

/// A bundle ready to run: the sandbox spec and what it could not honour.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (canonical).
    pub dir: PathBuf,
    /// The process and sandbox, with `rootfs.mode` [`RootfsMode::Direct`].
    pub spec: SpawnSpec,
    /// `process.terminal`: the bundle wants a pty for its command.
    pub terminal: bool,
    /// One line per field buildr does not apply, naming the field.
    pub warnings: Vec<String>,
}

/// Capability names in kernel order (bit n is `CAPS[n]`).
const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the capabilities set in `mask`, kernel order.
pub fn capability_names(mask: u64) -> Vec<&'static str> {
    CAPS.iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// The mask of capability names (`CAP_CHOWN`, ...); unknown names are returned apart.
fn capability_mask<'a>(names: impl IntoIterator<Item = &'a str>) -> (u64, Vec<String>) {
    let mut mask = 0;
    let mut unknown = Vec::new();
    for name in names {
        match CAPS.iter().position(|c| *c == name) {
            Some(bit) => mask |= 1 << bit,
            None => unknown.push(name.to_owned()),
        }
    }
    (mask, unknown)
}

/// Destinations whose mount the sandbox always makes itself, with the
/// types it uses there.
const SANDBOX_MOUNTS: [(&str, &[&str]); 6] = [
    ("/proc", &["proc"]),
    ("/dev", &["tmpfs", "devtmpfs"]),
    ("/dev/pts", &["devpts"]),
    ("/dev/shm", &["tmpfs", "shm"]),
    ("/dev/mqueue", &["mqueue"]),
    ("/sys", &["sysfs"]),
];

/// Mount options the sandbox's binds and tmpfs already imply or that do not
/// change what the command can do.
const HARMLESS_OPTIONS: [&str; 12] = [
    "rw",
    "bind",
    "rbind",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "strictatime",
    "relatime",
    "noatime",
    "nosuid",
    "nodev",
];

impl Bundle {
    /// Reads `dir/config.json` and checks `root.path`.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|source| Error::Io {
            op: "open bundle",
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("config.json");
        let bytes = read_capped(&path, 4 << 20)?;
        let spec: Spec = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Spec(format!("{}: {e}", path.display())))?;
        Bundle::from_spec(&spec, &dir)
    }

    /// Translates a parsed config whose relative paths are relative to `dir`.
    pub fn from_spec(config: &Spec, dir: &Path) -> Result<Bundle> {
        let file = dir.join("config.json");
        let bad = |what: String| config_error(&file, what);
        let mut warnings = Vec::new();
        if !config.version().starts_with("1.") {
            return Err(bad(format!(
                "ociVersion {:?}: only runtime spec 1.x is supported",
                config.version()
            )));
        }
        let root = config
            .root()
            .as_ref()
            .ok_or_else(|| bad("no root".into()))?;
        let root_path = root_dir(&dir.join(root.path()), &file)?;
        let process = config
            .process()
            .as_ref()
            .ok_or_else(|| bad("no process".into()))?;
        let mut spec = base_spec(
            process,
            root_path,
            root.readonly().unwrap_or(false),
            &file,
            &mut warnings,
        )?;
        if let Some(hostname) = config.hostname()
            && !hostname.is_empty()
        {
            spec.hostname = hostname.clone();
        }
        if config.domainname().as_ref().is_some_and(|d| !d.is_empty()) {
            warnings.push("domainname is not applied".into());
        }
        process_fields(process, &mut spec, &mut warnings)?;
        let linux = config.linux().clone().unwrap_or_default();
        linux_fields(&linux, &mut spec, &file, &mut warnings)?;
        if config.hooks().is_some() {
            warnings.push("hooks are not run".into());
        }
        for (i, mount) in config
            .mounts()
            .clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            place_mount(i, mount, dir, &mut spec, &mut warnings)
                .map_err(|refused| bad(refused.to_string()))?;
        }
        Ok(Bundle {
            dir: dir.to_owned(),
            spec,
            terminal: process.terminal().unwrap_or(false),
            warnings,
        })
    }
}

/// An error in the bundle's `config.json` at `file`, naming the file.
fn config_error(file: &Path, what: String) -> Error {
    Error::Spec(format!("{}: {what}", file.display()))
}

/// `root.path` (already joined to the bundle directory), canonical: it must
/// be a directory, and its path must not hold the characters that would
/// split an overlay option string.
fn root_dir(root_path: &Path, file: &Path) -> Result<PathBuf> {
    let root_path = std::fs::canonicalize(root_path).map_err(|source| Error::Io {
        op: "open root.path of bundle",
        path: root_path.to_owned(),
        source,
    })?;
    if !root_path.is_dir() {
        return Err(config_error(
            file,
            format!("root.path {} is not a directory", root_path.display()),
        ));
    }
    let text = root_path.to_string_lossy();
    if text.contains([',', ':', '\n']) {
        return Err(config_error(
            file,
            format!("root.path {} contains ',' or ':'", root_path.display()),
        ));
    }
    Ok(root_path)
}

/// The spec's process and root filesystem: `process.args` must not be
/// empty and `process.cwd` must be absolute; the user fields the sandbox
/// does not apply warn.
fn base_spec(
    process: &Process,
    root_path: PathBuf,
    readonly_rootfs: bool,
    file: &Path,
    warnings: &mut Vec<String>,
) -> Result<SpawnSpec> {
    let argv = process.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(config_error(file, "process.args is empty".into()));
    }
    if process.command_line().is_some() {
        warnings.push("process.commandLine is ignored (Windows only)".into());
    }
    let cwd = process.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(config_error(
            file,
            format!("process.cwd {cwd:?} is not absolute"),
        ));
    }
    let user = process.user();
    if user
        .additional_gids()
        .as_ref()
        .is_some_and(|g| !g.is_empty())
    {
        warnings.push(
            "process.user.additionalGids is not applied: supplementary groups come from the rootfs's /etc/group"
                .into(),
        );
    }
    if user.umask().is_some_and(|m| m != 0o022) {
        warnings.push("process.user.umask is not applied: the umask is 0022".into());
    }
    Ok(SpawnSpec {
        rootfs: Rootfs {
            lowers: Vec::new(),
            upper: root_path.clone(),
            work: root_path,
            mode: RootfsMode::Direct,
        },
        argv,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        user: format!("{}:{}", user.uid(), user.gid()),
        readonly_rootfs,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        ..SpawnSpec::default()
    })
}

/// The `linux` section: namespaces decide the network, id mappings are
/// refused, resources become limits, and the fields the sandbox does not
/// apply warn.
fn linux_fields(
    linux: &Linux,
    spec: &mut SpawnSpec,
    file: &Path,
    warnings: &mut Vec<String>,
) -> Result<()> {
    spec.network = namespaces(linux, file, warnings)?;
    if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    {
        return Err(config_error(
            file,
            "linux.uidMappings/gidMappings: user namespaces are not supported".into(),
        ));
    }
    if let Some(resources) = linux.resources() {
        spec.limits = limits(resources, warnings)?;
    }
    unapplied_linux_fields(linux, warnings);
    Ok(())
}

/// The network from `linux.namespaces` (none listed: the host's; listed
/// without a path: none; with a path: join it). User and time namespaces
/// and joining any other namespace are refused; a missing mnt, pid, ipc,
/// uts or cgroup namespace warns, as the sandbox makes one anyway.
fn namespaces(linux: &Linux, file: &Path, warnings: &mut Vec<String>) -> Result<Network> {
    let mut network = Network::Host;
    let mut listed = BTreeSet::new();
    for ns in linux.namespaces().clone().unwrap_or_default() {
        let kind = ns.typ();
        listed.insert(kind.to_string());
        match (kind, ns.path()) {
            (LinuxNamespaceType::Network, None) => network = Network::None,
            (LinuxNamespaceType::Network, Some(path)) => {
                network = Network::Join {
                    netns: path.clone(),
                    nameservers: Vec::new(),
                }
            }
            (LinuxNamespaceType::User | LinuxNamespaceType::Time, _) => {
                return Err(config_error(
                    file,
                    format!("linux.namespaces: a {kind} namespace is not supported"),
                ));
            }
            (_, Some(path)) => {
                return Err(config_error(
                    file,
                    format!(
                        "linux.namespaces: joining the {kind} namespace {} is not supported",
                        path.display()
                    ),
                ));
            }
            (_, None) => {}
        }
    }
    for kind in ["mnt", "pid", "ipc", "uts", "cgroup"] {
        if !listed.contains(kind) {
            warnings.push(format!(
                "linux.namespaces has no {kind} namespace: buildr makes a new one anyway"
            ));
        }
    }
    Ok(network)
}

/// Warnings for the `linux` fields the sandbox does not apply: seccomp,
/// sysctl, devices, SELinux, RDT, personality, and masked or read-only
/// paths beyond its own.
fn unapplied_linux_fields(linux: &Linux, warnings: &mut Vec<String>) {
    if linux.seccomp().is_some() {
        warnings.push("linux.seccomp is not applied: buildr has no seccomp filter yet".into());
    }
    if linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
        warnings.push("linux.sysctl is not applied".into());
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        warnings.push(
            "linux.devices is not applied: /dev has only null, zero, full, random, urandom and tty"
                .into(),
        );
    }
    if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
        warnings.push("linux.mountLabel is not applied (no SELinux support)".into());
    }
    if linux.intel_rdt().is_some() {
        warnings.push("linux.intelRdt is not applied".into());
    }
    if linux.personality().is_some() {
        warnings.push("linux.personality is not applied".into());
    }
    let masked = paths_beyond(linux.masked_paths(), crate::mounts::MASKED);
    if !masked.is_empty() {
        warnings.push(format!(
            "linux.maskedPaths not masked by buildr: {}",
            masked.join(", ")
        ));
    }
    let readonly = paths_beyond(linux.readonly_paths(), crate::mounts::READONLY);
    if !readonly.is_empty() {
        warnings.push(format!(
            "linux.readonlyPaths not made read-only by buildr: {}",
            readonly.join(", ")
        ));
    }
}

/// The `paths` the sandbox's own list (`own`) does not cover.
fn paths_beyond(paths: &Option<Vec<String>>, own: &[&str]) -> Vec<String> {
    paths
        .iter()
        .flatten()
        .filter(|p| !own.contains(&p.as_str()))
        .cloned()
        .collect()
}

/// Capabilities, rlimits and the process fields the sandbox does not have.
fn process_fields(
    process: &Process,
    spec: &mut SpawnSpec,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if let Some(caps) = process.capabilities() {
        let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
            set.iter()
                .flatten()
                .filter_map(|c| match serde_json::to_value(c) {
                    Ok(serde_json::Value::String(name)) => Some(name),
                    _ => None,
                })
                .collect()
        };
        let bounding = names(caps.bounding());
        let (mask, unknown) = capability_mask(bounding.iter().map(String::as_str));
        if !unknown.is_empty() {
            warnings.push(format!(
                "process.capabilities.bounding: unknown capabilities ignored: {}",
                unknown.join(", ")
            ));
        }
        spec.capabilities = Some(mask);
        for (field, set) in [
            ("effective", caps.effective()),
            ("permitted", caps.permitted()),
        ] {
            let (other, _) = capability_mask(names(set).iter().map(String::as_str));
            if other != mask {
                warnings.push(format!(
                    "process.capabilities.{field} differs from bounding: a root command gets the bounding set as its {field} set"
                ));
            }
        }
        if !names(caps.ambient()).is_empty() || !names(caps.inheritable()).is_empty() {
            warnings.push(
                "process.capabilities.ambient/inheritable are not applied: both are empty".into(),
            );
        }
    } else {
        spec.capabilities = Some(0);
    }
    for rlimit in process.rlimits().clone().unwrap_or_default() {
        let resource = match rlimit.typ() {
            PosixRlimitType::RlimitCore => RlimitResource::Core,
            PosixRlimitType::RlimitCpu => RlimitResource::Cpu,
            PosixRlimitType::RlimitData => RlimitResource::Data,
            PosixRlimitType::RlimitFsize => RlimitResource::Fsize,
            PosixRlimitType::RlimitMemlock => RlimitResource::Memlock,
            PosixRlimitType::RlimitNofile => RlimitResource::Nofile,
            PosixRlimitType::RlimitNproc => RlimitResource::Nproc,
            PosixRlimitType::RlimitStack => RlimitResource::Stack,
            PosixRlimitType::RlimitAs => RlimitResource::As,
            other => {
                warnings.push(format!("process.rlimits: {other:?} is not applied"));
                continue;
            }
        };
        if rlimit.soft() > rlimit.hard() {
            return Err(Error::Spec(format!(
                "process.rlimits: {:?} soft limit {} is above its hard limit {}",
                rlimit.typ(),
                rlimit.soft(),
                rlimit.hard()
            )));
        }
        spec.rlimits.push(Rlimit {
            resource,
            soft: rlimit.soft(),
            hard: rlimit.hard(),
        });
    }
    let ignored = [
        ("apparmorProfile", process.apparmor_profile().is_some()),
        ("selinuxLabel", process.selinux_label().is_some()),
        ("oomScoreAdj", process.oom_score_adj().is_some()),
        ("scheduler", process.scheduler().is_some()),
        ("ioPriority", process.io_priority().is_some()),
        ("execCPUAffinity", process.exec_cpu_affinity().is_some()),
    ];
    for (field, set) in ignored {
        if set {
            warnings.push(format!("process.{field} is not applied"));
        }
    }
    if process.user().uid() != 0 && spec.capabilities.is_some_and(|c| c != 0) {
        warnings.push(
            "process.capabilities: a non-root user gets no capabilities (only the bounding set is kept)"
                .into(),
        );
    }
    Ok(())
}

/// Memory, pids and CPU bandwidth; other resources warn.
fn limits(resources: &LinuxResources, warnings: &mut Vec<String>) -> Result<Limits> {
    let mut limits = Limits::default();
    if let Some(memory) = resources.memory() {
        limits.memory = memory.limit().filter(|l| *l > 0).map(|l| l as u64);
        let others = memory.reservation().is_some()
            || memory.swap().is_some()
            || memory.kernel().is_some()
            || memory.kernel_tcp().is_some()
            || memory.swappiness().is_some();
        if others {
            warnings.push(
                "linux.resources.memory: only limit is applied (swap counts against it)".into(),
            );
        }
    }
    if let Some(pids) = resources.pids() {
        limits.pids = (pids.limit() > 0).then_some(pids.limit() as u64);
    }
    if let Some(cpu) = resources.cpu() {
        if let (Some(quota), Some(period)) = (cpu.quota(), cpu.period())
            && quota > 0
            && period > 0
        {
            limits.cpus = Some(quota as f64 / period as f64);
        }
        if cpu.shares().is_some() || cpu.cpus().is_some() || cpu.mems().is_some() {
            warnings.push("linux.resources.cpu: only quota/period are applied".into());
        }
    }
    let others = [
        ("blockIO", resources.block_io().is_some()),
        ("hugepageLimits", resources.hugepage_limits().is_some()),
        ("network", resources.network().is_some()),
        ("rdma", resources.rdma().is_some()),
        ("unified", resources.unified().is_some()),
    ];
    for (field, set) in others {
        if set {
            warnings.push(format!("linux.resources.{field} is not applied"));
        }
    }
    let devices = resources.devices().clone().unwrap_or_default();
    if devices.iter().any(|d| d.allow()) {
        warnings.push(
            "linux.resources.devices: allow rules are not applied: only the sandbox's own /dev nodes exist"
                .into(),
        );
    }
    Ok(limits)
}

/// An entry of `mounts` the sandbox cannot place: `mounts[INDEX] (DEST)`
/// and why.
#[derive(Debug, thiserror::Error)]
#[error("{label}: {reason}")]
struct MountRefused {
    label: String,
    reason: MountReason,
}

/// Why a mount of a bundle is refused.
#[derive(Debug, thiserror::Error)]
enum MountReason {
    #[error("destination is not absolute")]
    NotAbsolute,
    #[error("destination contains ..")]
    ParentDir,
    #[error("a {kind} mount over {dst} is not supported: buildr mounts its own {own} there")]
    OverSandbox {
        kind: String,
        dst: String,
        own: &'static str,
    },
    #[error("bind mount without a source")]
    NoSource,
    #[error("bind source {} does not exist", .0.display())]
    MissingSource(PathBuf),
    #[error("invalid tmpfs size {0:?}")]
    TmpfsSize(String),
    #[error(
        "mount type {0:?} is not supported here (bind and tmpfs are; proc, sysfs, devpts, mqueue only at their standard places)"
    )]
    Type(String),
}

/// Maps one entry of `mounts` onto the sandbox: its own system mounts, a
/// bind or a tmpfs. Anything else is refused, labelled
/// `mounts[INDEX] (DEST)`.
fn place_mount(
    index: usize,
    mount: &Mount,
    dir: &Path,
    spec: &mut SpawnSpec,
    warnings: &mut Vec<String>,
) -> std::result::Result<(), MountRefused> {
    let label = format!("mounts[{index}] ({})", mount.destination().display());
    let placed = place(&label, mount, dir, spec, warnings);
    placed.map_err(|reason| MountRefused { label, reason })
}

/// [`place_mount`] without the label on its refusals: checks the
/// destination, skips what the sandbox mounts itself and adds a bind or a
/// tmpfs to `spec`.
fn place(
    label: &str,
    mount: &Mount,
    dir: &Path,
    spec: &mut SpawnSpec,
    warnings: &mut Vec<String>,
) -> std::result::Result<(), MountReason> {
    let dst = mount.destination();
    if !dst.is_absolute() {
        return Err(MountReason::NotAbsolute);
    }
    if dst
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(MountReason::ParentDir);
    }
    let options = mount.options().clone().unwrap_or_default();
    let kind = mount_kind(mount, &options);
    if sandbox_mount(&dst.to_string_lossy(), kind)? {
        return Ok(());
    }
    if dst.to_string_lossy() == "/sys/fs/cgroup" && kind == "cgroup" {
        warnings.push(format!("{label}: the cgroup filesystem is not mounted"));
        return Ok(());
    }
    match kind {
        "bind" => spec
            .binds
            .push(bind_mount(label, mount, &options, dir, warnings)?),
        "tmpfs" => spec
            .tmpfs
            .push(tmpfs_mount(label, dst, &options, warnings)?),
        other => return Err(MountReason::Type(other.to_owned())),
    }
    Ok(())
}

/// The mount's type as the sandbox reads it: a `bind`/`rbind` option makes
/// it a bind whatever `type` says.
fn mount_kind<'a>(mount: &'a Mount, options: &[String]) -> &'a str {
    let is_bind = options.iter().any(|o| o == "bind" || o == "rbind")
        || mount.typ().as_deref() == Some("bind");
    if is_bind {
        "bind"
    } else {
        mount.typ().as_deref().unwrap_or("")
    }
}

/// Whether `dst` is one of the places the sandbox mounts itself and
/// `kind` is what it mounts there (then the entry is already honoured);
/// another type over such a place is refused.
fn sandbox_mount(dst: &str, kind: &str) -> std::result::Result<bool, MountReason> {
    let Some((_, kinds)) = SANDBOX_MOUNTS.iter().find(|(d, _)| *d == dst) else {
        return Ok(false);
    };
    if kinds.contains(&kind) {
        // buildr's own mount is there, with runc's default options.
        return Ok(true);
    }
    Err(MountReason::OverSandbox {
        kind: kind.to_owned(),
        dst: dst.to_owned(),
        own: kinds[0],
    })
}

/// The options neither harmless nor in `skip` (as `NAME` or `NAME=...`).
fn unapplied_options(options: &[String], skip: &[&str]) -> Vec<String> {
    options
        .iter()
        .filter(|o| !HARMLESS_OPTIONS.contains(&o.as_str()) && !skip.contains(&o.as_str()))
        .filter(|o| !skip.iter().any(|s| o.starts_with(&format!("{s}="))))
        .cloned()
        .collect()
}

/// A bind of an existing source (relative to the bundle directory),
/// read-only with `ro`; other options warn.
fn bind_mount(
    label: &str,
    mount: &Mount,
    options: &[String],
    dir: &Path,
    warnings: &mut Vec<String>,
) -> std::result::Result<BindMount, MountReason> {
    let source = mount.source().as_ref().ok_or(MountReason::NoSource)?;
    let src = dir.join(source);
    if std::fs::symlink_metadata(&src).is_err() {
        return Err(MountReason::MissingSource(src));
    }
    let readonly = options.iter().any(|o| o == "ro");
    let rest = unapplied_options(options, &["ro"]);
    if !rest.is_empty() {
        warnings.push(format!(
            "{label}: bind options not applied: {}",
            rest.join(",")
        ));
    }
    Ok(BindMount {
        src,
        dst: mount.destination().to_owned(),
        readonly,
        subpath: None,
    })
}

/// A tmpfs with the `size=` option's size; options other than `size`,
/// `noexec` and `mode=1777` warn.
fn tmpfs_mount(
    label: &str,
    dst: &Path,
    options: &[String],
    warnings: &mut Vec<String>,
) -> std::result::Result<TmpfsMount, MountReason> {
    let mut size = None;
    for option in options {
        if let Some(value) = option.strip_prefix("size=") {
            size = Some(parse_size(value).ok_or_else(|| MountReason::TmpfsSize(value.to_owned()))?);
        }
    }
    let rest: Vec<String> = unapplied_options(options, &["size", "noexec"])
        .into_iter()
        .filter(|o| o != "mode=1777")
        .collect();
    if !rest.is_empty() {
        warnings.push(format!(
            "{label}: tmpfs options not applied (buildr's tmpfs is mode=1777,nosuid,nodev): {}",
            rest.join(",")
        ));
    }
    Ok(TmpfsMount {
        dst: dst.to_owned(),
        size,
    })
}

/// `65536k`, `64m`, `1g`, or bytes.
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, shift) = match lower.as_bytes().last()? {
        b'k' => (&lower[..lower.len() - 1], 10),
        b'm' => (&lower[..lower.len() - 1], 20),
        b'g' => (&lower[..lower.len() - 1], 30),
        _ => (lower.as_str(), 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |op| {
        let path = path.to_owned();
        move |source| Error::Io { op, path, source }
    };
    let file = std::fs::File::open(path).map_err(io("open"))?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    if bytes.len() as u64 > cap {
        return Err(Error::Spec(format!(
            "{} is larger than {cap} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Docker's default capabilities, as OCI names.
pub fn docker_capability_names() -> Vec<&'static str> {
    capability_names(DOCKER_CAPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(config: serde_json::Value) -> (tempfile::TempDir, Result<Bundle>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let loaded = Bundle::load(dir.path());
        (dir, loaded)
    }

    fn runc_spec() -> serde_json::Value {
        // What `runc spec` writes (runc 1.1), trimmed of nothing.
        serde_json::json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": true,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "runc",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        })
    }

    #[test]
    fn runc_default_spec_translates() {
        let (dir, loaded) = bundle(runc_spec());
        let b = loaded.unwrap();
        let root = std::fs::canonicalize(dir.path().join("rootfs")).unwrap();
        assert_eq!(b.spec.rootfs.upper, root);
        assert_eq!(b.spec.rootfs.mode, RootfsMode::Direct);
        assert!(b.spec.readonly_rootfs);
        assert!(b.spec.no_new_privs);
        assert!(b.terminal);
        assert_eq!(b.spec.argv, ["sh"]);
        assert_eq!(b.spec.hostname, "runc");
        assert_eq!(b.spec.user, "0:0");
        assert_eq!(b.spec.network, Network::None);
        assert_eq!(
            capability_names(b.spec.capabilities.unwrap()),
            ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
        );
        assert_eq!(
            b.spec.rlimits,
            [Rlimit {
                resource: RlimitResource::Nofile,
                soft: 1024,
                hard: 1024
            }]
        );
        assert!(b.spec.binds.is_empty() && b.spec.tmpfs.is_empty());
        // The cgroup mount, the missing cgroup namespace, ambient caps.
        let joined = b.warnings.join("\n");
        assert!(joined.contains("/sys/fs/cgroup"), "{joined}");
        assert!(joined.contains("no cgroup namespace"), "{joined}");
        assert!(joined.contains("ambient"), "{joined}");
        assert!(!joined.contains("maskedPaths"), "{joined}");
    }

    #[test]
    fn safety_fields_warn_and_unsupported_ones_fail() {
        let mut config = runc_spec();
        config["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"});
        config["process"]["apparmorProfile"] = "docker-default".into();
        config["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push("/proc/secret".into());
        config["mounts"].as_array_mut().unwrap().extend([
            serde_json::json!({"destination": "/data", "type": "bind", "source": "rootfs", "options": ["rbind", "ro", "noexec"]}),
            serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        ]);
        let (dir, loaded) = bundle(config.clone());
        let b = loaded.unwrap();
        let joined = b.warnings.join("\n");
        for field in [
            "linux.seccomp",
            "process.apparmorProfile",
            "/proc/secret",
            "noexec",
        ] {
            assert!(joined.contains(field), "no warning for {field}: {joined}");
        }
        assert_eq!(b.spec.binds.len(), 1);
        assert_eq!(
            b.spec.binds[0].src,
            dir.path().canonicalize().unwrap().join("rootfs")
        );
        assert!(b.spec.binds[0].readonly);
        assert_eq!(b.spec.tmpfs[0].size, Some(1 << 20));

        let mut user_ns = runc_spec();
        user_ns["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        let err = bundle(user_ns).1.unwrap_err().to_string();
        assert!(err.contains("user namespace"), "{err}");

        let mut unknown_ns = runc_spec();
        unknown_ns["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "bogus"}));
        let err = bundle(unknown_ns).1.unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("bogus"),
            "{err}"
        );

        let mut odd_mount = runc_spec();
        odd_mount["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/other-proc", "type": "proc", "source": "proc"}),
        );
        let err = bundle(odd_mount).1.unwrap_err().to_string();
        assert!(err.contains("mounts[7] (/other-proc)"), "{err}");

        let mut joined_pid = runc_spec();
        joined_pid["linux"]["namespaces"][0]["path"] = "/proc/1/ns/pid".into();
        let err = bundle(joined_pid).1.unwrap_err().to_string();
        assert!(err.contains("joining the pid namespace"), "{err}");

        let mut network_path = runc_spec();
        network_path["linux"]["namespaces"][1]["path"] = "/run/netns/x".into();
        let b = bundle(network_path).1.unwrap();
        assert_eq!(
            b.spec.network,
            Network::Join {
                netns: "/run/netns/x".into(),
                nameservers: Vec::new()
            }
        );
    }

    #[test]
    fn broken_configs_are_errors_not_panics() {
        for config in [
            serde_json::json!({}),
            serde_json::json!({"ociVersion": "2.0.0", "root": {"path": "rootfs"}, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"]}}),
            serde_json::json!({"ociVersion": "1.0.0", "root": {"path": "nope"}, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"]}}),
            serde_json::json!({"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "rel", "args": ["sh"]}}),
            serde_json::json!({"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": []}}),
            serde_json::json!({"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1}]}}),
        ] {
            assert!(bundle(config.clone()).1.is_err(), "{config}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{\"ociVersion\": [").unwrap();
        let err = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }

    #[test]
    fn capability_tables_agree() {
        assert_eq!(capability_names(DOCKER_CAPS).len(), 14);
        let (mask, unknown) = capability_mask(docker_capability_names());
        assert_eq!((mask, unknown.len()), (DOCKER_CAPS, 0));
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(parse_size("x"), None);
    }
}
