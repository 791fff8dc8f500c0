//! `buildr history`: docker's columns, `<missing>` under the newest row,
//! the layers' uncompressed sizes, `-q`, `--no-trunc`, `-H=false` and
//! `--format`.

use crate::container_common::{Env, IMAGE, prerequisites};

#[test]
fn history_lists_steps_newest_first_with_layer_sizes() {
    if !prerequisites("history_lists_steps_newest_first_with_layer_sizes") {
        return;
    }
    let env = Env::new();
    let context = env.dir.path().join("ctx");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("blob"), vec![b'x'; 250_000]).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nENV GREETING=hello\nCOPY blob /blob\n\
             RUN echo 'a rather long shell command that docker cuts at 45 columns' > /note\n"
        ),
    )
    .unwrap();
    env.ok(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "hist:1",
        context.to_str().unwrap(),
    ]);
    let id = env.ok(&["images", "-q", "hist:1"]).trim().to_owned();

    let table = env.ok(&["history", "hist:1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"],
        "{table}"
    );
    assert!(
        lines[1].starts_with(&id),
        "the newest row is the image:\n{table}"
    );
    assert!(
        lines[2..].iter().all(|l| l.starts_with("<missing>")),
        "{table}"
    );
    assert!(lines[1].contains("…"), "CREATED BY is cut:\n{table}");
    assert!(lines[1].contains("ago"), "{table}");

    let rows = env.ok(&[
        "history",
        "--no-trunc",
        "-H=false",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.CreatedSince}}",
    ]
    .iter()
    .copied()
    .chain(["hist:1"])
    .collect::<Vec<_>>());
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
    // RUN, COPY, ENV, then busybox's own entries.
    assert!(rows[0][0].starts_with("sha256:"), "{rows:?}");
    assert!(rows[0][1].contains("docker cuts at 45 columns"), "{rows:?}");
    let note = "a rather long shell command that docker cuts at 45 columns\n";
    assert_eq!(
        rows[0][2],
        note.len().to_string(),
        "the RUN layer holds /note: {rows:?}"
    );
    assert!(rows[1][1].contains("COPY blob /blob"), "{rows:?}");
    assert_eq!(rows[1][2], "250000", "{rows:?}");
    assert!(rows[2][1].contains("ENV GREETING=hello"), "{rows:?}");
    assert_eq!(rows[2][2], "0", "{rows:?}");
    assert!(
        rows[0][3].contains('T') && !rows[0][3].contains("ago"),
        "{rows:?}"
    );
    // The busybox layer: as big as `inspect` says the base image is.
    let base_size = env.ok(&["inspect", "--format", "{{.Size}}", IMAGE]);
    let layered: u64 = rows.iter().map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert_eq!(
        layered,
        base_size.trim().parse::<u64>().unwrap() + 250_000 + note.len() as u64
    );

    let quiet = env.ok(&["history", "-q", "hist:1"]);
    let quiet: Vec<&str> = quiet.lines().collect();
    assert_eq!(quiet.len(), rows.len());
    assert_eq!(quiet[0], id);
    assert!(quiet[1..].iter().all(|l| *l == "<missing>"), "{quiet:?}");

    let json = env.ok(&["history", "--format", "{{json .}}", "hist:1"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    for key in [
        "Comment",
        "CreatedAt",
        "CreatedBy",
        "CreatedSince",
        "ID",
        "Size",
    ] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    let err = env.fails(&["history", "nosuch:1"]);
    assert!(err.contains("no such image: nosuch:1"), "{err}");
}
