//! Pull: reference -> manifest (an index resolved for a platform) -> config
//! and layers fetched in parallel into the store, each verified against its
//! digest and size while it streams; manifests stored last and the tag set
//! only when everything is in.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use buildr_cache::{Digest, Store};

use super::client::{
    FetchedManifest, Progress, ProgressFn, RegistryClient, Repo, SkipReason, pull_scope,
};
use super::transport::{Method, ReqBody, is_transient};
use crate::compress::decompress;
use crate::error::{Error, Result};
use crate::extract::{ExtractOptions, ExtractStats, extract_layer};
use crate::image::{
    Descriptor, ImageConfig, Index, Manifest, ManifestOrIndex, Platform, decode_json_capped,
    media_type,
};
use crate::reference::Reference;

/// Options of [`RegistryClient::pull`].
#[derive(Clone, Default)]
pub struct PullOptions {
    /// The platform to pick from an index; `None` is the host's.
    pub platform: Option<Platform>,
    /// Store tag to point at the pulled manifest (`None`: the reference's
    /// normalized `domain/path:tag` when it has a tag and no digest, nothing
    /// otherwise).
    pub tag: Option<String>,
    /// Do not tag at all.
    pub no_tag: bool,
    /// Fetch the manifest and the config only: the layers stay in the
    /// registry (the caller records where, and fetches them when read).
    pub config_only: bool,
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field("tag", &self.tag)
            .field("no_tag", &self.no_tag)
            .field("config_only", &self.config_only)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a pull brought in.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The image manifest (the platform's, when the reference is an index).
    pub manifest_digest: Digest,
    /// The index the manifest was chosen from, if any.
    pub index_digest: Option<Digest>,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// The store tag set, if any.
    pub tag: Option<String>,
    /// Blobs downloaded (the others were in the store already).
    pub blobs_fetched: usize,
    pub bytes_fetched: u64,
    pub blobs_present: usize,
}

/// The host's platform as OCI names it (`linux/amd64`, `linux/arm64/v8`).
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    };
    Platform {
        architecture: architecture.to_owned(),
        os: "linux".to_owned(),
        variant: variant.map(str::to_owned),
        ..Platform::default()
    }
}

/// Parses `os/arch[/variant]` (docker's `--platform`).
pub fn parse_platform(input: &str) -> Result<Platform> {
    let parts: Vec<&str> = input.split('/').collect();
    let bad = || Error::Protocol {
        url: input.to_owned(),
        reason: "platform must be os/arch[/variant]".into(),
    };
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    Ok(Platform {
        os: parts[0].to_ascii_lowercase(),
        architecture: match parts[1] {
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            a => a.to_ascii_lowercase(),
        },
        variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        ..Platform::default()
    })
}

fn platform_matches(want: &Platform, have: &Platform) -> bool {
    if want.os != have.os || want.architecture != have.architecture {
        return false;
    }
    let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_owned()),
        ("arm", None) => Some("v7".to_owned()),
        (_, v) => v.map(str::to_owned),
    };
    match &want.variant {
        None => true,
        Some(_) => norm(want) == norm(have),
    }
}

fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The manifest a pull resolved to, and where from.
struct Resolved {
    repo: Repo,
    /// The image manifest as fetched.
    fetched: FetchedManifest,
    manifest: Manifest,
    /// The index it was chosen from, if any.
    index: Option<FetchedManifest>,
}

/// The config and (unless `config_only`) the layers the store lacks, each
/// once, in manifest order, and how many it has already (reported as
/// skipped). Non-distributable layers are not wanted.
fn missing_blobs(
    store: &Store,
    manifest: &Manifest,
    config_only: bool,
    emit: &dyn Fn(Progress),
) -> Result<(VecDeque<Descriptor>, usize)> {
    let mut wanted: Vec<Descriptor> = vec![manifest.config.clone()];
    for layer in manifest.layers.iter().filter(|_| !config_only) {
        if layer.urls.as_ref().is_some_and(|u| !u.is_empty())
            && layer.media_type.contains("foreign")
        {
            // Non-distributable layers are not on the registry.
            continue;
        }
        if !wanted.iter().any(|d| d.digest == layer.digest) {
            wanted.push(layer.clone());
        }
    }
    let mut missing = VecDeque::new();
    let mut present = 0;
    for d in wanted {
        if store_has(store, &d)? {
            present += 1;
            emit(Progress::BlobSkipped {
                digest: d.digest,
                why: SkipReason::InStore,
            });
        } else {
            missing.push_back(d);
        }
    }
    Ok((missing, present))
}

