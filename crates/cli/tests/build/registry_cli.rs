//! The real `buildr` binary against Debian's `docker-registry` on
//! 127.0.0.1: push the busybox fixture, check with `skopeo inspect` what
//! arrived, remove and prune it, pull it back (same image id, layers
//! unpacked into snapshots), pull by digest, pull what `skopeo copy` pushed;
//! and login/logout against an htpasswd registry with docker's
//! `config.json`. Under CI=true a missing tool or a non-root run fails;
//! otherwise the test says loudly that it skips.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

use crate::registry_common::Machine as Env;
use buildr_testkit::prereq::{need_root, need_tool};
use buildr_testkit::registry::{REGISTRY_BIN, Registry};
use buildr_testkit::workspace;

fn prerequisites(test: &str) -> bool {
    need_root(test)
        && need_tool(test, REGISTRY_BIN)
        && need_tool(test, "skopeo")
        && need_tool(test, "busybox")
        && need_tool(test, "bash")
}

impl Env {
    /// Runs buildr, returns stdout; panics on failure.
    fn buildr(&self, args: &[&str]) -> String {
        ok(self.try_buildr(args), &format!("buildr {args:?}"))
    }

    /// Runs buildr with `input` on stdin.
    fn buildr_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may refuse and exit before it reads its stdin (login
        // --password-stdin without -u): a broken pipe is its answer, not ours.
        let written = child.stdin.take().unwrap().write_all(input.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    /// Imports the busybox fixture as buildr-fixtures/busybox; its id.
    fn import_busybox(&self) -> String {
        let tar = self.path("busybox-rootfs.tar");
        ok(
            Command::new("bash")
                .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
                .arg(&tar)
                .output()
                .unwrap(),
            "busybox-rootfs.sh",
        );
        let id = self
            .buildr(&["import", tar.to_str().unwrap(), "buildr-fixtures/busybox"])
            .trim()
            .to_owned();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
        id
    }

    fn inspect(&self, image: &str) -> Value {
        let doc: Value = serde_json::from_str(&self.buildr(&["inspect", image])).unwrap();
        doc[0].clone()
    }

    fn image_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .buildr(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect();
        ids.dedup();
        ids
    }

    fn blob_count(&self) -> usize {
        fs::read_dir(self.path("root/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
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

fn skopeo(args: &[&str]) -> String {
    ok(
        Command::new("skopeo").args(args).output().unwrap(),
        &format!("skopeo {args:?}"),
    )
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn push_inspect_prune_pull_round_trip() {
    let test = "push_inspect_prune_pull_round_trip";
    if !prerequisites(test) {
        return;
    }
    let Some(registry) = Registry::start(test, None) else {
        return;
    };
    let env = Env::new();
    let id = env.import_busybox();
    let original = env.inspect(&id);
    let diff_id = original["RootFS"]["Layers"][0].as_str().unwrap().to_owned();
    let name = format!("{}/x:v1", registry.addr);
    env.buildr(&["tag", "buildr-fixtures/busybox", &name]);

    // Push: docker's lines, the one layer uploaded.
    let out = env.buildr(&["push", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{}/x]", registry.addr),
        "{out}"
    );
    assert_eq!(lines_with(&out, ": Preparing").len(), 1, "{out}");
    assert_eq!(lines_with(&out, ": Pushed").len(), 1, "{out}");
    let last: Vec<&str> = lines.last().unwrap().split(' ').collect();
    assert_eq!(
        (last[0], last[1], last[3]),
        ("v1:", "digest:", "size:"),
        "{out}"
    );
    let digest = last[2].to_owned();
    let size: u64 = last[4].parse().unwrap();
    assert_eq!(
        original["Descriptor"]["digest"], digest,
        "the pushed manifest is the stored one"
    );

    // A second push finds the layer there; -q prints only the name.
    let out = env.buildr(&["push", &name]);
    assert_eq!(lines_with(&out, ": Layer already exists").len(), 1, "{out}");
    assert!(lines_with(&out, ": Pushed").is_empty(), "{out}");
    assert_eq!(env.buildr(&["push", "-q", &name]), format!("{name}\n"));

    // skopeo sees exactly what the store holds.
    let remote = format!("docker://{name}");
    let inspected: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote])).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    assert_eq!(raw.len() as u64, size);
    let config: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        &remote,
    ]))
    .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([diff_id]));

