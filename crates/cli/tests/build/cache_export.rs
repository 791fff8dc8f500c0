//! `--cache-to` / `--cache-from` end to end: the real binary, Debian's
//! `docker-registry` on loopback and local cache directories, with stores
//! standing for CI machines that share nothing but the cache.
//!
//! A step whose result came from a cache says `CACHED` in the plain
//! progress; each Dockerfile writes random bytes in a RUN step, so an
//! identical image id after a rebuild on another machine can only come
//! from the cache. Under CI=true a missing prerequisite fails; otherwise
//! the tests skip loudly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::registry_common::Machine;
use buildr_testkit::prereq::{need_root, need_tools};
use buildr_testkit::registry::{Options as RegistryOptions, REGISTRY_BIN, Registry};
use buildr_testkit::workspace;

/// What these tests do on a machine (one CI runner).
impl Machine {
    fn buildr_ok(&self, args: &[&str]) -> Output {
        let out = self.try_buildr(args);
        assert!(
            out.status.success(),
            "buildr {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Builds `ctx` with `extra` flags; the image id and the plain progress.
    fn build(&self, ctx: &Path, tag: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["build", "--progress=plain", "-t", tag];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let out = self.buildr_ok(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let id = self.image_id(tag);
        (id, stderr)
    }

    fn image_id(&self, tag: &str) -> String {
        let out = self.buildr_ok(&["inspect", tag]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc[0]["Id"].as_str().unwrap().to_owned()
    }

    fn verify(&self) {
        let out = self.buildr_ok(&["verify"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("is consistent"), "{text}");
    }
}

/// Steps the progress shows as cached, and as run.
fn counts(progress: &str) -> (usize, usize) {
    let cached = progress.lines().filter(|l| l.ends_with(" CACHED")).count();
    let done = progress
        .lines()
        .filter(|l| l.contains(" DONE ") && !l.contains("exporting"))
        .count();
    (cached, done)
}

/// A registry with the base image, and a work dir; `None` when the test
/// must skip.
fn setup(test: &str) -> Option<(Registry, String, tempfile::TempDir)> {
    if !prerequisites(test) {
        return None;
    }
    let registry = Registry::start(test, None)?;
    let base = push_base(&registry);
    Some((registry, base, tempfile::tempdir().unwrap()))
}

/// Pushes the busybox fixture to `registry` as `base/busybox:1`; its name.
fn push_base(registry: &Registry) -> String {
    push_base_as(registry, None)
}

fn push_base_as(registry: &Registry, login: Option<(&str, &str)>) -> String {
    let m = Machine::new();
    if let Some((user, pass)) = login {
        m.buildr_ok(&["login", "-u", user, "-p", pass, &registry.addr]);
    }
    let tar = m.path("busybox-rootfs.tar");
    let out = Command::new("bash")
        .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
        .arg(&tar)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let name = format!("{}/base/busybox:1", registry.addr);
    m.buildr_ok(&["import", tar.to_str().unwrap(), &name]);
    m.buildr_ok(&["push", &name]);
    name
}

/// A context: a Dockerfile on `base` with five steps (one random), and
/// `files` source files.
fn context(dir: &Path, base: &str, project: &str) {
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             WORKDIR /app\n\
             COPY deps.txt ./\n\
             RUN head -c 4096 /dev/urandom > /app/deps.bin && echo {project} > /app/project\n\
             COPY src/ src/\n\
             RUN head -c 512 /dev/urandom > /app/build.bin && ls src > /app/listing\n"
        ),
    )
    .unwrap();
    fs::write(dir.join("deps.txt"), format!("{project}-deps 1\n")).unwrap();
    for i in 0..20 {
        fs::write(
            dir.join("src").join(format!("f{i}.txt")),
            format!("{project} {i}\n"),
        )
        .unwrap();
    }
}

/// A copy of `from` at another path, owned by another user, every file
/// with another mtime: what a fresh checkout on another runner looks like.
fn checkout_elsewhere(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("chown")
        .args(["-R", "4321:4321"])
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06"])
        .arg(to.join("deps.txt"))
        .arg(to.join("src/f3.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
}

fn registry_tags(registry: &Registry, repo: &str) -> Vec<String> {
    let out = Command::new("curl")
        .args([
            "-sf",
            &format!("http://{}/v2/{repo}/tags/list", registry.addr),
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut tags: Vec<String> = doc["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The layer digests every entry of the cache repository `repo` names.
fn cache_layers(registry: &Registry, repo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in registry_tags(registry, repo) {
        let m = manifest(registry, repo, &tag);
        for l in m["layers"].as_array().into_iter().flatten() {
            out.push(l["digest"].as_str().unwrap().to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

fn manifest(registry: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("http://{}/v2/{repo}/manifests/{tag}", registry.addr),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_registry_cache_moves_a_build_to_another_machine() {
    let test = "a_registry_cache_moves_a_build_to_another_machine";
    if !prerequisites(test) {
        return;
    }
    let Some(registry) = Registry::start_with(
        test,
        RegistryOptions {
            access_log: true,
            ..RegistryOptions::default()
        },
    ) else {
        return;
    };
    let base = push_base(&registry);
    let cache = format!("{}/cache/app:main", registry.addr);
    let work = tempfile::tempdir().unwrap();
    let ctx_a = work.path().join("checkout-a");
    context(&ctx_a, &base, "app");

    // Machine A builds and exports every step (mode=max).
    let a = Machine::new();
    let (id_a, progress) = a.build(
        &ctx_a,
        "app:1",
        &["--cache-to", &format!("type=registry,ref={cache},mode=max")],
    );
    assert!(progress.contains("exporting cache to"), "{progress}");
    let tags = registry_tags(&registry, "cache/app");
    assert!(
        tags.len() >= 5 && tags.iter().all(|t| t.starts_with("main-")),
        "{tags:?}"
    );

    // Machine B: another store, the checkout at another path, owned by
    // another user, other mtimes. Every step comes from the cache and the
    // image is the same (the random bytes included), and no layer was
    // downloaded: nothing read them.
    let layer_gets = || {
        let layers = cache_layers(&registry, "cache/app");
        registry
            .requests("\"GET /v2/cache/app/blobs/")
            .into_iter()
            .filter(|l| layers.iter().any(|d| l.contains(d.as_str())))
            .count()
    };
    let b = Machine::new();
    let ctx_b = work.path().join("elsewhere").join("ci-build-7");
    fs::create_dir_all(ctx_b.parent().unwrap()).unwrap();
    checkout_elsewhere(&ctx_a, &ctx_b);
    let base_gets = || registry.requests("\"GET /v2/base/busybox/blobs/").len();
    let base_before = base_gets();
    let (id_b, progress) = b.build(&ctx_b, "app:1", &["--cache-from", &cache]);
    let (cached, ran) = counts(&progress);
    assert_eq!((cached, ran), (6, 0), "{progress}");
    assert_eq!(id_a, id_b, "{progress}");
    assert_eq!(layer_gets(), 0);
    // Of the base image only its config was read.
    assert_eq!(base_gets() - base_before, 1);
    b.verify();

    // Pushed as it is: the layers are mounted from the cache repository,
    // still none downloaded; the pushed image is A's.
    let pushed = format!("{}/release/app:1", registry.addr);
    b.buildr_ok(&["tag", "app:1", &pushed]);
    b.buildr_ok(&["push", &pushed]);
    assert_eq!(layer_gets(), 0);
    assert!(
        registry
            .requests("POST /v2/release/app/blobs/uploads/?mount=")
            .iter()
            .any(|l| l.contains("from=cache/app") && l.contains("\" 201 ")),
        "{:#?}",
        registry.requests("/v2/release/app/")
    );
    let pulled = Machine::new();
    pulled.buildr_ok(&["pull", &pushed]);
    assert_eq!(pulled.image_id(&pushed), id_a);

    // Run reads them: fetched now, verified, unpacked.
    let run = b.buildr_ok(&[
        "run",
        "--rm",
        "app:1",
        "cat",
        "/app/project",
        "/app/listing",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.starts_with("app\nf0.txt\n"), "{stdout}");
    assert!(layer_gets() > 0);
    b.verify();

    // With the layers local, the next build records its hits in B's store,
    // and the one after that asks the cache nothing.
    let (_, progress) = b.build(&ctx_b, "app:1", &["--cache-from", &cache]);
    assert_eq!(counts(&progress), (6, 0), "{progress}");
    let before = registry.requests("/v2/cache/app/").len();
    let (_, progress) = b.build(&ctx_b, "app:1", &["--cache-from", &cache]);
    assert_eq!(counts(&progress), (6, 0), "{progress}");
    let after = registry.requests("/v2/cache/app/");
    assert_eq!(after.len(), before, "{:#?}", &after[before..]);

    // Machine C changes one source file: the steps before `COPY src/` hit
    // the cache, the two after run, and the layers under them are fetched
    // (the first RUN's random bytes are A's).
    let c = Machine::new();
    let ctx_c = work.path().join("checkout-c");
    checkout_elsewhere(&ctx_a, &ctx_c);
    fs::write(ctx_c.join("src/f7.txt"), "changed\n").unwrap();
    let (_, progress) = c.build(&ctx_c, "app:2", &["--cache-from", &cache]);
    assert_eq!(counts(&progress), (4, 2), "{progress}");
    // Why, from the record A's export left: C has no build of its own.
    assert!(progress.contains("src/f7.txt changed"), "{progress}");
    let deps = |m: &Machine, tag: &str| {
        m.buildr_ok(&["run", "--rm", tag, "md5sum", "/app/deps.bin"])
            .stdout
    };
    assert_eq!(deps(&a, "app:1"), deps(&c, "app:2"));
    c.verify();
}

#[test]
fn exports_to_one_ref_add_up() {
    let Some((registry, base, work)) = setup("exports_to_one_ref_add_up") else {
        return;
    };
    let cache = format!("{}/cache/shared:ci", registry.addr);
    let projects = ["alpha", "beta", "gamma", "delta"];
    for p in projects {
        context(&work.path().join(p), &base, p);
    }
    let to = format!("type=registry,ref={cache}");

    // Two projects in turn, then two at the same time, all to one ref.
    let m = Machine::new();
    let mut ids = Vec::new();
    for p in &projects[..2] {
        ids.push(m.build(&work.path().join(p), p, &["--cache-to", &to]).0);
    }
    let (m3, m4) = (Machine::new(), Machine::new());
    let (id3, id4) = std::thread::scope(|s| {
        let t3 = s.spawn(|| {
            m3.build(&work.path().join("gamma"), "gamma", &["--cache-to", &to])
                .0
        });
        let t4 = s.spawn(|| {
            m4.build(&work.path().join("delta"), "delta", &["--cache-to", &to])
                .0
        });
        (t3.join().unwrap(), t4.join().unwrap())
    });
    ids.extend([id3, id4]);

    // A fresh machine finds every project fully cached.
    let fresh = Machine::new();
    for (p, id) in projects.iter().zip(&ids) {
        let (got, progress) = fresh.build(&work.path().join(p), p, &["--cache-from", &cache]);
        assert_eq!(counts(&progress), (6, 0), "{p}: {progress}");
        assert_eq!(&got, id, "{p}");
    }
    fresh.verify();
}

#[test]
fn min_exports_the_final_stage_and_max_every_stage() {
    let Some((registry, base, work)) = setup("min_exports_the_final_stage_and_max_every_stage")
    else {
        return;
    };
    let ctx = work.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base} AS builder\n\
             RUN head -c 64 /dev/urandom > /tool\n\
             RUN cp /tool /tool2\n\
             FROM {base}\n\
             COPY --from=builder /tool2 /tool\n\
             RUN head -c 64 /dev/urandom > /own\n"
        ),
    )
    .unwrap();
    let m = Machine::new();
    for mode in ["min", "max"] {
        let cache = format!("{}/cache/{mode}:t", registry.addr);
        m.build(
            &ctx,
            "multi",
            &[
                "--no-cache",
                "--cache-to",
                &format!("type=registry,ref={cache},mode={mode}"),
            ],
        );
    }
    // min: FROM, COPY --from, RUN of the final stage; max adds the
    // builder's two RUN steps (its FROM is the same key as the final's).
    assert_eq!(registry_tags(&registry, "cache/min").len(), 3);
    assert_eq!(registry_tags(&registry, "cache/max").len(), 5);

    // From min on a fresh machine the builder stage runs again, and the
    // final stage's steps after it hit.
    let fresh = Machine::new();
    let cache = format!("type=registry,ref={}/cache/min:t", registry.addr);
    let (_, progress) = fresh.build(&ctx, "multi", &["--cache-from", &cache]);
    let (cached, ran) = counts(&progress);
    assert_eq!(ran, 2, "{progress}");
    assert_eq!(cached, 3, "{progress}");
    let fresh = Machine::new();
    let cache = format!("type=registry,ref={}/cache/max:t", registry.addr);
    let (id, progress) = fresh.build(&ctx, "multi", &["--cache-from", &cache]);
    assert_eq!(counts(&progress), (5, 0), "{progress}");
    assert_eq!(id, m.image_id("multi"));
}

#[test]
fn a_local_cache_directory_works_like_a_registry() {
    let Some((_registry, base, work)) = setup("a_local_cache_directory_works_like_a_registry")
    else {
        return;
    };
    let dir = work.path().join("cache dir");
    for p in ["one", "two"] {
        context(&work.path().join(p), &base, p);
        Machine::new().build(
            &work.path().join(p),
            p,
            &[
                "--cache-to",
                &format!("type=local,dest={},mode=max", dir.display()),
            ],
        );
    }
    assert!(dir.join("oci-layout").is_file() && dir.join("index.json").is_file());
    let fresh = Machine::new();
    for p in ["one", "two"] {
        let (_, progress) = fresh.build(
            &work.path().join(p),
            p,
            &["--cache-from", &format!("type=local,src={}", dir.display())],
        );
        assert_eq!(counts(&progress), (6, 0), "{p}: {progress}");
    }
    fresh.verify();
}

#[test]
fn a_broken_cache_never_fails_the_build() {
    let Some((registry, base, work)) = setup("a_broken_cache_never_fails_the_build") else {
        return;
    };
    let ctx = work.path().join("ctx");
    context(&ctx, &base, "app");
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "127.0.0.1:{}/cache/x:1",
        closed.local_addr().unwrap().port()
    );
    drop(closed);

    let m = Machine::new();
    let (_, progress) = m.build(
        &ctx,
        "app",
        &[
            "--cache-from",
            &dead,
            "--cache-from",
            &format!("type=local,src={}", work.path().join("nothing").display()),
            "--cache-to",
            &format!("type=registry,ref={dead}"),
        ],
    );
    assert_eq!(counts(&progress), (0, 6), "{progress}");
    assert!(
        progress.contains(&format!("WARNING: cache {dead} is not used")),
        "{progress}"
    );
    assert!(
        progress.contains("WARNING: cache export failed"),
        "{progress}"
    );
    let out = m.try_buildr(&[
        "build",
        "--progress=plain",
        "--cache-to",
        &format!("type=registry,ref={dead},ignore-error=false"),
        ctx.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("export cache to"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A cache on a registry that wants credentials nobody gave: a warning.
    let Some(locked) = Registry::start("a_broken_cache_never_fails_the_build", Some(("u", "p")))
    else {
        return;
    };
    let denied = format!("{}/cache/x:1", locked.addr);
    let (_, progress) = Machine::new().build(&ctx, "app", &["--cache-from", &denied]);
    assert!(
        progress.contains(&format!("WARNING: cache {denied} is not used")),
        "{progress}"
    );

    // A corrupt entry: the document of one entry replaced by another
    // entry's (it answers another key). It is skipped with a warning, the
    // step runs, the store stays clean.
    let cache = format!("{}/cache/app:c", registry.addr);
    m.build(
        &ctx,
        "app",
        &[
            "--no-cache",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
        ],
    );
    let tags = registry_tags(&registry, "cache/app");
    let manifest = |tag: &str| manifest(&registry, "cache/app", tag);
    let (victim, donor) = (&tags[0], &tags[1]);
    let mut bad = manifest(victim);
    bad["config"] = manifest(donor)["config"].clone();
    let body = serde_json::to_vec(&bad).unwrap();
    put_body(
        &format!("http://{}/v2/cache/app/manifests/{victim}", registry.addr),
        "application/vnd.oci.image.manifest.v1+json",
        &body,
    );
    let fresh = Machine::new();
    let (_, progress) = fresh.build(&ctx, "app", &["--cache-from", &cache]);
    assert!(progress.contains("entry skipped"), "{progress}");
    assert!(progress.contains("is for key"), "{progress}");
    let (_, ran) = counts(&progress);
    assert!(ran >= 1, "{progress}");
    fresh.verify();
}

/// The command lines between the `# buildr-ci` markers of each YAML block
/// of the README's "In CI" section: a GitHub `run: |` body (indentation
/// dropped) or GitLab `script:` items (`- ` dropped).
fn readme_ci_scripts() -> Vec<String> {
    let readme = fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = readme
        .split("\n## In CI\n")
        .nth(1)
        .expect("README.md has an \"In CI\" section");
    let mut scripts = Vec::new();
    for block in section.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        let mut inside = false;
        let mut lines = Vec::new();
        for line in block.lines() {
            let text = line.trim_start();
            if text == "# buildr-ci" {
                inside = !inside;
                continue;
            }
            if inside {
                lines.push(text.strip_prefix("- ").unwrap_or(text).to_owned());
            }
        }
        assert!(
            !inside && !lines.is_empty(),
            "unbalanced markers in:\n{block}"
        );
        scripts.push(lines.join("\n"));
    }
    scripts
}

#[test]
fn the_readme_ci_jobs_run_against_a_registry_with_a_login() {
    let test = "the_readme_ci_jobs_run_against_a_registry_with_a_login";
    if !prerequisites(test) {
        return;
    }
    let scripts = readme_ci_scripts();
    assert_eq!(scripts.len(), 2, "a GitHub and a GitLab job: {scripts:#?}");
    let (user, pass) = ("ci-bot", "s3cret-token");
    let Some(registry) = Registry::start(test, Some((user, pass))) else {
        return;
    };
    let base = push_base_as(&registry, Some((user, pass)));
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("project");
    context(&ctx, &base, "project");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_buildr"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (n, script) in scripts.iter().enumerate() {
        let cache = format!("{}/proj/cache:main", registry.addr);
        let image = format!("{}/proj:job{n}", registry.addr);
        // Each job twice, each time on a fresh runner: the second finds
        // every step in the cache the first exported.
        for run in 0..2 {
            let runner = Machine::new();
            let out = Command::new("sh")
                .args(["-ec", script])
                .current_dir(&ctx)
                .env("PATH", &path)
                .env("BUILDR_ROOT", runner.path("root"))
                .env("DOCKER_CONFIG", runner.path("docker"))
                .env("XDG_CONFIG_HOME", runner.path("xdg"))
                .envs([
                    ("REGISTRY", registry.addr.as_str()),
                    ("REGISTRY_USER", user),
                    ("REGISTRY_PASSWORD", pass),
                    ("CI_REGISTRY", registry.addr.as_str()),
                    ("CI_REGISTRY_USER", user),
                    ("CI_REGISTRY_PASSWORD", pass),
                    ("IMAGE", image.as_str()),
                    ("CACHE", cache.as_str()),
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "job {n} run {run}: {stderr}");
            assert!(!stderr.contains("WARNING"), "job {n} run {run}: {stderr}");
            let (cached, ran) = counts(&stderr);
            match (n, run) {
                (0, 0) => assert_eq!((cached, ran), (0, 6), "{stderr}"),
                _ => assert_eq!((cached, ran), (6, 0), "job {n} run {run}: {stderr}"),
            }
        }
        let pulled = Machine::new();
        pulled.buildr_ok(&["login", "-u", user, "-p", pass, &registry.addr]);
        pulled.buildr_ok(&["pull", &image]);
    }
}

#[test]
fn an_inline_cache_travels_in_the_pushed_image() {
    let Some((registry, base, work)) = setup("an_inline_cache_travels_in_the_pushed_image") else {
        return;
    };
    let ctx = work.path().join("ctx");
    context(&ctx, &base, "inline");
    let image = format!("{}/app/inline:1", registry.addr);
    let a = Machine::new();
    let (_, progress) = a.build(&ctx, &image, &["--cache-to", "type=inline", "--push"]);
    assert!(
        progress.contains("exporting cache to inline: 6 entries"),
        "{progress}"
    );
    let layers = |m: &Machine, tag: &str| {
        let out = m.buildr_ok(&["inspect", tag]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc[0]["RootFS"]["Layers"].clone()
    };

    // Another machine takes every step from the pushed image's config.
    let b = Machine::new();
    let (_, progress) = b.build(&ctx, "app:b", &["--cache-from", &image]);
    assert_eq!(counts(&progress), (6, 0), "{progress}");
    assert_eq!(layers(&a, &image), layers(&b, "app:b"));
    b.verify();

    // Its base's inline cache is not inherited by an image built on it.
    let derived = work.path().join("derived");
    fs::create_dir_all(&derived).unwrap();
    fs::write(
        derived.join("Dockerfile"),
        format!("FROM {image}\nRUN echo x > /x\n"),
    )
    .unwrap();
    b.build(&derived, "derived", &[]);
    let raw_config = |m: &Machine, tag: &str| {
        let tar = m.path("image.tar");
        m.buildr_ok(&["save", "-o", tar.to_str().unwrap(), tag]);
        let untar = |member: &str| {
            let out = Command::new("tar")
                .arg("-xOf")
                .arg(&tar)
                .arg(member)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            out.stdout
        };
        let manifest: serde_json::Value = serde_json::from_slice(&untar("manifest.json")).unwrap();
        let config = manifest[0]["Config"].as_str().unwrap().to_owned();
        serde_json::from_slice::<serde_json::Value>(&untar(&config)).unwrap()
    };
    assert!(raw_config(&a, &image).get("dev.buildr.cache.v1").is_some());
    assert!(
        raw_config(&b, "derived")
            .get("dev.buildr.cache.v1")
            .is_none()
    );
}

#[test]
fn cache_mounts_travel_with_mounts_true() {
    let Some((registry, base, work)) = setup("cache_mounts_travel_with_mounts_true") else {
        return;
    };
    let ctx = work.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    // A package manager's download cache: filled once, then reused.
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             COPY lock.txt /lock.txt\n\
             RUN --mount=type=cache,id=pkg,target=/var/cache/pkg \\\n\
             \x20   if [ -f /var/cache/pkg/dl ]; then echo reused > /how; \\\n\
             \x20   else head -c 256 /dev/urandom > /var/cache/pkg/dl; echo downloaded > /how; fi \\\n\
             \x20   && md5sum /var/cache/pkg/dl > /sum\n"
        ),
    )
    .unwrap();
    fs::write(ctx.join("lock.txt"), "v1\n").unwrap();
    let cache = format!("{}/cache/mounts:main", registry.addr);
    let a = Machine::new();
    let (_, progress) = a.build(
        &ctx,
        "pkg",
        &[
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max,mounts=true"),
        ],
    );
    // FROM, COPY, RUN, the mount, and the COPY's per-path record.
    assert!(progress.contains("5 entries"), "{progress}");
    assert!(
        registry_tags(&registry, "cache/mounts")
            .iter()
            .any(|t| t.starts_with("main-mount-"))
    );
    let file = |m: &Machine, tag: &str, path: &str| {
        String::from_utf8_lossy(&m.buildr_ok(&["run", "--rm", tag, "cat", path]).stdout)
            .into_owned()
    };
    assert_eq!(file(&a, "pkg", "/how"), "downloaded\n");

    // Another machine with the lock file changed: the RUN step runs again,
    // on the download cache A left.
    let b = Machine::new();
    fs::write(ctx.join("lock.txt"), "v2\n").unwrap();
    let (_, progress) = b.build(&ctx, "pkg", &["--cache-from", &cache]);
    assert_eq!(counts(&progress), (1, 2), "{progress}");
    assert_eq!(file(&b, "pkg", "/how"), "reused\n");
    assert_eq!(file(&a, "pkg", "/sum"), file(&b, "pkg", "/sum"));

    // Without mounts=true no mount entry is written.
    let c = Machine::new();
    let plain = format!("{}/cache/plain:main", registry.addr);
    c.build(
        &ctx,
        "pkg",
        &["--cache-to", &format!("type=registry,ref={plain},mode=max")],
    );
    assert!(
        !registry_tags(&registry, "cache/plain")
            .iter()
            .any(|t| t.contains("mount"))
    );
}

#[test]
fn cache_prune_deletes_old_entries_of_one_ref() {
    let Some((registry, base, work)) = setup("cache_prune_deletes_old_entries_of_one_ref") else {
        return;
    };
    let ctx = work.path().join("ctx");
    context(&ctx, &base, "pruned");
    let m = Machine::new();
    for tag in ["main", "other"] {
        let to = format!("type=registry,ref={}/cache/p:{tag},mode=max", registry.addr);
        m.build(&ctx, "p", &["--no-cache", "--cache-to", &to]);
    }
    let main = format!("{}/cache/p:main", registry.addr);
    let prune = |keep: &str| {
        let out = m.buildr_ok(&["cache", "prune", "--ref", &main, "--keep-duration", keep]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let n = registry_tags(&registry, "cache/p")
        .iter()
        .filter(|t| t.starts_with("main-"))
        .count();
    assert!(n >= 5);
    let out = prune("1h");
    assert!(
        out.ends_with(&format!("0 of {n} entries deleted from {main}\n")),
        "{out}"
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = prune("1s");
    assert!(
        out.ends_with(&format!("{n} of {n} entries deleted from {main}\n")),
        "{out}"
    );
    let tags = registry_tags(&registry, "cache/p");
    assert!(
        tags.iter().all(|t| t.starts_with("other-")) && tags.len() == n,
        "{tags:?}"
    );
    // The pruned cache gives nothing; the other ref still everything.
    let (_, progress) = Machine::new().build(&ctx, "p", &["--cache-from", &main]);
    assert_eq!(counts(&progress), (0, 6), "{progress}");
    let other = format!("{}/cache/p:other", registry.addr);
    let (_, progress) = Machine::new().build(&ctx, "p", &["--cache-from", &other]);
    assert_eq!(counts(&progress), (6, 0), "{progress}");
}

#[test]
fn what_a_cache_left_remote_re_exports_and_pushes_anywhere() {
    let Some((registry, base, work)) =
        setup("what_a_cache_left_remote_re_exports_and_pushes_anywhere")
    else {
        return;
    };
    let ctx = work.path().join("ctx");
    context(&ctx, &base, "again");
    let main = format!("{}/cache/again:main", registry.addr);
    let a = Machine::new();
    let (id, _) = a.build(
        &ctx,
        "app",
        &["--cache-to", &format!("type=registry,ref={main},mode=max")],
    );

    // B hits everything (its layers stay in the registry) and exports the
    // same steps to another ref and to a directory: layers are mounted
    // into the other repository, fetched for the directory.
    let b = Machine::new();
    let branch = format!("{}/cache/branch:feature", registry.addr);
    let dir = work.path().join("local-cache");
    let (_, progress) = b.build(
        &ctx,
        "app",
        &[
            "--cache-from",
            &main,
            "--cache-to",
            &format!("type=registry,ref={branch},mode=max"),
            "--cache-to",
            &format!("type=local,dest={},mode=max", dir.display()),
        ],
    );
    assert_eq!(counts(&progress), (6, 0), "{progress}");
    assert!(!progress.contains("WARNING"), "{progress}");
    for from in [branch.clone(), format!("type=local,src={}", dir.display())] {
        let (got, progress) = Machine::new().build(&ctx, "app", &["--cache-from", &from]);
        assert_eq!(counts(&progress), (6, 0), "{from}: {progress}");
        assert_eq!(got, id, "{from}");
    }

    // Pushed to another registry, where nothing can be mounted: the
    // layers are fetched from the cache, then uploaded.
    let Some(other) = Registry::start(
        "what_a_cache_left_remote_re_exports_and_pushes_anywhere",
        None,
    ) else {
        return;
    };
    let elsewhere = format!("{}/shipped/app:1", other.addr);
    b.buildr_ok(&["tag", "app", &elsewhere]);
    b.buildr_ok(&["push", &elsewhere]);
    let pulled = Machine::new();
    pulled.buildr_ok(&["pull", &elsewhere]);
    assert_eq!(pulled.image_id(&elsewhere), id);
    b.verify();
}

/// Uploads `bytes` as a blob of `repo` (monolithic upload); its digest.
fn upload_blob(registry: &Registry, repo: &str, bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{hex}");
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://{}/v2/{repo}/blobs/uploads/", registry.addr))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout);
    let location = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_owned())
        })
        .unwrap();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{}{location}", registry.addr)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    put_body(
        &format!("{url}{sep}digest={digest}"),
        "application/octet-stream",
        bytes,
    );
    digest
}

fn put_body(url: &str, content_type: &str, body: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {content_type}"))
        .args(["--data-binary", "@-", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PUT {url}: {out:?}");
}

#[test]
fn an_entry_lying_about_its_layers_never_poisons_the_store() {
    let Some((registry, base, work)) =
        setup("an_entry_lying_about_its_layers_never_poisons_the_store")
    else {
        return;
    };
    let ctx = work.path().join("ctx");
    context(&ctx, &base, "liar");
    let cache = format!("{}/cache/liar:t", registry.addr);
    Machine::new().build(
        &ctx,
        "app",
        &["--cache-to", &format!("type=registry,ref={cache},mode=max")],
    );
    // Every entry now says its top layer has another diff id than its
    // blob's tar: a layer fetched for one would fill a snapshot under a
    // name that is not its content.
    let lie = format!("sha256:{}", "1".repeat(64));
    for tag in registry_tags(&registry, "cache/liar") {
        let mut m = manifest(&registry, "cache/liar", &tag);
        let doc_url = format!(
            "http://{}/v2/cache/liar/blobs/{}",
            registry.addr,
            m["config"]["digest"].as_str().unwrap()
        );
        let out = Command::new("curl")
            .args(["-sfL", &doc_url])
            .output()
            .unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let Some(ids) = doc["diffIds"].as_array_mut().filter(|a| !a.is_empty()) else {
            continue;
        };
        *ids.last_mut().unwrap() = serde_json::Value::String(lie.clone());
        let bytes = serde_json::to_vec(&doc).unwrap();
        m["config"]["digest"] = upload_blob(&registry, "cache/liar", &bytes).into();
        m["config"]["size"] = bytes.len().into();
        put_body(
            &format!("http://{}/v2/cache/liar/manifests/{tag}", registry.addr),
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&m).unwrap(),
        );
    }
    // One source file changed: the changed COPY needs the layers under it,
    // they do not check out, and the build runs again without the cache.
    fs::write(ctx.join("src/f5.txt"), "changed\n").unwrap();
    let c = Machine::new();
    let (_, progress) = c.build(&ctx, "app", &["--cache-from", &cache]);
    assert!(
        progress.contains("WARNING: a cache hit could not be used"),
        "{progress}"
    );
    assert!(progress.contains("not to its diff id"), "{progress}");
    c.verify();
    let snapshots = fs::read_dir(c.path("root/snapshots")).unwrap();
    assert!(
        snapshots
            .filter_map(|e| e.ok())
            .all(|e| !e.file_name().to_string_lossy().contains("1111111111")),
        "a snapshot was made under the lying diff id"
    );
    let run = c.buildr_ok(&["run", "--rm", "app", "cat", "/app/project"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "liar\n");
}

fn prerequisites(test: &str) -> bool {
    need_root(test) && need_tools(test, &[REGISTRY_BIN, "/bin/busybox"])
}
