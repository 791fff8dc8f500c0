//! The real `buildr` binary on the busybox fixture: import, images, tag,
//! rmi, inspect, save, load, prune, system df; and interop with tools
//! nobody here wrote: `skopeo inspect`/`skopeo copy` accept what `buildr
//! save` writes in both formats, `buildr load` accepts what skopeo writes,
//! and `umoci unpack` of the OCI output reproduces the fixture's tree.
//! Under CI=true a missing tool (busybox, skopeo, umoci, tar) or a non-root
//! run fails; otherwise the test says loudly that it skips.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use buildr_testkit::prereq::{need_root, need_tool};
use buildr_testkit::workspace;
use serde_json::Value;

/// A store root and scratch directory for one test.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `buildr --root ROOT args...` without asserting.
    fn buildr_in(&self, root: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_buildr"))
            .env_remove("BUILDR_ROOT")
            .arg("--root")
            .arg(self.path(root))
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs buildr on the default test root and returns stdout; panics on failure.
    fn buildr(&self, args: &[&str]) -> String {
        ok(self.buildr_in("root", args), &format!("buildr {args:?}"))
    }

    /// The busybox fixture rootfs tar, imported as buildr-fixtures/busybox.
    fn import_busybox(&self) -> (PathBuf, String) {
        let tar = self.path("busybox-rootfs.tar");
        ok(
            Command::new("bash")
                .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
                .arg(&tar)
                .output()
                .unwrap(),
            "busybox-rootfs.sh",
        );
        let out = self.buildr(&[
            "import",
            tar.to_str().unwrap(),
            "buildr-fixtures/busybox:latest",
        ]);
        let id = out.trim().to_owned();
        assert!(
            id.starts_with("sha256:") && id.len() == 71,
            "import printed {out:?}"
        );
        (tar, id)
    }
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cmd(program: &str, args: &[&str]) -> String {
    ok(
        Command::new(program).args(args).output().unwrap(),
        &format!("{program} {args:?}"),
    )
}

#[test]
fn image_commands_on_the_busybox_fixture() {
    let test = "image_commands_on_the_busybox_fixture";
    if !need_tool(test, "busybox") || !need_tool(test, "bash") {
        return;
    }
    let env = Env::new();
    let (_, id) = env.import_busybox();
    let short = &id[7..19];

    let table = env.buildr(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<&str> = lines[0]
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{table}"
    );
    let row: Vec<&str> = lines[1]
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        &row[..3],
        ["buildr-fixtures/busybox", "latest", short],
        "{table}"
    );
    assert!(row[3].ends_with("ago"), "{table}");
    assert!(row[4].ends_with("MB") || row[4].ends_with("kB"), "{table}");
    assert_eq!(env.buildr(&["images", "-q"]).trim(), short);
    assert_eq!(env.buildr(&["images", "-q", "--no-trunc"]).trim(), id);

    env.buildr(&["tag", "buildr-fixtures/busybox", "bb:1"]);
    assert_eq!(env.buildr(&["images", "-q"]).lines().count(), 2);
    assert_eq!(env.buildr(&["images", "-q", "bb"]).lines().count(), 1);
    assert_eq!(env.buildr(&["images", "-q", "bb:2"]).lines().count(), 0);

    let doc: Value = serde_json::from_str(&env.buildr(&["inspect", "bb:1"])).unwrap();
    assert_eq!(doc[0]["Id"], id.as_str());
    assert_eq!(
        doc[0]["RepoTags"],
        serde_json::json!(["buildr-fixtures/busybox:latest", "bb:1"])
    );
    assert_eq!(doc[0]["Os"], "linux");
    assert_eq!(doc[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let by_id: Value = serde_json::from_str(&env.buildr(&["inspect", short])).unwrap();
    assert_eq!(by_id, doc);

    // Two names, removal by id: docker's conflict, exit 1, nothing removed.
    let out = env.buildr_in("root", &["rmi", short]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be forced"));
    assert_eq!(env.buildr(&["images", "-q"]).lines().count(), 2);
    assert_eq!(env.buildr(&["rmi", "bb:1"]), "Untagged: bb:1\n");
    let out = env.buildr_in("root", &["inspect", "bb:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image: bb:1"));

    let df = env.buildr(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    let images_row: Vec<&str> = df.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&images_row[..3], ["Images", "1", "0"], "{df}");

    // Prune keeps the tagged image; after rmi it goes.
    let out = env.buildr(&["prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    env.buildr(&["rmi", "-f", &id]);
    let out = env.buildr(&["prune", "-a", "-f"]);
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(env.buildr(&["images", "-q"]), "");
    let blobs = std::fs::read_dir(env.path("root/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);

    // Without -f, prune asks and a "no" keeps everything.
    let out = Command::new(env!("CARGO_BIN_EXE_buildr"))
        .arg("--root")
        .arg(env.path("root"))
        .arg("prune")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Are you sure"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Total reclaimed"));
}

#[test]
fn images_format_filter_and_digests_as_dockers() {
    let test = "images_format_filter_and_digests_as_dockers";
    if !need_tool(test, "busybox") || !need_tool(test, "bash") {
        return;
    }
    let env = Env::new();
    let (_, id) = env.import_busybox();
    let short = &id[7..19];
    env.buildr(&["tag", "buildr-fixtures/busybox:latest", "other/thing:v2"]);
    let manifest = env.buildr(&["inspect", "-f", "{{.Descriptor.digest}}", "other/thing:v2"]);
    let manifest = manifest.trim();
    assert!(manifest.starts_with("sha256:"), "{manifest}");
    // --format: one line per image, docker's field names.
    assert_eq!(
        env.buildr(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}"
        ]),
        format!(
            "buildr-fixtures/busybox:latest {short} {manifest}\nother/thing:v2 {short} {manifest}\n"
        )
    );
    // table: docker's headers, aligned columns.
    let table = env.buildr(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG"],
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(lines[1].find("latest"), lines[0].find("TAG"), "{table}");
    // --digests adds the column; --filter narrows; -a lists the same.
    assert!(env.buildr(&["images", "--digests"]).contains(manifest));
    assert_eq!(
        env.buildr(&["images", "-q", "--filter", "reference=other/thing:v2"]),
        format!("{short}\n")
    );
    assert_eq!(env.buildr(&["images", "-q", "-f", "dangling=true"]), "");
    assert_eq!(env.buildr(&["images", "-a", "-q"]).lines().count(), 2);
    let out = env.buildr_in("root", &["images", "-f", "bogus=1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid filter"));
}

#[test]
fn skopeo_reads_buildr_archives_and_buildr_loads_skopeo_archives() {
    let test = "skopeo_reads_buildr_archives_and_buildr_loads_skopeo_archives";
    if !need_tool(test, "busybox") || !need_tool(test, "skopeo") {
        return;
    }
    let env = Env::new();
    let (_, id) = env.import_busybox();
    let doc: Value = serde_json::from_str(&env.buildr(&["inspect", &id])).unwrap();
    let manifest = doc[0]["Descriptor"]["digest"].as_str().unwrap().to_owned();
    let diff_id = doc[0]["RootFS"]["Layers"][0].as_str().unwrap().to_owned();

    let oci = env.path("oci.tar");
    let docker = env.path("docker.tar");
    let name = "buildr-fixtures/busybox:latest";
    env.buildr(&["save", "--format", "oci", "-o", oci.to_str().unwrap(), name]);
    env.buildr(&["save", "-o", docker.to_str().unwrap(), name]);
    // To stdout as well.
    let streamed = env.path("streamed.tar");
    let out = Command::new(env!("CARGO_BIN_EXE_buildr"))
        .arg("--root")
        .arg(env.path("root"))
        .args(["save", name])
        .stdout(std::fs::File::create(&streamed).unwrap())
        .output()
        .unwrap();
    ok(out, "buildr save > file");
    assert_eq!(
        std::fs::read(&streamed).unwrap(),
        std::fs::read(&docker).unwrap()
    );

    let oci_ref = format!("oci-archive:{}", oci.display());
    let docker_ref = format!("docker-archive:{}", docker.display());
    let inspected: Value = serde_json::from_str(&cmd("skopeo", &["inspect", &oci_ref])).unwrap();
    assert_eq!(inspected["Digest"], manifest.as_str());
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);
    let inspected: Value = serde_json::from_str(&cmd("skopeo", &["inspect", &docker_ref])).unwrap();
    assert_eq!(inspected["Layers"], serde_json::json!([diff_id]));
    let config: Value =
        serde_json::from_str(&cmd("skopeo", &["inspect", "--config", &docker_ref])).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([diff_id]));

    // skopeo copy between every pair of formats, then buildr loads each.
    let copies = [
        (&oci_ref, "oci-archive", "skopeo/oci:1"),
        (&docker_ref, "docker-archive", "skopeo/docker:2"),
        (&oci_ref, "docker-archive", "skopeo/o2d:3"),
        (&docker_ref, "oci-archive", "skopeo/d2o:4"),
    ];
    for (i, (from, kind, target)) in copies.iter().enumerate() {
        let out = env.path(&format!("copy{i}.tar"));
        cmd(
            "skopeo",
            &[
                "copy",
                "-q",
                from,
                &format!("{kind}:{}:{target}", out.display()),
            ],
        );
        let loaded = ok(
            env.buildr_in("loaded", &["load", "-i", out.to_str().unwrap()]),
            &format!("buildr load of skopeo's {kind} {target}"),
        );
        assert_eq!(loaded, format!("Loaded image: {target}\n"));
        let doc: Value = serde_json::from_str(&ok(
            env.buildr_in("loaded", &["inspect", target]),
            "inspect loaded",
        ))
        .unwrap();
        // The id is the config digest skopeo sees in its own archive.
        let raw: Value = serde_json::from_str(&cmd(
            "skopeo",
            &["inspect", "--raw", &format!("{kind}:{}", out.display())],
        ))
        .unwrap();
        assert_eq!(doc[0]["Id"], raw["config"]["digest"], "{target}");
        // skopeo keeps the config bytes except when it converts a docker
        // manifest to OCI (it re-encodes the config then).
        if *target != "skopeo/d2o:4" {
            assert_eq!(doc[0]["Id"], id.as_str(), "{target}: the config survived");
        }
        assert_eq!(doc[0]["RootFS"]["Layers"][0], diff_id.as_str());
    }
    let listed = ok(env.buildr_in("loaded", &["images", "-q"]), "images");
    assert_eq!(listed.lines().count(), 4, "{listed}");

    // And from stdin.
    let out = Command::new(env!("CARGO_BIN_EXE_buildr"))
        .arg("--root")
        .arg(env.path("stdin"))
        .arg("load")
        .stdin(std::fs::File::open(&oci).unwrap())
        .output()
        .unwrap();
    assert_eq!(ok(out, "load < oci.tar"), format!("Loaded image: {name}\n"));
}

/// path -> (type, mode, uid, gid, content digest or link target).
fn tree(root: &Path) -> BTreeMap<String, (String, u32, u32, u32, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u32, u32, u32, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let (kind, content) = if ft.is_symlink() {
                (
                    "symlink",
                    std::fs::read_link(&path).unwrap().display().to_string(),
                )
            } else if ft.is_dir() {
                ("dir", String::new())
            } else if ft.is_file() {
                (
                    "file",
                    buildr::image::Digest::of(&std::fs::read(&path).unwrap()).to_string(),
                )
            } else {
                ("other", meta.rdev().to_string())
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                meta.mode() & 0o7777
            };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(
                rel,
                (kind.to_owned(), mode, meta.uid(), meta.gid(), content),
            );
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn umoci_unpack_of_saved_busybox_matches_the_fixture() {
    let test = "umoci_unpack_of_saved_busybox_matches_the_fixture";
    if !need_root(test)
        || !need_tool(test, "busybox")
        || !need_tool(test, "umoci")
        || !need_tool(test, "tar")
    {
        return;
    }
    let env = Env::new();
    let (rootfs, _) = env.import_busybox();
    let archive = env.path("oci.tar");
    env.buildr(&[
        "save",
        "--format",
        "oci",
        "-o",
        archive.to_str().unwrap(),
        "buildr-fixtures/busybox",
    ]);
    let layout = env.path("layout");
    std::fs::create_dir(&layout).unwrap();
    cmd(
        "tar",
        &[
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            layout.to_str().unwrap(),
        ],
    );
    let bundle = env.path("bundle");
    cmd(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let expected = env.path("expected");
    std::fs::create_dir(&expected).unwrap();
    cmd(
        "tar",
        &[
            "--numeric-owner",
            "--same-owner",
            "-xpf",
            rootfs.to_str().unwrap(),
            "-C",
            expected.to_str().unwrap(),
        ],
    );
    let want = tree(&expected);
    let got = tree(&bundle.join("rootfs"));
    assert!(want.len() > 100, "the fixture has busybox's applet links");
    let differences: Vec<String> = want
        .keys()
        .chain(got.keys())
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| format!("{k}: want {:?}, got {:?}", want.get(k), got.get(k)))
        .collect();
    assert!(
        differences.is_empty(),
        "trees differ:\n{}",
        differences.join("\n")
    );
}

/// A private dockerd (Debian's docker.io) started by `scripts/test-dockerd.sh`
/// in its own state dir, stopped and unmounted on drop.
struct Dockerd {
    state: tempfile::TempDir,
    host: String,
}

impl Dockerd {
    fn start(test: &str) -> Option<Dockerd> {
        if !need_tool(test, "dockerd") || !need_tool(test, "curl") {
            return None;
        }
        let state = tempfile::Builder::new()
            .prefix("buildr-test-dockerd-")
            .tempdir()
            .unwrap();
        let out = Command::new("bash")
            .arg(workspace().join("scripts/test-dockerd.sh"))
            .arg("start")
            .arg(state.path())
            .output()
            .unwrap();
        let host = ok(out, "start a private dockerd").trim().to_owned();
        Some(Dockerd { state, host })
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(workspace().join("scripts/test-dockerd.sh"))
            .arg("stop")
            .arg(self.state.path())
            .status();
    }
}

/// Docker loads and runs what `buildr save` writes, and `buildr load` takes
/// what `docker save` writes. Uses `BUILDR_TEST_DOCKER_HOST` when set, else
/// starts a private dockerd.
#[test]
fn docker_daemon_loads_buildr_docker_archives() {
    let test = "docker_daemon_loads_buildr_docker_archives";
    if !need_root(test) {
        return;
    }
    let daemon;
    let host = match std::env::var("BUILDR_TEST_DOCKER_HOST") {
        Ok(host) => host,
        Err(_) => {
            let Some(started) = Dockerd::start(test) else {
                return;
            };
            daemon = started;
            daemon.host.clone()
        }
    };
    if !need_tool(test, "docker") || !need_tool(test, "busybox") {
        return;
    }
    let docker = |args: &[&str]| {
        ok(
            Command::new("docker")
                .env("DOCKER_HOST", &host)
                .args(args)
                .output()
                .unwrap(),
            &format!("docker {args:?}"),
        )
    };
    let env = Env::new();
    let (_, id) = env.import_busybox();
    let name = format!("buildr-test/images-cli-{}:v1", std::process::id());
    env.buildr(&["tag", "buildr-fixtures/busybox", &name]);
    let archive = env.path("docker.tar");
    env.buildr(&["save", "-o", archive.to_str().unwrap(), &name]);
    let loaded = docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    let docker_id = docker(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(docker_id.trim(), id);
    let said = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "/bin/busybox",
        "echo",
        "hello",
    ]);
    assert_eq!(said, "hello\n");
    let back = env.path("from-docker.tar");
    docker(&["save", "-o", back.to_str().unwrap(), &name]);
    docker(&["rmi", &name]);
    let out = ok(
        env.buildr_in("other", &["load", "-i", back.to_str().unwrap()]),
        "load docker save",
    );
    assert_eq!(out, format!("Loaded image: {name}\n"));
    let doc: Value =
        serde_json::from_str(&ok(env.buildr_in("other", &["inspect", &name]), "inspect")).unwrap();
    assert_eq!(doc[0]["Id"], id.as_str());
}
