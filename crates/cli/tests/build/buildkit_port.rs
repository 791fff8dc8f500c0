//! BuildKit's Dockerfile frontend tests (moby/buildkit
//! `frontend/dockerfile/*_test.go`), ported as data (issue 12). Each case is
//! built by `buildr build` and checked against its expectations; unless the
//! case says otherwise it is built by the modern BuildKit too (dockerd 26.1,
//! BuildKit 0.13, see `modern_common`) and the SAME expectations are checked
//! against BuildKit's result, which keeps the expectations themselves honest.
//! Both builders start FROM the very same busybox image: Dockerfiles name
//! it `buildr-fixtures/busybox:latest`, and the runner rewrites that name
//! in its scratch copies to one private to the run (`buildr-port-base/...`),
//! tagged in buildr's store and loaded into the daemon.
//!
//! # Layout
//!
//! `fixtures/buildkit-port/<area>/<case>/` holds a `Dockerfile`, the context
//! files, and `case.toml`. `fixtures/buildkit-port/CATALOGUE.md` maps the
//! BuildKit test functions to cases (or says why one is not portable).
//!
//! # `case.toml`
//!
//! ```toml
//! mirrors = "dockerfile_test.go:testCopyWildcards"  # the BuildKit test it mirrors (required)
//! behaviour = "what the case shows, one sentence"   # (required)
//! args = ["--build-arg", "A=1", "--target", "x"]     # extra build flags for both builders
//! setup = "ln foo bar"          # sh run in the scratch copy of the case dir first
//!                               # (`setup` and `change` see $NONCE, unique per run)
//! buildkit = true               # false: not built by the modern BuildKit;
//! why_not_buildkit = "..."      #   then say why (required with buildkit = false)
//! known_difference = ""         # non-empty: buildr is known to differ, and why; the
//!                               # test then asserts that buildr still FAILS the
//!                               # expectations, so the list stays true
//!
//! [[file]]                      # checks on the final image's file tree (any number)
//! path = "/dst/foo"             # alone: the path exists
//! content = "hello\n"           # exact bytes (files up to 64 KiB)
//! contains = "hel"              # a substring of the content
//! absent = true                 # the path does not exist
//! kind = "file"                 # file | dir | symlink
//! mode = "0755"                 # permission bits with setuid/setgid/sticky, octal
//! uid = 0
//! gid = 0
//! link = "target"               # a symlink's target
//!
//! [config]                      # checks on the image config (each key optional)
//! env = ["K=V"]                 # each must be present
//! env_unset = ["K"]             # no entry for these names
//! cmd = ["sh"]                  # exact; [] means unset
//! entrypoint = ["sh"]           # exact; [] means unset
//! shell = ["/bin/sh", "-c"]     # exact; [] means unset
//! onbuild = ["RUN x"]           # exact; [] means unset
//! workdir = "/w"                # exact; "" means unset
//! user = "1000"                 # exact; "" means unset
//! stopsignal = "SIGKILL"        # exact; "" means unset
//! labels = { k = "v" }          # each must be present
//! exposed_ports = ["80/tcp"]    # each must be present
//! volumes = ["/data"]           # each must be present
//! healthcheck = ["CMD", "true"] # the healthcheck's test, exact
//!
//! [error]                       # the build must fail ...
//! contains = ["did you mean"]   # ... with its output containing each phrase
//!
//! [rebuild]                     # after the first build: run `change` (sh, in the
//! change = "echo $NONCE > f"    # context) and build again; then every step
//! cached = ["RUN echo a"]       # titled so (the text after `[stage n/m] ` in
//! not_cached = ["COPY file /"]  # `--progress plain`) must (not) be CACHED
//! ```
//!
//! A case needs at least one of `[[file]]`, `[config]`, `[error]` or
//! `[rebuild]`; unknown keys are an error.
//!
//! # Running
//!
//! Both builders build with `--network none` and `--progress plain`; the
//! image is read back as a docker archive (`buildr save --format docker`,
//! `docker save`) and its layers applied in memory (`compare_common`).
//! Cases run on `BUILDR_PORT_JOBS` threads (default 3).
//! The modern BuildKit is a reference we do not own, on a daemon shared by
//! the run: a case it misses is built once more (fresh copy, new `$NONCE`)
//! and judged wrong only if it misses twice. A `cached` step BuildKit does
//! not report at all counts as cached: it skips steps that later cached
//! steps made unnecessary.
//! `BUILDR_PORT_FILTER=copy/` runs only the cases whose `area/case` contains
//! the text (said aloud; for work on a case, never in CI).
//!
//! Needs what `build_common` needs, plus the modern BuildKit
//! (`scripts/modern-buildkit.sh ensure`). Under `CI=true` a missing
//! prerequisite fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::build_common::{Env, workspace};
use crate::compare_common::{Image, Kind, read_docker_archive};
use crate::modern_common::Docker;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    mirrors: String,
    behaviour: String,
    #[serde(default)]
    args: Vec<String>,
    setup: Option<String>,
    #[serde(default = "yes")]
    buildkit: bool,
    why_not_buildkit: Option<String>,
    #[serde(default)]
    known_difference: String,
    #[serde(default)]
    file: Vec<FileCheck>,
    config: Option<ConfigCheck>,
    error: Option<ErrorCheck>,
    rebuild: Option<Rebuild>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheck {
    path: String,
    content: Option<String>,
    contains: Option<String>,
    #[serde(default)]
    absent: bool,
    kind: Option<String>,
    mode: Option<String>,
    uid: Option<u64>,
    gid: Option<u64>,
    link: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigCheck {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    env_unset: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    shell: Option<Vec<String>>,
    onbuild: Option<Vec<String>>,
    workdir: Option<String>,
    user: Option<String>,
    stopsignal: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    exposed_ports: Vec<String>,
    #[serde(default)]
    volumes: Vec<String>,
    healthcheck: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorCheck {
    contains: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rebuild {
    change: String,
    #[serde(default)]
    cached: Vec<String>,
    #[serde(default)]
    not_cached: Vec<String>,
}

/// A case as found on disk.
struct Found {
    /// `area/case`.
    name: String,
    dir: PathBuf,
    case: Case,
}

fn load_cases(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    let mut areas: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("fixtures/buildkit-port")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    areas.sort();
    for area in areas {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&area)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = format!(
                "{}/{}",
                area.file_name().unwrap().to_string_lossy(),
                dir.file_name().unwrap().to_string_lossy()
            );
            let text = std::fs::read_to_string(dir.join("case.toml"))
                .unwrap_or_else(|e| panic!("{name}/case.toml: {e}"));
            let case: Case =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.toml: {e}"));
            validate(&name, &dir, &case);
            found.push(Found { name, dir, case });
        }
    }
    found
}

/// A case must say what it mirrors and check something.
fn validate(name: &str, dir: &Path, case: &Case) {
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'/'),
        "{name}: case and area names are lowercase, digits and dashes"
    );
    assert!(dir.join("Dockerfile").is_file(), "{name}: no Dockerfile");
    assert!(
        case.mirrors.contains("_test.go:"),
        "{name}: `mirrors` names FILE_test.go:testFunction"
    );
    assert!(!case.behaviour.trim().is_empty(), "{name}: no `behaviour`");
    let checks = !case.file.is_empty()
        || case.config.is_some()
        || case.error.is_some()
        || case.rebuild.is_some();
    assert!(
        checks,
        "{name}: checks nothing (add [[file]], [config], [error] or [rebuild])"
    );
    if let Some(error) = &case.error {
        assert!(
            case.file.is_empty() && case.config.is_none() && case.rebuild.is_none(),
            "{name}: [error] goes alone"
        );
        assert!(
            !error.contains.is_empty(),
            "{name}: [error] needs `contains`"
        );
    }
    if !case.buildkit {
        assert!(
            case.why_not_buildkit
                .as_deref()
                .is_some_and(|w| !w.trim().is_empty()),
            "{name}: buildkit = false needs `why_not_buildkit`"
        );
    }
    if let Some(rebuild) = &case.rebuild {
        assert!(
            !rebuild.cached.is_empty() || !rebuild.not_cached.is_empty(),
            "{name}: [rebuild] names no step"
        );
    }
    for check in &case.file {
        assert!(
            check.path.starts_with('/'),
            "{name}: file path {} is not absolute",
            check.path
        );
        if let Some(mode) = &check.mode {
            assert!(
                u32::from_str_radix(mode, 8).is_ok(),
                "{name}: mode {mode} is not octal"
            );
        }
        if let Some(kind) = &check.kind {
            assert!(
                ["file", "dir", "symlink"].contains(&kind.as_str()),
                "{name}: kind {kind} is not file, dir or symlink"
            );
        }
    }
}

