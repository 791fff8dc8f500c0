//! The build context: `.dockerignore` applied by the walker, `COPY` source
//! resolution (wildcards, `..`, symlinks scoped to the root), special and
//! unreadable files, content checksums, the persistent stat cache with its
//! cache-miss explanations, and tar-stream contexts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use buildr::Error;
use buildr::context::BuildContext;
use buildr::context::ChangeKind;
use buildr::context::ContextOptions;
use buildr::context::EntryKind;
use buildr::context::find_dockerignore;
use buildr::context::load_dockerignore;
use buildr::dockerignore::DockerIgnore;

fn write(root: &Path, rel: &str, content: &str) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(&path, content).expect("write");
    path
}

fn open(root: &Path) -> BuildContext {
    BuildContext::from_dir(root, &ContextOptions::default()).expect("open context")
}

fn open_with(root: &Path, ignore: &str) -> BuildContext {
    let opts = ContextOptions {
        dockerignore: Some(
            DockerIgnore::parse(".dockerignore", ignore).expect("valid .dockerignore"),
        ),
        ..ContextOptions::default()
    };
    BuildContext::from_dir(root, &opts).expect("open context")
}

fn open_cached(root: &Path, state: &Path) -> BuildContext {
    let opts = ContextOptions {
        state_root: Some(state.to_path_buf()),
        ..ContextOptions::default()
    };
    BuildContext::from_dir(root, &opts).expect("open context")
}

fn paths(ctx: &BuildContext) -> Vec<String> {
    ctx.walk()
        .expect("walk")
        .into_iter()
        .map(|e| e.path)
        .collect()
}

fn matched(ctx: &BuildContext, sources: &[&str]) -> Vec<String> {
    ctx.resolve(sources)
        .expect("resolve")
        .into_iter()
        .map(|m| m.path)
        .collect()
}

/// Sets a file's mtime `secs` seconds in the past (out of the racy window).
fn age(path: &Path, secs: u64) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for touch");
    file.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .expect("set mtime");
}

#[test]
fn walk_applies_dockerignore_with_exceptions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for rel in [
        "a.txt",
        "b.log",
        "logs/x.log",
        "logs/keep.log",
        "logs/deep/y.txt",
        "node_modules/pkg/index.js",
        "src/main.rs",
        "src/gen/out.o",
        "src/gen/keep.h",
    ] {
        write(root, rel, rel);
    }
    let ctx = open_with(
        root,
        "*.log\nlogs\n!logs/keep.log\nnode_modules\nsrc/gen\n!src/gen/*.h\n",
    );
    assert_eq!(
        paths(&ctx),
        [
            "a.txt",
            "logs",
            "logs/keep.log",
            "src",
            "src/gen",
            "src/gen/keep.h",
            "src/main.rs"
        ]
    );
    let entries = ctx.walk().expect("walk");
    let logs = entries
        .iter()
        .find(|e| e.path == "logs")
        .expect("logs kept for its exception");
    assert!(!logs.included && logs.kind == EntryKind::Dir);
    assert!(
        entries
            .iter()
            .find(|e| e.path == "src")
            .is_some_and(|e| e.included)
    );

    // Excluded entries are not in the context: COPY cannot name them.
    let err = ctx
        .resolve(&["node_modules/pkg/index.js"])
        .expect_err("excluded");
    assert_eq!(
        err.to_string(),
        "failed to compute cache key: \"/node_modules/pkg/index.js\": not found"
    );
    assert_eq!(matched(&ctx, &["logs"]), ["logs"]);
    // `COPY logs` sees only what the exception re-included.
    let logs_sel = ctx.checksum(&["logs"]).expect("checksum");
    assert_eq!(logs_sel.path_count(), 2, "logs and logs/keep.log");
    // A subtree walk lists the same entries as the full walk below it.
    let under: Vec<_> = ctx
        .walk_under("src")
        .expect("walk under")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(under, ["src/gen", "src/gen/keep.h", "src/main.rs"]);
    assert!(ctx.walk_under("node_modules").is_err(), "excluded");
    assert!(ctx.walk_under("a.txt").is_err(), "not a directory");
    // Without the ignore file everything is there.
    assert_eq!(open(root).walk().expect("walk").len(), 15);
}

