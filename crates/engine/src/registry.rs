//! Registries at the engine's level: `pull`, `push`, `login`, `logout`
//! over the image store, with docker's names and semantics.
//!
//! The protocol work (auth, verification, parallel transfers) is
//! [`buildr_oci::RegistryClient`]'s; this module maps store names to
//! registry references (docker's normalization: `busybox` is
//! `docker.io/library/busybox:latest`), unpacks pulled layers into
//! snapshots so `run` and `FROM` can use them, and turns the client's blob
//! events into per-layer [`RegistryEvent`]s (the config blob is not a
//! layer and is not reported, as docker does not show it).
//!
//! Invariants: a pull sets its store name last, after every blob is
//! verified and every layer unpacked; a digest pull (`name@sha256:...`)
//! records that digest reference as the store name (docker keeps digest
//! references too), so the image stays rooted and resolvable; credentials
//! are handed to the client and to docker's `config.json`, never returned
//! in a report or an event.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use buildr_cache::{Digest, Store};
pub use buildr_oci::{ClientOptions, Credentials, RegistryConfig};
use buildr_oci::{
    DEFAULT_DOMAIN, DockerConfig, EncodedManifest, ManifestOrIndex, Platform, Progress, Reference,
    RegistryClient, SkipReason, parse_platform,
};

use crate::build::ProgressSink;
use crate::error::{Error, Result};
use crate::image::layer_bytes::distributable;
use crate::image::remote_blobs;
use crate::image::{Image, Images};

/// One step of a pull or push, per layer (docker's progress lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// Pull: the reference resolved to this manifest (or index) digest,
    /// which has `layers` layers.
    Resolved {
        reference: String,
        digest: Digest,
        layers: usize,
    },
    /// Push: the layers of the image about to be pushed.
    Preparing { layers: Vec<Digest> },
    /// A layer transfer starts ("Pulling fs layer" / "Pushing").
    LayerStart { digest: Digest, size: u64 },
    /// Bytes of a layer transferred so far.
    LayerBytes {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// A layer is transferred and verified ("Download complete" / "Pushed").
    LayerDone { digest: Digest },
    /// Pull: the layer blob is already in the store ("Already exists").
    /// Push: the repository has it ("Layer already exists").
    LayerExists { digest: Digest },
    /// Push: the layer was mounted from another repository of the registry.
    LayerMounted { digest: Digest },
    /// Pull: the layer is unpacked into its snapshot ("Pull complete").
    LayerUnpacked { digest: Digest },
}

/// When [`Registry::ensure`] (and the build's `FROM`) contacts a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Use the local image; pull only when it is missing (docker's default).
    #[default]
    Missing,
    /// Always pull (`build --pull`); blobs already stored are not fetched.
    Always,
    /// Never contact a registry.
    Never,
}

/// Options of [`Registry::pull`].
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `os/arch[/variant]`; `None` is the host's.
    pub platform: Option<String>,
    /// Where the pull's [`RegistryEvent`]s go.
    pub progress: Option<ProgressSink<RegistryEvent>>,
    /// Leave the layers in the registry: the image is tagged with its
    /// manifest and config, and each layer is fetched the first time
    /// something reads it (a build's `FROM` whose steps all come from a
    /// cache reads none). A layer the store has is used as it is.
    pub lazy: bool,
}

/// What [`Registry::pull`] did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The normalized reference pulled (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The store name set: the reference, or `repo@sha256:...` for a digest pull.
    pub name: String,
    /// The digest the reference resolved to (the index's, for an index):
    /// docker's `Digest:` line.
    pub digest: Digest,
    /// The image, read back from the store.
    pub image: Image,
    /// Whether anything changed: `false` when the name already pointed at
    /// this image and no blob had to be fetched ("Image is up to date").
    pub downloaded: bool,
    pub blobs_fetched: usize,
    pub bytes_fetched: u64,
}

/// Options of [`Registry::push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Where the push's [`RegistryEvent`]s go.
    pub progress: Option<ProgressSink<RegistryEvent>>,
}

/// What [`Registry::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The normalized reference pushed (`127.0.0.1:5000/x:v1`).
    pub reference: String,
    /// Its tag (docker's `v1: digest: ... size: ...` line).
    pub tag: String,
    /// The manifest digest and size.
    pub digest: Digest,
    pub size: u64,
    pub uploaded: usize,
    pub bytes_uploaded: u64,
    pub existing: usize,
    pub mounted: usize,
}

