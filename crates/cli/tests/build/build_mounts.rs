//! `RUN --mount` end to end through the `buildr` binary on the busybox
//! base image: variables in mount options, binds and caches `from=` a
//! stage or an image, secrets (never in a layer, the history, the config
//! or a cache key), ssh-agent sockets, and binds from the context that a
//! symlink must not lead out of it.
//!
//! Needs root, overlayfs, busybox-static, umoci and tar: without them the
//! tests skip loudly, under `CI=true` they fail.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

use crate::build_common::{BIN, Build, Env};

/// `buildr build --progress json ARGS... CONTEXT` with extra environment.
fn build_with_env(env: &Env, context: &Path, args: &[&str], vars: &[(&str, &str)]) -> Build {
    let mut cmd = Command::new(BIN);
    cmd.arg("--root")
        .arg(env.root())
        .args(["build", "--progress", "json"])
        .args(args)
        .arg(context);
    for (key, value) in vars {
        cmd.env(key, value);
    }
    Build {
        output: cmd.output().expect("run buildr"),
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Every regular file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[test]
fn mount_options_expand_args_and_env() {
    let Some(env) = Env::new("mount_options_expand_args_and_env") else {
        return;
    };
    let ctx = env.context("expand",
        "FROM buildr-fixtures/busybox:latest\n\
         ARG CACHE_ID=one\n\
         ENV DIR=/cachedir\n\
         ARG SRC=input.txt\n\
         ARG OWNER=1000\n\
         RUN --mount=type=cache,id=$CACHE_ID,target=${DIR} echo x >> /cachedir/n && wc -l < /cachedir/n > /count\n\
         RUN --mount=type=bind,source=${SRC},target=/in/$SRC cat /in/input.txt > /copied\n\
         RUN --mount=type=cache,id=owned-$CACHE_ID,target=/owned,uid=$OWNER,mode=0750 stat -c '%u %a' /owned > /owner\n",
    );
    write(&ctx, "input.txt", "from the context\n");
    env.build(&ctx, &["-t", "expand:1"]);
    let image = env.unpack("expand:1");
    assert_eq!(image.read("/count").trim(), "1");
    assert_eq!(image.read("/copied"), "from the context\n");
    assert_eq!(image.read("/owner").trim(), "1000 750");
    assert!(!image.rootfs().join("cachedir/n").exists());
    assert!(!image.rootfs().join("in/input.txt").exists());

    // The same id is the same cache; another id is another one.
    env.build(&ctx, &["--no-cache", "-t", "expand:2"]);
    assert_eq!(env.unpack("expand:2").read("/count").trim(), "2");
    env.build(
        &ctx,
        &[
            "--no-cache",
            "--build-arg",
            "CACHE_ID=two",
            "-t",
            "expand:3",
        ],
    );
    assert_eq!(env.unpack("expand:3").read("/count").trim(), "1");

    // A variable that expands to a bad typed value names the line.
    let bad = env.context(
        "expand-bad",
        "FROM buildr-fixtures/busybox:latest\n\
         ARG OWNER=nobody\n\
         RUN --mount=type=cache,target=/c,uid=$OWNER true\n",
    );
    let failed = env.try_build(&bad, &[]);
    assert!(!failed.output.status.success());
    let stderr = failed.stderr();
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
    assert!(stderr.contains("invalid value nobody for uid"), "{stderr}");
    // As BuildKit, `from=` takes no variable: define an alias stage.
    std::fs::write(
        bad.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest AS tools\n\
         FROM buildr-fixtures/busybox:latest\n\
         ENV STAGE=tools\n\
         RUN --mount=type=bind,from=$STAGE,target=/t true\n",
    )
    .unwrap();
    let failed = env.try_build(&bad, &[]);
    assert!(!failed.output.status.success());
    let stderr = failed.stderr();
    assert!(stderr.contains("Dockerfile:4"), "{stderr}");
    assert!(
        stderr.contains("'from' doesn't support variable expansion"),
        "{stderr}"
    );
}

#[test]
fn bind_and_cache_from_a_stage_or_image() {
    let Some(env) = Env::new("bind_and_cache_from_a_stage_or_image") else {
        return;
    };
    let ctx = env.context("from",
        "FROM buildr-fixtures/busybox:latest AS builder\n\
         ARG V=1\n\
         RUN mkdir /out && echo \"tool $V\" > /out/tool && ln -s /out/tool /out/abs && ln -s ../../../../../etc/group /out/up\n\
         FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=bind,from=buildr-fixtures/busybox:latest,source=/etc/passwd,target=/p grep -c app /p > /from-image\n\
         RUN --mount=type=bind,from=builder,source=/out,target=/mnt cat /mnt/tool > /x && readlink /mnt/abs > /x-abs && ls /mnt > /listing\n\
         RUN --mount=type=bind,from=builder,source=/out,target=/mnt,rw echo scribble > /mnt/tool && cat /mnt/tool > /y\n\
         RUN --mount=type=bind,from=builder,source=/out/tool,target=/t cat /t > /z\n\
         RUN --mount=type=bind,from=builder,source=/out/up,target=/g cp /g /up-group\n\
         RUN --mount=type=cache,from=builder,source=/out,target=/seeded cat /seeded/tool > /seed && echo more >> /seeded/tool && wc -l < /seeded/tool > /seed-lines\n",
    );
    let first = env.build(&ctx, &["-t", "from:1"]);
    let image = env.unpack("from:1");
    assert_eq!(image.read("/x"), "tool 1\n");
    // Links are mounted as they are, resolved in the step's own root.
    assert_eq!(image.read("/x-abs"), "/out/tool\n");
    assert_eq!(image.read("/listing"), "abs\ntool\nup\n");
    assert_eq!(image.read("/y"), "scribble\n");
    assert_eq!(
        image.read("/z"),
        "tool 1\n",
        "rw writes are dropped after the step"
    );
    // `../` links resolve inside the stage: its own /etc/group.
    assert_eq!(image.read("/up-group"), image.read("/etc/group"));
    assert_eq!(image.read("/from-image").trim(), "1");
    assert_eq!(image.read("/seed"), "tool 1\n");
    assert_eq!(image.read("/seed-lines").trim(), "2");
    for gone in ["mnt", "t", "g", "p", "seeded"] {
        assert!(
            !image.rootfs().join(gone).exists(),
            "/{gone}: mounted files are not in the image"
        );
    }
    let n_layers = image.manifest()["layers"].as_array().unwrap().len();
    for idx in 0..n_layers {
        for entry in image.layer_entries(idx) {
            assert!(
                !entry.contains("mnt/") && !entry.ends_with("tool"),
                "layer {idx} holds {entry}"
            );
        }
    }
    assert!(first.steps("cached").is_empty());

    // Nothing changed: every step is cached.
    let again = env.build(&ctx, &["-t", "from:2"]);
    assert!(
        again.steps("started").is_empty(),
        "{:?}",
        again.steps("started")
    );
    // The builder changed: the steps that mount it run again.
    let changed = env.build(&ctx, &["--build-arg", "V=2", "-t", "from:3"]);
    let started = changed.steps("started");
    assert!(
        started.iter().any(|s| s.contains("cat /mnt/tool")),
        "{started:?}"
    );
    assert!(
        !started.iter().any(|s| s.contains("grep -c app")),
        "the image bind before them did not change: {started:?}"
    );
    let image = env.unpack("from:3");
    assert_eq!(image.read("/x"), "tool 2\n");
    // A cache from another seed is another cache.
    assert_eq!(image.read("/seed"), "tool 2\n");
    assert_eq!(image.read("/seed-lines").trim(), "2");

    // A missing source names the line.
    let bad = env.context(
        "from-bad",
        "FROM buildr-fixtures/busybox:latest AS builder\n\
         FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=bind,from=builder,source=/nope,target=/m true\n",
    );
    let failed = env.try_build(&bad, &[]);
    assert!(!failed.output.status.success());
    let stderr = failed.stderr();
    assert!(
        stderr.contains("Dockerfile:3") && stderr.contains("/nope: not found"),
        "{stderr}"
    );
}

#[test]
fn secrets_never_reach_layers_keys_or_config() {
    let Some(env) = Env::new("secrets_never_reach_layers_keys_or_config") else {
        return;
    };
    let value = format!("s3cr3t-{}-value", std::process::id());
    let env_value = format!("env-{}-token", std::process::id());
    let secret_file = env.dir.path().join("secret.txt");
    std::fs::write(&secret_file, &value).unwrap();
    let ctx = env.context("secrets",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=secret,id=tok,required=true wc -c < /run/secrets/tok > /len && stat -c '%a %u' /run/secrets/tok > /perm && (echo x > /run/secrets/tok 2>/dev/null && echo writable || echo readonly) > /ro\n\
         RUN --mount=type=secret,id=envtok,env=TOKEN,target=/s/t,mode=0440,uid=1000 test \"$TOKEN\" = \"$(cat /s/t)\" && echo ${#TOKEN} > /envlen && stat -c '%a %u' /s/t > /perm2\n\
         RUN --mount=type=secret,id=absent ls /run/secrets > /absent 2>&1 || echo none > /absent\n\
         RUN [ ! -e /run/secrets/tok ] && [ -z \"$TOKEN\" ] && echo clean > /after\n",
    );
    let src = format!("id=tok,src={}", secret_file.display());
    let args = [
        "--secret",
        src.as_str(),
        "--secret",
        "id=envtok,env=BUILDR_TEST_TOKEN",
        "-t",
        "secrets:1",
    ];
    let vars = [("BUILDR_TEST_TOKEN", env_value.as_str())];
    let first = build_with_env(&env, &ctx, &args, &vars);
    assert!(first.output.status.success(), "{}", first.stderr());
    let image = env.unpack("secrets:1");
    assert_eq!(image.read("/len").trim(), value.len().to_string());
    assert_eq!(image.read("/perm").trim(), "400 0");
    assert_eq!(image.read("/ro").trim(), "readonly");
    assert_eq!(image.read("/envlen").trim(), env_value.len().to_string());
    assert_eq!(image.read("/perm2").trim(), "440 1000");
    assert_eq!(image.read("/after").trim(), "clean");
    assert!(!image.rootfs().join("run/secrets").exists());
    assert!(!image.rootfs().join("s/t").exists());

    // Neither value is anywhere in the saved image (layers, config,
    // history) nor in the store (cache records, memos, temp files).
    let tar = env.dir.path().join("secrets.tar");
    let saved = env.buildr(&["save", "-o", tar.to_str().unwrap(), "secrets:1"]);
    assert!(saved.status.success());
    let bytes = std::fs::read(&tar).unwrap();
    // The search works: it finds the secret's own source file.
    assert_eq!(
        files_containing(env.dir.path(), value.as_bytes()),
        [secret_file.display().to_string()]
    );
    for needle in [&value, &env_value] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the image tar holds a secret"
        );
        let hits = files_containing(&env.root(), needle.as_bytes());
        assert!(hits.is_empty(), "the store holds a secret: {hits:?}");
        let hits = files_containing(&image.layout, needle.as_bytes());
        assert!(hits.is_empty(), "the OCI layout holds a secret: {hits:?}");
    }

    // A changed secret value does not invalidate the cache (as BuildKit).
    std::fs::write(&secret_file, "another value").unwrap();
    let vars = [("BUILDR_TEST_TOKEN", "another token")];
    let again = build_with_env(&env, &ctx, &args, &vars);
    assert!(again.output.status.success(), "{}", again.stderr());
    assert!(
        again.steps("started").is_empty(),
        "{:?}",
        again.steps("started")
    );

    // A required secret that is missing names the line.
    let missing = build_with_env(&env, &ctx, &["--no-cache"], &[]);
    assert!(!missing.output.status.success());
    let stderr = missing.stderr();
    assert!(
        stderr.contains("Dockerfile:2") && stderr.contains("secret tok: not found"),
        "{stderr}"
    );
    // A --secret file that does not exist fails before any step.
    let nofile = build_with_env(&env, &ctx, &["--secret", "id=tok,src=/nonexistent/x"], &[]);
    assert!(!nofile.output.status.success());
    assert!(
        nofile.stderr().contains("/nonexistent/x"),
        "{}",
        nofile.stderr()
    );
}

