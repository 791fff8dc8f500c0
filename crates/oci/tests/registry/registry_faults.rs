//! The registry client against a fault-injecting server of our own: each
//! fault ends in the documented behaviour, with nothing half-stored.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    Content, FaultServer, Req, TestImage, assert_nothing_stored, build_image, noise, respond, serve,
};
use buildr_cache::Store;
use buildr_oci::{
    ClientOptions, Compression, Credentials, Error, Progress, PullOptions, PushOptions, Reference,
    RegistryClient, StaticCredentials,
};

const NAME: &str = "test/app";

/// A test image (two layers, one of 300 KiB) kept in a scratch store.
fn image() -> TestImage {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let big = noise(300 * 1024, 7);
    build_image(
        &store,
        &[&[("etc/hello", b"hello\n")], &[("data/big", &big)]],
        "amd64",
        Compression::None,
    )
}

fn client(opts: impl FnOnce(&mut ClientOptions)) -> RegistryClient {
    let mut o = ClientOptions {
        backoff: Duration::from_millis(20),
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    opts(&mut o);
    RegistryClient::new(o)
}

fn reference(server: &FaultServer) -> Reference {
    Reference::parse(&format!("{}/{NAME}:v1", server.addr)).unwrap()
}

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn big_layer_path(img: &TestImage) -> String {
    format!("/v2/{NAME}/blobs/{}", img.manifest.layers[1].digest)
}

#[test]
fn clean_pull_from_fault_server_works() {
    let img = image();
    let content = img.content(NAME, "v1");
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ev = events.clone();
    let opts = PullOptions {
        progress: Some(Arc::new(move |p: &Progress| {
            ev.lock().unwrap().push(p.clone())
        })),
        ..PullOptions::default()
    };
    let pulled = client(|_| {})
        .pull(&store, &reference(&server), &opts)
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.blobs_fetched, 3);
    let events = events.lock().unwrap().clone();
    assert!(
        matches!(events[0], Progress::Resolved { digest, .. } if digest == img.manifest_digest)
    );
    let started = events
        .iter()
        .filter(|e| matches!(e, Progress::BlobStart { .. }))
        .count();
    let done = events
        .iter()
        .filter(|e| matches!(e, Progress::BlobDone { .. }))
        .count();
    assert_eq!((started, done), (3, 3));
    let big = &img.manifest.layers[1];
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Progress::BlobBytes { digest, done, total }
        if *digest == big.digest && done == total))
    );
    assert!(store.verify().unwrap().is_empty());
    let tag = format!("{}/{NAME}:v1", server.addr);
    assert_eq!(store.get_tag(&tag).unwrap(), Some(img.manifest_digest));
}

#[test]
fn wrong_digest_is_refused_and_nothing_stored() {
    let img = image();
    let mut content = img.content(NAME, "v1");
    let path = big_layer_path(&img);
    // Same size, different bytes.
    let entry = content.get_mut(&path).unwrap();
    let last = entry.1.len() - 1;
    entry.1[last] ^= 0xff;
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let err = client(|_| {})
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Verify { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&img.manifest.layers[1].digest.to_string()),
        "{err}"
    );
    // Not retried: a wrong body is not a broken connection.
    assert_eq!(server.count("GET", &path), 1);
    assert_nothing_stored(
        &store,
        &[img.manifest.layers[1].digest, img.manifest_digest],
    );
}

#[test]
fn body_longer_than_descriptor_is_refused() {
    let img = image();
    let path = big_layer_path(&img);
    // Once with an honest Content-Length, once without one (chunked is
    // not needed: Connection: close delimits the body).
    for with_length in [true, false] {
        let mut content = img.content(NAME, "v1");
        content
            .get_mut(&path)
            .unwrap()
            .1
            .extend_from_slice(b"trailing");
        let longer = content[&path].1.clone();
        let p = path.clone();
        let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
            if req.path == p && !with_length {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(&longer);
                return;
            }
            serve(&content, req, s)
        }));
        let (_d, store) = fresh_store();
        let err = client(|_| {})
            .pull(&store, &reference(&server), &PullOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, Error::Verify { .. }),
            "{with_length}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("bytes"), "{msg}");
        assert_nothing_stored(&store, &[img.manifest.layers[1].digest]);
    }
}

