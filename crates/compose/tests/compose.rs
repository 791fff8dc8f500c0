//! The compose model against real files: the fixture project, errors that name
//! file:line:key, include/extends/profiles, and inputs that must never panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use buildr_compose::{Condition, MountKind, Options, Project, load};
use proptest::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/compose")
        .join(name)
}

fn options(dir: &Path) -> Options {
    Options {
        working_dir: dir.to_owned(),
        ..Options::default()
    }
}

fn load_in(dir: &Path, files: &[(&str, &str)]) -> Result<Project, buildr_compose::Error> {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    load(&options(dir))
}

#[test]
fn the_webapp_fixture_resolves_with_override_env_and_profiles() {
    let dir = std::fs::canonicalize(fixture("webapp")).unwrap();
    let project = load(&options(&dir)).unwrap();
    assert_eq!(project.name, "webapp");
    assert_eq!(
        project.services.keys().collect::<Vec<_>>(),
        ["db", "init", "web"]
    );
    assert!(project.disabled.contains_key("debug"));
    let web = &project.services["web"];
    assert_eq!(web.image.as_deref(), Some("webapp-web:1.0"), ".env's TAG");
    let build = web.build.as_ref().unwrap();
    assert_eq!(build.context, dir.join("web").display().to_string());
    assert_eq!(build.args["GREETING"].as_deref(), Some("hello from .env"));
    assert_eq!(
        web.environment["LOG_LEVEL"].as_deref(),
        Some("debug"),
        "override merged"
    );
    assert_eq!(web.environment["DB_HOST"].as_deref(), Some("db"));
    let ports: Vec<_> = web
        .ports
        .iter()
        .map(|p| (p.target, p.published.clone(), p.host_ip.clone()))
        .collect();
    assert_eq!(
        ports,
        [
            (8080, Some("8080".into()), None),
            (9090, Some("9090".into()), Some("127.0.0.1".into()))
        ]
    );
    assert_eq!(
        web.depends_on["init"].condition,
        Condition::ServiceCompletedSuccessfully
    );
    assert_eq!(web.depends_on["db"].condition, Condition::ServiceHealthy);
    assert_eq!(web.labels["app.example/tier"], "prod", "merge key and .env");
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    let db = &project.services["db"];
    assert_eq!(db.command.as_ref().unwrap()[0..2], ["sh", "-c"]);
    assert_eq!(db.volumes[0].kind, MountKind::Volume);
    assert_eq!(
        db.healthcheck.as_ref().unwrap().test,
        ["CMD-SHELL", "test -f /data/state"]
    );
    assert_eq!(db.stop_grace_period.unwrap().to_string(), "1m30s");
    assert_eq!(project.volumes["dbdata"].name, "webapp_dbdata");
    assert_eq!(project.networks["default"].name, "webapp_default");
    assert!(web.networks.contains_key("default"));
    assert_eq!(project.start_order(), ["db", "init", "web"]);
    assert_eq!(project.extensions["x-common"]["restart"], "unless-stopped");

    // The process environment wins over .env; --profile enables debug.
    let mut opts = options(&dir);
    opts.environment = BTreeMap::from([("TAG".to_owned(), "2.0".to_owned())]);
    opts.profiles = vec!["debug".to_owned()];
    let project = load(&opts).unwrap();
    assert_eq!(
        project.services["web"].image.as_deref(),
        Some("webapp-web:2.0")
    );
    assert!(project.services["debug"].tty);
    assert!(project.warnings.is_empty(), "{:?}", project.warnings);
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    image: x\n    ports:\n      - abc\n",
            "compose.yaml:5: services.web.ports[0]: invalid port \"abc\"",
        ),
        (
            "services:\n  web:\n    image: x\n    colour: red\n",
            "compose.yaml:4: services.web.colour: unknown key \"colour\"",
        ),
        (
            "services:\n  web:\n    image: x\n    restart: sometimes\n",
            "compose.yaml:4: services.web.restart: invalid restart policy",
        ),
        (
            "services:\n  web:\n    image: ${NEED:?set NEED}\n",
            "compose.yaml:3: services.web.image: required variable NEED is missing a value: set NEED",
        ),
        (
            "services:\n  web:\n    image: x\n    depends_on: [db]\n",
            "compose.yaml:4: services.web.depends_on: depends on undefined service \"db\"",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes: [data:/d]\n",
            "compose.yaml:4: services.web.volumes: refers to undefined volume \"data\"",
        ),
        (
            "services:\n  web:\n    image: x\n    healthcheck:\n      interval: soon\n",
            "compose.yaml:5: services.web.healthcheck.interval: invalid duration \"soon\"",
        ),
        (
            "services:\n  web:\n    build: .\n    command: echo $ 1\n",
            "compose.yaml:4: services.web.command: invalid interpolation format",
        ),
        (
            "services:\n  web: {image: x}\n  web: {image: y}\n",
            "compose.yaml:3: web: mapping key already defined at line 2",
        ),
        (
            "services:\n  web:\n    image: x\n    profiles: [p]\n  app:\n    image: y\n    depends_on: [web]\n",
            "service \"web\" is required by \"app\" but is disabled",
        ),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let err = load_in(dir.path(), &[("compose.yaml", text)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want),
            "for {text:?}\n got: {err}\nwant: {want}"
        );
    }
}