/// Pull, push, login and logout. Cheap to clone; tokens are cached for its
/// life.
#[derive(Debug, Clone)]
pub struct Registry {
    client: RegistryClient,
    docker_config: Option<PathBuf>,
}

impl Registry {
    /// A registry client with explicit options; `login`/`logout` use
    /// docker's default `config.json` unless [`Registry::docker_config`]
    /// says otherwise.
    pub fn new(options: ClientOptions) -> Registry {
        Registry {
            client: RegistryClient::new(options),
            docker_config: None,
        }
    }

    /// The registry config file (mirrors, insecure registries) and docker's
    /// `config.json` credentials from their usual places.
    pub fn from_env() -> Result<Registry> {
        Ok(Registry::new(ClientOptions::from_env()?))
    }

    /// The client underneath, for what is not an image (a build cache).
    pub(crate) fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Where `login` and `logout` store credentials.
    pub fn docker_config(mut self, path: impl Into<PathBuf>) -> Registry {
        self.docker_config = Some(path.into());
        self
    }

    /// Pulls `reference` (docker's syntax) into the store of `images`, unpacks
    /// its layers into snapshots and points the store name at it.
    pub fn pull(&self, images: &Images, reference: &str, opts: &PullOptions) -> Result<PullReport> {
        let parsed = Reference::parse(reference)?;
        let store = images.store();
        let name = store_name(&parsed);
        let platform = opts
            .platform
            .as_deref()
            .map(parse_platform)
            .transpose()
            .map_err(|e| Error::BadReference {
                reference: opts.platform.clone().unwrap_or_default(),
                reason: format!("invalid platform: {e}"),
            })?;
        let fail = |e| registry_error("pull", parsed.to_string(), e);

        // Resolve first, so progress can tell layers from the config, then
        // pull exactly what was resolved (pinned by digest).
        let top = self.client.fetch_manifest(&parsed).map_err(fail)?;
        let layers = self.layers_of(&parsed, &top, platform.as_ref())?;
        emit(
            &opts.progress,
            RegistryEvent::Resolved {
                reference: parsed.to_string(),
                digest: top.digest,
                layers: layers.len(),
            },
        );
        let pinned = Reference::parse(&format!("{}@{}", parsed.repository(), top.digest))?;
        // Blobs are unrooted until the name is set: keep prune out until then.
        let _lease = store.lease()?;
        let previous = store.get_tag(&name)?;
        let had_manifest = store.has_blob(&top.digest)?;
        let client_opts = buildr_oci::PullOptions {
            platform: platform.clone(),
            tag: None,
            no_tag: true,
            config_only: opts.lazy,
            progress: opts
                .progress
                .clone()
                .map(|p| layer_filter(p, layers.clone(), Direction::Pull)),
        };
        let pulled = self
            .client
            .pull(store, &pinned, &client_opts)
            .map_err(fail)?;
        // A single-platform image must be the platform asked for (docker
        // refuses the mismatch too); an index was resolved by the client.
        if let Some(want) = &platform
            && pulled.index_digest.is_none()
            && (pulled.config.os != want.os || pulled.config.architecture != want.architecture)
        {
            return Err(fail(buildr_oci::Error::NoPlatform {
                reference: parsed.to_string(),
                platform: opts.platform.clone().unwrap_or_default(),
                available: format!("{}/{}", pulled.config.os, pulled.config.architecture),
            }));
        }
        let mut image = images.read_image(&pulled.manifest_digest, &name)?;
        if opts.lazy {
            let source = remote_blobs::BlobSource::Registry {
                repository: parsed.repository(),
            };
            for layer in &image.manifest.layers {
                if !crate::image::layer_bytes::layer_local(store, layer)? {
                    remote_blobs::remember(store, &layer.digest, &source)?;
                }
            }
        } else {
            crate::image::ensure_snapshots(store, &image, |digest| {
                emit(&opts.progress, RegistryEvent::LayerUnpacked { digest })
            })?;
        }
        store.set_tag(&name, &pulled.manifest_digest)?;
        crate::events::emit(
            store.root(),
            crate::events::image_event("pull", &parsed.to_string(), &name),
        );
        image.names = vec![name.clone()];
        Ok(PullReport {
            reference: parsed.to_string(),
            downloaded: pulled.blobs_fetched > 0
                || !had_manifest
                || (parsed.digest().is_none() && previous != Some(pulled.manifest_digest)),
            name,
            digest: top.digest,
            image,
            blobs_fetched: pulled.blobs_fetched,
            bytes_fetched: pulled.bytes_fetched,
        })
    }

