//! [`RegistryClient`]: options, the authenticated request path shared by
//! pull and push, manifests and blob reads.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buildr_cache::Digest;

use super::auth::{AuthCache, Challenge};
use super::config::{Endpoint, RegistryConfig};
use super::creds::{Anonymous, CredentialSource, Credentials, DockerConfig};
use super::transport::{HttpOptions, Method, ReqBody, Response, Transport, origin_of};
use crate::error::{Error, Result};
use crate::image::media_type;
use crate::reference::{DEFAULT_DOMAIN, Reference};

/// Where Docker Hub's API lives.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Every manifest type buildr reads, for `Accept`.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Options of a [`RegistryClient`].
#[derive(Clone)]
pub struct ClientOptions {
    /// Mirrors and insecure registries.
    pub config: RegistryConfig,
    /// Where credentials come from (docker's config.json, fixed, none).
    pub credentials: Arc<dyn CredentialSource>,
    /// Time to establish a connection, TLS included.
    pub connect_timeout: Duration,
    /// Longest wait for any single read or write (a stalled body fails).
    pub read_timeout: Duration,
    /// Tries per request, the first included.
    pub max_tries: u32,
    /// First retry delay, doubled each try.
    pub backoff: Duration,
    /// Largest manifest or index accepted.
    pub max_manifest_bytes: u64,
    /// Largest image config accepted.
    pub max_config_bytes: u64,
    /// Blobs transferred at once.
    pub parallel: usize,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            config: RegistryConfig::default(),
            credentials: Arc::new(Anonymous),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_tries: 4,
            backoff: Duration::from_millis(250),
            max_manifest_bytes: 4 << 20,
            max_config_bytes: 8 << 20,
            parallel: 3,
            user_agent: format!("buildr/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl ClientOptions {
    /// Defaults with the registry config file and docker's `config.json`
    /// from their usual places (see [`RegistryConfig::load_default`] and
    /// [`DockerConfig::default_path`]).
    pub fn from_env() -> Result<ClientOptions> {
        Ok(ClientOptions {
            config: RegistryConfig::load_default()?,
            credentials: Arc::new(DockerConfig::load_default()?),
            ..ClientOptions::default()
        })
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_tries", &self.max_tries)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

/// A progress event of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The reference resolved to this manifest (the platform's, for an index).
    Resolved { reference: String, digest: Digest },
    /// A blob transfer starts.
    BlobStart { digest: Digest, size: u64 },
    /// Bytes of a blob transferred so far.
    BlobBytes {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// A blob is complete and verified.
    BlobDone { digest: Digest },
    /// A blob needed no transfer.
    BlobSkipped { digest: Digest, why: SkipReason },
    /// A manifest was uploaded.
    ManifestPushed { digest: Digest, target: String },
}

/// Why a blob was not transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Pull: already in the local store.
    InStore,
    /// Push: the registry already has it in the target repository.
    Exists,
    /// Push: mounted from another repository of the same registry.
    Mounted,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A manifest or index as fetched, verified against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A registry client: blocking, thread-safe, cheap to clone. Tokens and
/// the scheme of each host are cached for its life.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub opts: ClientOptions,
    pub transport: Transport,
    pub auth: AuthCache,
    /// (host, digest) -> a repository of that host known to hold the blob.
    pub known_blobs: Mutex<HashMap<(String, Digest), String>>,
}

/// A repository on one endpoint (the registry itself or a mirror).
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub host: String,
    pub base: String,
    pub name: String,
}

impl Repo {
    pub fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.name)
    }
}

