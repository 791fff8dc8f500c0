//! `save`: images as an OCI image layout tar or a docker-archive tar.
//!
//! OCI: `oci-layout`, `index.json` (one descriptor per name, annotated with
//! `io.containerd.image.name` and `org.opencontainers.image.ref.name` as
//! docker and BuildKit write them) and `blobs/sha256/<hex>`, the stored
//! blobs as they are but for a manifest whose descriptors are not all OCI
//! (a Docker-typed image, or a base's layers under an OCI manifest): that
//! one is converted ([`buildr_oci::Manifest::converted`]; same blobs, a new
//! manifest digest), as BuildKit's OCI exporter does. Docker: `manifest.json` (`Config`, `RepoTags`,
//! `Layers`), `repositories`, `<config hex>.json` and uncompressed
//! `<diff id hex>/layer.tar`, as `docker save` wrote them before 25.0.
//! Every blob is verified against its digest while it is copied, and every
//! decompressed layer against its diff id.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use buildr_cache::{Digest, Hasher};
use buildr_oci::{Descriptor, EncodedManifest, Flavour, Index, Manifest, media_type};
use serde::Serialize;
use serde_json::Map;

use super::layer_bytes::{distributable, open_layer};
use super::to_json;
use super::{Image, Images, familiar_name, split_tag};
use crate::build::LayerCompression;
use crate::error::{Error, Result};
use buildr_fs::atomic::AtomicWrite;

/// The archive layout `save` writes (and `load` detects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout in a tar (`oci-archive:` for skopeo).
    Oci,
    /// The classic `docker save` layout (`docker-archive:` for skopeo).
    #[default]
    Docker,
}

impl FromStr for ArchiveFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<ArchiveFormat> {
        match s {
            "oci" => Ok(ArchiveFormat::Oci),
            "docker" | "docker-archive" => Ok(ArchiveFormat::Docker),
            other => Err(Error::BadReference {
                reference: other.to_owned(),
                reason: "unknown archive format (expected oci or docker)".to_owned(),
            }),
        }
    }
}

/// What to save, and how.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    pub format: ArchiveFormat,
    /// Names or ids; an image given by name carries that name in the archive.
    pub images: Vec<String>,
    /// How an OCI archive compresses the layers a build kept only as
    /// snapshots (a docker archive holds uncompressed tars).
    pub layer_compression: LayerCompression,
}

