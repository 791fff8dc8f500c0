//! Hostile inputs through the real binary: sparse files in the build
//! context, the hostile-tar corpus through `ADD local.tar` and
//! `buildr import`, images whose `/proc`, `/dev`, `/dev/null` are symlinks
//! to host paths, and huge passwd files. Each case asserts that host
//! canaries are unchanged, that the error (if any) names the entry or the
//! Dockerfile line, and that `buildr verify` stays clean.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::build_common::{BIN, Env};
use tar::{EntryType, Header};

/// A host file whose content, mode and owner must never change.
struct Canary {
    path: PathBuf,
    content: Vec<u8>,
    mode: u32,
    uid: u32,
}

impl Canary {
    fn new(path: &Path, content: &[u8]) -> Canary {
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o640)).unwrap();
        let meta = fs::metadata(path).unwrap();
        Canary {
            path: path.to_owned(),
            content: content.to_vec(),
            mode: meta.mode(),
            uid: meta.uid(),
        }
    }

    fn assert_unchanged(&self) {
        let meta = fs::symlink_metadata(&self.path).unwrap();
        assert!(meta.is_file(), "{} replaced", self.path.display());
        assert_eq!(meta.mode(), self.mode, "{} mode", self.path.display());
        assert_eq!(meta.uid(), self.uid, "{} owner", self.path.display());
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.content,
            "{}",
            self.path.display()
        );
    }
}