/// The store tag a pull sets: none with `no_tag`, else the one asked for,
/// else the reference's `repository:tag` when it has a tag and no digest.
fn pull_tag(reference: &Reference, opts: &PullOptions) -> Option<String> {
    if opts.no_tag {
        return None;
    }
    opts.tag
        .clone()
        .or_else(|| match (reference.tag(), reference.digest()) {
            (Some(t), None) => Some(format!("{}:{t}", reference.repository())),
            _ => None,
        })
}

impl RegistryClient {
    /// Pulls `reference` into `store`. Only blobs missing from the store are
    /// downloaded; each is verified against digest and size before it is
    /// committed. Manifests are stored after their content and the tag is
    /// set last, so the store never holds a tag to a partial image.
    pub fn pull(
        &self,
        store: &Store,
        reference: &Reference,
        opts: &PullOptions,
    ) -> Result<PulledImage> {
        let emit = |p: Progress| {
            if let Some(f) = &opts.progress {
                f(&p);
            }
        };
        let Resolved {
            repo,
            fetched,
            manifest,
            index,
        } = self.resolve_manifest(reference, opts.platform.as_ref())?;
        emit(Progress::Resolved {
            reference: reference.to_string(),
            digest: fetched.digest,
        });
        if manifest.config.size > self.inner.opts.max_config_bytes {
            return Err(Error::JsonTooLarge {
                what: format!("config {}", manifest.config.digest),
                limit: self.inner.opts.max_config_bytes,
            });
        }

        let (missing, present) = missing_blobs(store, &manifest, opts.config_only, &emit)?;
        let n_fetch = missing.len();
        let bytes_fetched: u64 = missing.iter().map(|d| d.size).sum();
        self.fetch_blobs(store, &repo, missing, opts.progress.as_ref())?;
        let config = self.read_config(store, &manifest)?;

        put_verified(store, &fetched)?;
        if let Some(index) = &index {
            put_verified(store, index)?;
        }
        let tag = pull_tag(reference, opts);
        if let Some(t) = &tag {
            store
                .set_tag(t, &fetched.digest)
                .map_err(|source| Error::Store {
                    what: format!("tag {t}"),
                    source,
                })?;
        }
        Ok(PulledImage {
            manifest_digest: fetched.digest,
            index_digest: index.map(|i| i.digest),
            manifest,
            config,
            tag,
            blobs_fetched: n_fetch,
            bytes_fetched,
            blobs_present: present,
        })
    }

