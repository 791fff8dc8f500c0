//! Push: blobs first (HEAD to skip what the repository has, a
//! cross-repository mount when the blob is known in another repository of
//! the same registry, else a monolithic or chunked upload), manifests last,
//! so the tag never points at a partial image.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use buildr_cache::{Digest, Store};

use super::auth::encode;
use super::client::{
    Progress, ProgressFn, RegistryClient, Repo, SkipReason, manifest_media_type, pull_scope,
    push_scope,
};
use super::transport::{Method, ReqBody, resolve_url};
use crate::error::{Error, Result};
use crate::flavour::EncodedManifest;
use crate::image::{Descriptor, Index, Manifest, ManifestOrIndex, media_type};
use crate::reference::Reference;

/// Options of [`RegistryClient::push`].
#[derive(Clone)]
pub struct PushOptions {
    /// Blobs up to this size go in one PUT; larger ones in PATCH chunks.
    pub monolithic_max: u64,
    /// Size of each PATCH chunk.
    pub chunk_size: u64,
    /// Repositories (paths on the same registry) that may hold the blobs,
    /// tried as mount sources.
    pub mount_from: Vec<String>,
    pub progress: Option<ProgressFn>,
    /// Called for a blob the store does not hold when it must be uploaded
    /// (the repository does not have it and no mount worked): brings it
    /// into the store, or says why it cannot (the error becomes the source
    /// of [`Error::MissingBlob`]).
    pub fetch_missing: Option<FetchMissingFn>,
}

/// See [`PushOptions::fetch_missing`].
pub type FetchMissingFn = std::sync::Arc<
    dyn Fn(&Descriptor) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            monolithic_max: 32 << 20,
            chunk_size: 16 << 20,
            mount_from: Vec::new(),
            progress: None,
            fetch_missing: None,
        }
    }
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("monolithic_max", &self.monolithic_max)
            .field("chunk_size", &self.chunk_size)
            .field("mount_from", &self.mount_from)
            .field("progress", &self.progress.is_some())
            .field("fetch_missing", &self.fetch_missing.is_some())
            .finish()
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the top manifest or index pushed: the stored one's unless
    /// its descriptors had to be converted to agree with its own type.
    pub digest: Digest,
    /// Size of that manifest or index.
    pub size: u64,
    pub uploaded: usize,
    pub bytes_uploaded: u64,
    pub existing: usize,
    pub mounted: usize,
}

impl RegistryClient {
    /// Pushes the image whose manifest (or index) `manifest` is in `store`
    /// to `target` (its tag, or its digest when it has no tag).
    pub fn push(
        &self,
        store: &Store,
        manifest: &Digest,
        target: &Reference,
        opts: &PushOptions,
    ) -> Result<PushReport> {
        let endpoint = self.push_endpoint(target.domain());
        let repo = self.repo(&endpoint, target.path())?;
        let mut report = PushReport {
            digest: *manifest,
            size: 0,
            uploaded: 0,
            bytes_uploaded: 0,
            existing: 0,
            mounted: 0,
        };
        let bytes = read_manifest(store, manifest, self.inner.opts.max_manifest_bytes)?;
        let top = match ManifestOrIndex::decode(&bytes, None, &format!("manifest {manifest}"))? {
            ManifestOrIndex::Manifest(m) => {
                let out = Outgoing::new(bytes, *manifest, &m)?;
                self.push_blobs(store, &repo, out.blobs, opts, &mut report)?;
                out.encoded
            }
            ManifestOrIndex::Index(index) => {
                let stored = EncodedManifest {
                    bytes,
                    digest: *manifest,
                };
                self.push_children(store, &repo, *index, stored, opts, &mut report)?
            }
        };
        let reference = target
            .tag()
            .map_or_else(|| top.digest.to_string(), str::to_owned);
        self.put_manifest(&repo, &reference, &top.bytes, &top.digest)?;
        report.digest = top.digest;
        report.size = top.size();
        if let Some(f) = &opts.progress {
            f(&Progress::ManifestPushed {
                digest: top.digest,
                target: target.to_string(),
            });
        }
        Ok(report)
    }

