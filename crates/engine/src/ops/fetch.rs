//! `ADD <url>`: a streaming `http://` or `https://` GET (ureq with rustls,
//! the same client the registry code uses) into a temp file, hashed with
//! sha256 on the way for the cache key and `--checksum`.
//!
//! BuildKit's behaviour, kept here: the file is named after the last
//! segment of the URL's (decoded) path as written in the Dockerfile, or
//! `__unnamed__` (Content-Disposition is not used: the Dockerfile frontend
//! always passes that name); its mode is 0600 and its mtime the response's
//! `Last-Modified`, or the epoch when there is none; remote archives are
//! never extracted.
//!
//! Safety: at most [`Limits::max_redirects`] redirects, followed by our
//! code; credentials written in the URL (`https://user:pass@host/...`) go
//! only to that URL's own origin, never to where it redirects; an `https`
//! URL never redirects to plain `http`; a connect, response and per-read
//! timeout, so a stalled server fails the build; a size cap checked against
//! `Content-Length` up front and against the bytes as they arrive.

use std::fs::{File, FileTimes, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use buildr_cache::{Digest, Hasher};
use ureq::Agent;
use ureq::http::{self, Uri};

/// A downloaded file.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub file: tempfile::NamedTempFile,
    pub digest: Digest,
    /// The file name BuildKit uses: the last segment of the URL's path.
    pub name: String,
    /// `Last-Modified`, or the epoch: the file's mtime in the layer.
    pub modified: SystemTime,
}

/// Bounds on one download.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_redirects: usize,
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    /// For the response headers and for each read of the body.
    pub read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Go's http.Client default, which BuildKit uses.
            max_redirects: 10,
            max_bytes: 64 << 30,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// Why `ADD <url>` could not download; `url` is the URL as written, its
/// credentials redacted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{url}: invalid URL")]
    InvalidUrl {
        url: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("{url}: only http:// and https:// URLs are supported")]
    Scheme { url: String },
    #[error("{url}: no host in URL")]
    NoHost { url: String },
    #[error("{url}: bad request")]
    Request {
        url: String,
        #[source]
        source: http::Error,
    },
    /// The request failed; the message says why in words without ureq's
    /// debug noise ([`describe`]), so `cause` is shown, not chained.
    #[error("{url}: {}", describe(cause))]
    Transport { url: String, cause: ureq::Error },
    #[error("{url}: stopped after {max} redirects")]
    Redirects { url: String, max: usize },
    #[error("{url}: redirect {status} without a Location")]
    NoLocation { url: String, status: u16 },
    #[error("{url}: refusing the redirect from {from} to plain http {to}")]
    Downgrade {
        url: String,
        from: String,
        to: String,
    },
    /// `url` names the redirect's end when there was one.
    #[error("{url}: HTTP status {status} {reason}")]
    Status {
        url: String,
        status: u16,
        reason: &'static str,
    },
    #[error("{url}: {length} bytes is more than the {max} bytes ADD accepts")]
    Declared { url: String, length: u64, max: u64 },
    #[error("{url}: more than the {max} bytes ADD accepts")]
    TooLong { url: String, max: u64 },
    #[error("temp file in {}", dir.display())]
    TempFile {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading the body failed: ureq's error inside an io error, its
    /// message shown (its sources repeat it).
    #[error("{url}: download failed after {bytes} bytes: {cause}")]
    Read {
        url: String,
        bytes: u64,
        cause: std::io::Error,
    },
    #[error("{url}: write the download")]
    Write {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: got {total} bytes, Content-Length said {length}")]
    Short {
        url: String,
        total: u64,
        length: u64,
    },
    /// Syncing the file or setting its mode or times failed.
    #[error("{url}")]
    Finish {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// A URL split into what requests need, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    scheme: String,
    /// `host[:port]`, no userinfo.
    authority: String,
    /// Path and query.
    path: String,
    /// `user:password` from the URL, if any.
    userinfo: Option<String>,
}

impl Target {
    fn parse(url: &str) -> Result<Target, FetchError> {
        let shown = redact(url);
        let url = url.split('#').next().unwrap_or(url);
        let uri = Uri::try_from(url).map_err(|source| FetchError::InvalidUrl {
            url: shown.clone(),
            source,
        })?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            _ => return Err(FetchError::Scheme { url: shown }),
        };
        let no_host = || FetchError::NoHost { url: shown.clone() };
        let full = uri.authority().map(|a| a.as_str()).ok_or_else(no_host)?;
        let (userinfo, authority) = match full.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_owned()), rest.to_owned()),
            None => (None, full.to_owned()),
        };
        if authority.is_empty() || authority.starts_with(':') {
            return Err(no_host());
        }
        let path = uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        Ok(Target {
            scheme,
            authority,
            path,
            userinfo,
        })
    }

    fn origin(&self) -> String {
        let default_port = if self.scheme == "https" {
            ":443"
        } else {
            ":80"
        };
        let authority = self
            .authority
            .strip_suffix(default_port)
            .unwrap_or(&self.authority);
        format!("{}://{}", self.scheme, authority.to_ascii_lowercase())
    }

    /// The URL as requested: no credentials.
    fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }

    /// Where a `Location` header leads from here (credentials dropped).
    fn follow(&self, location: &str) -> Result<Target, FetchError> {
        let next = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("{}://{rest}", self.scheme)
        } else if location.starts_with('/') {
            format!("{}://{}{location}", self.scheme, self.authority)
        } else {
            let path = self.path.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{}://{}{dir}{location}", self.scheme, self.authority)
        };
        let mut next = Target::parse(&next)?;
        next.userinfo = None;
        Ok(next)
    }
}