    /// The image manifest `reference` names: the manifest itself, or from
    /// an index the one for `platform` (the host's when `None`), fetched
    /// and checked against the index's size. An index pointing at another
    /// index is refused.
    fn resolve_manifest(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<Resolved> {
        let (repo, top) = self.fetch_manifest_from(reference)?;
        let what = format!("manifest {} of {reference}", top.digest);
        let (fetched, index) =
            match ManifestOrIndex::decode(&top.bytes, top.media_type.as_deref(), &what)? {
                ManifestOrIndex::Manifest(_) => (top, None),
                ManifestOrIndex::Index(index) => {
                    let child = self.platform_manifest(&repo, &index, reference, platform)?;
                    (child, Some(top))
                }
            };
        let what = format!("manifest {}", fetched.digest);
        let manifest =
            match ManifestOrIndex::decode(&fetched.bytes, fetched.media_type.as_deref(), &what)? {
                ManifestOrIndex::Manifest(m) => *m,
                ManifestOrIndex::Index(_) => {
                    return Err(Error::Protocol {
                        url: repo.url(&format!("manifests/{}", fetched.digest)),
                        reason: "an index entry points at another index".into(),
                    });
                }
            };
        Ok(Resolved {
            repo,
            fetched,
            manifest,
            index,
        })
    }

    /// The entry of `index` for `platform` (the host's when `None`; none
    /// is an error listing the platforms there are), fetched and checked
    /// against the size the index gives.
    fn platform_manifest(
        &self,
        repo: &Repo,
        index: &Index,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<FetchedManifest> {
        let want = platform.cloned().unwrap_or_else(host_platform);
        let chosen = index
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| platform_matches(&want, p))
            })
            .ok_or_else(|| Error::NoPlatform {
                reference: reference.to_string(),
                platform: platform_string(&want),
                available: index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(platform_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let child = self.get_manifest(repo, &chosen.digest.to_string())?;
        if child.bytes.len() as u64 != chosen.size {
            return Err(Error::Verify {
                digest: chosen.digest,
                url: repo.url(&format!("manifests/{}", chosen.digest)),
                reason: format!(
                    "manifest is {} bytes, the index says {}",
                    child.bytes.len(),
                    chosen.size
                ),
            });
        }
        Ok(child)
    }

    /// The pulled image's config, read back from the store (capped).
    fn read_config(&self, store: &Store, manifest: &Manifest) -> Result<ImageConfig> {
        let config_bytes = store
            .read_blob(&manifest.config.digest, self.inner.opts.max_config_bytes)
            .map_err(|source| Error::Store {
                what: format!("read config {}", manifest.config.digest),
                source,
            })?;
        decode_json_capped(
            &config_bytes[..],
            self.inner.opts.max_config_bytes,
            &format!("config {}", manifest.config.digest),
        )
    }

    /// Downloads `blobs` with at most `parallel` at once; the first error
    /// stops the others from starting new blobs.
    pub(crate) fn fetch_blobs(
        &self,
        store: &Store,
        repo: &Repo,
        blobs: VecDeque<Descriptor>,
        progress: Option<&ProgressFn>,
    ) -> Result<()> {
        let queue = Mutex::new(blobs);
        let failed = AtomicBool::new(false);
        let errors = Mutex::new(Vec::new());
        let n_workers = self.inner.opts.parallel.max(1);
        std::thread::scope(|scope| {
            for _ in 0..n_workers {
                scope.spawn(|| {
                    loop {
                        if failed.load(Ordering::SeqCst) {
                            return;
                        }
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        let Some(desc) = next else { return };
                        if let Err(e) = self.fetch_blob(store, repo, &desc, progress) {
                            failed.store(true, Ordering::SeqCst);
                            errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                            return;
                        }
                    }
                });
            }
        });
        match errors
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .next()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One blob: GET (redirects followed without credentials off-origin),
    /// streamed into a [`buildr_cache::BlobWriter`] that is committed only
    /// if exactly `size` bytes hashing to `digest` arrived. A broken
    /// connection restarts the blob (bounded); a wrong body does not.
    pub(crate) fn fetch_blob(
        &self,
        store: &Store,
        repo: &Repo,
        desc: &Descriptor,
        progress: Option<&ProgressFn>,
    ) -> Result<()> {
        let emit = |p: Progress| {
            if let Some(f) = progress {
                f(&p);
            }
        };
        let url = repo.url(&format!("blobs/{}", desc.digest));
        let scopes = [pull_scope(&repo.name)];
        let tries = self.inner.opts.max_tries.max(1);
        let mut attempt = 0;
        emit(Progress::BlobStart {
            digest: desc.digest,
            size: desc.size,
        });
        loop {
            attempt += 1;
            let result = self.fetch_blob_once(store, repo, desc, &url, &scopes, &emit);
            match result {
                Ok(()) => break,
                Err(e) if attempt < tries && is_transient(&e) => {
                    tracing::debug!(%url, error = %e, attempt, "blob download interrupted, restarting");
                    std::thread::sleep(self.inner.transport.backoff(attempt));
                }
                Err(e) => return Err(e),
            }
        }
        self.remember_blob(&repo.host, desc.digest, &repo.name);
        emit(Progress::BlobDone {
            digest: desc.digest,
        });
        Ok(())
    }

    fn fetch_blob_once(
        &self,
        store: &Store,
        repo: &Repo,
        desc: &Descriptor,
        url: &str,
        scopes: &[String],
        emit: &dyn Fn(Progress),
    ) -> Result<()> {
        let resp = self.request(repo, scopes, Method::Get, url, &[], &ReqBody::Empty)?;
        if resp.status != 200 {
            return Err(resp.into_status_error(Method::Get));
        }
        let final_url = resp.url.clone();
        let verify = |reason: String| Error::Verify {
            digest: desc.digest,
            url: final_url.clone(),
            reason,
        };
        if let Some(len) = resp
            .header("content-length")
            .and_then(|l| l.trim().parse::<u64>().ok())
            && len != desc.size
        {
            return Err(verify(format!(
                "the registry sends {len} bytes, the descriptor says {}",
                desc.size
            )));
        }
        let mut writer = store.blob_writer().map_err(|source| Error::Store {
            what: format!("start blob {}", desc.digest),
            source,
        })?;
        let mut body = resp.body.into_reader().take(desc.size + 1);
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0u64;
        let mut last_report = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Dropping `writer` removes its temp file.
                    return Err(Error::Transport {
                        method: "GET",
                        url: final_url.clone(),
                        source: Box::new(ureq::Error::Io(e)),
                    });
                }
            };
            done += n as u64;
            if done > desc.size {
                return Err(verify(format!(
                    "body is longer than the descriptor's {} bytes",
                    desc.size
                )));
            }
            writer
                .write_all(&buf[..n])
                .map_err(|e| Error::io("write blob", store.root(), e))?;
            if done - last_report >= 1 << 20 || done == desc.size {
                last_report = done;
                emit(Progress::BlobBytes {
                    digest: desc.digest,
                    done,
                    total: desc.size,
                });
            }
        }
        if done != desc.size {
            return Err(verify(format!(
                "body ended after {done} of {} bytes",
                desc.size
            )));
        }
        writer
            .commit(Some(desc.digest))
            .map_err(|source| match source {
                buildr_cache::Error::DigestMismatch { actual, .. } => {
                    verify(format!("content hashes to {actual}"))
                }
                source => Error::Store {
                    what: format!("commit blob {}", desc.digest),
                    source,
                },
            })?;
        Ok(())
    }
}

