//! How a build's layers are written: `-o ...,compression=,compression-level=`
//! and `SOURCE_DATE_EPOCH` change the layers, so they key the cache apart
//! from a default build without disturbing its records.

use std::path::Path;
use std::process::Command;

use crate::build_common::Env;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_buildr");
const SDE: &[(&str, &str)] = &[("SOURCE_DATE_EPOCH", "1700000000")];

fn build(
    env: &Env,
    ctx: &Path,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> crate::build_common::Build {
    let mut cmd = Command::new(BIN);
    cmd.arg("--root").arg(env.root());
    cmd.args(["build", "--progress", "json", "-t", "layers:test"]);
    cmd.args(args).arg(ctx);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let build = crate::build_common::Build {
        output: cmd.output().expect("run buildr"),
    };
    assert!(
        build.output.status.success(),
        "build {args:?} failed:\n{}",
        build.stderr()
    );
    build
}

fn ran_the_run_step(build: &crate::build_common::Build) -> bool {
    build.steps("started").iter().any(|s| s.contains("RUN"))
}

/// The manifest of `layers:test`, from an OCI archive `buildr save` writes.
fn manifest(env: &Env) -> Value {
    let dir = tempfile::tempdir_in(env.dir.path()).unwrap();
    let tar = dir.path().join("image.tar");
    let out = env.buildr(&[
        "save",
        "--format",
        "oci",
        "-o",
        tar.to_str().unwrap(),
        "layers:test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    buildr_testkit::process::run_tool(
        "tar",
        &[
            "-xf",
            tar.to_str().unwrap(),
            "-C",
            dir.path().to_str().unwrap(),
        ],
    );
    let blob = |digest: &str| {
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = blob_index(dir.path());
    blob(index["manifests"][0]["digest"].as_str().unwrap())
}

fn blob_index(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

fn last_layer_type(env: &Env) -> String {
    let manifest = manifest(env);
    let layers = manifest["layers"].as_array().unwrap();
    layers.last().unwrap()["mediaType"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn layer_options_key_the_cache_apart() {
    let Some(env) = Env::new("layer_options_key_the_cache_apart") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nRUN seq 1 20000 > /numbers\n",
    )
    .unwrap();

    let first = build(&env, &ctx, &[], &[]);
    assert!(ran_the_run_step(&first), "{}", first.stderr());
    assert_eq!(
        last_layer_type(&env),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let again = build(&env, &ctx, &[], &[]);
    assert!(
        !ran_the_run_step(&again),
        "a default rebuild reran: {}",
        again.stderr()
    );

    // SOURCE_DATE_EPOCH clamps the mtimes inside the layer: not the same
    // layer, so not the same cache entry.
    let sde = build(&env, &ctx, &[("SOURCE_DATE_EPOCH", "0")], &[]);
    assert!(
        ran_the_run_step(&sde),
        "SOURCE_DATE_EPOCH reused a default layer"
    );
    let sde_again = build(&env, &ctx, &[("SOURCE_DATE_EPOCH", "0")], &[]);
    assert!(!ran_the_run_step(&sde_again), "{}", sde_again.stderr());

    // Another compression: layers of that media type.
    let zstd = build(&env, &ctx, &[], &["-o", "type=image,compression=zstd"]);
    assert!(ran_the_run_step(&zstd), "zstd reused a gzip layer");
    assert_eq!(
        last_layer_type(&env),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let plain = build(
        &env,
        &ctx,
        &[],
        &["-o", "type=image,compression=uncompressed"],
    );
    assert!(ran_the_run_step(&plain));
    assert_eq!(
        last_layer_type(&env),
        "application/vnd.oci.image.layer.v1.tar"
    );

    // None of that disturbed the default build's records.
    let default = build(&env, &ctx, &[], &[]);
    assert!(!ran_the_run_step(&default), "{}", default.stderr());
    // Its layer is kept as a snapshot and compressed for the archive,
    // unless the uncompressed build made the very same layer (same diff
    // id, the RUN within the same second): then that stored blob serves.
    let archived = last_layer_type(&env);
    assert!(
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar"
        ]
        .contains(&archived.as_str()),
        "{archived}"
    );

    // A bad value names itself.
    let out = env.buildr(&[
        "build",
        "-o",
        "type=image,compression=lz4",
        ctx.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("compression \"lz4\""), "{stderr}");
}

/// A built layer blob swapped on disk for other bytes of the same size:
/// `verify` names it, `verify --repair` removes it and the records that
/// named it, and the next build makes the same layer again (the same bytes:
/// `SOURCE_DATE_EPOCH` makes the rebuild reproducible).
#[test]
fn a_swapped_layer_blob_is_repaired_by_a_rebuild() {
    let Some(env) = Env::new("a_swapped_layer_blob_is_repaired_by_a_rebuild") else {
        return;
    };
    let ctx = env.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\nRUN seq 1 5000 > /numbers\n",
    )
    .unwrap();
    build(&env, &ctx, SDE, &[]);
    let before = manifest(&env);
    let layer = before["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = env
        .root()
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    std::fs::write(&path, vec![b'x'; len]).unwrap();

    let verify = env.buildr(&["verify"]);
    assert!(!verify.status.success());
    let said = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(said.contains(&layer), "verify did not name {layer}: {said}");

    let repair = env.buildr(&["verify", "--repair"]);
    let said = String::from_utf8_lossy(&repair.stdout).into_owned();
    assert!(
        said.contains(&format!("removed corrupt blob {layer}")),
        "{said}"
    );
    assert!(said.contains("removed cache record"), "{said}");
    // The tag still names the layer: reported until it is rebuilt.
    assert!(!repair.status.success(), "{said}");

    let rebuilt = build(&env, &ctx, SDE, &[]);
    assert!(ran_the_run_step(&rebuilt), "{}", rebuilt.stderr());
    assert_eq!(manifest(&env), before, "the rebuild made another image");
    let verify = env.buildr(&["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
