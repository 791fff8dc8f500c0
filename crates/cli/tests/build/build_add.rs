//! `ADD` and `COPY` flags end to end: local archives in every compression
//! BuildKit knows, URLs (over a loopback HTTP server the test runs),
//! `COPY --parents` and `COPY --link`, each built with the real binary on a
//! busybox base and checked in the image umoci unpacks.
//!
//! Besides the harness's prerequisites these need the `bzip2`, `xz` and
//! `zstd` tools to make the archives.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::build_common::Env;
use buildr_testkit::prereq::need_tools;

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn meta(root: &Path, path: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(root.join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path} in the image: {e}"))
}

/// (mode bits, uid, gid) of a path in the unpacked image.
fn mode_owner(root: &Path, path: &str) -> (u32, u32, u32) {
    let m = meta(root, path);
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn add_extracts_every_local_archive_kind() {
    let Some(env) = Env::new("add-archives") else {
        return;
    };
    if !need_tools("add-archives", &["bzip2", "xz", "zstd", "gzip"]) {
        return;
    }
    let dir = env.dir.path();
    let payload = dir.join("payload");
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    sh(&format!(
        "mkdir -p {p}/d/sub && printf 'payload\\n' > {p}/d/p.txt && printf '#!/bin/sh\\n' > {p}/d/sub/run.sh \
         && chmod 0640 {p}/d/p.txt && chmod 0755 {p}/d/sub/run.sh && chown 1000:1001 {p}/d/p.txt \
         && ln -s p.txt {p}/d/link && chmod 0750 {p}/d/sub",
        p = payload.display()
    ));
    let c = ctx.display();
    let p = payload.display();
    sh(&format!(
        "cd {p} && tar -cf {c}/plain.tar d && gzip -c {c}/plain.tar > {c}/a.tar.gz \
         && bzip2 -c {c}/plain.tar > {c}/a.tar.bz2 && xz -c {c}/plain.tar > {c}/a.tar.xz \
         && zstd -q -c {c}/plain.tar > {c}/a.tar.zst && xz -c {c}/plain.tar > {c}/xz-named.bin \
         && printf 'not an archive\\n' > {c}/fake.tar.gz && printf 'text' | gzip -c > {c}/text.gz"
    ));
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         ADD plain.tar /x/plain/\n\
         ADD a.tar.gz /x/gz\n\
         ADD a.tar.bz2 /x/bz2/\n\
         ADD a.tar.xz /x/xz/\n\
         ADD a.tar.zst /x/zst/\n\
         ADD xz-named.bin /x/named/\n\
         ADD fake.tar.gz text.gz /x/files/\n\
         COPY a.tar.xz /x/copied/\n",
    )
    .unwrap();
    env.build(&ctx, &["-t", "add-archives:latest"]);
    let image = env.unpack("add-archives:latest");
    let root = image.rootfs();
    for kind in ["plain", "gz", "bz2", "xz", "zst", "named"] {
        let base = format!("x/{kind}/d");
        assert_eq!(image.read(&format!("{base}/p.txt")), "payload\n", "{kind}");
        assert_eq!(
            mode_owner(&root, &format!("{base}/p.txt")),
            (0o640, 1000, 1001),
            "{kind}: mode and owner from the archive"
        );
        assert_eq!(
            mode_owner(&root, &format!("{base}/sub/run.sh")).0,
            0o755,
            "{kind}"
        );
        assert_eq!(mode_owner(&root, &format!("{base}/sub")).0, 0o750, "{kind}");
        let link = std::fs::read_link(root.join(format!("{base}/link"))).unwrap();
        assert_eq!(link.to_str(), Some("p.txt"), "{kind}");
    }
    // Not archives: copied as they are (named .tar.gz, gzip of plain text).
    assert_eq!(image.read("x/files/fake.tar.gz"), "not an archive\n");
    assert!(meta(&root, "x/files/text.gz").is_file());
    assert_eq!(
        std::fs::read(root.join("x/files/text.gz")).unwrap(),
        std::fs::read(ctx.join("text.gz")).unwrap()
    );
    // COPY never extracts.
    assert!(meta(&root, "x/copied/a.tar.xz").is_file());
    assert!(!root.join("x/copied/d").exists());
}

