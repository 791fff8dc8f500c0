//! `images --filter` as scripts use it (wildcard references, before/since,
//! labels, ANDed) and docker's SIZE: the uncompressed content of the
//! layers, checked against the busybox fixture's own tar; `ps --size`.

use std::path::Path;

use crate::container_common::{Env, IMAGE, busybox_tar, prerequisites, succeeded};

/// The regular files' bytes in a tar: docker's layer content size.
fn tar_file_bytes(path: &Path) -> u64 {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type().is_file())
        .map(|e| e.header().size().unwrap())
        .sum()
}

/// Builds `tag` from busybox with a label and a file of `bytes` bytes,
/// created at `epoch` (SOURCE_DATE_EPOCH in its environment).
fn build(env: &Env, tag: &str, tier: &str, bytes: usize, epoch: u64) {
    let context = env
        .dir
        .path()
        .join(format!("ctx-{}", tag.replace(['/', ':'], "-")));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("blob"), vec![b'x'; bytes]).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {IMAGE}\nLABEL tier={tier}\nCOPY blob /blob\n"),
    )
    .unwrap();
    let args = [
        "build",
        "--progress",
        "plain",
        "-t",
        tag,
        context.to_str().unwrap(),
    ];
    let out = env
        .command(&args)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .output()
        .unwrap();
    succeeded(&out, &args);
}

#[test]
fn images_filters_and_sizes_answer_scripts() {
    if !prerequisites("images_filters_and_sizes_answer_scripts") {
        return;
    }
    let env = Env::new();
    build(&env, "app:1.0", "web", 100_000, 1_000_000_000);
    build(&env, "app:1.1", "db", 200_000, 1_100_000_000);
    build(&env, "other/tool:2", "web", 300_000, 1_200_000_000);
    let names = |filters: &[&str]| {
        let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        args.extend(filters);
        env.ok(&args).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["--filter", "reference=app:1.*"]),
        ["app:1.1", "app:1.0"]
    );
    // The imported busybox is the newest.
    assert_eq!(
        names(&["--filter", "reference=*/*"]),
        [IMAGE, "other/tool:2"]
    );
    assert_eq!(names(&["app:*"]), ["app:1.1", "app:1.0"]);
    assert_eq!(
        names(&["-f", "label=tier=web"]),
        ["other/tool:2", "app:1.0"]
    );
    assert_eq!(names(&["-f", "label=tier"]).len(), 3);
    assert_eq!(
        names(&["-f", "label=tier=web", "-f", "reference=app*"]),
        ["app:1.0"]
    );
    assert_eq!(
        names(&["-f", "since=app:1.0", "-f", "before=other/tool:2"]),
        ["app:1.1"]
    );
    assert_eq!(names(&["-f", "before=app:1.1"]), ["app:1.0"]);
    assert!(names(&["-f", "dangling=true"]).is_empty());
    let err = env.fails(&["images", "-f", "color=red"]);
    assert!(err.contains("invalid filter \"color=red\""), "{err}");
    let err = env.fails(&["images", "-f", "before=nosuch:1"]);
    assert!(err.contains("no such image: nosuch:1"), "{err}");

    // SIZE is the layers' uncompressed content, as docker's.
    let size = |image: &str| -> u64 {
        env.ok(&["inspect", "--format", "{{.Size}}", image])
            .trim()
            .parse()
            .unwrap()
    };
    let tar = busybox_tar(env.dir.path());
    let busybox = size(IMAGE);
    assert_eq!(
        busybox,
        tar_file_bytes(&tar),
        "busybox: the tar's file bytes"
    );
    assert_eq!(size("app:1.0"), busybox + 100_000);
    assert_eq!(size("other/tool:2"), busybox + 300_000);
    let listed = env.ok(&["images", "--format", "{{.Size}}", "app:1.1"]);
    assert_eq!(listed.trim(), human(busybox + 200_000), "images SIZE");
    // ps --size: the writable layer, and with the image (`virtual`).
    env.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "sized",
        IMAGE,
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /f",
    ]);
    let sized = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.Size}}"]);
    assert_eq!(
        sized.trim(),
        format!(
            "sized {} (virtual {})",
            human(50_000),
            human(busybox + 50_000)
        )
    );
    let table = env.ok(&["ps", "-a", "-s"]);
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.trim_end().ends_with("SIZE")),
        "{table}"
    );
    // A size is recorded once: the records answer without walking again.
    let sizes = env.root().join("sizes");
    assert!(
        std::fs::read_dir(&sizes).unwrap().count() >= 4,
        "{}",
        sizes.display()
    );
}

/// docker's units: `%.3g` of the value in powers of 1000 (`1.23MB`).
fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < units.len() {
        size /= 1000.0;
        unit += 1;
    }
    let decimals = [2usize, 1, 0][usize::from(size >= 10.0) + usize::from(size >= 100.0)];
    let text = format!("{size:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}