#[test]
fn wildcard_sources_follow_go_filepath_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for rel in [
        "a.txt",
        "b.txt",
        "c.md",
        "dir/one/x",
        "dir/two/x",
        "dir/three/y",
        "sub/a.txt",
        "src/lib.rs",
    ] {
        write(root, rel, rel);
    }
    let ctx = open(root);
    assert_eq!(
        matched(&ctx, &["*.txt"]),
        ["a.txt", "b.txt"],
        "`*` never crosses `/`"
    );
    assert_eq!(matched(&ctx, &["dir/*/x"]), ["dir/one/x", "dir/two/x"]);
    assert_eq!(matched(&ctx, &["[ab].txt"]), ["a.txt", "b.txt"]);
    assert_eq!(matched(&ctx, &["[^a].*"]), ["b.txt", "c.md"]);
    assert_eq!(matched(&ctx, &["?.md", "d?r"]), ["c.md", "dir"]);
    assert_eq!(matched(&ctx, &["src/"]), ["src"]);
    assert_eq!(matched(&ctx, &["*/a.txt"]), ["sub/a.txt"]);
    assert_eq!(matched(&ctx, &["."]), [""]);
    let kinds: Vec<_> = ctx
        .resolve(&["dir", "a.txt"])
        .expect("resolve")
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(kinds, [EntryKind::Dir, EntryKind::File]);
    let err = ctx.resolve(&["[a-"]).expect_err("bad pattern");
    assert!(err.to_string().contains("syntax error in pattern"), "{err}");

    // A wildcard selection's checksum covers the matched names: renaming a
    // matched file changes it even though the content is the same.
    let before = ctx.checksum(&["*.txt"]).expect("checksum").checksum();
    fs::rename(root.join("b.txt"), root.join("z.txt")).expect("rename");
    let after = ctx.checksum(&["*.txt"]).expect("checksum").checksum();
    assert_ne!(before, after);
}

#[test]
fn missing_source_is_worded_as_buildkit() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "present", "x");
    let ctx = open(dir.path());
    for (source, shown) in [
        ("missing", "/missing"),
        ("/missing", "/missing"),
        ("./dir/../missing/", "/missing"),
        ("present/below", "/present/below"),
        // fsutil walks the directory before the first wildcard: it must exist.
        ("missing/*.txt", "/missing/*.txt"),
    ] {
        let err = ctx.resolve(&[source]).expect_err(source);
        assert!(
            matches!(err, Error::ContextSourceNotFound { .. }),
            "{source}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("failed to compute cache key: \"{shown}\": not found")
        );
        let err = ctx.checksum(&["present", source]).expect_err(source);
        assert_eq!(
            err.to_string(),
            format!("failed to compute cache key: \"{shown}\": not found")
        );
    }
}

/// BuildKit's `AllowEmptyWildcard`: a wildcard matching nothing selects
/// nothing, next to other sources or alone; its checksum still differs from
/// a selection without it only by the pattern, never by an error.
#[test]
fn a_wildcard_may_match_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "foo", "x");
    write(dir.path(), "sub/a.txt", "y");
    let ctx = open(dir.path());
    assert_eq!(matched(&ctx, &["foo", "nomatch*"]), ["foo"]);
    assert!(matched(&ctx, &["nomatch*"]).is_empty());
    assert!(matched(&ctx, &["sub/*.rs"]).is_empty());
    // A file before the wildcard is walked as fsutil does: no match.
    assert!(matched(&ctx, &["foo/*"]).is_empty());
    let with = ctx.checksum(&["foo", "nomatch*"]).expect("checksum");
    assert_eq!(with.matches().len(), 1);
    let alone = ctx.checksum(&["nomatch*"]).expect("checksum");
    assert!(alone.matches().is_empty());
    assert_ne!(with.checksum(), alone.checksum());
}

#[test]
fn dotdot_sources_are_cleaned_inside_the_context() {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("ctx");
    write(&root, "x", "inside");
    write(outer.path(), "secret", "outside");
    let ctx = open(&root);
    assert_eq!(
        matched(&ctx, &["../x"]),
        ["x"],
        "BuildKit treats COPY ../x as x"
    );
    assert_eq!(matched(&ctx, &["../../../x"]), ["x"]);
    assert_eq!(
        ctx.checksum(&["../x"]).expect("checksum").checksum(),
        ctx.checksum(&["x"]).expect("checksum").checksum()
    );
    let err = ctx.resolve(&["../secret"]).expect_err("outside");
    assert_eq!(
        err.to_string(),
        "failed to compute cache key: \"/secret\": not found"
    );
    assert_eq!(matched(&ctx, &[".."]), [""], "`..` is the root");
}

