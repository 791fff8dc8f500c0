//! Repository operations for content that is not an image: what a build
//! cache kept in a registry needs (many small manifests under their own
//! tags, blobs fetched or pushed in bulk, the tags of a repository).
//!
//! Everything talks to the repository's own host (never a mirror: a cache
//! is written there and must be read back from there) and verifies what it
//! reads as a pull does.

use std::collections::VecDeque;
use std::sync::Mutex;

use buildr_cache::{Digest, Store};

use super::client::{FetchedManifest, ProgressFn, RegistryClient, Repo, pull_scope};
use super::push::{PushOptions, PushReport};
use super::transport::{Method, ReqBody};
use crate::error::{Error, Result};
use crate::image::{Descriptor, Manifest, ManifestOrIndex};
use crate::reference::Reference;

/// Longest tag list read back (a page of `tags/list` is followed while the
/// registry names a next one).
const MAX_TAGS: usize = 1_000_000;

impl RegistryClient {
    fn own_repo(&self, repository: &Reference) -> Result<Repo> {
        let endpoint = self.push_endpoint(repository.domain());
        self.repo(&endpoint, repository.path())
    }

    /// The manifest `reference` (tag or digest) names in its repository,
    /// `None` when the registry has no such manifest or repository (404).
    /// Read from the repository's host only, capped and verified as
    /// [`RegistryClient::fetch_manifest`] does.
    pub fn find_manifest(&self, reference: &Reference) -> Result<Option<FetchedManifest>> {
        let repo = self.own_repo(reference)?;
        match self.get_manifest(&repo, &reference.manifest_ref()) {
            Ok(m) => Ok(Some(m)),
            Err(Error::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The size of blob `digest` in `repository` (a HEAD), `None` when the
    /// repository does not have it.
    pub fn blob_size(&self, repository: &Reference, digest: &Digest) -> Result<Option<u64>> {
        let repo = self.own_repo(repository)?;
        let url = repo.url(&format!("blobs/{digest}"));
        let scopes = [pull_scope(&repo.name)];
        let resp = self.request(&repo, &scopes, Method::Head, &url, &[], &ReqBody::Empty)?;
        match resp.status {
            200 => Ok(Some(
                resp.header("content-length")
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(resp.into_status_error(Method::Head)),
        }
    }

    /// The bytes of a small blob of `repository` (a config, a cache
    /// entry's metadata), at most `cap` bytes, verified against the
    /// descriptor's digest and size.
    pub fn fetch_blob_bytes(
        &self,
        repository: &Reference,
        desc: &Descriptor,
        cap: u64,
    ) -> Result<Vec<u8>> {
        let repo = self.own_repo(repository)?;
        let url = repo.url(&format!("blobs/{}", desc.digest));
        if desc.size > cap {
            return Err(Error::JsonTooLarge {
                what: format!("blob {}", desc.digest),
                limit: cap,
            });
        }
        let scopes = [pull_scope(&repo.name)];
        let resp = self.request(&repo, &scopes, Method::Get, &url, &[], &ReqBody::Empty)?;
        if resp.status != 200 {
            return Err(resp.into_status_error(Method::Get));
        }
        let bytes = resp.read_capped(cap, "blob")?;
        let digest = Digest::of(&bytes);
        if digest != desc.digest || bytes.len() as u64 != desc.size {
            return Err(Error::Verify {
                digest: desc.digest,
                url,
                reason: format!("{} bytes hashing to {digest} arrived", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Downloads `blobs` of `repository` into `store` (each verified before
    /// it is committed), several at once, skipping what the store has.
    pub fn fetch_blobs_into(
        &self,
        store: &Store,
        repository: &Reference,
        blobs: &[Descriptor],
        progress: Option<&ProgressFn>,
    ) -> Result<()> {
        let repo = self.own_repo(repository)?;
        let mut missing = VecDeque::new();
        for d in blobs {
            let have = store.has_blob(&d.digest).map_err(|source| Error::Store {
                what: format!("look for blob {}", d.digest),
                source,
            })?;
            if !have && !missing.iter().any(|m: &Descriptor| m.digest == d.digest) {
                missing.push_back(d.clone());
            }
        }
        self.fetch_blobs(store, &repo, missing, progress)
    }

    /// Pushes manifests already in `store` to `repository`, each under its
    /// tag: every blob they name first (each once, several at once, skipped
    /// or mounted where the registry has it), then the manifests. A
    /// manifest is sent as stored (an artifact's config type is its own).
    pub fn push_tagged(
        &self,
        store: &Store,
        repository: &Reference,
        manifests: &[(String, Digest)],
        opts: &PushOptions,
    ) -> Result<PushReport> {
        let repo = self.own_repo(repository)?;
        let mut report = PushReport {
            digest: manifests.first().map_or_else(|| Digest::of(b""), |m| m.1),
            size: 0,
            uploaded: 0,
            bytes_uploaded: 0,
            existing: 0,
            mounted: 0,
        };
        let cap = self.inner.opts.max_manifest_bytes;
        let mut bodies = Vec::with_capacity(manifests.len());
        let mut blobs = Vec::new();
        for (tag, digest) in manifests {
            let bytes = store
                .read_blob(digest, cap)
                .map_err(|source| Error::Store {
                    what: format!("read manifest {digest}"),
                    source,
                })?;
            let what = format!("manifest {digest}");
            let ManifestOrIndex::Manifest(m) = ManifestOrIndex::decode(&bytes, None, &what)? else {
                return Err(Error::Protocol {
                    url: what,
                    reason: "an index cannot be pushed as a tagged artifact".into(),
                });
            };
            let m: Manifest = *m;
            blobs.push(m.config.clone());
            blobs.extend(m.layers.iter().cloned());
            bodies.push((tag.clone(), *digest, bytes));
        }
        self.push_blobs(store, &repo, blobs, opts, &mut report)?;
        let queue = Mutex::new(bodies.into_iter().collect::<VecDeque<_>>());
        let first_error = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..self.inner.opts.parallel.max(1) {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        let Some((tag, digest, bytes)) = next else {
                            return;
                        };
                        if let Err(e) = self.put_manifest(&repo, &tag, &bytes, &digest) {
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Every tag of `repository` (`tags/list`, following its pages); empty
    /// when the repository does not exist.
    pub fn list_tags(&self, repository: &Reference) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let repo = self.own_repo(repository)?;
        let scopes = [pull_scope(&repo.name)];
        let mut url = repo.url("tags/list?n=1000");
        let mut out = Vec::new();
        loop {
            let resp = self.request(&repo, &scopes, Method::Get, &url, &[], &ReqBody::Empty)?;
            if resp.status == 404 {
                return Ok(out);
            }
            if resp.status != 200 {
                return Err(resp.into_status_error(Method::Get));
            }
            let next = resp
                .header("link")
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_owned()
                });
            let base = resp.url.clone();
            let bytes = resp.read_capped(64 << 20, "the tag list")?;
            let page: Page = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
                url: url.clone(),
                reason: format!("the tag list is not JSON: {e}"),
            })?;
            out.extend(page.tags.unwrap_or_default());
            if out.len() > MAX_TAGS {
                return Err(Error::Protocol {
                    url,
                    reason: format!("more than {MAX_TAGS} tags"),
                });
            }
            match next {
                Some(n) if !n.is_empty() => url = super::transport::resolve_url(&base, &n)?,
                _ => return Ok(out),
            }
        }
    }

    /// Deletes the manifest `digest` of `repository` (and so every tag on
    /// it). `false` when the registry did not have it.
    pub fn delete_manifest(&self, repository: &Reference, digest: &Digest) -> Result<bool> {
        let repo = self.own_repo(repository)?;
        let url = repo.url(&format!("manifests/{digest}"));
        let scopes = [format!("repository:{}:delete", repo.name)];
        let resp = self.request(&repo, &scopes, Method::Delete, &url, &[], &ReqBody::Empty)?;
        match resp.status {
            200 | 202 => Ok(true),
            404 => Ok(false),
            _ => Err(resp.into_status_error(Method::Delete)),
        }
    }
}
