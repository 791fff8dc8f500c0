//! Lowering's data-driven tests: every `test_data/lower/*.Dockerfile` is
//! lowered against canned base images and its dump (`dump.rs`) compared
//! with the `.graph` file next to it. `UPDATE_SNAPSHOTS=1` rewrites the
//! `.graph` files (as the parser's `test_data` does); otherwise a missing
//! one fails.
//!
//! A case sets the build's options in comments: `# lower: target NAME`,
//! `# lower: build-arg NAME=VALUE`, `# lower: no-cache-filter NAME`. A case
//! whose lowering fails has the error as its dump.
//!
//! No pull, no sandbox, no root: base images are [`CannedImages`]. The
//! ops' `Env` needs a store (a RUN's cache mounts and memo live under it),
//! so each case gets an empty one in a temp dir, and a small context dir
//! (bind mounts are resolved in it while lowering).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildr_cache::{Digest, Store};
use buildr_oci::{ContainerConfig, Descriptor, ImageConfig, Manifest};
use buildr_testkit::expect;

use super::base::{BaseImages, ResolvedBase};
use super::{Plan, dump::dump, lower};
use crate::build::cache_io::Imports;
use crate::context::{BuildContext, ContextOptions};
use crate::error::{Error, Result, error_chain};
use crate::image::Image;
use crate::ops::commit::Env;

const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Base images from a fixed table, by normalized reference; anything else
/// is not found.
#[derive(Debug)]
struct CannedImages {
    images: BTreeMap<String, Image>,
}

/// A canned image: its config made from `config`, `n_layers` layers with
/// digests made from `name`.
fn canned(name: &str, config: ContainerConfig, n_layers: usize) -> Image {
    let mut image_config = ImageConfig {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        config: Some(config),
        ..ImageConfig::default()
    };
    image_config.rootfs.kind = "layers".to_owned();
    let mut layers = Vec::new();
    for i in 0..n_layers {
        let layer = format!("{name} layer {i}");
        image_config
            .rootfs
            .diff_ids
            .push(Digest::of(format!("{layer} diff").as_bytes()));
        let size = 1000 * (i as u64 + 1);
        layers.push(Descriptor::new(
            LAYER_TYPE,
            Digest::of(layer.as_bytes()),
            size,
        ));
    }
    let config_digest = Digest::of(format!("{name} config").as_bytes());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.manifest.v1+json".to_owned()),
        artifact_type: None,
        config: Descriptor::new(
            "application/vnd.oci.image.config.v1+json",
            config_digest,
            500,
        ),
        layers,
        subject: None,
        annotations: None,
        extra: serde_json::Map::new(),
    };
    Image {
        id: config_digest,
        manifest_digest: Digest::of(format!("{name} manifest").as_bytes()),
        manifest_size: 600,
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        manifest,
        config: image_config,
        names: vec![name.to_owned()],
    }
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

impl CannedImages {
    /// `busybox`, a builder image with its own env, workdir and user, and an
    /// image with ONBUILD triggers.
    fn new() -> CannedImages {
        let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let busybox = ContainerConfig {
            env: strings(&[path]),
            cmd: strings(&["sh"]),
            ..ContainerConfig::default()
        };
        let builder = ContainerConfig {
            env: strings(&[path, "GOPATH=/go", "CGO_ENABLED=0"]),
            working_dir: Some("/go/src".to_owned()),
            user: Some("builder".to_owned()),
            ..ContainerConfig::default()
        };
        let onbuild = ContainerConfig {
            env: strings(&[path]),
            working_dir: Some("/app".to_owned()),
            on_build: strings(&["COPY . /app/src", "RUN make -C /app/src"]),
            ..ContainerConfig::default()
        };
        let images = [
            ("docker.io/library/busybox:latest", busybox, 2),
            ("example.com/tools/builder:1.0", builder, 3),
            ("example.com/onbuild:1", onbuild, 1),
        ];
        CannedImages {
            images: images
                .into_iter()
                .map(|(name, config, n)| (name.to_owned(), canned(name, config, n)))
                .collect(),
        }
    }
}

