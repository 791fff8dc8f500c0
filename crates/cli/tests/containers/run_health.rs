//! The real `buildr` binary on the busybox fixture, for the container
//! lifecycle around `run`: healthchecks (a passing check turns healthy, a
//! failing one unhealthy after its retries, one sleeping past its timeout
//! is killed and counted as a failure, nothing probes a stopped
//! container; the image's HEALTHCHECK and `--no-healthcheck`), `ps
//! --format`/`--filter`/`-q`, `system prune` (removes exactly what is
//! unused), `rmi` of an image a container uses, and `inspect` finding
//! containers. Root and busybox are needed: under CI=true their absence
//! fails the test, otherwise it says loudly that it skips.

use std::time::{Duration, Instant};

use crate::container_common::{Env, IMAGE, check, prerequisites};

impl Env {
    /// Waits (generously) until `name`'s State.Health.Status is `want`.
    fn wait_health(&self, name: &str, want: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let doc = self.inspect(name);
            if doc["State"]["Health"]["Status"] == want {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {want}: {:#}",
                doc["State"]
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ps -a` lines for the container named `name`.
    fn ps_line(&self, name: &str) -> String {
        let out = self.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}|")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{name} not in ps:\n{out}"))
    }
}

/// Host processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<String> {
    let want = argv.join("\0") + "\0";
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn healthchecks_run_on_schedule_and_stop_with_the_container() {
    let test = "healthchecks_run_on_schedule_and_stop_with_the_container";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let hc_dir = env.dir.path().join("hc");
    std::fs::create_dir(&hc_dir).unwrap();
    let bind = format!("{}:/hc", hc_dir.display());
    let fast = ["--health-interval", "1s", "--health-retries", "2"];
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sleep", "300"]);
        env.ok(&args);
    };
    run(
        "hc-ok",
        &[&["--health-cmd", "echo fine"][..], &fast].concat(),
    );
    run(
        "hc-bad",
        &[&["--health-cmd", "echo failing; exit 3"][..], &fast].concat(),
    );
    // Each probe notes that it ran, then outlives its 1 s timeout.
    run(
        "hc-slow",
        &[
            &[
                "-v",
                &bind,
                "--health-cmd",
                "echo x >> /hc/count; sleep 4747",
            ][..],
            &["--health-timeout", "1s", "--health-retries", "1"],
            &fast[..2],
        ]
        .concat(),
    );
    run(
        "hc-later",
        &["--health-cmd", "true", "--health-interval", "1h"],
    );
    run("hc-none", &[]);

    // Before its first probe a check is starting.
    assert!(
        env.ps_line("hc-later").ends_with("(health: starting)"),
        "{}",
        env.ps_line("hc-later")
    );
    assert_eq!(
        env.inspect("hc-later")["State"]["Health"]["Status"],
        "starting"
    );
    assert!(env.ps_line("hc-none").starts_with("Up "));
    assert!(!env.ps_line("hc-none").contains("health"));
    assert!(env.inspect("hc-none")["State"].get("Health").is_none());

    let ok = env.wait_health("hc-ok", "healthy");
    let health = &ok["State"]["Health"];
    assert_eq!(health["FailingStreak"], 0);
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    assert!(last["Start"].as_str().unwrap().ends_with('Z'), "{last}");
    assert!(env.ps_line("hc-ok").ends_with("(healthy)"));
    assert_eq!(ok["Config"]["Healthcheck"]["Test"][1], "echo fine");
    assert_eq!(ok["Config"]["Healthcheck"]["Interval"], 1_000_000_000i64);

    let bad = env.wait_health("hc-bad", "unhealthy");
    let health = &bad["State"]["Health"];
    assert!(health["FailingStreak"].as_u64().unwrap() >= 2, "{health}");
    let log = health["Log"].as_array().unwrap();
    assert!(log.len() >= 2 && log.len() <= 5, "{health}");
    assert_eq!(log.last().unwrap()["ExitCode"], 3);
    assert_eq!(log.last().unwrap()["Output"], "failing\n");
    assert!(env.ps_line("hc-bad").ends_with("(unhealthy)"));

    let slow = env.wait_health("hc-slow", "unhealthy");
    let last = slow["State"]["Health"]["Log"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["ExitCode"], -1, "{last}");
    assert_eq!(last["Output"], "Health check exceeded timeout (1s)");
    // Probes keep coming: each was killed at its timeout, not after 4747 s.
    let count = || {
        std::fs::read_to_string(hc_dir.join("count"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < 3 {
        assert!(Instant::now() < deadline, "only {} probes ran", count());
        std::thread::sleep(Duration::from_millis(200));
    }

    // Stopped: no more probes, nothing of them left running.
    env.ok(&["stop", "-t", "1", "hc-slow", "hc-ok"]);
    let stopped = env.inspect("hc-slow");
    assert_eq!(stopped["State"]["Status"], "exited");
    assert_eq!(stopped["State"]["Health"]["Status"], "unhealthy");
    assert_eq!(
        env.inspect("hc-ok")["State"]["Health"]["Status"],
        "unhealthy"
    );
    let after_stop = count();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(), after_stop, "a stopped container was probed");
    assert_eq!(processes_running(&["sleep", "4747"]), Vec::<String>::new());

    // The image's HEALTHCHECK, and --no-healthcheck over it.
    let context = env.dir.path().join("ctx");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            // Shell form: run with the image's SHELL, as docker does.
            "FROM {IMAGE}\nSHELL [\"/bin/echo\", \"via-shell\"]\nHEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD from-image\n"
        ),
    )
    .unwrap();
    env.ok(&["build", "-q", "-t", "hc-image:1", context.to_str().unwrap()]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "img-hc",
        "hc-image:1",
        "sleep",
        "300",
    ]);
    let doc = env.wait_health("img-hc", "healthy");
    let log = doc["State"]["Health"]["Log"].as_array().unwrap().clone();
    assert_eq!(log.last().unwrap()["Output"], "via-shell from-image\n");
    assert_eq!(doc["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "img-nohc",
        "--no-healthcheck",
        "hc-image:1",
        "sleep",
        "300",
    ]);
    assert!(env.inspect("img-nohc")["State"].get("Health").is_none());
    assert!(!env.ps_line("img-nohc").contains("health"));
    let err = env.fails(&[
        "run",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("conflicts with --health-*"), "{err}");
    let err = env.fails(&["run", "--health-interval", "soon", IMAGE, "true"]);
    assert!(err.contains("--health-interval"), "{err}");
}

#[test]
fn ps_formats_filters_and_quiet() {
    let test = "ps_formats_filters_and_quiet";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    let up = env.ok(&[
        "run",
        "-d",
        "--name",
        "web-1",
        "--label",
        "tier=front",
        IMAGE,
        "sleep",
        "300",
    ]);
    let up = up.trim().to_owned();
    env.ok(&["run", "--name", "job-1", IMAGE, "true"]);
    let created = env.ok(&["create", "--name", "new-1", IMAGE, "true"]);
    let created = created.trim().to_owned();

    let out = env.ok(&["ps", "--format", "{{.Names}} {{.State}} {{.Image}}"]);
    assert_eq!(out, format!("web-1 running {IMAGE}\n"));
    let out = env.ok(&["ps", "-a", "--format", "{{.ID}}:{{.Names}}:{{.Command}}"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    // Newest first.
    assert_eq!(lines[0], format!("{}:new-1:\"true\"", &created[..12]));
    assert!(
        out.contains(&format!("{}:web-1:\"sleep 300\"", &up[..12])),
        "{out}"
    );

    let out = env.ok(&[
        "ps",
        "-a",
        "--format",
        "table {{.Names}}\\t{{.Status}}\\t{{.Labels}}",
    ]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAMES") && header.contains("STATUS") && header.ends_with("LABELS"),
        "{out}"
    );
    let web = out.lines().find(|l| l.starts_with("web-1")).unwrap();
    assert!(web.contains("Up ") && web.ends_with("tier=front"), "{out}");
    // Columns line up: STATUS starts where each row's status does.
    let column = header.find("STATUS").unwrap();
    assert_eq!(&web[column..column + 3], "Up ", "{out}");

    let out = env.ok(&["ps", "-a", "--format", "{{json .}}"]);
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    let web = docs.iter().find(|d| d["Names"] == "web-1").unwrap();
    assert_eq!(web["State"], "running");
    assert_eq!(web["Labels"], "tier=front");
    assert_eq!(web["ID"], &up[..12]);
    assert!(web["RunningFor"].as_str().unwrap().ends_with(" ago"));
    assert!(web["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"));
    let job = docs.iter().find(|d| d["Names"] == "job-1").unwrap();
    assert!(
        job["Status"].as_str().unwrap().starts_with("Exited (0)"),
        "{job}"
    );

    // -a -q: every id; filters (a status filter shows stopped ones too).
    let ids = env.ok(&["ps", "-a", "-q"]);
    assert_eq!(ids.lines().count(), 3);
    assert!(ids.lines().all(|l| l.len() == 12));
    assert_eq!(
        env.ok(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]),
        "job-1\n"
    );
    assert_eq!(
        env.ok(&[
            "ps",
            "-a",
            "--filter",
            "status=running",
            "--format",
            "{{.Names}}"
        ]),
        "web-1\n"
    );
    assert_eq!(
        env.ok(&["ps", "-a", "-f", "name=new", "--format", "{{.Names}}"]),
        "new-1\n"
    );
    assert_eq!(
        env.ok(&["ps", "-a", "-f", "label=tier=front", "-q"]),
        format!("{}\n", &up[..12])
    );
    assert_eq!(env.ok(&["ps", "-a", "-f", "label=tier=back", "-q"]), "");

    let err = env.fails(&["ps", "--format", "{{.Nope}}"]);
    assert!(
        err.contains("{{.Nope}}") && err.contains("unknown placeholder"),
        "{err}"
    );
    let err = env.fails(&["ps", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter"), "{err}");
}

#[test]
fn system_prune_removes_exactly_what_is_unused() {
    let test = "system_prune_removes_exactly_what_is_unused";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    // An unused image of its own content, from a container's changes.
    env.ok(&[
        "run",
        "--name",
        "maker",
        IMAGE,
        "sh",
        "-c",
        "echo extra > /extra",
    ]);
    env.ok(&["commit", "maker", "extra:1"]);
    env.ok(&["rm", "maker"]);
    // A running container with an anonymous volume and a named one.
    env.ok(&["volume", "create", "named"]);
    let keep = env.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "-v",
        "/data",
        "-v",
        "named:/named",
        IMAGE,
        "sleep",
        "300",
    ]);
    let keep = keep.trim().to_owned();
    let keep_volume = env.inspect("keep")["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/data")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_owned();
    // A stopped container with an anonymous volume.
    env.ok(&[
        "run",
        "--name",
        "gone",
        "-v",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /scratch/z",
    ]);
    let gone = env.inspect("gone");
    let gone_id = gone["Id"].as_str().unwrap().to_owned();
    let gone_volume = gone["Mounts"][0]["Name"].as_str().unwrap().to_owned();

    // Plain: stopped containers only (and dangling content); volumes and
    // tagged images stay.
    let out = env.ok(&["system", "prune", "-f"]);
    assert!(
        out.contains(&format!("Deleted Containers:\n{gone_id}\n")),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert!(!out.contains("Deleted Volumes"), "{out}");
    assert!(!out.contains("untagged"), "{out}");
    let volumes = env.ok(&["volume", "ls", "-q"]);
    assert!(volumes.contains(&gone_volume), "{volumes}");
    assert!(env.ok(&["images"]).contains("extra"));

    // -a --volumes: the unused image and anonymous volume go too.
    let out = env.ok(&["system", "prune", "-a", "--volumes", "-f"]);
    assert!(
        out.contains(&format!("Deleted Volumes:\n{gone_volume}\n")),
        "{out}"
    );
    assert!(out.contains("untagged: extra:1"), "{out}");
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert!(
        !out.contains(&keep_volume) && !out.contains("named"),
        "{out}"
    );
    let reclaimed = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap();
    assert_ne!(reclaimed, "0B", "{out}");

    let images = env.ok(&["images"]);
    assert!(!images.contains("extra"), "{images}");
    assert!(images.contains("buildr-fixtures/busybox"), "{images}");
    let volumes = env.ok(&["volume", "ls", "-q"]);
    assert!(
        volumes.contains(&keep_volume) && volumes.contains("named"),
        "{volumes}"
    );
    assert!(!volumes.contains(&gone_volume), "{volumes}");
    assert_eq!(env.ok(&["ps", "-a", "-q", "--no-trunc"]).trim(), keep);
    // The running container still works, and its image still runs.
    assert_eq!(env.ok(&["exec", "keep", "echo", "alive"]), "alive\n");
    assert_eq!(env.ok(&["run", "--rm", IMAGE, "echo", "again"]), "again\n");
    env.ok(&["verify"]);
}

#[test]
fn rmi_refuses_images_in_use_and_inspect_finds_containers() {
    let test = "rmi_refuses_images_in_use_and_inspect_finds_containers";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--name", "user", IMAGE, "sh", "-c", "echo used"]);
    let user = env.inspect("user");
    let short = &user["Id"].as_str().unwrap()[..12];
    let image_id = user["Image"].as_str().unwrap().to_owned();
    let image_short = &image_id["sha256:".len()..][..12];

    let err = env.fails(&["rmi", IMAGE]);
    assert!(
        err.contains(&format!(
            "conflict: unable to remove repository reference \"{IMAGE}\" (must force) - container {short} is using its referenced image {image_short}"
        )),
        "{err}"
    );
    // Another tag of the same image is not the last reference.
    env.ok(&["tag", IMAGE, "second:1"]);
    assert!(env.ok(&["rmi", "second:1"]).contains("Untagged: second:1"));
    // By id: refused while a container uses it.
    let err = env.fails(&["rmi", &image_id]);
    assert!(
        err.contains(&format!(
            "(must be forced) - image is being used by stopped container {short}"
        )),
        "{err}"
    );

    // An image by id inspects as an image.
    let text = env.ok(&["inspect", &image_id]);
    let docs: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(docs[0]["Id"], image_id.as_str());

    // -f untags; the container's content stays, even through a prune.
    assert!(env.ok(&["rmi", "-f", IMAGE]).contains("Untagged: "));
    assert!(!env.ok(&["images"]).contains("busybox"));
    env.ok(&["prune", "-f"]);
    let out = env.run(&["start", "-a", "user"]);
    check(&out, "start -a after rmi -f and prune");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "used\n");

    // inspect: a container by name, by --type, or refused by --type image.
    let text = env.ok(&["inspect", "user"]);
    let docs: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(docs[0]["Name"], "/user");
    assert_eq!(docs[0]["State"]["Status"], "exited");
    let text = env.ok(&["inspect", "--type", "container", "user"]);
    assert!(text.contains("\"/user\""));
    let err = env.fails(&["inspect", "--type", "image", "user"]);
    assert!(err.contains("no such image: user"), "{err}");
    let err = env.fails(&["inspect", "nothing-like-it"]);
    assert!(err.contains("no such image: nothing-like-it"), "{err}");
}