/// Whether the store has the blob with the descriptor's size and content.
/// A blob that no longer hashes to its digest (swapped or damaged on
/// disk) counts as missing: it is fetched again, and the verified copy
/// replaces it.
pub(crate) fn store_has(store: &Store, d: &Descriptor) -> Result<bool> {
    let has = store.has_blob(&d.digest).map_err(|source| Error::Store {
        what: format!("look up blob {}", d.digest),
        source,
    })?;
    if !has || store.blob_size(&d.digest).ok() != Some(d.size) {
        return Ok(false);
    }
    match store.verify_blob(&d.digest) {
        Ok(()) => Ok(true),
        Err(buildr_cache::Error::CorruptBlob { .. }) => {
            tracing::warn!(digest = %d.digest, "blob in the store is corrupt; fetching it again");
            Ok(false)
        }
        Err(source) => Err(Error::Store {
            what: format!("verify blob {}", d.digest),
            source,
        }),
    }
}

fn put_verified(store: &Store, m: &FetchedManifest) -> Result<()> {
    let mut w = store.blob_writer().map_err(|source| Error::Store {
        what: format!("start manifest {}", m.digest),
        source,
    })?;
    w.write_all(&m.bytes)
        .map_err(|e| Error::io("write blob", store.root(), e))?;
    w.commit(Some(m.digest)).map_err(|source| Error::Store {
        what: format!("commit manifest {}", m.digest),
        source,
    })?;
    Ok(())
}

/// Unpacks one pulled layer blob from `store` into `dest` with the
/// hardened extractor; the blob is checked against its digest and size as
/// it is read, to its last byte (a corrupt blob is an error even if the tar
/// stream ended before it). Reading and decompressing run on a thread of
/// their own, a few chunks ahead of the extractor, so inflating overlaps
/// with the file creation the extractor waits on.
pub fn unpack_layer(
    store: &Store,
    layer: &Descriptor,
    dest: &std::path::Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    unpack_layer_as(store, layer, None, dest, opts)
}

