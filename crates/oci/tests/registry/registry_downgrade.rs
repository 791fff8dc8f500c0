//! Registry transport policy under hostile servers: an HTTPS registry
//! that redirects to plain HTTP is refused by policy (no request leaves in
//! clear text), and 429 Too Many Requests is retried after `Retry-After`,
//! with the wait capped and the number of tries bounded.

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{
    FaultServer, Req, TestImage, assert_nothing_stored, build_image, noise, respond, serve,
};
use buildr_cache::Store;
use buildr_oci::{
    ClientOptions, Compression, Error, PullOptions, Reference, RegistryClient, RegistryConfig,
};
use buildr_testkit::prereq::need_tool;
use buildr_testkit::registry::free_port;

const NAME: &str = "test/app";

fn image() -> TestImage {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    build_image(
        &store,
        &[
            &[("etc/hello", b"hello\n")],
            &[("data/big", &noise(64 * 1024, 3))],
        ],
        "amd64",
        Compression::None,
    )
}

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// An `openssl s_server -HTTP` on 127.0.0.1: each request path is answered
/// with the raw HTTP response stored in the file of that path under its
/// document root. Killed on drop. (It refuses paths with a `:`, so blob
/// paths, `sha256:...`, cannot be served; blob redirects go through the
/// same redirect code as the manifest's.)
struct TlsFiles {
    addr: String,
    root: tempfile::TempDir,
    child: Child,
}

impl TlsFiles {
    fn start(cert: &Path, key: &Path) -> TlsFiles {
        let root = tempfile::tempdir().unwrap();
        // `/v2/` is a directory: s_server answers a directory with
        // "200 ok", which is what the scheme probe needs.
        fs::create_dir_all(root.path().join("v2")).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-HTTP", "-accept", &addr, "-cert"])
            .arg(cert)
            .arg("-key")
            .arg(key)
            .current_dir(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsFiles { addr, root, child }
    }

    /// Answers `path` with `status`, `headers` and `body`.
    fn put(&self, path: &str, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let file = self.root.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut raw = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        )
        .into_bytes();
        for (k, v) in headers {
            raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body);
        fs::write(file, raw).unwrap();
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_with_ca(host: &str, ca: &Path) -> RegistryClient {
    let text = format!("[registry.\"{host}\"]\nca = \"{}\"\n", ca.display());
    RegistryClient::new(ClientOptions {
        config: RegistryConfig::parse(&text, Path::new("test.toml")).unwrap(),
        backoff: Duration::from_millis(20),
        read_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    })
}

#[test]
fn https_registry_redirecting_to_plain_http_is_refused() {
    let test = "https_registry_redirecting_to_plain_http_is_refused";
    if !need_tool(test, "openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::support::make_certs(certs.path());
    let server = TlsFiles::start(&cert, &key);
    let img = image();
    let client = client_with_ca(&server.addr, &ca);
    // A plain-HTTP listener the redirects could name on loopback would be
    // allowed (docker treats loopback as insecure); the hostile target is a
    // remote name. `.invalid` never resolves, so only the policy, never a
    // DNS failure, can produce `InsecureRefused`.
    let evil = "downgrade.invalid:8080";

    // 1. The manifest redirects to http.
    server.put(
        &format!("/v2/{NAME}/manifests/v1"),
        302,
        &[("Location", &format!("http://{evil}/v2/{NAME}/manifests/v1"))],
        b"",
    );
    let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
    let (_d, store) = fresh_store();
    let err = client
        .pull(&store, &reference, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::InsecureRefused { host } => assert_eq!(host, evil),
        other => panic!("expected the downgrade to be refused, got {other:?}"),
    }
    assert!(err.to_string().contains(evil), "{err}");
    assert_nothing_stored(&store, &img.blobs());

    // 2. Control: the same redirect to https is followed (and then fails
    // to resolve the name), so the refusals above were the scheme's doing.
    server.put(
        &format!("/v2/{NAME}/manifests/v3"),
        302,
        &[(
            "Location",
            &format!("https://{evil}/v2/{NAME}/manifests/v1"),
        )],
        b"",
    );
    let reference = Reference::parse(&format!("{}/{NAME}:v3", server.addr)).unwrap();
    let (_d, store) = fresh_store();
    let err = client
        .pull(&store, &reference, &PullOptions::default())
        .unwrap_err();
    match &err {
        Error::Transport { url, .. } => {
            assert!(url.starts_with("https://downgrade.invalid"), "{url}")
        }
        other => panic!("expected a failed https request, got {other:?}"),
    }
}

/// The blob path of the same policy, on a loopback (plain HTTP) registry:
/// a layer that redirects to plain HTTP on a remote name is refused, and
/// neither that layer, the manifest nor the tag is stored.
#[test]
fn blob_redirect_to_plain_http_on_a_remote_host_is_refused() {
    let img = image();
    let content = img.content(NAME, "v1");
    let layer = format!("/v2/{NAME}/blobs/{}", img.manifest.layers[1].digest);
    let evil = "cdn.downgrade.invalid";
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == layer {
            let to = format!("http://{evil}{layer}");
            return respond(s, 307, &[("Location", &to)], b"");
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
    let err = client(3)
        .pull(&store, &reference, &PullOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::InsecureRefused { host } if host == evil),
        "{err:?}"
    );
    // Other blobs may have arrived (verified, content-addressed); the
    // redirected one, the manifest and the tag never do.
    assert!(store.verify().unwrap().is_empty());
    assert!(!store.has_blob(&img.manifest.layers[1].digest).unwrap());
    assert!(!store.has_blob(&img.manifest_digest).unwrap());
    assert!(store.list_tags().unwrap().is_empty(), "a tag was set");
}

fn client(max_tries: u32) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        backoff: Duration::from_millis(20),
        max_tries,
        read_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    })
}

