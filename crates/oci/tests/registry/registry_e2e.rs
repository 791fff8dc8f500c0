//! The registry client against Debian's `docker-registry` (distribution
//! 2.x) started on 127.0.0.1 by the test, anonymous and with htpasswd
//! basic auth, and against `skopeo` both ways.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{TestImage, build_image, noise};
use buildr_cache::Store;
use buildr_oci::{
    ClientOptions, Compression, Credentials, Descriptor, Digest, DockerConfig, Error,
    ExtractOptions, Index, Progress, PullOptions, PushOptions, Reference, RegistryClient,
    RegistryConfig, media_type, parse_platform, unpack_layer,
};
use buildr_testkit::prereq::need_tool;
use buildr_testkit::process::run;
use buildr_testkit::registry::{Options as RegistryOptions, Registry};

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        backoff: Duration::from_millis(20),
        ..ClientOptions::default()
    })
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn small_image(store: &Store, marker: &[u8]) -> TestImage {
    build_image(
        store,
        &[
            &[("etc/os-release", b"ID=test\n")],
            &[("app/marker", marker)],
        ],
        "amd64",
        Compression::Gzip,
    )
}

/// Unpacks every layer of a pulled image and reads one file.
fn read_file_from(store: &Store, layers: &[Descriptor], path: &str) -> Vec<u8> {
    let root = tempfile::tempdir().unwrap();
    for l in layers {
        unpack_layer(store, l, root.path(), &ExtractOptions::default()).unwrap();
    }
    fs::read(root.path().join(path)).unwrap()
}

#[test]
fn anonymous_push_pull_round_trip() {
    let Some(reg) = Registry::start("anonymous_push_pull_round_trip", None) else {
        return;
    };
    let (_a, src) = store();
    let img = small_image(&src, b"one\n");
    let c = client();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let push_opts = PushOptions {
        progress: Some(Arc::new(move |p: &Progress| {
            ev.lock().unwrap().push(p.clone())
        })),
        ..PushOptions::default()
    };
    let target = r(&format!("{}/test/app:v1", reg.addr));
    let report = c
        .push(&src, &img.manifest_digest, &target, &push_opts)
        .unwrap();
    assert_eq!(
        (report.uploaded, report.existing, report.mounted),
        (3, 0, 0)
    );
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::ManifestPushed { .. }))
    );

    // Pull into a fresh store with a fresh client.
    let (_b, dst) = store();
    let pulled = client()
        .pull(&dst, &target, &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.blobs_fetched, 3);
    assert_eq!(pulled.config.architecture, "amd64");
    assert_eq!(pulled.tag.as_deref(), Some(target.to_string().as_str()));
    assert_eq!(
        dst.get_tag(&target.to_string()).unwrap(),
        Some(img.manifest_digest)
    );
    assert!(dst.verify().unwrap().is_empty());
    assert_eq!(
        read_file_from(&dst, &pulled.manifest.layers, "app/marker"),
        b"one\n"
    );

    // Second pull: nothing fetched.
    let again = client()
        .pull(&dst, &target, &PullOptions::default())
        .unwrap();
    assert_eq!((again.blobs_fetched, again.blobs_present), (0, 3));

    // By digest: same manifest, no tag.
    let (_c, by_digest) = store();
    let pinned = r(&format!("{}/test/app@{}", reg.addr, img.manifest_digest));
    let p = client()
        .pull(&by_digest, &pinned, &PullOptions::default())
        .unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    assert!(p.tag.is_none() && by_digest.list_tags().unwrap().is_empty());

    // A second image sharing the base layer: only the new blobs come.
    let img2 = small_image(&src, b"two\n");
    assert_eq!(
        img2.manifest.layers[0].digest,
        img.manifest.layers[0].digest
    );
    let target2 = r(&format!("{}/test/app:v2", reg.addr));
    let report = c
        .push(
            &src,
            &img2.manifest_digest,
            &target2,
            &PushOptions::default(),
        )
        .unwrap();
    assert_eq!((report.uploaded, report.existing), (2, 1), "{report:?}");
    let pulled2 = client()
        .pull(&dst, &target2, &PullOptions::default())
        .unwrap();
    assert_eq!((pulled2.blobs_fetched, pulled2.blobs_present), (2, 1));
    assert_eq!(
        read_file_from(&dst, &pulled2.manifest.layers, "app/marker"),
        b"two\n"
    );

    // Same image to another repository: mounted, not uploaded.
    let other = r(&format!("{}/test/other:v1", reg.addr));
    let report = c
        .push(&src, &img.manifest_digest, &other, &PushOptions::default())
        .unwrap();
    assert_eq!((report.uploaded, report.mounted), (0, 3), "{report:?}");
    // With a fresh client that knows nothing: mounted from the hint.
    let third = r(&format!("{}/test/third:v1", reg.addr));
    let hint = PushOptions {
        mount_from: vec!["test/app".into()],
        ..PushOptions::default()
    };
    let report = client()
        .push(&src, &img.manifest_digest, &third, &hint)
        .unwrap();
    assert_eq!((report.uploaded, report.mounted), (0, 3), "{report:?}");
    let fetched = client().fetch_manifest(&third).unwrap();
    assert_eq!(fetched.digest, img.manifest_digest);

    // Pushing again: every blob already there.
    let report = c
        .push(&src, &img.manifest_digest, &target, &PushOptions::default())
        .unwrap();
    assert_eq!((report.uploaded, report.existing), (0, 3));

    // Missing tag: a clear 404, nothing stored.
    let (_e, empty) = store();
    let err = client()
        .pull(
            &empty,
            &r(&format!("{}/test/app:nope", reg.addr)),
            &PullOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err:?}");
    assert!(empty.list_tags().unwrap().is_empty());
}

