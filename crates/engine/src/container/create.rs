//! From `run`/`create` options and an image to a [`ContainerConfig`]:
//! docker's rules for Entrypoint/Cmd, Env, WorkingDir, User, Volumes and
//! StopSignal, and the parsing of `-v`, `--mount`, `--memory`, `--cpus`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use buildr_cache::{SnapshotId, Store};
use buildr_exec::{BindMount, Limits, TmpfsMount};

use super::state::NetworkMode;
use super::volume::valid_name;
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
    /// `-e KEY=VALUE` (a bare `KEY` takes the caller's environment value).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--hostname` (default: the id's first 12 characters).
    pub hostname: Option<String>,
    pub network: NetworkMode,
    /// `-v SRC:DST[:ro|rw]`, `-v NAME:DST`, `-v DST` (anonymous).
    pub volumes: Vec<String>,
    /// `--mount type=bind|volume|tmpfs,source=..,target=..,readonly`.
    pub mounts: Vec<String>,
    /// `--memory`, `--pids-limit`, `--cpus`.
    pub limits: Limits,
    /// `--read-only`: refused until the sandbox offers a read-only root.
    pub read_only: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-p [IP:]HOST:CTR[/PROTO]` (bridge network only).
    pub publish: Vec<String>,
    /// `-P`: every port the image exposes, on a free host port.
    pub publish_all: bool,
    /// `--health-*`, `--no-healthcheck`.
    pub health: super::health::HealthOptions,
    /// `--label KEY=VALUE` (a bare `KEY` gets an empty value).
    pub labels: Vec<String>,
    /// `-t`: a pty (see [`super::ContainerConfig::tty`]).
    pub tty: bool,
    /// `-i`: keep stdin open for attach clients.
    pub interactive: bool,
}

/// A mount request before volumes are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountRequest {
    Bind(BindMount),
    /// `None` name: anonymous.
    Volume {
        name: Option<String>,
        destination: String,
        readonly: bool,
    },
    Tmpfs(TmpfsMount),
}

impl MountRequest {
    pub fn destination(&self) -> String {
        match self {
            MountRequest::Bind(b) => b.dst.to_string_lossy().into_owned(),
            MountRequest::Volume { destination, .. } => destination.clone(),
            MountRequest::Tmpfs(t) => t.dst.to_string_lossy().into_owned(),
        }
    }
}

fn option_error(message: impl Into<String>) -> Error {
    Error::ContainerOption {
        message: message.into(),
    }
}

/// A container path: absolute, no `..`, normalized.
fn container_path(text: &str, what: &str) -> Result<String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(option_error(format!(
            "{what} {text:?} must be an absolute path"
        )));
    }
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                return Err(option_error(format!("{what} {text:?} must not contain ..")));
            }
            _ => {}
        }
    }
    Ok(out.to_string_lossy().into_owned())
}

/// Parses one `-v`.
pub(crate) fn parse_volume_flag(spec: &str) -> Result<MountRequest> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [dest] => (None, *dest, None),
        [src, dest] => (Some(*src), *dest, None),
        [src, dest, mode] => (Some(*src), *dest, Some(*mode)),
        _ => {
            return Err(option_error(format!(
                "invalid volume specification {spec:?}"
            )));
        }
    };
    let mut readonly = false;
    for opt in mode
        .unwrap_or_default()
        .split(',')
        .filter(|o| !o.is_empty())
    {
        match opt {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "rprivate" | "private" => {}
            other => {
                return Err(option_error(format!(
                    "invalid mode {other:?} in volume specification {spec:?}"
                )));
            }
        }
    }
    let destination = container_path(dest, "volume destination")?;
    match source {
        None => Ok(MountRequest::Volume {
            name: None,
            destination,
            readonly,
        }),
        Some(src) if src.starts_with('/') => Ok(MountRequest::Bind(BindMount {
            src: PathBuf::from(src),
            dst: PathBuf::from(destination),
            readonly,
            subpath: None,
        })),
        Some(name) if valid_name(name) => Ok(MountRequest::Volume {
            name: Some(name.to_owned()),
            destination,
            readonly,
        }),
        Some(other) => Err(option_error(format!(
            "{other:?} includes invalid characters for a local volume name; to bind a host directory use an absolute path"
        ))),
    }
}

/// Parses one `--mount`.
pub(crate) fn parse_mount_flag(spec: &str) -> Result<MountRequest> {
    let mut kind = "volume";
    let (mut source, mut target, mut readonly, mut size) = (None, None, false, None);
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (key, value) {
            ("type", Some(v)) => kind = v,
            ("source" | "src", Some(v)) => source = Some(v.to_owned()),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v.to_owned()),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(v)) => size = Some(parse_bytes(v)?),
            _ => {
                return Err(option_error(format!(
                    "unexpected field {field:?} in --mount {spec:?}"
                )));
            }
        }
    }
    let target =
        target.ok_or_else(|| option_error(format!("--mount {spec:?}: target is required")))?;
    let dst = container_path(&target, "mount target")?;
    match kind {
        "bind" => {
            let src = source
                .ok_or_else(|| option_error(format!("--mount {spec:?}: source is required")))?;
            if !src.starts_with('/') {
                return Err(option_error(format!(
                    "--mount {spec:?}: bind source must be an absolute path"
                )));
            }
            if !Path::new(&src).exists() {
                return Err(option_error(format!(
                    "--mount {spec:?}: bind source path does not exist: {src}"
                )));
            }
            Ok(MountRequest::Bind(BindMount {
                src: src.into(),
                dst: dst.into(),
                readonly,
                subpath: None,
            }))
        }
        "volume" => {
            if let Some(name) = &source
                && !valid_name(name)
            {
                return Err(option_error(format!(
                    "--mount {spec:?}: invalid volume name {name:?}"
                )));
            }
            Ok(MountRequest::Volume {
                name: source,
                destination: dst,
                readonly,
            })
        }
        "tmpfs" => Ok(MountRequest::Tmpfs(TmpfsMount {
            dst: dst.into(),
            size,
        })),
        other => Err(option_error(format!(
            "--mount {spec:?}: unknown type {other:?} (bind, volume or tmpfs)"
        ))),
    }
}

/// `512`, `64k`, `256m`, `1g` (also `kb`, `mb`, `gb`; binary units, as docker).
pub fn parse_bytes(text: &str) -> Result<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 10),
        Some((i, 'm')) => (&lower[..i], 20),
        Some((i, 'g')) => (&lower[..i], 30),
        Some((i, 't')) => (&lower[..i], 40),
        _ => (lower, 0),
    };
    let bad = || {
        option_error(format!(
            "invalid size {text:?}: expected a number with an optional k, m, g or t suffix"
        ))
    };
    let value: f64 = digits.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let bytes = value * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `SIGTERM`, `TERM`, `15` -> 15.
pub fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(num) = text.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(num)
            .map(|s| s as i32)
            .map_err(|_| option_error(format!("invalid signal {text:?}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| option_error(format!("invalid signal {text:?}")))
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
    for var in &options.env {
        let entry = match var.split_once('=') {
            Some(("", _)) => {
                return Err(option_error(format!(
                    "invalid environment variable {var:?}"
                )));
            }
            Some(_) => var.clone(),
            None => match std::env::var(var) {
                Ok(value) => format!("{var}={value}"),
                // Docker drops a bare KEY that the caller does not have.
                Err(_) => continue,
            },
        };
        let key = entry.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    Ok(env)
}

/// The `-p` list plus, for `-P`, the image's exposed ports on free host
/// ports; each checked with the sandbox's parser. Bridge only.
pub(crate) fn ports(image: &Image, options: &CreateOptions) -> Result<Vec<String>> {
    let mut ports = options.publish.clone();
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
    if !ports.is_empty() && options.network != NetworkMode::Bridge {
        return Err(option_error(
            "publishing ports (-p, -P) needs --network bridge",
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
        };
        let state = self.persist(&id, &config)?;
        Ok(Container { config, state })
    }

    /// The container's name: the one asked for (checked, and free among
    /// this store's containers; the caller holds the names lock), else
    /// `buildr_` and the id's start.
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
            None => format!("buildr_{}", &id[..10.min(id.len())]),
        })
    }

    /// The mounts made real: missing bind sources created (as docker
    /// does), volumes created and filled from the image on first use.
    fn make_mounts(
        &self,
        requests: Vec<MountRequest>,
        image: &crate::image::Image,
        snapshots: &[buildr_cache::SnapshotId],
    ) -> Result<(Vec<BindMount>, Vec<VolumeMount>, Vec<TmpfsMount>)> {
        let mut binds = Vec::new();
        let mut volumes = Vec::new();
        let mut tmpfs = Vec::new();
        for request in requests {
            match request {
                MountRequest::Bind(bind) => {
                    if !bind.src.exists() {
                        // `-v /host/path:/dst` creates a missing host directory, as docker does.
                        fs::create_dir_all(&bind.src).map_err(|source| Error::Io {
                            action: "create bind source",
                            path: bind.src.clone(),
                            source,
                        })?;
                    }
                    binds.push(bind);
                }
                MountRequest::Volume {
                    name,
                    destination,
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
                MountRequest::Tmpfs(t) => tmpfs.push(t),
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
    for label in &options.labels {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        if key.is_empty() {
            return Err(Error::ContainerOption {
                message: format!("invalid label {label:?}: expected KEY=VALUE"),
            });
        }
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(labels)
}

/// `-v` and `--mount` requests, then the image's VOLUMEs no request
/// covers, as anonymous volumes.
fn mount_requests(
    image_config: &buildr_oci::ContainerConfig,
    options: &CreateOptions,
) -> Result<Vec<MountRequest>> {
    let mut requests = Vec::new();
    for spec in &options.volumes {
        requests.push(create::parse_volume_flag(spec)?);
    }
    for spec in &options.mounts {
        requests.push(create::parse_mount_flag(spec)?);
    }
    // The image's VOLUMEs not covered by a mount become anonymous volumes.
    for path in image_config.volumes.iter().flat_map(|v| v.keys()) {
        let Ok(destination) = create::parse_volume_flag(path).map(|r| r.destination()) else {
            continue;
        };
        if !requests.iter().any(|r| r.destination() == destination) {
            requests.push(MountRequest::Volume {
                name: None,
                destination,
                readonly: false,
            });
        }
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let cases: &[(&str, Option<MountRequest>)] = &[
            (
                "/host:/data:ro",
                Some(MountRequest::Bind(BindMount {
                    src: "/host".into(),
                    dst: "/data".into(),
                    readonly: true,
                    subpath: None,
                })),
            ),
            (
                "vol:/data/",
                Some(MountRequest::Volume {
                    name: Some("vol".into()),
                    destination: "/data".into(),
                    readonly: false,
                }),
            ),
            (
                "/anon",
                Some(MountRequest::Volume {
                    name: None,
                    destination: "/anon".into(),
                    readonly: false,
                }),
            ),
            ("vol:relative", None),
            ("vol:/a/../b", None),
            ("../x:/data", None),
            ("a:/b:c:d", None),
            ("/h:/d:rx", None),
        ];
        for (spec, want) in cases {
            match (parse_volume_flag(spec), want) {
                (Ok(got), Some(want)) => assert_eq!(&got, want, "{spec}"),
                (Err(_), None) => {}
                (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn mount_flags() {
        assert_eq!(
            parse_mount_flag("type=tmpfs,target=/scratch,tmpfs-size=64m").unwrap(),
            MountRequest::Tmpfs(TmpfsMount {
                dst: "/scratch".into(),
                size: Some(64 << 20),
            })
        );
        assert_eq!(
            parse_mount_flag("type=volume,source=v1,target=/v,readonly").unwrap(),
            MountRequest::Volume {
                name: Some("v1".into()),
                destination: "/v".into(),
                readonly: true,
            }
        );
        for bad in [
            "type=bind,source=relative,target=/x",
            "type=bind,target=/x",
            "type=nfs,target=/x",
            "type=volume,source=v",
            "type=volume,target=/x,bogus=1",
        ] {
            assert!(parse_mount_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_signals() {
        let cases = [
            ("512", 512),
            ("64k", 64 << 10),
            ("256m", 256 << 20),
            ("1g", 1 << 30),
            ("2MB", 2 << 20),
            ("1.5k", 1536),
        ];
        for (text, want) in cases {
            assert_eq!(parse_bytes(text).unwrap(), want, "{text}");
        }
        for bad in ["", "m", "-1m", "12x", "nan"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