    /// Pushes each manifest of `index` with its blobs and returns the index
    /// to push last: `stored` as it is, or re-encoded when a child had to
    /// be converted (its digest changed).
    fn push_children(
        &self,
        store: &Store,
        repo: &Repo,
        mut index: Index,
        stored: EncodedManifest,
        opts: &PushOptions,
        report: &mut PushReport,
    ) -> Result<EncodedManifest> {
        let mut changed = false;
        for child in &mut index.manifests {
            let child_bytes =
                read_manifest(store, &child.digest, self.inner.opts.max_manifest_bytes)?;
            let what = format!("manifest {}", child.digest);
            let ManifestOrIndex::Manifest(m) =
                ManifestOrIndex::decode(&child_bytes, Some(&child.media_type), &what)?
            else {
                return Err(Error::Protocol {
                    url: what,
                    reason: "nested indexes are not supported".into(),
                });
            };
            let out = Outgoing::new(child_bytes, child.digest, &m)?;
            self.push_blobs(store, repo, out.blobs, opts, report)?;
            let pushed = &out.encoded;
            self.put_manifest(
                repo,
                &pushed.digest.to_string(),
                &pushed.bytes,
                &pushed.digest,
            )?;
            if pushed.digest != child.digest {
                child.media_type = out.media_type;
                child.digest = pushed.digest;
                child.size = pushed.size();
                changed = true;
            }
        }
        if changed {
            EncodedManifest::encode(&index)
        } else {
            Ok(stored)
        }
    }

    pub(crate) fn put_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<()> {
        let url = repo.url(&format!("manifests/{reference}"));
        let scopes = [push_scope(&repo.name)];
        let resp = self.request(
            repo,
            &scopes,
            Method::Put,
            &url,
            &[("content-type", manifest_media_type(bytes))],
            &ReqBody::Bytes(bytes),
        )?;
        if resp.status != 201 && resp.status != 200 {
            return Err(resp.into_status_error(Method::Put));
        }
        if let Some(h) = resp.header("docker-content-digest")
            && let Ok(d) = h.parse::<Digest>()
            && d != *digest
        {
            return Err(Error::Verify {
                digest: *digest,
                url,
                reason: format!("the registry stored the manifest as {d}"),
            });
        }
        Ok(())
    }