#[test]
fn server_error_then_success_is_retried() {
    let img = image();
    let content = img.content(NAME, "v1");
    let path = big_layer_path(&img);
    let failures = Arc::new(AtomicUsize::new(0));
    let f = failures.clone();
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == path && f.fetch_add(1, Ordering::SeqCst) < 2 {
            let status = if f.load(Ordering::SeqCst) == 1 {
                500
            } else {
                429
            };
            return respond(s, status, &[("Retry-After", "0")], b"busy");
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let pulled = client(|_| {})
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(server.count("GET", &big_layer_path(&img)), 3);
    assert!(store.verify().unwrap().is_empty());

    // Always failing: bounded tries, then the status is reported.
    let content = img.content(NAME, "v1");
    let path = big_layer_path(&img);
    let p = path.clone();
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == p {
            return respond(s, 503, &[], b"down");
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let err = client(|o| o.max_tries = 3)
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 503, .. }), "{err:?}");
    assert_eq!(server.count("GET", &path), 3);
    assert_nothing_stored(&store, &[img.manifest.layers[1].digest]);
}

/// Sends the headers and half the body, then drops the connection.
fn half_then_close(s: &mut TcpStream, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(&body[..body.len() / 2]);
    let _ = s.flush();
    let _ = s.shutdown(std::net::Shutdown::Both);
}

#[test]
fn connection_reset_mid_blob_restarts_the_blob() {
    let img = image();
    let content = img.content(NAME, "v1");
    let path = big_layer_path(&img);
    let body = content[&path].1.clone();
    let n = Arc::new(AtomicUsize::new(0));
    let (p, n2) = (path.clone(), n.clone());
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == p && n2.fetch_add(1, Ordering::SeqCst) == 0 {
            return half_then_close(s, &body);
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let pulled = client(|_| {})
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(server.count("GET", &path), 2);
    assert!(store.verify().unwrap().is_empty());

    // Reset every time: an error after the bounded tries, nothing stored.
    let content = img.content(NAME, "v1");
    let body = content[&path].1.clone();
    let p = path.clone();
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == p {
            return half_then_close(s, &body);
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let err = client(|o| o.max_tries = 2)
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(server.count("GET", &path), 2);
    assert_nothing_stored(&store, &[img.manifest.layers[1].digest]);
}

#[test]
fn slow_body_past_the_read_timeout_fails() {
    let img = image();
    let content = img.content(NAME, "v1");
    let path = big_layer_path(&img);
    let body = content[&path].1.clone();
    let p = path.clone();
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == p {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body[..1000]);
            let _ = s.flush();
            thread::sleep(Duration::from_secs(4));
            return;
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let started = Instant::now();
    let err = client(|o| {
        o.read_timeout = Duration::from_millis(400);
        o.max_tries = 2;
    })
    .pull(&store, &reference(&server), &PullOptions::default())
    .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(server.count("GET", &path), 2);
    assert_nothing_stored(&store, &[img.manifest.layers[1].digest]);
}

#[test]
fn redirect_to_another_origin_drops_credentials() {
    let img = image();
    let content = img.content(NAME, "v1");
    // The "CDN": serves the blob, must never see Authorization.
    let cdn_content: Content = content.clone();
    let cdn = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        let path = req.path.replace("/cdn", "");
        let (ctype, bytes) = &cdn_content[&path];
        respond(s, 200, &[("Content-Type", ctype)], bytes)
    }));
    let cdn_addr = cdn.addr.clone();
    let path = big_layer_path(&img);
    let p = path.clone();
    let expected = Credentials::new("alice", "wonderland");
    let expected_header = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:wonderland")
        )
    };
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.header("authorization") != Some(expected_header.as_str()) {
            return respond(s, 401, &[("WWW-Authenticate", "Basic realm=\"test\"")], b"");
        }
        if req.path == p {
            let to = format!("http://{cdn_addr}/cdn{p}");
            return respond(s, 307, &[("Location", &to)], b"");
        }
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let mut creds = BTreeMap::new();
    creds.insert(server.addr.clone(), expected);
    let pulled = client(|o| o.credentials = Arc::new(StaticCredentials(creds)))
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    let cdn_reqs = cdn.requests();
    assert_eq!(cdn_reqs.len(), 1, "{cdn_reqs:?}");
    assert!(
        cdn_reqs[0].header("authorization").is_none(),
        "credentials leaked to the redirect target"
    );
    // The registry itself did get them.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.header("authorization").is_some())
    );
    assert!(store.verify().unwrap().is_empty());
}

