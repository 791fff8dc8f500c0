//! From `run`/`create` options and an image to a [`ContainerConfig`]:
//! docker's rules for Entrypoint/Cmd, Env, WorkingDir, User, Volumes and
//! StopSignal, and the parsing of `-v`, `--mount`, `--memory`, `--cpus`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use buildr_cache::{SnapshotId, Store};
use buildr_exec::{BindMount, Limits, PortMapping, TmpfsMount};

use super::options::{Mount, option_error};
use super::state::NetworkMode;
use super::*;
use crate::error::{Error, Result, io_at};
use crate::image::Image;
use crate::ops::merged::Merged;
use crate::ops::{Layer, StateData};

/// The PATH a container gets when its image sets none (docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `run` and `create` accept, docker's flags as data.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image reference or id.
    pub image: String,
    /// `--name`; a generated one otherwise.
    pub name: Option<String>,
    /// Arguments after the image: replace the image's `Cmd`.
    pub cmd: Vec<String>,
    /// `--entrypoint`: replaces the image's `Entrypoint` (and drops its
    /// `Cmd`); an empty string clears it.
    pub entrypoint: Option<String>,
    /// `-e`: variables over the image's (see [`EnvVar`] for docker's syntax).
    pub env: Vec<(String, String)>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--hostname` (default: the id's first 12 characters).
    pub hostname: Option<String>,
    pub network: NetworkMode,
    /// `-v` and `--mount`, in order ([`Mount::from_volume_spec`], `FromStr`).
    pub mounts: Vec<Mount>,
    /// `--memory`, `--pids-limit`, `--cpus`.
    pub limits: Limits,
    /// `--read-only`: the root filesystem mounted read-only (volumes,
    /// binds and tmpfs keep their own flags).
    pub read_only: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-p [IP:]HOST:CTR[/PROTO]` (bridge network only).
    pub publish: Vec<PortMapping>,
    /// `-P`: every port the image exposes, on a free host port.
    pub publish_all: bool,
    /// `--health-*`, `--no-healthcheck`.
    pub health: super::health::HealthOptions,
    /// `--label`: labels over the image's (see [`Label`]).
    pub labels: Vec<(String, String)>,
    /// `-t`: a pty (see [`super::ContainerConfig::tty`]).
    pub tty: bool,
    /// `-i`: keep stdin open for attach clients.
    pub interactive: bool,
    /// `--restart` (not with `--rm`, as docker).
    pub restart: super::RestartPolicy,
    /// `--network NAME` of a user-defined network (with
    /// `network: NetworkMode::User`), `--network-alias`, `--ip`.
    pub attach: Option<NetworkRequest>,
    /// `--add-host NAME:IP`.
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--dns`.
    pub dns: Vec<std::net::IpAddr>,
}

/// Which user-defined network to join, and how.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    /// The network's name or id.
    pub network: String,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
}

/// argv from docker's rules: `--entrypoint` replaces the image's
/// Entrypoint and drops its Cmd; arguments replace Cmd.
pub(crate) fn command(image: &Image, options: &CreateOptions) -> Result<Vec<String>> {
    let config = image.config.config.clone().unwrap_or_default();
    let (entrypoint, default_cmd) = match &options.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (
            config.entrypoint.unwrap_or_default(),
            config.cmd.unwrap_or_default(),
        ),
    };
    let cmd = if options.cmd.is_empty() {
        default_cmd
    } else {
        options.cmd.clone()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(option_error("no command specified"));
    }
    Ok(argv)
}

/// The image's Env, then the options' (same key replaced), PATH ensured.
pub(crate) fn environment(image: &Image, options: &CreateOptions) -> Result<Vec<String>> {
    let mut env: Vec<String> = image
        .config
        .config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    for (key, value) in &options.env {
        if key.is_empty() || key.contains('=') {
            return Err(option_error(format!(
                "invalid environment variable {key:?}"
            )));
        }
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(format!("{key}={value}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    // As docker: a container with a pty gets TERM=xterm unless it sets one.
    if options.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    Ok(env)
}

/// The `-p` list plus, for `-P`, the image's exposed ports on free host
/// ports; each checked with the sandbox's parser. Bridge only.
pub(crate) fn ports(image: &Image, options: &CreateOptions) -> Result<Vec<String>> {
    let mut ports: Vec<String> = options.publish.iter().map(PortMapping::spec).collect();
    if options.publish_all {
        let exposed = image
            .config
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.as_ref())
            .map(|p| p.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        ports.extend(exposed);
    }
    if !ports.is_empty() && !options.network.is_bridged() {
        return Err(option_error(
            "publishing ports (-p, -P) needs a bridge network (the default, or one from `network create`)",
        ));
    }
    for port in &ports {
        port.parse::<buildr_exec::PortMapping>()
            .map_err(|e| option_error(e.to_string()))?;
    }
    Ok(ports)
}

/// Docker's volume copy-up: an empty volume mounted where the image has
/// a directory starts with that directory's content (mode, owner,
/// symlinks; devices, fifos and sockets are skipped). Names come from the
/// image but are single components read from a directory, and nothing is
/// followed: the copy never leaves `dest`.
pub(crate) fn populate_volume(
    store: &Store,
    image: &Image,
    snapshots: &[SnapshotId],
    container_path: &str,
    dest: &Path,
) -> Result<()> {
    let empty = fs::read_dir(dest)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let layers = image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
        .zip(snapshots)
        .map(|((layer, diff_id), snapshot)| Layer {
            diff_id: *diff_id,
            digest: layer.digest,
            size: layer.size,
            media_type: layer.media_type.clone(),
            snapshot: snapshot.clone(),
        })
        .collect();
    let state = StateData {
        layers,
        ..StateData::default()
    };
    let view = Merged::new(store, &state)?;
    let path = view.resolve(container_path, true)?;
    match view.lookup(&path) {
        Some(found) if found.meta.is_dir() => {
            set_owner_and_mode(dest, &found.meta)?;
            copy_children(&view, &path, dest)
        }
        _ => Ok(()),
    }
}

fn copy_children(view: &Merged, path: &str, dest: &Path) -> Result<()> {
    for (name, found) in view.list(path)? {
        let target = dest.join(&name);
        let kind = found.meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&target).map_err(io_at("create", &target))?;
            copy_children(view, &format!("{path}/{name}"), &target)?;
            set_owner_and_mode(&target, &found.meta)?;
        } else if kind.is_file() {
            fs::copy(&found.host, &target).map_err(io_at("copy into volume", &target))?;
            set_owner_and_mode(&target, &found.meta)?;
        } else if kind.is_symlink() {
            let link = fs::read_link(&found.host).map_err(io_at("read link", &found.host))?;
            std::os::unix::fs::symlink(&link, &target).map_err(io_at("create symlink", &target))?;
            let _ =
                std::os::unix::fs::lchown(&target, Some(found.meta.uid()), Some(found.meta.gid()));
        }
    }
    Ok(())
}

fn set_owner_and_mode(path: &Path, meta: &fs::Metadata) -> Result<()> {
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid())).map_err(|source| {
            Error::Io {
                action: "chown",
                path: path.to_owned(),
                source,
            }
        })?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(|source| {
        Error::Io {
            action: "chmod",
            path: path.to_owned(),
            source,
        }
    })
}

impl Containers {
    /// Creates a container from `options` (status `created`).
    pub fn create(&self, options: &CreateOptions) -> Result<Container> {
        if options.auto_remove && options.restart != super::RestartPolicy::No {
            return Err(Error::ContainerOption {
                message: "conflicting options: cannot specify both --restart and --rm".into(),
            });
        }
        let image = self.images.resolve(&options.image)?;
        let snapshots = crate::image::ensure_snapshots(self.store(), &image, |_| {})?;
        let argv = create::command(&image, options)?;
        let ports = create::ports(&image, options)?;
        let env = create::environment(&image, options)?;
        let image_config = image.config.config.clone().unwrap_or_default();
        let healthcheck = health::resolve(image_config.healthcheck.as_ref(), &options.health)?;
        let labels = labels(&image_config, options)?;
        let requests = mount_requests(&image_config, options)?;
        let stop_signal = match &image_config.stop_signal {
            Some(sig) => parse_signal(sig)?,
            None => libc_sigterm(),
        };
        let cwd = options
            .workdir
            .clone()
            .or(image_config.working_dir.clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        if !cwd.starts_with('/') {
            return Err(Error::ContainerOption {
                message: format!("working directory {cwd:?} is not absolute"),
            });
        }
        let attachment = self.attachment(options)?;
        let id = random_hex(32)?;

        let _names = state::lock(&self.dir.join(".lock"))?;
        let name = self.claim_name(options.name.as_deref(), &id)?;

        let (binds, volumes, tmpfs) = self.make_mounts(requests, &image, &snapshots)?;

        let config = ContainerConfig {
            id: id.clone(),
            name,
            image: options.image.clone(),
            image_id: image.id.to_string(),
            snapshots: snapshots.iter().map(|s| s.as_str().to_owned()).collect(),
            created: now_nanos(),
            argv,
            env,
            cwd,
            user: options
                .user
                .clone()
                .or(image_config.user)
                .unwrap_or_default(),
            hostname: options
                .hostname
                .clone()
                .unwrap_or_else(|| id[..12].to_owned()),
            network: options.network,
            binds,
            volumes,
            tmpfs,
            limits: options.limits,
            stop_signal,
            auto_remove: options.auto_remove,
            ports,
            read_only: options.read_only,
            healthcheck,
            labels,
            tty: options.tty,
            open_stdin: options.interactive,
            shell: image_config.shell.clone().unwrap_or_default(),
            restart: options.restart,
            attachment,
            networks: Vec::new(),
            extra_hosts: options.extra_hosts.clone(),
            dns: options.dns.clone(),
        };
        let state = self.persist(&id, &config)?;
        self.emit(&config, "create", None);
        Ok(Container { config, state })
    }

    /// The user-defined network the options ask for, checked: it exists,
    /// aliases and `--ip` only with one (docker's rule), the address in its
    /// range.
    fn attachment(&self, options: &CreateOptions) -> Result<Option<super::NetworkAttachment>> {
        let request = match (&options.attach, options.network) {
            (Some(request), NetworkMode::User) => request,
            (None, NetworkMode::User) => {
                return Err(option_error("a user-defined network needs its name"));
            }
            (Some(request), _) if !request.aliases.is_empty() || request.ip.is_some() => {
                return Err(option_error(
                    "network-scoped aliases and --ip are supported only for containers in user-defined networks",
                ));
            }
            _ => return Ok(None),
        };
        self.resolve_request(request).map(Some)
    }

    /// Renames a container (running or not), as `docker rename`: the new
    /// name is checked and must be free; the hostname stays.
    pub fn rename(&self, reference: &str, new_name: &str) -> Result<()> {
        let _names = state::lock(&self.dir.join(".lock"))?;
        let container = self.get(reference)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if container.config.name == new_name {
            return Err(Error::ContainerConflict {
                container: new_name.to_owned(),
                reason: "renaming a container to its current name".to_owned(),
            });
        }
        let name = self.claim_name(Some(new_name), &container.config.id)?;
        let mut config = container.config;
        let old_name = std::mem::replace(&mut config.name, name);
        write_json(&self.paths(&config.id).config(), &config)?;
        self.emit(&config, "rename", Some(("oldName", format!("/{old_name}"))));
        Ok(())
    }

    /// The container's name: the one asked for (checked, and free among
    /// this store's containers; the caller holds the names lock), else
    /// a docker-like two-word name (`brave_lovelace`) no container has.
    fn claim_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        Ok(match name {
            Some(name) => {
                let name = name.strip_prefix('/').unwrap_or(name);
                if !valid_container_name(name) {
                    return Err(Error::ContainerOption {
                        message: format!(
                            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                        ),
                    });
                }
                if let Some(other) = self.all()?.into_iter().find(|c| c.config.name == name) {
                    return Err(Error::ContainerConflict {
                        container: name.to_owned(),
                        reason: format!(
                            "the name is already in use by container {}; remove it or use another name",
                            other.config.id
                        ),
                    });
                }
                name.to_owned()
            }
            None => {
                let taken: std::collections::HashSet<String> =
                    self.all()?.into_iter().map(|c| c.config.name).collect();
                super::names::generate(id, |name| taken.contains(name))
            }
        })
    }

    /// The mounts made real: missing bind sources created (as docker
    /// does), volumes created and filled from the image on first use.
    fn make_mounts(
        &self,
        requests: Vec<Mount>,
        image: &crate::image::Image,
        snapshots: &[buildr_cache::SnapshotId],
    ) -> Result<(Vec<BindMount>, Vec<VolumeMount>, Vec<TmpfsMount>)> {
        let mut binds = Vec::new();
        let mut volumes = Vec::new();
        let mut tmpfs = Vec::new();
        for request in requests {
            match request {
                Mount::Bind {
                    source,
                    target,
                    readonly,
                } => {
                    if !source.exists() {
                        // `-v /host/path:/dst` creates a missing host directory, as docker does.
                        fs::create_dir_all(&source).map_err(|e| Error::Io {
                            action: "create bind source",
                            path: source.clone(),
                            source: e,
                        })?;
                    }
                    binds.push(BindMount {
                        src: source,
                        dst: target.into(),
                        readonly,
                        subpath: None,
                    });
                }
                Mount::Volume {
                    name,
                    target: destination,
                    readonly,
                } => {
                    let anonymous = name.is_none();
                    let name = match name {
                        Some(name) => name,
                        None => random_hex(32)?,
                    };
                    let volume = self.volumes.create(&name, anonymous)?;
                    create::populate_volume(
                        self.store(),
                        image,
                        snapshots,
                        &destination,
                        &volume.mountpoint,
                    )?;
                    volumes.push(VolumeMount {
                        name,
                        destination,
                        readonly,
                        anonymous,
                    });
                }
                Mount::Tmpfs { target, size } => tmpfs.push(TmpfsMount {
                    dst: target.into(),
                    size,
                }),
            }
        }
        Ok((binds, volumes, tmpfs))
    }

    /// Writes the container's directory (config, state, upper and work
    /// dirs) under a temporary name and renames it into place.
    fn persist(&self, id: &str, config: &ContainerConfig) -> Result<ContainerState> {
        let tmp = self.dir.join(format!(".tmp-{id}"));
        let tmp_paths = Paths { dir: tmp.clone() };
        for dir in [tmp_paths.dir.clone(), tmp_paths.upper(), tmp_paths.work()] {
            fs::create_dir_all(&dir).map_err(io_at("create", &dir))?;
        }
        write_json(&tmp_paths.config(), &config)?;
        let state = ContainerState::default();
        write_json(&tmp_paths.state(), &state)?;
        let final_dir = self.paths(id).dir;
        fs::rename(&tmp, &final_dir).map_err(io_at("rename into place", &final_dir))?;
        Ok(state)
    }
}

/// The image's labels with `--label KEY=VALUE` over them.
fn labels(
    image_config: &buildr_oci::ContainerConfig,
    options: &CreateOptions,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut labels = image_config.labels.clone().unwrap_or_default();
    for (key, value) in &options.labels {
        if key.is_empty() {
            return Err(option_error(format!(
                "invalid label {key:?}={value:?}: expected KEY=VALUE"
            )));
        }
        labels.insert(key.clone(), value.clone());
    }
    Ok(labels)
}

/// `-v` and `--mount` requests, then the image's VOLUMEs no request
/// covers, as anonymous volumes.
fn mount_requests(
    image_config: &buildr_oci::ContainerConfig,
    options: &CreateOptions,
) -> Result<Vec<Mount>> {
    let mut requests = Vec::new();
    for mount in &options.mounts {
        requests.push(mount.clone().checked()?);
    }
    // The image's VOLUMEs not covered by a mount become anonymous volumes.
    for path in image_config.volumes.iter().flat_map(|v| v.keys()) {
        let Ok(volume) = Mount::from_volume_spec(path) else {
            continue;
        };
        if !requests.iter().any(|r| r.target() == volume.target()) {
            requests.push(volume);
        }
    }
    Ok(requests)
}