/// A fault server answering the big layer with 429 and `retry_after` for
/// the first `fails` requests; returns it and the request times.
fn throttling(
    img: &TestImage,
    fails: usize,
    retry_after: &'static str,
) -> (FaultServer, Arc<Mutex<Vec<Instant>>>) {
    let content = img.content(NAME, "v1");
    let path = format!("/v2/{NAME}/blobs/{}", img.manifest.layers[1].digest);
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == path {
            let mut t = t.lock().unwrap();
            t.push(Instant::now());
            if t.len() <= fails {
                drop(t);
                return respond(s, 429, &[("Retry-After", retry_after)], b"slow down");
            }
        }
        serve(&content, req, s)
    }));
    (server, times)
}

fn gaps(times: &Mutex<Vec<Instant>>) -> Vec<Duration> {
    let t = times.lock().unwrap();
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn too_many_requests_waits_for_retry_after_then_succeeds() {
    let img = image();
    let (server, times) = throttling(&img, 2, "1");
    let (_d, store) = fresh_store();
    let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
    let pulled = client(4)
        .pull(&store, &reference, &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    let gaps = gaps(&times);
    assert_eq!(gaps.len(), 2, "two 429s, then the blob");
    for gap in &gaps {
        // Retry-After: 1 beats the 20 ms backoff, and nothing waits long.
        assert!(
            *gap >= Duration::from_millis(900) && *gap < Duration::from_secs(10),
            "{gaps:?}"
        );
    }
    assert!(store.verify().unwrap().is_empty());
}

#[test]
fn too_many_requests_forever_gives_up_after_the_bounded_tries() {
    let img = image();
    let (server, times) = throttling(&img, usize::MAX, "1");
    let (_d, store) = fresh_store();
    let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
    let start = Instant::now();
    let err = client(3)
        .pull(&store, &reference, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 429, .. }), "{err:?}");
    let layer = img.manifest.layers[1].digest.to_string();
    assert!(
        err.to_string().contains(&layer) || err.to_string().contains("429"),
        "{err}"
    );
    assert_eq!(
        times.lock().unwrap().len(),
        3,
        "max_tries bounds the requests"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_nothing_stored(&store, &[img.manifest.layers[1].digest]);
}

#[test]
fn huge_or_malformed_retry_after_is_bounded() {
    // A server asking for a day: the wait is capped (30 s), not a hang.
    let img = image();
    let (server, times) = throttling(&img, 1, "86400");
    let (_d, store) = fresh_store();
    let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
    client(2)
        .pull(&store, &reference, &PullOptions::default())
        .unwrap();
    let g = gaps(&times);
    assert!(
        g.len() == 1 && g[0] >= Duration::from_secs(29) && g[0] < Duration::from_secs(45),
        "{g:?}"
    );

    // Not a number of seconds (an HTTP date, a negative number): the
    // client falls back to its own short backoff.
    for value in ["Wed, 21 Oct 2037 07:28:00 GMT", "-5", "1e9"] {
        let (server, times) = throttling(&img, 1, value);
        let (_d, store) = fresh_store();
        let reference = Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap();
        client(2)
            .pull(&store, &reference, &PullOptions::default())
            .unwrap();
        let g = gaps(&times);
        assert!(
            g.len() == 1 && g[0] < Duration::from_secs(5),
            "{value}: {g:?}"
        );
    }
}