#[test]
fn ssh_agent_socket_is_mounted() {
    let Some(env) = Env::new("ssh_agent_socket_is_mounted") else {
        return;
    };
    let agent = env.dir.path().join("agent.sock");
    let _listener = UnixListener::bind(&agent).unwrap();
    let ctx = env.context("ssh",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=ssh [ -S \"$SSH_AUTH_SOCK\" ] && echo \"$SSH_AUTH_SOCK\" > /sock && stat -c '%a %u' \"$SSH_AUTH_SOCK\" > /perm\n\
         RUN --mount=type=ssh,id=other,target=/agent.sock,mode=0666,uid=1000 [ -S /agent.sock ] && stat -c '%a %u' /agent.sock > /perm2\n\
         RUN --mount=type=ssh,id=absent ls /run/buildkit > /absent 2>&1 || echo none > /absent\n",
    );
    let default = format!("default={}", agent.display());
    let other = format!("other={}", agent.display());
    env.build(&ctx, &["--ssh", &default, "--ssh", &other, "-t", "ssh:1"]);
    let image = env.unpack("ssh:1");
    assert_eq!(image.read("/sock").trim(), "/run/buildkit/ssh_agent.0");
    assert_eq!(image.read("/perm").trim(), "600 0");
    assert_eq!(image.read("/perm2").trim(), "666 1000");
    assert_eq!(image.read("/absent").trim(), "none");
    assert!(!image.rootfs().join("run/buildkit").exists());
    assert!(!image.rootfs().join("agent.sock").exists());

    // Not given but required: the line is named.
    let required = env.context(
        "ssh-required",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=ssh,id=deploy,required=true true\n",
    );
    let failed = env.try_build(&required, &[]);
    assert!(!failed.output.status.success());
    let stderr = failed.stderr();
    assert!(
        stderr.contains("Dockerfile:2") && stderr.contains("ssh agent deploy is required"),
        "{stderr}"
    );
    // A key file is refused up front.
    let key = env.dir.path().join("id_ed25519");
    std::fs::write(&key, "not a socket").unwrap();
    let failed = env.try_build(&ctx, &["--ssh", &format!("default={}", key.display())]);
    assert!(!failed.output.status.success());
    assert!(
        failed.stderr().contains("not a socket"),
        "{}",
        failed.stderr()
    );
}

#[test]
fn context_binds_cannot_follow_links_out() {
    let Some(env) = Env::new("context_binds_cannot_follow_links_out") else {
        return;
    };
    let outside = env.dir.path().join("outside");
    write(&outside, "marker", "host-only-marker\n");
    let ctx = env.context("ctxlinks",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=bind,source=inner,target=/m cat /m/file > /inner\n\
         RUN --mount=type=bind,source=sub,target=/m,rw echo changed > /m/file && cat /m/file > /rw\n",
    );
    write(&ctx, "sub/file", "inside\n");
    std::os::unix::fs::symlink("sub", ctx.join("inner")).unwrap();
    std::os::unix::fs::symlink("../outside", ctx.join("escape")).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.join("absolute")).unwrap();
    env.build(&ctx, &["-t", "ctxlinks:1"]);
    let image = env.unpack("ctxlinks:1");
    assert_eq!(image.read("/inner"), "inside\n");
    // A `rw` bind writes into a copy: the context is untouched.
    assert_eq!(image.read("/rw"), "changed\n");
    assert_eq!(
        std::fs::read_to_string(ctx.join("sub/file")).unwrap(),
        "inside\n"
    );
    for link in ["escape", "absolute", "sub/../escape", "../outside"] {
        write(
            &ctx,
            "Dockerfile",
            &format!(
                "FROM buildr-fixtures/busybox:latest\n\
                 RUN --mount=type=bind,source={link},target=/m cat /m/marker > /leak\n"
            ),
        );
        let failed = env.try_build(&ctx, &["-t", "ctxlinks:leak"]);
        let stderr = failed.stderr();
        assert!(!failed.output.status.success(), "{link}: {stderr}");
        assert!(
            stderr.contains("Dockerfile:2") && stderr.contains("in the build context"),
            "{link}: {stderr}"
        );
        assert!(!stderr.contains("host-only-marker"), "{link}: {stderr}");
    }
}