    // Remove everything locally.
    env.buildr(&["rmi", "-f", &id]);
    env.buildr(&["prune", "-a", "-f"]);
    assert!(env.image_ids().is_empty());
    assert_eq!(env.blob_count(), 0);
    let snapshot = env.path(&format!("root/snapshots/{}", diff_id.replace(':', "-")));
    assert!(!snapshot.exists(), "prune left {}", snapshot.display());

    // Pull it back: same image, layers unpacked into their snapshot.
    let out = env.buildr(&["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from x", "{out}");
    assert_eq!(lines_with(&out, ": Pulling fs layer").len(), 1, "{out}");
    assert_eq!(lines_with(&out, ": Download complete").len(), 1, "{out}");
    assert_eq!(lines_with(&out, ": Pull complete").len(), 1, "{out}");
    assert!(
        lines.contains(&format!("Digest: {digest}").as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {name}").as_str()),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), name, "{out}");
    let pulled = env.inspect(&name);
    assert_eq!(pulled["Id"], id.as_str());
    assert_eq!(pulled["RootFS"], original["RootFS"]);
    assert_eq!(pulled["Descriptor"]["digest"], digest.as_str());
    let busybox = snapshot.join("bin/busybox");
    assert!(
        busybox.metadata().is_ok_and(|m| m.len() > 100_000),
        "{} not unpacked",
        busybox.display()
    );

    // Again: nothing to fetch.
    let out = env.buildr(&["pull", &name]);
    assert_eq!(lines_with(&out, ": Already exists").len(), 1, "{out}");
    assert!(lines_with(&out, ": Pull complete").is_empty(), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    assert_eq!(env.buildr(&["pull", "-q", &name]), format!("{name}\n"));

    // By digest, into an empty store: rooted by its digest reference.
    env.buildr(&["rmi", &name]);
    env.buildr(&["prune", "-a", "-f"]);
    assert_eq!(env.blob_count(), 0);
    let by_digest = format!("{}/x@{digest}", registry.addr);
    let out = env.buildr(&["pull", &by_digest]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{digest}: Pulling from x"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), by_digest, "{out}");
    env.buildr(&["prune", "-f"]);
    assert_eq!(env.image_ids(), [id.as_str()]);
    assert_eq!(env.inspect(&id)["Descriptor"]["digest"], digest.as_str());

    // A digest the registry does not have: an error, the store unchanged.
    let blobs = env.blob_count();
    let bad = format!("{}/x@sha256:{}", registry.addr, "0".repeat(64));
    let out = env.try_buildr(&["pull", &bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to pull"), "{stderr}");
    assert_eq!(env.blob_count(), blobs);
    assert_eq!(env.image_ids(), [id.as_str()]);

    // What skopeo pushed (converted to OCI), buildr pulls: same config.
    let copied = format!("{}/y:oci", registry.addr);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "oci",
        &remote,
        &format!("docker://{copied}"),
    ]);
    let out = env.buildr(&["pull", "-q", &copied]);
    assert_eq!(out, format!("{copied}\n"));
    assert_eq!(env.inspect(&copied)["Id"], id.as_str());

    // A name that is not in the store cannot be pushed.
    let out = env.try_buildr(&["push", &format!("{}/nope:1", registry.addr)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image"));
}

#[test]
fn login_logout_with_an_htpasswd_registry() {
    let test = "login_logout_with_an_htpasswd_registry";
    if !prerequisites(test) {
        return;
    }
    let (user, pass) = ("buildr", "s3cret-Pa55word");
    let Some(registry) = Registry::start(test, Some((user, pass))) else {
        return;
    };
    let env = Env::new();
    let id = env.import_busybox();
    let name = format!("{}/private/app:1", registry.addr);
    env.buildr(&["tag", &id, &name]);
    let config_path = env.path("docker/config.json");
    let no_secret = |out: &Output| {
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(pass),
                "the password was printed"
            );
        }
    };

    // Without credentials the registry refuses.
    let out = env.try_buildr(&["push", &name]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no credentials configured"), "{stderr}");

    // A wrong password is refused and not saved.
    let out = env.buildr_stdin(
        &["login", "-u", user, "--password-stdin", &registry.addr],
        "wrong-password\n",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("credentials were refused"), "{stderr}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    assert!(!config_path.exists());

    // Docker's rules: --password-stdin needs -u; no tty, no prompt.
    let out = env.buildr_stdin(&["login", "--password-stdin", &registry.addr], pass);
    assert!(!out.status.success());
    let out = env.try_buildr(&["login", &registry.addr]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("non TTY"));

    let out = env.buildr_stdin(
        &["login", "-u", user, "--password-stdin", &registry.addr],
        &format!("{pass}\n"),
    );
    no_secret(&out);
    assert_eq!(ok(out, "login"), "Login Succeeded\n");
    let mode = fs::metadata(&config_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    let auth = config["auths"][&registry.addr]["auth"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    assert_eq!(decoded, format!("{user}:{pass}").as_bytes());

    // Logged in: push, then pull back into an empty store.
    let out = env.try_buildr(&["push", &name]);
    no_secret(&out);
    let out = ok(out, "push");
    assert_eq!(lines_with(&out, ": Pushed").len(), 1, "{out}");
    let digest = out.lines().last().unwrap().split(' ').nth(2).unwrap();
    let inspected: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{user}:{pass}"),
        &format!("docker://{name}"),
    ]))
    .unwrap();
    assert_eq!(inspected["Digest"], digest);
    env.buildr(&["rmi", "-f", &id]);
    env.buildr(&["prune", "-a", "-f"]);
    assert_eq!(env.blob_count(), 0);
    let out = env.try_buildr(&["pull", &name]);
    no_secret(&out);
    assert!(ok(out, "pull").contains("Pull complete"));
    assert_eq!(env.inspect(&name)["Id"], id.as_str());

    // -p works too, with docker's warning.
    let out = env.try_buildr(&["login", "-u", user, "-p", pass, &registry.addr]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Use --password-stdin"),
        "{out:?}"
    );
    assert_eq!(ok(out, "login -p"), "Login Succeeded\n");

    // Logout forgets, once.
    assert_eq!(
        env.buildr(&["logout", &registry.addr]),
        format!("Removing login credentials for {}\n", registry.addr)
    );
    let config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    assert!(config["auths"].get(&registry.addr).is_none(), "{config}");
    assert_eq!(
        env.buildr(&["logout", &format!("http://{}/v2/", registry.addr)]),
        format!("Not logged in to {}\n", registry.addr)
    );
    env.buildr(&["rmi", &name]);
    let out = env.try_buildr(&["pull", &name]);
    assert!(!out.status.success(), "pulled after logout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no credentials configured"));
}

/// Writes `bytes` as a blob of the OCI layout at `layout`; its digest.
fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let tmp = layout.join("blob.tmp");
    fs::write(&tmp, bytes).unwrap();
    let sum = ok(
        Command::new("sha256sum").arg(&tmp).output().unwrap(),
        "sha256sum",
    );
    let hex = sum.split_whitespace().next().unwrap().to_owned();
    fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
    format!("sha256:{hex}")
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn pull_picks_the_platform_of_an_index_skopeo_pushed() {
    let test = "pull_picks_the_platform_of_an_index_skopeo_pushed";
    if !prerequisites(test) || !need_tool(test, "sha256sum") || !need_tool(test, "tar") {
        return;
    }
    let Some(registry) = Registry::start(test, None) else {
        return;
    };
    let env = Env::new();
    let id = env.import_busybox();

    // An OCI layout holding an index of two images: the fixture for the
    // host, and a copy of it whose config names another architecture.
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
    fs::create_dir_all(&layout).unwrap();
    ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&layout)
            .output()
            .unwrap(),
        "tar -x",
    );
    let top: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let host_manifest = top["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let host_size = top["manifests"][0]["size"].as_u64().unwrap();
    let mut manifest: Value = serde_json::from_slice(&read_blob(&layout, &host_manifest)).unwrap();
    let mut config: Value = serde_json::from_slice(&read_blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let other = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    config["architecture"] = other.into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let other_id = put_blob(&layout, &config_bytes);
    manifest["config"]["digest"] = other_id.clone().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let other_manifest = put_blob(&layout, &manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": other_manifest,
                "size": manifest_bytes.len(),
                "platform": {"architecture": other, "os": "linux"}
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": host_manifest,
                "size": host_size,
                "platform": {"architecture": host_arch(), "os": "linux"}
            }
        ]
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = put_blob(&layout, &index_bytes);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }]
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    let name = format!("{}/multi:1", registry.addr);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{name}"),
    ]);
    env.buildr(&["rmi", "-f", &id]);
    env.buildr(&["prune", "-a", "-f"]);
    assert_eq!(env.blob_count(), 0);

