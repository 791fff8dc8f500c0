//! OCI runtime bundles with tools nobody here wrote: `buildr bundle unpack`
//! writes a bundle that Debian's `runc run` runs (the image's user, groups,
//! working dir, env and command; layers applied with their whiteouts; the
//! command's exit code), and a bundle from `skopeo copy` + `umoci unpack`
//! runs under `buildr bundle run` with its output, exit code and hostname,
//! writes landing in its rootfs, its read-only root honoured, and the
//! fields buildr does not apply named in warnings.
//! Root, busybox, runc, skopeo and umoci are needed: under CI=true their
//! absence fails the test, otherwise it says loudly that it skips.

use buildr_testkit::prereq::{need_root, need_tools};
use buildr_testkit::workspace;
use std::path::PathBuf;
use std::process::{Command, Output};

const IMAGE: &str = "buildr-fixtures/busybox:latest";

/// A store with the busybox fixture imported.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let tar = env.path("busybox-rootfs.tar");
        let out = Command::new("bash")
            .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
            .arg(&tar)
            .output()
            .unwrap();
        check(&out, "busybox-rootfs.sh");
        env.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_buildr"))
            .env_remove("BUILDR_ROOT")
            .arg("--root")
            .arg(self.path("root"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        check(&out, &format!("buildr {args:?}"));
        text(&out.stdout)
    }
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

/// Runs `runc` with a state root of its own, so nothing is shared with
/// other tests or a host runc.
struct Runc {
    state: PathBuf,
}

impl Runc {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = self.run(&["delete", "--force", "buildr-bundle-test"]);
    }
}