    /// The layer digests of the manifest `top` is, or of the one an index
    /// `top` holds for `platform`.
    fn layers_of(
        &self,
        reference: &Reference,
        top: &buildr_oci::FetchedManifest,
        platform: Option<&Platform>,
    ) -> Result<BTreeSet<Digest>> {
        let what = format!("manifest {} of {reference}", top.digest);
        let index = match ManifestOrIndex::decode(&top.bytes, top.media_type.as_deref(), &what)? {
            ManifestOrIndex::Manifest(m) => {
                return Ok(m.layers.iter().map(|l| l.digest).collect());
            }
            ManifestOrIndex::Index(index) => index,
        };
        let want = platform.cloned().unwrap_or_else(buildr_oci::host_platform);
        // The client reports a missing platform with the list of those
        // available; let it, by returning no layers here.
        let Some(chosen) = index.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform_matches(&want, p))
        }) else {
            return Ok(BTreeSet::new());
        };
        let child = Reference::parse(&format!("{}@{}", reference.repository(), chosen.digest))?;
        let fetched = self
            .client
            .fetch_manifest(&child)
            .map_err(|e| registry_error("pull", child.to_string(), e))?;
        let what = format!("manifest {} of {reference}", fetched.digest);
        match ManifestOrIndex::decode(&fetched.bytes, fetched.media_type.as_deref(), &what)? {
            ManifestOrIndex::Manifest(m) => Ok(m.layers.iter().map(|l| l.digest).collect()),
            ManifestOrIndex::Index(_) => Ok(BTreeSet::new()),
        }
    }

    /// Pushes the image the store name `reference` points at to the
    /// registry that name designates. The tag moves last.
    pub fn push(&self, images: &Images, reference: &str, opts: &PushOptions) -> Result<PushReport> {
        let parsed = Reference::parse(reference)?;
        if parsed.digest().is_some() {
            return Err(Error::BadReference {
                reference: reference.to_owned(),
                reason: "cannot push a digest reference: push a tag".to_owned(),
            });
        }
        let name = parsed.to_string();
        let store = images.store();
        let Some(manifest) = store.get_tag(&name)? else {
            return Err(Error::ImageNotFound { reference: name });
        };
        // The blobs must stay while they are read, even if the tag goes.
        let _lease = store.lease()?;
        let image = images.read_image(&manifest, &name)?;
        // Layers a build kept only as snapshots go out compressed (made
        // once, then kept), under a manifest that names those blobs: the
        // pushed digest differs from the local one, as with dockerd.
        let compression = crate::build::LayerCompression::default().options();
        let (manifest, layers) = match distributable(store, &image.manifest, &compression)? {
            Some(pushed) => {
                let encoded = EncodedManifest::encode(&pushed)?;
                let blob = store.put_blob(&encoded.bytes)?;
                (blob.digest, pushed.layers)
            }
            None => (manifest, image.manifest.layers),
        };
        // Layers a cached build left in its cache's repository are mounted
        // from there when it is on this registry, else fetched first.
        let mut mount_from = remote_blobs::mount_sources(store, parsed.domain(), &layers)?;
        mount_from.extend(mount_sources(store, &parsed)?);
        let layers: Vec<Digest> = layers.iter().map(|l| l.digest).collect();
        emit(
            &opts.progress,
            RegistryEvent::Preparing {
                layers: layers.clone(),
            },
        );
        let fetch_store = store.clone();
        let fetch_missing: buildr_oci::FetchMissingFn =
            Arc::new(move |desc| remote_blobs::ensure_blob(&fetch_store, desc).map_err(Into::into));
        let client_opts = buildr_oci::PushOptions {
            mount_from,
            fetch_missing: Some(fetch_missing),
            progress: opts
                .progress
                .clone()
                .map(|p| layer_filter(p, layers.iter().copied().collect(), Direction::Push)),
            ..buildr_oci::PushOptions::default()
        };
        let report = self
            .client
            .push(store, &manifest, &parsed, &client_opts)
            .map_err(|e| registry_error("push", name.clone(), e))?;
        Ok(PushReport {
            tag: parsed.tag().unwrap_or("latest").to_owned(),
            reference: name,
            digest: report.digest,
            size: report.size,
            uploaded: report.uploaded,
            bytes_uploaded: report.bytes_uploaded,
            existing: report.existing,
            mounted: report.mounted,
        })
    }

    /// Makes sure the image `reference` is in the store, pulling it per
    /// `policy`; what `FROM` and `run` call.
    pub fn ensure(
        &self,
        images: &Images,
        reference: &str,
        policy: PullPolicy,
        opts: &PullOptions,
    ) -> Result<Image> {
        match local_image(images, reference, opts.platform.as_deref(), policy)? {
            Some(image) => Ok(image),
            None => Ok(self.pull(images, reference, opts)?.image),
        }
    }

    /// Checks `creds` against `server` (default Docker Hub) and stores them
    /// in docker's `config.json` (or its credential helper). Returns the
    /// registry host as stored (`docker.io`, `host:5000`).
    pub fn login(&self, server: Option<&str>, creds: &Credentials) -> Result<String> {
        let host = server_host(server)?;
        self.client
            .check_login(&host, creds)
            .map_err(|e| registry_error("log in to", host.clone(), e))?;
        let mut config = self.load_docker_config()?;
        config.login(&host, creds)?;
        Ok(host)
    }

    /// Forgets the credentials stored for `server` (default Docker Hub).
    /// Returns the host and whether there were any.
    pub fn logout(&self, server: Option<&str>) -> Result<(String, bool)> {
        let host = server_host(server)?;
        let mut config = self.load_docker_config()?;
        let had = config.logout(&host)?;
        Ok((host, had))
    }

    fn load_docker_config(&self) -> Result<DockerConfig> {
        Ok(match &self.docker_config {
            Some(path) => DockerConfig::load(path)?,
            None => DockerConfig::load_default()?,
        })
    }
}