/// Names in a host directory that must stay exactly as they were.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `buildr ARGS`, killed after `secs`; returns (success, stderr).
fn buildr_deadline(env: &Env, args: &[&str], secs: u64) -> (bool, String) {
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(env.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("buildr {args:?} hung for {secs} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    (status.success(), format!("{stdout}{stderr}"))
}

fn assert_verify_clean(env: &Env) {
    let out = env.buildr(&["verify"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("is consistent"),
        "buildr verify found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn build(env: &Env, ctx: &Path, tag: &str, secs: u64) -> (bool, String) {
    let ctx = ctx.to_str().unwrap().to_owned();
    buildr_deadline(
        env,
        &["build", "--progress", "plain", "-t", tag, &ctx],
        secs,
    )
}

// ---------------------------------------------------------------------
// Sparse files in the context

/// A 1 TiB sparse file nobody copies is never read (reading it would take
/// hours); a 256 MiB sparse file that is copied arrives with the right size
/// and content, and the layer holding it is bounded by its content.
#[test]
fn sparse_context_files_are_read_only_when_copied_and_stay_bounded() {
    let Some(env) = Env::new("sparse_context_files") else {
        return;
    };
    let ctx = context(
        &env,
        "sparse",
        "FROM buildr-fixtures/busybox:latest\nCOPY small /small\n",
    );
    fs::write(ctx.join("small"), "small\n").unwrap();
    let huge = fs::File::create(ctx.join("unused.img")).unwrap();
    huge.set_len(1 << 40).unwrap();
    drop(huge);
    let start = Instant::now();
    let (ok, log) = build(&env, &ctx, "sparse:unused", 600);
    assert!(ok, "{log}");
    let took = start.elapsed();
    eprintln!("build next to a 1 TiB sparse file: {took:?}");
    assert!(took < Duration::from_secs(240), "{took:?}");

    // Now copy a 256 MiB sparse file with data at 0, 128 MiB and the end
    // (1 GiB works the same, at four times the CI time).
    let path = ctx.join("sparse.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::create(&path).unwrap();
        f.write_all(b"HEAD").unwrap();
        f.seek(SeekFrom::Start(128 << 20)).unwrap();
        f.write_all(b"MIDDLE").unwrap();
        f.seek(SeekFrom::Start((256 << 20) - 4)).unwrap();
        f.write_all(b"TAIL").unwrap();
    }
    fs::write(
        ctx.join("Dockerfile"),
        "FROM buildr-fixtures/busybox:latest\n\
         COPY sparse.img /sparse.img\n\
         RUN test \"$(wc -c < /sparse.img)\" = 268435456 \
             && test \"$(head -c 4 /sparse.img)\" = HEAD \
             && test \"$(dd if=/sparse.img bs=1048576 skip=128 count=1 2>/dev/null | head -c 6)\" = MIDDLE \
             && test \"$(tail -c 4 /sparse.img)\" = TAIL \
             && echo SPARSE-OK\n",
    )
    .unwrap();
    let start = Instant::now();
    let (ok, log) = build(&env, &ctx, "sparse:copied", 900);
    assert!(ok && log.contains("SPARSE-OK"), "{log}");
    eprintln!("build copying a 256 MiB sparse file: {:?}", start.elapsed());
    // Whether the snapshot kept the holes (docker does not; neither need
    // we): reported, not asserted.
    let out = Command::new("find")
        .arg(env.root())
        .args([
            "-name",
            "sparse.img",
            "-printf",
            "%s bytes, %b blocks: %p\n",
        ])
        .output()
        .unwrap();
    eprintln!(
        "copies in the store:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Blobs: gzip of 256 MiB of zeros is about 256 KiB, nothing near the
    // file's length.
    let blobs = du_bytes(&env.root().join("blobs"));
    eprintln!("blob bytes in the store: {blobs}");
    assert!(blobs < 32 << 20, "blobs take {blobs} bytes");
    assert_verify_clean(&env);
}

fn du_bytes(path: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------
// The hostile-tar corpus through ADD local.tar and import

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[derive(Default)]
struct RawTar(Vec<u8>);

impl RawTar {
    fn push(&mut self, name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) -> &mut RawTar {
        let mut h = Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0
            .extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        self.push(name.as_bytes(), EntryType::Regular, b"", data)
    }

    fn pax(&mut self, key: &str, value: &str) -> &mut RawTar {
        let data = pax_record(key, value);
        self.push(b"PaxHeaders/x", EntryType::XHeader, b"", &data)
    }

    fn gnu_long_name(&mut self, name: &str) -> &mut RawTar {
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        let mut h = Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(EntryType::GNULongName);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(&data);
        self.0
            .extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// (name, tar, what the refusal must mention).
fn corpus(canary: &Path) -> Vec<(&'static str, Vec<u8>, String)> {
    let up = format!(
        "{}{}",
        "../".repeat(16),
        canary.display().to_string().trim_start_matches('/')
    );
    vec![
        (
            "dotdot",
            RawTar::default().file(&up, b"pwned").finish(),
            "..".into(),
        ),
        (
            "pax-path-dotdot",
            RawTar::default()
                .pax("path", &up)
                .file("harmless", b"pwned")
                .finish(),
            "..".into(),
        ),
        (
            "gnu-longname-dotdot",
            RawTar::default()
                .gnu_long_name(&up)
                .file("harmless", b"pwned")
                .finish(),
            "..".into(),
        ),
        (
            "symlink-then-write",
            RawTar::default()
                .push(
                    b"esc",
                    EntryType::Symlink,
                    canary.to_str().unwrap().as_bytes(),
                    b"",
                )
                .file("esc", b"pwned")
                .push(
                    b"dir",
                    EntryType::Symlink,
                    canary.parent().unwrap().to_str().unwrap().as_bytes(),
                    b"",
                )
                .file("dir/planted", b"pwned")
                .finish(),
            // The first write replaces the `esc` link; `dir/` resolves
            // inside the image, where the link's target does not exist.
            "dir/planted".into(),
        ),
        (
            "hardlink-out",
            RawTar::default()
                .push(
                    b"hard",
                    EntryType::Link,
                    canary.to_str().unwrap().as_bytes(),
                    b"",
                )
                .finish(),
            "hard".into(),
        ),
    ]
}

/// `ADD local.tar /dst/` unpacks with the same extractor: traversal in
/// any record is refused with the Dockerfile line, and symlinks lead
/// nowhere outside the image. `buildr import` of the same tars likewise.
#[test]
fn the_hostile_tar_corpus_through_add_and_import_never_escapes() {
    let Some(env) = Env::new("hostile_tar_corpus_cli") else {
        return;
    };
    let host = env.dir.path().join("host");
    fs::create_dir(&host).unwrap();
    let canary = Canary::new(&host.join("canary"), b"host secret\n");
    let before = listing(&host);
    for (name, tar, mention) in corpus(&canary.path) {
        let ctx = context(
            &env,
            &format!("add-{name}"),
            "FROM buildr-fixtures/busybox:latest\nADD layer.tar /dst/\nRUN ls -la /dst\n",
        );
        fs::write(ctx.join("layer.tar"), &tar).unwrap();
        let (ok, log) = build(&env, &ctx, &format!("add-{name}:t"), 300);
        assert!(!ok, "{name}: a hostile tar was added:\n{log}");
        assert!(
            log.contains("Dockerfile:2"),
            "{name}: error names no line:\n{log}"
        );
        assert!(log.contains(&mention), "{name}: unclear error:\n{log}");
        canary.assert_unchanged();
        assert_eq!(
            listing(&host),
            before,
            "{name}: a file appeared next to the canary"
        );

        let file = env.dir.path().join(format!("{name}.tar"));
        fs::write(&file, &tar).unwrap();
        let (ok, log) = buildr_deadline(
            &env,
            &[
                "import",
                file.to_str().unwrap(),
                &format!("import-{name}:t"),
            ],
            120,
        );
        if matches!(name, "symlink-then-write" | "hardlink-out") && ok {
            // Import checks names, not what links point at (a layer may
            // hold any link): the image is stored, and unpacking it for a
            // container must stay inside its rootfs.
            let image = format!("import-{name}:t");
            let (ok, log) = buildr_deadline(&env, &["run", "--rm", &image, "/no-such"], 120);
            eprintln!(
                "run of the imported {name}: {}",
                log.lines().last().unwrap_or("")
            );
            assert!(
                !ok && log.contains(&mention),
                "{name}: unpacking for run: {log}"
            );
        } else {
            assert!(!ok, "{name}: import accepted a hostile tar:\n{log}");
            assert!(
                log.contains(&mention),
                "{name}: unclear import error:\n{log}"
            );
        }
        canary.assert_unchanged();
        assert_eq!(
            listing(&host),
            before,
            "{name}: a file appeared next to the canary"
        );
    }
    assert_verify_clean(&env);
}

// ---------------------------------------------------------------------
// Hostile images: /proc, /dev, /dev/null as symlinks; huge passwd

/// The busybox rootfs, unpacked into a temp dir for editing.
fn busybox_rootfs(env: &Env, name: &str) -> PathBuf {
    let tar = env.dir.path().join(format!("{name}-base.tar"));
    let status = Command::new("bash")
        .arg(crate::build_common::workspace().join("fixtures/base/busybox-rootfs.sh"))
        .arg(&tar)
        .status()
        .unwrap();
    assert!(status.success());
    let root = env.dir.path().join(format!("{name}-rootfs"));
    fs::create_dir(&root).unwrap();
    buildr_testkit::process::run_tool(
        "tar",
        &["-xf", tar.to_str().unwrap(), "-C", root.to_str().unwrap()],
    );
    root
}

fn import_rootfs(env: &Env, root: &Path, image: &str) {
    let tar = root.with_extension("tar");
    buildr_testkit::process::run_tool(
        "tar",
        &[
            "--numeric-owner",
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    let (ok, log) = buildr_deadline(env, &["import", tar.to_str().unwrap(), image], 300);
    assert!(ok, "import {image}: {log}");
}

/// Host mount points under `dir` (from this process's mountinfo).
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(dir))
        .map(str::to_owned)
        .collect()
}

/// `/proc` and `/dev` as symlinks to host directories, `/dev/null` and
/// `/dev/zero` as symlinks to a host file, `/proc` and `/dev/null` as
/// FIFOs (never opened, so never a hang): `buildr run` and a build
/// `FROM` the image mount proc and dev inside the rootfs (the kernel
/// resolves every mount target inside it), so nothing appears in, is
/// mounted on, or is written to the host paths.
#[test]
fn proc_and_dev_symlinked_to_host_paths_stay_inside_the_rootfs() {
    let Some(env) = Env::new("proc_dev_symlinks") else {
        return;
    };
    let host = env.dir.path().join("host");
    let host_proc = host.join("proc-target");
    let host_dev = host.join("dev-target");
    fs::create_dir_all(&host_proc).unwrap();
    fs::create_dir_all(&host_dev).unwrap();
    let secret = Canary::new(&host.join("shadow"), b"root:$6$secret:::\n");
    let before = (listing(&host), listing(&host_proc), listing(&host_dev));

    // Image 1: /proc and /dev are symlinks to host directories.
    let root = busybox_rootfs(&env, "links");
    fs::remove_dir_all(root.join("proc")).unwrap();
    fs::remove_dir_all(root.join("dev")).unwrap();
    std::os::unix::fs::symlink(&host_proc, root.join("proc")).unwrap();
    std::os::unix::fs::symlink(&host_dev, root.join("dev")).unwrap();
    import_rootfs(&env, &root, "hostile/procdev:1");

    // Image 2: /dev is a directory; null, zero, pts and shm link out.
    let root = busybox_rootfs(&env, "devnull");
    let dev = root.join("dev");
    std::os::unix::fs::symlink(&secret.path, dev.join("null")).unwrap();
    std::os::unix::fs::symlink(&secret.path, dev.join("zero")).unwrap();
    std::os::unix::fs::symlink("/", dev.join("pts")).unwrap();
    std::os::unix::fs::symlink(&host_dev, dev.join("shm")).unwrap();
    import_rootfs(&env, &root, "hostile/devnull:1");

    // Image 3: /proc and /dev/null are FIFOs (opening one blocks forever).
    let root = busybox_rootfs(&env, "fifos");
    fs::remove_dir_all(root.join("proc")).unwrap();
    for fifo in ["proc", "dev/null"] {
        let status = Command::new("mkfifo")
            .arg(root.join(fifo))
            .status()
            .unwrap();
        assert!(status.success());
    }
    import_rootfs(&env, &root, "hostile/fifos:1");

    let probe = "echo data > /dev/null; echo data > /dev/zero 2>/dev/null; \
                 touch /dev/shm/planted /proc/planted 2>/dev/null; \
                 test -r /proc/self/status && head -c 0 /dev/zero && echo PROBE-OK";
    for image in ["hostile/procdev:1", "hostile/devnull:1", "hostile/fifos:1"] {
        let (ok, log) = buildr_deadline(&env, &["run", "--rm", image, "sh", "-c", probe], 180);
        assert!(
            !ok || log.contains("PROBE-OK"),
            "{image}: run succeeded without a working /proc and /dev: {log}"
        );
        eprintln!("run {image}: ok={ok}: {}", log.lines().last().unwrap_or(""));

        let ctx = context(
            &env,
            &format!("from-{}", image.replace([':', '/'], "-")),
            &format!("FROM {image}\nCOPY --chown=app:app f /f\nUSER app\nRUN {probe}\n"),
        );
        fs::write(ctx.join("f"), "x").unwrap();
        let (ok, log) = build(&env, &ctx, "hostile/from:t", 300);
        assert!(
            (ok && log.contains("PROBE-OK")) || (!ok && log.contains("Dockerfile:")),
            "{image}: build neither worked nor named the line:\n{log}"
        );
        eprintln!("build FROM {image}: ok={ok}");

        secret.assert_unchanged();
        assert_eq!(
            (listing(&host), listing(&host_proc), listing(&host_dev)),
            before,
            "{image}: something appeared on the host"
        );
        assert!(mounts_under(&host).is_empty(), "{:?}", mounts_under(&host));
    }
    assert_verify_clean(&env);
}

/// A 100 MB /etc/passwd (the user defined at its end) and one with a
/// 10 MB line: lookups read a bounded prefix (4 MiB), so `USER` and
/// `COPY --chown` of a user past it fail with an error naming the user and
/// the line, quickly, instead of reading the whole file into memory; a user
/// near the top still resolves.
#[test]
fn huge_passwd_files_are_read_in_bounded_size() {
    let Some(env) = Env::new("huge_passwd") else {
        return;
    };
    let root = busybox_rootfs(&env, "bigpasswd");
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(root.join("etc/passwd"))
            .unwrap();
        let filler = format!("filler:x:7:7:{}:/:/bin/false\n", "g".repeat(80));
        let block = filler.repeat(10_000);
        for _ in 0..(100 << 20) / block.len() {
            f.write_all(block.as_bytes()).unwrap();
        }
        writeln!(f, "deep:x:4321:4321::/:/bin/sh").unwrap();
    }
    import_rootfs(&env, &root, "hostile/bigpasswd:1");

    let root = busybox_rootfs(&env, "longline");
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(root.join("etc/passwd"))
            .unwrap();
        writeln!(f, "long:x:77:77:{}:/:/bin/sh", "L".repeat(10 << 20)).unwrap();
        writeln!(f, "after:x:4322:4322::/:/bin/sh").unwrap();
    }
    import_rootfs(&env, &root, "hostile/longline:1");

    for (image, user) in [
        ("hostile/bigpasswd:1", "deep"),
        ("hostile/longline:1", "after"),
    ] {
        for (kind, step) in [
            ("user", format!("USER {user}\nRUN id")),
            ("chown", format!("COPY --chown={user} f /f")),
        ] {
            let ctx = context(
                &env,
                &format!("{kind}-{user}"),
                &format!("FROM {image}\n{step}\n"),
            );
            fs::write(ctx.join("f"), "x").unwrap();
            let start = Instant::now();
            let (ok, log) = build(&env, &ctx, "hostile/passwd:t", 300);
            let took = start.elapsed();
            assert!(!ok, "{image} {kind}: a user past the cap was found:\n{log}");
            // USER fails at the RUN (line 3), COPY --chown at line 2.
            assert!(
                (log.contains("Dockerfile:2") || log.contains("Dockerfile:3"))
                    && log.contains(&format!("unable to find user {user}")),
                "{image} {kind}: unclear error:\n{log}"
            );
            assert!(took < Duration::from_secs(120), "{image} {kind}: {took:?}");
        }
        // A user at the top of the same file still works.
        let ctx = context(
            &env,
            &format!("top-{user}"),
            &format!("FROM {image}\nUSER app\nRUN id -u\n"),
        );
        let (ok, log) = build(&env, &ctx, "hostile/passwd-top:t", 300);
        assert!(ok, "{image}: a user near the top was not found:\n{log}");
    }
    assert_verify_clean(&env);
}

// ---------------------------------------------------------------------
// Configs with huge fields through `buildr load`

fn docker_archive(config: &[u8]) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let hex: String = Sha256::digest(config)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = Header::new_ustar();
    h.set_path("etc/x").unwrap();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    layer.append(&h, &b"x\n"[..]).unwrap();
    let layer = layer.into_inner().unwrap();
    let layer_hex: String = Sha256::digest(&layer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let manifest = format!(
        r#"[{{"Config":"{hex}.json","RepoTags":["hostile/config:1"],"Layers":["{layer_hex}/layer.tar"]}}]"#
    );
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("{hex}.json"), config.to_vec()),
        (format!("{layer_hex}/layer.tar"), layer),
        ("manifest.json".to_owned(), manifest.into_bytes()),
    ] {
        let mut h = Header::new_ustar();
        h.set_path(&name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append(&h, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

fn config_json(extra: &str) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = Header::new_ustar();
    h.set_path("etc/x").unwrap();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    layer.append(&h, &b"x\n"[..]).unwrap();
    let diff: String = Sha256::digest(layer.into_inner().unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{{extra}}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}}}}"#
    )
    .into_bytes()
}

/// `buildr load` of docker archives whose config has a 10 MB `Env` entry
/// or 10^6 labels: refused by the metadata cap with an error naming the
/// config, nothing tagged; the same archive with a small config loads.
#[test]
fn load_refuses_configs_with_huge_fields() {
    let Some(env) = Env::new("load_huge_config") else {
        return;
    };
    let huge_env = config_json(&format!(r#""Env":["HUGE={}"]"#, "e".repeat(10 << 20)));
    let labels: Vec<String> = (0..1_000_000).map(|i| format!(r#""l{i}":"v""#)).collect();
    let many_labels = config_json(&format!(r#""Labels":{{{}}}"#, labels.join(",")));
    for (case, config) in [("10 MB Env", huge_env), ("10^6 labels", many_labels)] {
        let file = env.dir.path().join("huge-config.tar");
        fs::write(&file, docker_archive(&config)).unwrap();
        let (ok, log) = buildr_deadline(&env, &["load", "-i", file.to_str().unwrap()], 300);
        assert!(!ok, "{case}: loaded:\n{log}");
        // The error names the config blob by digest and the cap.
        let hex: String = {
            use sha2::{Digest as _, Sha256};
            Sha256::digest(&config)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert!(
            log.contains(&hex) && log.contains("8388608"),
            "{case}: unclear error:\n{log}"
        );
        let images = env.buildr(&["images"]);
        assert!(
            !String::from_utf8_lossy(&images.stdout).contains("hostile/config"),
            "{case}: tagged"
        );
    }
    let file = env.dir.path().join("small-config.tar");
    fs::write(&file, docker_archive(&config_json(r#""Env":["A=b"]"#))).unwrap();
    let (ok, log) = buildr_deadline(&env, &["load", "-i", file.to_str().unwrap()], 300);
    assert!(ok, "control archive did not load:\n{log}");
    assert_verify_clean(&env);
}

// ---------------------------------------------------------------------
// The PAX corpus through `buildr load`

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A docker archive (`docker save` layout) whose only image, tagged `tag`,
/// has `layer` as its single uncompressed layer, with the config's diff id
/// matching it (so `load`'s digest checks pass and only the layer's
/// content is hostile).
fn single_layer_archive(layer: &[u8], tag: &str) -> Vec<u8> {
    let layer_hex = sha256_hex(layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/true"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer_hex}"]}}}}"#
    )
    .into_bytes();
    let hex = sha256_hex(&config);
    let manifest = format!(
        r#"[{{"Config":"{hex}.json","RepoTags":["{tag}"],"Layers":["{layer_hex}/layer.tar"]}}]"#
    );
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("{hex}.json"), config),
        (format!("{layer_hex}/layer.tar"), layer.to_vec()),
        ("manifest.json".to_owned(), manifest.into_bytes()),
    ] {
        let mut h = Header::new_ustar();
        h.set_path(&name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append(&h, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

/// Each hostile layer of the corpus (plus a PAX `linkpath` with `..`,
/// absolute names and a malformed PAX `size`) as the single layer of a
/// docker archive: `buildr load` only checks digests, so each loads; then
/// `buildr bundle unpack` and `buildr run` unpack it, and either refuse
/// naming the entry or extract harmlessly inside the rootfs. The host
/// canary and its directory never change and the store verifies clean.
#[test]
fn the_pax_corpus_through_buildr_load_never_escapes() {
    let Some(env) = Env::new("pax_corpus_through_load") else {
        return;
    };
    let host = env.dir.path().join("host");
    fs::create_dir(&host).unwrap();
    let canary = Canary::new(&host.join("canary"), b"host secret\n");
    let planted = host.join("planted");
    let up = format!(
        "{}{}",
        "../".repeat(16),
        canary.path.display().to_string().trim_start_matches('/')
    );
    let mut cases: Vec<(&'static str, Vec<u8>, String)> = corpus(&canary.path);
    cases.extend([
        (
            "pax-linkpath-dotdot",
            RawTar::default()
                .file("harmless", b"inside")
                .pax("linkpath", &up)
                .push(b"hard", EntryType::Link, b"harmless", b"")
                .finish(),
            "..".to_owned(),
        ),
        (
            "pax-symlink-linkpath-dotdot-then-write",
            RawTar::default()
                .pax("linkpath", &up)
                .push(b"pax-sym", EntryType::Symlink, b"harmless", b"")
                .file("pax-sym", b"pwned")
                .finish(),
            "pax-sym".to_owned(),
        ),
        (
            "absolute-name",
            RawTar::default()
                .file(planted.to_str().unwrap(), b"pwned")
                .finish(),
            planted.display().to_string(),
        ),
        (
            "pax-absolute-path",
            RawTar::default()
                .pax("path", canary.path.to_str().unwrap())
                .file("harmless", b"pwned")
                .finish(),
            canary.path.display().to_string(),
        ),
        (
            "malformed-pax-size",
            RawTar::default()
                .pax("size", "12abc")
                .file("bad", b"x")
                .finish(),
            "malformed PAX size".to_owned(),
        ),
        (
            "pax-size-past-end",
            RawTar::default()
                .pax("size", "99999999")
                .file("past-end-entry", b"x")
                .finish(),
            // The stream ends inside the entry's claimed data: a read
            // error (which today names neither the entry nor the layer
            // digest, only the entry count), never a short file.
            "failed to read layer stream".to_owned(),
        ),
    ]);
    let before = listing(&host);
    let mut outcomes = Vec::new();
    for (name, layer, mention) in cases {
        let tag = format!("hostile-load/{name}:1");
        let file = env.dir.path().join(format!("load-{name}.tar"));
        fs::write(&file, single_layer_archive(&layer, &tag)).unwrap();
        let (loaded, log) = buildr_deadline(&env, &["load", "-i", file.to_str().unwrap()], 120);
        canary.assert_unchanged();
        assert_eq!(
            listing(&host),
            before,
            "{name}: load wrote next to the canary"
        );
        if !loaded {
            // Refused at load: the error names the layer (by digest).
            assert!(
                log.contains(&sha256_hex(&layer)) || log.contains(&mention),
                "{name}: load refused without naming the layer or entry:\n{log}"
            );
            outcomes.push(format!("{name}: refused at load"));
            continue;
        }

        let bundle = env.dir.path().join(format!("bundle-{name}"));
        let (unpacked, ulog) = buildr_deadline(
            &env,
            &["bundle", "unpack", &tag, bundle.to_str().unwrap()],
            120,
        );
        canary.assert_unchanged();
        assert_eq!(
            listing(&host),
            before,
            "{name}: unpack wrote next to the canary"
        );
        assert!(!planted.exists(), "{name}: {} created", planted.display());
        if !unpacked {
            assert!(
                ulog.contains(&mention),
                "{name}: unpack refused without naming the entry ({mention}):\n{ulog}"
            );
        }

        let (ran, rlog) = buildr_deadline(
            &env,
            &["run", "--rm", "--network", "none", &tag, "/bin/true"],
            120,
        );
        canary.assert_unchanged();
        assert_eq!(
            listing(&host),
            before,
            "{name}: run wrote next to the canary"
        );
        assert!(!planted.exists(), "{name}: {} created", planted.display());
        // The layer has no /bin/true, so run fails even when unpacking is
        // harmless; when the bundle unpack refused the layer, run's
        // extraction refuses it the same way, naming the entry.
        assert!(
            !ran,
            "{name}: ran a command the image does not hold:\n{rlog}"
        );
        if !unpacked {
            assert!(
                rlog.contains(&mention),
                "{name}: run refused without naming the entry ({mention}):\n{rlog}"
            );
            outcomes.push(format!(
                "{name}: loaded, refused at unpack: {}",
                ulog.lines().last().unwrap_or("").trim()
            ));
        } else {
            // A harmless unpack keeps everything inside the rootfs.
            let rootfs = bundle.join("rootfs");
            assert!(rootfs.is_dir(), "{name}: no rootfs:\n{ulog}");
            // The hostile write landed inside the rootfs, as a plain file.
            let inside = match name {
                "pax-symlink-linkpath-dotdot-then-write" => rootfs.join("pax-sym"),
                "absolute-name" => rootfs.join(planted.strip_prefix("/").unwrap()),
                "pax-absolute-path" => rootfs.join(canary.path.strip_prefix("/").unwrap()),
                _ => panic!("{name}: unpacked, but it should have been refused:\n{ulog}"),
            };
            let meta = fs::symlink_metadata(&inside)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", inside.display()));
            assert!(meta.is_file(), "{name}: {} not a file", inside.display());
            assert_eq!(fs::read(&inside).unwrap(), b"pwned", "{name}");
            outcomes.push(format!(
                "{name}: loaded, unpacked harmlessly (run: {})",
                rlog.lines().last().unwrap_or("").trim()
            ));
        }
        let _ = fs::remove_dir_all(&bundle);
    }
    for line in &outcomes {
        eprintln!("pax corpus via load: {line}");
    }
    assert_verify_clean(&env);
}
