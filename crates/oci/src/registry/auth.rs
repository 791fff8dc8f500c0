//! Registry authentication: `WWW-Authenticate` challenges, docker's token
//! protocol (anonymous or with basic credentials, or an OAuth2 refresh
//! token), basic auth, and a per-scope token cache with expiry.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::creds::Credentials;
use super::transport::{Method, ReqBody, Response, Transport, host_of};
use crate::error::{Error, Result};

const MAX_TOKEN_BYTES: u64 = 1 << 20;
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses the header; unknown schemes give `None`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        let realm = params.get("realm")?.clone();
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
        })
    }
}

/// `key="value", key2=value2` (quoted strings may contain commas).
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    out
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct CachedToken {
    header: String,
    expires: Instant,
}

/// Challenges by registry host and tokens by (host, scopes).
#[derive(Default)]
pub(crate) struct AuthCache {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: show only how many there are.
        let n = self.tokens.lock().map(|t| t.len()).unwrap_or(0);
        f.debug_struct("AuthCache").field("tokens", &n).finish()
    }
}

impl AuthCache {
    pub fn set_challenge(&self, host: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_owned(), challenge);
    }

    pub fn challenge(&self, host: &str) -> Option<Challenge> {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()
    }

    pub fn forget_token(&self, host: &str, scopes: &[String]) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(host.to_owned(), scopes.join(" ")));
    }

    /// The `Authorization` value for a request to `host` needing
    /// `scopes`, fetching a token when the registry wants one. `None` when
    /// the registry asked for nothing (yet) or for basic auth without
    /// credentials.
    pub fn authorization(
        &self,
        transport: &Transport,
        host: &str,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<Option<String>> {
        match self.challenge(host) {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(creds
                .filter(|c| !c.is_identity_token())
                .map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service }) => {
                let key = (host.to_owned(), scopes.join(" "));
                {
                    let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(t) = tokens.get(&key)
                        && t.expires > Instant::now()
                    {
                        return Ok(Some(t.header.clone()));
                    }
                }
                let (header, lifetime) =
                    fetch_token(transport, host, &realm, service.as_deref(), scopes, creds)?;
                // Renew a little before the registry's expiry.
                let margin = (lifetime / 10).min(Duration::from_secs(10));
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        key,
                        CachedToken {
                            header: header.clone(),
                            expires: Instant::now() + lifetime - margin,
                        },
                    );
                Ok(Some(header))
            }
        }
    }
}

/// Docker's token protocol: `GET realm?service=&scope=` (with basic
/// credentials if any), or a `POST` with a refresh token.
fn fetch_token(
    transport: &Transport,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<(String, Duration)> {
    check_realm(transport, registry, realm)?;
    let mut query = Vec::new();
    if let Some(s) = service {
        query.push(format!("service={}", encode(s)));
    }
    for s in scopes {
        query.push(format!("scope={}", encode(s)));
    }
    let resp = request_token(transport, realm, query, creds)?;
    if resp.status != 200 {
        let status = resp.status;
        let text = resp.error_text();
        return Err(auth_error(
            registry,
            format!(
                "token endpoint {realm} answered {status}{}",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                }
            ),
        ));
    }
    read_token(resp, registry, realm)
}

/// An authentication failure at `registry`.
fn auth_error(registry: &str, reason: String) -> Error {
    Error::Auth {
        registry: registry.to_owned(),
        reason,
    }
}

/// The token realm must be an http(s) URL with a host; plain http only to
/// a host the transport allows insecure.
fn check_realm(transport: &Transport, registry: &str, realm: &str) -> Result<()> {
    let realm_host = host_of(realm)
        .map_err(|_| auth_error(registry, format!("invalid token realm {realm:?}")))?;
    let plain = realm.starts_with("http://");
    if !plain && !realm.starts_with("https://") {
        return Err(auth_error(
            registry,
            format!("token realm {realm:?} is not http(s)"),
        ));
    }
    if plain && !transport.is_insecure(&realm_host) {
        return Err(Error::InsecureRefused { host: realm_host });
    }
    Ok(())
}

/// Asks `realm` for a token with the `service`/`scope` pairs of `query`:
/// a form `POST` with an identity (refresh) token, else a `GET` carrying
/// basic credentials, if any, to the realm's origin only.
fn request_token(
    transport: &Transport,
    realm: &str,
    query: Vec<String>,
    creds: Option<&Credentials>,
) -> Result<Response> {
    if let Some(c) = creds
        && c.is_identity_token()
    {
        let mut form = vec![
            "grant_type=refresh_token".to_owned(),
            "client_id=buildr".to_owned(),
            format!("refresh_token={}", encode(c.secret())),
        ];
        form.extend(query);
        let body = form.join("&");
        return transport.send(
            Method::Post,
            realm,
            &[(
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            &ReqBody::Bytes(body.as_bytes()),
            None,
        );
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    let url = if query.is_empty() {
        realm.to_owned()
    } else {
        format!("{realm}{sep}{}", query.join("&"))
    };
    // Basic credentials go to the realm the registry named (that is
    // the protocol) and to nowhere it redirects.
    let basic = creds.map(Credentials::basic_header);
    let origin = super::transport::origin_of(&url)?;
    let auth = basic.as_deref().map(|b| (origin.as_str(), b));
    transport.send(Method::Get, &url, &[], &ReqBody::Empty, auth)
}

/// The `Authorization` header and lifetime from a token answer: at most
/// [`MAX_TOKEN_BYTES`] of JSON with a non-empty `token` (or
/// `access_token`) free of spaces and control characters; the lifetime
/// is `expires_in`, capped at a day and at least the default.
fn read_token(resp: Response, registry: &str, realm: &str) -> Result<(String, Duration)> {
    let err = |reason: String| auth_error(registry, reason);
    let mut buf = Vec::new();
    resp.body
        .into_reader()
        .take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(format!("reading the token from {realm}: {e}")))?;
    if buf.len() as u64 > MAX_TOKEN_BYTES {
        return Err(err(format!("token answer from {realm} is too large")));
    }
    let parsed: TokenResponse = serde_json::from_slice(&buf)
        .map_err(|e| err(format!("token answer from {realm} is not json: {e}")))?;
    let token = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| err(format!("token answer from {realm} has no token")))?;
    if token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(err(format!("token from {realm} has invalid characters")));
    }
    let lifetime = parsed
        .expires_in
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TOKEN_LIFETIME, |s| {
            Duration::from_secs(s.min(86_400))
        })
        .max(DEFAULT_TOKEN_LIFETIME);
    Ok((format!("Bearer {token}"), lifetime))
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let cases = [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                Some(Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                }),
            ),
            (
                r#"bearer realm="http://127.0.0.1:1/t?a=1,b", service=x"#,
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t?a=1,b".into(),
                    service: Some("x".into()),
                }),
            ),
            (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
            ("Bearer service=x", None),
            ("Negotiate abc", None),
            ("", None),
            (
                "Bearer realm=\"unterminated",
                Some(Challenge::Bearer {
                    realm: "unterminated".into(),
                    service: None,
                }),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(Challenge::parse(header), want, "{header}");
        }
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository:a/b:pull%2Cpush"
        );
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
