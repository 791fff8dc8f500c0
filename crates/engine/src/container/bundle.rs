//! OCI runtime bundles: an image unpacked into `DIR/rootfs` with a
//! `DIR/config.json` that `runc run` accepts ([`Images::unpack_bundle`],
//! `umoci unpack`'s job), and a bundle from anywhere run under buildr's
//! sandbox ([`OciBundle`], `runc run`'s job).
//!
//! The config says what `buildr run` would do: the image's command, env,
//! working dir and user (resolved to numbers against the image's own
//! /etc/passwd and /etc/group, read inside the rootfs), new pid, mount,
//! ipc, uts, network and cgroup namespaces, runc's default mounts,
//! Docker's default capabilities and runc's masked and read-only paths.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use buildr_cache::Digest;
use buildr_exec::{Cancel, ExitStatus, Sandbox, Stream};
use buildr_oci::ExtractOptions;
use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResources,
    Mount, ProcessBuilder, RootBuilder, Spec, UserBuilder, get_default_mounts,
};

use super::create::{CreateOptions, command, environment};
use super::supervisor::{ExitInfo, proxy_signals};
use crate::error::{Error, Result};
use crate::image::layer_bytes::unpack_layer;
use crate::image::{Image, Images};

/// The OCI runtime spec version written (runc 1.1's).
pub const BUNDLE_OCI_VERSION: &str = "1.0.2";

/// What [`Images::unpack_bundle`] made.
#[derive(Debug, Clone)]
pub struct UnpackedBundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The image id (config digest).
    pub image_id: Digest,
    /// Layers applied.
    pub layers: usize,
    /// Tar entries extracted, all layers together.
    pub entries: u64,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

fn bundle_error(dir: &Path, reason: impl Into<String>) -> Error {
    Error::ContainerOption {
        message: format!("bundle {}: {}", dir.display(), reason.into()),
    }
}

impl Images {
    /// Writes an OCI runtime bundle of `image` at `dir` (which must not
    /// exist, or be an empty directory): `rootfs/` with every layer
    /// applied by the hardened extractor, then `config.json` (temp file and
    /// rename). `cmd`, when not empty, replaces the image's `Cmd` (as the
    /// arguments of `docker run IMAGE CMD...`). On error nothing of it remains.
    pub fn unpack_bundle(&self, image: &str, dir: &Path, cmd: &[String]) -> Result<UnpackedBundle> {
        let image = self.resolve(image)?;
        let made_dir = match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(bundle_error(dir, "directory is not empty"));
                }
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io_error("create bundle", dir))?;
                true
            }
            Err(e) => return Err(io_error("read bundle directory", dir)(e)),
        };
        let result = self.fill_bundle(&image, dir, cmd);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(dir.join("rootfs"));
            let _ = std::fs::remove_file(dir.join("config.json"));
            let _ = std::fs::remove_file(dir.join(".config.json.tmp"));
            if made_dir {
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }

    fn fill_bundle(&self, image: &Image, dir: &Path, cmd: &[String]) -> Result<UnpackedBundle> {
        let rootfs = dir.join("rootfs");
        std::fs::create_dir(&rootfs).map_err(io_error("create", &rootfs))?;
        let layers = &image.manifest.layers;
        let opts = ExtractOptions::default();
        let mut entries = 0;
        let diff_ids = &image.config.rootfs.diff_ids;
        for (n, layer) in layers.iter().enumerate() {
            let diff_id = diff_ids.get(n);
            entries += unpack_layer(self.store(), layer, diff_id, &rootfs, &opts)?.entries;
        }
        let spec = runtime_spec(image, &rootfs, cmd)?;
        let encode_err = |source| Error::Encode {
            what: format!("the runtime config of {}", image.id),
            source,
        };
        let mut value = serde_json::to_value(&spec).map_err(encode_err)?;
        // Capability sets are hash sets: sorted, the file is the same every time.
        if let Some(sets) = value
            .pointer_mut("/process/capabilities")
            .and_then(|c| c.as_object_mut())
        {
            for set in sets.values_mut() {
                if let Some(names) = set.as_array_mut() {
                    names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
            }
        }
        let json = serde_json::to_vec_pretty(&value).map_err(encode_err)?;
        let tmp = dir.join(".config.json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io_error("create", &tmp))?;
        file.write_all(&json)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(io_error("write", &tmp))?;
        let path = dir.join("config.json");
        std::fs::rename(&tmp, &path).map_err(io_error("rename into place", &path))?;
        Ok(UnpackedBundle {
            dir: dir.to_owned(),
            image_id: image.id,
            layers: layers.len(),
            entries,
        })
    }
}

/// The runtime config of `image` whose layers are unpacked at `rootfs`.
fn runtime_spec(image: &Image, rootfs: &Path, cmd: &[String]) -> Result<Spec> {
    let spec_err = spec_error(image);
    let mounts: Vec<Mount> = get_default_mounts()
        .into_iter()
        .filter(|m| m.destination() != Path::new("/sys/fs/cgroup"))
        .collect();
    let mut spec = Spec::default();
    spec.set_version(BUNDLE_OCI_VERSION.to_owned())
        .set_hostname(Some("buildr".to_owned()))
        .set_annotations(None)
        .set_process(Some(process(image, rootfs, cmd)?))
        .set_root(Some(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .map_err(spec_err)?,
        ))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux(image)?));
    Ok(spec)
}