#[test]
fn runc_runs_a_bundle_unpacked_by_buildr() {
    let test = "runc_runs_a_bundle_unpacked_by_buildr";
    if !prerequisites(test, &["runc"]) {
        return;
    }
    let env = Env::new();
    // A second layer that deletes a file (a whiteout) and the config fields
    // the bundle must carry over.
    let context = env.path("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\n\
             RUN rm /bin/vi && mkdir -p /srv/data && echo layered > /srv/data/note\n\
             ENV GREETING=bonjour\n\
             WORKDIR /srv/data\n\
             USER app\n\
             CMD [\"sh\", \"-c\", \"echo $GREETING from $(pwd): $(id); cat note; test -e /bin/vi || echo vi-gone; exit 7\"]\n"
        ),
    )
    .unwrap();
    env.ok(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "bundle-test:1",
        context.to_str().unwrap(),
    ]);

    let bundle = env.path("bundle");
    let out = env.run(&[
        "bundle",
        "unpack",
        "bundle-test:1",
        bundle.to_str().unwrap(),
    ]);
    check(&out, "bundle unpack");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert!(config["ociVersion"].as_str().unwrap().starts_with("1."));
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["cwd"], "/srv/data");
    assert_eq!(config["process"]["user"]["uid"], 1000);
    assert_eq!(config["process"]["user"]["gid"], 1000);
    assert_eq!(
        config["process"]["user"]["additionalGids"],
        serde_json::json!([1000, 50])
    );
    assert!(
        config["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&"GREETING=bonjour".into()),
        "{config}"
    );
    let namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for ns in ["pid", "mount", "ipc", "uts", "network"] {
        assert!(
            namespaces.contains(&ns),
            "no {ns} namespace: {namespaces:?}"
        );
    }
    let mounts: Vec<&str> = config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for dst in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
    ] {
        assert!(mounts.contains(&dst), "no {dst} mount: {mounts:?}");
    }
    let bounding = config["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap();
    assert_eq!(bounding.len(), 14, "docker's 14 default capabilities");
    assert!(bounding.contains(&"CAP_NET_BIND_SERVICE".into()));
    assert!(!bounding.contains(&"CAP_SYS_ADMIN".into()));
    assert!(
        config["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&"/proc/kcore".into())
    );
    assert_eq!(config["linux"]["resources"], serde_json::json!({}));
    assert!(
        !bundle.join("rootfs/bin/vi").exists(),
        "whiteout not applied"
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // The bundle dir must be empty or absent: a second unpack is refused
    // and leaves the first alone.
    let again = env.run(&[
        "bundle",
        "unpack",
        "bundle-test:1",
        bundle.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    assert!(bundle.join("config.json").is_file());

    let runc = Runc {
        state: env.path("runc-state"),
    };
    let out = runc.run(&[
        "run",
        "--bundle",
        bundle.to_str().unwrap(),
        "buildr-bundle-test",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "runc run: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("bonjour from /srv/data: uid=1000(app) gid=1000(app) groups=50(staff)"),
        "{stdout}"
    );
    assert!(stdout.contains("layered"), "{stdout}");
    assert!(stdout.contains("vi-gone"), "{stdout}");
    // `runc run` deletes the container on exit; delete is then a no-op.
    let _ = runc.run(&["delete", "--force", "buildr-bundle-test"]);
    let list = runc.run(&["list", "--quiet"]);
    assert!(
        !text(&list.stdout).contains("buildr-bundle-test"),
        "{}",
        text(&list.stdout)
    );

    // A command given after the directory replaces the image's Cmd.
    let second = env.path("bundle2");
    env.run(&[
        "bundle",
        "unpack",
        "bundle-test:1",
        second.to_str().unwrap(),
        "sh",
        "-c",
        "echo replaced; exit 3",
    ]);
    let out = runc.run(&[
        "run",
        "--bundle",
        second.to_str().unwrap(),
        "buildr-bundle-test",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "replaced");

    // An image that is not there leaves no directory behind.
    let absent = env.path("absent");
    let out = env.run(&[
        "bundle",
        "unpack",
        "no-such-image:1",
        absent.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        !absent.exists(),
        "a failed unpack left {}",
        absent.display()
    );
}

#[test]
fn buildr_runs_a_bundle_unpacked_by_umoci() {
    let test = "buildr_runs_a_bundle_unpacked_by_umoci";
    if !prerequisites(test, &["skopeo", "umoci"]) {
        return;
    }
    let env = Env::new();
    let archive = env.path("image.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), IMAGE]);
    let layout = env.path("layout");
    let out = tool(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:bb", layout.display()),
        ],
    );
    check(&out, "skopeo copy");
    let bundle = env.path("bundle");
    let out = tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:bb", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    check(&out, "umoci unpack");

    let config_path = bundle.join("config.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let write_config = |args: &[&str], edit: &dyn Fn(&mut serde_json::Value)| {
        let mut config = original.clone();
        config["process"]["args"] = serde_json::json!(args);
        config["process"]["terminal"] = false.into();
        edit(&mut config);
        std::fs::write(&config_path, config.to_string()).unwrap();
    };

    write_config(
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; echo $(hostname); echo written > /from-bundle; exit 42",
        ],
        &|c| c["hostname"] = "umoci-box".into(),
    );
    let out = env.run(&["bundle", "run", bundle.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(42), "{stdout}\n{stderr}");
    assert_eq!(stdout, "out\numoci-box\n", "{stderr}");
    assert!(stderr.contains("err\n"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/from-bundle")).unwrap(),
        "written\n",
        "writes land in the bundle's rootfs"
    );
    // The sandbox's mountpoints do not stay behind in the rootfs.
    assert!(
        !bundle.join("rootfs/etc/resolv.conf").exists(),
        "mountpoint left in the rootfs"
    );

    // Read-only root, a bind mount from the bundle and a tmpfs.
    std::fs::create_dir(bundle.join("shared")).unwrap();
    std::fs::write(bundle.join("shared/in"), "from the host\n").unwrap();
    write_config(
        &[
            "sh",
            "-c",
            "cat /mnt/in; echo t > /scratch/t && echo tmpfs-ok; touch /nope 2>/dev/null || echo ro-root",
        ],
        &|c| {
            c["root"]["readonly"] = true.into();
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(serde_json::json!({
                "destination": "/mnt", "type": "bind", "source": "shared", "options": ["rbind", "ro"]
            }));
            mounts.push(serde_json::json!({
                "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
            }));
        },
    );
    let out = env.run(&["bundle", "run", bundle.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_eq!(stdout, "from the host\ntmpfs-ok\nro-root\n");

    // A field that matters for safety is named; an unknown namespace fails.
    write_config(&["true"], &|c| {
        c["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"});
    });
    let out = env.run(&["bundle", "run", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning") && text(&out.stderr).contains("linux.seccomp"),
        "{}",
        text(&out.stderr)
    );
    write_config(&["true"], &|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "bogus"}));
    });
    let out = env.run(&["bundle", "run", bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("config.json") && text(&out.stderr).contains("bogus"),
        "{}",
        text(&out.stderr)
    );
}

fn prerequisites(test: &str, tools: &[&str]) -> bool {
    need_root(test) && need_tools(test, &[&["/bin/busybox"], tools].concat())
}
