//! Shared harness of the `buildr build` end-to-end tests: a fresh store
//! with the busybox base image, the real binary, and checks with umoci and
//! tar (tools nobody here wrote).
//!
//! These tests need root, overlayfs, /bin/busybox (busybox-static), umoci
//! and tar. Without them they skip loudly; under `CI=true` they fail.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use buildr_testkit::prereq::{missing, need_root, need_tools};
use buildr_testkit::process::run_tool;
pub use buildr_testkit::workspace;

pub const BIN: &str = env!("CARGO_BIN_EXE_buildr");

pub fn fixture(case: &str) -> PathBuf {
    workspace().join("fixtures/build").join(case)
}

/// A store with the busybox base image imported.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// `None` (after a loud message) when a prerequisite is missing and
    /// `CI` is not `true`; a panic when it is.
    pub fn new(test: &str) -> Option<Env> {
        let overlay = std::fs::read_to_string("/proc/filesystems")
            .is_ok_and(|fs| fs.contains("overlay"))
            || missing(test, "overlayfs is not available");
        if !(need_root(test) && overlay && need_tools(test, &["/bin/busybox", "umoci", "tar"])) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env { dir };
        let tar = env.dir.path().join("busybox.tar");
        let status = Command::new("bash")
            .arg(workspace().join("fixtures/base/busybox-rootfs.sh"))
            .arg(&tar)
            .status()
            .expect("run busybox-rootfs.sh");
        assert!(status.success(), "busybox-rootfs.sh failed");
        let out = env.buildr(&[
            "import",
            tar.to_str().unwrap(),
            "buildr-fixtures/busybox:latest",
        ]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(env)
    }

    /// A context dir `name` in the test's temp dir holding `dockerfile`.
    pub fn context(&self, name: &str, dockerfile: &str) -> PathBuf {
        let ctx = self.dir.path().join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        ctx
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn buildr(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .expect("run buildr")
    }

    /// `buildr build --progress json ARGS... CONTEXT`; panics on failure.
    pub fn build(&self, context: &Path, args: &[&str]) -> Build {
        let build = self.try_build(context, args);
        assert!(
            build.output.status.success(),
            "build of {} failed:\n{}",
            context.display(),
            build.stderr()
        );
        build
    }

    pub fn try_build(&self, context: &Path, args: &[&str]) -> Build {
        let mut all = vec!["build", "--progress", "json"];
        all.extend_from_slice(args);
        all.push(context.to_str().unwrap());
        Build {
            output: self.buildr(&all),
        }
    }

    /// `buildr save --format FORMAT -o DEST IMAGE`, which must succeed.
    pub fn save(&self, format: &str, image: &str, dest: &Path) {
        let out = self.buildr(&[
            "save",
            "--format",
            format,
            "-o",
            dest.to_str().unwrap(),
            image,
        ]);
        assert!(
            out.status.success(),
            "save of {image} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The image as an OCI layout dir and its unpacked bundle (umoci).
    pub fn unpack(&self, image: &str) -> Unpacked {
        let dir = tempfile::tempdir_in(self.dir.path()).unwrap();
        let tar = dir.path().join("image.tar");
        self.save("oci", image, &tar);
        let layout = dir.path().join("oci");
        std::fs::create_dir(&layout).unwrap();
        run_tool(
            "tar",
            &["-xf", tar.to_str().unwrap(), "-C", layout.to_str().unwrap()],
        );
        let tag = image.rsplit_once(':').map_or("latest", |(_, t)| t);
        let bundle = dir.path().join("bundle");
        run_tool(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:{tag}", layout.display()),
                bundle.to_str().unwrap(),
            ],
        );
        Unpacked {
            dir,
            layout,
            bundle,
        }
    }
}

/// One finished `buildr build`.
pub struct Build {
    pub output: Output,
}

impl Build {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The JSON progress events.
    pub fn events(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).expect("json event"))
            .collect()
    }

    /// Names of the steps with this event (`started`, `cached`, ...).
    pub fn steps(&self, event: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn done(&self) -> Value {
        self.events()
            .into_iter()
            .find(|e| e["event"] == "done")
            .expect("a done event")
    }
}

pub struct Unpacked {
    pub dir: tempfile::TempDir,
    pub layout: PathBuf,
    pub bundle: PathBuf,
}

impl Unpacked {
    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.rootfs().join(path.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("read {path} in the image: {e}"))
    }

    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.layout.join("blobs/sha256").join(hex)
    }

    pub fn manifest(&self) -> Value {
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.layout.join("index.json")).unwrap())
                .unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        serde_json::from_slice(&std::fs::read(self.blob(&digest)).unwrap()).unwrap()
    }

    pub fn config(&self) -> Value {
        let manifest = self.manifest();
        let digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
        serde_json::from_slice(&std::fs::read(self.blob(&digest)).unwrap()).unwrap()
    }

    /// The entries of layer `idx` as `tar -tzf` lists them.
    pub fn layer_entries(&self, idx: usize) -> Vec<String> {
        let manifest = self.manifest();
        let digest = manifest["layers"][idx]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        run_tool("tar", &["-tzf", self.blob(&digest).to_str().unwrap()])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A copy of a fixture the test may change.
pub fn copy_fixture(case: &str, into: &Path) -> PathBuf {
    let dest = into.join(case);
    run_tool(
        "cp",
        &[
            "-a",
            fixture(case).to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    );
    dest
}