/// What the test server answers for one path.
#[derive(Clone)]
struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: &[u8]) -> Reply {
        Reply {
            status: "200 OK",
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A loopback HTTP/1.1 server on a free port: one connection at a time,
/// `Connection: close`, requests recorded (request line and headers).
struct Server {
    port: u16,
    routes: Arc<Mutex<Vec<(String, Reply)>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<Vec<(String, Reply)>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, s) = (Arc::clone(&routes), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = handle(stream, &r, &s);
            }
        });
        Server { port, routes, seen }
    }

    fn route(&self, path: &str, reply: Reply) {
        let mut routes = self.routes.lock().unwrap();
        routes.retain(|(p, _)| p != path);
        routes.push((path.to_owned(), reply));
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// As BuildKit (untar chrooted into the destination of the stage's root):
/// an entry's parents are resolved through the image's symlinks, with the
/// destination as the root, and existing directories keep their mode.
#[test]
fn add_archive_follows_the_images_symlinks_inside_the_destination() {
    let Some(env) = Env::new("add-archive-symlinks") else {
        return;
    };
    let dir = env.dir.path();
    let ctx = dir.join("ctx");
    let p = dir.join("payload");
    std::fs::create_dir_all(&ctx).unwrap();
    let (c, p) = (ctx.display(), p.display());
    sh(&format!(
        "mkdir -p {p}/var/run/act {p}/abs {p}/up {p}/tmp && printf 'head\\n' > {p}/var/run/act/HEAD \
         && ln {p}/var/run/act/HEAD {p}/var/run/act/HEAD.link && printf one > {p}/abs/f1 \
         && printf two > {p}/up/f2 && printf three > {p}/tmp/x \
         && tar -C {p} -cf {c}/run.tar var/run/act/HEAD var/run/act/HEAD.link tmp/x \
         && tar -C {p} -cf {c}/opt.tar abs/f1 up/f2"
    ));
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         RUN mkdir -p /var /run /opt/etc2 /etc2 && rm -rf /var/run && ln -s /run /var/run \\\n\
          && ln -s /etc2 /opt/abs && ln -s ../../.. /opt/up && chmod 1777 /tmp\n\
         ADD run.tar /\n\
         ADD opt.tar /opt/\n",
    )
    .unwrap();
    env.build(&ctx, &["-t", "add-symlinks:latest"]);
    let image = env.unpack("add-symlinks:latest");
    let root = image.rootfs();
    let link = std::fs::read_link(root.join("var/run")).unwrap();
    assert_eq!(link.to_str(), Some("/run"), "the image's link stays");
    assert_eq!(image.read("run/act/HEAD"), "head\n");
    assert_eq!(
        meta(&root, "run/act/HEAD.link").ino(),
        meta(&root, "run/act/HEAD").ino()
    );
    assert_eq!(
        mode_owner(&root, "tmp").0,
        0o1777,
        "an existing parent keeps its mode"
    );
    assert_eq!(image.read("tmp/x"), "three");
    // The destination is the root: /opt/abs -> /etc2 is /opt/etc2, and
    // ../../.. from /opt/up stops at /opt.
    assert_eq!(image.read("opt/etc2/f1"), "one");
    assert_eq!(image.read("opt/f2"), "two");
    assert!(!root.join("etc2/f1").exists() && !root.join("f2").exists());

    // A link to a directory that does not exist fails, as BuildKit's does.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nRUN mkdir /opt && ln -s /nowhere /opt/abs\nADD opt.tar /opt/\n",
    )
    .unwrap();
    let failed = env.try_build(&ctx, &[]);
    assert!(
        !failed.output.status.success(),
        "extracted through a dangling link"
    );
    let stderr = failed.stderr();
    assert!(
        stderr.contains("Dockerfile:3") && stderr.contains("abs/f1"),
        "{stderr}"
    );
}

fn handle(
    mut stream: TcpStream,
    routes: &Mutex<Vec<(String, Reply)>>,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        request.push_str(&line);
    }
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(request);
    let reply = routes
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, r)| r.clone())
        .unwrap_or(Reply {
            status: "404 Not Found",
            headers: Vec::new(),
            body: b"no such file\n".to_vec(),
        });
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply.body)?;
    stream.flush()
}

