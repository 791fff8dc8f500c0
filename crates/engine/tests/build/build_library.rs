//! The `buildr::Builder` library API on `FROM scratch` builds, which need
//! no sandbox: stage reachability, progress events, the cache across
//! builds and processes sharing a store, tar contexts.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use buildr::Builder;
use buildr::build::ProgressEvent;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Runs a build, returning the result and the names of started and cached steps.
fn build(builder: Builder) -> (buildr::build::BuildResult, Vec<String>, Vec<String>) {
    let (tx, rx) = mpsc::channel();
    let result = builder.progress(tx).build().expect("build");
    let mut started = Vec::new();
    let mut cached = Vec::new();
    for event in rx.try_iter() {
        match event {
            ProgressEvent::Started { vertex, .. } => started.push(vertex.name.clone()),
            ProgressEvent::Cached { vertex, .. } => cached.push(vertex.name.clone()),
            _ => {}
        }
    }
    (result, started, cached)
}

#[test]
fn only_stages_the_target_needs_are_lowered_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(&ctx, "a.txt", "a\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch AS one\nCOPY a.txt /one.txt\n\
         FROM scratch AS never\nRUN this-would-fail-there-is-no-shell\n\
         FROM scratch\nCOPY --from=one /one.txt /final.txt\n",
    );
    let (result, started, _) = build(
        Builder::new(dir.path().join("store"))
            .context_dir(&ctx)
            .tag("t:1"),
    );
    assert_eq!(result.stages, ["one", "stage-2"]);
    assert!(
        started.iter().all(|n| !n.contains("this-would-fail")),
        "{started:?}"
    );
    assert_eq!(result.tags, ["docker.io/library/t:1"]);
    // --target picks an earlier stage.
    let (result, _, _) = build(
        Builder::new(dir.path().join("store"))
            .context_dir(&ctx)
            .target("one"),
    );
    assert_eq!(result.stages, ["one"]);
}

#[test]
fn cache_hits_after_touch_and_misses_name_the_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nCOPY a.txt /a\nCOPY src /src\n",
    );
    write(&ctx, "a.txt", "a\n");
    write(&ctx, "src/x.rs", "x\n");
    write(&ctx, "src/y.rs", "y\n");
    let store = dir.path().join("store");
    let (first, started, _) = build(Builder::new(&store).context_dir(&ctx));
    assert_eq!(started.len(), 3, "{started:?}");

    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    for file in ["a.txt", "src/x.rs", "src/y.rs"] {
        let f = std::fs::File::options()
            .write(true)
            .open(ctx.join(file))
            .unwrap();
        f.set_modified(later).unwrap();
    }
    let (again, started, cached) = build(Builder::new(&store).context_dir(&ctx));
    assert!(started.is_empty(), "{started:?}");
    assert_eq!(cached.len(), 3);
    assert_eq!(again.image_id, first.image_id);
    assert!(again.steps.iter().all(|s| s.cached));

    write(&ctx, "src/y.rs", "y changed\n");
    let (tx, rx) = mpsc::channel();
    Builder::new(&store)
        .context_dir(&ctx)
        .progress(tx)
        .build()
        .unwrap();
    let explains: Vec<(String, Option<String>)> = rx
        .try_iter()
        .filter_map(|e| match e {
            ProgressEvent::Started {
                vertex, explain, ..
            } => Some((vertex.name.clone(), explain)),
            _ => None,
        })
        .collect();
    assert_eq!(explains.len(), 1, "{explains:?}");
    assert!(explains[0].0.ends_with("COPY src /src"));
    assert_eq!(
        explains[0].1.as_deref(),
        Some("COPY src /src: src/y.rs changed")
    );
}

#[test]
fn no_cache_reruns_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY a.txt /a\n");
    write(&ctx, "a.txt", "a\n");
    let store = dir.path().join("store");
    build(Builder::new(&store).context_dir(&ctx));
    let (_, started, cached) = build(Builder::new(&store).context_dir(&ctx).no_cache(true));
    assert_eq!(started.len(), 2);
    assert!(cached.is_empty());
    let (_, started, _) = build(
        Builder::new(&store)
            .context_dir(&ctx)
            .no_cache_filter("nosuch"),
    );
    assert!(
        started.is_empty(),
        "an unrelated --no-cache-filter changes nothing"
    );
}

#[test]
fn concurrent_builds_on_one_store_run_a_shared_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nCOPY big /big\nCOPY small /small\n",
    );
    write(&ctx, "big", &"x".repeat(8 << 20));
    write(&ctx, "small", "s\n");
    let store = dir.path().join("store");
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let ctx = ctx.clone();
            std::thread::spawn(move || build(Builder::new(&store).context_dir(&ctx)))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let executed: usize = results
        .iter()
        .map(|(_, started, _)| started.iter().filter(|n| n.contains("COPY big")).count())
        .sum();
    assert_eq!(executed, 1, "the shared COPY ran once across both builds");
    assert_eq!(results[0].0.manifest_digest.hex().len(), 64);
}

#[test]
fn tar_contexts_and_dockerfile_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "hello.txt", "from a tar\n");
    write(&src, "ignored.txt", "no\n");
    write(&src, ".dockerignore", "ignored.txt\n");
    let tar_path = dir.path().join("ctx.tar");
    let status = std::process::Command::new("tar")
        .args([
            "-cf",
            tar_path.to_str().unwrap(),
            "-C",
            src.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let tar = std::fs::File::open(&tar_path).unwrap();
    let result = Builder::new(dir.path().join("store"))
        .context_tar(tar)
        .dockerfile_bytes("Dockerfile", "FROM scratch\nCOPY . /ctx/\n")
        .tag("tarctx:latest")
        .build()
        .unwrap();
    let images = buildr::Images::open(dir.path().join("store")).unwrap();
    let image = images.resolve("tarctx:latest").unwrap();
    assert_eq!(image.id, result.image_id);
    assert_eq!(image.manifest.layers.len(), 1);
    // The layer holds hello.txt and not the ignored file.
    // A built layer is kept as its snapshot: an uncompressed tar made again
    // from it, whose digest is its diff id.
    let layer = &image.manifest.layers[0];
    assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(layer.digest, image.config.rootfs.diff_ids[0]);
    let mut bytes = Vec::new();
    images
        .open_layer(layer)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len() as u64, layer.size);
    let mut archive = tar::Archive::new(bytes.as_slice());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.trim_end_matches('/') == "ctx/hello.txt"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("ignored.txt")),
        "{names:?}"
    );
}

#[test]
fn missing_base_images_and_bad_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM nosuch/image:1\nCOPY a /a\n");
    let err = Builder::new(dir.path().join("store"))
        .context_dir(&ctx)
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Dockerfile:1")
            && text.contains("nosuch/image:1")
            && text.contains("not in the local store"),
        "{text}"
    );
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY missing.txt /m\n");
    let err = Builder::new(dir.path().join("store"))
        .context_dir(&ctx)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
    let err = Builder::new(dir.path().join("store"))
        .context_dir(&ctx)
        .platform("linux/s390x-nope")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("only the host platform"), "{err}");
    // No context is an error, not the current directory.
    let err = Builder::new(dir.path().join("store"))
        .dockerfile_bytes("Dockerfile", "FROM scratch\n")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no build context"), "{err}");
}