/// One image to write and the names it carries.
struct Selected {
    image: Image,
    names: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Images {
    /// Writes the archive to `out` as a stream and returns `out`.
    pub fn save<W: Write>(&self, out: W, options: &SaveOptions) -> Result<W> {
        // A concurrent prune waits: an image untagged meanwhile stays whole.
        let _lease = self.store.lease()?;
        let selected = self.select(&options.images)?;
        self.write_archive(out, options.format, &options.layer_compression, &selected)
    }

    fn write_archive<W: Write>(
        &self,
        out: W,
        format: ArchiveFormat,
        compression: &LayerCompression,
        selected: &[Selected],
    ) -> Result<W> {
        let mut builder = tar::Builder::new(out);
        match format {
            ArchiveFormat::Oci => self.write_oci(&mut builder, compression, selected)?,
            ArchiveFormat::Docker => self.write_docker(&mut builder, selected)?,
        }
        builder
            .into_inner()
            .map_err(|e| entry_err("(end of archive)", e))
    }

    /// Writes the archive to `path` atomically: a temp file next to it,
    /// fsynced and renamed, so `path` is never half-written.
    pub fn save_to_file(&self, path: &Path, options: &SaveOptions) -> Result<()> {
        self.write_file(path, |out| self.save(out, options))
    }

    /// Writes the image whose manifest is `manifest` (named or not: a
    /// build's `-o type=oci|docker` without `-t`) to `path` atomically; the
    /// archive names no image, as BuildKit's exporters without a name.
    pub(crate) fn save_manifest_to_file(
        &self,
        path: &Path,
        format: ArchiveFormat,
        compression: &LayerCompression,
        manifest: &Digest,
    ) -> Result<()> {
        let _lease = self.store.lease()?;
        let selected = [Selected {
            image: self.read_image(manifest, &manifest.to_string())?,
            names: Vec::new(),
        }];
        self.write_file(path, |out| {
            self.write_archive(out, format, compression, &selected)
        })
    }

    fn write_file(
        &self,
        path: &Path,
        write: impl FnOnce(BufWriter<&mut fs::File>) -> Result<BufWriter<&mut fs::File>>,
    ) -> Result<()> {
        AtomicWrite::new()
            .prefix(".buildr-save-")
            .mode(0o644)
            .with(path, |file| {
                write(BufWriter::new(file))?
                    .into_inner()
                    .map_err(|e| Error::Io {
                        action: "write",
                        path: path.to_path_buf(),
                        source: e.into_error(),
                    })?;
                Ok(())
            })
    }

    fn select(&self, inputs: &[String]) -> Result<Vec<Selected>> {
        if inputs.is_empty() {
            return Err(Error::BadReference {
                reference: String::new(),
                reason: "save needs at least one image".to_owned(),
            });
        }
        let mut selected: Vec<Selected> = Vec::new();
        for input in inputs {
            let image = self.resolve(input)?;
            let by_name = buildr_oci::Reference::parse(input)
                .ok()
                .filter(|r| r.digest().is_none())
                .map(|r| r.to_string())
                .filter(|n| image.names.contains(n));
            match selected.iter_mut().find(|s| s.image.id == image.id) {
                Some(s) => s.names.extend(by_name),
                None => selected.push(Selected {
                    image,
                    names: by_name.into_iter().collect(),
                }),
            }
        }
        for s in &mut selected {
            s.names.sort();
            s.names.dedup();
        }
        Ok(selected)
    }

    fn write_oci<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        compression: &LayerCompression,
        selected: &[Selected],
    ) -> Result<()> {
        append_dir(tar, "blobs/")?;
        append_dir(tar, "blobs/sha256/")?;
        append_bytes(tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut written = BTreeSet::new();
        let mut manifests = Vec::new();
        for s in selected {
            let image = &s.image;
            let compressed = distributable(&self.store, &image.manifest, &compression.options())?;
            let manifest = compressed.as_ref().unwrap_or(&image.manifest);
            let config = &manifest.config;
            if written.insert(config.digest) {
                let path = format!("blobs/sha256/{}", config.digest.hex());
                self.append_blob(tar, &path, &config.digest, config.size)?;
            }
            for layer in &manifest.layers {
                if written.insert(layer.digest) {
                    let path = format!("blobs/sha256/{}", layer.digest.hex());
                    self.append_layer(tar, &path, layer)?;
                }
            }
            let descriptor =
                self.append_oci_manifest(tar, image, compressed.as_ref(), &mut written)?;
            if s.names.is_empty() {
                manifests.push(descriptor.clone());
            }
            for name in &s.names {
                let mut d = descriptor.clone();
                d.annotations = Some(BTreeMap::from([
                    ("io.containerd.image.name".to_owned(), name.clone()),
                    (
                        "org.opencontainers.image.ref.name".to_owned(),
                        split_tag(name).1.to_owned(),
                    ),
                ]));
                manifests.push(d);
            }
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: None,
            extra: Map::new(),
        };
        append_bytes(tar, "index.json", &to_json(&index)?)
    }

    /// The image's manifest in OCI terms: the stored blob when it already
    /// is, else converted (same config and layer blobs, renamed
    /// descriptors, a new manifest digest), or `compressed` (layers kept as
    /// snapshots replaced by compressed blobs) converted likewise. Returns
    /// its index descriptor.
    fn append_oci_manifest<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        image: &Image,
        compressed: Option<&Manifest>,
        written: &mut BTreeSet<Digest>,
    ) -> Result<Descriptor> {
        let converted = match compressed {
            Some(m) => Some(m.converted(Flavour::Oci).unwrap_or_else(|| m.clone())),
            None => image.manifest.converted(Flavour::Oci),
        };
        let Some(converted) = converted else {
            if written.insert(image.manifest_digest) {
                let path = format!("blobs/sha256/{}", image.manifest_digest.hex());
                self.append_blob(tar, &path, &image.manifest_digest, image.manifest_size)?;
            }
            return Ok(Descriptor::new(
                &image.manifest_media_type,
                image.manifest_digest,
                image.manifest_size,
            ));
        };
        let encoded = EncodedManifest::encode(&converted)?;
        if written.insert(encoded.digest) {
            let path = format!("blobs/sha256/{}", encoded.digest.hex());
            append_bytes(tar, &path, &encoded.bytes)?;
        }
        Ok(Descriptor::new(
            media_type::OCI_MANIFEST,
            encoded.digest,
            encoded.size(),
        ))
    }

