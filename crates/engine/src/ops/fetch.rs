//! `ADD <url>`: a minimal, streaming HTTP/1.0 GET (plain `http://` only;
//! no TLS client yet) into a temp file, with its sha256 for the cache key
//! and `--checksum`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use buildr_cache::{Digest, Hasher};

const MAX_REDIRECTS: usize = 5;
const MAX_HEADER_BYTES: usize = 64 << 10;
const TIMEOUT: Duration = Duration::from_secs(60);

/// A downloaded file.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub file: tempfile::NamedTempFile,
    pub digest: Digest,
    /// The file name BuildKit uses: the last path segment of the URL.
    pub name: String,
}

/// Downloads `url` into a temp file under `dir`.
pub(crate) fn fetch(url: &str, dir: &Path) -> Result<Fetched, String> {
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let (host, port, path) = split_url(&current)?;
        let mut stream = TcpStream::connect((host.as_str(), port))
            .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: buildr\r\nAccept: */*\r\n\r\n"
        )
        .map_err(|e| format!("send request to {host}: {e}"))?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .map_err(|e| format!("read response from {host}: {e}"))?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad HTTP status line from {host}: {:?}", status_line.trim()))?;
        let mut location = None;
        let mut length: Option<u64> = None;
        let mut header_bytes = status_line.len();
        loop {
            let mut line = String::new();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| format!("read headers from {host}: {e}"))?;
            header_bytes += n;
            if header_bytes > MAX_HEADER_BYTES {
                return Err(format!("response headers from {host} are too large"));
            }
            let line = line.trim_end();
            if n == 0 || line.is_empty() {
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                match key.trim().to_ascii_lowercase().as_str() {
                    "location" => location = Some(value.trim().to_owned()),
                    "content-length" => length = value.trim().parse().ok(),
                    _ => {}
                }
            }
        }
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let next =
                location.ok_or_else(|| format!("redirect from {current} without a Location"))?;
            current = if next.starts_with('/') {
                format!("http://{host}:{port}{next}")
            } else {
                next
            };
            continue;
        }
        if status != 200 {
            return Err(format!("{current}: HTTP status {status}"));
        }
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| format!("temp file in {}: {e}", dir.display()))?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("download {current}: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| format!("write download: {e}"))?;
            total += n as u64;
        }
        if let Some(length) = length
            && length != total
        {
            return Err(format!(
                "{current}: got {total} bytes, Content-Length said {length}"
            ));
        }
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .rsplit('/')
            .find(|s| !s.is_empty() && !s.contains(':'))
            .unwrap_or("download")
            .to_owned();
        return Ok(Fetched {
            file,
            digest: hasher.finish(),
            name,
        });
    }
    Err(format!("{url}: too many redirects"))
}

fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported yet (no TLS client)"))?;
    let (authority, path) = match rest.find('/') {
        Some(idx) => (&rest[..idx], &rest[idx..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| format!("{url}: bad port"))?),
        None => (authority, 80),
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("{url}: bad host"));
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_host_port_path() {
        assert_eq!(
            super::split_url("http://127.0.0.1:8080/a/b.tgz?x=1").unwrap(),
            ("127.0.0.1".to_owned(), 8080, "/a/b.tgz?x=1".to_owned())
        );
        assert_eq!(
            super::split_url("http://h").unwrap(),
            ("h".to_owned(), 80, "/".to_owned())
        );
        assert!(super::split_url("https://h/x").is_err());
        assert!(super::split_url("http://user@h/x").is_err());
    }
}