/// The normalized repository of an image name
/// (`busybox:1` -> `docker.io/library/busybox`), as `push` names it.
pub fn repository_name(reference: &str) -> Result<String> {
    Ok(Reference::parse(reference)?.repository())
}

/// What the build's `FROM` calls: the image `reference` from the store, or
/// pulled per `policy` (registry settings and credentials from their usual
/// places, see [`Registry::from_env`]); `platform` is `os/arch[/variant]`.
/// A registry is contacted only when the policy requires it; the pull's
/// report comes back when it was. `lazy` pulls leave the layers in the
/// registry until read ([`PullOptions::lazy`]).
pub(crate) fn ensure_image(
    images: &Images,
    reference: &str,
    platform: Option<&str>,
    policy: PullPolicy,
    progress: Option<ProgressSink<RegistryEvent>>,
    lazy: bool,
) -> Result<(Image, Option<PullReport>)> {
    if let Some(image) = local_image(images, reference, platform, policy)? {
        return Ok((image, None));
    }
    let opts = PullOptions {
        platform: platform.map(str::to_owned),
        progress,
        lazy,
    };
    let report = Registry::from_env()?.pull(images, reference, &opts)?;
    Ok((report.image.clone(), Some(report)))
}

/// The local image to use under `policy`: `Ok(None)` means pull;
/// [`PullPolicy::Never`] without a fitting local image is an error.
fn local_image(
    images: &Images,
    reference: &str,
    platform: Option<&str>,
    policy: PullPolicy,
) -> Result<Option<Image>> {
    if policy != PullPolicy::Always
        && let Some(image) = resolve_local(images, reference)?
        && platform_fits(&image, platform)
    {
        return Ok(Some(image));
    }
    if policy == PullPolicy::Never {
        return Err(Error::ImageNotFound {
            reference: reference.to_owned(),
        });
    }
    Ok(None)
}

