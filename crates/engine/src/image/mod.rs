//! Images over the store: list, tag, remove, inspect, save, load, import,
//! prune and disk usage, with docker's semantics.
//!
//! An image is a tag (`docker.io/library/busybox:latest`, normalized by
//! [`Reference`]) pointing at a manifest blob; its id is the digest of its
//! config blob, as docker shows it. Tags are the only image roots: an image
//! that loses its last tag is garbage for [`Images::prune`], and its blobs
//! are removed only there (never by `remove`), so a concurrent reader never
//! sees a half-removed image.

mod filter;
mod history;
mod import;
mod inspect;
pub(crate) mod layer_bytes;
mod list;
mod load;
pub(crate) mod remote_blobs;
mod save;
mod size;
pub(crate) mod time;
mod unpack;

pub(crate) use unpack::ensure_snapshots;

use std::collections::BTreeMap;
use std::path::PathBuf;

use buildr_cache::Store;
use buildr_oci::{
    DEFAULT_JSON_CAP, ImageConfig, Index, Manifest, ManifestOrIndex, Reference, media_type,
};

use crate::error::{Error, Result};

pub use buildr_cache::{Digest, PruneReport};
pub use filter::{ImageFilters, LabelFilter};
pub use history::HistoryEntry;
pub use import::{ImportOptions, Imported};
pub use inspect::{ImageInspect, InspectDescriptor, InspectMetadata, InspectRootFs};
pub use list::{DiskUsageRow, ImageSummary, PruneImagesOptions, SystemDf, format_size};
pub use load::{LoadReport, LoadedImage};
pub use save::{ArchiveFormat, SaveOptions};

/// The default store root (`/var/lib/buildr` for root, else under
/// `$XDG_DATA_HOME` or `$HOME`, also for a rootless command running as
/// root in its user's namespace).
pub fn default_root() -> Result<PathBuf> {
    Ok(buildr_cache::default_root_for(
        !buildr_exec::rootless::is_rootless(),
    )?)
}

/// The image commands over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Images {
    store: Store,
}

/// One image as found in the store: its manifest, config and names.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image id: the digest of the config blob.
    pub id: Digest,
    /// The digest and size of the (single-platform) manifest.
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    /// The media type of that manifest.
    pub manifest_media_type: String,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// Every tag (normalized) that resolves to this image id, sorted.
    pub names: Vec<String>,
}

impl Image {
    /// The compressed content size: config plus layer blobs.
    pub fn content_size(&self) -> u64 {
        self.manifest
            .layers
            .iter()
            .fold(self.manifest.config.size, |sum, l| {
                sum.saturating_add(l.size)
            })
    }
}

impl Images {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Images> {
        Ok(Images {
            store: Store::open(root)?,
        })
    }