#[test]
fn symlinks_are_copied_as_symlinks_and_never_followed_out() {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("ctx");
    let outside = outer.path().join("outside");
    write(&outside, "secret", "v1");
    write(&outside, "x", "outside x");
    write(&root, "file", "content");
    symlink(outside.join("secret"), root.join("abs_link")).expect("symlink");
    symlink("../outside/secret", root.join("rel_link")).expect("symlink");
    symlink(&outside, root.join("dir_link")).expect("symlink");
    symlink("../../..", root.join("up_link")).expect("symlink");

    let ctx = open(&root);
    let kinds: Vec<_> = ctx
        .walk()
        .expect("walk")
        .into_iter()
        .map(|e| (e.path, e.kind))
        .collect();
    assert!(
        kinds.contains(&("dir_link".into(), EntryKind::Symlink)),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|(p, _)| p.starts_with("dir_link/")),
        "never descends a symlink"
    );

    let before = ctx.checksum(&["."]).expect("checksum").checksum();
    write(&outside, "secret", "v2 changed");
    write(&outside, "new", "more");
    assert_eq!(
        before,
        open(&root).checksum(&["."]).expect("checksum").checksum()
    );

    // Source paths through symlinks resolve inside the root (BuildKit's
    // scoped resolution): `dir_link/x` is `<ctx>/<outside path>/x`, which
    // does not exist, and never the outside file.
    let err = ctx
        .resolve(&["dir_link/x"])
        .expect_err("must not read outside");
    assert!(matches!(err, Error::ContextSourceNotFound { .. }), "{err}");
    assert!(
        ctx.resolve(&["abs_link"]).is_err(),
        "a top-level link is followed, inside the root only"
    );
    assert!(ctx.resolve(&["rel_link"]).is_err());
    // `up_link` climbs to the root and stops there.
    let up = ctx.resolve(&["up_link/file"]).expect("resolve");
    assert_eq!(
        (up[0].path.as_str(), up[0].resolved.as_str()),
        ("up_link/file", "file")
    );
    // Recreate the outside layout inside the root: now the scoped path exists.
    let inner = root.join(outside.strip_prefix("/").expect("absolute"));
    write(&inner, "x", "inside x");
    let hit = ctx.resolve(&["dir_link/x"]).expect("resolve");
    assert_eq!(
        hit[0].resolved,
        format!("{}/x", outside.strip_prefix("/").expect("abs").display())
    );
    let via_link = |ctx: &BuildContext| ctx.checksum(&["dir_link/x"]).expect("checksum").checksum();
    let sum = via_link(&ctx);
    write(&outside, "x", "outside x changed");
    assert_eq!(
        via_link(&open(&root)),
        sum,
        "the outside file is never read"
    );
    write(&inner, "x", "inside x changed");
    assert_ne!(via_link(&open(&root)), sum, "the file inside the root is");

    // A symlink loop is an error naming the path, not a hang.
    symlink("loop_b", root.join("loop_a")).expect("symlink");
    symlink("loop_a", root.join("loop_b")).expect("symlink");
    let err = ctx.resolve(&["loop_a"]).expect_err("loop");
    assert!(
        err.to_string().contains("loop_a") && err.to_string().contains("symbolic links"),
        "{err}"
    );
}