/// The runtime config's error for `image`.
fn spec_error(image: &Image) -> impl Fn(oci_spec::OciSpecError) -> Error + '_ {
    move |e| Error::BadImage {
        image: image.id.to_string(),
        reason: format!("cannot build its runtime config: {e}"),
    }
}

/// The process: the image's command, environment, working directory and
/// user (resolved in the rootfs), docker's capabilities.
fn process(image: &Image, rootfs: &Path, cmd: &[String]) -> Result<oci_spec::runtime::Process> {
    let spec_err = spec_error(image);
    let defaults = CreateOptions {
        cmd: cmd.to_vec(),
        ..CreateOptions::default()
    };
    let args = command(image, &defaults).map_err(|_| Error::BadImage {
        image: image.id.to_string(),
        reason: "no command specified: it has no Entrypoint or Cmd; give one after the directory"
            .into(),
    })?;
    let env = environment(image, &defaults)?;
    let config = image.config.config.clone().unwrap_or_default();
    let cwd = config
        .working_dir
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(Error::BadImage {
            image: image.id.to_string(),
            reason: format!("WorkingDir {cwd:?} is not absolute"),
        });
    }
    let user_spec = config.user.unwrap_or_default();
    let passwd = read_in_root(rootfs, "etc/passwd");
    let group = read_in_root(rootfs, "etc/group");
    let identity =
        buildr_exec::resolve_user(&user_spec, &passwd, &group).map_err(|e| Error::BadImage {
            image: image.id.to_string(),
            reason: format!("User {user_spec:?}: {e}"),
        })?;
    let user = UserBuilder::default()
        .uid(identity.uid)
        .gid(identity.gid)
        .additional_gids(identity.process_groups());
    let caps: oci_spec::runtime::Capabilities = buildr_exec::docker_capability_names()
        .into_iter()
        .filter_map(|name| serde_json::from_value::<Capability>(name.into()).ok())
        .collect();
    // Docker's: no inheritable or ambient capabilities.
    let mut capabilities = LinuxCapabilities::default();
    capabilities
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps))
        .set_inheritable(None)
        .set_ambient(None);
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(user.build().map_err(&spec_err)?)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()
        .map_err(&spec_err)?;
    // As `buildr run`: the rlimits of the caller, none set.
    process.set_rlimits(None);
    Ok(process)
}

/// The Linux section: the namespaces `buildr run` uses, docker's masked
/// and read-only paths.
fn linux(image: &Image) -> Result<oci_spec::runtime::Linux> {
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<std::result::Result<Vec<_>, _>>()
    .map_err(spec_error(image))?;
    let mut linux = oci_spec::runtime::Linux::default();
    linux
        .set_namespaces(Some(namespaces))
        .set_resources(Some(LinuxResources::default()))
        .set_masked_paths(Some(
            buildr_exec::MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        ))
        .set_readonly_paths(Some(
            buildr_exec::READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        ));
    Ok(linux)
}

