//! What COPY and ADD write besides content, as BuildKit (0.13, checked
//! against dockerd 26.1's builder): the times of symlinks and directories,
//! the owner and mode of the directory a directory is copied into, wildcards
//! that match nothing, and images that `SOURCE_DATE_EPOCH` makes
//! reproducible across stores and checkouts. Layers are read with GNU tar,
//! files with umoci.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::build_common::{BIN, Env};
use buildr_testkit::process::run_tool;
use serde_json::Value;

const BASE: &str = "buildr-fixtures/busybox:latest";

/// Seconds since the epoch of some dates, for `touch -d @N`.
const Y2001: i64 = 978_307_200;
const Y2002: i64 = 1_009_843_200;
const Y2003: i64 = 1_041_379_200;
const Y2004: i64 = 1_072_915_200;
const Y2005: i64 = 1_104_537_600;
const Y2006: i64 = 1_136_073_600;
const Y2007: i64 = 1_167_609_600;
/// After the `SOURCE_DATE_EPOCH` the tests use (1700000000).
const AFTER_EPOCH: i64 = 1_750_000_000;

fn touch(path: &Path, secs: i64) {
    // -h: a symlink's own time, never its target's.
    run_tool(
        "touch",
        &["-h", "-d", &format!("@{secs}"), path.to_str().unwrap()],
    );
}

fn write(root: &Path, rel: &str, content: &str) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

/// An image saved by `buildr save --format oci` and unpacked by tar.
struct Saved {
    _dir: tempfile::TempDir,
    layout: PathBuf,
}

fn save(root: &Path, image: &str, scratch: &Path) -> Saved {
    let dir = tempfile::tempdir_in(scratch).unwrap();
    let tar = dir.path().join("image.tar");
    let args = [
        "save",
        "--format",
        "oci",
        "-o",
        tar.to_str().unwrap(),
        image,
    ];
    let out = buildr(root, &args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layout = dir.path().join("oci");
    std::fs::create_dir(&layout).unwrap();
    run_tool(
        "tar",
        &["-xf", tar.to_str().unwrap(), "-C", layout.to_str().unwrap()],
    );
    Saved { _dir: dir, layout }
}

impl Saved {
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.layout.join("blobs/sha256").join(hex)
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.blob(digest)).unwrap()).unwrap()
    }

    fn manifest(&self) -> Value {
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.layout.join("index.json")).unwrap())
                .unwrap();
        self.json(index["manifests"][0]["digest"].as_str().unwrap())
    }

    fn config(&self) -> Value {
        self.json(self.manifest()["config"]["digest"].as_str().unwrap())
    }

    /// Every layer entry (all layers) by tar name: (type and mode as
    /// `tar -tv` prints them, "uid/gid", mtime in seconds).
    fn headers(&self) -> HashMap<String, (String, String, i64)> {
        let mut out = HashMap::new();
        for layer in self.manifest()["layers"].as_array().unwrap() {
            let digest = layer["digest"].as_str().unwrap();
            let listing = Command::new("tar")
                .env("TZ", "UTC0")
                .args(["--numeric-owner", "--full-time", "-tvzf"])
                .arg(self.blob(digest))
                .output()
                .expect("run tar");
            assert!(listing.status.success(), "tar -tvzf {digest}");
            for line in String::from_utf8_lossy(&listing.stdout).lines() {
                // drwxr-xr-x 0/0 0 2001-01-01 00:00:00 ctx/d/
                let fields: Vec<&str> = line.split_whitespace().collect();
                let when = run_tool(
                    "date",
                    &["-u", "-d", &format!("{} {}Z", fields[3], fields[4]), "+%s"],
                );
                out.insert(
                    fields[5].trim_end_matches('/').to_owned(),
                    (
                        fields[0].to_owned(),
                        fields[1].to_owned(),
                        when.trim().parse().unwrap(),
                    ),
                );
            }
        }
        out
    }
}