/// One of the two builders.
enum Builder<'a> {
    Buildr(&'a Env),
    BuildKit(&'a Docker),
}

impl Builder<'_> {
    fn name(&self) -> &'static str {
        match self {
            Builder::Buildr(_) => "buildr",
            Builder::BuildKit(_) => "buildkit",
        }
    }

    fn build(&self, context: &Path, tag: &str, flags: &[String]) -> Output {
        let file = context.join("Dockerfile");
        let mut args = vec![
            "--progress",
            "plain",
            "-t",
            tag,
            "-f",
            file.to_str().unwrap(),
        ];
        args.extend(flags.iter().map(String::as_str));
        args.push(context.to_str().unwrap());
        match self {
            Builder::Buildr(env) => {
                let mut all = vec!["build", "--network", "none"];
                all.extend(args);
                env.buildr(&all)
            }
            Builder::BuildKit(docker) => docker.run(&docker.build_args(&args)),
        }
    }

    fn save(&self, tag: &str, archive: &Path) -> Output {
        let dest = archive.to_str().unwrap();
        match self {
            Builder::Buildr(env) => env.buildr(&["save", "--format", "docker", "-o", dest, tag]),
            Builder::BuildKit(docker) => docker.run(&["save", "-o", dest, tag]),
        }
    }

    /// Nothing for now: removing images on the shared containerd-store
    /// daemon while other builds run was seen to lose a snapshot a build
    /// needed ("parent snapshot ... does not exist"); the case tags are
    /// stable names, so leaving them does not pile up.
    fn forget(&self, _tag: &str) {}
}

