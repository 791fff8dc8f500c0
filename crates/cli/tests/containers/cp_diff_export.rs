//! `cp`, `diff` and `export` end to end on the busybox fixture: copies in
//! and out of running and stopped containers (files, directories, `/.`,
//! `-` tar streams, `-a` ownership, a volume), docker's `C`/`A`/`D` lines,
//! export's merged tree; and that neither a symlink in the container
//! (`/etc`-like absolute or `../..`) nor a hostile tar stream reaches a
//! host canary.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::container_common::{Env, IMAGE, check, prerequisites};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `stat -c '%u %g %a %Y'` of `path` in a running container.
fn owner_mode_mtime(env: &Env, container: &str, path: &str) -> String {
    env.ok(&["exec", container, "stat", "-c", "%u %g %a %Y", path])
        .trim()
        .to_owned()
}

/// A host file with an owner, mode and mtime of its own.
fn host_file(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
    std::os::unix::fs::chown(path, Some(1234), Some(4321)).unwrap();
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(when))
        .unwrap();
}

/// The names of a tar stream's entries.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| text(&e.unwrap().path_bytes()))
        .collect()
}

/// A tar stream: (name, symlink or hard link target, data).
fn tar_of(entries: &[(&str, Option<tar::EntryType>, &str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(1_000_000_000);
        match kind {
            Some(kind) => {
                header.set_entry_type(*kind);
                header.set_size(0);
                builder.append_link(&mut header, name, link).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                // Raw names: the builder refuses `..`, a hostile tar does not.
                let path = header.as_old_mut();
                path.name[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, data.as_bytes()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

#[test]
fn cp_in_and_out_of_a_running_container() {
    if !prerequisites("cp_in_and_out_of_a_running_container") {
        return;
    }
    let env = Env::new();
    let host = env.dir.path().join("host");
    fs::create_dir_all(host.join("tree/sub")).unwrap();
    host_file(&host.join("f.txt"), "hello\n");
    fs::write(host.join("tree/sub/x"), "x\n").unwrap();
    env.ok(&["volume", "create", "cpvol"]);
    let args = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "r",
        "-v",
        "cpvol:/data",
    ];
    env.ok(&[&args[..], &[IMAGE, "sleep", "600"]].concat());
    let f = host.join("f.txt");
    let f = f.to_str().unwrap();

    // A file into a directory keeps its name, mode and mtime; owned by
    // root of the container, or with -a by the source's ids.
    env.ok(&["cp", f, "r:/tmp/"]);
    assert_eq!(
        owner_mode_mtime(&env, "r", "/tmp/f.txt"),
        "0 0 640 1000000000"
    );
    env.ok(&["cp", "-a", f, "r:/tmp/g.txt"]);
    assert_eq!(
        owner_mode_mtime(&env, "r", "/tmp/g.txt"),
        "1234 4321 640 1000000000"
    );
    // Over an existing file; to a missing name ending in `/`: an error.
    env.ok(&["cp", f, "r:/etc/passwd"]);
    assert_eq!(env.ok(&["exec", "r", "cat", "/etc/passwd"]), "hello\n");
    let err = env.fails(&["cp", f, "r:/tmp/missing/"]);
    assert!(err.contains("no such directory"), "{err}");

    // A directory to a new name, into an existing one, and its contents.
    let tree = host.join("tree");
    let tree = tree.to_str().unwrap();
    env.ok(&["cp", tree, "r:/tmp/renamed"]);
    env.ok(&["cp", tree, "r:/tmp"]);
    env.ok(&["exec", "r", "mkdir", "/tmp/into"]);
    env.ok(&["cp", &format!("{tree}/."), "r:/tmp/into"]);
    for path in ["/tmp/renamed/sub/x", "/tmp/tree/sub/x", "/tmp/into/sub/x"] {
        assert_eq!(env.ok(&["exec", "r", "cat", path]), "x\n", "{path}");
    }
    let err = env.fails(&["cp", tree, "r:/tmp/f.txt"]);
    assert!(err.contains("cannot copy directory"), "{err}");

    // Into the volume: where the container sees it, and on the volume.
    env.ok(&["cp", f, "r:/data/in-volume"]);
    assert_eq!(env.ok(&["exec", "r", "cat", "/data/in-volume"]), "hello\n");
    let volume = crate::container_common::first_document(&env.ok(&["volume", "inspect", "cpvol"]));
    let mountpoint = PathBuf::from(volume["Mountpoint"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(mountpoint.join("in-volume")).unwrap(),
        "hello\n"
    );

    // Out: a file, a directory to a new name, a symlink (-L follows it).
    let out = env.dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let o = |name: &str| out.join(name).to_str().unwrap().to_owned();
    env.ok(&["cp", "r:/tmp/g.txt", &o("g")]);
    let meta = fs::metadata(out.join("g")).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777, meta.mtime()),
        (0, 0o640, 1_000_000_000)
    );
    env.ok(&["cp", "r:/tmp/renamed", &o("dir")]);
    assert_eq!(fs::read_to_string(out.join("dir/sub/x")).unwrap(), "x\n");
    env.ok(&["exec", "r", "ln", "-s", "/tmp/renamed", "/tmp/link"]);
    env.ok(&["cp", "r:/tmp/link", &o("link")]);
    assert!(fs::symlink_metadata(out.join("link")).unwrap().is_symlink());
    env.ok(&["cp", "-L", "r:/tmp/link", &o("followed")]);
    assert_eq!(
        fs::read_to_string(out.join("followed/sub/x")).unwrap(),
        "x\n"
    );
    let err = env.fails(&["cp", "r:/nope", &o("nope")]);
    assert!(
        err.contains("Could not find the file /nope in container r"),
        "{err}"
    );

    // `-`: a tar stream out, one in.
    let stream = env.run(&["cp", "r:/tmp/renamed", "-"]);
    check(&stream, "cp r:/tmp/renamed -");
    assert_eq!(
        tar_names(&stream.stdout),
        ["renamed/", "renamed/sub/", "renamed/sub/x"]
    );
    // Names as docker 26 writes them: `./` for a `/.` path's contents.
    let stream = env.run(&["cp", "r:/tmp/renamed/.", "-"]);
    check(&stream, "cp r:/tmp/renamed/. -");
    assert_eq!(tar_names(&stream.stdout), ["./", "./sub/", "./sub/x"]);
    let tar = tar_of(&[("streamed/a.txt", None, "", "from a tar\n")]);
    check(
        &env.run_with_input(&["cp", "-", "r:/tmp"], &tar),
        "cp - r:/tmp",
    );
    assert_eq!(
        env.ok(&["exec", "r", "cat", "/tmp/streamed/a.txt"]),
        "from a tar\n"
    );
    let err = env.fails(&["container", "cp", "-", "r:/tmp/f.txt"]);
    assert!(err.contains("must be a directory"), "{err}");
}

#[test]
fn cp_to_and_from_a_stopped_container() {
    if !prerequisites("cp_to_and_from_a_stopped_container") {
        return;
    }
    let env = Env::new();
    let host = env.dir.path().join("in.txt");
    host_file(&host, "copied while created\n");
    // Created, never started: the file is there at its first start.
    env.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "s",
        IMAGE,
        "cat",
        "/etc/in.txt",
    ]);
    env.ok(&["cp", host.to_str().unwrap(), "s:/etc/in.txt"]);
    let out = env.run(&["start", "-a", "s"]);
    check(&out, "start -a s");
    assert_eq!(text(&out.stdout), "copied while created\n");

    // A volume of a stopped container is reached at its destination, even
    // before the first start made it: as docker mounts volumes for a copy.
    env.ok(&["volume", "create", "stopvol"]);
    let args = [
        "create",
        "--network",
        "none",
        "--name",
        "v",
        "-v",
        "stopvol:/deep/er/vol",
    ];
    env.ok(&[&args[..], &[IMAGE, "cat", "/deep/er/vol/in.txt"]].concat());
    env.ok(&["cp", host.to_str().unwrap(), "v:/deep/er/vol/in.txt"]);
    let volume =
        crate::container_common::first_document(&env.ok(&["volume", "inspect", "stopvol"]));
    let mountpoint = PathBuf::from(volume["Mountpoint"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(mountpoint.join("in.txt")).unwrap(),
        "copied while created\n"
    );
    let out = env.run(&["start", "-a", "v"]);
    check(&out, "start -a v");
    assert_eq!(text(&out.stdout), "copied while created\n");
    fs::write(mountpoint.join("later.txt"), "from the volume\n").unwrap();
    let stream = env.run(&["cp", "v:/deep", "-"]);
    check(&stream, "cp v:/deep -");
    let names = tar_names(&stream.stdout);
    assert!(
        names.contains(&"deep/er/vol/later.txt".to_owned()),
        "{names:?}"
    );

    // Exited, after deleting a file and a directory of the image: copied
    // back, its next start sees them (the whiteout gone, the directory
    // made opaque, so nothing of the image's /home shows through).
    let script = "if [ -e /made ]; then ls -a /home; busybox cat /bin/cat; exit 0; fi; \
                  echo made > /made; rm /bin/cat; rm -r /home; exit 3";
    let out = env.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "x",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let made = env.dir.path().join("made");
    env.ok(&["cp", "x:/made", made.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&made).unwrap(), "made\n");
    let err = env.fails(&["cp", "x:/bin/cat", made.to_str().unwrap()]);
    assert!(
        err.contains("Could not find the file /bin/cat in container x"),
        "{err}"
    );
    env.ok(&["cp", host.to_str().unwrap(), "x:/bin/cat"]);
    let dir = env.dir.path().join("home");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("only"), "1").unwrap();
    env.ok(&["cp", dir.to_str().unwrap(), "x:/home"]);
    let tar = tar_of(&[("in-tar.txt", None, "", "from a tar\n")]);
    check(
        &env.run_with_input(&["cp", "-", "x:/tmp"], &tar),
        "cp - x:/tmp",
    );
    let diff = env.ok(&["diff", "x"]);
    assert!(
        diff.contains("C /bin/cat\n") && !diff.contains("D /bin/cat"),
        "{diff}"
    );
    assert!(diff.contains("A /tmp/in-tar.txt\n"), "{diff}");
    let out = env.run(&["start", "-a", "x"]);
    check(&out, "start -a x");
    assert_eq!(text(&out.stdout), ".\n..\nonly\ncopied while created\n");
    let tar = env.run(&["export", "x"]);
    check(&tar, "export x");
    let names = tar_names(&tar.stdout);
    assert!(names.contains(&"made".to_owned()), "{names:?}");
    assert!(names.contains(&"home/only".to_owned()), "{names:?}");
    assert!(names.contains(&"tmp/in-tar.txt".to_owned()), "{names:?}");
    // What cp wrote into upper dirs and volumes leaves the store whole.
    env.ok(&["verify"]);
}

/// A host directory with one file whose content, link count and listing
/// must never change.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new(env: &Env) -> Canary {
        let dir = env.dir.path().join("canary");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("c.txt"), "HOST\n").unwrap();
        Canary { dir }
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn assert_untouched(&self, what: &str) {
        let names: Vec<_> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["c.txt"], "{what}: the host canary dir changed");
        let file = self.dir.join("c.txt");
        assert_eq!(fs::read_to_string(&file).unwrap(), "HOST\n", "{what}");
        assert_eq!(
            fs::metadata(&file).unwrap().nlink(),
            1,
            "{what}: hard-linked"
        );
    }
}

