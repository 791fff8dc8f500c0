//! `buildr build` end to end: the real binary on fixture contexts
//! (fixtures/build/<case>/), results checked with umoci and tar.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::build_common::{Env, copy_fixture, fixture};

#[test]
fn multistage_copies_from_stages_and_skips_unused_ones() {
    let Some(env) = Env::new("multistage") else {
        return;
    };
    let build = env.build(&fixture("multistage"), &["-t", "ms:latest"]);
    let names = build.steps("started");
    assert!(
        !names.iter().any(|n| n.contains("unused")),
        "the unused stage ran: {names:?}"
    );
    assert!(!build.stderr().contains("unused-stage-ran"));
    let stages = build.done()["stages"].clone();
    assert_eq!(stages, serde_json::json!(["base", "build", "stage-3"]));
    let image = env.unpack("ms:latest");
    assert_eq!(image.read("/app/out.txt"), "HELLO MULTISTAGE\n");
    assert_eq!(image.read("/app/base.txt"), "base\n");
    // The final stage is busybox plus two COPY layers.
    assert_eq!(image.manifest()["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        image.config()["config"]["Cmd"],
        serde_json::json!(["cat", "/app/out.txt"])
    );
}

#[test]
fn args_and_env_expand_as_docker() {
    let Some(env) = Env::new("args") else { return };
    let build = env.build(
        &fixture("args"),
        &[
            "-t",
            "args:v1",
            "--build-arg",
            "VERSION=2.5",
            "--build-arg",
            "NOBODY=x",
            "--label",
            "extra=yes",
        ],
    );
    assert!(
        build
            .stderr()
            .contains("build-args [NOBODY] were not consumed"),
        "{}",
        build.stderr()
    );
    let image = env.unpack("args:v1");
    assert_eq!(
        image.read("/opt/app/info.txt"),
        "version=2.5 global=global-default unset=none home=/opt/app bin=/opt/app/bin\n"
    );
    let config = image.config();
    let env_list = &config["config"]["Env"];
    assert_eq!(
        env_list,
        &serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_HOME=/opt/app",
            "APP_VERSION=v2.5",
            "APP_BIN=/opt/app/bin"
        ])
    );
    assert_eq!(config["config"]["WorkingDir"], "/opt/app");
    assert_eq!(config["config"]["Labels"]["org.example.version"], "2.5");
    assert_eq!(config["config"]["Labels"]["extra"], "yes");
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    let history: Vec<String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        history
            .iter()
            .any(|h| h.starts_with("RUN |2 GLOBAL=global-default VERSION=2.5 /bin/sh -c echo")),
        "{history:?}"
    );
}

#[test]
fn dockerignore_exceptions_apply() {
    let Some(env) = Env::new("dockerignore") else {
        return;
    };
    env.build(&fixture("dockerignore"), &["-t", "ign:latest"]);
    let image = env.unpack("ign:latest");
    let root = image.rootfs().join("ctx");
    // Docker's matcher anchors `*.log` at the root: sub/n.log stays.
    for present in ["a.txt", "keep.log", "sub/s.txt", "sub/n.log"] {
        assert!(root.join(present).exists(), "{present} should be copied");
    }
    for absent in ["drop.log", "secret", "Dockerfile"] {
        assert!(!root.join(absent).exists(), "{absent} should be excluded");
    }
}

#[test]
fn deletions_become_whiteouts() {
    let Some(env) = Env::new("whiteout") else {
        return;
    };
    env.build(&fixture("whiteout"), &["-t", "wh:latest"]);
    let image = env.unpack("wh:latest");
    let last = image.layer_entries(2);
    for want in ["data/.wh.sub", "data/.wh.two", "home/.wh.app"] {
        assert!(
            last.iter().any(|e| e.trim_start_matches("./") == want),
            "{want} missing from {last:?}"
        );
    }
    assert!(image.rootfs().join("data").is_dir());
    assert!(!image.rootfs().join("data/sub").exists());
    assert!(!image.rootfs().join("home/app").exists());
}

#[test]
fn user_and_workdir() {
    let Some(env) = Env::new("userdir") else {
        return;
    };
    env.build(&fixture("userdir"), &["-t", "ud:latest"]);
    let image = env.unpack("ud:latest");
    assert_eq!(image.read("/tmp/work/uid"), "1000\n");
    assert_eq!(image.read("/tmp/work/pwd"), "/tmp/work\n");
    assert_eq!(image.read("/tmp/work/uid-root"), "0\n");
    let made = std::fs::symlink_metadata(image.rootfs().join("tmp/work/made-by-app")).unwrap();
    assert_eq!((made.uid(), made.gid()), (1000, 1000));
    let workdir = std::fs::symlink_metadata(image.rootfs().join("tmp/work")).unwrap();
    assert_eq!(
        workdir.uid(),
        1000,
        "WORKDIR is created for the USER in effect"
    );
    let config = image.config();
    assert_eq!(config["config"]["User"], "app:staff");
    assert_eq!(config["config"]["WorkingDir"], "/tmp/work");
}