fn text_of(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A scratch copy of the case directory without `case.toml`, after `setup`.
fn context_for(
    found: &Found,
    scratch: &Path,
    builder: &str,
    base: &str,
    nonce: &str,
) -> Result<PathBuf, String> {
    let dest = scratch.join(builder).join(found.name.replace('/', "--"));
    std::fs::create_dir_all(dest.parent().unwrap()).map_err(|e| e.to_string())?;
    let out = Command::new("cp")
        .arg("-a")
        .arg(&found.dir)
        .arg(&dest)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("cp: {}", String::from_utf8_lossy(&out.stderr)));
    }
    std::fs::remove_file(dest.join("case.toml")).map_err(|e| e.to_string())?;
    crate::modern_common::rewrite_base(&dest, base).map_err(|e| format!("rewrite FROM: {e}"))?;
    if let Some(setup) = &found.case.setup {
        sh_in(&dest, setup, nonce).map_err(|e| format!("setup: {e}"))?;
    }
    Ok(dest)
}

/// A value no earlier run used: the modern daemon keeps its cache between
/// runs, so a change must make content it has never seen.
fn nonce() -> &'static str {
    static NONCE: OnceLock<String> = OnceLock::new();
    NONCE.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}-{}", std::process::id(), now.as_nanos())
    })
}

fn sh_in(dir: &Path, script: &str, nonce: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .args(["-ec", script])
        .env("NONCE", nonce)
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!("`{script}` failed: {}", text_of(&out)))
}

/// Builds `found` with `builder` and returns how the result misses the
/// expectations (empty: it meets them all). `attempt` numbers the tries of
/// one builder at one case: each gets its own scratch copy and `$NONCE`.
fn run_case(
    found: &Found,
    builder: &Builder,
    scratch: &Path,
    base: &str,
    attempt: u32,
) -> Vec<String> {
    let case = &found.case;
    let nonce = format!("{}-{attempt}", nonce());
    let label = format!("{}-{attempt}", builder.name());
    let context = match context_for(found, scratch, &label, base, &nonce) {
        Ok(dir) => dir,
        Err(e) => return vec![format!("context: {e}")],
    };
    let tag = format!("buildr-port/{}:latest", found.name.replace('/', "-"));
    let out = builder.build(&context, &tag, &case.args);
    let text = text_of(&out);
    if let Some(error) = &case.error {
        if out.status.success() {
            builder.forget(&tag);
            return vec!["the build succeeded; it should fail".to_owned()];
        }
        return error
            .contains
            .iter()
            .filter(|phrase| !text.contains(phrase.as_str()))
            .map(|phrase| format!("the error output lacks {phrase:?}:\n{}", tail(&text, 8)))
            .collect();
    }
    if !out.status.success() {
        return vec![format!("the build failed:\n{}", tail(&text, 15))];
    }
    let archive = context.with_extension("tar");
    let saved = builder.save(&tag, &archive);
    if !saved.status.success() {
        builder.forget(&tag);
        return vec![format!("save failed: {}", text_of(&saved))];
    }
    let mut misses = match read_docker_archive(&archive) {
        Ok(image) => {
            let mut misses = check_files(&case.file, &image);
            if let Some(config) = &case.config {
                misses.extend(check_config(config, &image.config["config"]));
            }
            misses
        }
        Err(e) => vec![format!("read the image: {e}")],
    };
    let _ = std::fs::remove_file(&archive);
    if let Some(rebuild) = &case.rebuild {
        misses.extend(check_rebuild(
            rebuild, builder, &context, &tag, &case.args, &nonce,
        ));
    }
    builder.forget(&tag);
    misses
}