fn sha256(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, data).unwrap();
    buildr_testkit::process::run_tool("sha256sum", &[file.to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn add_urls_names_mtimes_redirects_checksums_and_errors() {
    let Some(env) = Env::new("add-urls") else {
        return;
    };
    if !need_tools("add-urls", &["gzip"]) {
        return;
    }
    let origin = Server::start();
    let other = Server::start();
    let dir = env.dir.path();
    // A real tar.gz served remotely: BuildKit never extracts URLs.
    let payload = dir.join("payload");
    sh(&format!(
        "mkdir -p {p}/d && echo hi > {p}/d/f && tar -C {p} -czf {p}/remote.tar.gz d",
        p = payload.display()
    ));
    let archive = std::fs::read(payload.join("remote.tar.gz")).unwrap();
    origin.route("/files/remote.tar.gz", Reply::ok(&archive));
    origin.route(
        "/files/dated.txt",
        Reply::ok(b"dated\n").header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    origin.route("/files/undated.txt", Reply::ok(b"undated\n"));
    origin.route(
        "/files/moved.txt",
        Reply {
            status: "302 Found",
            headers: vec![("Location".into(), other.url("/elsewhere/final.bin"))],
            body: Vec::new(),
        },
    );
    other.route("/elsewhere/final.bin", Reply::ok(b"redirected\n"));
    let sum = sha256(b"dated\n");
    let moved = format!(
        "http://user:s3cret@127.0.0.1:{}/files/moved.txt",
        origin.port
    );
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM buildr-fixtures/busybox:latest\n\
             ADD {remote} /dl/\n\
             ADD --checksum=sha256:{sum} {dated} /dl/\n\
             ADD --chmod=0644 {undated} /dl/renamed.txt\n\
             ADD {moved} /dl/\n",
            remote = origin.url("/files/remote.tar.gz"),
            dated = origin.url("/files/dated.txt"),
            undated = origin.url("/files/undated.txt"),
        ),
    )
    .unwrap();
    env.build(&ctx, &["-t", "add-urls:latest"]);
    let image = env.unpack("add-urls:latest");
    let root = image.rootfs();
    // Not extracted, named after the URL, mode 0600, owner 0:0.
    assert_eq!(
        std::fs::read(root.join("dl/remote.tar.gz")).unwrap(),
        archive
    );
    assert!(!root.join("dl/d").exists());
    assert_eq!(mode_owner(&root, "dl/remote.tar.gz"), (0o600, 0, 0));
    // Last-Modified is the mtime; without it, the epoch.
    assert_eq!(image.read("dl/dated.txt"), "dated\n");
    assert_eq!(meta(&root, "dl/dated.txt").mtime(), 1_445_412_480);
    assert_eq!(meta(&root, "dl/renamed.txt").mtime(), 0);
    assert_eq!(mode_owner(&root, "dl/renamed.txt"), (0o644, 0, 0));
    // A redirect to another origin works; the name is the first URL's.
    assert_eq!(image.read("dl/moved.txt"), "redirected\n");
    let first = origin.requests();
    let to_moved = first
        .iter()
        .find(|r| r.starts_with("GET /files/moved.txt"))
        .expect("the origin saw the request");
    assert!(
        to_moved
            .to_ascii_lowercase()
            .contains("authorization: basic"),
        "credentials from the URL go to its own origin: {to_moved}"
    );
    let elsewhere = other.requests();
    assert_eq!(elsewhere.len(), 1, "{elsewhere:?}");
    assert!(
        !elsewhere[0].to_ascii_lowercase().contains("authorization"),
        "credentials must not cross origins: {}",
        elsewhere[0]
    );

    // Same content, new Last-Modified: the step reruns (the mtime is in
    // the layer); unchanged URLs stay cached.
    origin.route(
        "/files/dated.txt",
        Reply::ok(b"dated\n").header("Last-Modified", "Thu, 22 Oct 2015 07:28:00 GMT"),
    );
    let again = env.build(&ctx, &["-t", "add-urls:2"]);
    let started = again.steps("started");
    assert!(
        started.iter().any(|s| s.contains("dated.txt")),
        "{started:?}"
    );
    assert!(
        !started.iter().any(|s| s.contains("remote.tar.gz")),
        "{started:?}"
    );

    // Failures name the URL and the Dockerfile line.
    let failing = |name: &str, line: String| {
        let ctx = dir.join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM buildr-fixtures/busybox:latest\nRUN true\n{line}\n"),
        )
        .unwrap();
        let build = env.try_build(&ctx, &[]);
        assert!(!build.output.status.success(), "{name} must fail");
        build.stderr()
    };
    let missing = origin.url("/files/missing.txt");
    let err = failing("notfound", format!("ADD {missing} /dl/"));
    assert!(
        err.contains("Dockerfile:3") && err.contains(&missing) && err.contains("404"),
        "{err}"
    );
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/x.txt")
    };
    let err = failing("refused", format!("ADD {closed} /dl/"));
    assert!(
        err.contains("Dockerfile:3") && err.contains(&closed) && err.contains("connection"),
        "{err}"
    );
    let wrong = "0".repeat(64);
    let dated = origin.url("/files/dated.txt");
    let err = failing(
        "mismatch",
        format!("ADD --checksum=sha256:{wrong} {dated} /dl/"),
    );
    assert!(
        err.contains("Dockerfile:3")
            && err.contains("digest mismatch")
            && err.contains(&dated)
            && err.contains(&wrong)
            && err.contains(&sum),
        "{err}"
    );
}