impl BaseImages for CannedImages {
    fn resolve(&self, reference: &str, _platform: &str) -> Result<ResolvedBase> {
        let normalized = buildr_oci::Reference::parse(reference)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| reference.to_owned());
        match self.images.get(&normalized) {
            Some(image) => Ok(ResolvedBase {
                image: image.clone(),
                note: None,
            }),
            None => Err(Error::ImageNotFound {
                reference: reference.to_owned(),
            }),
        }
    }
}

/// The build options a case sets in `# lower: ...` comments.
#[derive(Default)]
struct CaseOptions {
    target: Option<String>,
    build_args: BTreeMap<String, String>,
    no_cache_filter: Vec<String>,
}

fn case_options(source: &str) -> CaseOptions {
    let mut options = CaseOptions::default();
    for line in source.lines() {
        let Some(option) = line.strip_prefix("# lower: ") else {
            continue;
        };
        let (key, value) = option.split_once(' ').unwrap_or((option, ""));
        match key {
            "target" => options.target = Some(value.to_owned()),
            "build-arg" => {
                let (name, value) = value.split_once('=').unwrap_or((value, ""));
                options.build_args.insert(name.to_owned(), value.to_owned());
            }
            "no-cache-filter" => options.no_cache_filter.push(value.to_owned()),
            other => panic!("unknown case option {other:?}"),
        }
    }
    options
}

/// The context every case lowers with.
fn make_context(dir: &Path) -> BuildContext {
    for (path, content) in [
        ("Makefile", "all:\n\tcc -o app src/main.c\n"),
        ("src/main.c", "int main(void) { return 0; }\n"),
        ("scripts/build.sh", "#!/bin/sh\nmake\n"),
        ("README.md", "a context\n"),
    ] {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create context dir");
        fs::write(path, content).expect("write context file");
    }
    BuildContext::from_dir(dir, &ContextOptions::default()).expect("open the context")
}

/// Lowers `source` with `options` and dumps the result (or the error).
fn lower_case(name: &str, source: &[u8], options: CaseOptions) -> String {
    let dockerfile = match buildr_parser::parse(name, source) {
        Ok(dockerfile) => dockerfile,
        Err(e) => return format!("parse error\n{e}\n"),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let context_dir = tmp.path().join("context");
    let context = Arc::new(make_context(&context_dir));
    let store = Store::open(tmp.path().join("store")).expect("open a store");
    let base_images = CannedImages::new();
    let plan = Plan {
        dockerfile: &dockerfile,
        build_args: options.build_args,
        target: options.target,
        platform: "linux/amd64".to_owned(),
        // A build's own network: RUN steps without --network join it.
        network: buildr_exec::Network::Join {
            netns: PathBuf::from("/run/netns/build"),
            nameservers: Vec::new(),
        },
        allow_host_network: true,
        secrets: Arc::default(),
        no_cache_filter: options.no_cache_filter,
        base_images: &base_images,
        context,
        env: Env {
            store,
            work: tmp.path().join("work"),
            layer: buildr_oci::LayerOptions::default(),
            caches: Arc::new(Imports::open(&[], false)),
            output_in_errors: true,
        },
    };
    match lower(&plan) {
        Ok(lowered) => dump(&lowered, &plan),
        Err(e) => format!("error {}\n", error_chain(&e)),
    }
}

#[test]
fn lower_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/lower");
    let cases = expect::cases(&dir, "Dockerfile");
    let mut failures = Vec::new();
    for case in &cases {
        let source = fs::read(case).expect("read case");
        let options = case_options(&String::from_utf8_lossy(&source));
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let actual = lower_case(&name, &source, options);
        failures.extend(expect::check(case, "graph", &actual));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Lowering the same case twice gives the same dump: nothing in it varies
/// between runs (temp dirs, the `--no-cache-filter` nonce).
#[test]
fn dumps_are_deterministic() {
    let source = b"FROM busybox AS a\nRUN --mount=type=cache,target=/c --mount=type=bind,source=src,target=/src true\nFROM scratch\nCOPY --from=a / /\n";
    let options = || CaseOptions {
        no_cache_filter: vec!["a".to_owned()],
        ..CaseOptions::default()
    };
    let once = lower_case("Dockerfile", source, options());
    assert_eq!(lower_case("Dockerfile", source, options()), once);
    assert!(once.contains("from <context>/src"), "{once}");
    assert!(once.contains("uncached"), "{once}");
}