/// A file of the rootfs read with every path resolved inside it (an
/// image's symlink cannot lead to the host's /etc/passwd); empty if absent.
fn read_in_root(rootfs: &Path, rel: &str) -> String {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use std::io::Read;
    let Ok(root) = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return String::new();
    };
    let Ok(fd) = buildr_fs::rooted::open_beneath(
        &root,
        Path::new(rel),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
        return String::new();
    };
    let file = std::fs::File::from(fd);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut text = String::new();
    let _ = file.take(4 << 20).read_to_string(&mut text);
    text
}

/// An OCI runtime bundle to run under buildr's sandbox (`runc run`).
#[derive(Debug, Clone)]
pub struct OciBundle {
    inner: buildr_exec::Bundle,
}

/// How [`OciBundle::run`] connects the command.
#[derive(Debug, Clone, Default)]
pub struct BundleRunOptions {
    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 to the command.
    pub proxy_signals: bool,
    /// Pass this process's stdin to the command (else /dev/null).
    pub stdin: bool,
    /// Give the command a pty relayed to this process's stdin/stdout
    /// (what `process.terminal` asks for); raw mode is the caller's business.
    pub tty: bool,
}

impl OciBundle {
    /// Reads `dir/config.json` and checks what it asks for.
    pub fn load(dir: &Path) -> Result<OciBundle> {
        Ok(OciBundle {
            inner: buildr_exec::Bundle::load(dir)?,
        })
    }

    /// Fields of the config buildr does not apply, one line each.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// `process.terminal`.
    pub fn terminal(&self) -> bool {
        self.inner.terminal
    }

    /// The root filesystem directory.
    pub fn rootfs(&self) -> &Path {
        &self.inner.spec.rootfs.upper
    }

    /// Runs the bundle's process in the foreground until it and
    /// everything it started are gone; changes land in the rootfs.
    pub fn run(
        &self,
        options: &BundleRunOptions,
        mut on_output: impl FnMut(super::LogStream, &[u8]),
    ) -> Result<ExitInfo> {
        let mut spec = self.inner.spec.clone();
        spec.tty = options.tty;
        let mut relay = None;
        let stdin = if options.tty {
            let (started, socket) = super::tty::Relay::start()?;
            relay = Some(started);
            Some(socket)
        } else if options.stdin {
            let fd = std::io::stdin().as_fd().try_clone_to_owned();
            Some(fd.map_err(io_error("duplicate stdin for", &self.inner.dir))?)
        } else {
            None
        };
        let cancel = Cancel::new()?;
        if options.proxy_signals {
            proxy_signals(&cancel);
        }
        let forward = |stream: Stream, chunk: &[u8]| {
            let stream = match stream {
                Stream::Stdout => super::LogStream::Stdout,
                Stream::Stderr => super::LogStream::Stderr,
            };
            on_output(stream, chunk);
        };
        let sandbox = Sandbox::new();
        let result = match stdin {
            Some(fd) => sandbox.run_with_stdin(&spec, fd, &cancel, forward),
            None => sandbox.run(&spec, &cancel, forward),
        };
        if let Some(relay) = relay {
            relay.finish();
        }
        match result {
            Ok(outcome) => Ok(ExitInfo {
                exit_code: match outcome.status {
                    ExitStatus::Code(code) => code,
                    ExitStatus::Signal(signal) => 128 + signal,
                },
                oom_killed: outcome.oom_killed,
                error: None,
            }),
            Err(buildr_exec::Error::Setup(message)) => Ok(ExitInfo {
                exit_code: if message.contains("not found") || message.contains("No such file") {
                    127
                } else {
                    126
                },
                oom_killed: false,
                error: Some(message),
            }),
            Err(e) => Err(e.into()),
        }
    }
}