    /// Uses an already opened store.
    pub fn with_store(store: Store) -> Images {
        Images { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every tagged image, one entry per distinct id, names grouped.
    pub(crate) fn all(&self) -> Result<Vec<Image>> {
        let mut by_manifest: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for (name, manifest) in self.store.list_tags()? {
            by_manifest.entry(manifest).or_default().push(name);
        }
        let mut by_id: BTreeMap<Digest, Image> = BTreeMap::new();
        for (manifest, names) in by_manifest {
            let image = self.read_image(&manifest, &names[0])?;
            match by_id.get_mut(&image.id) {
                Some(existing) => existing.names.extend(names),
                None => {
                    let mut image = image;
                    image.names = names;
                    by_id.insert(image.id, image);
                }
            }
        }
        Ok(by_id
            .into_values()
            .map(|mut image| {
                image.names.sort();
                image
            })
            .collect())
    }

    /// Reads the image a manifest (or index, resolved to the host
    /// platform) digest names. `names` is left empty.
    pub(crate) fn read_image(&self, digest: &Digest, what: &str) -> Result<Image> {
        let (digest, size, media, manifest) = self.read_manifest(digest, what, 0)?;
        let config_bytes = self
            .store
            .read_blob(&manifest.config.digest, DEFAULT_JSON_CAP)?;
        let config: ImageConfig = buildr_oci::decode_json_capped(
            &config_bytes[..],
            DEFAULT_JSON_CAP,
            &format!("config {} of {what}", manifest.config.digest),
        )?;
        Ok(Image {
            id: manifest.config.digest,
            manifest_digest: digest,
            manifest_size: size,
            manifest_media_type: media,
            manifest,
            config,
            names: Vec::new(),
        })
    }

    fn read_manifest(
        &self,
        digest: &Digest,
        what: &str,
        depth: u32,
    ) -> Result<(Digest, u64, String, Manifest)> {
        let bytes = self.store.read_blob(digest, DEFAULT_JSON_CAP)?;
        let label = format!("manifest {digest} of {what}");
        match ManifestOrIndex::decode(&bytes, None, &label)? {
            ManifestOrIndex::Manifest(manifest) => {
                let media = manifest
                    .media_type
                    .clone()
                    .unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
                Ok((*digest, bytes.len() as u64, media, *manifest))
            }
            ManifestOrIndex::Index(index) => {
                if depth > 0 {
                    return Err(Error::BadImage {
                        image: what.to_owned(),
                        reason: format!("index {digest} nests another index"),
                    });
                }
                let chosen = pick_platform(&index).ok_or_else(|| Error::BadImage {
                    image: what.to_owned(),
                    reason: format!(
                        "index {digest} has no manifest for linux/{}",
                        host_architecture()
                    ),
                })?;
                self.read_manifest(&chosen, what, depth + 1)
            }
        }
    }

    /// The bytes of a layer of a stored image as its descriptor names them:
    /// the blob, or, for a layer a build kept only as its snapshot (an
    /// uncompressed tar whose digest is its diff id), the tar made again
    /// from the snapshot and checked against the digest as it streams.
    pub fn open_layer(
        &self,
        layer: &buildr_oci::Descriptor,
    ) -> Result<Box<dyn std::io::Read + Send>> {
        layer_bytes::open_layer(&self.store, layer)
    }

    /// Resolves a user's image argument as docker does: a name (normalized,
    /// `:latest` added), `name@sha256:...`, a full `sha256:<id>` or an id
    /// prefix.
    pub fn resolve(&self, input: &str) -> Result<Image> {
        let not_found = || Error::ImageNotFound {
            reference: input.to_owned(),
        };
        if let Ok(reference) = Reference::parse(input)
            && let Some(image) = self.resolve_name(&reference)?
        {
            return Ok(image);
        }
        let prefix = match input.strip_prefix("sha256:") {
            Some(hex) => hex,
            None => input,
        };
        let is_hex = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_hex {
            return Err(not_found());
        }
        let mut matches: Vec<Image> = self
            .all()?
            .into_iter()
            .filter(|image| image.id.hex().starts_with(prefix))
            .collect();
        match matches.len() {
            0 => Err(not_found()),
            1 => Ok(matches.remove(0)),
            count => Err(Error::AmbiguousImage {
                prefix: input.to_owned(),
                count,
            }),
        }
    }

    fn resolve_name(&self, reference: &Reference) -> Result<Option<Image>> {
        let tags = self.store.list_tags()?;
        let manifest = match (reference.tag(), reference.digest()) {
            (_, Some(digest)) => {
                let repo = reference.repository();
                let known = tags
                    .iter()
                    .any(|(name, m)| *m == digest && repo_of(name) == repo);
                if !known {
                    return Ok(None);
                }
                digest
            }
            (Some(_), None) => match tags.get(&reference.to_string()) {
                Some(d) => *d,
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        let mut image = self.read_image(&manifest, &reference.to_string())?;
        image.names = self.names_of(&tags, &image.id)?;
        Ok(Some(image))
    }

    /// The tags whose image has config digest `id`.
    fn names_of(&self, tags: &BTreeMap<String, Digest>, id: &Digest) -> Result<Vec<String>> {
        let mut ids: BTreeMap<Digest, Digest> = BTreeMap::new();
        let mut names = Vec::new();
        for (name, manifest) in tags {
            let image_id = match ids.get(manifest) {
                Some(i) => *i,
                None => {
                    let i = self.read_image(manifest, name)?.id;
                    ids.insert(*manifest, i);
                    i
                }
            };
            if image_id == *id && !name.contains('@') {
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    /// The digest pins (`repo@sha256:...`, recorded by pulls by digest) of
    /// the image with config digest `id`: docker's RepoDigests.
    pub(crate) fn pins_of(&self, id: &Digest) -> Result<Vec<String>> {
        let mut pins = Vec::new();
        for (name, manifest) in self.store.list_tags()? {
            if name.contains('@') && self.read_image(&manifest, &name)?.id == *id {
                pins.push(name);
            }
        }
        Ok(pins)
    }

    /// Points `target` at the image `source` resolves to (docker `tag`).
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let image = self.resolve(source)?;
        let name = tag_name(target)?;
        self.store.set_tag(&name, &image.manifest_digest)?;
        self.emit("tag", &image.id, &name);
        Ok(())
    }

    /// Removes a name, or every name of an image given by id (docker
    /// `rmi`). Given by id, an image with several names needs `force`.
    /// Returns the names removed (normalized). Blobs stay until
    /// [`Images::prune`].
    ///
    /// As docker, an image a container (running or stopped) was created
    /// from keeps its last tag unless `force`; given by id it is refused
    /// (and, for a running container, even with `force`). Untagged with
    /// `force`, its content stays for the container until it is removed.
    pub fn remove(&self, input: &str, force: bool) -> Result<Vec<String>> {
        let containers = crate::container::Containers::open(self.store.root())?;
        let user_of = |id: &Digest| -> Result<Option<crate::container::Container>> {
            let id = id.to_string();
            let users = containers
                .list()?
                .into_iter()
                .filter(|c| c.config.image_id == id);
            // A running user first: it decides whether force may help.
            Ok(users.max_by_key(|c| c.is_active()))
        };
        if let Ok(reference) = Reference::parse(input) {
            // A tag, or a digest pin recorded by a pull by digest.
            let name = reference.to_string();
            if let Some(manifest) = self.store.get_tag(&name)? {
                let image = self.read_image(&manifest, &name)?;
                let tags = self.store.list_tags()?;
                let last = self.names_of(&tags, &image.id)?.len() <= 1;
                if !force
                    && last
                    && let Some(user) = user_of(&image.id)?
                {
                    return Err(Error::ImageInUse {
                        reason: format!(
                            "unable to remove repository reference {input:?} (must force) - container {} is using its referenced image {}",
                            user.short_id(),
                            short_id(&image.id)
                        ),
                    });
                }
                self.store.remove_tag(&name)?;
                self.emit("untag", &image.id, &name);
                if last {
                    self.emit("delete", &image.id, &name);
                }
                return Ok(vec![name]);
            }
        }
        let image = self.resolve(input)?;
        if let Some(user) = user_of(&image.id)? {
            let running = user.is_active();
            let forced = if running {
                "cannot be forced"
            } else {
                "must be forced"
            };
            if running || !force {
                return Err(Error::ImageInUse {
                    reason: format!(
                        "unable to delete {} ({forced}) - image is being used by {} container {}",
                        short_id(&image.id),
                        if running { "running" } else { "stopped" },
                        user.short_id()
                    ),
                });
            }
        }
        if image.names.len() > 1 && !force {
            return Err(Error::ImageConflict {
                id: short_id(&image.id),
            });
        }
        let mut removed = Vec::new();
        for name in &image.names {
            if self.store.remove_tag(name)?.is_some() {
                self.emit("untag", &image.id, name);
                removed.push(name.clone());
            }
        }
        if let Some(name) = removed.last() {
            self.emit("delete", &image.id, name);
        }
        Ok(removed)
    }

    /// Records an image event (`events`) about image `id` under `name`.
    pub(crate) fn emit(&self, action: &str, id: &Digest, name: &str) {
        let event = crate::events::image_event(action, &id.to_string(), name);
        crate::events::emit(self.store.root(), event);
    }
}

/// Normalizes a name to be tagged: `busybox` -> `docker.io/library/busybox:latest`.
/// Digest references cannot be tags.
pub(crate) fn tag_name(input: &str) -> Result<String> {
    let reference = Reference::parse(input)?;
    if reference.digest().is_some() {
        return Err(Error::BadReference {
            reference: input.to_owned(),
            reason: "refusing to create a tag with a digest reference".to_owned(),
        });
    }
    Ok(reference.to_string())
}

/// `docker.io/library/busybox:latest` -> `busybox:latest`, as docker shows
/// names; other registries and namespaces stay.
pub fn familiar_name(name: &str) -> String {
    let rest = match name.strip_prefix("docker.io/") {
        Some(rest) => rest,
        None => return name.to_owned(),
    };
    match rest.strip_prefix("library/") {
        Some(short) if !short.contains('/') => short.to_owned(),
        _ => rest.to_owned(),
    }
}

/// `repo:tag` -> `repo` for a normalized tag name (the tag follows the
/// last `:` after the last `/`).
pub(crate) fn repo_of(name: &str) -> &str {
    split_tag(name).0
}

/// Splits a normalized tag name into repository and tag; a digest pin
/// (`repo@sha256:...`) has the tag `<none>`, as docker shows it.
pub(crate) fn split_tag(name: &str) -> (&str, &str) {
    if let Some((repo, _digest)) = name.split_once('@') {
        return (repo, "<none>");
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, ""),
    }
}

/// A config, manifest or index as JSON bytes; serializing our own types
/// cannot fail in practice, but a failure is an error, never a panic.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Encode {
        what: "a new image's config or manifest".to_owned(),
        source,
    })
}

/// The 12-hex-digit short id docker prints.
pub(crate) fn short_id(id: &Digest) -> String {
    id.hex()[..12].to_owned()
}

/// The host's architecture in GOARCH terms, as image configs name it.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The manifest of an index for linux on this host's architecture, or the
/// only manifest of a one-entry index.
pub(crate) fn pick_platform(index: &Index) -> Option<Digest> {
    let arch = host_architecture();
    let manifests: Vec<_> = index
        .manifests
        .iter()
        .filter(|d| {
            matches!(
                d.media_type.as_str(),
                media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST
            )
        })
        .collect();
    if let Some(d) = manifests.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    }) {
        return Some(d.digest);
    }
    match manifests.as_slice() {
        [only] if only.platform.is_none() => Some(only.digest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names_match_docker() {
        let cases = [
            ("docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/myuser/app:1", "myuser/app:1"),
            ("docker.io/library/a/b:1", "library/a/b:1"),
            ("localhost:5000/x:y", "localhost:5000/x:y"),
            ("ghcr.io/o/r:t", "ghcr.io/o/r:t"),
        ];
        for (full, short) in cases {
            assert_eq!(familiar_name(full), short, "{full}");
        }
    }

    #[test]
    fn split_tag_handles_ports() {
        assert_eq!(split_tag("localhost:5000/x:y"), ("localhost:5000/x", "y"));
        assert_eq!(
            split_tag("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox", "latest")
        );
        assert_eq!(split_tag("localhost:5000/x"), ("localhost:5000/x", ""));
        assert_eq!(
            split_tag("localhost:5000/x@sha256:00"),
            ("localhost:5000/x", "<none>")
        );
    }

    #[test]
    fn tag_name_normalizes_and_refuses_digests() {
        assert_eq!(
            tag_name("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        let digest = format!("busybox@sha256:{}", "a".repeat(64));
        assert!(matches!(tag_name(&digest), Err(Error::BadReference { .. })));
        assert!(tag_name("UPPER").is_err());
    }
}

/// An archive given to `load` or `import`, as its errors name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArchiveName<'a>(pub &'a str);

impl ArchiveName<'_> {
    /// The archive is refused for `reason`.
    pub(crate) fn reason(&self, reason: impl Into<String>) -> Error {
        Error::BadArchive {
            archive: self.0.to_owned(),
            reason: reason.into(),
            source: None,
        }
    }

    /// `what` failed on the archive because of `source`.
    pub(crate) fn caused(
        &self,
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::BadArchive {
            archive: self.0.to_owned(),
            reason: what.into(),
            source: Some(source.into()),
        }
    }
}