/// Every path below `root/dir`, relative to `root`, sorted (`find`).
fn tree(root: &Path, dir: &str) -> Vec<String> {
    let out = buildr_testkit::process::run_tool("find", &[root.join(dir).to_str().unwrap()]);
    let prefix = format!("{}/", root.display());
    let mut paths: Vec<String> = out
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_owned())
        .collect();
    paths.sort();
    paths
}

#[test]
fn copy_parents_keeps_paths_below_the_pivot() {
    let Some(env) = Env::new("copy-parents") else {
        return;
    };
    let dir = env.dir.path();
    let ctx = dir.join("ctx");
    sh(&format!(
        "mkdir -p {c}/x/y/z {c}/a/b/c {c}/a/b/d {c}/m/only && cd {c} \
         && echo 1 > x/top.txt && echo 2 > x/y/mid.txt && echo 3 > x/y/z/deep.txt \
         && echo no > x/y/skip.md && echo no > x/y/z/skip.md && chmod 0750 x/y \
         && echo c > a/b/c.txt && echo file > a/b/file && echo in > a/b/c/in.txt \
         && echo d > a/b/d/d.txt && echo only > m/only/o.txt && ln -s c.txt a/b/link",
        c = ctx.display()
    ));
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         COPY --parents ./x/**/*.txt /dst/\n\
         COPY --parents a/./b/c.txt /pivot/\n\
         COPY --parents a/b/file /plain/\n\
         COPY --parents a/b/c a/./b/d /dirs/\n\
         COPY --parents x/*/*.txt /one/\n\
         COPY --parents a/b/link /links/\n\
         COPY --parents nothing/**/*.none /empty/\n\
         COPY --parents --exclude=**/z x/**/*.txt /excl/\n\
         FROM buildr-fixtures/busybox:latest AS other\n\
         COPY --parents a/./b/c.txt x/y /staged/\n\
         FROM buildr-fixtures/busybox:latest\n\
         COPY --parents --from=other /staged/./b /staged/./x/**/deep.txt /fromstage/\n",
    )
    .unwrap();
    // Build both stages: the last one is the target, `other` feeds it.
    env.build(&ctx, &["-t", "copy-parents:latest"]);
    let stage = env.unpack("copy-parents:latest");
    let root = stage.rootfs();
    assert_eq!(
        tree(&root, "fromstage"),
        [
            "fromstage",
            "fromstage/b",
            "fromstage/b/c.txt",
            "fromstage/x",
            "fromstage/x/y",
            "fromstage/x/y/z",
            "fromstage/x/y/z/deep.txt",
        ]
    );
    assert_eq!(mode_owner(&root, "fromstage/x/y").0, 0o750);

    // The first stage as its own image.
    std::fs::write(
        ctx.join("Dockerfile.first"),
        std::fs::read_to_string(ctx.join("Dockerfile"))
            .unwrap()
            .split("FROM buildr-fixtures/busybox:latest AS other")
            .next()
            .unwrap(),
    )
    .unwrap();
    let first = ctx.join("Dockerfile.first");
    env.build(
        &ctx,
        &["-f", first.to_str().unwrap(), "-t", "copy-parents:first"],
    );
    let image = env.unpack("copy-parents:first");
    let root = image.rootfs();
    // `**` spans any number of directories (none included); parents keep
    // their source mode.
    assert_eq!(
        tree(&root, "dst"),
        [
            "dst",
            "dst/x",
            "dst/x/top.txt",
            "dst/x/y",
            "dst/x/y/mid.txt",
            "dst/x/y/z",
            "dst/x/y/z/deep.txt",
        ]
    );
    assert_eq!(image.read("dst/x/y/z/deep.txt"), "3\n");
    assert_eq!(mode_owner(&root, "dst/x/y"), (0o750, 0, 0));
    // The pivot: only what follows `/./` is kept.
    assert_eq!(tree(&root, "pivot"), ["pivot", "pivot/b", "pivot/b/c.txt"]);
    assert_eq!(
        tree(&root, "plain"),
        ["plain", "plain/a", "plain/a/b", "plain/a/b/file"]
    );
    // A directory comes with its subtree, under its own path.
    assert_eq!(
        tree(&root, "dirs"),
        [
            "dirs",
            "dirs/a",
            "dirs/a/b",
            "dirs/a/b/c",
            "dirs/a/b/c/in.txt",
            "dirs/b",
            "dirs/b/d",
            "dirs/b/d/d.txt",
        ]
    );
    // `*` stays within one element.
    assert_eq!(
        tree(&root, "one"),
        ["one", "one/x", "one/x/y", "one/x/y/mid.txt"]
    );
    // A symlink is copied as a symlink.
    let link = std::fs::read_link(root.join("links/a/b/link")).unwrap();
    assert_eq!(link.to_str(), Some("c.txt"));
    // A wildcard that matches nothing is accepted, as BuildKit does.
    assert_eq!(tree(&root, "empty"), ["empty"]);
    assert_eq!(
        tree(&root, "excl"),
        [
            "excl",
            "excl/x",
            "excl/x/top.txt",
            "excl/x/y",
            "excl/x/y/mid.txt"
        ]
    );

    // A new file no pattern matches: every step stays cached. A new file
    // `**` matches: its step (the first) reruns.
    std::fs::write(ctx.join("x/y/z/new.md"), "md\n").unwrap();
    let again = env.build(
        &ctx,
        &["-f", first.to_str().unwrap(), "-t", "copy-parents:first"],
    );
    assert!(
        again.steps("started").is_empty(),
        "{:?}",
        again.steps("started")
    );
    std::fs::write(ctx.join("x/y/z/new.txt"), "new\n").unwrap();
    let changed = env.build(
        &ctx,
        &["-f", first.to_str().unwrap(), "-t", "copy-parents:first"],
    );
    let started = changed.steps("started");
    assert!(
        started
            .first()
            .is_some_and(|s| s.contains("./x/**/*.txt /dst/")),
        "{started:?}"
    );
    assert_eq!(
        env.unpack("copy-parents:first").read("dst/x/y/z/new.txt"),
        "new\n"
    );

    // Without wildcards the path must exist (BuildKit's RequiredPaths).
    let bad = dir.join("bad");
    std::fs::create_dir_all(bad.join("a")).unwrap();
    std::fs::write(
        bad.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nCOPY --parents a/missing /dst/\n",
    )
    .unwrap();
    let build = env.try_build(&bad, &[]);
    assert!(!build.output.status.success());
    let err = build.stderr();
    assert!(
        err.contains("Dockerfile:2") && err.contains("/a/missing") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn copy_link_is_independent_of_the_layers_below() {
    let Some(env) = Env::new("copy-link") else {
        return;
    };
    let dir = env.dir.path();
    let ctx = dir.join("ctx");
    sh(&format!(
        "mkdir -p {c}/tree/sub && cd {c} && echo linked > a.txt && echo plain > b.txt \
         && echo t > tree/sub/t.txt && chmod 0640 tree/sub/t.txt",
        c = ctx.display()
    ));
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         ARG V=1\n\
         RUN echo $V > /variant && mkdir -p /real && ln -s /real /app2\n\
         COPY --link a.txt /app/a.txt\n\
         COPY b.txt /app/b.txt\n\
         COPY --link --chown=1234:5678 tree /app/tree\n\
         COPY --link a.txt /app2/\n",
    )
    .unwrap();
    let first = env.build(&ctx, &["-t", "copy-link:1"]);
    assert!(
        first
            .steps("started")
            .iter()
            .any(|s| s.contains("LINK COPY --link a.txt /app/a.txt")),
        "{:?}",
        first.steps("started")
    );
    let one = env.unpack("copy-link:1");
    // Change the RUN: the --link copies stay cached (only their LINK
    // steps rerun), the plain COPY reruns.
    let second = env.build(&ctx, &["--build-arg", "V=2", "-t", "copy-link:2"]);
    let cached = second.steps("cached");
    let started = second.steps("started");
    for step in [
        "COPY --link a.txt /app/a.txt",
        "COPY --link --chown=1234:5678 tree",
    ] {
        assert!(
            cached
                .iter()
                .any(|s| s.contains(step) && !s.contains("LINK COPY")),
            "{step} must be cached: cached {cached:?}, started {started:?}"
        );
        assert!(
            !started
                .iter()
                .any(|s| s.contains(step) && !s.contains("LINK COPY")),
            "{step} must not rerun: {started:?}"
        );
    }
    assert!(
        started.iter().any(|s| s.contains("COPY b.txt /app/b.txt")),
        "{started:?}"
    );
    assert!(
        started.iter().any(|s| s.contains("RUN echo")),
        "{started:?}"
    );
    let two = env.unpack("copy-link:2");
    let (r1, r2) = (one.rootfs(), two.rootfs());
    assert_eq!(two.read("variant"), "2\n");
    for image in [&one, &two] {
        assert_eq!(image.read("app/a.txt"), "linked\n");
        assert_eq!(image.read("app/b.txt"), "plain\n");
        assert_eq!(image.read("app/tree/sub/t.txt"), "t\n");
    }
    assert_eq!(mode_owner(&r2, "app/tree/sub/t.txt"), (0o640, 1234, 5678));
    // The same layer blobs for the --link copies in both images.
    let layers = |image: &crate::build_common::Unpacked| -> Vec<String> {
        image.manifest()["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let (l1, l2) = (layers(&one), layers(&two));
    assert_eq!(l1.len(), l2.len());
    let n = l1.len();
    // Layers: base..., RUN, COPY --link a, COPY b, COPY --link tree, COPY --link /app2/.
    assert_eq!(l1[n - 4], l2[n - 4], "COPY --link a.txt layer");
    assert_eq!(l1[n - 2], l2[n - 2], "COPY --link tree layer");
    assert_eq!(l1[n - 1], l2[n - 1], "COPY --link /app2/ layer");
    assert_ne!(l1[n - 5], l2[n - 5], "the RUN layer changed");
    // The --link layer holds only the copied files and their parents.
    let entries = two.layer_entries(n - 4);
    assert!(
        entries
            .iter()
            .all(|e| e.trim_start_matches("./").starts_with("app")),
        "{entries:?}"
    );
    // With --link the destination's symlink below is not followed: the
    // layer makes /app2 a directory (BuildKit's documented difference).
    assert!(meta(&r2, "app2").is_dir(), "/app2 is a directory");
    assert_eq!(two.read("app2/a.txt"), "linked\n");
    assert!(!r2.join("real/a.txt").exists());
    assert!(r1.join("app2/a.txt").exists());

    // A named --chown cannot be resolved without the stage below.
    let named = dir.join("named");
    std::fs::create_dir_all(&named).unwrap();
    std::fs::write(named.join("f"), "f").unwrap();
    std::fs::write(
        named.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nCOPY --link --chown=nobody f /f\n",
    )
    .unwrap();
    let build = env.try_build(&named, &[]);
    assert!(!build.output.status.success());
    let err = build.stderr();
    assert!(
        err.contains("Dockerfile:2") && err.contains("nobody") && err.contains("--link"),
        "{err}"
    );
}