/// `COPY . /dst` kept each symlink's own mtime only as the time of the copy
/// (so every cold build made other layers), and a copied directory took the
/// time its last child was written. BuildKit keeps the source times of
/// links and directories on every path that writes them.
#[test]
fn links_and_directories_keep_their_source_times() {
    let Some(env) = Env::new("links_and_directories_keep_their_source_times") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM {BASE} AS stage\n\
             COPY d /dir\n\
             FROM {BASE}\n\
             COPY . /ctx/\n\
             COPY --from=stage /dir /fromstage\n\
             COPY --link d /linked\n\
             COPY --parents d/l /parents/\n\
             ADD t.tar /tar/\n"
        ),
    );
    let tsrc = env.dir.path().join("tsrc");
    write(&tsrc, "td/tf", "t\n");
    std::os::unix::fs::symlink("tf", tsrc.join("td/tl")).unwrap();
    touch(&tsrc.join("td/tl"), Y2006);
    touch(&tsrc.join("td"), Y2007);
    run_tool(
        "tar",
        &[
            "-cf",
            ctx.join("t.tar").to_str().unwrap(),
            "-C",
            tsrc.to_str().unwrap(),
            "td",
        ],
    );
    let d = ctx.join("d");
    write(&ctx, "d/f", "f\n");
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink("f", d.join("l")).unwrap();
    std::os::unix::fs::symlink("d", ctx.join("top-link")).unwrap();
    touch(&d.join("f"), Y2002);
    touch(&d.join("l"), Y2003);
    touch(&d.join("sub"), Y2004);
    touch(&ctx.join("top-link"), Y2005);
    touch(&d, Y2001);

    env.build(&ctx, &["-t", "times:test"]);
    let headers = save(&env.root(), "times:test", env.dir.path()).headers();
    let mtime = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in the layers: {headers:?}"))
            .2
    };
    for (name, want) in [
        ("ctx/d/l", Y2003),
        ("ctx/top-link", Y2005),
        ("ctx/d", Y2001),
        ("ctx/d/sub", Y2004),
        ("ctx/d/f", Y2002),
        // The directory a directory is copied into takes its time.
        ("fromstage", Y2001),
        ("fromstage/l", Y2003),
        ("fromstage/sub", Y2004),
        ("linked", Y2001),
        ("linked/l", Y2003),
        ("parents/d/l", Y2003),
        // ADD: the tar entries' times, links included.
        ("tar/td/tl", Y2006),
        ("tar/td", Y2007),
    ] {
        assert_eq!(mtime(name), want, "mtime of {name}");
    }
    assert!(
        headers["ctx/d/l"].0.starts_with('l'),
        "{:?}",
        headers["ctx/d/l"]
    );
}

/// The directory a directory source is copied into is created as 0755 and
/// owned by `--chown` or 0:0 (with its missing parents), and an existing
/// one keeps its owner and mode; only the contents keep their owners.
#[test]
fn the_directory_copied_into_keeps_or_gets_its_own_owner() {
    let Some(env) = Env::new("the_directory_copied_into_keeps_or_gets_its_own_owner") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    write(&ctx, "d/f", "f\n");
    std::fs::create_dir(ctx.join("d/sub")).unwrap();
    std::fs::set_permissions(ctx.join("d"), std::fs::Permissions::from_mode(0o700)).unwrap();
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM {BASE} AS src\n\
             COPY d /dir\n\
             RUN chown -R 1000:1000 /dir && chown 2000:2000 /dir/sub && chmod 0705 /dir\n\
             FROM {BASE}\n\
             COPY --from=src /dir /dir1\n\
             RUN mkdir -p /dir2 && chown 3000:3000 /dir2 && chmod 0750 /dir2\n\
             COPY --from=src /dir/. /dir2/\n\
             COPY --from=src /dir /a/b/dir3\n\
             COPY --chown=4000:4000 --from=src /dir /dir4\n\
             COPY --chmod=0711 --from=src /dir /dir5\n\
             RUN mkdir -p /dir6 && chown 3000:3000 /dir6 && chmod 0750 /dir6\n\
             COPY --chown=4000:4000 --from=src /dir/. /dir6\n\
             COPY d /cd\n"
        ),
    );
    env.build(&ctx, &["-t", "owners:test"]);
    let image = env.unpack("owners:test");
    let root = image.rootfs();
    let stat = |path: &str| {
        let meta = std::fs::symlink_metadata(root.join(path))
            .unwrap_or_else(|e| panic!("{path} in the image: {e}"));
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777)
    };
    for (path, want) in [
        ("dir1", (0, 0, 0o755)),
        ("dir1/f", (1000, 1000, 0o644)),
        ("dir1/sub", (2000, 2000, 0o755)),
        ("dir2", (3000, 3000, 0o750)),
        ("dir2/f", (1000, 1000, 0o644)),
        ("a", (0, 0, 0o755)),
        ("a/b", (0, 0, 0o755)),
        ("a/b/dir3", (0, 0, 0o755)),
        ("dir4", (4000, 4000, 0o755)),
        ("dir4/f", (4000, 4000, 0o644)),
        // --chmod changes what is copied, not the directory copied into.
        ("dir5", (0, 0, 0o755)),
        ("dir5/sub", (2000, 2000, 0o711)),
        ("dir5/f", (1000, 1000, 0o711)),
        // --chown changes what is copied, not the existing directory.
        ("dir6", (3000, 3000, 0o750)),
        ("dir6/f", (4000, 4000, 0o644)),
        ("dir6/sub", (4000, 4000, 0o755)),
        ("cd", (0, 0, 0o755)),
        ("cd/f", (0, 0, 0o644)),
    ] {
        assert_eq!(stat(path), want, "owner and mode of /{path}");
    }
}