#[test]
fn chunked_push_of_a_large_blob() {
    let Some(reg) = Registry::start("chunked_push_of_a_large_blob", None) else {
        return;
    };
    let (_a, src) = store();
    let big = noise(3 << 20, 11);
    let img = build_image(&src, &[&[("big", &big)]], "amd64", Compression::None);
    let target = r(&format!("{}/test/big:v1", reg.addr));
    let chunks = Arc::new(Mutex::new(Vec::new()));
    let seen = chunks.clone();
    let opts = PushOptions {
        monolithic_max: 1 << 20,
        chunk_size: 700 * 1024,
        progress: Some(Arc::new(move |p: &Progress| {
            if let Progress::BlobBytes { done, total, .. } = p {
                seen.lock().unwrap().push((*done, *total));
            }
        })),
        ..PushOptions::default()
    };
    let report = client()
        .push(&src, &img.manifest_digest, &target, &opts)
        .unwrap();
    assert_eq!(report.uploaded, 2);
    // One progress event per PATCH: ceil(3 MiB+tar overhead / 700 KiB).
    let chunks = chunks.lock().unwrap().clone();
    assert!(chunks.len() >= 5, "{chunks:?}");
    assert!(chunks.iter().all(|(done, total)| done <= total));
    assert_eq!(
        chunks.last().map(|c| c.0),
        Some(img.manifest.layers[0].size)
    );
    let (_b, dst) = store();
    let pulled = client()
        .pull(&dst, &target, &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(read_file_from(&dst, &pulled.manifest.layers, "big"), big);
}

#[test]
fn basic_auth_push_pull_and_login() {
    let Some(reg) = Registry::start(
        "basic_auth_push_pull_and_login",
        Some(("buildr", "s3cret-pw")),
    ) else {
        return;
    };
    let (_a, src) = store();
    let img = small_image(&src, b"auth\n");
    let target = r(&format!("{}/private/app:v1", reg.addr));

    // No credentials: refused clearly.
    let err = client()
        .push(&src, &img.manifest_digest, &target, &PushOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");

    // Wrong password: login check fails, push fails.
    let wrong = Credentials::new("buildr", "nope");
    assert!(matches!(
        client().check_login(&reg.addr, &wrong),
        Err(Error::Auth { .. })
    ));

    // Right password, saved with login into a docker config.json.
    let right = Credentials::new("buildr", "s3cret-pw");
    client().check_login(&reg.addr, &right).unwrap();
    let home = tempfile::tempdir().unwrap();
    let cfg_path = home.path().join(".docker/config.json");
    let mut cfg = DockerConfig::load(&cfg_path).unwrap();
    cfg.login(&reg.addr, &right).unwrap();
    let cfg = DockerConfig::load(&cfg_path).unwrap();
    let authed = RegistryClient::new(ClientOptions {
        credentials: Arc::new(cfg),
        ..ClientOptions::default()
    });
    authed
        .push(&src, &img.manifest_digest, &target, &PushOptions::default())
        .unwrap();
    let (_b, dst) = store();
    let pulled = authed.pull(&dst, &target, &PullOptions::default()).unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);

    // Anonymous pull of the private image: refused, nothing stored.
    let (_c, anon) = store();
    let err = client()
        .pull(&anon, &target, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(anon.list_tags().unwrap().is_empty());

    // Logout: the file no longer has them.
    let mut cfg = DockerConfig::load(&cfg_path).unwrap();
    assert!(cfg.logout(&reg.addr).unwrap());
    assert!(
        DockerConfig::load(&cfg_path)
            .unwrap()
            .credentials(&reg.addr)
            .unwrap()
            .is_none()
    );
}

#[test]
fn mirror_for_docker_io_serves_busybox() {
    let Some(mirror) = Registry::start("mirror_for_docker_io_serves_busybox", None) else {
        return;
    };
    let (_a, src) = store();
    let img = small_image(&src, b"busybox from the mirror\n");
    client()
        .push(
            &src,
            &img.manifest_digest,
            &r(&format!("{}/library/busybox:latest", mirror.addr)),
            &PushOptions::default(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("config.toml");
    fs::write(
        &cfg_path,
        format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{}\"]\n",
            mirror.addr
        ),
    )
    .unwrap();
    let config = RegistryConfig::load(&cfg_path).unwrap();
    // Only loopback is configured: the mirror answers, so docker.io itself
    // is never contacted (the machine has no route to it anyway; a
    // fallback would fail this test with a connection error).
    let c = RegistryClient::new(ClientOptions {
        config,
        connect_timeout: Duration::from_secs(2),
        max_tries: 1,
        ..ClientOptions::default()
    });
    let (_b, dst) = store();
    let pulled = c
        .pull(&dst, &r("busybox"), &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(
        pulled.tag.as_deref(),
        Some("docker.io/library/busybox:latest")
    );
    assert_eq!(
        read_file_from(&dst, &pulled.manifest.layers, "app/marker"),
        b"busybox from the mirror\n"
    );
}

fn write_layout(dir: &Path, store: &Store, blobs: &[Digest], index: &Index, ref_name: &str) {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for d in blobs {
        let bytes = store.read_blob(d, 1 << 30).unwrap();
        fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    }
    let index_bytes = serde_json::to_vec(index).unwrap();
    let index_digest = Digest::of(&index_bytes);
    fs::write(
        dir.join("blobs/sha256").join(index_digest.hex()),
        &index_bytes,
    )
    .unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": [{
            "mediaType": media_type::OCI_INDEX,
            "digest": index_digest.to_string(),
            "size": index_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name}
        }]
    });
    fs::write(dir.join("index.json"), top.to_string()).unwrap();
}