    fn write_docker<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        selected: &[Selected],
    ) -> Result<()> {
        let mut written = BTreeSet::new();
        let mut entries = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for s in selected {
            let image = &s.image;
            let what = image
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.to_string());
            let diff_ids = &image.config.rootfs.diff_ids;
            if diff_ids.len() != image.manifest.layers.len() {
                return Err(Error::BadImage {
                    image: what,
                    reason: format!(
                        "config lists {} diff ids for {} layers",
                        diff_ids.len(),
                        image.manifest.layers.len()
                    ),
                });
            }
            let config_path = format!("{}.json", image.id.hex());
            if written.insert(image.id) {
                self.append_blob(tar, &config_path, &image.id, image.manifest.config.size)?;
            }
            let mut layers = Vec::new();
            for (layer, diff_id) in image.manifest.layers.iter().zip(diff_ids) {
                let path = format!("{}/layer.tar", diff_id.hex());
                if written.insert(*diff_id) {
                    append_dir(tar, &format!("{}/", diff_id.hex()))?;
                    self.append_layer_tar(tar, &path, layer, diff_id, &what)?;
                }
                layers.push(path);
            }
            let repo_tags: Vec<String> = s.names.iter().map(|n| familiar_name(n)).collect();
            for tag in &repo_tags {
                let (repo, tag) = split_tag(tag);
                if let Some(top) = diff_ids.last() {
                    repositories
                        .entry(repo.to_owned())
                        .or_default()
                        .insert(tag.to_owned(), top.hex());
                }
            }
            entries.push(DockerManifest {
                config: config_path,
                repo_tags: (!repo_tags.is_empty()).then_some(repo_tags),
                layers,
            });
        }
        append_bytes(tar, "manifest.json", &to_json(&entries)?)?;
        if !repositories.is_empty() {
            append_bytes(tar, "repositories", &to_json(&repositories)?)?;
        }
        Ok(())
    }

    /// A store blob, verified while copied.
    fn append_blob<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        path: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let reader = self.store.open_blob_sized(digest, size)?;
        let mut header = file_header(size);
        tar.append_data(&mut header, path, reader)
            .map_err(|e| entry_err(path, e))
    }

    /// A layer's bytes as its descriptor names them, verified while copied
    /// (a layer kept as its snapshot is made again from it).
    fn append_layer<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        path: &str,
        layer: &Descriptor,
    ) -> Result<()> {
        let reader = open_layer(&self.store, layer)?;
        let mut header = file_header(layer.size);
        tar.append_data(&mut header, path, reader)
            .map_err(|e| entry_err(path, e))
    }

    /// A layer as an uncompressed tar whose digest is its diff id.
    fn append_layer_tar<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        path: &str,
        layer: &Descriptor,
        diff_id: &Digest,
        what: &str,
    ) -> Result<()> {
        let plain = matches!(
            layer.media_type.as_str(),
            media_type::OCI_LAYER | media_type::DOCKER_LAYER
        );
        if plain {
            if layer.digest != *diff_id {
                return Err(Error::BadImage {
                    image: what.to_owned(),
                    reason: format!(
                        "uncompressed layer {} does not match its diff id {diff_id}",
                        layer.digest
                    ),
                });
            }
            return self.append_layer(tar, path, layer);
        }
        // The tar header needs the size first: decompress into an unlinked
        // temp file in the store (never memory), hashing on the way.
        let tmp = tempfile::tempfile_in(self.store.root()).map_err(|e| Error::Io {
            action: "create a temp file in",
            path: self.store.root().to_path_buf(),
            source: e,
        })?;
        super::remote_blobs::ensure_blob(&self.store, layer)?;
        let reader = self.store.open_blob_sized(&layer.digest, layer.size)?;
        let layer_err = |e: io::Error| Error::BadImage {
            image: what.to_owned(),
            reason: format!("cannot decompress layer {}: {e}", layer.digest),
        };
        let mut plain = buildr_oci::decompress(reader).map_err(layer_err)?;
        let mut hashing = HashWriter {
            inner: BufWriter::new(&tmp),
            hasher: Hasher::new(),
            size: 0,
        };
        io::copy(&mut plain, &mut hashing).map_err(layer_err)?;
        drop(plain);
        hashing.inner.flush().map_err(|e| entry_err(path, e))?;
        let HashWriter {
            inner,
            hasher,
            size,
        } = hashing;
        drop(inner);
        let actual = hasher.finish();
        if actual != *diff_id {
            return Err(Error::BadImage {
                image: what.to_owned(),
                reason: format!(
                    "layer {} decompresses to {actual}, its diff id is {diff_id}",
                    layer.digest
                ),
            });
        }
        (&tmp).rewind().map_err(|e| entry_err(path, e))?;
        let mut header = file_header(size);
        tar.append_data(&mut header, path, (&tmp).take(size))
            .map_err(|e| entry_err(path, e))
    }
}

struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
    size: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, io::empty())
        .map_err(|e| entry_err(path, e))
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = file_header(bytes.len() as u64);
    tar.append_data(&mut header, path, bytes)
        .map_err(|e| entry_err(path, e))
}

fn entry_err(path: &str, source: io::Error) -> Error {
    Error::Io {
        action: "write archive entry",
        path: PathBuf::from(path),
        source,
    }
}