/// Every way `cp` could be led to the host through `container`, which has
/// `/esc -> CANARY` (absolute) and `/tmp/up -> ../../../../../..CANARY`.
fn attack(env: &Env, canary: &Canary, container: &str) {
    let payload = env.dir.path().join("payload");
    fs::write(&payload, "pwned\n").unwrap();
    let payload = payload.to_str().unwrap();
    let at = |path: &str| format!("{container}:{path}");
    // Writes through the links land in the container, or fail.
    let _ = env.run(&["cp", payload, &at("/esc/")]);
    let _ = env.run(&["cp", payload, &at("/esc/c.txt")]);
    let _ = env.run(&["cp", payload, &at("/tmp/up/c.txt")]);
    canary.assert_untouched("cp through a container symlink");
    // Reads through them find nothing of the host.
    let out = env.dir.path().join(format!("read-{container}"));
    for src in ["/esc/c.txt", "/tmp/up/c.txt"] {
        let err = env.fails(&["cp", &at(src), out.to_str().unwrap()]);
        assert!(err.contains("Could not find the file"), "{src}: {err}");
    }
    let err = env.fails(&["cp", "-L", &at("/esc"), out.to_str().unwrap()]);
    assert!(err.contains("Could not find the file"), "{err}");
    assert!(!out.exists());
    // Hostile tar streams.
    let escape = format!("../../../../../../..{}/c.txt", canary.path());
    let dotdot = tar_of(&[(escape.as_str(), None, "", "pwned\n")]);
    let out = env.run_with_input(&["cp", "-", &at("/tmp")], &dotdot);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("'..' component"),
        "{}",
        text(&out.stderr)
    );
    let link = Some(tar::EntryType::Symlink);
    let symlink_then_write = tar_of(&[
        ("l", link, canary.path(), ""),
        ("l/c.txt", None, "", "pwned\n"),
    ]);
    let _ = env.run_with_input(&["cp", "-", &at("/tmp")], &symlink_then_write);
    let absolute = format!("{}/c.txt", canary.path());
    let absolute = tar_of(&[(absolute.as_str(), None, "", "pwned\n")]);
    let _ = env.run_with_input(&["cp", "-", &at("/tmp")], &absolute);
    let hard = Some(tar::EntryType::Link);
    let target = format!("{}/c.txt", canary.path());
    let hard_link = tar_of(&[("h", hard, target.as_str(), "")]);
    let _ = env.run_with_input(&["cp", "-", &at("/")], &hard_link);
    let hard_up = tar_of(&[("h2", hard, "../../../../../../etc/passwd", "")]);
    let out = env.run_with_input(&["cp", "-", &at("/tmp")], &hard_up);
    assert!(!out.status.success(), "a hard link up and out was taken");
    canary.assert_untouched("hostile tar streams");
}