#[test]
fn heredocs_in_copy_and_run() {
    let Some(env) = Env::new("heredoc") else {
        return;
    };
    env.build(
        &fixture("heredoc"),
        &["-t", "hd:latest", "--build-arg", "NAME=buildr"],
    );
    let image = env.unpack("hd:latest");
    assert_eq!(image.read("/etc/hello.txt"), "hello buildr\n");
    assert_eq!(image.read("/out/run.txt"), "from heredoc\nhello buildr\n");
    assert_eq!(image.read("/out/inline.txt"), "inline body\n");
    // A heredoc starting with #! runs as a script of its interpreter.
    assert_eq!(image.read("/out/awk.txt"), "hello\nworld\n");
    assert_eq!(image.read("/out/awk-tabs.txt"), "tabs\n");
    assert!(
        !image.rootfs().join("dev/pipes").exists(),
        "the script's mount point stays out of the image"
    );
    let history = image.config()["history"].to_string();
    assert!(history.contains("/bin/sh -c /dev/pipes/EOF"), "{history}");
    // Quotes are content in an expanded COPY heredoc; `\` still escapes.
    assert_eq!(
        image.read("/out/quotes.txt"),
        "A 'buildr' \"buildr\" $NAME x \\ buildr\n"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let Some(env) = Env::new("onbuild") else {
        return;
    };
    env.build(
        &fixture("onbuild-parent"),
        &["-t", "buildr-fixtures/onbuild-parent:latest"],
    );
    let parent = env.unpack("buildr-fixtures/onbuild-parent:latest");
    assert_eq!(
        parent.config()["config"]["OnBuild"],
        serde_json::json!([
            "COPY child.txt /from-child.txt",
            "RUN echo triggered > /onbuild.txt"
        ])
    );
    env.build(&fixture("onbuild-child"), &["-t", "child:latest"]);
    let child = env.unpack("child:latest");
    assert_eq!(child.read("/both.txt"), "triggered\nchild file\n");
    assert!(
        child.config()["config"]["OnBuild"].is_null(),
        "triggers are not inherited"
    );
}

#[test]
fn onbuild_triggers_of_a_stage_run_in_a_stage_from_it() {
    let Some(env) = Env::new("onbuild-stage") else {
        return;
    };
    let ctx = env.dir.path().join("onbuildstage");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest AS src\n\
         RUN echo -n 12 > /file\n\
         FROM buildr-fixtures/busybox:latest AS base\n\
         ONBUILD COPY --from=src /file /out/copied\n\
         ONBUILD RUN echo -n ran > /out/ran\n\
         FROM base AS mid\n\
         RUN cat /out/copied /out/ran > /out/both\n\
         FROM mid\n\
         RUN echo -n second > /out/second\n",
    )
    .unwrap();
    env.build(&ctx, &["-t", "onbuild-stage:latest"]);
    let image = env.unpack("onbuild-stage:latest");
    assert_eq!(image.read("/out/both"), "12ran");
    assert_eq!(image.read("/out/second"), "second");
    assert!(
        image.config()["config"]["OnBuild"].is_null(),
        "the child neither keeps nor passes on the triggers"
    );
    env.build(&ctx, &["-t", "onbuild-base:latest", "--target", "base"]);
    let base = env.unpack("onbuild-base:latest");
    assert!(!base.rootfs().join("out").exists(), "not run in base");
    assert_eq!(
        base.config()["config"]["OnBuild"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn add_extracts_local_archives() {
    let Some(env) = Env::new("add") else { return };
    let ctx = env.dir.path().join("addctx");
    let payload = env.dir.path().join("payload");
    std::fs::create_dir_all(payload.join("d")).unwrap();
    std::fs::write(payload.join("d/p.txt"), "payload\n").unwrap();
    std::fs::create_dir_all(&ctx).unwrap();
    for (name, flag) in [("a.tar.gz", "-czf"), ("b.tar", "-cf")] {
        buildr_testkit::process::run_tool(
            "tar",
            &[
                flag,
                ctx.join(name).to_str().unwrap(),
                "-C",
                payload.to_str().unwrap(),
                ".",
            ],
        );
    }
    std::fs::write(ctx.join("plain.txt"), "not an archive\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nADD a.tar.gz /opt/gz/\nADD b.tar /opt/plain\nADD plain.txt /opt/\n",
    )
    .unwrap();
    env.build(&ctx, &["-t", "add:latest"]);
    let image = env.unpack("add:latest");
    assert_eq!(image.read("/opt/gz/d/p.txt"), "payload\n");
    assert_eq!(image.read("/opt/plain/d/p.txt"), "payload\n");
    assert_eq!(image.read("/opt/plain.txt"), "not an archive\n");
}

#[test]
fn copy_flags_owners_modes_globs_and_symlinks() {
    let Some(env) = Env::new("copyflags") else {
        return;
    };
    env.build(&fixture("copyflags"), &["-t", "cf:latest"]);
    let image = env.unpack("cf:latest");
    let root = image.rootfs();
    let owned = std::fs::symlink_metadata(root.join("opt/owned.txt")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (1000, 50),
        "app:staff from the image's passwd/group"
    );
    assert_eq!(owned.permissions().mode() & 0o7777, 0o640);
    let dir = std::fs::symlink_metadata(root.join("opt/dir/nested/n.txt")).unwrap();
    assert_eq!((dir.uid(), dir.gid()), (1000, 1000));
    // A directory source copies its contents.
    assert!(root.join("opt/dir/top.md").exists());
    assert!(root.join("opt/dir2/nested/n.txt").exists());
    assert!(!root.join("opt/dir2/dir").exists());
    let ctx_file = std::fs::symlink_metadata(root.join("opt/dir2/top.md")).unwrap();
    assert_eq!((ctx_file.uid(), ctx_file.gid()), (0, 0));
    for name in ["file.txt", "other.txt", "link.txt"] {
        assert!(
            root.join("opt/glob").join(name).exists(),
            "glob missed {name}"
        );
    }
    assert!(!root.join("opt/excluded/top.md").exists(), "--exclude");
    assert!(root.join("opt/excluded/nested/n.txt").exists());
    // Inside a directory, symlinks stay symlinks; a named source is followed.
    let link = std::fs::read_link(root.join("opt/dir/nested/ln")).unwrap();
    assert_eq!(link.to_str(), Some("n.txt"));
    assert!(
        std::fs::symlink_metadata(root.join("opt/link.txt"))
            .unwrap()
            .is_file()
    );
    assert_eq!(image.read("/opt/link.txt"), "file\n");
}

#[test]
fn failing_run_names_the_dockerfile_line() {
    let Some(env) = Env::new("failing") else {
        return;
    };
    let build = env.try_build(&fixture("failing"), &["-t", "fail:latest"]);
    assert!(!build.output.status.success());
    let stderr = build.stderr();
    assert!(
        stderr.contains(
            "Dockerfile:4: RUN echo some output && echo to stderr >&2 && false: \
             process \"/bin/sh -c echo some output && echo to stderr >&2 && false\" \
             did not complete successfully: exit code: 1"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("to stderr"),
        "last output lines are shown: {stderr}"
    );
    // BuildKit's source block, right above the error: the failing line
    // marked, two lines each side (the final newline makes an empty line 6).
    let block = "Dockerfile:4\n\
                 --------------------\n   \
                 2 |     RUN echo before\n   \
                 3 |     \n   \
                 4 | >>> RUN echo some output && echo to stderr >&2 && false\n   \
                 5 |     RUN echo never\n   \
                 6 |     \n\
                 --------------------\n\
                 buildr: error: Dockerfile:4: ";
    assert!(stderr.contains(block), "{stderr}");
    assert!(!build.steps("started").iter().any(|n| n.contains("never")));
    let out = env.buildr(&["inspect", "fail:latest"]);
    assert!(!out.status.success(), "a failed build sets no tag");
}

#[test]
fn cache_touch_change_and_no_cache() {
    let Some(env) = Env::new("cache") else { return };
    let ctx = copy_fixture("cache", env.dir.path());
    let first = env.build(&ctx, &["-t", "cache:1"]);
    assert_eq!(first.steps("cached").len(), 0, "a fresh store has no cache");
    let id1 = first.done()["image_id"].clone();

    // Touch every file: same content, everything cached, same image.
    buildr_testkit::process::run_tool(
        "sh",
        &[
            "-c",
            &format!("sleep 0.01; find {} -exec touch {{}} +", ctx.display()),
        ],
    );
    let touched = env.build(&ctx, &["-t", "cache:2"]);
    assert_eq!(
        touched.steps("started"),
        Vec::<String>::new(),
        "{}",
        touched.stderr()
    );
    assert_eq!(touched.steps("cached").len(), 7);
    assert_eq!(
        touched.done()["image_id"],
        id1,
        "a fully cached build gives the same image"
    );

    // Change one file in src/: its COPY and everything after it rerun.
    std::fs::write(ctx.join("src/f2.txt"), "file 2 changed\n").unwrap();
    let changed = env.build(&ctx, &["-t", "cache:3"]);
    let started = changed.steps("started");
    let started: Vec<&str> = started
        .iter()
        .map(|n| n.split("] ").nth(1).unwrap_or(n))
        .collect();
    assert_eq!(
        started,
        [
            "COPY src/ /src/",
            "RUN ls /src > /src-list.txt",
            "COPY b.txt /b.txt",
            "RUN cat /b.txt > /b-copy.txt"
        ]
    );
    let explain: Vec<String> = changed
        .events()
        .iter()
        .filter(|e| e["event"] == "started")
        .filter_map(|e| e["explain"].as_str().map(str::to_owned))
        .collect();
    assert!(
        explain.iter().any(|e| e.contains("src/f2.txt changed")),
        "miss reason names the file: {explain:?}"
    );
    let image = env.unpack("cache:3");
    assert_eq!(image.read("/src/f2.txt"), "file 2 changed\n");

    // --no-cache: nothing comes from the cache.
    let fresh = env.build(&ctx, &["--no-cache", "-t", "cache:4"]);
    assert_eq!(fresh.steps("cached").len(), 0);
    assert_eq!(fresh.steps("started").len(), 7);
}

#[test]
fn quiet_prints_the_image_id_and_iidfile() {
    let Some(env) = Env::new("quiet") else { return };
    let iid = env.dir.path().join("iid");
    let out = env.buildr(&[
        "build",
        "-q",
        "--iidfile",
        iid.to_str().unwrap(),
        "-t",
        "q:one",
        "-t",
        "q:two",
        fixture("multistage").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        stdout.starts_with("sha256:") && stdout.len() == 71,
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), stdout);
    for tag in ["q:one", "q:two"] {
        let inspect = env.buildr(&["inspect", tag]);
        assert!(inspect.status.success());
        assert!(String::from_utf8_lossy(&inspect.stdout).contains(&stdout));
    }
}

#[test]
fn host_network_needs_the_entitlement_and_targets_must_exist() {
    let Some(env) = Env::new("options") else {
        return;
    };
    let ctx = fixture("multistage");
    let build = env.try_build(&ctx, &["--network", "host"]);
    assert!(!build.output.status.success());
    assert!(
        build.stderr().contains("--allow network.host"),
        "{}",
        build.stderr()
    );
    let build = env.try_build(&ctx, &["--target", "nope"]);
    assert!(!build.output.status.success());
    assert!(
        build
            .stderr()
            .contains("target stage \"nope\" could not be found"),
        "{}",
        build.stderr()
    );
    // --target builds only what that stage needs.
    let build = env.build(&ctx, &["--target", "build", "-t", "only-build:latest"]);
    assert_eq!(build.done()["stages"], serde_json::json!(["base", "build"]));
    let missing = env.try_build(&fixture("onbuild-child"), &[]);
    assert!(
        missing.stderr().contains("is not in the local store"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn run_miss_names_the_changed_build_arg() {
    let Some(env) = Env::new("run-explain") else {
        return;
    };
    env.build(&fixture("args"), &["--build-arg", "VERSION=1"]);
    let build = env.build(&fixture("args"), &["--build-arg", "VERSION=2"]);
    let explains: Vec<String> = build
        .events()
        .iter()
        .filter(|e| e["event"] == "started")
        .filter_map(|e| e["explain"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(explains, ["RUN: ARG VERSION changed"]);
    // Plain progress carries the same reason.
    let out = env.buildr(&[
        "build",
        "--progress",
        "plain",
        "--build-arg",
        "VERSION=3",
        fixture("args").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cache miss: RUN: ARG VERSION changed"),
        "{stderr}"
    );
    // As BuildKit, the title shows the step with the ARG expanded.
    assert!(
        stderr.contains("] RUN echo \"version=3 global=global-default"),
        "{stderr}"
    );
    assert!(stderr.contains("#1 CACHED"), "{stderr}");
}

/// `buildr build ARGS` with `input` on its stdin.
fn build_with_stdin(env: &Env, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::build_common::BIN)
        .arg("--root")
        .arg(env.root())
        .arg("build")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A tar of `dir` (`flag`: a compression option of GNU tar, or none).
fn tar_of(dir: &std::path::Path, flag: Option<&str>) -> Vec<u8> {
    let packed = std::process::Command::new("tar")
        .args(flag)
        .args(["-cf", "-", "-C", dir.to_str().unwrap(), "."])
        .output()
        .unwrap();
    assert!(packed.status.success(), "tar {flag:?}");
    packed.stdout
}

#[test]
fn context_and_dockerfile_from_stdin() {
    let Some(env) = Env::new("stdin") else { return };
    let raw = tar_of(&fixture("multistage"), None);
    let out = build_with_stdin(&env, &["-q", "-t", "stdin:ctx", "-"], &raw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.unpack("stdin:ctx").read("/app/out.txt"),
        "HELLO MULTISTAGE\n"
    );

    // Compressed context tars, which docker accepts too: bzip2 and xz
    // (gzip and zstd are the layer formats).
    for (flag, tag) in [("-j", "stdin:bzip2"), ("-J", "stdin:xz")] {
        let packed = tar_of(&fixture("multistage"), Some(flag));
        let out = build_with_stdin(&env, &["-q", "-t", tag, "-"], &packed);
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(env.unpack(tag).read("/app/out.txt"), "HELLO MULTISTAGE\n");
    }

    let dockerfile = b"FROM buildr-fixtures/busybox:latest\nCOPY a.txt /from-stdin.txt\n";
    let context = fixture("dockerignore");
    let args = ["-q", "-t", "stdin:df", "-f", "-", context.to_str().unwrap()];
    let out = build_with_stdin(&env, &args, dockerfile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.unpack("stdin:df").read("/from-stdin.txt"), "a\n");

    // Not an archive: stdin is the Dockerfile and the context is empty, as
    // docker's `build - < Dockerfile`.
    let dockerfile = b"FROM buildr-fixtures/busybox:latest\nRUN echo plain > /plain.txt\n";
    let out = build_with_stdin(&env, &["-q", "-t", "stdin:plain", "-"], dockerfile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.unpack("stdin:plain").read("/plain.txt"), "plain\n");
}

/// A fresh context directory holding `files`.
fn context_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn shift_operator_is_not_a_heredoc() {
    let Some(env) = Env::new("shift") else { return };
    let ctx = context_with(&[(
        "Dockerfile",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN test $(( 1 << 21 )) -eq 2097152 && echo $(( 1 << 21 )) > /shift.txt\n\
         RUN cat << EOF > /spaced.txt\nspaced heredoc\nEOF\n",
    )]);
    env.build(ctx.path(), &["-t", "shift:latest"]);
    let image = env.unpack("shift:latest");
    assert_eq!(image.read("/shift.txt"), "2097152\n");
    assert_eq!(image.read("/spaced.txt"), "spaced heredoc\n");
}

#[test]
fn user_root_without_passwd() {
    let Some(env) = Env::new("root-no-passwd") else {
        return;
    };
    let ctx = context_with(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM buildr-fixtures/busybox:latest\n\
             RUN rm /etc/passwd /etc/group\n\
             USER root:root\n\
             RUN id -u > /tmp/uid && id -g >> /tmp/uid\n\
             COPY --chown=root:root a.txt /a.txt\n\
             COPY --chown=root a.txt /b.txt\n\
             USER 0:root\n\
             RUN stat -c %u:%g /a.txt /b.txt > /tmp/owners && test ! -e /etc/passwd\n\
             USER 0:0\n",
        ),
    ]);
    env.build(ctx.path(), &["-t", "rootnp:latest"]);
    // (umoci resolves the config's user against /etc/group too, hence the
    // final numeric USER.)
    let image = env.unpack("rootnp:latest");
    assert_eq!(image.read("/tmp/uid"), "0\n0\n");
    assert_eq!(image.read("/tmp/owners"), "0:0\n0:0\n");
}

#[test]
fn lower_case_dockerfile_is_the_default() {
    let Some(env) = Env::new("lower-dockerfile") else {
        return;
    };
    let ctx = context_with(&[(
        "dockerfile",
        "FROM buildr-fixtures/busybox:latest\nRUN echo lower > /lower.txt\n",
    )]);
    env.build(ctx.path(), &["-t", "lower:latest"]);
    assert_eq!(env.unpack("lower:latest").read("/lower.txt"), "lower\n");
    // Its errors name it as written, as docker's do (`dockerfile:2`).
    let failing = context_with(&[(
        "dockerfile",
        "FROM buildr-fixtures/busybox:latest\nRUN false\n",
    )]);
    let build = env.try_build(failing.path(), &[]);
    assert!(!build.output.status.success());
    let stderr = build.stderr();
    assert!(
        stderr.contains("dockerfile:2\n--------------------\n")
            && stderr.contains("buildr: error: dockerfile:2: RUN false: "),
        "{stderr}"
    );
    let help = env.buildr(&["build", "--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("else CONTEXT/dockerfile"),
        "the -f help names the fallback"
    );
    // `Dockerfile` wins when both exist.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nRUN echo upper > /upper.txt\n",
    )
    .unwrap();
    env.build(ctx.path(), &["-t", "upper:latest"]);
    let image = env.unpack("upper:latest");
    assert_eq!(image.read("/upper.txt"), "upper\n");
    assert!(!image.rootfs().join("lower.txt").exists());
}

#[test]
fn run_mounts_cache_and_tmpfs() {
    let Some(env) = Env::new("mounts") else {
        return;
    };
    let ctx = env.dir.path().join("mounts");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("input.txt"), "bound\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         RUN --mount=type=cache,target=/cache,sharing=locked echo x >> /cache/count && wc -l < /cache/count > /count\n\
         RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -q ' /scratch tmpfs' /proc/mounts\n\
         RUN --mount=type=bind,source=input.txt,target=/in.txt cat /in.txt > /bound.txt\n",
    )
    .unwrap();
    env.build(&ctx, &["-t", "mounts:1"]);
    assert_eq!(env.unpack("mounts:1").read("/count").trim(), "1");
    // The cache mount persists across builds; its content is not in a key.
    env.build(&ctx, &["--no-cache", "-t", "mounts:2"]);
    let image = env.unpack("mounts:2");
    assert_eq!(image.read("/count").trim(), "2");
    assert!(
        !image.rootfs().join("cache/count").exists(),
        "cache mounts are not in the layer"
    );
    assert!(
        !image.rootfs().join("scratch/x").exists(),
        "tmpfs content is not in the layer"
    );
    assert_eq!(image.read("/bound.txt"), "bound\n");
    // A changed bind source reruns the step that reads it.
    std::fs::write(ctx.join("input.txt"), "bound again\n").unwrap();
    let build = env.build(&ctx, &["-t", "mounts:3"]);
    let started = build.steps("started");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(env.unpack("mounts:3").read("/bound.txt"), "bound again\n");
}

#[test]
fn outputs_local_tar_and_oci() {
    let Some(env) = Env::new("outputs") else {
        return;
    };
    let ctx = fixture("multistage");
    let out = env.dir.path();
    let local = out.join("local");
    env.build(
        &ctx,
        &["-o", &format!("type=local,dest={}", local.display())],
    );
    assert_eq!(
        std::fs::read_to_string(local.join("app/out.txt")).unwrap(),
        "HELLO MULTISTAGE\n"
    );
    assert!(local.join("bin/busybox").is_file());

    // No image is written: BuildKit's exporter line, not "writing image".
    let dest = format!("type=local,dest={}", out.join("local-plain").display());
    let plain = env.buildr(&[
        "build",
        "--progress=plain",
        "-o",
        &dest,
        ctx.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(plain.status.success(), "{stderr}");
    assert!(
        stderr.contains("exporting to client directory done"),
        "{stderr}"
    );
    assert!(!stderr.contains("writing image"), "{stderr}");

    let tar = out.join("rootfs.tar");
    env.build(&ctx, &["-o", &format!("type=tar,dest={}", tar.display())]);
    let listing = buildr_testkit::process::run_tool("tar", &["-tf", tar.to_str().unwrap()]);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "app/out.txt"),
        "{listing}"
    );

    let oci = out.join("image.oci.tar");
    env.build(
        &ctx,
        &[
            "-t",
            "out:v1",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
        ],
    );
    let layout = out.join("layout");
    std::fs::create_dir(&layout).unwrap();
    buildr_testkit::process::run_tool(
        "tar",
        &["-xf", oci.to_str().unwrap(), "-C", layout.to_str().unwrap()],
    );
    let bundle = out.join("bundle");
    buildr_testkit::process::run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:v1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/app/out.txt")).unwrap(),
        "HELLO MULTISTAGE\n"
    );
    // Without -t the archives name no image, as BuildKit's exporters.
    let unnamed = out.join("unnamed.oci.tar");
    env.build(
        &ctx,
        &["-o", &format!("type=oci,dest={}", unnamed.display())],
    );
    let inspected = buildr_testkit::process::run_tool(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", unnamed.display())],
    );
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Architecture"], "amd64", "{inspected}");
    let docker = out.join("unnamed.docker.tar");
    env.build(
        &ctx,
        &["-o", &format!("type=docker,dest={}", docker.display())],
    );
    let manifest = buildr_testkit::process::run_tool(
        "tar",
        &["-xOf", docker.to_str().unwrap(), "manifest.json"],
    );
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert!(manifest[0]["RepoTags"].is_null(), "{manifest}");
    assert_eq!(
        manifest[0]["Layers"].as_array().unwrap().len(),
        inspected["Layers"].as_array().unwrap().len()
    );
}

#[test]
fn add_from_a_url_with_checksum() {
    let Some(env) = Env::new("add-url") else {
        return;
    };
    let served = env.dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("payload.txt"), "over http\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 http.server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sum = buildr_testkit::process::run_tool(
        "sha256sum",
        &[served.join("payload.txt").to_str().unwrap()],
    );
    let sum = sum.split_whitespace().next().unwrap().to_owned();
    let ctx = env.dir.path().join("urlctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let url = format!("http://127.0.0.1:{port}/payload.txt");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM buildr-fixtures/busybox:latest\nADD --checksum=sha256:{sum} {url} /dl/\nADD {url} /named.txt\n"),
    )
    .unwrap();
    let ok = env.try_build(&ctx, &["-t", "url:latest"]);
    let bad_ctx = env.dir.path().join("badctx");
    std::fs::create_dir_all(&bad_ctx).unwrap();
    std::fs::write(
        bad_ctx.join("Dockerfile"),
        format!(
            "FROM buildr-fixtures/busybox:latest\nADD --checksum=sha256:{} {url} /dl/\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let bad = env.try_build(&bad_ctx, &[]);
    // Changing the served file reruns the ADD without --checksum.
    let second = {
        std::fs::write(served.join("payload.txt"), "changed over http\n").unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM buildr-fixtures/busybox:latest\nADD {url} /named.txt\n"),
        )
        .unwrap();
        env.try_build(&ctx, &["-t", "url:2"])
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(ok.output.status.success(), "{}", ok.stderr());
    let image = env.unpack("url:latest");
    assert_eq!(image.read("/dl/payload.txt"), "over http\n");
    assert_eq!(image.read("/named.txt"), "over http\n");
    assert!(!bad.output.status.success());
    assert!(bad.stderr().contains("digest mismatch"), "{}", bad.stderr());
    assert!(second.output.status.success(), "{}", second.stderr());
    assert_eq!(second.steps("started").len(), 1, "{}", second.stderr());
    assert_eq!(
        env.unpack("url:2").read("/named.txt"),
        "changed over http\n"
    );
}

#[test]
fn errors_carry_buildkit_phrases() {
    let Some(env) = Env::new("buildkit-phrases") else {
        return;
    };
    let base = "FROM buildr-fixtures/busybox:latest";
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "RUN invalidcmd\n",
            &[],
            &[
                "Dockerfile:2: RUN invalidcmd",
                r#"process "/bin/sh -c invalidcmd" did not complete successfully: exit code: 127"#,
            ],
        ),
        (
            "RUN wh\\\nat\nENV bar=baz",
            &[],
            &["Dockerfile:2\n--------------------\n   \
                 1 |     FROM buildr-fixtures/busybox:latest\n   \
                 2 | >>> RUN wh\\\n   \
                 3 | >>> at\n   \
                 4 |     ENV bar=baz\n\
                 --------------------\n\
                 buildr: error: Dockerfile:2: RUN what: "],
        ),
        (
            "\nCOPY http://example.invalid/README.md /\n",
            &[],
            &["Dockerfile:2: source can't be a URL for COPY"],
        ),
        (
            " AS used\nFROM \"\" AS unused\nFROM used\n",
            &[],
            &[
                "Dockerfile:2\n--------------------\n   \
                 1 |     FROM buildr-fixtures/busybox:latest AS used\n   \
                 2 | >>> FROM \"\" AS unused\n",
                r#"Dockerfile:2: base name ("") should not be blank"#,
            ],
        ),
        (
            "\nARG BLANK\nFROM ${BLANK}\n",
            &[],
            &["base name (${BLANK}) should not be blank"],
        ),
        (
            " AS stage0\nCOPY --from=stage0 f1 /sub/\n",
            &[],
            &["circular dependency detected on stage: stage0"],
        ),
        (
            " AS stage0\nCOPY --from=stage2 f1 /sub/\n\
             FROM buildr-fixtures/busybox:latest AS stage1\nCOPY --from=stage0 f2 /sub/\n\
             FROM buildr-fixtures/busybox:latest AS stage2\nCOPY --from=stage1 f2 /sub/\n",
            &[],
            &["circular dependency detected on stage: stage0"],
        ),
        (
            "\nRUN --mount=type=secret,id=mysecret,required cat /run/secrets/mysecret\n",
            &[],
            &["Dockerfile:2", "secret mysecret: not found"],
        ),
        (
            "\nCOPY missing /x\n",
            &[],
            &[
                "Dockerfile:2",
                "failed to compute cache key",
                r#""/missing": not found"#,
            ],
        ),
        (
            " AS build\nRUN true\n",
            &["--target", "bulid"],
            &[r#"target stage "bulid" could not be found (did you mean build?)"#],
        ),
        (
            "\nFNTRYPOINT [\"x\"]\n",
            &[],
            &[
                "Dockerfile:2:1",
                "unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)",
            ],
        ),
    ];
    for (rest, args, phrases) in cases {
        // The first line has no newline: a case starts on it (` AS name`) or
        // after it.
        let text = if rest.starts_with(' ') {
            format!("{base}{rest}")
        } else {
            format!("{base}\n{}", rest.trim_start_matches('\n'))
        };
        let ctx = context_with(&[("Dockerfile", &text)]);
        let build = env.try_build(ctx.path(), args);
        assert!(!build.output.status.success(), "{text}");
        let stderr = build.stderr();
        for phrase in *phrases {
            assert!(
                stderr.contains(phrase),
                "{text}\nwants {phrase:?} in:\n{stderr}"
            );
        }
    }
}

/// The `created_by` of every history entry.
fn history(image: &crate::build_common::Unpacked) -> Vec<String> {
    image.config()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn child_stages_inherit_args_and_proxy_args_reach_run_outside_the_key() {
    let Some(env) = Env::new("inherited-args") else {
        return;
    };
    let ctx = env.context(
        "inherited-args",
        "FROM buildr-fixtures/busybox:latest AS one\n\
         ARG ONLY_HERE=x\n\
         ENV ftp_proxy=from-env\n\
         RUN echo -n \"one:$ONLY_HERE\" > /one\n\
         FROM one\n\
         RUN echo -n \"two:$ONLY_HERE|$HTTP_PROXY|$http_proxy|$ALL_PROXY|$all_proxy|$FTP_PROXY|$ftp_proxy|$NO_PROXY\" > /two\n",
    );
    let proxies = |http: &str| {
        vec![
            "--build-arg".to_owned(),
            format!("HTTP_PROXY={http}-upper"),
            "--build-arg".to_owned(),
            format!("http_proxy={http}"),
            "--build-arg".to_owned(),
            "All_Proxy=all".to_owned(),
            "--build-arg".to_owned(),
            "FTP_PROXY=ftp".to_owned(),
            "--build-arg".to_owned(),
            "no_proxy=".to_owned(),
        ]
    };
    let mut args = vec!["-t".to_owned(), "inherited:1".to_owned()];
    args.extend(proxies("hp"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let build = env.build(&ctx, &args);
    assert!(
        !build.stderr().contains("not consumed"),
        "{}",
        build.stderr()
    );
    let image = env.unpack("inherited:1");
    assert_eq!(image.read("/one"), "one:x");
    // As BuildKit: the parent's ARG is in effect in the child; the sorted
    // last spelling of a proxy arg wins and sets both; proxies beat ENV.
    assert_eq!(image.read("/two"), "two:x|hp|hp|all|all|ftp|ftp|");
    let history = history(&image);
    assert!(
        history.iter().any(|h| h.starts_with("RUN |1 ONLY_HERE=x ")),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h.starts_with("RUN /bin/sh -c echo -n \"two:")),
        "the child names no inherited ARG: {history:?}"
    );
    assert!(!history.iter().any(|h| h.contains("hp")), "{history:?}");
    assert!(
        !image.config()["config"]["Env"]
            .to_string()
            .contains("ONLY_HERE")
    );
    // Another proxy value keeps every step cached.
    let mut args = vec!["-t".to_owned(), "inherited:2".to_owned()];
    args.extend(proxies("other"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let build = env.build(&ctx, &args);
    assert_eq!(build.steps("started"), Vec::<String>::new());
}

#[test]
fn run_groups_include_the_primary_group() {
    let Some(env) = Env::new("run-groups") else {
        return;
    };
    let ctx = env.context(
        "run-groups",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN mkdir -m 0777 /out && id > /out/root\n\
         USER 1234\n\
         RUN id > /out/uid-only\n\
         USER 1234:1234\n\
         RUN id > /out/uid-gid\n\
         USER app\n\
         RUN id > /out/app\n",
    );
    env.build(&ctx, &["-t", "groups:1"]);
    let image = env.unpack("groups:1");
    // containerd's rule since CVE-2023-25173, which BuildKit inherits.
    assert_eq!(
        image.read("/out/root"),
        "uid=0(root) gid=0(root) groups=0(root)\n"
    );
    assert_eq!(
        image.read("/out/uid-only"),
        "uid=1234 gid=0(root) groups=0(root)\n"
    );
    assert_eq!(
        image.read("/out/uid-gid"),
        "uid=1234 gid=1234 groups=1234\n"
    );
    assert_eq!(
        image.read("/out/app"),
        "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n"
    );
}

#[test]
fn scratch_images_work_in_the_root_dir() {
    let Some(env) = Env::new("scratch-config") else {
        return;
    };
    let ctx = env.context(
        "scratch-config",
        "FROM scratch\nCOPY Dockerfile /Dockerfile\nENV foo=bar\n",
    );
    env.build(&ctx, &["-t", "scratch:1"]);
    let config = env.unpack("scratch:1").config();
    // BuildKit's empty image: WorkingDir "/" and the default PATH.
    assert_eq!(config["config"]["WorkingDir"], "/");
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "foo=bar"
        ])
    );
}

#[test]
fn sandbox_hostname_build_arg_names_run_steps() {
    let Some(env) = Env::new("sandbox-hostname") else {
        return;
    };
    let ctx = env.context(
        "sandbox-hostname",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN hostname > /h1 && echo \"$HOSTNAME\" > /h2 && grep -c myhost /etc/hosts > /h3 || true\n",
    );
    let arg = ["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=myhost"];
    let build = env.build(&ctx, &[&["-t", "host:1"][..], &arg].concat());
    assert!(
        !build.stderr().contains("not consumed"),
        "{}",
        build.stderr()
    );
    let image = env.unpack("host:1");
    assert_eq!(image.read("/h1"), "myhost\n");
    assert_eq!(image.read("/h2"), "myhost\n");
    assert_eq!(image.read("/h3"), "1\n");
    // The hostname is part of the step: without it the step reruns.
    let build = env.build(&ctx, &["-t", "host:2"]);
    assert_eq!(build.steps("started").len(), 1);
    assert_eq!(env.unpack("host:2").read("/h1"), "buildr\n");
    let bad = env.try_build(&ctx, &["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=a b"]);
    assert!(!bad.output.status.success());
    assert!(
        bad.stderr().contains("BUILDKIT_SANDBOX_HOSTNAME"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn copy_from_a_number_that_is_no_stage_fails_before_building() {
    let Some(env) = Env::new("copy-from-index") else {
        return;
    };
    // Even in a stage the target does not need, as BuildKit.
    let ctx = env.context(
        "copy-from-index",
        "FROM buildr-fixtures/busybox:latest AS unused\n\
         COPY --from=5 /x /x\n\
         FROM buildr-fixtures/busybox:latest\n\
         RUN true\n",
    );
    let failed = env.try_build(&ctx, &[]);
    assert!(!failed.output.status.success());
    assert!(
        failed
            .stderr()
            .contains("Dockerfile:2: invalid stage index 5"),
        "{}",
        failed.stderr()
    );
    assert!(failed.steps("started").is_empty(), "{}", failed.stderr());
}

/// The library's log events reach stderr: warnings by default, debug with
/// `BUILDR_LOG=debug`, `-vv` or `--log-level debug`; a bad filter is an
/// error naming where it came from.
#[test]
fn library_log_events_reach_stderr_at_the_asked_level() {
    let Some(env) = Env::new("library_log_events_reach_stderr_at_the_asked_level") else {
        return;
    };
    let ctx = env.context(
        "logs",
        "FROM buildr-fixtures/busybox:latest\nCOPY Dockerfile /d\n",
    );
    env.build(&ctx, &[]);
    // A corrupt context stat cache is dropped with a debug event.
    let corrupt = || {
        let mut dirs = vec![env.root().join("cache").join("context-stat")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    dirs.push(entry.path());
                } else {
                    std::fs::write(entry.path(), b"not a stat cache").unwrap();
                }
            }
        }
    };
    let event = "ignoring corrupt context stat cache";
    let stderr = |args: &[&str], log: Option<&str>| {
        corrupt();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_buildr"));
        cmd.env_remove("BUILDR_LOG");
        if let Some(log) = log {
            cmd.env("BUILDR_LOG", log);
        }
        let out = cmd
            .args(args)
            .arg("--root")
            .arg(env.root())
            .args(["build", "--progress", "plain"])
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(!stderr(&[], None).contains(event));
    for (args, log) in [
        (&[][..], Some("debug")),
        (&["-vv"][..], None),
        (&["--log-level", "buildr=debug"][..], Some("off")),
    ] {
        let said = stderr(args, log);
        let line = said.lines().find(|l| l.contains(event));
        let line = line.unwrap_or_else(|| panic!("{args:?} {log:?}: no {event:?} in:\n{said}"));
        assert!(
            line.starts_with("buildr: debug: [buildr::context::statcache] "),
            "{line}"
        );
        assert!(line.contains("path="), "{line}");
    }
    let out = env.buildr(&["--log-level", "a=b=c", "images"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("invalid log filter \"a=b=c\" (--log-level)"),
        "{said}"
    );
}
