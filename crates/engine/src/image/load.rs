//! `load`: an OCI layout tar or a docker-archive tar (detected), read in
//! one streaming pass.
//!
//! Every regular file of the archive goes straight into a store blob as it
//! streams by (never into memory, except the few small metadata documents,
//! which are capped). Files under `blobs/sha256/<hex>` must hash to their
//! name; docker-archive layers must hash (uncompressed) to the diff ids of
//! their config. Only when every image of the archive checks out are tags
//! written, so a refused archive leaves no image behind, only unreferenced
//! blobs that the next prune removes. Names with `..` or a leading `/`,
//! links out of the archive, device or hard-link entries, and absurd sizes
//! are refused with an error naming the entry.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read, Write};

use buildr_cache::{BlobInfo, Digest, Hasher};
use buildr_oci::{
    Compression, DEFAULT_JSON_CAP, Descriptor, Flavour, ImageConfig, Index, Manifest, Reference,
    decode_json_capped, detect_compression, media_type,
};
use serde::Deserialize;

use super::to_json;
use super::{ArchiveFormat, Images, pick_platform, tag_name};
use crate::error::{Error, Result};
use crate::image::ArchiveName;

/// Cap on the metadata documents (`index.json`, `manifest.json`, ...).
const MAX_META: u64 = DEFAULT_JSON_CAP;
/// Cap on the number of entries of an archive.
const MAX_ENTRIES: u64 = 1_000_000;
/// Cap on one entry's declared size (1 TiB): anything larger is hostile.
const MAX_ENTRY_SIZE: u64 = 1 << 40;
/// Cap on a layer's uncompressed size while checking its diff id (a
/// decompression bomb stops here), the extraction default of buildr-oci.
const MAX_UNCOMPRESSED: u64 = 64 << 30;
/// How many symlinks a path may go through.
const MAX_LINK_HOPS: usize = 16;
const META_NAMES: [&str; 4] = ["index.json", "oci-layout", "manifest.json", "repositories"];

/// What a load stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub format: ArchiveFormat,
    pub images: Vec<LoadedImage>,
}