#[test]
fn cp_never_reaches_the_host_through_container_symlinks_or_hostile_tars() {
    if !prerequisites("cp_never_reaches_the_host_through_container_symlinks_or_hostile_tars") {
        return;
    }
    let env = Env::new();
    let canary = Canary::new(&env);
    let links = format!(
        "ln -s {c} /esc; ln -s ../../../../../..{c} /tmp/up",
        c = canary.path()
    );
    let run = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "live",
        IMAGE,
        "sh",
        "-c",
    ];
    env.ok(&[&run[..], &[&format!("{links}; sleep 600")]].concat());
    // The links exist before the attack starts.
    for _ in 0..100 {
        if env
            .run(&["exec", "live", "test", "-L", "/tmp/up"])
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    attack(&env, &canary, "live");
    // A running container's /proc/sys is the host kernel's: never written.
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let evil = env.dir.path().join("core_pattern");
    fs::write(&evil, "|/tmp/evil %p\n").unwrap();
    let err = env.fails(&[
        "cp",
        evil.to_str().unwrap(),
        "live:/proc/sys/kernel/core_pattern",
    ]);
    assert!(err.contains("kernel filesystem"), "{err}");
    let link = Some(tar::EntryType::Symlink);
    let through = tar_of(&[
        ("k", link, "/proc/sys/kernel", ""),
        ("k/core_pattern", None, "", "|/tmp/evil %p\n"),
    ]);
    let out = env.run_with_input(&["cp", "-", "live:/tmp"], &through);
    assert!(
        text(&out.stderr).contains("kernel filesystem"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        pattern
    );
    // Nor is /proc archived: `cp live:/ -` lists its mount point only.
    let all = env.run(&["cp", "live:/", "-"]);
    check(&all, "cp live:/ -");
    let names = tar_names(&all.stdout);
    assert!(names.iter().any(|n| n == "/proc/"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("/proc/") && n != "/proc/"),
        "{names:?}"
    );
    // What the symlink-then-write tar wrote went to the container's side.
    let inside = format!("{}/c.txt", canary.path());
    assert_eq!(env.ok(&["exec", "live", "cat", &inside]), "pwned\n");

    let stopped = [
        "run",
        "--network",
        "none",
        "--name",
        "stopped",
        IMAGE,
        "sh",
        "-c",
    ];
    env.ok(&[&stopped[..], &[links.as_str()]].concat());
    attack(&env, &canary, "stopped");
    // Export lists the links as links, nothing of the host.
    let tar = env.run(&["export", "stopped"]);
    check(&tar, "export stopped");
    let mut archive = tar::Archive::new(&tar.stdout[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = text(&entry.path_bytes());
        if name == "esc" {
            assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
        }
        assert!(!name.starts_with("esc/"), "export followed /esc: {name}");
    }
    env.ok(&["verify"]);
}

#[test]
fn diff_lists_docker_lines_in_walk_order() {
    if !prerequisites("diff_lists_docker_lines_in_walk_order") {
        return;
    }
    let env = Env::new();
    let script = "mkdir /new && echo x > /new/f && echo y >> /etc/passwd && rm /bin/cat \
                  && rm -r /home && mkdir /home && touch /home/z";
    env.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "d",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let diff = env.ok(&["diff", "d"]);
    // dockerd 26.1.5 (overlay2) prints these lines for the same script, in
    // an order of its own that varies between runs; this is one of them.
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines,
        [
            "C /bin",
            "D /bin/cat",
            "C /etc",
            "C /etc/passwd",
            "C /home",
            "A /home/z",
            "D /home/app",
            "A /new",
            "A /new/f",
        ],
        "{diff}"
    );
    // A fresh container has no changes; `container diff` is the same command.
    env.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "fresh",
        IMAGE,
        "true",
    ]);
    assert_eq!(env.ok(&["container", "diff", "fresh"]), "");
    let err = env.fails(&["diff", "no-such-container"]);
    assert!(err.contains("no such container"), "{err}");
}