/// A registry that wants a bearer token from `realm`.
fn bearer_server(img: &TestImage, token_status: u16) -> (FaultServer, FaultServer) {
    let token_server = FaultServer::start(Arc::new(move |_req: &Req, s: &mut TcpStream| {
        if token_status == 200 {
            respond(
                s,
                200,
                &[("Content-Type", "application/json")],
                br#"{"token":"tok-123","expires_in":300}"#,
            )
        } else {
            respond(s, token_status, &[], br#"{"details":"access denied"}"#)
        }
    }));
    let realm = format!("http://{}/token", token_server.addr);
    let content = img.content(NAME, "v1");
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.header("authorization") != Some("Bearer tok-123") {
            let challenge = format!(
                "Bearer realm=\"{realm}\",service=\"fault\",scope=\"repository:{NAME}:pull\""
            );
            return respond(s, 401, &[("WWW-Authenticate", &challenge)], b"");
        }
        serve(&content, req, s)
    }));
    (server, token_server)
}

#[test]
fn bearer_token_flow_with_cache() {
    let img = image();
    let (server, tokens) = bearer_server(&img, 200);
    let (_d, store) = fresh_store();
    let pulled = client(|_| {})
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    let token_reqs = tokens.requests();
    assert_eq!(
        token_reqs.len(),
        1,
        "one token for the whole pull: {token_reqs:?}"
    );
    let q = &token_reqs[0].path;
    assert!(
        q.contains("service=fault") && q.contains("scope=repository:test/app:pull"),
        "{q}"
    );
    assert!(
        token_reqs[0].header("authorization").is_none(),
        "anonymous token request"
    );
}

#[test]
fn token_endpoint_refusing_is_a_clear_error() {
    let img = image();
    let (server, _tokens) = bearer_server(&img, 403);
    let (_d, store) = fresh_store();
    let err = client(|_| {})
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("token endpoint") && msg.contains("403"),
        "{msg}"
    );
    assert_nothing_stored(&store, &img.blobs());
}

#[test]
fn oversized_manifest_is_refused() {
    let big = vec![b' '; 5 << 20];
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == "/v2/" {
            return respond(s, 200, &[], b"");
        }
        respond(
            s,
            200,
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            &big,
        )
    }));
    let (_d, store) = fresh_store();
    let err = client(|_| {})
        .pull(&store, &reference(&server), &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::JsonTooLarge { .. }), "{err:?}");
    assert!(store.verify().unwrap().is_empty());
    assert!(store.list_tags().unwrap().is_empty());
}

#[test]
fn manifest_digest_mismatch_is_refused() {
    let img = image();
    let mut content = img.content(NAME, "v1");
    // The pinned digest serves other bytes.
    let key = format!("/v2/{NAME}/manifests/{}", img.manifest_digest);
    content.get_mut(&key).unwrap().1.push(b' ');
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        serve(&content, req, s)
    }));
    let (_d, store) = fresh_store();
    let r = Reference::parse(&format!("{}/{NAME}@{}", server.addr, img.manifest_digest)).unwrap();
    let err = client(|_| {})
        .pull(&store, &r, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Verify { .. }), "{err:?}");
    assert_nothing_stored(&store, &img.blobs());
}