#[test]
fn cache_source_selects_a_path_confined_to_the_cache() {
    let Some(env) = Env::new("cache_source_selects_a_path_confined_to_the_cache") else {
        return;
    };
    let ctx = env.context(
        "cachesource",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=cache,id=src,target=/c mkdir -p /c/sub && echo in > /c/sub/file && echo top > /c/top \
             && ln -s /sub /c/abs && ln -s ../../.. /c/sub/up && ln -s /etc /c/esc\n\
         RUN --mount=type=cache,id=src,source=sub,target=/m ls /m > /sub\n\
         RUN --mount=type=cache,id=src,source=/abs/,target=/m ls /m > /abs\n\
         RUN --mount=type=cache,id=src,source=sub/up,target=/m ls /m > /up\n\
         RUN --mount=type=cache,id=src,source=sub,target=/m echo new > /m/new\n\
         RUN --mount=type=cache,id=src,target=/c ls /c/sub > /after\n",
    );
    env.build(&ctx, &["-t", "cachesource:1"]);
    let image = env.unpack("cachesource:1");
    assert_eq!(image.read("/sub"), "file\nup\n");
    // Links resolve inside the cache, as BuildKit scopes them.
    assert_eq!(image.read("/abs"), "file\nup\n");
    assert_eq!(image.read("/up"), "abs\nesc\nsub\ntop\n");
    assert_eq!(image.read("/after"), "file\nnew\nup\n");
    // A link to /etc names the cache's /etc, which does not exist: the
    // step fails instead of mounting the host's /etc.
    let escape = env.context(
        "cacheescape",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=cache,id=src,source=esc,target=/m ls /m > /leak\n",
    );
    let failed = env.try_build(&escape, &[]);
    assert!(!failed.output.status.success(), "{}", failed.stderr());
    assert!(
        failed.stderr().contains("Dockerfile:2") && failed.stderr().contains("No such file"),
        "{}",
        failed.stderr()
    );
}
