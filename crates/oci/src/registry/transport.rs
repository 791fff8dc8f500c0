//! HTTP under the registry client: one blocking `ureq` agent per TLS
//! policy, bounded retries with backoff, redirects followed by hand so an
//! `Authorization` header never reaches another origin, and the choice
//! between HTTPS and plain HTTP.
//!
//! Scheme policy (docker's): HTTPS, verified, for every registry; plain HTTP
//! only for loopback hosts and registries configured `insecure`. A loopback
//! host is probed with plain HTTP first (nothing leaves the machine), then
//! HTTPS; an insecure registry with HTTPS first (certificate not verified),
//! then HTTP. Any other registry is never spoken to in plain HTTP: there is
//! no silent downgrade.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ureq::http::{self, HeaderMap, Uri};
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::{Agent, SendBody};

use super::config::{Endpoint, RegistryConfig, Scheme, is_loopback};
use crate::error::{Error, Result};

/// HTTP methods the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request body that can be produced again for a retry.
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Opens a fresh reader of exactly `len` bytes for each try.
    Reader {
        len: u64,
        open: &'a (dyn Fn() -> Result<Box<dyn Read + Send>> + Sync),
    },
}

/// Timeouts and retry policy.
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_tries: u32,
    pub backoff: Duration,
    pub user_agent: String,
}

/// A response whose status is known; the body is still to be read.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: ureq::Body,
    pub url: String,
}

impl Response {
    /// The body, at most `cap + 1` bytes (so a caller can tell "too
    /// long"); a broken read is a protocol error naming `what`.
    pub fn read_capped(self, cap: u64, what: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.body
            .into_reader()
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Protocol {
                url: self.url.clone(),
                reason: format!("reading {what}: {e}"),
            })?;
        Ok(bytes)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A short excerpt of an error body (registry error JSON), for messages.
    pub fn error_text(self) -> String {
        let mut buf = Vec::new();
        let _ = self.body.into_reader().take(2048).read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(errors) = v.get("errors").and_then(|e| e.as_array())
        {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{code} {msg}").trim().to_lowercase()
                })
                .collect();
            return parts.join("; ");
        }
        text.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
            .trim()
            .to_owned()
    }

    pub fn into_status_error(self, method: Method) -> Error {
        let url = self.url.clone();
        let status = self.status;
        Error::Status {
            method: method.as_str(),
            url,
            status,
            message: self.error_text(),
        }
    }
}

/// The HTTP layer shared by all registries of one client.
#[derive(Debug)]
pub(crate) struct Transport {
    opts: HttpOptions,
    config: RegistryConfig,
    verified: Agent,
    unverified: Agent,
    with_ca: Mutex<HashMap<String, Agent>>,
    schemes: Mutex<HashMap<String, Scheme>>,
}