/// [`unpack_layer`], also checking that the uncompressed tar hashes to
/// `diff_id` (the config's name for the layer, which names its snapshot):
/// a mismatch is an error when the stream ends, so no snapshot is ever
/// made under a diff id from other bytes (an image config or a cache
/// entry naming another layer's diff id cannot plant content there).
pub fn unpack_layer_as(
    store: &Store,
    layer: &Descriptor,
    diff_id: Option<&Digest>,
    dest: &std::path::Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    if !is_layer_media_type(&layer.media_type) {
        return Err(Error::BadEntry {
            entry: layer.digest.to_string(),
            reason: format!("unsupported layer media type {:?}", layer.media_type),
        });
    }
    let store_err = |source| Error::Store {
        what: format!("read layer {}", layer.digest),
        source,
    };
    let blob = store
        .open_blob_sized(&layer.digest, layer.size)
        .map_err(store_err)?;
    let (chunks, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    let expected = diff_id.copied();
    let reader = std::thread::Builder::new()
        .name("layer-inflate".into())
        .spawn(move || inflate(blob, expected, &chunks))
        .map_err(|source| Error::Read { entries: 0, source })?;
    let mut tar = Chunks {
        rx,
        chunk: Vec::new(),
        pos: 0,
    };
    let extracted = extract_layer(&mut tar, dest, opts);
    // Read to the end, so the thread reaches the blob's last byte and its
    // check; after a failed extraction, just let it stop.
    let drained = match &extracted {
        Ok(_) => io::copy(&mut tar, &mut io::sink()).map(|_| ()),
        Err(_) => Ok(()),
    };
    drop(tar);
    let checked = reader.join().unwrap_or(Ok(Err(InflateError::Panicked)));
    // A blob that fails its check is named as such, whatever the
    // extractor made of the bytes before.
    let checked = checked.map_err(store_err)?;
    let stats = extracted?;
    drained.map_err(|source| Error::Read {
        entries: stats.entries,
        source,
    })?;
    checked.map_err(|e| Error::Read {
        entries: stats.entries,
        source: match e {
            InflateError::Stream(source) => source,
            panicked => io::Error::other(panicked),
        },
    })?;
    Ok(stats)
}

/// Why [`inflate`]'s stream of a layer ended badly, when the blob itself
/// checked out.
#[derive(Debug, thiserror::Error)]
enum InflateError {
    #[error("the layer reader panicked")]
    Panicked,
    /// Decompressing or hashing the layer failed: a copy (kind and message)
    /// of the error the extractor got as the last item of the channel.
    #[error(transparent)]
    Stream(io::Error),
}

/// The reader thread of [`unpack_layer`]: sends the decompressed tar in
/// 1 MiB chunks, a decompression error as the last item, then checks the
/// blob to its end. The outer error is the store's verdict on the blob.
fn inflate(
    mut blob: buildr_cache::BlobReader,
    diff_id: Option<Digest>,
    chunks: &mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> std::result::Result<std::result::Result<(), InflateError>, buildr_cache::Error> {
    let sent = (|| -> io::Result<bool> {
        let mut tar = decompress(&mut blob)?;
        let mut hasher = diff_id.map(|_| buildr_cache::Hasher::new());
        loop {
            let mut chunk = vec![0u8; 1 << 20];
            let mut filled = 0;
            while filled < chunk.len() {
                match tar.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                if let (Some(want), Some(hasher)) = (diff_id, hasher) {
                    let got = hasher.finish();
                    if got != want {
                        return Err(io::Error::other(format!(
                            "the layer's tar hashes to {got}, not to its diff id {want}"
                        )));
                    }
                }
                return Ok(true);
            }
            chunk.truncate(filled);
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            if chunks.send(Ok(chunk)).is_err() {
                // The extractor stopped (it failed): nothing left to check.
                return Ok(false);
            }
        }
    })();
    match sent {
        Ok(true) => blob.finish().map(Ok),
        Ok(false) => Ok(Ok(())),
        Err(e) => {
            // The blob's own check failing shows here as a read error:
            // report it as the store's verdict on the blob.
            blob.finish()?;
            let copy = io::Error::new(e.kind(), e.to_string());
            let _ = chunks.send(Err(e));
            Ok(Err(InflateError::Stream(copy)))
        }
    }
}

/// The consuming end of [`inflate`]'s channel as a `Read`.
struct Chunks {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The sender is done: the end of the tar.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Media types of layers a pull can unpack.
pub fn is_layer_media_type(m: &str) -> bool {
    matches!(
        m,
        media_type::OCI_LAYER
            | media_type::OCI_LAYER_GZIP
            | media_type::OCI_LAYER_ZSTD
            | media_type::DOCKER_LAYER
            | media_type::DOCKER_LAYER_GZIP
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = parse_platform("linux/arm64").unwrap();
        let have = |a: &str, v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: a.into(),
            variant: v.map(Into::into),
            ..Platform::default()
        };
        assert!(platform_matches(&p, &have("arm64", Some("v8"))));
        assert!(platform_matches(
            &parse_platform("linux/arm64/v8").unwrap(),
            &have("arm64", None)
        ));
        assert!(!platform_matches(
            &parse_platform("linux/arm/v6").unwrap(),
            &have("arm", Some("v7"))
        ));
        assert!(!platform_matches(&p, &have("amd64", None)));
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//x").is_err());
        assert_eq!(
            parse_platform("linux/x86_64").unwrap().architecture,
            "amd64"
        );
        assert_eq!(host_platform().os, "linux");
    }
}