#[test]
fn failed_blob_upload_never_moves_the_tag() {
    let (_d, store) = fresh_store();
    let img = {
        let big = noise(64 * 1024, 3);
        build_image(
            &store,
            &[&[("a", b"a\n")], &[("b", &big)]],
            "amd64",
            Compression::None,
        )
    };
    let bad = img.manifest.layers[1].digest.to_string();
    let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        match req.method.as_str() {
            "GET" if req.path == "/v2/" => respond(s, 200, &[], b"{}"),
            "HEAD" => respond(s, 404, &[], b""),
            "POST" => respond(
                s,
                202,
                &[("Location", &format!("/v2/{NAME}/blobs/uploads/u1?_state=x"))],
                b"",
            ),
            "PUT" if req.path.contains("/blobs/uploads/") && req.path.contains(&bad) => {
                respond(s, 500, &[], b"disk full")
            }
            "PUT" if req.path.contains("/blobs/uploads/") => respond(s, 201, &[], b""),
            "PUT" => respond(s, 201, &[], b""),
            _ => respond(s, 405, &[], b""),
        }
    }));
    let err = client(|o| o.max_tries = 2)
        .push(
            &store,
            &img.manifest_digest,
            &reference(&server),
            &PushOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 500, .. }), "{err:?}");
    let reqs = server.requests();
    // The failing upload was tried twice (bounded), carried the whole
    // blob each time, and no manifest was ever sent.
    let failing: Vec<_> = reqs
        .iter()
        .filter(|r| {
            r.method == "PUT" && r.path.contains(&img.manifest.layers[1].digest.to_string())
        })
        .collect();
    assert_eq!(failing.len(), 2);
    assert!(
        failing
            .iter()
            .all(|r| r.body.len() as u64 == img.manifest.layers[1].size)
    );
    assert!(
        reqs.iter().all(|r| !r.path.contains("/manifests/")),
        "{reqs:?}"
    );
}

#[test]
fn identity_token_is_exchanged_by_post_and_basic_creds_by_get() {
    let img = image();
    for identity in [true, false] {
        let token_server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
            let body = String::from_utf8_lossy(&req.body);
            let ok = if identity {
                req.method == "POST"
                    && body.contains("grant_type=refresh_token")
                    && body.contains("refresh_token=refresh-xyz")
                    && req.header("authorization").is_none()
            } else {
                req.method == "GET"
                    && req
                        .header("authorization")
                        .is_some_and(|a| a.starts_with("Basic "))
            };
            if ok {
                respond(s, 200, &[], br#"{"access_token":"tok-123"}"#)
            } else {
                respond(s, 401, &[], b"")
            }
        }));
        let realm = format!("http://{}/token", token_server.addr);
        let content = img.content(NAME, "v1");
        let server = FaultServer::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
            if req.header("authorization") != Some("Bearer tok-123") {
                let challenge = format!("Bearer realm=\"{realm}\",service=\"fault\"");
                return respond(s, 401, &[("WWW-Authenticate", &challenge)], b"");
            }
            serve(&content, req, s)
        }));
        let creds = if identity {
            Credentials::identity_token("refresh-xyz")
        } else {
            Credentials::new("bob", "pw")
        };
        let mut map = BTreeMap::new();
        map.insert(server.addr.clone(), creds);
        let (_d, store) = fresh_store();
        let pulled = client(|o| o.credentials = Arc::new(StaticCredentials(map)))
            .pull(&store, &reference(&server), &PullOptions::default())
            .unwrap_or_else(|e| panic!("identity={identity}: {e:?}"));
        assert_eq!(pulled.manifest_digest, img.manifest_digest);
        assert_eq!(token_server.requests().len(), 1);
    }
}

#[test]
fn unpack_layer_checks_the_blob_to_its_last_byte() {
    let (dir, store) = fresh_store();
    let img = build_image(
        &store,
        &[&[("f", b"content\n")]],
        "amd64",
        Compression::None,
    );
    let layer = &img.manifest.layers[0];
    let out = tempfile::tempdir().unwrap();
    buildr_oci::unpack_layer(&store, layer, out.path(), &Default::default()).unwrap();
    assert_eq!(std::fs::read(out.path().join("f")).unwrap(), b"content\n");
    // Flip a byte of the tar's end padding: the tar reader never looks at
    // it, the digest check does.
    let path = dir.path().join("blobs/sha256").join(layer.digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = buildr_oci::unpack_layer(&store, layer, out.path(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains(&layer.digest.to_string()), "{err}");
}