    pub(crate) fn push_blobs(
        &self,
        store: &Store,
        repo: &Repo,
        blobs: Vec<Descriptor>,
        opts: &PushOptions,
        report: &mut PushReport,
    ) -> Result<()> {
        let mut queue: VecDeque<Descriptor> = VecDeque::new();
        for b in blobs {
            if !queue.iter().any(|q| q.digest == b.digest) {
                queue.push_back(b);
            }
        }
        let queue = Mutex::new(queue);
        let failed = AtomicBool::new(false);
        let results = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.inner.opts.parallel.max(1) {
                scope.spawn(|| {
                    loop {
                        if failed.load(Ordering::SeqCst) {
                            return;
                        }
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        let Some(desc) = next else { return };
                        let r = self.push_blob(store, repo, &desc, opts);
                        if r.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((desc.size, r));
                    }
                });
            }
        });
        for (size, r) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            match r? {
                Outcome::Exists => report.existing += 1,
                Outcome::Mounted => report.mounted += 1,
                Outcome::Uploaded => {
                    report.uploaded += 1;
                    report.bytes_uploaded += size;
                }
            }
        }
        Ok(())
    }

    fn push_blob(
        &self,
        store: &Store,
        repo: &Repo,
        desc: &Descriptor,
        opts: &PushOptions,
    ) -> Result<Outcome> {
        let digest = desc.digest;
        let scopes = [push_scope(&repo.name)];
        let head_url = repo.url(&format!("blobs/{digest}"));
        let resp = self.request(repo, &scopes, Method::Head, &head_url, &[], &ReqBody::Empty)?;
        if resp.status == 200 {
            emit(
                opts,
                Progress::BlobSkipped {
                    digest,
                    why: SkipReason::Exists,
                },
            );
            self.remember_blob(&repo.host, digest, &repo.name);
            return Ok(Outcome::Exists);
        }
        let location = match self.try_mount(repo, digest, opts)? {
            Mounting::Mounted => return Ok(Outcome::Mounted),
            Mounting::Upload(location) => Some(location),
            Mounting::Refused => None,
        };
        // Only now is the blob read: a blob the store does not hold
        // (left remote by a cached build) may have been mounted above.
        let size = local_blob(store, repo, desc, opts)?;
        let location = match location {
            Some(l) => l,
            None => {
                let resp = self.post_empty(repo, &scopes, &repo.url("blobs/uploads/"))?;
                if resp.status != 202 {
                    return Err(resp.into_status_error(Method::Post));
                }
                upload_location(&resp.url, resp.header("location"))?
            }
        };
        emit(opts, Progress::BlobStart { digest, size });
        self.upload(store, repo, digest, size, location, opts)?;
        self.remember_blob(&repo.host, digest, &repo.name);
        emit(opts, Progress::BlobDone { digest });
        Ok(Outcome::Uploaded)
    }

    /// A POST with no body: opening an upload, or asking for a mount.
    fn post_empty(
        &self,
        repo: &Repo,
        scopes: &[String],
        url: &str,
    ) -> Result<super::transport::Response> {
        self.request(
            repo,
            scopes,
            Method::Post,
            url,
            &[("content-length", "0".into())],
            &ReqBody::Empty,
        )
    }

    /// Cross-repository mounts: from repositories this client saw the blob
    /// in, then the caller's; the first that works, or the upload a
    /// registry opened instead.
    fn try_mount(&self, repo: &Repo, digest: Digest, opts: &PushOptions) -> Result<Mounting> {
        let mut sources: Vec<String> = Vec::new();
        if let Some(r) = self.known_repo(&repo.host, &digest) {
            sources.push(r);
        }
        sources.extend(opts.mount_from.iter().cloned());
        sources.retain(|s| *s != repo.name);
        sources.dedup();
        for from in &sources {
            let url = repo.url(&format!(
                "blobs/uploads/?mount={}&from={}",
                encode(&digest.to_string()),
                encode(from)
            ));
            let scopes = [push_scope(&repo.name), pull_scope(from)];
            let resp = self.post_empty(repo, &scopes, &url)?;
            match resp.status {
                201 => {
                    emit(
                        opts,
                        Progress::BlobSkipped {
                            digest,
                            why: SkipReason::Mounted,
                        },
                    );
                    self.remember_blob(&repo.host, digest, &repo.name);
                    return Ok(Mounting::Mounted);
                }
                202 => {
                    // Not mountable: the registry opened an upload instead.
                    return Ok(Mounting::Upload(upload_location(
                        &resp.url,
                        resp.header("location"),
                    )?));
                }
                _ => {
                    tracing::debug!(from, status = resp.status, "mount refused");
                }
            }
        }
        Ok(Mounting::Refused)
    }

    /// Sends the blob to an open upload: one PUT up to
    /// `monolithic_max`, else PATCHed chunks and a closing PUT.
    fn upload(
        &self,
        store: &Store,
        repo: &Repo,
        digest: Digest,
        size: u64,
        location: String,
        opts: &PushOptions,
    ) -> Result<()> {
        let scopes = [push_scope(&repo.name)];
        let open_range = |start: u64, len: u64| -> Result<Box<dyn Read + Send>> {
            if start == 0 && len == size {
                // The whole blob: read through the store's verifying reader.
                let r = store
                    .open_blob_sized(&digest, size)
                    .map_err(|source| Error::Store {
                        what: format!("open blob {digest}"),
                        source,
                    })?;
                return Ok(Box::new(r));
            }
            // A chunk: the registry checks the whole digest on the final PUT.
            let mut f = open_blob_file(store, &digest)?;
            f.seek(SeekFrom::Start(start))
                .map_err(|e| Error::io("seek in blob", store.root(), e))?;
            Ok(Box::new(f.take(len)))
        };
        let put = |location: &str, body: &ReqBody<'_>| -> Result<()> {
            let url = with_query(location, &format!("digest={}", encode(&digest.to_string())));
            let resp = self.request(
                repo,
                &scopes,
                Method::Put,
                &url,
                &[("content-type", "application/octet-stream".into())],
                body,
            )?;
            if resp.status != 201 {
                return Err(resp.into_status_error(Method::Put));
            }
            Ok(())
        };
        if size <= opts.monolithic_max {
            let open = || open_range(0, size);
            return put(
                &location,
                &ReqBody::Reader {
                    len: size,
                    open: &open,
                },
            );
        }
        let chunk = opts.chunk_size.max(1);
        let mut location = location;
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let start = offset;
            let open = move || open_range(start, len);
            let resp = self.request(
                repo,
                &scopes,
                Method::Patch,
                &location,
                &[
                    ("content-type", "application/octet-stream".into()),
                    ("content-range", format!("{}-{}", start, start + len - 1)),
                ],
                &ReqBody::Reader { len, open: &open },
            )?;
            if resp.status != 202 {
                return Err(resp.into_status_error(Method::Patch));
            }
            location = upload_location(&resp.url, resp.header("location"))?;
            offset += len;
            emit(
                opts,
                Progress::BlobBytes {
                    digest,
                    done: offset,
                    total: size,
                },
            );
        }
        put(&location, &ReqBody::Bytes(&[]))
    }
}