/// One image of a loaded archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image id (config digest).
    pub id: Digest,
    pub manifest: Digest,
    /// Normalized names tagged; empty when the archive named none.
    pub names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestIn {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayout {
    image_layout_version: String,
}

/// What the streaming pass found.
#[derive(Default)]
struct Scan {
    /// Archive path -> the blob its content became.
    files: BTreeMap<String, BlobInfo>,
    /// Archive path -> normalized target path.
    links: BTreeMap<String, String>,
    meta: BTreeMap<String, Vec<u8>>,
    /// Blobs stored from this archive.
    stored: BTreeSet<Digest>,
}

impl Images {
    /// Loads every image of `archive` (optionally gzip/zstd compressed);
    /// `source` names it in errors (a path, or `-`).
    pub fn load<R: Read>(&self, archive: R, source: &str) -> Result<LoadReport> {
        let bad = ArchiveName(source);
        // Keep prune out until the tags are written.
        let _lease = self.store.lease()?;
        let scan = self.scan(archive, &bad)?;
        let (format, ready) = if scan.meta.contains_key("index.json") {
            (ArchiveFormat::Oci, self.check_oci(&scan, &bad)?)
        } else if scan.meta.contains_key("manifest.json") {
            (ArchiveFormat::Docker, self.check_docker(&scan, &bad)?)
        } else {
            return Err(bad.reason(
                "neither index.json (OCI layout) nor manifest.json (docker archive) found"
                    .to_owned(),
            ));
        };
        for image in &ready {
            for name in &image.names {
                self.store.set_tag(name, &image.manifest)?;
                self.emit("load", &image.id, name);
            }
        }
        Ok(LoadReport {
            format,
            images: ready,
        })
    }

    fn scan<R: Read>(&self, archive: R, bad: &ArchiveName<'_>) -> Result<Scan> {
        let plain = buildr_oci::decompress(archive).map_err(|e| bad.caused("cannot read", e))?;
        let mut tar = tar::Archive::new(plain);
        let mut scan = Scan::default();
        let mut count = 0u64;
        let entries = tar.entries().map_err(|e| bad.caused("not a tar", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad.caused(format!("after entry {count}"), e))?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(bad.reason(format!("more than {MAX_ENTRIES} entries")));
            }
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let path = normalize(&raw)
                .map_err(|reason| bad.reason(format!("entry {shown:?}: {reason}")))?;
            let kind = entry.header().entry_type();
            if kind.is_dir() || kind == tar::EntryType::XGlobalHeader {
                continue;
            }
            if kind.is_symlink() {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let resolved = resolve_link(&path, &target).map_err(|reason| {
                    bad.reason(format!(
                        "symlink {shown:?} -> {:?}: {reason}",
                        String::from_utf8_lossy(&target)
                    ))
                })?;
                if scan.links.insert(path.clone(), resolved).is_some()
                    || scan.files.contains_key(&path)
                {
                    return Err(bad.reason(format!("entry {shown:?} appears twice")));
                }
                continue;
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous {
                return Err(bad.reason(format!(
                    "entry {shown:?} has unsupported type {kind:?} (only files, directories and symlinks)"
                )));
            }
            let size = entry.size();
            if size > MAX_ENTRY_SIZE {
                return Err(bad.reason(format!(
                    "entry {shown:?} claims {size} bytes, more than the {MAX_ENTRY_SIZE} allowed"
                )));
            }
            if scan.files.contains_key(&path)
                || scan.meta.contains_key(&path)
                || scan.links.contains_key(&path)
            {
                return Err(bad.reason(format!("entry {shown:?} appears twice")));
            }
            if META_NAMES.contains(&path.as_str()) {
                if size > MAX_META {
                    return Err(bad.reason(format!(
                        "{path} is {size} bytes, more than the {MAX_META} allowed"
                    )));
                }
                let mut bytes = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| bad.caused(format!("cannot read {path}"), e))?;
                scan.meta.insert(path, bytes);
                continue;
            }
            if is_legacy_metadata(&path) {
                continue;
            }
            let expected = match path.strip_prefix("blobs/") {
                Some(rest) => Some(
                    blob_name(rest)
                        .map_err(|reason| bad.reason(format!("entry {shown:?}: {reason}")))?,
                ),
                None => None,
            };
            let mut writer = self.store.blob_writer()?;
            let copied = io::copy(&mut entry, &mut writer)
                .map_err(|e| bad.caused(format!("cannot read entry {shown:?}"), e))?;
            if copied != size {
                return Err(bad.reason(format!(
                    "entry {shown:?} is {copied} bytes, its header says {size}"
                )));
            }
            let info = writer.commit(expected).map_err(|e| match e {
                buildr_cache::Error::DigestMismatch { expected, actual } => bad.reason(format!(
                    "entry {shown:?} claims digest {expected} but its content hashes to {actual}"
                )),
                other => other.into(),
            })?;
            scan.stored.insert(info.digest);
            scan.files.insert(path, info);
        }
        Ok(scan)
    }

    fn check_oci(&self, scan: &Scan, bad: &ArchiveName<'_>) -> Result<Vec<LoadedImage>> {
        let layout: OciLayout = match scan.meta.get("oci-layout") {
            Some(bytes) => decode_json_capped(&bytes[..], MAX_META, "oci-layout")?,
            None => return Err(bad.reason("index.json without an oci-layout file".to_owned())),
        };
        if !layout.image_layout_version.starts_with("1.") {
            return Err(bad.reason(format!(
                "unsupported image layout version {:?}",
                layout.image_layout_version
            )));
        }
        let index: Index =
            decode_json_capped(&scan.meta["index.json"][..], MAX_META, "index.json")?;
        let mut ready = Vec::new();
        let mut diff_ids = BTreeMap::new();
        for (i, descriptor) in index.manifests.iter().enumerate() {
            let what = format!("index.json manifests[{i}] ({})", descriptor.digest);
            let manifest_desc = match descriptor.media_type.as_str() {
                media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => descriptor.clone(),
                media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
                    self.check_present(scan, descriptor, &what, bad)?;
                    let bytes = self.store.read_blob(&descriptor.digest, MAX_META)?;
                    let nested: Index = decode_json_capped(&bytes[..], MAX_META, &what)?;
                    let chosen = pick_platform(&nested).ok_or_else(|| {
                        bad.reason(format!("{what}: no manifest for this platform"))
                    })?;
                    match nested.manifests.iter().find(|d| d.digest == chosen) {
                        Some(d) => d.clone(),
                        None => return Err(bad.reason(format!("{what}: chosen manifest vanished"))),
                    }
                }
                other => {
                    return Err(bad.reason(format!("{what}: unsupported media type {other:?}")));
                }
            };
            self.check_present(scan, &manifest_desc, &what, bad)?;
            let bytes = self.store.read_blob(&manifest_desc.digest, MAX_META)?;
            let manifest: Manifest = decode_json_capped(&bytes[..], MAX_META, &what)?;
            self.check_image(scan, &manifest, &what, &mut diff_ids, bad)?;
            let names = oci_names(descriptor, &what, bad)?;
            ready.push(LoadedImage {
                id: manifest.config.digest,
                manifest: manifest_desc.digest,
                names,
            });
        }
        if ready.is_empty() {
            return Err(bad.reason("index.json lists no image".to_owned()));
        }
        Ok(ready)
    }

    /// Checks config and layers of a manifest: present with the declared
    /// sizes, and the layers' uncompressed digests equal the diff ids.
    fn check_image(
        &self,
        scan: &Scan,
        manifest: &Manifest,
        what: &str,
        diff_ids: &mut BTreeMap<Digest, Digest>,
        bad: &ArchiveName<'_>,
    ) -> Result<ImageConfig> {
        self.check_present(scan, &manifest.config, &format!("{what} config"), bad)?;
        let config_bytes = self.store.read_blob(&manifest.config.digest, MAX_META)?;
        let config: ImageConfig = decode_json_capped(
            &config_bytes[..],
            MAX_META,
            &format!("config {}", manifest.config.digest),
        )?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(bad.reason(format!(
                "{what}: the config lists {} diff ids for {} layers",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        for (layer, expected) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            self.check_present(scan, layer, &format!("{what} layer {}", layer.digest), bad)?;
            let actual = match diff_ids.get(&layer.digest) {
                Some(d) => *d,
                None => {
                    let (d, _) = self.layer_diff_id(&layer.digest)?;
                    diff_ids.insert(layer.digest, d);
                    d
                }
            };
            if actual != *expected {
                return Err(bad.reason(format!(
                    "{what}: layer {} uncompresses to {actual}, the config's diff id is {expected}",
                    layer.digest
                )));
            }
        }
        Ok(config)
    }

    /// A descriptor's blob must be in the store (from this archive or
    /// before) with the declared size.
    fn check_present(
        &self,
        scan: &Scan,
        descriptor: &Descriptor,
        what: &str,
        bad: &ArchiveName<'_>,
    ) -> Result<()> {
        let digest = &descriptor.digest;
        if !scan.stored.contains(digest) && !self.store.has_blob(digest)? {
            return Err(bad.reason(format!("{what}: blob {digest} is not in the archive")));
        }
        let size = self.store.blob_size(digest)?;
        if size != descriptor.size {
            return Err(bad.reason(format!(
                "{what}: blob {digest} is {size} bytes, the descriptor says {}",
                descriptor.size
            )));
        }
        Ok(())
    }

    fn check_docker(&self, scan: &Scan, bad: &ArchiveName<'_>) -> Result<Vec<LoadedImage>> {
        let entries: Vec<DockerManifestIn> =
            decode_json_capped(&scan.meta["manifest.json"][..], MAX_META, "manifest.json")?;
        if entries.is_empty() {
            return Err(bad.reason("manifest.json lists no image".to_owned()));
        }
        let mut ready = Vec::new();
        let mut layer_info: BTreeMap<Digest, (Digest, Compression)> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let what = format!("manifest.json[{i}]");
            let config_blob = scan.lookup(&entry.config).ok_or_else(|| {
                bad.reason(format!(
                    "{what}: config {:?} is not in the archive",
                    entry.config
                ))
            })?;
            if let Some(named) = digest_in_name(&entry.config)
                && named != config_blob.digest
            {
                return Err(bad.reason(format!(
                    "{what}: config {:?} hashes to {}",
                    entry.config, config_blob.digest
                )));
            }
            let config_bytes = self.store.read_blob(&config_blob.digest, MAX_META)?;
            let config: ImageConfig =
                decode_json_capped(&config_bytes[..], MAX_META, &format!("{what} config"))?;
            if config.rootfs.diff_ids.len() != entry.layers.len() {
                return Err(bad.reason(format!(
                    "{what}: the config lists {} diff ids for {} layers",
                    config.rootfs.diff_ids.len(),
                    entry.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for (path, expected) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
                let blob = scan.lookup(path).ok_or_else(|| {
                    bad.reason(format!("{what}: layer {path:?} is not in the archive"))
                })?;
                let (diff_id, compression) = match layer_info.get(&blob.digest) {
                    Some(found) => *found,
                    None => {
                        let found = self.layer_diff_id(&blob.digest)?;
                        layer_info.insert(blob.digest, found);
                        found
                    }
                };
                if diff_id != *expected {
                    return Err(bad.reason(format!(
                        "{what}: layer {path:?} uncompresses to {diff_id}, the config's diff id is {expected}"
                    )));
                }
                layers.push(Descriptor::new(
                    compression.oci_media_type(),
                    blob.digest,
                    blob.size,
                ));
            }
            let manifest = Manifest::image(
                Flavour::Oci,
                Descriptor::new(media_type::OCI_CONFIG, config_blob.digest, config_blob.size),
                layers,
            );
            let manifest_blob = self.store.put_blob(&to_json(&manifest)?)?;
            let mut names = Vec::new();
            for tag in entry.repo_tags.iter().flatten() {
                names.push(
                    tag_name(tag)
                        .map_err(|e| bad.caused(format!("{what}: repo tag {tag:?}"), e))?,
                );
            }
            ready.push(LoadedImage {
                id: config_blob.digest,
                manifest: manifest_blob.digest,
                names,
            });
        }
        Ok(ready)
    }

    /// The digest of a layer's uncompressed tar, and its compression.
    fn layer_diff_id(&self, digest: &Digest) -> Result<(Digest, Compression)> {
        let blob = self.store.open_blob(digest)?;
        let mut reader = BufReader::with_capacity(256 * 1024, blob);
        let io_err = |source: io::Error| Error::BadImage {
            image: format!("layer {digest}"),
            reason: format!("cannot decompress: {source}"),
        };
        let compression = detect_compression(reader.fill_buf().map_err(io_err)?);
        let plain = buildr_oci::decompress(reader).map_err(io_err)?;
        let mut sink = HashSink(Hasher::new());
        let n = io::copy(&mut plain.take(MAX_UNCOMPRESSED + 1), &mut sink).map_err(io_err)?;
        if n > MAX_UNCOMPRESSED {
            return Err(Error::BadImage {
                image: format!("layer {digest}"),
                reason: format!("uncompresses to more than {MAX_UNCOMPRESSED} bytes"),
            });
        }
        Ok((sink.0.finish(), compression))
    }
}

impl Scan {
    /// The blob an archive path names, following symlinks inside the archive.
    fn lookup(&self, path: &str) -> Option<BlobInfo> {
        let mut path = normalize(path.as_bytes()).ok()?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(info) = self.files.get(&path) {
                return Some(*info);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }
}

struct HashSink(Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Names from an index descriptor: `io.containerd.image.name`, else a
/// `org.opencontainers.image.ref.name` that is a full name (a bare tag
/// names nothing, as docker reads it).
fn oci_names(descriptor: &Descriptor, what: &str, bad: &ArchiveName<'_>) -> Result<Vec<String>> {
    let Some(annotations) = &descriptor.annotations else {
        return Ok(Vec::new());
    };
    let candidate = annotations.get("io.containerd.image.name").or_else(|| {
        annotations
            .get("org.opencontainers.image.ref.name")
            .filter(|r| r.contains(['/', ':']))
    });
    match candidate {
        Some(name) => {
            let reference = Reference::parse(name)
                .map_err(|e| bad.caused(format!("{what}: name {name:?}"), e))?;
            if reference.digest().is_some() {
                return Ok(Vec::new());
            }
            Ok(vec![reference.to_string()])
        }
        None => Ok(Vec::new()),
    }
}

/// An archive path made relative and clean: `./a//b` -> `a/b`. Absolute
/// paths, `..` and non-utf-8 names are refused.
fn normalize(raw: &[u8]) -> std::result::Result<String, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "name is not utf-8")?;
    if text.starts_with('/') {
        return Err("absolute name");
    }
    if text.contains('\0') {
        return Err("name contains a nul byte");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("name contains a '..' component"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(String::new());
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink at `path` to `target` within the archive root.
fn resolve_link(path: &str, target: &[u8]) -> std::result::Result<String, &'static str> {
    let target = std::str::from_utf8(target).map_err(|_| "target is not utf-8")?;
    if target.starts_with('/') {
        return Err("absolute target");
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("target leaves the archive");
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// `sha256/<hex>` -> the digest; other algorithms are refused.
fn blob_name(rest: &str) -> std::result::Result<Digest, &'static str> {
    match rest.split_once('/') {
        Some(("sha256", hex)) => {
            Digest::from_hex(hex).map_err(|_| "blob name is not a sha256 hex digest")
        }
        Some(_) => Err("unsupported digest algorithm (only sha256)"),
        None => Err("unexpected file under blobs/"),
    }
}

/// Docker's per-layer `VERSION` and `json` files (v1 metadata nobody reads).
fn is_legacy_metadata(path: &str) -> bool {
    match path.split_once('/') {
        Some((dir, "VERSION" | "json")) => !dir.contains('/') && dir != "blobs",
        _ => false,
    }
}

/// The digest a docker-archive file name states: `<hex>.json` or
/// `blobs/sha256/<hex>`.
fn digest_in_name(path: &str) -> Option<Digest> {
    let clean = normalize(path.as_bytes()).ok()?;
    if let Some(rest) = clean.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(rest).ok();
    }
    Digest::from_hex(clean.strip_suffix(".json")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(normalize(b"./a//b/").unwrap(), "a/b");
        assert!(normalize(b"../x").is_err());
        assert!(normalize(b"a/../../x").is_err());
        assert!(normalize(b"/etc/passwd").is_err());
        assert_eq!(
            resolve_link("a/layer.tar", b"../b/layer.tar").unwrap(),
            "b/layer.tar"
        );
        assert!(resolve_link("a/layer.tar", b"../../etc/passwd").is_err());
        assert!(resolve_link("a/layer.tar", b"/etc/passwd").is_err());
        assert!(blob_name("sha512/00").is_err());
        assert!(blob_name("sha256/zz").is_err());
        assert!(is_legacy_metadata("abc/VERSION"));
        assert!(!is_legacy_metadata("blobs/json"));
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name("config.json").is_none());
    }
}
