//! Image references, normalized the way docker does.
//!
//! `busybox` -> `docker.io/library/busybox:latest`; `host:5000/a/b:tag`;
//! `name@sha256:...`; `name:tag@sha256:...` (the digest wins when pulling,
//! the tag is kept for display). The grammar is the one of
//! `distribution/reference`: a first path component is a registry host only
//! when it contains `.` or `:`, or is `localhost`; repository components are
//! lower-case alphanumerics joined by `.`, `_`, `__` or dashes; tags are
//! `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. Only `sha256` digests are accepted.

use std::fmt;
use std::str::FromStr;

use buildr_cache::Digest;

use crate::error::{Error, Result};

/// The registry of unqualified names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME: usize = 255;

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `input`; adds `:latest` when neither a tag nor a
    /// digest is given.
    pub fn parse(input: &str) -> Result<Reference> {
        let err = |reason| Error::Reference {
            input: input.chars().take(300).collect(),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty reference"));
        }
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(
                "a 64-hex-digit string is an image id, not a repository name",
            ));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::from_str(d).map_err(|source| Error::ReferenceDigest {
                    input: input.chars().take(300).collect(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(err("invalid tag"));
        }
        if name.is_empty() {
            return Err(err("missing repository name"));
        }
        if name.len() > MAX_NAME {
            return Err(err("repository name longer than 255 characters"));
        }

        let (domain, path) = match name.split_once('/') {
            Some((first, remainder)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_owned(), remainder.to_owned())
            }
            Some(_) => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
            None => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
        };
        if !valid_domain(&domain) {
            return Err(err("invalid registry host"));
        }
        let domain = if domain == LEGACY_DOMAIN {
            DEFAULT_DOMAIN.to_owned()
        } else {
            domain
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(err("invalid repository name"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        if domain.len() + 1 + path.len() > MAX_NAME {
            return Err(err("repository name longer than 255 characters"));
        }
        let tag = match (tag, digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// The digest if any, else the tag: what to ask the registry for.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `.`, `_`, `__` or `-+`.
fn valid_path_component(comp: &str) -> bool {
    let b = comp.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `host[:port]` where host is dot-separated labels of alphanumerics and
/// inner dashes, or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        let d = format!("busybox@{D}");
        let td = format!("localhost:5000/a/b:v1@{D}");
        let cases: Vec<(&str, String)> = vec![
            ("busybox", "docker.io/library/busybox:latest".into()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".into()),
            ("library/busybox", "docker.io/library/busybox:latest".into()),
            ("user/app:dev", "docker.io/user/app:dev".into()),
            (
                "index.docker.io/user/app",
                "docker.io/user/app:latest".into(),
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            ("ghcr.io/o/r/s:t", "ghcr.io/o/r/s:t".into()),
            ("localhost/app", "localhost/app:latest".into()),
            ("localhost:5000/app", "localhost:5000/app:latest".into()),
            ("host:5000/repo:tag", "host:5000/repo:tag".into()),
            ("[::1]:5000/repo", "[::1]:5000/repo:latest".into()),
            ("a-b_c__d/x--y.z", "docker.io/a-b_c__d/x--y.z:latest".into()),
            ("a.b-c/x", "a.b-c/x:latest".into()),
            (&d, format!("docker.io/library/busybox@{D}")),
            (&td, format!("localhost:5000/a/b:v1@{D}")),
        ];
        for (input, want) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), want, "{input}");
        }
        let r = Reference::parse(&td).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_ref(), D);
    }

    #[test]
    fn rejects_invalid() {
        let bad_digest = format!("busybox@{}", &D[..20]);
        let long = "a".repeat(300);
        let cases = [
            "",
            "Busybox",
            "user/App",
            "busybox:",
            "busybox:-tag",
            "busybox:t@g",
            "a//b",
            "/a",
            "a/",
            "-a",
            "a_",
            "a...b",
            "a_b.c/x",
            "host:port/x",
            "ex ample/x",
            "busybox@sha512:00",
            &bad_digest,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            &long,
            ":tag",
            "@",
        ];
        for input in cases {
            assert!(
                Reference::parse(input).is_err(),
                "{input:?} should be rejected"
            );
        }
    }
}
