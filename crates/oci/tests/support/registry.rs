//! Test support for the registry client: a small fault-injecting HTTP
//! server and test images built with this crate's own layer code (the
//! real `docker-registry` and the prerequisite rule are `buildr_testkit`'s).
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use buildr_cache::Store;
use buildr_oci::{
    CompressOptions, Compression, Descriptor, Diff, DiffSource, Digest, ImageConfig, LayerOptions,
    Manifest, RootFs, media_type,
};
use buildr_testkit::process::run;

/// One request as the fault server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

pub type Handler = Arc<dyn Fn(&Req, &mut TcpStream) + Send + Sync>;

/// A small HTTP/1.1 server on 127.0.0.1 whose handler decides, per
/// request, what to send (or how to misbehave). Every request is recorded;
/// every connection is closed after one response.
pub struct FaultServer {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
}

impl FaultServer {
    pub fn start(handler: Handler) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stop2) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = conn else { continue };
                let (handler, reqs) = (handler.clone(), reqs.clone());
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Some(req) = read_request(&mut stream) else {
                        let _ = stream.write_all(
                            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        return;
                    };
                    reqs.lock().unwrap().push(req.clone());
                    handler(&req, &mut stream);
                    let _ = stream.flush();
                });
            }
        });
        FaultServer {
            addr,
            requests,
            stop,
        }
    }

    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Req> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    // A TLS client hello (first byte 0x16) is not ours to parse.
    let first = reader.fill_buf().ok()?.first().copied()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(64 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

/// Writes a complete response and closes the connection.
pub fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Content a fake registry serves: path (`/v2/...`) -> (content type, bytes).
pub type Content = HashMap<String, (String, Vec<u8>)>;

/// Serves `/v2/` and the paths of `content` (GET and HEAD); 404 otherwise.
pub fn serve(content: &Content, req: &Req, stream: &mut TcpStream) {
    if req.path == "/v2/" {
        return respond(stream, 200, &[], b"{}");
    }
    match content.get(&req.path) {
        Some((ctype, bytes)) if req.method == "GET" => {
            respond(stream, 200, &[("Content-Type", ctype)], bytes)
        }
        Some((ctype, bytes)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes());
        }
        None => respond(
            stream,
            404,
            &[("Content-Type", "application/json")],
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"not here"}]}"#,
        ),
    }
}

/// A test image written into a store.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub config_bytes: Vec<u8>,
    /// Layer blobs, in manifest order.
    pub layer_bytes: Vec<Vec<u8>>,
}

impl TestImage {
    /// Every blob, path under `/v2/<name>/` -> (type, bytes), for a fake
    /// registry serving this image as `name:tag`.
    pub fn content(&self, name: &str, tag: &str) -> Content {
        let mut c = Content::new();
        let manifest = (
            media_type::OCI_MANIFEST.to_owned(),
            self.manifest_bytes.clone(),
        );
        c.insert(format!("/v2/{name}/manifests/{tag}"), manifest.clone());
        c.insert(
            format!("/v2/{name}/manifests/{}", self.manifest_digest),
            manifest,
        );
        c.insert(
            format!("/v2/{name}/blobs/{}", self.manifest.config.digest),
            ("application/octet-stream".into(), self.config_bytes.clone()),
        );
        for (d, b) in self.manifest.layers.iter().zip(&self.layer_bytes) {
            c.insert(
                format!("/v2/{name}/blobs/{}", d.digest),
                ("application/octet-stream".into(), b.clone()),
            );
        }
        c
    }

    pub fn blobs(&self) -> Vec<Digest> {
        let mut v = vec![self.manifest.config.digest];
        v.extend(self.manifest.layers.iter().map(|l| l.digest));
        v
    }
}

/// One layer per entry of `layers` (each a list of (path, content)),
/// built with this crate's diff and layer writer; config and manifest
/// (OCI) stored in `store`.
pub fn build_image(
    store: &Store,
    layers: &[&[(&str, &[u8])]],
    arch: &str,
    compression: Compression,
) -> TestImage {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_bytes = Vec::new();
    for files in layers {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        for (path, data) in *files {
            let p: PathBuf = upper.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, data).unwrap();
        }
        let diff = Diff::compute(DiffSource::Trees {
            lower: lower.path(),
            upper: upper.path(),
        })
        .unwrap();
        let opts = LayerOptions {
            compress: CompressOptions {
                compression,
                level: Some(1),
                threads: 1,
            },
            source_date_epoch: Some(0),
        };
        let (digests, blob) = diff.write_layer(Vec::new(), &opts).unwrap();
        let info = store.put_blob(&blob).unwrap();
        assert_eq!(info.digest, digests.digest);
        descs.push(Descriptor::new(
            digests.media_type,
            digests.digest,
            digests.size,
        ));
        diff_ids.push(digests.diff_id);
        layer_bytes.push(blob);
    }
    let config = ImageConfig {
        architecture: arch.to_owned(),
        os: "linux".to_owned(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..ImageConfig::default()
    };
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_info = store.put_blob(&config_bytes).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, config_info.digest, config_info.size),
        layers: descs,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let m = store.put_blob(&manifest_bytes).unwrap();
    TestImage {
        manifest_digest: m.digest,
        manifest_bytes,
        manifest,
        config_bytes,
        layer_bytes,
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with
/// `openssl`: returns (ca.pem, cert.pem, key.pem).
pub fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let s = |p: PathBuf| p.display().to_string();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=buildr test ca",
        "-keyout",
        &s(p("ca.key")),
        "-out",
        &s(p("ca.pem")),
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(p("key.pem")),
        "-out",
        &s(p("req.csr")),
    ]));
    fs::write(
        p("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &s(p("req.csr")),
        "-CA",
        &s(p("ca.pem")),
        "-CAkey",
        &s(p("ca.key")),
        "-CAcreateserial",
        "-extfile",
        &s(p("ext.cnf")),
        "-out",
        &s(p("cert.pem")),
    ]));
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

/// Bytes that do not compress (for layers of a known size).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Asserts the store is consistent and holds none of `blobs` and no tag.
pub fn assert_nothing_stored(store: &Store, blobs: &[Digest]) {
    let problems = store.verify().unwrap();
    assert!(problems.is_empty(), "store problems: {problems:?}");
    for b in blobs {
        assert!(!store.has_blob(b).unwrap(), "blob {b} was stored");
    }
    assert!(store.list_tags().unwrap().is_empty(), "a tag was set");
}