#[test]
fn fifos_are_refused_and_sockets_are_empty_files_to_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "a.txt", "a");
    let fifo = root.join("pipes/fifo");
    fs::create_dir_all(fifo.parent().expect("parent")).expect("mkdir");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let _listener = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("bind socket");

    let ctx = open(root);
    let entries = ctx.walk().expect("walk never opens special files");
    let kinds: Vec<_> = entries.iter().map(|e| (e.path.as_str(), e.kind)).collect();
    assert!(
        kinds.contains(&("pipes/fifo", EntryKind::Fifo)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("sock", EntryKind::Socket)), "{kinds:?}");

    // A COPY that does not need them is fine.
    ctx.checksum(&["a.txt"]).expect("unrelated source");
    let started = Instant::now();
    // A fifo is refused wherever it is met.
    for source in [".", "pipes"] {
        let err = ctx.checksum(&[source]).expect_err(source);
        assert!(matches!(err, Error::ContextSpecialFile { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("named pipe (fifo)")
                && msg.contains(&root.join("pipes/fifo").display().to_string()),
            "{source}: {msg}"
        );
    }
    // As BuildKit, a socket is copied as an empty regular file (never read):
    // it sums as one with its mode.
    fs::set_permissions(root.join("sock"), fs::Permissions::from_mode(0o640)).expect("chmod");
    let sock = ctx.checksum(&["sock"]).expect("a socket is an empty file");
    fs::remove_file(root.join("sock")).expect("rm socket");
    write(root, "sock", "");
    fs::set_permissions(root.join("sock"), fs::Permissions::from_mode(0o640)).expect("chmod");
    let empty = open(root).checksum(&["sock"]).expect("empty file");
    assert_eq!(sock.checksum(), empty.checksum());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "must not block on the fifo"
    );
}

const UNREADABLE_ENV: &str = "BUILDR_TEST_UNREADABLE_CONTEXT";

/// The checks of `unreadable_files_fail_only_when_copied`, run as a user
/// that cannot read `secret` and `closed/`.
fn unreadable_checks(root: &Path) {
    let ctx = open(root);
    let entries = ctx.walk().expect("walk does not read files");
    let closed = entries
        .iter()
        .find(|e| e.path == "closed")
        .expect("closed dir listed");
    assert!(!closed.readable);
    ctx.checksum(&["ok.txt"]).expect("a readable source");
    let err = ctx.checksum(&["secret"]).expect_err("unreadable");
    assert!(
        err.to_string()
            .contains(&root.join("secret").display().to_string()),
        "{err}"
    );
    let err = ctx.checksum(&["closed"]).expect_err("unlistable");
    assert!(
        err.to_string()
            .contains(&root.join("closed").display().to_string()),
        "{err}"
    );
    assert!(ctx.checksum(&["."]).is_err());
}

#[test]
fn unreadable_files_fail_only_when_copied() {
    if let Ok(root) = std::env::var(UNREADABLE_ENV) {
        unreadable_checks(Path::new(&root));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod");
    write(root, "ok.txt", "fine");
    let secret = write(root, "secret", "hidden");
    write(root, "closed/inner", "hidden");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
    fs::set_permissions(root.join("closed"), fs::Permissions::from_mode(0o000)).expect("chmod");
    if !rustix::process::geteuid().is_root() {
        unreadable_checks(root);
        return;
    }
    // Root reads everything: run the checks again in this test binary as
    // an unprivileged user.
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            &buildr_testkit::test_name!(unreadable_files_fail_only_when_copied),
            "--nocapture",
        ])
        .env(UNREADABLE_ENV, root)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run the checks as uid 65534");
    assert!(
        out.status.success(),
        "checks as uid 65534 failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran the test"
    );
}

/// 48 files in `src/modN/fileM.rs`, aged out of the racy window.
fn cached_tree(root: &Path) -> Vec<String> {
    let mut rels = Vec::new();
    for m in 0..6 {
        for f in 0..8 {
            let rel = format!("src/mod{m}/file{f}.rs");
            let path = write(root, &rel, &format!("fn f{m}_{f}() {{}}\n"));
            age(&path, 3600);
            rels.push(rel);
        }
    }
    rels
}