impl Transport {
    pub fn new(opts: HttpOptions, config: RegistryConfig) -> Transport {
        let verified = agent(&opts, TlsConfig::builder().build());
        let unverified = agent(
            &opts,
            TlsConfig::builder().disable_verification(true).build(),
        );
        Transport {
            opts,
            config,
            verified,
            unverified,
            with_ca: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether plain HTTP (and unverified TLS) may be used with `host`.
    pub fn is_insecure(&self, host: &str) -> bool {
        is_loopback(host) || self.config.host(host).insecure
    }

    fn agent_for(&self, host: &str) -> Result<Agent> {
        let settings = self.config.host(host);
        if settings.insecure {
            return Ok(self.unverified.clone());
        }
        let Some(ca) = settings.ca else {
            return Ok(self.verified.clone());
        };
        let mut cache = self.with_ca.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = cache.get(host) {
            return Ok(a.clone());
        }
        let pem = fs::read(&ca).map_err(|e| Error::io("read CA file", &ca, e))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c.to_owned()),
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::Config {
                        path: ca.clone(),
                        reason: format!("bad pem: {e}"),
                    });
                }
            }
        }
        if certs.is_empty() {
            return Err(Error::Config {
                path: ca,
                reason: "no certificate in file".into(),
            });
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(certs)))
            .build();
        let a = agent(&self.opts, tls);
        cache.insert(host.to_owned(), a.clone());
        Ok(a)
    }

    /// The base URL (`scheme://host`) for an endpoint, probing the scheme
    /// once per host when the policy allows more than HTTPS.
    pub fn base_url(&self, endpoint: &Endpoint) -> Result<String> {
        let host = &endpoint.host;
        let scheme = match endpoint.scheme {
            Some(Scheme::Http) if !self.is_insecure(host) => {
                return Err(Error::InsecureRefused { host: host.clone() });
            }
            Some(s) => s,
            None => self.resolve_scheme(host)?,
        };
        Ok(format!("{}://{host}", scheme.as_str()))
    }

    fn resolve_scheme(&self, host: &str) -> Result<Scheme> {
        if !self.is_insecure(host) {
            return Ok(Scheme::Https);
        }
        if let Some(s) = self
            .schemes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
        {
            return Ok(*s);
        }
        let order = if is_loopback(host) {
            [Scheme::Http, Scheme::Https]
        } else {
            [Scheme::Https, Scheme::Http]
        };
        let mut last = None;
        for scheme in order {
            let url = format!("{}://{host}/v2/", scheme.as_str());
            match self.send_once(host, Method::Get, &url, &[], &ReqBody::Empty, None) {
                // Any registry answers /v2/ with 200 or 401.
                Ok(resp) if resp.status == 200 || resp.status == 401 => {
                    self.schemes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(host.to_owned(), scheme);
                    return Ok(scheme);
                }
                Ok(resp) => last = Some(resp.into_status_error(Method::Get)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Protocol {
            url: host.to_owned(),
            reason: "no usable scheme".into(),
        }))
    }

    /// One request, no retry, no redirect. `auth` is sent as is: callers
    /// decide which origin it belongs to (see [`Transport::send`]).
    fn send_once(
        &self,
        host: &str,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &ReqBody<'_>,
        auth: Option<&str>,
    ) -> Result<Response> {
        let agent = self.agent_for(host)?;
        let mut builder = http::Request::builder().method(method.as_str()).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        if let Some(a) = auth {
            builder = builder.header("authorization", a);
        }
        let transport_err = |source: ureq::Error| Error::Transport {
            method: method.as_str(),
            url: url.to_owned(),
            source: Box::new(source),
        };
        let result = match body {
            ReqBody::Empty => {
                let req = builder.body(()).map_err(|e| transport_err(e.into()))?;
                agent.run(req)
            }
            ReqBody::Bytes(bytes) => {
                let req = builder
                    .header("content-length", bytes.len().to_string())
                    .body(*bytes)
                    .map_err(|e| transport_err(e.into()))?;
                agent.run(req)
            }
            ReqBody::Reader { len, open } => {
                let reader = open()?;
                let req = builder
                    .header("content-length", len.to_string())
                    .body(SendBody::from_owned_reader(reader))
                    .map_err(|e| transport_err(e.into()))?;
                agent.run(req)
            }
        };
        let resp = result.map_err(transport_err)?;
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            url: url.to_owned(),
        })
    }

    /// A request with bounded retries (5xx, 429 honouring `Retry-After`,
    /// connection errors and timeouts) and redirects followed by hand.
    ///
    /// `auth` is `(origin, header)`: the header is attached only to
    /// requests whose origin is exactly `origin`, so a redirect to a blob
    /// CDN or any other host or port never carries it. Redirects are
    /// followed for GET and HEAD only (at most 5).
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &ReqBody<'_>,
        auth: Option<(&str, &str)>,
    ) -> Result<Response> {
        let mut url = url.to_owned();
        for _ in 0..=5 {
            let host = host_of(&url)?;
            let header =
                auth.and_then(|(origin, h)| (origin_of(&url).ok()? == origin).then_some(h));
            let resp = self.send_retrying(&host, method, &url, headers, body, header)?;
            let redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308);
            if !redirect || !matches!(method, Method::Get | Method::Head) {
                return Ok(resp);
            }
            let Some(location) = resp.header("location") else {
                return Err(Error::Protocol {
                    url,
                    reason: format!("redirect {} without a location", resp.status),
                });
            };
            let next = resolve_url(&url, location)?;
            let next_scheme = Uri::try_from(next.as_str())
                .ok()
                .and_then(|u| u.scheme_str().map(str::to_owned));
            let next_host = host_of(&next)?;
            if next_scheme.as_deref() == Some("http") && !self.is_insecure(&next_host) {
                return Err(Error::InsecureRefused { host: next_host });
            }
            tracing::debug!(from = %url, to = %next, "following redirect");
            url = next;
        }
        Err(Error::Protocol {
            url,
            reason: "too many redirects".into(),
        })
    }

    fn send_retrying(
        &self,
        host: &str,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &ReqBody<'_>,
        auth: Option<&str>,
    ) -> Result<Response> {
        let tries = self.opts.max_tries.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= tries;
            match self.send_once(host, method, url, headers, body, auth) {
                Ok(resp) if (resp.status >= 500 || resp.status == 429) && !last => {
                    let wait = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                    tracing::debug!(%url, status = resp.status, ?wait, "retrying");
                    drop(resp);
                    thread::sleep(wait);
                }
                Ok(resp) => return Ok(resp),
                Err(e) if !last && is_transient(&e) => {
                    tracing::debug!(%url, error = %e, "retrying after error");
                    thread::sleep(self.backoff(attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Exponential backoff: `backoff * 2^(attempt-1)`, at most 10 s.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(6);
        (self.opts.backoff * factor).min(Duration::from_secs(10))
    }
}

fn agent(opts: &HttpOptions, tls: TlsConfig) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .timeout_per_write(Some(opts.read_timeout))
        .user_agent(opts.user_agent.as_str())
        .accept_encoding("identity")
        .tls_config(tls)
        .build()
        .into()
}

/// Errors worth another try: the connection, not the content.
pub(crate) fn is_transient(e: &Error) -> bool {
    match e {
        Error::Transport { source, .. } => matches!(
            **source,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::Protocol(_)
                | ureq::Error::HostNotFound
        ),
        _ => false,
    }
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp.header("retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

/// `host[:port]` of a URL, as registries are keyed.
pub(crate) fn host_of(url: &str) -> Result<String> {
    let uri = Uri::try_from(url).map_err(|e| Error::Protocol {
        url: url.chars().take(300).collect(),
        reason: format!("invalid url: {e}"),
    })?;
    uri.authority()
        .map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_owned())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Protocol {
            url: url.chars().take(300).collect(),
            reason: "url has no host".into(),
        })
}

/// `scheme://host:port` with the default port made explicit, lower-case.
pub(crate) fn origin_of(url: &str) -> Result<String> {
    let uri = Uri::try_from(url).map_err(|e| Error::Protocol {
        url: url.chars().take(300).collect(),
        reason: format!("invalid url: {e}"),
    })?;
    let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    Ok(format!("{scheme}://{host}:{port}"))
}

/// Resolves a `Location` header against the URL it came from.
pub(crate) fn resolve_url(base: &str, location: &str) -> Result<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_owned());
    }
    let uri = Uri::try_from(base).map_err(|e| Error::Protocol {
        url: base.to_owned(),
        reason: format!("invalid url: {e}"),
    })?;
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(config: &str) -> Transport {
        let opts = HttpOptions {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            max_tries: 1,
            backoff: Duration::from_millis(1),
            user_agent: "test".into(),
        };
        let config = RegistryConfig::parse(config, std::path::Path::new("t.toml")).unwrap();
        Transport::new(opts, config)
    }

    #[test]
    fn scheme_policy_never_downgrades() {
        let t = transport("[registry.\"insecure.example:5000\"]\ninsecure = true\n");
        let ep = |s: &str| Endpoint::parse(s).unwrap();
        // Remote registries: https, decided without any network traffic.
        assert_eq!(
            t.base_url(&ep("registry.example")).unwrap(),
            "https://registry.example"
        );
        assert_eq!(
            t.base_url(&ep("10.1.2.3:5000")).unwrap(),
            "https://10.1.2.3:5000"
        );
        // Plain http to them is refused, even when asked for explicitly.
        for host in [
            "http://registry.example",
            "http://10.1.2.3:5000",
            "http://127.0.0.1.example",
        ] {
            let err = t.base_url(&ep(host)).unwrap_err();
            assert!(
                matches!(err, Error::InsecureRefused { .. }),
                "{host}: {err:?}"
            );
        }
        // Loopback and configured-insecure hosts may use it.
        assert_eq!(
            t.base_url(&ep("http://127.0.0.1:5000")).unwrap(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            t.base_url(&ep("http://[::1]:5000")).unwrap(),
            "http://[::1]:5000"
        );
        assert_eq!(
            t.base_url(&ep("http://insecure.example:5000")).unwrap(),
            "http://insecure.example:5000"
        );
        assert!(t.is_insecure("localhost:1") && !t.is_insecure("insecure.example"));
    }

    #[test]
    fn origins_and_locations() {
        assert_eq!(
            origin_of("https://a.example/v2/").unwrap(),
            "https://a.example:443"
        );
        assert_eq!(
            origin_of("http://A.example:80/x").unwrap(),
            "http://a.example:80"
        );
        assert_ne!(
            origin_of("http://127.0.0.1:5000/").unwrap(),
            origin_of("http://127.0.0.1:5001/").unwrap()
        );
        assert_eq!(
            host_of("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        );
        let base = "http://h:1/v2/x/blobs/uploads/";
        assert_eq!(
            resolve_url(base, "/v2/x/u?a=1").unwrap(),
            "http://h:1/v2/x/u?a=1"
        );
        assert_eq!(resolve_url(base, "https://o/p").unwrap(), "https://o/p");
        assert_eq!(resolve_url(base, "//o:2/p").unwrap(), "http://o:2/p");
        assert_eq!(
            resolve_url(base, "abc").unwrap(),
            "http://h:1/v2/x/blobs/uploads/abc"
        );
        assert!(origin_of("not a url").is_err());
    }
}