fn check_files(checks: &[FileCheck], image: &Image) -> Vec<String> {
    let mut misses = Vec::new();
    for check in checks {
        let path = check.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let mut miss = |what: String| misses.push(format!("{}: {what}", check.path));
        let Some(node) = image.tree.nodes.get(path) else {
            if !check.absent {
                miss("missing".to_owned());
            }
            continue;
        };
        if check.absent {
            miss(format!("present ({:?}), should be absent", node.kind));
            continue;
        }
        let kind = match &node.kind {
            Kind::File { .. } => "file",
            Kind::Dir | Kind::ImplicitDir => "dir",
            Kind::Symlink(_) => "symlink",
            _ => "other",
        };
        if let Some(want) = &check.kind
            && want != kind
        {
            miss(format!("is a {kind}, should be a {want}"));
        }
        let own_entry = node.kind != Kind::ImplicitDir;
        if let Some(mode) = &check.mode {
            let want = u32::from_str_radix(mode, 8).unwrap();
            if !own_entry {
                miss("has no entry of its own to read a mode from".to_owned());
            } else if node.mode != want {
                miss(format!("mode {:04o}, should be {want:04o}", node.mode));
            }
        }
        for (what, got, want) in [("uid", node.uid, check.uid), ("gid", node.gid, check.gid)] {
            if let Some(want) = want
                && (got != want || !own_entry)
            {
                miss(format!("{what} {got}, should be {want}"));
            }
        }
        if check.content.is_some() || check.contains.is_some() {
            match &node.data {
                None => miss(format!("no content to read ({kind})")),
                Some(data) => {
                    let data = String::from_utf8_lossy(data);
                    if let Some(want) = &check.content
                        && data != *want
                    {
                        miss(format!("content {data:?}, should be {want:?}"));
                    }
                    if let Some(want) = &check.contains
                        && !data.contains(want.as_str())
                    {
                        miss(format!("content {data:?} lacks {want:?}"));
                    }
                }
            }
        }
        if let Some(want) = &check.link {
            match &node.kind {
                Kind::Symlink(target) if target == want => {}
                Kind::Symlink(target) => miss(format!("links to {target:?}, should to {want:?}")),
                _ => miss(format!("is a {kind}, should link to {want:?}")),
            }
        }
    }
    misses
}

/// A config field as strings: absent, null and empty are all `[]`.
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn check_config(want: &ConfigCheck, config: &Value) -> Vec<String> {
    let mut misses = Vec::new();
    let env = strings(&config["Env"]);
    for entry in &want.env {
        if !env.contains(entry) {
            misses.push(format!("config Env {env:?} lacks {entry:?}"));
        }
    }
    for name in &want.env_unset {
        let prefix = format!("{name}=");
        if env.iter().any(|e| e.starts_with(&prefix)) {
            misses.push(format!("config Env {env:?} sets {name}"));
        }
    }
    let lists = [
        ("Cmd", &want.cmd),
        ("Entrypoint", &want.entrypoint),
        ("Shell", &want.shell),
        ("OnBuild", &want.onbuild),
    ];
    for (field, want) in lists {
        if let Some(want) = want {
            let got = strings(&config[field]);
            if got != *want {
                misses.push(format!("config {field} {got:?}, should be {want:?}"));
            }
        }
    }
    let texts = [
        ("WorkingDir", &want.workdir),
        ("User", &want.user),
        ("StopSignal", &want.stopsignal),
    ];
    for (field, want) in texts {
        if let Some(want) = want {
            let got = config[field].as_str().unwrap_or_default();
            if got != want {
                misses.push(format!("config {field} {got:?}, should be {want:?}"));
            }
        }
    }
    for (key, value) in &want.labels {
        let got = config["Labels"][key].as_str();
        if got != Some(value.as_str()) {
            misses.push(format!("config label {key} {got:?}, should be {value:?}"));
        }
    }
    for (field, keys) in [
        ("ExposedPorts", &want.exposed_ports),
        ("Volumes", &want.volumes),
    ] {
        for key in keys {
            if config[field].get(key).is_none() {
                misses.push(format!("config {field} {} lacks {key}", config[field]));
            }
        }
    }
    if let Some(test) = &want.healthcheck {
        let got = strings(&config["Healthcheck"]["Test"]);
        if got != *test {
            misses.push(format!(
                "config Healthcheck test {got:?}, should be {test:?}"
            ));
        }
    }
    misses
}