#[test]
fn stat_cache_skips_unchanged_files_and_explains_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    let root = dir.path();
    let rels = cached_tree(root);
    let n = rels.len() as u64;

    let first = open_cached(root, state.path());
    let sel = first.checksum(&["."]).expect("checksum");
    assert_eq!(first.stats().files_hashed, n);
    // Within one build each file is hashed once.
    first.checksum(&["src"]).expect("checksum");
    assert_eq!(first.stats().files_hashed, n);
    let per_file: Vec<_> = rels
        .iter()
        .map(|r| first.checksum(&[r]).expect("checksum").checksum())
        .collect();
    assert_eq!(first.stats().files_hashed, n);
    first.remember(&sel).expect("remember");
    first.save().expect("save");

    // A no-op rerun reads nothing.
    let rerun = open_cached(root, state.path());
    let sel2 = rerun.checksum(&["."]).expect("checksum");
    assert_eq!(
        (rerun.stats().files_hashed, rerun.stats().cache_hits),
        (0, n)
    );
    assert_eq!(sel.checksum(), sel2.checksum());
    assert_eq!(rerun.explain(&sel2), None);
    rerun.save().expect("save");

    // Touch every file: all are read again, nothing changes.
    for rel in &rels {
        age(&root.join(rel), 1800);
    }
    let touched = open_cached(root, state.path());
    let sel3 = touched.checksum(&["."]).expect("checksum");
    assert_eq!(touched.stats().files_hashed, n);
    assert_eq!(
        sel.checksum(),
        sel3.checksum(),
        "mtime is not part of the checksum"
    );
    assert_eq!(touched.explain(&sel3), None);
    touched.save().expect("save");

    // Change one file: exactly one file is read, one checksum differs, and
    // the explanation names it.
    let changed = write(root, "src/mod3/file7.rs", "fn changed() {}\n");
    age(&changed, 900);
    let after = open_cached(root, state.path());
    let sel4 = after.checksum(&["."]).expect("checksum");
    assert_eq!(after.stats().files_hashed, 1);
    assert_ne!(sel.checksum(), sel4.checksum());
    let differing: Vec<_> = rels
        .iter()
        .zip(&per_file)
        .filter(|(r, old)| after.checksum(&[r.as_str()]).expect("checksum").checksum() != **old)
        .map(|(r, _)| r.as_str())
        .collect();
    assert_eq!(differing, ["src/mod3/file7.rs"]);
    let change = after.explain(&sel4).expect("a change");
    assert_eq!(change.kind, ChangeKind::Modified);
    assert_eq!(change.to_string(), "src/mod3/file7.rs changed");
    after.remember(&sel4).expect("remember");

    // A new file is named as added; a mode change is a change.
    write(root, "src/mod0/new.rs", "new");
    let sel5 = open_cached(root, state.path())
        .checksum(&["."])
        .expect("checksum");
    assert_eq!(
        after.explain(&sel5).map(|c| c.to_string()).as_deref(),
        Some("src/mod0/new.rs was added")
    );
    fs::remove_file(root.join("src/mod0/new.rs")).expect("rm");
    fs::set_permissions(
        root.join("src/mod1/file2.rs"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let sel6 = open_cached(root, state.path())
        .checksum(&["."])
        .expect("checksum");
    assert_ne!(sel6.checksum(), sel4.checksum());
    assert_eq!(
        after.explain(&sel6).map(|c| c.to_string()).as_deref(),
        Some("src/mod1/file2.rs changed")
    );
}

#[test]
fn racy_entries_are_not_trusted_by_the_next_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    let root = dir.path();
    age(&write(root, "old", "old"), 3600);
    write(root, "fresh", "just written");
    let first = open_cached(root, state.path());
    first.checksum(&["."]).expect("checksum");
    assert_eq!(first.stats().files_hashed, 2);
    first.save().expect("save");
    let second = open_cached(root, state.path());
    second.checksum(&["."]).expect("checksum");
    assert_eq!(
        (second.stats().files_hashed, second.stats().cache_hits),
        (1, 1),
        "the file modified within the racy window is read again"
    );
}

#[test]
fn corrupt_stat_cache_is_ignored_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    let root = dir.path();
    let n = cached_tree(root).len() as u64;
    let first = open_cached(root, state.path());
    let sum = first.checksum(&["."]).expect("checksum").checksum();
    first.save().expect("save");

    let cache_dir = state.path().join("cache/context-stat");
    let file = fs::read_dir(&cache_dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .expect("a stat cache file");
    let good = fs::read(&file).expect("read cache");
    let corruptions: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        Vec::new(),
        good[..good.len() / 2].to_vec(),
        {
            let mut flipped = good.clone();
            flipped[20] ^= 0xff;
            flipped
        },
    ];
    for bad in corruptions {
        fs::write(&file, &bad).expect("corrupt");
        let ctx = open_cached(root, state.path());
        assert!(ctx.stats().cache_discarded || bad.is_empty());
        assert_eq!(ctx.checksum(&["."]).expect("checksum").checksum(), sum);
        assert_eq!(ctx.stats().files_hashed, n, "everything rehashed");
        ctx.save().expect("save rebuilds the cache");
        let again = open_cached(root, state.path());
        again.checksum(&["."]).expect("checksum");
        assert_eq!(
            (again.stats().files_hashed, again.stats().cache_discarded),
            (0, false)
        );
    }
    // No temp files are left next to the cache.
    let leftovers: Vec<_> = fs::read_dir(&cache_dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".bin"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn tar_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, content.as_bytes())
            .expect("append");
    }
    builder.into_inner().expect("finish tar")
}

