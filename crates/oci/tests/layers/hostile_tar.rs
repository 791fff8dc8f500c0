//! Tar parser differentials and overlay xattrs: hand-made layers whose PAX
//! and GNU records override the ustar header are extracted as the entry
//! list GNU tar reports (and docker's Go reader sees), never escape, and
//! never carry overlayfs xattrs into a snapshot; a 10^6-entry layer
//! extracts in bounded memory and the entry cap holds.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use buildr_cache::Store;
use buildr_oci::{
    ClientOptions, Descriptor, Digest, Error, ExtractMode, ExtractOptions, ImageConfig, Manifest,
    PullOptions, PushOptions, Reference, RegistryClient, RootFs, extract_layer, media_type,
    unpack_layer,
};
use buildr_testkit::prereq::{need_root, need_tool};
use buildr_testkit::tree::{Detail, snapshot, snapshot_except};
use tar::{EntryType, Header};

/// Builds tars byte by byte, without the checks a well-behaved writer does.
#[derive(Default)]
struct RawTar(Vec<u8>);

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> key=value\n", where <len> counts itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

impl RawTar {
    fn push(&mut self, mut h: Header, data: &[u8]) -> &mut RawTar {
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A ustar header (GNU tar and Go accept both; ustar is what PAX
    /// archives use) with `size` as the header's own claim.
    fn header(name: &[u8], kind: EntryType, link: &[u8], size: u64) -> Header {
        let mut h = Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(size);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn entry(&mut self, name: &str, kind: EntryType, link: &str, data: &[u8]) -> &mut RawTar {
        let h = RawTar::header(name.as_bytes(), kind, link.as_bytes(), data.len() as u64);
        self.push(h, data)
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        self.entry(name, EntryType::Regular, "", data)
    }

    /// A pre-POSIX entry: type flag NUL (a file, or a directory when the
    /// name ends in `/`).
    fn legacy(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        let mut h = RawTar::header(name.as_bytes(), EntryType::Regular, b"", data.len() as u64);
        h.as_old_mut().linkflag[0] = 0;
        self.push(h, data)
    }

    fn dir(&mut self, name: &str) -> &mut RawTar {
        self.entry(name, EntryType::Directory, "", b"")
    }

    /// A file whose ustar header claims `claimed` bytes while `data` is
    /// what follows (a PAX `size` record decides which is right).
    fn file_claiming(&mut self, name: &str, claimed: u64, data: &[u8]) -> &mut RawTar {
        let h = RawTar::header(name.as_bytes(), EntryType::Regular, b"", claimed);
        self.push(h, data)
    }

    fn pax_kind(&mut self, kind: EntryType, records: &[(&str, &[u8])]) -> &mut RawTar {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let name: &[u8] = if kind == EntryType::XGlobalHeader {
            b"pax_global_header"
        } else {
            b"PaxHeaders/x"
        };
        let h = RawTar::header(name, kind, b"", data.len() as u64);
        self.push(h, &data)
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut RawTar {
        self.pax_kind(EntryType::XHeader, records)
    }

    fn gnu_long(&mut self, kind: EntryType, value: &str) -> &mut RawTar {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        let mut h = Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        self.push(h, &data)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// A temp dir with `target/` to extract into and `outside/canary` next to
/// it; every extraction checks the canary and the rest of the host side.
struct Scene {
    tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        let canary = tmp.path().join("outside/canary");
        fs::write(&canary, "canary").unwrap();
        fs::set_permissions(&canary, fs::Permissions::from_mode(0o640)).unwrap();
        Scene { tmp }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.tmp.path().join(name)
    }

    /// Extracts `tar` into a fresh `name/` with our extractor.
    fn ours(&self, name: &str, tar: &[u8], opts: &ExtractOptions) -> Result<(), Error> {
        let before = snapshot_except(self.tmp.path(), Some(name), Detail::Full);
        let dest = self.path(name);
        fs::create_dir(&dest).unwrap();
        let result = extract_layer(tar, &dest, opts).map(|_| ());
        let after = snapshot_except(self.tmp.path(), Some(name), Detail::Full);
        assert_eq!(before, after, "something outside {name}/ changed");
        let canary = self.path("outside/canary");
        assert_eq!(fs::read_to_string(&canary).unwrap(), "canary");
        assert_eq!(
            fs::metadata(&canary).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        result
    }

    /// Extracts `tar` into a fresh `name/` with GNU tar; returns whether it
    /// succeeded.
    fn gnu(&self, name: &str, tar: &[u8]) -> bool {
        let dest = self.path(name);
        fs::create_dir(&dest).unwrap();
        let file = self.path(&format!("{name}.tar"));
        fs::write(&file, tar).unwrap();
        let out = Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&dest)
            .args(["--no-same-owner", "--no-same-permissions"])
            .output()
            .unwrap();
        out.status.success()
    }
}

/// GNU tar's entry list (`tar -tf`), ustar/PAX/GNU records applied.
fn gnu_list(tar: &[u8]) -> (Vec<String>, bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.tar");
    fs::write(&file, tar).unwrap();
    let out = Command::new("tar").arg("-tf").arg(&file).output().unwrap();
    let names = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (names, out.status.success())
}

/// The entry list the `tar` crate (under our extractor) reads.
fn our_list(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

/// Path -> (kind, content or link target): what both extractors must agree on.
fn shape(root: &Path) -> BTreeMap<String, (String, String)> {
    snapshot(root, Detail::Full)
        .into_iter()
        .map(|(path, node)| (path, (node.kind.to_owned(), node.content)))
        .collect()
}

fn opts() -> ExtractOptions {
    ExtractOptions {
        devices: false,
        ..ExtractOptions::default()
    }
}

/// Cases both extractors accept: the trees they produce must be the same.
fn agreeing_cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "pax path overrides the ustar name",
            RawTar::default()
                .pax(&[("path", b"pax/real-name")])
                .file("harmless", b"payload")
                .finish(),
        ),
        (
            "pax linkpath overrides the ustar linkname",
            RawTar::default()
                .file("target-b", b"b")
                .pax(&[("linkpath", b"target-b")])
                .entry("link", EntryType::Symlink, "target-a", b"")
                .pax(&[("linkpath", b"target-b")])
                .entry("hard", EntryType::Link, "missing", b"")
                .finish(),
        ),
        (
            "pax size larger than the ustar size",
            RawTar::default()
                .pax(&[("size", b"700")])
                .file_claiming("grown", 3, &[b'g'; 700])
                .file("after", b"next entry")
                .finish(),
        ),
        (
            "pax size smaller than the ustar size",
            RawTar::default()
                .pax(&[("size", b"2")])
                .file_claiming("shrunk", 1500, b"ok")
                .file("after", b"next entry")
                .finish(),
        ),
        (
            "gnu long name and long link",
            RawTar::default()
                .gnu_long(
                    EntryType::GNULongName,
                    &format!("{}long-file", "dir/".repeat(40)),
                )
                .file("short", b"long")
                .gnu_long(
                    EntryType::GNULongLink,
                    &format!("{}long-file", "dir/".repeat(40)),
                )
                .entry("lnk", EntryType::Symlink, "short", b"")
                .finish(),
        ),
        (
            "old-style directory: NUL type flag and a trailing slash",
            RawTar::default()
                .legacy("old-dir/", b"")
                .legacy("old-file", b"f")
                .finish(),
        ),
        (
            "duplicate entries: the last one wins",
            RawTar::default()
                .file("dup", b"first")
                .file("dup", b"second")
                .dir("was-file")
                .file("was-file", b"now a file")
                .file("was-dir", b"file")
                .dir("was-dir")
                .file("was-dir/child", b"child")
                .finish(),
        ),
    ]
}

#[test]
fn pax_and_gnu_records_give_the_entry_list_gnu_tar_reports() {
    let test = "pax_and_gnu_records_give_the_entry_list_gnu_tar_reports";
    if !need_tool(test, "tar") {
        return;
    }
    let s = Scene::new();
    for (i, (case, tar)) in agreeing_cases().into_iter().enumerate() {
        let (gnu_names, ok) = gnu_list(&tar);
        assert!(ok, "{case}: GNU tar refused the listing");
        assert_eq!(our_list(&tar), gnu_names, "{case}: entry lists differ");
        let (a, b) = (format!("ours{i}"), format!("gnu{i}"));
        s.ours(&a, &tar, &opts())
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(s.gnu(&b, &tar), "{case}: GNU tar refused to extract");
        assert_eq!(
            shape(&s.path(&a)),
            shape(&s.path(&b)),
            "{case}: trees differ"
        );
    }
    // Spot checks that the records really were applied.
    let grown = fs::read(s.path("ours2/grown")).unwrap();
    assert_eq!(grown.len(), 700);
    assert_eq!(fs::read(s.path("ours2/after")).unwrap(), b"next entry");
    assert_eq!(fs::read(s.path("ours3/shrunk")).unwrap(), b"ok");
    assert!(!s.path("ours0/harmless").exists());
    assert_eq!(fs::read(s.path("ours0/pax/real-name")).unwrap(), b"payload");
    assert_eq!(
        fs::read_link(s.path("ours1/link")).unwrap(),
        Path::new("target-b")
    );
    assert!(s.path("ours5/old-dir").is_dir());
    assert_eq!(fs::read(s.path("ours6/dup")).unwrap(), b"second");
}

/// Names that only the PAX or GNU records make hostile: the ustar name is
/// harmless, the effective one escapes. GNU tar lists the effective name;
/// we refuse the entry and name it, never writing outside.
#[test]
fn hostile_names_hidden_in_pax_and_gnu_records_are_refused_by_name() {
    let test = "hostile_names_hidden_in_pax_and_gnu_records_are_refused_by_name";
    if !need_tool(test, "tar") {
        return;
    }
    let s = Scene::new();
    let escape = "../outside/canary";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "pax path with ..",
            RawTar::default()
                .pax(&[("path", escape.as_bytes())])
                .file("harmless", b"pwned")
                .finish(),
            escape,
        ),
        (
            "pax path absolute with ..",
            RawTar::default()
                .pax(&[("path", b"/a/../../outside/canary")])
                .file("harmless", b"pwned")
                .finish(),
            "/a/../../outside/canary",
        ),
        (
            "gnu long name with ..",
            RawTar::default()
                .gnu_long(EntryType::GNULongName, escape)
                .file("harmless", b"pwned")
                .finish(),
            escape,
        ),
        (
            "pax linkpath of a hardlink with ..",
            RawTar::default()
                .pax(&[("linkpath", escape.as_bytes())])
                .entry("hard", EntryType::Link, "harmless", b"")
                .finish(),
            escape,
        ),
    ];
    for (i, (case, tar, effective)) in cases.into_iter().enumerate() {
        let (names, _) = gnu_list(&tar);
        let listed = our_list(&tar);
        assert_eq!(listed, names, "{case}: entry lists differ");
        let err = s
            .ours(&format!("t{i}"), &tar, &opts())
            .expect_err(case)
            .to_string();
        assert!(
            err.contains(effective) || err.contains(&listed[0]),
            "{case}: error does not name the entry: {err}"
        );
        assert!(err.contains(".."), "{case}: {err}");
    }
    // A PAX path with a NUL byte is refused too (GNU tar truncates it).
    let tar = RawTar::default()
        .pax(&[("path", b"ok\0/../../x")])
        .file("harmless", b"pwned")
        .finish();
    let err = s.ours("nul", &tar, &opts()).unwrap_err().to_string();
    assert!(err.contains("NUL"), "{err}");
}

/// A global PAX header (`g`) is not an entry and its records are not
/// applied to later entries: docker's Go reader and we both skip it, so a
/// global `path` cannot rename what follows. (GNU tar applies global
/// records; the layer's meaning is docker's.)
#[test]
fn global_pax_headers_are_skipped_like_docker() {
    let s = Scene::new();
    let tar = RawTar::default()
        .pax_kind(
            EntryType::XGlobalHeader,
            &[("path", b"../outside/canary"), ("comment", b"x")],
        )
        .file("first", b"1")
        .file("second", b"2")
        .finish();
    s.ours("g", &tar, &opts()).unwrap();
    let got = shape(&s.path("g"));
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        ["first", "second"],
        "{got:?}"
    );
    assert_eq!(fs::read(s.path("g/second")).unwrap(), b"2");
}