/// `url` with any `user:password@` replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://xxxxx@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The name BuildKit's Dockerfile frontend gives a downloaded file: the
/// last element of the URL's decoded path, else `__unnamed__`.
pub(crate) fn file_name(url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let path = path.find('/').map_or("", |idx| &path[idx..]);
    let decoded = percent_decode(path);
    let base = decoded
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    match base {
        "" | "." | ".." => "__unnamed__".to_owned(),
        name => name.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn agent(limits: &Limits) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_connect(Some(limits.connect_timeout))
        .timeout_recv_response(Some(limits.read_timeout))
        .timeout_per_read(Some(limits.read_timeout))
        .user_agent("buildr")
        .accept_encoding("identity")
        .build()
        .into()
}

/// Downloads `url` into a temp file under `dir`.
pub(crate) fn fetch(url: &str, dir: &Path) -> Result<Fetched, FetchError> {
    fetch_with(url, dir, &Limits::default())
}

pub(crate) fn fetch_with(url: &str, dir: &Path, limits: &Limits) -> Result<Fetched, FetchError> {
    let shown = redact(url);
    let first = Target::parse(url)?;
    let (response, target) = get(&first, &shown, limits)?;
    let status = response.status();
    if !status.is_success() {
        let reason = status.canonical_reason().unwrap_or("");
        return Err(FetchError::Status {
            url: if target == first {
                shown
            } else {
                format!("{shown} (redirected to {})", target.url())
            },
            status: status.as_u16(),
            reason,
        });
    }
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = length
        && length > limits.max_bytes
    {
        return Err(FetchError::Declared {
            url: shown,
            length,
            max: limits.max_bytes,
        });
    }
    let modified = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
        .unwrap_or(UNIX_EPOCH);
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|source| FetchError::TempFile {
        dir: dir.to_owned(),
        source,
    })?;
    let mut body = response.into_body().into_reader();
    let (digest, total) = save(&mut body, file.as_file_mut(), &shown, limits.max_bytes)?;
    if let Some(length) = length
        && length != total
    {
        return Err(FetchError::Short {
            url: shown,
            total,
            length,
        });
    }
    finish_file(file.as_file(), modified)
        .map_err(|source| FetchError::Finish { url: shown, source })?;
    Ok(Fetched {
        file,
        digest,
        name: file_name(url),
        modified,
    })
}

/// GETs `first`, following redirects (bounded, never from https to
/// http, credentials only to `first`'s origin); returns the first
/// answer that is not a redirect and the target that gave it.
fn get(
    first: &Target,
    shown: &str,
    limits: &Limits,
) -> Result<(http::Response<ureq::Body>, Target), FetchError> {
    let credentials = first.userinfo.as_ref().map(|user| {
        let decoded = percent_decode(user);
        (
            first.origin(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(decoded)
            ),
        )
    });
    let agent = agent(limits);
    let mut target = first.clone();
    let mut redirects = 0;
    loop {
        let mut request = http::Request::builder()
            .method("GET")
            .uri(target.url())
            .header("accept", "*/*");
        if let Some((origin, header)) = &credentials
            && *origin == target.origin()
        {
            request = request.header("authorization", header.as_str());
        }
        let request = request.body(()).map_err(|source| FetchError::Request {
            url: shown.to_owned(),
            source,
        })?;
        let response = agent.run(request).map_err(|cause| FetchError::Transport {
            url: target.url(),
            cause,
        })?;
        let status = response.status().as_u16();
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Ok((response, target));
        }
        redirects += 1;
        if redirects > limits.max_redirects {
            return Err(FetchError::Redirects {
                url: shown.to_owned(),
                max: limits.max_redirects,
            });
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FetchError::NoLocation {
                url: target.url(),
                status,
            })?;
        let next = target.follow(location)?;
        if target.scheme == "https" && next.scheme == "http" {
            return Err(FetchError::Downgrade {
                url: shown.to_owned(),
                from: target.url(),
                to: next.url(),
            });
        }
        tracing::debug!(from = %target.url(), to = %next.url(), "ADD follows a redirect");
        target = next;
    }
}