#[test]
fn tar_stream_context_is_unpacked_privately() {
    let temp_parent = tempfile::tempdir().expect("tempdir");
    let opts = ContextOptions {
        temp_dir: Some(temp_parent.path().to_path_buf()),
        ..ContextOptions::default()
    };
    let tar = tar_bytes(&[
        ("Dockerfile", "FROM scratch\nCOPY . /\n"),
        (".dockerignore", "*.tmp\n"),
        ("app/main.rs", "fn main() {}\n"),
        ("junk.tmp", "x"),
    ]);
    let mut ctx = BuildContext::from_tar(&tar[..], &opts).expect("tar context");
    assert!(ctx.root().join("Dockerfile").is_file());
    let ignore = load_dockerignore(None, ctx.root()).expect("dockerignore from the tar");
    ctx.set_dockerignore(ignore);
    assert_eq!(
        paths(&ctx),
        [".dockerignore", "Dockerfile", "app", "app/main.rs"]
    );

    // Same tree as a directory: same checksum.
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "app/main.rs", "fn main() {}\n");
    fs::set_permissions(
        dir.path().join("app/main.rs"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    assert_eq!(
        ctx.checksum(&["app/main.rs"]).expect("checksum").checksum(),
        open(dir.path())
            .checksum(&["app/main.rs"])
            .expect("checksum")
            .checksum()
    );
    let root = ctx.root().to_path_buf();
    drop(ctx);
    assert!(
        !root.exists(),
        "the private copy is removed with the context"
    );
}

#[test]
fn tar_stream_context_with_traversal_is_refused() {
    let temp_parent = tempfile::tempdir().expect("tempdir");
    let opts = ContextOptions {
        temp_dir: Some(temp_parent.path().to_path_buf()),
        ..ContextOptions::default()
    };
    // `tar::Builder` refuses `..`; write the header by hand.
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..8].copy_from_slice(b"../evil\0");
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut tar = tar_bytes(&[("ok", "ok")]);
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(header.as_bytes());
    let mut data = [0u8; 512];
    data[..4].copy_from_slice(b"evil");
    tar.extend_from_slice(&data);
    tar.write_all(&[0u8; 1024]).expect("end of archive");

    let err = BuildContext::from_tar(&tar[..], &opts).expect_err("traversal");
    assert!(matches!(err, Error::ContextTar { .. }), "{err:?}");
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(chain.contains("evil"), "{chain}");
    assert!(!temp_parent.path().join("evil").exists());
    let left: Vec<_> = fs::read_dir(temp_parent.path()).expect("read").collect();
    assert!(left.is_empty(), "the half-unpacked context is removed");
}

#[test]
fn dockerignore_next_to_the_dockerfile_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, ".dockerignore", "from-context\n");
    write(root, "build/app.Dockerfile", "FROM scratch\n");
    let dockerfile = root.join("build/app.Dockerfile");
    assert_eq!(
        find_dockerignore(Some(&dockerfile), root),
        Some(root.join(".dockerignore"))
    );
    write(
        root,
        "build/app.Dockerfile.dockerignore",
        "from-dockerfile\n",
    );
    assert_eq!(
        find_dockerignore(Some(&dockerfile), root),
        Some(root.join("build/app.Dockerfile.dockerignore"))
    );
    let ignore = load_dockerignore(Some(&dockerfile), root).expect("load");
    assert!(ignore.is_excluded("from-dockerfile") && !ignore.is_excluded("from-context"));
    assert_eq!(
        find_dockerignore(None, root),
        Some(root.join(".dockerignore"))
    );
    fs::remove_file(root.join(".dockerignore")).expect("rm");
    assert_eq!(find_dockerignore(None, root), None);
    assert!(load_dockerignore(None, root).expect("none").is_empty());
}