/// The image `reference` names in the store, if any: a tag, a digest
/// reference recorded by a digest pull, or anything `Images::resolve` takes.
fn resolve_local(images: &Images, reference: &str) -> Result<Option<Image>> {
    if let Ok(parsed) = Reference::parse(reference)
        && parsed.digest().is_some()
    {
        let name = store_name(&parsed);
        if let Some(manifest) = images.store().get_tag(&name)? {
            let mut image = images.read_image(&manifest, &name)?;
            image.names = vec![name];
            return Ok(Some(image));
        }
    }
    match images.resolve(reference) {
        Ok(image) => Ok(Some(image)),
        Err(Error::ImageNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a local image is for `platform` (any, when none is asked).
fn platform_fits(image: &Image, platform: Option<&str>) -> bool {
    let Some(want) = platform.and_then(|p| parse_platform(p).ok()) else {
        return true;
    };
    image.config.os == want.os && image.config.architecture == want.architecture
}

/// The store name of a pulled reference: `domain/path:tag`, or
/// `domain/path@sha256:...` when it pins a digest.
fn store_name(reference: &Reference) -> String {
    match reference.digest() {
        Some(digest) => format!("{}@{digest}", reference.repository()),
        None => reference.to_string(),
    }
}

/// The registry host `login`/`logout` act on: docker accepts `host[:port]`,
/// a URL (`https://host/v1/`) and Docker Hub's historical names.
fn server_host(server: Option<&str>) -> Result<String> {
    let Some(server) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_DOMAIN.to_owned());
    };
    let bare = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = bare
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !valid {
        return Err(Error::BadReference {
            reference: server.to_owned(),
            reason: "not a registry host".to_owned(),
        });
    }
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_DOMAIN.to_owned()
        }
        _ => host,
    })
}

/// Other repositories of the same registry in the store: mount sources for
/// a push (a blob pulled from one of them need not be uploaded again).
pub(crate) fn mount_sources(store: &Store, target: &Reference) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in store.list_tags()?.keys() {
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        if r.domain() == target.domain()
            && r.path() != target.path()
            && !out.iter().any(|p| p == r.path())
        {
            out.push(r.path().to_owned());
        }
    }
    // Each refused mount costs a request per blob: try a few.
    out.truncate(4);
    Ok(out)
}

#[derive(Clone, Copy)]
enum Direction {
    Pull,
    Push,
}

/// Turns the client's blob events into layer events, dropping the
/// config's and the manifests'.
fn layer_filter(
    progress: ProgressSink<RegistryEvent>,
    layers: BTreeSet<Digest>,
    direction: Direction,
) -> buildr_oci::ProgressFn {
    Arc::new(move |p: &Progress| {
        let event = match p {
            Progress::BlobStart { digest, size } if layers.contains(digest) => {
                RegistryEvent::LayerStart {
                    digest: *digest,
                    size: *size,
                }
            }
            Progress::BlobBytes {
                digest,
                done,
                total,
            } if layers.contains(digest) => RegistryEvent::LayerBytes {
                digest: *digest,
                done: *done,
                total: *total,
            },
            Progress::BlobDone { digest } if layers.contains(digest) => {
                RegistryEvent::LayerDone { digest: *digest }
            }
            Progress::BlobSkipped { digest, why } if layers.contains(digest) => {
                match (why, direction) {
                    (SkipReason::Mounted, Direction::Push) => {
                        RegistryEvent::LayerMounted { digest: *digest }
                    }
                    _ => RegistryEvent::LayerExists { digest: *digest },
                }
            }
            _ => return,
        };
        progress.emit(event);
    })
}

fn registry_error(operation: &'static str, reference: String, source: buildr_oci::Error) -> Error {
    Error::Registry {
        operation,
        reference,
        source: Box::new(source),
    }
}

fn emit(progress: &Option<ProgressSink<RegistryEvent>>, event: RegistryEvent) {
    if let Some(p) = progress {
        p.emit(event);
    }
}