#[test]
fn skopeo_interop_both_ways_with_multi_platform_index() {
    let test = "skopeo_interop_both_ways_with_multi_platform_index";
    if !need_tool(test, "skopeo") {
        return;
    }
    let Some(reg) = Registry::start(test, None) else {
        return;
    };
    let (_a, src) = store();

    // skopeo pulls what buildr pushed, byte for byte.
    let img = small_image(&src, b"for skopeo\n");
    client()
        .push(
            &src,
            &img.manifest_digest,
            &r(&format!("{}/interop/app:v1", reg.addr)),
            &PushOptions::default(),
        )
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let oci_dir = out.path().join("oci");
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/interop/app:v1", reg.addr),
        &format!("oci:{}:v1", oci_dir.display()),
    ]));
    for d in img.blobs().iter().chain([&img.manifest_digest]) {
        let path = oci_dir.join("blobs/sha256").join(d.hex());
        assert!(path.exists(), "skopeo did not get {d}");
    }

    // buildr pulls what skopeo pushed: a two-platform index.
    let amd = build_image(&src, &[&[("arch", b"amd64\n")]], "amd64", Compression::Gzip);
    let arm = build_image(&src, &[&[("arch", b"arm64\n")]], "arm64", Compression::Gzip);
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    for (img, arch, variant) in [(&amd, "amd64", None), (&arm, "arm64", Some("v8"))] {
        blobs.extend(img.blobs());
        blobs.push(img.manifest_digest);
        let mut d = Descriptor::new(
            media_type::OCI_MANIFEST,
            img.manifest_digest,
            img.manifest_bytes.len() as u64,
        );
        let mut p = parse_platform(&format!("linux/{arch}")).unwrap();
        p.variant = variant.map(Into::into);
        d.platform = Some(p);
        manifests.push(d);
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let layout = out.path().join("layout");
    write_layout(&layout, &src, &blobs, &index, "multi");
    run(Command::new("skopeo").args([
        "copy",
        "--multi-arch=all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{}/interop/multi:v1", reg.addr),
    ]));
    let target = r(&format!("{}/interop/multi:v1", reg.addr));
    let top = client().fetch_manifest(&target).unwrap();
    assert_eq!(top.media_type.as_deref(), Some(media_type::OCI_INDEX));
    for (want, platform, marker) in [
        (&amd, "linux/amd64", b"amd64\n"),
        (&arm, "linux/arm64", b"arm64\n"),
    ] {
        let (_d, dst) = store();
        let opts = PullOptions {
            platform: Some(parse_platform(platform).unwrap()),
            ..PullOptions::default()
        };
        let pulled = client().pull(&dst, &target, &opts).unwrap();
        assert_eq!(pulled.manifest_digest, want.manifest_digest, "{platform}");
        assert_eq!(pulled.index_digest, Some(top.digest));
        assert_eq!(
            read_file_from(&dst, &pulled.manifest.layers, "arch"),
            marker
        );
        assert!(dst.verify().unwrap().is_empty());
    }
    let (_d, dst) = store();
    let opts = PullOptions {
        platform: Some(parse_platform("linux/s390x").unwrap()),
        ..PullOptions::default()
    };
    let err = client().pull(&dst, &target, &opts).unwrap_err();
    assert!(matches!(err, Error::NoPlatform { .. }), "{err:?}");
    assert!(err.to_string().contains("linux/arm64"), "{err}");

    // Docker schema 2 (skopeo converts): buildr pulls it too.
    let single = out.path().join("single");
    let one = Index {
        manifests: vec![{
            let mut d = Descriptor::new(
                media_type::OCI_MANIFEST,
                amd.manifest_digest,
                amd.manifest_bytes.len() as u64,
            );
            d.annotations = Some(
                [(
                    "org.opencontainers.image.ref.name".to_owned(),
                    "one".to_owned(),
                )]
                .into(),
            );
            d
        }],
        ..index.clone()
    };
    fs::create_dir_all(single.join("blobs/sha256")).unwrap();
    fs::write(
        single.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    for d in amd.blobs().iter().chain([&amd.manifest_digest]) {
        fs::write(
            single.join("blobs/sha256").join(d.hex()),
            src.read_blob(d, 1 << 30).unwrap(),
        )
        .unwrap();
    }
    fs::write(single.join("index.json"), serde_json::to_vec(&one).unwrap()).unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--format=v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:one", single.display()),
        &format!("docker://{}/interop/docker:v1", reg.addr),
    ]));
    let (_d, dst) = store();
    let target = r(&format!("{}/interop/docker:v1", reg.addr));
    let fetched = client().fetch_manifest(&target).unwrap();
    assert_eq!(
        fetched.media_type.as_deref(),
        Some(media_type::DOCKER_MANIFEST)
    );
    let pulled = client()
        .pull(&dst, &target, &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, fetched.digest);
    assert_eq!(
        read_file_from(&dst, &pulled.manifest.layers, "arch"),
        b"amd64\n"
    );
}

