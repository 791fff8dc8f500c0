//! Hostile RUN steps through real builds: the classic container escapes
//! (CVE-2022-0492 cgroup v1 `release_agent`, `core_pattern`, sysrq, mount,
//! a block device for the host disk, CVE-2019-5736 `/proc/1/exe`,
//! CVE-2024-21626 leaked fds and `WORKDIR /proc/self/fd/N`) and entitlements
//! refused without an explicit allow. Each asserts host facts afterwards:
//! canary files unchanged, the buildr binary unchanged, `buildr verify`
//! clean.
//!
//! Needs root, overlayfs, busybox-static, umoci and tar (see
//! `build_common`); skips loudly without them, fails under `CI=true`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::build_common::{BIN, Env};
use sha2::{Digest as _, Sha256};

/// A host file whose content, mode and owner must survive the build.
struct Canary {
    path: PathBuf,
    content: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Canary {
    fn new(path: &Path, content: &[u8]) -> Canary {
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o640)).unwrap();
        Canary::of(path)
    }

    fn of(path: &Path) -> Canary {
        let meta = fs::metadata(path).unwrap();
        Canary {
            path: path.to_owned(),
            content: fs::read(path).unwrap(),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    fn assert_unchanged(&self) {
        let now = Canary::of(&self.path);
        assert!(
            now.content == self.content,
            "{} changed",
            self.path.display()
        );
        assert_eq!(
            (now.mode, now.uid, now.gid),
            (self.mode, self.uid, self.gid),
            "mode/owner of {} changed",
            self.path.display()
        );
    }
}

fn sha256_of(path: &str) -> String {
    format!("{:x}", Sha256::digest(fs::read(path).unwrap()))
}

fn proc_value(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// `buildr verify` on the env's store must report nothing.
fn assert_verify_clean(env: &Env) {
    let out = env.buildr(&["verify"]);
    assert!(
        out.status.success(),
        "buildr verify found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stdout/stderr the build's RUN steps printed, from the json events.
fn run_output(build: &crate::build_common::Build) -> String {
    build
        .events()
        .iter()
        .filter(|e| e["event"] == "log")
        .map(|e| e["data"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn context(env: &Env, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
    dir
}

/// Every attempt prints `ESCAPED: what` if it worked, and the script ends
/// with `PROBE-DONE` so a probe that did not run cannot pass.
const PROBE: &str = r#"#!/bin/sh
esc() { echo "ESCAPED: $*"; }
# CVE-2022-0492: mount a cgroup v1 hierarchy, set release_agent.
mkdir -p /tmp/cg
for ctl in memory rdma pids cpu,cpuacct devices freezer; do
  if mount -t cgroup -o "$ctl" cgroup /tmp/cg 2>/dev/null; then
    esc "mounted cgroup v1 $ctl"
    echo 1 > /tmp/cg/notify_on_release 2>/dev/null && esc "set notify_on_release ($ctl)"
    echo /tmp/pwn > /tmp/cg/release_agent 2>/dev/null && esc "wrote release_agent ($ctl)"
    umount /tmp/cg 2>/dev/null
  fi
done
for f in /sys/fs/cgroup/release_agent /sys/fs/cgroup/*/release_agent; do
  [ -e "$f" ] && { echo /tmp/pwn > "$f"; } 2>/dev/null && esc "wrote $f"
done
for f in /sys/fs/cgroup/*/notify_on_release /sys/fs/cgroup/notify_on_release; do
  [ -e "$f" ] && { echo 1 > "$f"; } 2>/dev/null && esc "wrote $f"
done
# Kernel knobs.
{ echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern; } 2>/dev/null && esc "wrote core_pattern"
{ echo h > /proc/sysrq-trigger; } 2>/dev/null && esc "wrote sysrq-trigger"
{ echo 0 > /proc/sys/kernel/randomize_va_space; } 2>/dev/null && esc "wrote a sysctl"
# Mounts.
mount -t tmpfs none /mnt 2>/dev/null && esc "mounted a tmpfs"
mount -o remount,rw /proc/sys 2>/dev/null && esc "remounted /proc/sys rw"
mount -t proc proc /mnt 2>/dev/null && esc "mounted a new proc"
# The host's disk as a block device.
if mknod /tmp/hostdisk b "$HOST_MAJOR" "$HOST_MINOR" 2>/dev/null; then
  head -c 512 /tmp/hostdisk > /dev/null 2>&1 && esc "read the host disk"
  { echo x >> /tmp/hostdisk; } 2>/dev/null && esc "opened the host disk for write"
fi
# CVE-2019-5736: the runtime binary through /proc/<pid>/exe.
for pid in 1 $PPID; do
  { echo x >> /proc/$pid/exe; } 2>/dev/null && esc "opened /proc/$pid/exe for write"
  t=$(readlink /proc/$pid/exe 2>/dev/null)
  case "$t" in *buildr*|*target*|*deps*) esc "/proc/$pid/exe is the host binary $t";; esac
  head -c 1 /proc/$pid/mem > /dev/null 2>&1 && esc "read /proc/$pid/mem"
done
# ptrace of pid 1 (nsenter needs ptrace-level access to its namespaces).
nsenter -t 1 -m -- true 2>/dev/null && esc "nsenter into pid 1"
# Capabilities nobody inherits.
grep -q '^CapInh:	0000000000000000$' /proc/self/status || esc "CapInh is $(grep CapInh /proc/self/status)"
grep -q '^CapAmb:	0000000000000000$' /proc/self/status || esc "CapAmb is $(grep CapAmb /proc/self/status)"
grep -q '^NoNewPrivs:	1$' /proc/self/status || echo "note: no_new_privs is off"
echo PROBE-DONE
"#;

#[test]
fn escape_attempts_in_run_all_fail_and_leave_the_host_alone() {
    let Some(env) = Env::new("hostile-escapes") else {
        return;
    };
    let canary = Canary::new(&env.dir.path().join("canary"), b"host canary\n");
    let host_files = ["/proc/sys/kernel/core_pattern"].map(|p| (p, proc_value(p)));
    let bin_hash = sha256_of(BIN);
    let root_dev = fs::metadata("/").unwrap().dev();
    let (major, minor) = (
        ((root_dev >> 8) & 0xfff) | ((root_dev >> 32) & !0xfff),
        (root_dev & 0xff) | ((root_dev >> 12) & !0xff),
    );
    let ctx = context(
        &env,
        "escapes",
        "FROM buildr-fixtures/busybox:latest\n\
         ARG HOST_MAJOR\nARG HOST_MINOR\n\
         COPY probe.sh /probe.sh\n\
         RUN sh /probe.sh\n\
         RUN for f in /proc/$$/fd/*; do [ -e \"$f\" ] && echo \"fd-audit ${f##*/}\"; done; true\n",
        &[("probe.sh", PROBE)],
    );
    let build = env.build(
        &ctx,
        &[
            "--no-cache",
            "--build-arg",
            &format!("HOST_MAJOR={major}"),
            "--build-arg",
            &format!("HOST_MINOR={minor}"),
            "-t",
            "escapes:latest",
        ],
    );
    let output = run_output(&build);
    assert!(
        output.contains("PROBE-DONE"),
        "the probe did not run:\n{output}"
    );
    let escaped: Vec<&str> = output.lines().filter(|l| l.contains("ESCAPED")).collect();
    assert!(escaped.is_empty(), "escapes:\n{}", escaped.join("\n"));
    // The glob's own directory fd is listed while open, then closed: only
    // fds still open when the loop body runs are counted.
    let mut fds: Vec<u32> = output
        .lines()
        .filter_map(|l| l.strip_prefix("fd-audit "))
        .map(|n| n.trim().parse().unwrap())
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2], "fds open in RUN:\n{output}");

    canary.assert_unchanged();
    for (path, before) in host_files {
        assert_eq!(proc_value(path), before, "{path} changed");
    }
    assert_eq!(sha256_of(BIN), bin_hash, "the buildr binary changed");
    assert_verify_clean(&env);
}

/// `buildr build --progress plain` with a deadline: a hostile image must
/// never make buildr hang.
fn build_with_deadline(env: &Env, ctx: &Path, args: &[&str]) -> (bool, String) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(env.root())
        .args(["build", "--progress", "plain"])
        .args(args)
        .arg(ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("buildr build of {} hung", ctx.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), reader.join().unwrap())
}

#[test]
fn workdir_through_proc_self_fd_never_reaches_a_host_directory() {
    let Some(env) = Env::new("hostile-workdir-fd") else {
        return;
    };
    let canary = Canary::new(&env.dir.path().join("canary"), b"host canary\n");
    let mut refused = 0;
    for n in 3..64 {
        let ctx = context(
            &env,
            &format!("fd{n}"),
            &format!(
                "FROM buildr-fixtures/busybox:latest\n\
                 WORKDIR /proc/self/fd/{n}\n\
                 RUN pwd; ls -a ..; echo x > ../../../../canary-{n} 2>/dev/null; true\n"
            ),
            &[],
        );
        let (ok, stderr) = build_with_deadline(&env, &ctx, &[]);
        if ok {
            // It ran: then only inside the container.
            assert!(
                !env.dir.path().join(format!("canary-{n}")).exists(),
                "fd {n} reached the host:\n{stderr}"
            );
        } else {
            assert!(
                stderr.contains("Dockerfile:3") && stderr.contains(&format!("/proc/self/fd/{n}")),
                "fd {n}: the error names neither line nor path:\n{stderr}"
            );
            refused += 1;
        }
        assert!(!stderr.contains("host canary"), "fd {n}:\n{stderr}");
    }
    // No fd beyond 2 is open when the working directory is entered.
    assert_eq!(refused, 61);
    canary.assert_unchanged();
    assert_verify_clean(&env);
}

#[test]
fn host_network_and_insecure_security_need_an_explicit_allow() {
    let Some(env) = Env::new("hostile-entitlements") else {
        return;
    };
    for (line, name, needle) in [
        (
            "RUN --network=host true",
            "run-host",
            "--allow network.host",
        ),
        (
            "RUN --security=insecure true",
            "run-insecure",
            "security.insecure",
        ),
    ] {
        let ctx = context(
            &env,
            name,
            &format!("FROM buildr-fixtures/busybox:latest\n{line}\n"),
            &[],
        );
        let (ok, stderr) = build_with_deadline(&env, &ctx, &[]);
        assert!(!ok, "{line} was not refused:\n{stderr}");
        assert!(
            stderr.contains("Dockerfile:2") && stderr.contains(needle),
            "{line}: unclear refusal:\n{stderr}"
        );
    }
    let ctx = context(
        &env,
        "plain",
        "FROM buildr-fixtures/busybox:latest\nRUN true\n",
        &[],
    );
    let (ok, stderr) = build_with_deadline(&env, &ctx, &["--network", "host"]);
    assert!(!ok && stderr.contains("--allow network.host"), "{stderr}");
    // With the entitlement, the RUN --network=host step is allowed.
    let host = env.dir.path().join("run-host");
    let (ok, stderr) = build_with_deadline(&env, &host, &["--allow", "network.host"]);
    assert!(ok, "{stderr}");
    assert_verify_clean(&env);
}

#[test]
fn passwd_and_group_as_host_symlinks_or_fifos_are_never_read_on_the_host() {
    let Some(env) = Env::new("hostile-passwd") else {
        return;
    };
    // Host files naming a user the image does not have.
    let host_passwd = env.dir.path().join("host-passwd");
    let host_group = env.dir.path().join("host-group");
    let passwd = Canary::new(&host_passwd, b"hostonly:x:4242:4242::/:/bin/sh\n");
    let group = Canary::new(&host_group, b"hostonly:x:4242:\n");
    let link = |dir: &str| {
        format!(
            "FROM buildr-fixtures/busybox:latest\n\
             RUN rm /etc/passwd /etc/group && ln -s {p} /etc/passwd && ln -s {g} /etc/group\n{dir}\n",
            p = host_passwd.display(),
            g = host_group.display(),
        )
    };
    let cases = [
        ("chown-link", link("COPY --chown=hostonly:hostonly f /f")),
        ("user-link", link("USER hostonly\nRUN id")),
    ];
    for (name, dockerfile) in &cases {
        let ctx = context(&env, name, dockerfile, &[("f", "x")]);
        let (ok, stderr) = build_with_deadline(&env, &ctx, &[]);
        assert!(!ok, "{name}: the host's user was found:\n{stderr}");
        assert!(
            stderr.contains("unable to find user hostonly"),
            "{name}: unclear error:\n{stderr}"
        );
        assert!(
            !stderr.contains("4242"),
            "{name}: host uid leaked:\n{stderr}"
        );
    }
    // FIFOs: reading one would block forever.
    let fifo = "FROM buildr-fixtures/busybox:latest\n\
                RUN rm /etc/passwd /etc/group && mkfifo /etc/passwd /etc/group\n";
    for (name, tail) in [
        ("chown-fifo", "COPY --chown=app:app f /f"),
        ("user-fifo", "USER app\nRUN id"),
    ] {
        let ctx = context(&env, name, &format!("{fifo}{tail}\n"), &[("f", "x")]);
        let (ok, stderr) = build_with_deadline(&env, &ctx, &[]);
        assert!(!ok, "{name}: a FIFO passwd resolved a user:\n{stderr}");
        assert!(
            (stderr.contains("Dockerfile:3") || stderr.contains("Dockerfile:4"))
                && (stderr.contains("/etc/passwd is not a regular file")
                    || stderr.contains("unable to find user app")),
            "{name}: unclear error:\n{stderr}"
        );
    }
    passwd.assert_unchanged();
    group.assert_unchanged();
    assert_verify_clean(&env);
}

/// buildr resolves users and groups by parsing the image's files itself:
/// nothing in its sources calls into libc's NSS (which would dlopen
/// `libnss_*.so`, from the host, since buildr never chroots) or dlopens.
/// A trojan `libnss_*.so` in an image can then never be loaded by buildr.
/// (The tests above show the image's passwd/group are the only source:
/// a host-only user is never found.)
#[test]
fn buildr_never_calls_nss_or_dlopen() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let forbidden = [
        "getpwnam",
        "getpwuid",
        "getgrnam",
        "getgrgid",
        "getgrouplist",
        "initgroups",
        "User::from_name",
        "User::from_uid",
        "Group::from_name",
        "Group::from_gid",
        "dlopen",
        "libloading",
    ];
    // The one host-side lookup: the invoking user's own name, for its
    // /etc/subuid ranges (host NSS, host files: never the image's).
    let allowed = [("exec/src/idmap.rs", "User::from_uid")];
    let mut hits = Vec::new();
    let mut stack = vec![crates];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "tests" | "target" | "fuzz" | "benches") {
                    stack.push(path);
                }
                continue;
            }
            if !name.ends_with(".rs") {
                continue;
            }
            files += 1;
            let text = fs::read_to_string(&path).unwrap();
            for (idx, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for word in forbidden {
                    let excused = allowed
                        .iter()
                        .any(|(file, w)| *w == word && path.ends_with(file));
                    if code.contains(word) && !excused {
                        hits.push(format!("{}:{}: {}", path.display(), idx + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        files > 50,
        "the crate sources were not found ({files} files)"
    );
    assert!(
        hits.is_empty(),
        "NSS or dlopen in buildr:\n{}",
        hits.join("\n")
    );
}