/// Steps of a `--progress plain` output: title (after `[stage n/m] `) and
/// whether it was CACHED.
fn plain_steps(text: &str) -> Vec<(String, bool)> {
    let mut titles: BTreeMap<&str, String> = BTreeMap::new();
    let mut cached: BTreeSet<&str> = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((number, rest)) = rest.split_once(' ') else {
            continue;
        };
        if rest == "CACHED" {
            cached.insert(number);
        } else if rest.starts_with('[')
            && let Some((_, title)) = rest.split_once("] ")
        {
            titles
                .entry(number)
                .or_insert_with(|| title.trim().to_owned());
        }
    }
    titles
        .into_iter()
        .map(|(n, title)| (title, cached.contains(n)))
        .collect()
}

fn check_rebuild(
    rebuild: &Rebuild,
    builder: &Builder,
    context: &Path,
    tag: &str,
    flags: &[String],
    nonce: &str,
) -> Vec<String> {
    if let Err(e) = sh_in(context, &rebuild.change, nonce) {
        return vec![format!("rebuild change: {e}")];
    }
    let out = builder.build(context, tag, flags);
    let text = text_of(&out);
    if !out.status.success() {
        return vec![format!("the rebuild failed:\n{}", tail(&text, 15))];
    }
    let steps = plain_steps(&text);
    let mut misses = Vec::new();
    for (names, want) in [(&rebuild.cached, true), (&rebuild.not_cached, false)] {
        for name in names {
            let states: Vec<bool> = steps
                .iter()
                .filter(|(title, _)| title == name)
                .map(|(_, cached)| *cached)
                .collect();
            // BuildKit does not report a step that cached steps after it made
            // unnecessary (a cached `COPY --from=s0` needs nothing of s0): not
            // run at all is as good as CACHED there. buildr reports every step.
            let skipped = matches!(builder, Builder::BuildKit(_)) && want;
            if states.is_empty() && !skipped {
                let titles: Vec<&str> = steps.iter().map(|(t, _)| t.as_str()).collect();
                misses.push(format!("rebuild: no step {name:?} in {titles:?}"));
            } else if states.iter().any(|cached| *cached != want) {
                let should = if want { "CACHED" } else { "run again" };
                misses.push(format!("rebuild: step {name:?} should be {should}"));
            }
        }
    }
    misses
}

/// The modern BuildKit's misses at `found`. A reference we do not own can
/// flake on a shared daemon (seen: a .dockerignore error reported as
/// "context canceled"), so a miss earns one more try, from a fresh copy with
/// a new `$NONCE`, and only a case missed twice is judged wrong. The first
/// miss is printed either way.
fn buildkit_outcome(found: &Found, docker: &Docker, scratch: &Path, base: &str) -> Vec<String> {
    let builder = Builder::BuildKit(docker);
    let first = run_case(found, &builder, scratch, base, 1);
    if first.is_empty() {
        return first;
    }
    // BuildKit's own races (an error reported as "context canceled" when
    // its context transfer is cancelled first, seen under load) get two
    // more tries; a case BuildKit misses three times is wrong.
    let mut last = first;
    for attempt in 2..=3 {
        eprintln!(
            "case {}: modern BuildKit missed (attempt {}), trying again: {}",
            found.name,
            attempt - 1,
            last.join("; ")
        );
        last = run_case(found, &builder, scratch, base, attempt);
        if last.is_empty() {
            break;
        }
    }
    last
}

/// How one case came out.
struct Outcome {
    name: String,
    buildr: Vec<String>,
    /// `None`: not built by BuildKit.
    buildkit: Option<Vec<String>>,
}