#[test]
fn tls_registry_with_configured_ca() {
    let test = "tls_registry_with_configured_ca";
    if !need_tool(test, "openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::support::make_certs(certs.path());
    let Some(reg) = Registry::start_with(
        test,
        RegistryOptions {
            tls: Some((&cert, &key)),
            ..RegistryOptions::default()
        },
    ) else {
        return;
    };
    let (_a, src) = store();
    let img = small_image(&src, b"over tls\n");
    let target = r(&format!("{}/tls/app:v1", reg.addr));

    // Without the CA: the certificate is not trusted, nothing is pushed.
    let err = client()
        .push(&src, &img.manifest_digest, &target, &PushOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    let chain = format!("{:?}", err);
    assert!(
        chain.contains("https://") && chain.to_lowercase().contains("cert"),
        "{chain}"
    );

    let with_ca = |extra: &str| {
        let text = format!("[registry.\"{}\"]\n{extra}\n", reg.addr);
        let config = RegistryConfig::parse(&text, Path::new("test.toml")).unwrap();
        RegistryClient::new(ClientOptions {
            config,
            ..ClientOptions::default()
        })
    };
    let c = with_ca(&format!("ca = \"{}\"", ca.display()));
    c.push(&src, &img.manifest_digest, &target, &PushOptions::default())
        .unwrap();
    let (_b, dst) = store();
    let pulled = c.pull(&dst, &target, &PullOptions::default()).unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);

    // Configured insecure: TLS without verification works too.
    let (_c, dst) = store();
    let pulled = with_ca("insecure = true")
        .pull(&dst, &target, &PullOptions::default())
        .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
}