/// As newer BuildKit (0.13 ignores them): `--chmod` takes chmod's symbolic
/// modes, applied to each copied entry's own mode (`X` only to directories
/// and to what was executable), never to the directory copied into; the
/// mode is part of the step's cache key; a mode that is neither octal nor
/// symbolic is BuildKit's "invalid syntax".
#[test]
fn symbolic_chmod_changes_each_copied_entrys_own_mode() {
    let Some(env) = Env::new("symbolic_chmod_changes_each_copied_entrys_own_mode") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    let mode = |rel: &str, mode: u32| {
        std::fs::set_permissions(ctx.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write(&ctx, "x", "x\n");
    write(&ctx, "d/f", "f\n");
    write(&ctx, "d/run.sh", "run\n");
    std::fs::create_dir(ctx.join("d/sub")).unwrap();
    mode("x", 0o666);
    mode("d/f", 0o640);
    mode("d/run.sh", 0o750);
    mode("d/sub", 0o700);
    mode("d", 0o700);
    let dockerfile = |x_mode: &str| {
        format!(
            "FROM scratch\n\
             COPY --chmod={x_mode} x /x1\n\
             COPY --chmod=a+X,u+s d /d1\n\
             COPY --chmod=g=u,o= d /d2\n"
        )
    };
    let stat = |image: &str, path: &str| {
        let unpacked = env.unpack(image);
        let meta = std::fs::symlink_metadata(unpacked.rootfs().join(path))
            .unwrap_or_else(|e| panic!("{path} in {image}: {e}"));
        meta.permissions().mode() & 0o7777
    };
    write(&ctx, "Dockerfile", &dockerfile("go-w"));
    env.build(&ctx, &["-t", "symbolic:one"]);
    let image = env.unpack("symbolic:one");
    for (path, want) in [
        ("x1", 0o644),
        ("d1", 0o755),
        ("d1/f", 0o4640),
        ("d1/run.sh", 0o4751),
        ("d1/sub", 0o4711),
        ("d2", 0o755),
        ("d2/f", 0o660),
        ("d2/run.sh", 0o770),
        ("d2/sub", 0o770),
    ] {
        let meta = std::fs::symlink_metadata(image.rootfs().join(path))
            .unwrap_or_else(|e| panic!("{path} in the image: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, want, "mode of /{path}");
    }
    // Another mode is another step, not the cached one.
    write(&ctx, "Dockerfile", &dockerfile("go-r"));
    env.build(&ctx, &["-t", "symbolic:two"]);
    assert_eq!(stat("symbolic:two", "x1"), 0o622);

    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --chmod=go-q x /x1\n",
    );
    let failed = env.try_build(&ctx, &[]);
    assert!(!failed.output.status.success(), "built with --chmod=go-q");
    let stderr = failed.stderr();
    assert!(stderr.contains("Dockerfile:2: invalid syntax"), "{stderr}");
}

/// BuildKit's `AllowEmptyWildcard`: `COPY foo nomatch* /d/` copies `foo`,
/// a wildcard alone that matches nothing copies nothing, and only a
/// missing directory before the wildcard is an error.
#[test]
fn a_wildcard_that_matches_nothing_is_no_error() {
    let Some(env) = Env::new("a_wildcard_that_matches_nothing_is_no_error") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    write(&ctx, "foo", "foo\n");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM {BASE} AS src\n\
             COPY foo /dir/f\n\
             FROM {BASE}\n\
             COPY foo nomatch* /w1/\n\
             COPY nomatch* /w2/\n\
             COPY --from=src /dir/f /nomatch* /w3/\n\
             COPY --from=src /nomatch* /w4/\n"
        ),
    );
    env.build(&ctx, &["-t", "wild:test"]);
    let image = env.unpack("wild:test");
    assert_eq!(image.read("/w1/foo"), "foo\n");
    assert_eq!(image.read("/w3/f"), "foo\n");
    for absent in ["w2", "w4"] {
        assert!(
            !image.rootfs().join(absent).exists(),
            "/{absent} was created"
        );
    }

    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {BASE}\nCOPY foo missing/* /x/\n"),
    );
    let failed = env.try_build(&ctx, &[]);
    assert!(
        !failed.output.status.success(),
        "a missing directory copied"
    );
    let stderr = failed.stderr();
    assert!(
        stderr.contains("\"/missing/*\": not found") && stderr.contains("Dockerfile:2"),
        "{stderr}"
    );
}

#[test]
fn a_socket_in_the_context_is_copied_as_an_empty_file() {
    let Some(env) = Env::new("a_socket_in_the_context_is_copied_as_an_empty_file") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nCOPY . /all/\nCOPY s.sock /named\n",
    );
    let _listener = std::os::unix::net::UnixListener::bind(ctx.join("s.sock")).unwrap();
    std::fs::set_permissions(ctx.join("s.sock"), std::fs::Permissions::from_mode(0o750)).unwrap();
    env.build(&ctx, &["-t", "socket:test"]);
    let image = env.unpack("socket:test");
    for path in ["all/s.sock", "named"] {
        let meta = std::fs::symlink_metadata(image.rootfs().join(path)).unwrap();
        assert!(meta.is_file(), "/{path} is a regular file");
        assert_eq!(meta.len(), 0, "/{path} is empty");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o750, "/{path}");
    }
}

/// As BuildKit (fsutil's copy, one source at a time): several sources need
/// no `/` after the destination; each goes into it when it is a directory
/// by then, else onto it; a directory onto a file fails when it runs.
#[test]
fn several_sources_without_a_trailing_slash_copy_one_by_one() {
    let Some(env) = Env::new("several_sources_without_a_trailing_slash_copy_one_by_one") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    write(&ctx, "foo", "foo");
    write(&ctx, "bar", "bar");
    write(&ctx, "d/inner", "inner");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM {BASE} AS s\n\
             COPY . /src/\n\
             FROM {BASE}\n\
             COPY foo nomatch* /w1\n\
             COPY foo bar /w2\n\
             COPY d foo /w3\n\
             COPY --from=s /src/foo /src/bar /w4\n\
             COPY --from=s /src/d /src/foo /w5\n"
        ),
    );
    env.build(&ctx, &["-t", "several:test"]);
    let image = env.unpack("several:test");
    assert_eq!(image.read("/w1"), "foo");
    assert_eq!(image.read("/w2"), "bar", "the last source wins");
    assert_eq!(image.read("/w3/inner"), "inner");
    assert_eq!(
        image.read("/w3/foo"),
        "foo",
        "into the directory made first"
    );
    assert_eq!(image.read("/w4"), "bar");
    assert_eq!(image.read("/w5/foo"), "foo");

    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {BASE}\nCOPY foo d /w6\n"),
    );
    let failed = env.try_build(&ctx, &[]);
    assert!(
        !failed.output.status.success(),
        "a directory copied onto a file"
    );
    let stderr = failed.stderr();
    assert!(
        stderr.contains("Dockerfile:2") && stderr.contains("cannot copy to non-directory: /w6"),
        "{stderr}"
    );
}

/// COPY and ADD lines BuildKit 0.13 refuses, each with (a phrase of) its
/// message; buildr's also names the Dockerfile line.
const REFUSED: &[(&str, &str)] = &[
    (
        "FROM scratch AS target\nCOPY --from=build /d /out\nFROM scratch AS build\nCOPY foo /d\nFROM target\n",
        "Dockerfile:2: cannot copy from stage \"build\", it needs to be defined before current stage \"target\"",
    ),
    (
        "FROM scratch AS first\nCOPY --from=1 / /out\nFROM scratch\nCOPY foo /d\nFROM first\n",
        "Dockerfile:2: cannot copy from stage \"1\", it needs to be defined before current stage \"first\"",
    ),
    (
        "FROM scratch\nARG FOO=x\nCOPY --from=$FOO . .\n",
        "Dockerfile:3: failed to parse stage name \"$FOO\"",
    ),
    (
        "FROM scratch\nCOPY --chmod=64a foo /\n",
        "Dockerfile:2: invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777",
    ),
    (
        "FROM scratch\nADD --chmod=10000 foo /\n",
        "Dockerfile:2: invalid chmod parameter: '10000'. it should be octal string and between 0 and 07777",
    ),
    (
        "FROM scratch\nADD --checksum=sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c foo /x\n",
        "Dockerfile:2: checksum can't be specified for non-HTTP sources",
    ),
];

#[test]
fn refusals_say_what_buildkit_says() {
    let Some(env) = Env::new("refusals_say_what_buildkit_says") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    write(&ctx, "foo", "foo\n");
    for (dockerfile, expected) in REFUSED {
        write(&ctx, "Dockerfile", dockerfile);
        let failed = env.try_build(&ctx, &[]);
        assert!(!failed.output.status.success(), "built:\n{dockerfile}");
        let stderr = failed.stderr();
        assert!(stderr.contains(expected), "{dockerfile}\n{stderr}");
    }
}

/// A build context with symlinks, hard links and empty directories.
fn reproducible_context(at: &Path, dockerfile: &str) {
    write(at, "Dockerfile", dockerfile);
    write(at, "app/main.txt", "main\n");
    write(at, "app/lib/util.txt", "util\n");
    std::fs::create_dir_all(at.join("app/empty")).unwrap();
    std::fs::create_dir_all(at.join("app/lib/empty-too")).unwrap();
    std::fs::hard_link(at.join("app/main.txt"), at.join("app/hard.txt")).unwrap();
    std::os::unix::fs::symlink("main.txt", at.join("app/link")).unwrap();
    std::os::unix::fs::symlink("../main.txt", at.join("app/lib/up")).unwrap();
    std::os::unix::fs::symlink("/nowhere", at.join("app/dangling")).unwrap();
}

/// Every entry below `root` (and `root`) to one mtime, links not followed.
fn touch_tree(root: &Path, secs: i64) {
    run_tool(
        "find",
        &[
            root.to_str().unwrap(),
            "-exec",
            "touch",
            "-h",
            "-d",
            &format!("@{secs}"),
            "{}",
            "+",
        ],
    );
}

/// A second fresh store holding the same base image (saved and loaded,
/// so its config is byte for byte the first store's).
fn store_with_base(env: &Env, name: &str) -> PathBuf {
    let archive = env.dir.path().join("base.tar");
    if !archive.exists() {
        env.save("oci", BASE, &archive);
    }
    let root = env.dir.path().join(name);
    let out = buildr(&root, &["load", "-i", archive.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

fn buildr(root: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--root").arg(root).args(args);
    for (key, value) in vars {
        cmd.env(key, value);
    }
    cmd.output().expect("run buildr")
}

/// A cold build of `ctx` in the store `root`: (manifest digest, image id).
fn cold_build(root: &Path, ctx: &Path, args: &[&str], vars: &[(&str, &str)]) -> (String, String) {
    let mut all = vec!["build", "--progress", "json", "-t", "repro:test"];
    all.extend_from_slice(args);
    all.push(ctx.to_str().unwrap());
    let out = buildr(root, &all, vars);
    let build = crate::build_common::Build { output: out };
    assert!(build.output.status.success(), "{}", build.stderr());
    let done = build.done();
    let field = |key: &str| done[key].as_str().unwrap().to_owned();
    (field("manifest"), field("image_id"))
}

/// `SOURCE_DATE_EPOCH` with two cold builds in two fresh stores (`--root`),
/// from two checkouts of the same context at different paths, written at
/// different times: buildr clamps layer file times to the epoch by default
/// (BuildKit's `rewrite-timestamp=true`), so the checkouts' own mtimes do
/// not matter and the manifest and config digests are equal; `created` in
/// the config and the new history entries is the epoch. Then, with
/// `rewrite-timestamp=false` (BuildKit's default: file times kept), two
/// checkouts given the same mtimes with `touch -d` still build the same
/// image: nothing the copy writes takes the time of the build.
#[test]
fn source_date_epoch_builds_are_reproducible() {
    let Some(env) = Env::new("source_date_epoch_builds_are_reproducible") else {
        return;
    };
    let dockerfile = format!(
        "FROM {BASE} AS stage\n\
         COPY app /srv/app\n\
         RUN echo built > /srv/app/built.txt && ln -s built.txt /srv/app/built-link\n\
         FROM {BASE}\n\
         COPY . /ctx/\n\
         COPY --from=stage /srv /srv\n\
         COPY --link app /linked\n\
         WORKDIR /work/dir\n\
         COPY <<EOF /here.txt\n\
         inline\n\
         EOF\n"
    );
    let sde = [("SOURCE_DATE_EPOCH", "1700000000")];
    let first = env.dir.path().join("checkout-one/ctx");
    reproducible_context(&first, &dockerfile);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = env.dir.path().join("elsewhere/two/ctx");
    reproducible_context(&second, &dockerfile);
    let a = cold_build(&env.root(), &first, &[], &sde);
    let store_b = store_with_base(&env, "store-b");
    let b = cold_build(&store_b, &second, &[], &sde);
    assert_eq!(a, b, "manifest and image id differ between the stores");
    let config = save(&store_b, "repro:test", env.dir.path()).config();
    let created = "2023-11-14T22:13:20Z";
    assert_eq!(config["created"], created, "{config}");
    let history = config["history"].as_array().unwrap();
    let steps: Vec<&Value> = history
        .iter()
        .filter(|h| h["comment"] == "buildkit.dockerfile.v0")
        .collect();
    assert_eq!(steps.len(), 5, "{config}");
    for step in steps {
        assert_eq!(step["created"], created, "{step}");
    }

    // BuildKit's default: the files' own times, made equal by touch, and
    // newer than the epoch so that a clamp would show. No step creates a
    // directory only as a parent: that one takes the time of the build, in
    // BuildKit as here.
    let file_only = format!(
        "FROM {BASE} AS stage\n\
         COPY app /app\n\
         FROM {BASE}\n\
         COPY . /ctx/\n\
         COPY --from=stage /app /srv\n\
         COPY --link app /linked\n"
    );
    let third = env.dir.path().join("three/ctx");
    let fourth = env.dir.path().join("four/x/ctx");
    for ctx in [&third, &fourth] {
        reproducible_context(ctx, &file_only);
        touch_tree(ctx, AFTER_EPOCH);
    }
    let keep = ["-o", "type=image,rewrite-timestamp=false"];
    let store_c = store_with_base(&env, "store-c");
    let store_d = store_with_base(&env, "store-d");
    let c = cold_build(&store_c, &third, &keep, &sde);
    let d = cold_build(&store_d, &fourth, &keep, &sde);
    assert_eq!(c, d, "rewrite-timestamp=false with equal mtimes");
    let saved = save(&store_d, "repro:test", env.dir.path());
    let headers = saved.headers();
    for name in [
        "ctx/app/link",
        "ctx/app/empty",
        "srv/lib/up",
        "srv",
        "linked/hard.txt",
    ] {
        assert_eq!(headers[name].2, AFTER_EPOCH, "{name} was clamped");
    }
    assert_eq!(saved.config()["created"], created);
}