#[test]
fn files_are_found_upward_and_named_by_name_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("My Project.X");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(
        root.join("docker-compose.yml"),
        "services:\n  a:\n    image: busybox\n",
    )
    .unwrap();
    let project = load(&options(&root.join("sub/deeper"))).unwrap();
    assert_eq!(project.name, "myprojectx");
    // compose.yaml comes before docker-compose.yml.
    std::fs::write(
        root.join("compose.yaml"),
        "services:\n  b:\n    image: busybox\n",
    )
    .unwrap();
    let project = load(&options(&root)).unwrap();
    assert!(project.services.contains_key("b") && !project.services.contains_key("a"));
    let err = load(&options(dir.path())).unwrap_err().to_string();
    assert!(err.contains("no configuration file provided"), "{err}");
}

#[test]
fn several_files_merge_and_dash_p_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "name: first\nservices:\n  s:\n    image: a\n    command: [x]\n    environment: [A=1]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "services:\n  s:\n    command: y z\n    environment: {B: 2}\n",
    )
    .unwrap();
    let mut opts = options(dir.path());
    opts.files = vec!["a.yaml".into(), "b.yaml".into()];
    let project = load(&opts).unwrap();
    assert_eq!(project.name, "first");
    let s = &project.services["s"];
    assert_eq!(s.command.as_deref().unwrap(), ["y", "z"]);
    assert_eq!(s.environment.len(), 2);
    opts.project_name = Some("other".into());
    assert_eq!(load(&opts).unwrap().name, "other");
    opts.project_name = Some("Bad Name".into());
    assert!(load(&opts).is_err());
}

#[test]
fn extends_and_include_resolve_relative_to_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let project = load_in(
        dir.path(),
        &[
            ("lib/base.yaml", "services:\n  base:\n    build: ./ctx\n    environment: {A: base, B: base}\n"),
            ("lib/inc.yaml", "services:\n  extra:\n    image: extra\n    volumes: ['./data:/data']\n    secrets: [key]\nsecrets:\n  key:\n    file: ./key.txt\n"),
            (
                "compose.yaml",
                "include:\n  - lib/inc.yaml\nservices:\n  common:\n    image: c\n    labels: [l=1]\n  app:\n    extends: {file: lib/base.yaml, service: base}\n    environment: {B: app}\n  app2:\n    extends: common\n    user: nobody\n",
            ),
        ],
    )
    .unwrap();
    let app = &project.services["app"];
    assert_eq!(
        app.build.as_ref().unwrap().context,
        dir.path().join("lib/ctx").display().to_string()
    );
    assert_eq!(app.environment["A"].as_deref(), Some("base"));
    assert_eq!(app.environment["B"].as_deref(), Some("app"));
    let app2 = &project.services["app2"];
    assert_eq!(
        (app2.image.as_deref(), app2.user.as_deref()),
        (Some("c"), Some("nobody"))
    );
    assert_eq!(app2.labels["l"], "1");
    let extra = &project.services["extra"];
    assert_eq!(
        extra.volumes[0].source.as_deref(),
        Some(dir.path().join("lib/data").to_str().unwrap())
    );
    assert_eq!(
        project.secrets["key"].file.as_deref(),
        Some(dir.path().join("lib/key.txt").as_path()),
        "an included file's secret file is relative to it"
    );

    let cyclic = tempfile::tempdir().unwrap();
    let err = load_in(
        cyclic.path(),
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: y\n    extends: a\n",
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("circular"), "{err}");
}

#[test]
fn compose_profiles_and_unset_variables_warn() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: x${NOPE}\n    profiles: [one]\n  b:\n    image: y\n",
    )
    .unwrap();
    let mut opts = options(dir.path());
    opts.environment = BTreeMap::from([("COMPOSE_PROFILES".to_owned(), "one".to_owned())]);
    let project = load(&opts).unwrap();
    assert_eq!(project.services["a"].image.as_deref(), Some("x"));
    assert!(
        project
            .warnings
            .iter()
            .any(|w| w.contains("\"NOPE\" variable is not set")),
        "{:?}",
        project.warnings
    );
}