    // The host's platform by default; docker's Digest line names the index.
    let out = env.buildr(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    let pulled = env.inspect(&name);
    assert_eq!(pulled["Id"], id.as_str());
    assert_eq!(pulled["Architecture"], host_arch());

    // --platform picks the other one (its layer is already there).
    let out = env.buildr(&["pull", "--platform", &format!("linux/{other}"), &name]);
    assert_eq!(lines_with(&out, ": Already exists").len(), 1, "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let pulled = env.inspect(&name);
    assert_eq!(pulled["Id"], other_id.as_str());
    assert_eq!(pulled["Architecture"], other);

    // A platform the index does not have: an error listing those it has.
    let out = env.try_buildr(&["pull", "--platform", "linux/s390x", &name]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no image for platform linux/s390x")
            && stderr.contains(&format!("linux/{other}")),
        "{stderr}"
    );
    assert_eq!(env.inspect(&name)["Id"], other_id.as_str());
}

#[test]
fn a_mirror_for_docker_io_serves_an_unqualified_pull() {
    let test = "a_mirror_for_docker_io_serves_an_unqualified_pull";
    if !prerequisites(test) {
        return;
    }
    let Some(registry) = Registry::start(test, None) else {
        return;
    };
    let env = Env::new();
    let id = env.import_busybox();
    let mirrored = format!("{}/library/busybox:latest", registry.addr);
    env.buildr(&["tag", &id, &mirrored]);
    env.buildr(&["push", "-q", &mirrored]);
    env.buildr(&["rmi", "-f", &id]);
    env.buildr(&["prune", "-a", "-f"]);
    assert_eq!(env.blob_count(), 0);

    fs::create_dir_all(env.path("xdg/buildr")).unwrap();
    fs::write(
        env.path("xdg/buildr/config.toml"),
        format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{}\"]\n",
            registry.addr
        ),
    )
    .unwrap();
    let out = env.buildr(&["pull", "busybox"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Using default tag: latest", "{out}");
    assert_eq!(lines[1], "latest: Pulling from library/busybox", "{out}");
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "docker.io/library/busybox:latest",
        "{out}"
    );
    assert_eq!(env.inspect("busybox")["Id"], id.as_str());
}

/// `FROM` pulls a base image missing from the store (also `FROM busybox`
/// through a mirror configured for docker.io), and `build --push` publishes
/// every `-t` name; a second store pulls the pushed image back.
#[test]
fn build_from_the_registry_and_push_the_result() {
    let test = "build_from_the_registry_and_push_the_result";
    if !prerequisites(test) {
        return;
    }
    let Some(registry) = Registry::start(test, None) else {
        return;
    };
    let env = Env::new();
    let id = env.import_busybox();
    let base = format!("{}/library/busybox:latest", registry.addr);
    env.buildr(&["tag", &id, &base]);
    env.buildr(&["push", "-q", &base]);
    env.buildr(&["rmi", "-f", &id]);
    env.buildr(&["prune", "-a", "-f"]);
    assert_eq!(env.blob_count(), 0);

    let ctx = env.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN echo built-from-registry > /hello\n"),
    )
    .unwrap();
    let app = format!("{}/app:v1", registry.addr);
    let out = env.try_buildr(&[
        "build",
        "--progress=plain",
        "--push",
        "-t",
        &app,
        ctx.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = ok(out, "build --push");
    assert!(stdout.contains("v1: digest: sha256:"), "{stdout}");
    // The pull done while planning is reported by the FROM step.
    let from_step = stderr
        .lines()
        .find(|l| l.contains("resolve ") && l.contains("pulled"))
        .unwrap_or_else(|| panic!("FROM did not report its pull:\n{stderr}"));
    assert!(
        from_step.contains("library/busybox:latest to sha256:"),
        "{from_step}"
    );
    let pushed = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{app}")]);
    let doc: Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(doc["Layers"].as_array().unwrap().len(), 2, "{pushed}");

    // A mirror for docker.io serves `FROM busybox` to a fresh store.
    let other = Env::new();
    fs::create_dir_all(other.path("xdg/buildr")).unwrap();
    fs::write(
        other.path("xdg/buildr/config.toml"),
        format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{}\"]\n",
            registry.addr
        ),
    )
    .unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN test -x /bin/busybox\n",
    )
    .unwrap();
    other.buildr(&[
        "build",
        "--progress=plain",
        "-t",
        "via-mirror",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(other.inspect("busybox")["Id"], id.as_str());

    // The pushed image pulls back into the fresh store, with its layer.
    other.buildr(&["pull", "-q", &app]);
    let pulled = other.inspect(&app);
    assert_eq!(pulled["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // `FROM name@sha256:` pins exactly that manifest, in a third store.
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("v1: digest: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("push printed the digest")
        .to_owned();
    let pinned = format!("{}/app@{digest}", registry.addr);
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {pinned}\nRUN cat /hello\n"),
    )
    .unwrap();
    let third = Env::new();
    let out = third.try_buildr(&[
        "build",
        "--progress=plain",
        "-t",
        "pinned",
        ctx.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("built-from-registry"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong = format!("{}/app@sha256:{}", registry.addr, "0".repeat(64));
    fs::write(ctx.join("Dockerfile"), format!("FROM {wrong}\n")).unwrap();
    let out = third.try_buildr(&["build", "--progress=plain", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not be pulled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest's own type, its config's and its layers' media types all
/// in one family: `vnd.oci.` or `vnd.docker.`.
fn assert_one_flavour(manifest: &Value, family: &str, what: &str) {
    let own = manifest["mediaType"]
        .as_str()
        .unwrap_or(if family == "oci" {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            ""
        });
    let mut types = vec![own, manifest["config"]["mediaType"].as_str().unwrap()];
    let layers = manifest["layers"].as_array().unwrap();
    types.extend(layers.iter().map(|l| l["mediaType"].as_str().unwrap()));
    let prefix = format!("application/vnd.{family}.");
    for t in types {
        assert!(t.starts_with(&prefix), "{what}: {t} in {manifest:#}");
    }
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    let layers = manifest["layers"].as_array().unwrap();
    layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// An OCI layout dir: its only manifest's digest and JSON.
fn layout_manifest(layout: &Path) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let blob = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    (
        digest,
        serde_json::from_slice(&fs::read(blob).unwrap()).unwrap(),
    )
}

/// The manifest the store holds for `image`: its digest and JSON.
fn stored_manifest(env: &Env, image: &str) -> (String, Value) {
    let digest = env.inspect(image)["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = env
        .path("root/blobs/sha256")
        .join(&digest["sha256:".len()..]);
    (
        digest,
        serde_json::from_slice(&fs::read(blob).unwrap()).unwrap(),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn untar(tar: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    ok(out, "tar -xf");
}

/// `umoci unpack` of `layout:tag` succeeds and shows busybox and /hello.
fn assert_umoci_unpacks(layout: &Path, tag: &str, what: &str) {
    let bundle = layout.with_extension("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    ok(out, &format!("umoci unpack of {what}"));
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/hello")).unwrap(),
        "hello\n",
        "{what}"
    );
    assert!(bundle.join("rootfs/bin/busybox").exists(), "{what}");
}

/// The busybox fixture pushed by skopeo as a Docker schema 2 image
/// (`REG/base:docker`); returns its layer digests.
fn push_docker_typed_base(env: &Env, registry: &Registry) -> Vec<String> {
    env.import_busybox();
    let archive = env.path("base.docker.tar");
    env.buildr(&[
        "save",
        "--format",
        "docker",
        "-o",
        archive.to_str().unwrap(),
        "buildr-fixtures/busybox",
    ]);
    let base = format!("docker://{}/base:docker", registry.addr);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker-archive:{}", archive.display()),
        &base,
    ]);
    let raw: Value =
        serde_json::from_str(&skopeo(&["inspect", "--raw", "--tls-verify=false", &base])).unwrap();
    assert_one_flavour(&raw, "docker", "the base as skopeo pushed it");
    layer_digests(&raw)
}

/// Builds `FROM REG/base:docker` + one COPY layer as `REG/app:v1`.
fn build_on_docker_base(env: &Env, registry: &Registry, extra: &[&str]) {
    let ctx = env.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("hello"), "hello\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/base:docker\nCOPY hello /hello\n", registry.addr),
    )
    .unwrap();
    let app = format!("{}/app:v1", registry.addr);
    let mut args = vec!["build", "--progress=plain", "-t", &app];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    env.buildr(&args);
}

#[test]
fn image_on_a_docker_typed_base_is_one_flavour_in_every_output() {
    let test = "image_on_a_docker_typed_base_is_one_flavour_in_every_output";
    if !prerequisites(test) || !need_tool(test, "umoci") || !need_tool(test, "tar") {
        return;
    }
    let Some(registry) = Registry::start(test, None) else {
        return;
    };
    let env = Env::new();
    let base_layers = push_docker_typed_base(&env, &registry);
    let exported = env.path("built.oci.tar");
    let dest = format!("type=oci,dest={}", exported.display());
    build_on_docker_base(&env, &registry, &["-o", &dest]);
    let app = format!("{}/app:v1", registry.addr);
    let (local_digest, local) = stored_manifest(&env, &app);
    assert_one_flavour(&local, "oci", "the built manifest in the store");
    let local_digest = Value::from(local_digest);

    // commit: a container of the Docker-typed base becomes an OCI image.
    // The fixture shares the base's config (its id) and goes first: commit
    // finds its base by id.
    env.buildr(&["rmi", "buildr-fixtures/busybox"]);
    let base = format!("{}/base:docker", registry.addr);
    env.buildr(&["create", "--name", "c", &base, "true"]);
    env.buildr(&["commit", "c", "committed:1"]);
    let (_, committed) = stored_manifest(&env, "committed:1");
    assert_one_flavour(&committed, "oci", "the committed manifest");
    assert_eq!(
        layer_digests(&committed)[..base_layers.len()],
        base_layers[..]
    );

    // (a) push: an OCI manifest with OCI descriptors only, the base's
    // blobs unchanged; skopeo copies it to a layout as is, umoci unpacks.
    let out = env.buildr(&["push", &app]);
    let remote = format!("docker://{app}");
    let raw_text = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    let raw: Value = serde_json::from_str(&raw_text).unwrap();
    assert_eq!(
        raw["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{raw:#}"
    );
    assert_one_flavour(&raw, "oci", "the pushed manifest");
    let layers = layer_digests(&raw);
    assert_eq!(layers.len(), base_layers.len() + 1, "{raw:#}");
    assert_eq!(layers[..base_layers.len()], base_layers[..]);
    let pushed: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote])).unwrap();
    // The built layer is kept as its snapshot and compressed on push, as
    // dockerd does: a manifest naming that blob, a new digest, printed.
    assert_ne!(pushed["Digest"], local_digest, "{raw:#}");
    assert_eq!(
        local["layers"][base_layers.len()]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        raw["layers"][base_layers.len()]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(out.contains(pushed["Digest"].as_str().unwrap()), "{out}");
    let copied = env.path("copied");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", copied.display()),
    ]);
    assert_eq!(
        layout_manifest(&copied).0,
        pushed["Digest"].as_str().unwrap()
    );
    assert_umoci_unpacks(&copied, "v1", "skopeo's copy of the pushed image");

    // (b) save --format oci, (d) build -o type=oci: OCI throughout.
    let saved = env.path("saved.oci.tar");
    env.buildr(&[
        "save",
        "--format",
        "oci",
        "-o",
        saved.to_str().unwrap(),
        &app,
    ]);
    for (tar, tag, what) in [
        (&saved, "v1", "save --format oci"),
        (&exported, "v1", "-o type=oci"),
    ] {
        let layout = tar.with_extension("layout");
        untar(tar, &layout);
        let (_, manifest) = layout_manifest(&layout);
        assert_one_flavour(&manifest, "oci", what);
        assert_eq!(layer_digests(&manifest), layers, "{what}");
        assert_umoci_unpacks(&layout, tag, what);
    }

    // (c) save --format docker: Docker types throughout for skopeo.
    let docker = env.path("saved.docker.tar");
    env.buildr(&[
        "save",
        "--format",
        "docker",
        "-o",
        docker.to_str().unwrap(),
        &app,
    ]);
    let archive = format!("docker-archive:{}", docker.display());
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--raw", &archive])).unwrap();
    assert_eq!(
        raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{raw:#}"
    );
    assert_one_flavour(&raw, "docker", "save --format docker");
    let config: Value = serde_json::from_str(&skopeo(&["inspect", "--config", &archive])).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        env.inspect(&app)["RootFS"]["Layers"]
    );
}

/// A manifest from before this conversion existed: OCI, with the base's
/// Docker layer types, loaded from an OCI layout (load keeps it as is).
/// Returns its digest and the manifest it was made from (as saved).
fn load_mixed_manifest(env: &Env, image: &str, n_docker: usize) -> (String, Value) {
    let saved = env.path("clean.oci.tar");
    env.buildr(&[
        "save",
        "--format",
        "oci",
        "-o",
        saved.to_str().unwrap(),
        image,
    ]);
    let layout = env.path("mixed");
    untar(&saved, &layout);
    let (_, mut manifest) = layout_manifest(&layout);
    let saved_manifest = manifest.clone();
    for layer in manifest["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .take(n_docker)
    {
        layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let hex = sha256_hex(&bytes);
    fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["digest"] = format!("sha256:{hex}").into();
    index["manifests"][0]["size"] = bytes.len().into();
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let tar = env.path("mixed.oci.tar");
    let out = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .args(["oci-layout", "index.json", "blobs"])
        .output()
        .unwrap();
    ok(out, "tar -cf");
    env.buildr(&["load", "-i", tar.to_str().unwrap()]);
    (format!("sha256:{hex}"), saved_manifest)
}

#[test]
fn a_mixed_manifest_in_the_store_is_converted_on_push_and_save() {
    let test = "a_mixed_manifest_in_the_store_is_converted_on_push_and_save";
    if !prerequisites(test) || !need_tool(test, "umoci") || !need_tool(test, "tar") {
        return;
    }
    let Some(registry) = Registry::start(test, None) else {
        return;
    };
    let env = Env::new();
    let base_layers = push_docker_typed_base(&env, &registry);
    build_on_docker_base(&env, &registry, &[]);
    let app = format!("{}/app:v1", registry.addr);
    // Saved as OCI: the built layer compressed, every name OCI's.
    let (mixed_digest, clean) = load_mixed_manifest(&env, &app, base_layers.len());
    let (stored_digest, stored) = stored_manifest(&env, &app);
    assert_eq!(stored_digest, mixed_digest, "load keeps the manifest");
    assert_eq!(
        stored["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );

    // push sends the converted manifest: the clean one, a new digest.
    let out = env.buildr(&["push", &app]);
    let remote = format!("docker://{app}");
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &remote,
    ]))
    .unwrap();
    assert_one_flavour(&raw, "oci", "the pushed manifest");
    assert_eq!(raw, clean, "same blobs, OCI names");
    let pushed: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote])).unwrap();
    let pushed_digest = pushed["Digest"].as_str().unwrap();
    assert_ne!(pushed_digest, mixed_digest);
    assert!(
        out.contains(&format!("digest: {pushed_digest} size: ")),
        "{out}"
    );
    let copied = env.path("copied");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", copied.display()),
    ]);
    assert_umoci_unpacks(&copied, "v1", "skopeo's copy of the pushed image");

    // save --format oci converts too; umoci unpacks it.
    let saved = env.path("saved.oci.tar");
    env.buildr(&[
        "save",
        "--format",
        "oci",
        "-o",
        saved.to_str().unwrap(),
        &app,
    ]);
    let layout = env.path("saved");
    untar(&saved, &layout);
    let (digest, manifest) = layout_manifest(&layout);
    assert_eq!(digest, pushed_digest);
    assert_one_flavour(&manifest, "oci", "save --format oci");
    assert_umoci_unpacks(&layout, "v1", "save --format oci");
}