/// Docker's platform match: os and architecture equal; a variant, when
/// asked, equal after defaults (`arm64` is `v8`, `arm` is `v7`).
fn platform_matches(want: &Platform, have: &Platform) -> bool {
    if want.os != have.os || want.architecture != have.architecture {
        return false;
    }
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_owned()),
        ("arm", None) => Some("v7".to_owned()),
        (_, v) => v.map(str::to_owned),
    };
    want.variant.is_none() || variant(want) == variant(have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_follow_docker_normalization() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let cases = [
            ("busybox", "docker.io/library/busybox:latest".to_owned()),
            ("user/app:1", "docker.io/user/app:1".to_owned()),
            ("127.0.0.1:5000/x:v1", "127.0.0.1:5000/x:v1".to_owned()),
            (
                &*format!("127.0.0.1:5000/x@{digest}"),
                format!("127.0.0.1:5000/x@{digest}"),
            ),
            (
                &*format!("busybox:1@{digest}"),
                format!("docker.io/library/busybox@{digest}"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                store_name(&Reference::parse(input).unwrap()),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn login_servers_are_hosts() {
        let cases = [
            (None, Some("docker.io")),
            (Some(""), Some("docker.io")),
            (Some("https://index.docker.io/v1/"), Some("docker.io")),
            (Some("registry-1.docker.io"), Some("docker.io")),
            (Some("127.0.0.1:5000"), Some("127.0.0.1:5000")),
            (Some("http://Reg.Example:443/v2/"), Some("reg.example:443")),
            (Some("[::1]:5000"), Some("[::1]:5000")),
            (Some("bad host"), None),
            (Some("https:///x"), None),
        ];
        for (input, want) in cases {
            assert_eq!(server_host(input).ok().as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn ensure_contacts_a_registry_only_when_the_policy_says() {
        let dir = tempfile::tempdir().unwrap();
        let images = Images::open(dir.path().join("root")).unwrap();
        // Nothing listens on port 1: a pull fails at once.
        let registry = Registry::new(ClientOptions {
            max_tries: 1,
            ..ClientOptions::default()
        });
        let opts = PullOptions::default();
        let never = registry.ensure(&images, "127.0.0.1:1/x:1", PullPolicy::Never, &opts);
        assert!(
            matches!(never, Err(Error::ImageNotFound { .. })),
            "{never:?}"
        );
        for policy in [PullPolicy::Missing, PullPolicy::Always] {
            let pulled = registry.ensure(&images, "127.0.0.1:1/x:1", policy, &opts);
            match pulled {
                Err(Error::Registry {
                    operation,
                    reference,
                    ..
                }) => {
                    assert_eq!((operation, reference.as_str()), ("pull", "127.0.0.1:1/x:1"));
                }
                other => panic!("{policy:?}: {other:?}"),
            }
        }
        assert!(images.store().list_tags().unwrap().is_empty());

        // A local image is used as is (no registry is contacted for
        // `Missing`), unless another platform is asked for.
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        tar.append_data(&mut header, "hello", &b"hi"[..]).unwrap();
        let rootfs = tar.into_inner().unwrap();
        let imported = images
            .import(
                &rootfs[..],
                &crate::image::ImportOptions::new("127.0.0.1:1/x:1", "t"),
            )
            .unwrap();
        let host = format!("linux/{}", crate::image::host_architecture());
        let opts = PullOptions {
            platform: Some(host),
            progress: None,
            lazy: false,
        };
        let local = registry.ensure(&images, "127.0.0.1:1/x:1", PullPolicy::Missing, &opts);
        assert_eq!(local.unwrap().id, imported.id);
        let other = PullOptions {
            platform: Some("linux/s390x".to_owned()),
            progress: None,
            lazy: false,
        };
        let pulled = registry.ensure(&images, "127.0.0.1:1/x:1", PullPolicy::Missing, &other);
        assert!(matches!(pulled, Err(Error::Registry { .. })), "{pulled:?}");
        let always = registry.ensure(&images, "127.0.0.1:1/x:1", PullPolicy::Always, &opts);
        assert!(matches!(always, Err(Error::Registry { .. })), "{always:?}");
    }

    #[test]
    fn platforms_match_like_docker() {
        let p = |s: &str| parse_platform(s).unwrap();
        assert!(platform_matches(&p("linux/arm64"), &p("linux/arm64/v8")));
        assert!(platform_matches(&p("linux/arm64/v8"), &p("linux/arm64")));
        assert!(!platform_matches(&p("linux/arm/v6"), &p("linux/arm")));
        assert!(!platform_matches(&p("linux/amd64"), &p("linux/arm64")));
        assert!(!platform_matches(&p("windows/amd64"), &p("linux/amd64")));
    }

    #[test]
    fn only_layer_events_pass_the_filter() {
        let (tx, seen) = std::sync::mpsc::channel();
        let progress = ProgressSink::from(tx);
        let layer = Digest::of(b"layer");
        let config = Digest::of(b"config");
        let f = layer_filter(progress, [layer].into(), Direction::Push);
        f(&Progress::BlobStart {
            digest: config,
            size: 1,
        });
        f(&Progress::BlobStart {
            digest: layer,
            size: 5,
        });
        f(&Progress::BlobSkipped {
            digest: layer,
            why: SkipReason::Mounted,
        });
        f(&Progress::ManifestPushed {
            digest: config,
            target: "x".into(),
        });
        drop(f);
        assert_eq!(
            seen.iter().collect::<Vec<_>>(),
            [
                RegistryEvent::LayerStart {
                    digest: layer,
                    size: 5
                },
                RegistryEvent::LayerMounted { digest: layer },
            ]
        );
    }
}