/// Mismatched and conflicting records are either read one documented way
/// or refused; never a panic, never an escape, and the next entry is read
/// from where the PAX size says the data ends.
#[test]
fn conflicting_records_are_refused_or_read_one_way() {
    let s = Scene::new();
    // A symlink, then a file of the same name: the file replaces the link
    // and is never written through it (as docker; GNU tar's delayed
    // placeholders for absolute links make its result vary).
    let tar = RawTar::default()
        .entry("was-link", EntryType::Symlink, "/etc", b"")
        .file("was-link", b"replaced, not followed")
        .entry("dir-link", EntryType::Symlink, "/etc", b"")
        .dir("dir-link")
        .file("dir-link/x", b"inside")
        .finish();
    s.ours("relink", &tar, &opts()).unwrap();
    assert_eq!(
        fs::read(s.path("relink/was-link")).unwrap(),
        b"replaced, not followed"
    );
    assert!(
        fs::symlink_metadata(s.path("relink/dir-link"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(fs::read(s.path("relink/dir-link/x")).unwrap(), b"inside");
    // Two PAX headers for one entry: refused (the tar crate will not guess
    // which one wins).
    let tar = RawTar::default()
        .pax(&[("path", b"one")])
        .pax(&[("path", b"../outside/canary")])
        .file("harmless", b"x")
        .finish();
    let err = s.ours("two-pax", &tar, &opts()).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    // A PAX size that runs past the end of the stream: a read error, not a
    // hang or a short file left looking complete.
    let tar = RawTar::default()
        .pax(&[("size", b"99999999")])
        .file_claiming("short", 1, b"x")
        .finish();
    let err = s.ours("past-end", &tar, &opts()).unwrap_err();
    assert!(
        matches!(err, Error::Read { .. } | Error::Apply { .. }),
        "{err:?}"
    );
    // A PAX size that is not a number is an error, not a guess.
    let tar = RawTar::default()
        .pax(&[("size", b"12abc")])
        .file("bad", b"x")
        .finish();
    let err = s.ours("bad-size", &tar, &opts()).unwrap_err().to_string();
    assert!(
        err.contains("malformed PAX size") && err.contains("bad"),
        "{err}"
    );
    // The same on a whiteout, which carries no xattrs.
    let tar = RawTar::default()
        .pax(&[("uid", b"-1")])
        .file("dir/.wh.bad", b"")
        .finish();
    let err = s.ours("bad-uid", &tar, &opts()).unwrap_err().to_string();
    assert!(
        err.contains("malformed PAX uid") && err.contains(".wh.bad"),
        "{err}"
    );
    // A PAX size far above the byte cap hits the cap.
    let tar = RawTar::default()
        .pax(&[("size", b"1000000000000")])
        .file("huge", b"x")
        .finish();
    let capped = ExtractOptions {
        max_bytes: 1 << 20,
        ..opts()
    };
    let err = s.ours("huge", &tar, &capped).unwrap_err();
    assert!(
        matches!(err, Error::Limit { .. } | Error::Read { .. }),
        "{err:?}"
    );
}

fn xattrs_of(path: &Path) -> Vec<String> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut buf[..]).unwrap();
    let mut names: Vec<String> = buf[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    names
}

const OVERLAY_XATTRS: [(&str, &[u8]); 6] = [
    ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
    ("SCHILY.xattr.trusted.overlay.metacopy", b""),
    ("SCHILY.xattr.trusted.overlay.origin", b"\0\xfb"),
    ("SCHILY.xattr.user.overlay.opaque", b"y"),
    ("SCHILY.xattr.user.overlay.redirect", b"/etc"),
];

fn forged_layer() -> Vec<u8> {
    let mut dir_records = OVERLAY_XATTRS.to_vec();
    dir_records.push(("SCHILY.xattr.user.kept", b"1"));
    RawTar::default()
        .pax(&dir_records)
        .dir("shadowed")
        .pax(&dir_records)
        .file("file", b"data")
        .finish()
}

/// Overlayfs xattrs carried in a layer are dropped in both modes, so a
/// layer cannot forge an opaque dir, a redirect or a metacopy in a
/// snapshot; an ordinary user xattr still arrives.
#[test]
fn overlay_xattrs_in_layers_are_never_applied() {
    let test = "overlay_xattrs_in_layers_are_never_applied";
    if !need_root(test) {
        return;
    }
    let s = Scene::new();
    for (name, mode) in [
        ("apply", ExtractMode::Apply),
        ("overlay", ExtractMode::Overlay),
    ] {
        let o = ExtractOptions { mode, ..opts() };
        s.ours(name, &forged_layer(), &o).unwrap();
        for path in ["shadowed", "file"] {
            let got = xattrs_of(&s.path(&format!("{name}/{path}")));
            assert_eq!(got, ["user.kept"], "{name}/{path}: {got:?}");
        }
    }
    // A real opaque marker in overlay mode still sets buildr's own xattr.
    let tar = RawTar::default()
        .dir("real")
        .file("real/.wh..wh..opq", b"")
        .finish();
    s.ours(
        "marker",
        &tar,
        &ExtractOptions {
            mode: ExtractMode::Overlay,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(
        xattrs_of(&s.path("marker/real")),
        ["trusted.overlay.opaque"]
    );
}

/// The effect, not just the xattr: a snapshot made from the forged layer
/// and stacked over a lower layer in a real overlay mount hides nothing.
#[test]
fn forged_opaque_dirs_hide_nothing_in_a_real_overlay_mount() {
    let test = "forged_opaque_dirs_hide_nothing_in_a_real_overlay_mount";
    if !need_root(test) || !need_tool(test, "mount") {
        return;
    }
    let s = Scene::new();
    let lower = s.path("lower");
    fs::create_dir_all(lower.join("shadowed")).unwrap();
    fs::write(lower.join("shadowed/from-lower"), "lower").unwrap();
    s.ours(
        "upper",
        &forged_layer(),
        &ExtractOptions {
            mode: ExtractMode::Overlay,
            ..opts()
        },
    )
    .unwrap();
    let merged = s.path("merged");
    fs::create_dir(&merged).unwrap();
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={}:{}",
            s.path("upper").display(),
            lower.display()
        ))
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "overlay mount failed");
    let seen = fs::read_to_string(merged.join("shadowed/from-lower"));
    let file = fs::read_to_string(merged.join("file"));
    let _ = Command::new("umount").arg(&merged).status();
    assert_eq!(
        seen.unwrap(),
        "lower",
        "the forged opaque xattr hid the lower dir"
    );
    assert_eq!(file.unwrap(), "data");
}

/// Files the hardlinks of [`ManyEntries`] point at (ext4 allows 65000
/// links per inode).
const TARGETS: u64 = 50;

/// Entries of [`ManyEntries`] below this index create something.
const LINKS: u64 = 100_000;

/// A tar of `n` entries generated on the fly: [`TARGETS`] one-byte files,
/// then hardlinks to them, 1000 per directory (a dirent each, no inode
/// each) up to [`LINKS`], then whiteouts of paths that do not exist (the
/// extractor looks each one up; the machine's syscall rate, not buildr,
/// would make 10^6 created paths take minutes).
struct ManyEntries {
    n: u64,
    next: u64,
    block: Vec<u8>,
    pos: usize,
}

impl ManyEntries {
    fn new(n: u64) -> ManyEntries {
        ManyEntries {
            n,
            next: 0,
            block: Vec::new(),
            pos: 0,
        }
    }

    fn refill(&mut self) {
        self.pos = 0;
        self.block.clear();
        let i = self.next;
        if i > self.n {
            return;
        }
        self.next += 1;
        if i == self.n {
            self.block.resize(1024, 0);
            return;
        }
        let mut h = if i < TARGETS {
            RawTar::header(format!("f{i}").as_bytes(), EntryType::Regular, b"", 1)
        } else if i >= LINKS {
            let name = format!("gone{}/.wh.w{i}", i / 1000);
            RawTar::header(name.as_bytes(), EntryType::Regular, b"", 0)
        } else {
            let name = format!("d{:03}/l{i}", i / 1000);
            let target = format!("f{}", i % TARGETS);
            RawTar::header(name.as_bytes(), EntryType::Link, target.as_bytes(), 0)
        };
        h.set_cksum();
        self.block.extend_from_slice(h.as_bytes());
        if i < TARGETS {
            let mut data = [0u8; 512];
            data[0] = b'x';
            self.block.extend_from_slice(&data);
        }
    }
}

impl Read for ManyEntries {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.block.len() {
            self.refill();
            if self.block.is_empty() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 10^6 entries streamed through the extractor: it succeeds under the
/// default cap (2 * 10^6) with memory far below the tar's 512 MB, and the
/// same stream under a 1000-entry cap stops with an error naming the entry
/// where the cap was hit.
#[test]
fn a_million_entry_layer_extracts_in_bounded_memory_and_the_cap_holds() {
    let s = Scene::new();
    let before = peak_rss_kib();
    let start = Instant::now();
    let dest = s.path("million");
    fs::create_dir(&dest).unwrap();
    let stats = extract_layer(ManyEntries::new(1_000_000), &dest, &opts()).unwrap();
    let took = start.elapsed();
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("10^6 entries extracted in {took:?}, peak RSS grew by {grown_mib} MiB");
    assert_eq!(stats.entries, 1_000_000);
    assert_eq!(fs::read_dir(dest.join("d099")).unwrap().count(), 1000);
    assert!(!dest.join("d100").exists() && !dest.join("gone100").exists());
    let start = Instant::now();
    let links = std::os::unix::fs::MetadataExt::nlink(&fs::metadata(dest.join("f7")).unwrap());
    assert_eq!(links, (LINKS - TARGETS) / TARGETS + 1);
    // The tar is 512 MB of headers; the extractor keeps one set entry per
    // created path, nothing proportional to the bytes.
    assert!(grown_mib < 200, "peak RSS grew by {grown_mib} MiB");
    fs::remove_dir_all(&dest).unwrap();

    let capped = ExtractOptions {
        max_entries: 1000,
        ..opts()
    };
    let dest = s.path("capped");
    fs::create_dir(&dest).unwrap();
    match extract_layer(ManyEntries::new(1_000_000), &dest, &capped) {
        Err(
            e @ Error::Limit {
                what: "entries",
                limit: 1000,
                ..
            },
        ) => assert!(e.to_string().contains("d001/l1000"), "{e}"),
        other => panic!("expected the entry cap, got {other:?}"),
    }
    eprintln!("removal and the capped run took {:?}", start.elapsed());
}

/// One image per tar (an uncompressed layer), written to `store`.
fn image_of(store: &Store, tar: &[u8]) -> Digest {
    let layer = store.put_blob(tar).unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.digest],
        },
        ..ImageConfig::default()
    };
    let config = store
        .put_blob(&serde_json::to_vec(&config).unwrap())
        .unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, config.digest, config.size),
        layers: vec![Descriptor::new(
            media_type::OCI_LAYER,
            layer.digest,
            layer.size,
        )],
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    store
        .put_blob(&serde_json::to_vec(&manifest).unwrap())
        .unwrap()
        .digest
}