/// Copies `body` into `file`, hashing it, at most `max` bytes; returns
/// the digest and the length.
fn save(
    body: &mut impl Read,
    file: &mut File,
    shown: &str,
    max: u64,
) -> Result<(Digest, u64), FetchError> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 128 << 10];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(cause) => {
                return Err(FetchError::Read {
                    url: shown.to_owned(),
                    bytes: total,
                    cause,
                });
            }
        };
        if n == 0 {
            return Ok((hasher.finish(), total));
        }
        total += n as u64;
        if total > max {
            return Err(FetchError::TooLong {
                url: shown.to_owned(),
                max,
            });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|source| FetchError::Write {
                url: shown.to_owned(),
                source,
            })?;
    }
}

fn finish_file(file: &File, modified: SystemTime) -> std::io::Result<()> {
    file.sync_all()?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    file.set_times(
        FileTimes::new()
            .set_modified(modified)
            .set_accessed(modified),
    )
}

/// A transport error in words, without ureq's debug noise.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn urls_parse_without_credentials() {
        let t = Target::parse("http://u:p%40ss@127.0.0.1:8080/a/b.tgz?x=1#frag").unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:8080/a/b.tgz?x=1");
        assert_eq!(t.userinfo.as_deref(), Some("u:p%40ss"));
        assert_eq!(t.origin(), "http://127.0.0.1:8080");
        assert_eq!(
            Target::parse("https://H:443").unwrap().origin(),
            "https://h"
        );
        assert_eq!(Target::parse("https://h").unwrap().path, "/");
        assert!(Target::parse("ftp://h/x").is_err());
        assert!(Target::parse("http:///x").is_err());
        let err = Target::parse("gopher://me:secret@h/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn redirects_resolve_and_drop_credentials() {
        let t = Target::parse("https://me:pw@h:1/dir/file?q").unwrap();
        let abs = t.follow("https://other/x").unwrap();
        assert_eq!(
            (abs.url(), abs.userinfo),
            ("https://other/x".to_owned(), None)
        );
        assert_eq!(t.follow("/y").unwrap().url(), "https://h:1/y");
        assert_eq!(t.follow("z").unwrap().url(), "https://h:1/dir/z");
        assert_eq!(t.follow("//cdn/z").unwrap().url(), "https://cdn/z");
    }

    #[test]
    fn names_follow_buildkit() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("http://h/a/my%20file.txt"), "my file.txt");
        assert_eq!(file_name("http://h/dir/"), "dir");
        assert_eq!(file_name("http://h"), "__unnamed__");
        assert_eq!(file_name("http://h/"), "__unnamed__");
        assert_eq!(file_name("http://h/.."), "__unnamed__");
        assert_eq!(redact("https://me:pw@h/x@y"), "https://xxxxx@h/x@y");
        assert_eq!(redact("https://h/x@y"), "https://h/x@y");
    }

    /// A one-connection-per-request HTTP/1.1 server answering `responses`
    /// in order; returns its port and the requests it saw.
    fn serve(responses: Vec<Vec<u8>>) -> (u16, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            for response in responses {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    request.push_str(&line);
                }
                seen.push(request);
                stream.write_all(&response).unwrap();
            }
            seen
        });
        (port, handle)
    }

    #[test]
    fn size_cap_and_short_bodies_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (port, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789abcdef".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort".to_vec(),
        ]);
        let limits = Limits {
            max_bytes: 8,
            ..Limits::default()
        };
        let url = format!("http://127.0.0.1:{port}/f");
        let declared = fetch_with(&url, dir.path(), &limits)
            .unwrap_err()
            .to_string();
        assert!(declared.contains("more than the 8 bytes"), "{declared}");
        let streamed = fetch_with(&url, dir.path(), &limits)
            .unwrap_err()
            .to_string();
        assert!(streamed.contains("more than the 8 bytes"), "{streamed}");
        let short = fetch_with(&url, dir.path(), &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(short.contains(&url), "{short}");
        server.join().unwrap();
    }

    #[test]
    fn redirects_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let loop_response = b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
        let (port, server) = serve(vec![loop_response.clone(); 3]);
        let limits = Limits {
            max_redirects: 2,
            ..Limits::default()
        };
        let err = fetch_with(&format!("http://127.0.0.1:{port}/x"), dir.path(), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stopped after 2 redirects"), "{err}");
        server.join().unwrap();
    }
}
