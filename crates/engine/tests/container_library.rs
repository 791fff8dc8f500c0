//! The container API as an embedder uses it, without the CLI: an image
//! whose config sets Entrypoint, Cmd, Env, WorkingDir, User, Volumes and
//! StopSignal is honoured (and overridden by options the docker way), the
//! output streams to the caller, the log keeps it, `stop` sends the
//! image's StopSignal, and `remove` takes the anonymous volume along.
//!
//! A custom main (`harness = false`): this binary is re-executed as the
//! sandbox's init, so `entry_hook` must run first. Root and
//! busybox are needed: under CI=true their absence fails, otherwise the
//! test says loudly that it skips.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::Duration;

use buildr::Containers;
use buildr::Images;
use buildr::container::AttachOptions;
use buildr::container::CreateOptions;
use buildr::container::LogOptions;
use buildr::container::RemoveOptions;
use buildr::image::ImportOptions;
use buildr_testkit::prereq::{need_root, need_tool};

fn main() -> ExitCode {
    buildr::entry_hook();
    let test = "container_library";
    if !(need_root(test) && need_tool(test, "/bin/busybox")) {
        return ExitCode::SUCCESS;
    }
    let tests: [(&str, Case); 3] = [
        ("image_config_is_honoured", image_config_is_honoured),
        ("options_override_the_image", options_override_the_image),
        (
            "stop_sends_the_image_stop_signal",
            stop_sends_the_image_stop_signal,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let result = std::panic::catch_unwind(|| test(dir.path()));
        match result {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!(
        "test result: {} passed; {failed} failed",
        tests.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One test case: gets a fresh store dir with the images set up.
type Case = fn(&Path);

const CONFIGURED: &str = "configured:latest";

/// Imports the busybox fixture and derives `configured:latest` from it
/// with a full runtime config.
fn setup(dir: &Path) {
    let workspace: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned();
    let tar = dir.join("busybox.tar");
    let status = Command::new("bash")
        .arg(workspace.join("fixtures/base/busybox-rootfs.sh"))
        .arg(&tar)
        .status()
        .unwrap();
    assert!(status.success());
    let images = Images::open(dir.join("root")).unwrap();
    let file = std::fs::File::open(&tar).unwrap();
    images
        .import(file, &ImportOptions::new("bb:latest", "busybox.tar"))
        .unwrap();
    let base = images.resolve("bb:latest").unwrap();
    let store = images.store();
    let mut config = serde_json::to_value(&base.config).unwrap();
    config["config"] = serde_json::json!({
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo $GREETING from $(pwd) as $(id -un); ls -d /data"],
        "Env": ["PATH=/bin:/usr/bin", "GREETING=hello"],
        "WorkingDir": "/home/app",
        "User": "app",
        "Volumes": {"/data": {}},
        "StopSignal": "SIGUSR1",
        "ExposedPorts": {"8080/tcp": {}},
    });
    let config_blob = store
        .put_blob(&serde_json::to_vec(&config).unwrap())
        .unwrap();
    let mut manifest = serde_json::to_value(&base.manifest).unwrap();
    manifest["config"]["digest"] = serde_json::json!(config_blob.digest.to_string());
    manifest["config"]["size"] = serde_json::json!(config_blob.size);
    let manifest_blob = store
        .put_blob(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    store
        .set_tag("docker.io/library/configured:latest", &manifest_blob.digest)
        .unwrap();
}

/// Runs a created container here; returns (exit code, stdout, stderr).
fn run(containers: &Containers, id: &str) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let info = containers
        .run_attached(id, AttachOptions::default(), |stream, chunk| match stream {
            buildr::container::LogStream::Stdout => out.extend_from_slice(chunk),
            buildr::container::LogStream::Stderr => err.extend_from_slice(chunk),
        })
        .unwrap();
    let mut err = String::from_utf8(err).unwrap();
    if let Some(error) = info.error {
        err.push_str(&error);
    }
    (info.exit_code, String::from_utf8(out).unwrap(), err)
}

fn image_config_is_honoured(dir: &Path) {
    let containers = Containers::open(dir.join("root")).unwrap();
    let container = containers
        .create(&CreateOptions {
            image: CONFIGURED.into(),
            ..CreateOptions::default()
        })
        .unwrap();
    let id = container.config.id.clone();
    assert_eq!(container.config.stop_signal, 10, "SIGUSR1");
    assert_eq!(container.config.volumes.len(), 1);
    assert!(container.config.volumes[0].anonymous);
    let (code, out, err) = run(&containers, &id);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "hello from /home/app as app\n/data\n");
    // The log holds what streamed.
    let mut logged = String::new();
    containers
        .logs(&id, LogOptions::default(), |entry| {
            logged.push_str(&entry.log);
            Ok(())
        })
        .unwrap();
    assert_eq!(logged, out);
    let doc = containers.inspect(&id).unwrap();
    assert_eq!(doc.state.status, "exited");
    assert_eq!(doc.mounts[0].destination, std::path::Path::new("/data"));
    let volume = container.config.volumes[0].name.clone();
    assert!(containers.volumes().inspect(&volume).is_ok());
    containers
        .remove(
            &id,
            RemoveOptions {
                force: false,
                volumes: true,
            },
        )
        .unwrap();
    assert!(
        containers.volumes().inspect(&volume).is_err(),
        "anonymous volume kept"
    );
    assert!(containers.list().unwrap().is_empty());

    // -P publishes the exposed ports, on a bridge only.
    let options = CreateOptions {
        image: CONFIGURED.into(),
        publish_all: true,
        ..CreateOptions::default()
    };
    let err = containers.create(&options).unwrap_err().to_string();
    assert!(err.contains("needs a bridge network"), "{err}");
    let container = containers
        .create(&CreateOptions {
            network: buildr::container::NetworkMode::Bridge,
            publish: vec!["127.0.0.1:0:80".parse().unwrap()],
            ..options
        })
        .unwrap();
    // Stored in docker's syntax, canonical: what `-p` would read back.
    assert_eq!(container.config.ports, ["127.0.0.1::80/tcp", "8080/tcp"]);
    containers
        .remove(
            &container.config.id,
            RemoveOptions {
                force: false,
                volumes: true,
            },
        )
        .unwrap();
    assert!(
        "99999:80"
            .parse::<buildr::container::PortMapping>()
            .is_err()
    );
}

fn options_override_the_image(dir: &Path) {
    let containers = Containers::open(dir.join("root")).unwrap();
    let cases: &[(CreateOptions, &str)] = &[
        (
            CreateOptions {
                cmd: vec!["echo $GREETING-x; pwd".into()],
                env: vec![("GREETING".into(), "bye".into())],
                workdir: Some("/tmp".into()),
                ..CreateOptions::default()
            },
            "bye-x\n/tmp\n",
        ),
        (
            CreateOptions {
                entrypoint: Some(String::new()),
                cmd: vec!["/bin/echo".into(), "a".into()],
                ..CreateOptions::default()
            },
            "a\n",
        ),
        (
            CreateOptions {
                entrypoint: Some("id".into()),
                cmd: vec!["-u".into()],
                user: Some("nobody".into()),
                ..CreateOptions::default()
            },
            "65534\n",
        ),
        (
            CreateOptions {
                cmd: vec!["echo $PATH; ls /data".into()],
                mounts: vec![buildr::container::Mount::from_volume_spec("named:/data").unwrap()],
                ..CreateOptions::default()
            },
            "/bin:/usr/bin\n",
        ),
    ];
    for (options, want) in cases {
        let options = CreateOptions {
            image: CONFIGURED.into(),
            ..options.clone()
        };
        let container = containers.create(&options).unwrap();
        let (code, out, err) = run(&containers, &container.config.id);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, *want, ""),
            "{options:?}"
        );
        containers
            .remove(
                &container.config.id,
                RemoveOptions {
                    force: false,
                    volumes: true,
                },
            )
            .unwrap();
    }
    // The named volume replaced the image's anonymous one and outlives rm -v.
    assert!(containers.volumes().inspect("named").is_ok());
    assert_eq!(containers.volumes().list().unwrap().len(), 1);
}

fn stop_sends_the_image_stop_signal(dir: &Path) {
    let containers = Containers::open(dir.join("root")).unwrap();
    let container = containers
        .create(&CreateOptions {
            image: CONFIGURED.into(),
            cmd: vec![
                "trap 'echo usr1; exit 4' USR1; trap 'echo term; exit 5' TERM; echo ready; while :; do sleep 0.1; done"
                    .into(),
            ],
            ..CreateOptions::default()
        })
        .unwrap();
    let id = container.config.id.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let runner = {
        let containers = containers.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let info = containers
                .run_attached(&id, AttachOptions::default(), |_, chunk| {
                    out.extend_from_slice(chunk);
                    if out.ends_with(b"ready\n") {
                        let _ = ready_tx.send(());
                    }
                })
                .unwrap();
            (info, String::from_utf8(out).unwrap())
        })
    };
    ready_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        containers.get(&id).unwrap().state.status,
        buildr::container::Status::Running
    );
    let stopped = containers.stop(&id, Duration::from_secs(10)).unwrap();
    assert_eq!(stopped.state.exit_code, Some(4));
    let (info, out) = runner.join().unwrap();
    assert_eq!(info.exit_code, 4);
    assert_eq!(out, "ready\nusr1\n");
}