/// A 200k-file context: the walk count is asserted; the times (walk, first
/// checksum, cached checksum, and `walkdir` with an `lstat` per entry for
/// comparison) are printed.
#[test]
fn walks_a_200k_file_context() {
    const DIRS: usize = 400;
    const PER_DIR: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("state");
    let root = dir.path();
    let started = Instant::now();
    for d in 0..DIRS {
        let sub = root.join(format!("d{:03}/s{}", d, d % 7));
        fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..PER_DIR {
            fs::write(sub.join(format!("f{f}")), []).expect("write");
        }
    }
    let old = SystemTime::now() - Duration::from_secs(3600);
    eprintln!(
        "context-200k: created {} files in {:?}",
        DIRS * PER_DIR,
        started.elapsed()
    );

    let ctx = open_with(root, "d000\n");
    let started = Instant::now();
    let entries = ctx.walk().expect("walk");
    let walk_time = started.elapsed();
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).count();
    assert_eq!(files, (DIRS - 1) * PER_DIR);
    assert_eq!(entries.len(), (DIRS - 1) * (PER_DIR + 2));

    let started = Instant::now();
    let count = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.metadata().is_ok())
        .count();
    let walkdir_time = started.elapsed();
    assert_eq!(count, DIRS * (PER_DIR + 2) + 1);

    // Age the files so the stat cache trusts them, then checksum twice.
    for entry in &entries {
        if entry.kind == EntryKind::File {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(root.join(&entry.path))
                .expect("open");
            file.set_modified(old).expect("mtime");
        }
    }
    let ctx = open_cached(root, state.path());
    let started = Instant::now();
    ctx.checksum(&["."]).expect("checksum");
    let cold = started.elapsed();
    assert_eq!(ctx.stats().files_hashed, (DIRS * PER_DIR) as u64);
    ctx.save().expect("save");
    let ctx = open_cached(root, state.path());
    let started = Instant::now();
    ctx.checksum(&["."]).expect("checksum");
    let warm = started.elapsed();
    assert_eq!(ctx.stats().files_hashed, 0);
    eprintln!(
        "context-200k: walk {walk_time:?} (walkdir {walkdir_time:?}), checksum cold {cold:?}, warm {warm:?}"
    );
}

#[test]
fn context_is_shared_across_solver_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a", "a");
    let ctx = open(dir.path());
    shareable(&ctx);
    let sums: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| ctx.checksum(&["a"]).expect("checksum").checksum()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(sums.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(ctx.stats().files_hashed + ctx.stats().cache_hits, 4);
}

/// Directories nested far deeper than a thread's stack allows recursion
/// for (paths past PATH_MAX too): the walk, the visit and the checksum go
/// depth first with explicit stacks, and each directory is opened relative
/// to its parent. 3000 levels overflowed the solver thread's stack (an
/// abort, not an error) when the checksum recursed.
#[test]
fn a_context_nested_thousands_deep_is_walked_and_summed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = fs::File::open(tmp.path()).expect("open");
    const DEPTH: usize = 3000;
    for _ in 0..DEPTH {
        rustix::fs::mkdirat(&dir, "d", rustix::fs::Mode::from_raw_mode(0o755)).expect("mkdir");
        let next = rustix::fs::openat(
            &dir,
            "d",
            rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("open");
        dir = fs::File::from(next);
    }
    let leaf = rustix::fs::openat(
        &dir,
        "leaf",
        rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .expect("create leaf");
    rustix::io::write(&leaf, b"x").expect("write leaf");
    let ctx = open(tmp.path());
    // On a thread with a small stack, as the solver's workers have.
    let (entries, sum, leaves) = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let entries = ctx.walk().expect("walk");
            let sum = ctx.checksum(&["."]).expect("checksum");
            let mut leaves = 0;
            ctx.visit_under("d", |entry| {
                leaves += usize::from(entry.kind == EntryKind::File);
                Ok::<(), Error>(())
            })
            .expect("visit");
            (entries.len(), sum.path_count(), leaves)
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
    assert_eq!(entries, DEPTH + 1);
    assert_eq!(sum, DEPTH + 2, "the root, every directory and the leaf");
    assert_eq!(leaves, 1);
}