/// What a mount attempt came to.
enum Mounting {
    Mounted,
    /// The registry opened an upload instead, at this location.
    Upload(String),
    Refused,
}

/// Reports `progress` to the caller's callback, if any.
fn emit(opts: &PushOptions, progress: Progress) {
    if let Some(f) = &opts.progress {
        f(&progress);
    }
}

/// The blob's size in the store, fetched first if the store does not hold
/// it and the caller can fetch it; refused if it is not what the
/// descriptor says.
fn local_blob(store: &Store, repo: &Repo, desc: &Descriptor, opts: &PushOptions) -> Result<u64> {
    let digest = desc.digest;
    let present = store.has_blob(&digest).map_err(|source| Error::Store {
        what: format!("find blob {digest} to push"),
        source,
    })?;
    if !present && let Some(fetch) = &opts.fetch_missing {
        fetch(desc).map_err(|source| Error::MissingBlob {
            url: repo.url(&format!("blobs/{digest}")),
            digest,
            source,
        })?;
    }
    let size = store.blob_size(&digest).map_err(|source| Error::Store {
        what: format!("find blob {digest} to push"),
        source,
    })?;
    if size != desc.size {
        return Err(Error::Verify {
            digest,
            url: store.root().display().to_string(),
            reason: format!(
                "stored blob is {size} bytes, the descriptor says {}",
                desc.size
            ),
        });
    }
    Ok(size)
}

enum Outcome {
    Exists,
    Mounted,
    Uploaded,
}

/// A manifest as it goes to the registry: converted when its descriptors
/// disagree with its own type (a Docker-typed base under an OCI manifest),
/// the stored bytes otherwise; and the blobs it names.
struct Outgoing {
    encoded: EncodedManifest,
    media_type: String,
    blobs: Vec<Descriptor>,
}

impl Outgoing {
    fn new(bytes: Vec<u8>, digest: Digest, manifest: &Manifest) -> Result<Outgoing> {
        let mut blobs = vec![manifest.config.clone()];
        blobs.extend(manifest.layers.iter().cloned());
        let fixed = manifest.normalized();
        let encoded = match &fixed {
            Some(fixed) => EncodedManifest::encode(fixed)?,
            None => EncodedManifest { bytes, digest },
        };
        let media_type = fixed
            .as_ref()
            .unwrap_or(manifest)
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
        Ok(Outgoing {
            encoded,
            media_type,
            blobs,
        })
    }
}

fn read_manifest(store: &Store, digest: &Digest, cap: u64) -> Result<Vec<u8>> {
    store.read_blob(digest, cap).map_err(|source| Error::Store {
        what: format!("read manifest {digest}"),
        source,
    })
}

/// Opens a blob file of the store's OCI layout (`blobs/sha256/<hex>`, its
/// documented layout) for a ranged read, refusing symlinks.
fn open_blob_file(store: &Store, digest: &Digest) -> Result<File> {
    let path = store.root().join("blobs/sha256").join(digest.hex());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| Error::io("open blob", &path, e))?;
    let meta = f.metadata().map_err(|e| Error::io("stat blob", &path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            "open blob",
            &path,
            std::io::Error::other("not a regular file"),
        ));
    }
    Ok(f)
}

fn upload_location(from: &str, location: Option<&str>) -> Result<String> {
    let location = location.ok_or_else(|| Error::Protocol {
        url: from.to_owned(),
        reason: "upload answer has no location".into(),
    })?;
    resolve_url(from, location)
}

fn with_query(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}