/// Loads `text` as compose.yaml in a fresh directory; only a panic fails.
fn load_text(text: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    let _ = load(&options(dir.path()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        load_text(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..3,
        cuts in proptest::collection::vec((0usize..4000, any::<u8>()), 1..8),
    ) {
        let file = ["webapp/compose.yaml", "kitchen/compose.yaml", "edge/compose.yaml"][which];
        let mut text = std::fs::read(fixture(file)).unwrap();
        for (at, byte) in cuts {
            let at = at % text.len();
            match byte % 3 {
                0 => text[at] = byte,
                1 => { text.remove(at); }
                _ => text.insert(at, b"$:{}[]-&*|>\"' \n#"[usize::from(byte) % 16]),
            }
        }
        load_text(&text);
    }
}

#[test]
fn unused_resources_are_left_out_and_valueless_variables_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let text = "services:\n  a:\n    image: x\n    environment: [FOO, BAR=, HOME_COPY]\n    networks: [n1]\n    command: ''\nnetworks:\n  n1:\n  unused:\nvolumes:\n  unusedvol:\n";
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    let mut opts = options(dir.path());
    opts.environment = BTreeMap::from([("HOME_COPY".to_owned(), "/root".to_owned())]);
    let project = load(&opts).unwrap();
    assert_eq!(project.networks.keys().collect::<Vec<_>>(), ["n1"]);
    assert!(project.volumes.is_empty());
    let a = &project.services["a"];
    assert_eq!(a.environment["FOO"], None);
    assert_eq!(a.environment["BAR"].as_deref(), Some(""));
    assert_eq!(a.environment["HOME_COPY"].as_deref(), Some("/root"));
    assert_eq!(a.command.as_deref(), Some(&[][..]));
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{a: ", "- "] {
        let text = open.repeat(200_000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), &text).unwrap();
        let err = load(&options(dir.path())).unwrap_err().to_string();
        assert!(err.contains("compose.yaml:"), "{err}");
    }
    // Aliases nesting deep nodes into each other.
    let mut text = format!("a0: &a0 {}x{}\n", "[".repeat(150), "]".repeat(150));
    for i in 1..100 {
        text.push_str(&format!(
            "a{i}: &a{i} {}*a{}{}\n",
            "[".repeat(150),
            i - 1,
            "]".repeat(150)
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), &text).unwrap();
    let err = load(&options(dir.path())).unwrap_err().to_string();
    assert!(err.contains("nesting too deep"), "{err}");
}

#[test]
fn extensions_are_kept_typed_as_yaml_types_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = "x-top: {a: 1}\nservices:\n  s:\n    image: x\n    x-meta: {count: 3, on: true, ratio: 0.5, tag: \"007\", plain: 007x, none: }\n";
    let project = load_in(dir.path(), &[("compose.yaml", text)]).unwrap();
    assert_eq!(project.extensions["x-top"], serde_json::json!({"a": 1}));
    assert_eq!(
        project.services["s"].extensions["x-meta"],
        serde_json::json!({"count": 3, "on": true, "ratio": 0.5, "tag": "007", "plain": "007x", "none": null})
    );
}

#[test]
fn project_directory_and_compose_project_name_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
    std::fs::write(
        dir.path().join("files/compose.yaml"),
        "name: from-file\nservices:\n  s:\n    image: x\n    volumes: ['./data:/data']\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("elsewhere/.env"),
        "COMPOSE_PROJECT_NAME=from_env\n",
    )
    .unwrap();
    let mut opts = options(dir.path());
    opts.files = vec!["files/compose.yaml".into()];
    let project = load(&opts).unwrap();
    assert_eq!(project.name, "from-file");
    assert_eq!(
        project.services["s"].volumes[0].source.as_deref(),
        Some(dir.path().join("files/data").to_str().unwrap())
    );
    // --project-directory moves the base of relative paths and where .env is read.
    opts.project_directory = Some("elsewhere".into());
    let project = load(&opts).unwrap();
    assert_eq!(project.name, "from_env", "COMPOSE_PROJECT_NAME beats name:");
    assert_eq!(
        project.services["s"].volumes[0].source.as_deref(),
        Some(dir.path().join("elsewhere/data").to_str().unwrap())
    );
    // It must be valid as given, as -p must; name: is normalised.
    std::fs::write(
        dir.path().join("elsewhere/.env"),
        "COMPOSE_PROJECT_NAME=From_Env\n",
    )
    .unwrap();
    let err = load(&opts).unwrap_err().to_string();
    assert!(
        err.starts_with("COMPOSE_PROJECT_NAME: invalid project name \"From_Env\""),
        "{err}"
    );
    std::fs::write(dir.path().join("elsewhere/.env"), "").unwrap();
    std::fs::write(
        dir.path().join("files/compose.yaml"),
        "name: My_App\nservices:\n  s:\n    image: x\n",
    )
    .unwrap();
    assert_eq!(load(&opts).unwrap().name, "my_app");
}