/// The same corpus pushed to a real `docker-registry` on loopback, pulled
/// back and unpacked as the engine does (overlay form, through the
/// registry's digest-checking `unpack_layer`): the refusals and the
/// dropped xattrs are the same as for a local tar.
#[test]
fn the_corpus_through_a_real_registry_pull_never_escapes() {
    let test = "the_corpus_through_a_real_registry_pull_never_escapes";
    if !need_root(test) {
        return;
    }
    let Some(registry) = buildr_testkit::registry::Registry::start(test, None) else {
        return;
    };
    let escape = "../outside/canary";
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "pax-path",
            RawTar::default()
                .pax(&[("path", escape.as_bytes())])
                .file("harmless", b"pwned")
                .finish(),
            Some(".."),
        ),
        (
            "gnu-longname",
            RawTar::default()
                .gnu_long(EntryType::GNULongName, escape)
                .file("harmless", b"pwned")
                .finish(),
            Some(".."),
        ),
        (
            "pax-linkpath",
            RawTar::default()
                .pax(&[("linkpath", escape.as_bytes())])
                .entry("hard", EntryType::Link, "harmless", b"")
                .finish(),
            Some(".."),
        ),
        (
            "bad-pax-size",
            RawTar::default()
                .pax(&[("size", b"1x")])
                .file("bad", b"x")
                .finish(),
            Some("malformed PAX size"),
        ),
        ("overlay-xattrs", forged_layer(), None),
    ];
    let src_dir = tempfile::tempdir().unwrap();
    let src = Store::open(src_dir.path()).unwrap();
    let client = RegistryClient::new(ClientOptions::default());
    let s = Scene::new();
    for (name, tar, refusal) in cases {
        let digest = image_of(&src, &tar);
        let target = Reference::parse(&format!("{}/hostile/{name}:v1", registry.addr)).unwrap();
        client
            .push(&src, &digest, &target, &PushOptions::default())
            .unwrap();
        let dst_dir = tempfile::tempdir().unwrap();
        let dst = Store::open(dst_dir.path()).unwrap();
        let pulled = client
            .pull(&dst, &target, &PullOptions::default())
            .unwrap_or_else(|e| panic!("{name}: pull: {e}"));
        assert_eq!(pulled.manifest_digest, digest);
        let manifest: Manifest =
            serde_json::from_slice(&dst.read_blob(&digest, 1 << 20).unwrap()).unwrap();
        let dest = s.path(name);
        let before = snapshot_except(s.tmp.path(), Some(name), Detail::Full);
        fs::create_dir(&dest).unwrap();
        let o = ExtractOptions {
            mode: ExtractMode::Overlay,
            ..opts()
        };
        let result = unpack_layer(&dst, &manifest.layers[0], &dest, &o);
        assert_eq!(
            before,
            snapshot_except(s.tmp.path(), Some(name), Detail::Full),
            "{name}: escaped"
        );
        assert_eq!(
            fs::read_to_string(s.path("outside/canary")).unwrap(),
            "canary"
        );
        match refusal {
            Some(what) => {
                let err = result.expect_err(name).to_string();
                assert!(err.contains(what), "{name}: {err}");
            }
            None => {
                result.unwrap();
                assert_eq!(xattrs_of(&dest.join("shadowed")), ["user.kept"]);
                assert_eq!(xattrs_of(&dest.join("file")), ["user.kept"]);
            }
        }
        assert!(dst.verify().unwrap().is_empty());
    }
}