#[test]
fn buildkit_frontend_tests_ported_as_data() {
    let test = "buildkit_frontend_tests_ported_as_data";
    let Some(env) = Env::new(test) else { return };
    let root = workspace().join("fixtures/buildkit-port");
    let mut cases = load_cases(&root);
    assert!(cases.len() >= 5, "too few cases under {}", root.display());
    if let Ok(filter) = std::env::var("BUILDR_PORT_FILTER") {
        cases.retain(|c| c.name.contains(&filter));
        eprintln!(
            "BUILDR_PORT_FILTER={filter}: only {} cases run (never set this in CI)",
            cases.len()
        );
    }
    // Both builders build FROM the same base under a name of this run's own.
    let base = crate::modern_common::private_base_name("buildr-port-base");
    let need_buildkit = cases.iter().any(|c| c.case.buildkit);
    let docker = if need_buildkit {
        let Some(docker) = crate::modern_common::modern(test) else {
            return;
        };
        docker.load_base(&env, &base);
        // Cases that spell the base through ARG expansion in FROM
        // (`buildr-fixtures/${img#xx}:latest`) cannot be rewritten to the
        // private name: the daemon needs the shared one too. They check
        // what the build did, never which base image it was.
        docker.load_base(&env, crate::modern_common::BASE);
        Some(docker)
    } else {
        let out = env.buildr(&["tag", crate::modern_common::BASE, &base]);
        assert!(out.status.success(), "buildr tag: {}", text_of(&out));
        None
    };

    let scratch = tempfile::tempdir_in(env.dir.path()).unwrap();
    let jobs: usize = std::env::var("BUILDR_PORT_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(3);
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let idx = next.fetch_add(1, Ordering::SeqCst);
                    let Some(found) = cases.get(idx) else { break };
                    let buildr = run_case(found, &Builder::Buildr(&env), scratch.path(), &base, 1);
                    let buildkit = match (&docker, found.case.buildkit) {
                        (Some(docker), true) => {
                            Some(buildkit_outcome(found, docker, scratch.path(), &base))
                        }
                        _ => None,
                    };
                    let outcome = Outcome {
                        name: found.name.clone(),
                        buildr,
                        buildkit,
                    };
                    report(&outcome, &found.case);
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });

    if let Some(docker) = &docker {
        docker.forget_base(&base);
    }
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut failures = Vec::new();
    let (mut buildr_pass, mut buildkit_pass, mut buildkit_run, mut known) = (0, 0, 0, 0);
    for outcome in &outcomes {
        let case = &cases.iter().find(|c| c.name == outcome.name).unwrap().case;
        if outcome.buildr.is_empty() {
            buildr_pass += 1;
        }
        if case.known_difference.is_empty() {
            for miss in &outcome.buildr {
                failures.push(format!("{} (buildr): {miss}", outcome.name));
            }
        } else {
            known += 1;
            if outcome.buildr.is_empty() {
                failures.push(format!(
                    "{} (buildr): meets the expectations now; drop known_difference {:?}",
                    outcome.name, case.known_difference
                ));
            }
        }
        if let Some(misses) = &outcome.buildkit {
            buildkit_run += 1;
            if misses.is_empty() {
                buildkit_pass += 1;
            }
            for miss in misses {
                failures.push(format!(
                    "{} (modern BuildKit, so the case is wrong): {miss}",
                    outcome.name
                ));
            }
        }
    }
    eprintln!(
        "{} cases: buildr meets {buildr_pass} ({known} known differences), \
         modern BuildKit meets {buildkit_pass} of the {buildkit_run} it built",
        outcomes.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn report(outcome: &Outcome, case: &Case) {
    let verdict = |misses: &[String]| {
        if misses.is_empty() {
            "ok".to_owned()
        } else {
            format!("MISSES {}", misses.len())
        }
    };
    let buildkit = match &outcome.buildkit {
        Some(misses) => verdict(misses),
        None => "not run".to_owned(),
    };
    let known = if case.known_difference.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", case.known_difference)
    };
    eprintln!(
        "case {}: buildr {}{known}, buildkit {buildkit}",
        outcome.name,
        verdict(&outcome.buildr)
    );
    for miss in &outcome.buildr {
        eprintln!("  buildr: {miss}");
    }
    for miss in outcome.buildkit.iter().flatten() {
        eprintln!("  buildkit: {miss}");
    }
}