impl RegistryClient {
    pub fn new(opts: ClientOptions) -> RegistryClient {
        let http = HttpOptions {
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            max_tries: opts.max_tries,
            backoff: opts.backoff,
            user_agent: opts.user_agent.clone(),
        };
        let transport = Transport::new(http, opts.config.clone());
        RegistryClient {
            inner: Arc::new(Inner {
                opts,
                transport,
                auth: AuthCache::default(),
                known_blobs: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// The endpoints to try for `domain` when pulling: its mirrors, then
    /// itself (Docker Hub's API host for `docker.io`).
    pub(crate) fn pull_endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .inner
            .opts
            .config
            .host(domain)
            .mirrors
            .iter()
            .filter_map(|m| Endpoint::parse(m).ok())
            .collect();
        out.push(self.push_endpoint(domain));
        out
    }

    pub(crate) fn push_endpoint(&self, domain: &str) -> Endpoint {
        let host = if domain == DEFAULT_DOMAIN {
            DOCKER_HUB_API
        } else {
            domain
        };
        Endpoint {
            host: host.to_owned(),
            scheme: None,
        }
    }

    pub(crate) fn repo(&self, endpoint: &Endpoint, name: &str) -> Result<Repo> {
        let base = self.inner.transport.base_url(endpoint)?;
        Ok(Repo {
            host: endpoint.host.clone(),
            base,
            name: name.to_owned(),
        })
    }

    fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        // Docker Hub's credentials are stored under docker.io.
        let key = if host == DOCKER_HUB_API {
            DEFAULT_DOMAIN
        } else {
            host
        };
        self.inner.opts.credentials.get(key)
    }

    /// Checks that `creds` are accepted by the registry `domain` (what
    /// `login` does before saving them).
    pub fn check_login(&self, domain: &str, creds: &Credentials) -> Result<()> {
        let endpoint = self.push_endpoint(domain);
        let base = self.inner.transport.base_url(&endpoint)?;
        let url = format!("{base}/v2/");
        let origin = origin_of(&url)?;
        let resp = self
            .inner
            .transport
            .send(Method::Get, &url, &[], &ReqBody::Empty, None)?;
        let header = match resp.status {
            200 => return Ok(()),
            401 => match resp.header("www-authenticate").and_then(Challenge::parse) {
                Some(Challenge::Basic) => creds.basic_header(),
                Some(ch @ Challenge::Bearer { .. }) => {
                    self.inner.auth.set_challenge(&endpoint.host, ch);
                    self.inner
                        .auth
                        .authorization(&self.inner.transport, &endpoint.host, &[], Some(creds))?
                        .unwrap_or_default()
                }
                None => {
                    return Err(Error::Auth {
                        registry: domain.to_owned(),
                        reason: "unsupported authentication challenge".into(),
                    });
                }
            },
            _ => return Err(resp.into_status_error(Method::Get)),
        };
        let resp = self.inner.transport.send(
            Method::Get,
            &url,
            &[],
            &ReqBody::Empty,
            Some((&origin, &header)),
        )?;
        match resp.status {
            200 => Ok(()),
            401 | 403 => Err(Error::Auth {
                registry: domain.to_owned(),
                reason: "credentials were refused".into(),
            }),
            _ => Err(resp.into_status_error(Method::Get)),
        }
    }

    /// A request to a repository with authentication: the cached
    /// authorization first; on 401 the challenge is read, a token fetched
    /// and the request tried once more.
    pub(crate) fn request(
        &self,
        repo: &Repo,
        scopes: &[String],
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &ReqBody<'_>,
    ) -> Result<Response> {
        let creds = self.credentials(&repo.host)?;
        let origin = origin_of(&repo.base)?;
        let auth = &self.inner.auth;
        let transport = &self.inner.transport;
        let mut header = auth.authorization(transport, &repo.host, scopes, creds.as_ref())?;
        let mut retried = false;
        loop {
            let resp = transport.send(
                method,
                url,
                headers,
                body,
                header.as_deref().map(|h| (origin.as_str(), h)),
            )?;
            if resp.status != 401 || retried {
                if resp.status == 401 {
                    return Err(Error::Auth {
                        registry: repo.host.clone(),
                        reason: format!(
                            "{} {} was refused ({})",
                            method.as_str(),
                            url,
                            if creds.is_some() {
                                "credentials rejected"
                            } else {
                                "no credentials configured"
                            }
                        ),
                    });
                }
                return Ok(resp);
            }
            let challenge = resp
                .header("www-authenticate")
                .and_then(Challenge::parse)
                .ok_or_else(|| Error::Auth {
                    registry: repo.host.clone(),
                    reason: format!("{url} answered 401 without a usable challenge"),
                })?;
            if challenge == Challenge::Basic && creds.is_none() {
                return Err(Error::Auth {
                    registry: repo.host.clone(),
                    reason: "basic authentication required and no credentials configured".into(),
                });
            }
            auth.set_challenge(&repo.host, challenge);
            auth.forget_token(&repo.host, scopes);
            header = auth.authorization(transport, &repo.host, scopes, creds.as_ref())?;
            retried = true;
        }
    }

    /// Fetches a manifest or index by tag or digest from `repo`, capped and
    /// verified (by digest when asked by digest; the digest is computed
    /// otherwise, and a `Docker-Content-Digest` header must agree).
    pub(crate) fn get_manifest(&self, repo: &Repo, reference: &str) -> Result<FetchedManifest> {
        let url = repo.url(&format!("manifests/{reference}"));
        let scopes = [pull_scope(&repo.name)];
        let resp = self.request(
            repo,
            &scopes,
            Method::Get,
            &url,
            &[("accept", MANIFEST_ACCEPT.to_owned())],
            &ReqBody::Empty,
        )?;
        if resp.status != 200 {
            return Err(resp.into_status_error(Method::Get));
        }
        let cap = self.inner.opts.max_manifest_bytes;
        let content_type = resp
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned());
        let header_digest = resp.header("docker-content-digest").map(str::to_owned);
        let bytes = resp.read_capped(cap, "manifest")?;
        if bytes.len() as u64 > cap {
            return Err(Error::JsonTooLarge {
                what: format!("manifest {url}"),
                limit: cap,
            });
        }
        let digest = Digest::of(&bytes);
        if let Ok(wanted) = reference.parse::<Digest>()
            && wanted != digest
        {
            return Err(Error::Verify {
                digest: wanted,
                url,
                reason: format!("manifest hashes to {digest}"),
            });
        }
        if let Some(h) = header_digest
            && let Ok(d) = h.parse::<Digest>()
            && d != digest
        {
            return Err(Error::Verify {
                digest: d,
                url,
                reason: format!("docker-content-digest says {d}, the body hashes to {digest}"),
            });
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
            .or(content_type)
            .filter(|m| !m.is_empty() && m != "application/json");
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Resolves a reference to its manifest (or index) on the first
    /// endpoint that has it (mirrors first), without storing anything.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let (_, m) = self.fetch_manifest_from(reference)?;
        Ok(m)
    }

    pub(crate) fn fetch_manifest_from(
        &self,
        reference: &Reference,
    ) -> Result<(Repo, FetchedManifest)> {
        let mut last = None;
        for endpoint in self.pull_endpoints(reference.domain()) {
            let attempt = self.repo(&endpoint, reference.path()).and_then(|repo| {
                let m = self.get_manifest(&repo, &reference.manifest_ref())?;
                Ok((repo, m))
            });
            match attempt {
                Ok(found) => return Ok(found),
                // A mirror that lies about a pinned digest is a hard error
                // only if nobody else has it; keep trying.
                Err(e) => {
                    tracing::debug!(endpoint = %endpoint.host, error = %e, "endpoint failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Protocol {
            url: reference.to_string(),
            reason: "no endpoint".into(),
        }))
    }

    pub(crate) fn remember_blob(&self, host: &str, digest: Digest, repo: &str) {
        self.inner
            .known_blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((host.to_owned(), digest), repo.to_owned());
    }

    pub(crate) fn known_repo(&self, host: &str, digest: &Digest) -> Option<String> {
        self.inner
            .known_blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(host.to_owned(), *digest))
            .cloned()
    }
}

pub(crate) fn pull_scope(name: &str) -> String {
    format!("repository:{name}:pull")
}

pub(crate) fn push_scope(name: &str) -> String {
    format!("repository:{name}:pull,push")
}

/// The media type to send a stored manifest with.
pub(crate) fn manifest_media_type(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(m) = v.get("mediaType").and_then(|m| m.as_str()) {
        return m.to_owned();
    }
    if v.get("manifests").is_some() {
        media_type::OCI_INDEX.to_owned()
    } else {
        media_type::OCI_MANIFEST.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_come_before_the_registry() {
        let text =
            "[registry.\"docker.io\"]\nmirrors = [\"127.0.0.1:5001\", \"https://m.example\"]\n";
        let config = RegistryConfig::parse(text, std::path::Path::new("t.toml")).unwrap();
        let c = RegistryClient::new(ClientOptions {
            config,
            ..ClientOptions::default()
        });
        let hosts: Vec<String> = c
            .pull_endpoints("docker.io")
            .into_iter()
            .map(|e| e.host)
            .collect();
        assert_eq!(
            hosts,
            ["127.0.0.1:5001", "m.example", "registry-1.docker.io"]
        );
        let hosts: Vec<String> = c
            .pull_endpoints("ghcr.io")
            .into_iter()
            .map(|e| e.host)
            .collect();
        assert_eq!(hosts, ["ghcr.io"]);
        assert_eq!(c.push_endpoint("docker.io").host, "registry-1.docker.io");
    }
}