#[test]
fn export_lists_the_merged_tree_without_deleted_files_or_volumes() {
    if !prerequisites("export_lists_the_merged_tree_without_deleted_files_or_volumes") {
        return;
    }
    let env = Env::new();
    let script = "echo v > /data/in-volume; echo n > /new; rm /etc/group; echo p >> /etc/passwd";
    let run = [
        "run",
        "--network",
        "none",
        "--name",
        "e",
        "-v",
        "/data",
        IMAGE,
        "sh",
        "-c",
    ];
    env.ok(&[&run[..], &[script]].concat());
    let file = env.dir.path().join("e.tar");
    env.ok(&["export", "-o", file.to_str().unwrap(), "e"]);
    let bytes = fs::read(&file).unwrap();
    let stdout = env.run(&["container", "export", "e"]);
    check(&stdout, "container export e");
    assert_eq!(stdout.stdout, bytes, "export -o and stdout differ");
    let names = tar_names(&bytes);
    for present in ["new", "etc/", "etc/passwd", "bin/busybox"] {
        assert!(
            names.iter().any(|n| n == present),
            "{present} missing: {names:?}"
        );
    }
    for absent in ["etc/group", "data/in-volume"] {
        assert!(
            !names.iter().any(|n| n == absent),
            "{absent} exported: {names:?}"
        );
    }
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if text(&entry.path_bytes()) == "etc/passwd" {
            let mut passwd = String::new();
            std::io::Read::read_to_string(&mut entry, &mut passwd).unwrap();
            assert!(passwd.ends_with("p\n"), "the upper's passwd: {passwd}");
        }
    }
    // Nothing half-written is left next to the output.
    let leftovers: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cp_racing_a_directory_swapped_for_a_symlink_never_reaches_the_host() {
    if !prerequisites("cp_racing_a_directory_swapped_for_a_symlink_never_reaches_the_host") {
        return;
    }
    let env = Env::new();
    let canary = Canary::new(&env);
    // CVE-2018-15664's race: the container swaps /w/d, a directory holding
    // c.txt, for a symlink to the canary's path, over and over.
    let script = format!(
        "mkdir /w; while true; do mkdir /w/d; echo CONT > /w/d/c.txt; rm -rf /w/d; \
         ln -s {c} /w/d; rm /w/d; done",
        c = canary.path()
    );
    let run = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "racer",
        IMAGE,
        "sh",
        "-c",
    ];
    env.ok(&[&run[..], &[script.as_str()]].concat());
    let payload = env.dir.path().join("payload");
    fs::write(&payload, "pwned\n").unwrap();
    let out = env.dir.path().join("read");
    let mut landed = 0;
    for _ in 0..60 {
        let _ = env.run(&["cp", payload.to_str().unwrap(), "racer:/w/d/c.txt"]);
        let _ = fs::remove_file(&out);
        if env
            .run(&["cp", "racer:/w/d/c.txt", out.to_str().unwrap()])
            .status
            .success()
        {
            let got = fs::read_to_string(&out).unwrap_or_default();
            assert_ne!(got, "HOST\n", "cp read the host's canary");
            landed += 1;
        }
    }
    canary.assert_untouched("cp racing a symlink swap");
    eprintln!("cp_racing: {landed} of 60 reads found the container's file");
}
