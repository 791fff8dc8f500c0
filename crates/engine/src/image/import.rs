//! `import`: a single-layer image from a root filesystem tar (docker
//! `import`), in one streaming pass: the tar is checked entry by entry while
//! its bytes flow through gzip into a store blob.

use std::io::{self, Read, Write};

use buildr_cache::Digest;
use buildr_oci::{
    CompressOptions, ContainerConfig, Descriptor, Flavour, History, ImageConfig, LayerWriter,
    Manifest, RootFs, media_type,
};
use serde_json::Map;

use super::{Images, host_architecture, tag_name, time, to_json};
use crate::error::Result;
use crate::image::ArchiveName;

/// Settings for [`Images::import`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The name to tag, e.g. `busybox:latest`.
    pub reference: String,
    /// Where the tar came from, for the history comment (`Imported from X`).
    pub source: String,
    /// Commit message; replaces the `Imported from` comment (docker `-m`).
    pub message: Option<String>,
    /// The image's architecture; the host's by default.
    pub architecture: Option<String>,
}

impl ImportOptions {
    pub fn new(reference: &str, source: &str) -> ImportOptions {
        ImportOptions {
            reference: reference.to_owned(),
            source: source.to_owned(),
            message: None,
            architecture: None,
        }
    }
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The image id (config digest).
    pub id: Digest,
    pub manifest: Digest,
    /// The layer's diff id and blob digest.
    pub diff_id: Digest,
    pub layer: Digest,
    /// The normalized name tagged.
    pub name: String,
}

/// Passes every byte read from `inner` on to `sink`.
struct Tee<R, W> {
    inner: R,
    sink: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl Images {
    /// Imports `rootfs` (a tar, optionally gzip or zstd compressed) as a
    /// one-layer linux image and tags it. Entries that would escape the
    /// root (`..`) are refused; nothing is tagged unless the whole layer
    /// was stored.
    pub fn import<R: Read>(&self, rootfs: R, options: &ImportOptions) -> Result<Imported> {
        let name = tag_name(&options.reference)?;
        let bad = ArchiveName(&options.source);
        let _lease = self.store.lease()?;
        let plain = buildr_oci::decompress(rootfs).map_err(|e| bad.caused("cannot read", e))?;
        let blob = self.store.blob_writer()?;
        let layer = LayerWriter::new(blob, &CompressOptions::default())
            .map_err(|e| bad.caused("cannot start compression", e))?;
        let mut archive = tar::Archive::new(Tee {
            inner: plain,
            sink: layer,
        });
        let count = check_entries(&mut archive, &bad)?;
        if count == 0 {
            return Err(bad.reason("the tar has no entries".to_owned()));
        }
        let mut tee = archive.into_inner();
        // Keep the trailing zero blocks and anything after them: the diff id
        // is the digest of the stream exactly as given.
        io::copy(&mut tee, &mut io::sink()).map_err(|e| bad.caused("cannot read", e))?;
        let (digests, blob) = tee
            .sink
            .finish()
            .map_err(|e| bad.caused("cannot compress", e))?;
        let layer = blob.commit(Some(digests.digest))?;

        let config = import_config(options, digests.diff_id);
        let config_bytes = to_json(&config)?;
        let config_blob = self.store.put_blob(&config_bytes)?;
        let manifest = Manifest::image(
            Flavour::Oci,
            Descriptor::new(media_type::OCI_CONFIG, config_blob.digest, config_blob.size),
            vec![Descriptor::new(
                digests.media_type,
                layer.digest,
                layer.size,
            )],
        );
        let manifest_blob = self.store.put_blob(&to_json(&manifest)?)?;
        self.store.set_tag(&name, &manifest_blob.digest)?;
        self.emit("import", &config_blob.digest, &name);
        Ok(Imported {
            id: config_blob.digest,
            manifest: manifest_blob.digest,
            diff_id: digests.diff_id,
            layer: layer.digest,
            name,
        })
    }
}

/// Reads every entry of the tar (so the tee hashes and compresses it
/// all), refusing names that leave the root; the number of entries.
fn check_entries<R: Read>(archive: &mut tar::Archive<R>, bad: &ArchiveName<'_>) -> Result<u64> {
    let mut count = 0u64;
    let entries = archive.entries().map_err(|e| bad.caused("not a tar", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad.reason(format!("entry {}: {e}", count + 1)))?;
        count += 1;
        let path = entry.path_bytes().into_owned();
        check_member(&path).map_err(|reason| {
            bad.reason(format!(
                "entry {:?}: {reason}",
                String::from_utf8_lossy(&path)
            ))
        })?;
        if let Some(link) = entry.link_name_bytes()
            && entry.header().entry_type().is_hard_link()
        {
            check_member(&link).map_err(|reason| {
                bad.reason(format!(
                    "hard link {:?} -> {:?}: {reason}",
                    String::from_utf8_lossy(&path),
                    String::from_utf8_lossy(&link)
                ))
            })?;
        }
    }
    Ok(count)
}

/// The imported image's config: one layer, docker's history entry, the
/// comment (`-m`, or where it came from).
fn import_config(options: &ImportOptions, diff_id: Digest) -> ImageConfig {
    let created = time::now_rfc3339();
    let comment = match &options.message {
        Some(message) => message.clone(),
        None => format!("Imported from {}", options.source),
    };
    let mut extra = Map::new();
    extra.insert("comment".to_owned(), comment.clone().into());
    ImageConfig {
        created: Some(created.clone()),
        architecture: options
            .architecture
            .clone()
            .unwrap_or_else(|| host_architecture().to_owned()),
        os: "linux".to_owned(),
        config: Some(ContainerConfig::default()),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("buildr import".to_owned()),
            comment: Some(comment),
            ..History::default()
        }],
        extra,
        ..ImageConfig::default()
    }
}

/// Refuses names that leave the root: `..` components. A leading `/` is
/// allowed (tar strips it), as is `./`; names need not be utf-8.
pub(crate) fn check_member(path: &[u8]) -> std::result::Result<(), &'static str> {
    if path.contains(&0) {
        return Err("name contains a nul byte");
    }
    if path.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err("name contains a '..' component");
    }
    Ok(())
}
