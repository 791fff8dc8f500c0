//! What two builders are compared on: the file tree an image's layers make
//! when applied in order (whiteouts and opaque directories honoured), and
//! the config fields and history pattern that change how a container runs.
//!
//! A tree is built in memory from the layer tars, never extracted, so modes,
//! owners and special files are seen exactly as the layers say, without
//! root, umask or the host's filesystem in between. File contents are
//! streamed through sha256.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a path is, with the parts that must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File {
        sha256: String,
    },
    Dir,
    /// A directory no layer has an entry for, only children.
    ImplicitDir,
    Symlink(String),
    Fifo,
    Char(u32, u32),
    Block(u32, u32),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::File { .. } => "file",
            Kind::Dir => "dir",
            Kind::ImplicitDir => "implicit dir",
            Kind::Symlink(_) => "symlink",
            Kind::Fifo => "fifo",
            Kind::Char(..) => "char device",
            Kind::Block(..) => "block device",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Paths with the same inode are hard links of each other.
    pub inode: u64,
    /// A regular file's bytes, when it is at most [`KEEP_DATA`] long.
    pub data: Option<Vec<u8>>,
}

/// Files up to this size keep their bytes in the tree, for checks on content.
pub const KEEP_DATA: u64 = 64 * 1024;

/// Absolute paths ("/a/b") to what is there; the root itself is left out.
#[derive(Debug, Default)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
    next_inode: u64,
}

/// One image as a docker archive (`docker save`) has it.
#[derive(Debug)]
pub struct Image {
    pub tree: Tree,
    pub config: Value,
}

/// Reads a docker archive: the manifest's config and its layers applied in
/// order.
pub fn read_docker_archive(archive: &Path) -> Result<Image, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let file = File::open(archive).map_err(|e| format!("open {}: {e}", archive.display()))?;
    tar::Archive::new(BufReader::new(file))
        .unpack(dir.path())
        .map_err(|e| format!("unpack {}: {e}", archive.display()))?;
    let manifest: Value = read_json(&dir.path().join("manifest.json"))?;
    let entry = manifest
        .as_array()
        .filter(|m| m.len() == 1)
        .map(|m| &m[0])
        .ok_or_else(|| format!("{}: manifest.json has not one image", archive.display()))?;
    let config_name = entry["Config"]
        .as_str()
        .ok_or_else(|| "manifest.json: no Config".to_owned())?;
    let config = read_json(&dir.path().join(config_name))?;
    let layers = entry["Layers"]
        .as_array()
        .ok_or_else(|| "manifest.json: no Layers".to_owned())?;
    let mut tree = Tree::default();
    for layer in layers {
        let name = layer
            .as_str()
            .ok_or_else(|| "manifest.json: a layer is not a string".to_owned())?;
        let path = dir.path().join(name);
        tree.apply_layer_file(&path)
            .map_err(|e| format!("layer {name}: {e}"))?;
    }
    Ok(Image { tree, config })
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parse {}: {e}", path.display()))
}

/// "./a/b/" -> "/a/b"; `None` for the root. Refuses `..`.
fn normalize(raw: &str) -> Result<Option<String>, String> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("entry {raw:?} climbs out of the root")),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!("/{}", parts.join("/"))))
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(idx) => Some(&path[..idx]),
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl Tree {
    fn apply_layer_file(&mut self, path: &Path) -> Result<(), String> {
        let mut file = File::open(path).map_err(|e| format!("open: {e}"))?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(|e| format!("read: {e}"))?;
        drop(file);
        let file = BufReader::new(File::open(path).map_err(|e| format!("open: {e}"))?);
        if n == 2 && magic == [0x1f, 0x8b] {
            self.apply_layer(flate2::read::GzDecoder::new(file))
        } else {
            self.apply_layer(file)
        }
    }

    /// Applies one layer tar. Whiteouts and opaque markers hide what lower
    /// layers have, never what this layer adds, wherever they sit in the
    /// stream.
    pub fn apply_layer(&mut self, reader: impl Read) -> Result<(), String> {
        let mut added: BTreeSet<String> = BTreeSet::new();
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| format!("entries: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("entry: {e}"))?;
            let raw = entry
                .path()
                .map_err(|e| format!("entry path: {e}"))?
                .to_string_lossy()
                .into_owned();
            let Some(path) = normalize(&raw)? else {
                continue;
            };
            let Some((dir, base)) = path.rsplit_once('/') else {
                return Err(format!("{path}: not absolute"));
            };
            let (dir, base) = (dir.to_owned(), base.to_owned());
            if base == ".wh..wh..opq" {
                self.nodes
                    .retain(|p, _| !is_under(p, &dir) || added.contains(p));
                continue;
            }
            if let Some(hidden) = base.strip_prefix(".wh.") {
                let target = format!("{dir}/{hidden}");
                if !added.contains(&target) {
                    self.remove_subtree(&target);
                }
                continue;
            }
            let header = entry.header();
            let mode = header.mode().map_err(|e| format!("{path}: mode: {e}"))? & 0o7777;
            let uid = header.uid().map_err(|e| format!("{path}: uid: {e}"))?;
            let gid = header.gid().map_err(|e| format!("{path}: gid: {e}"))?;
            let entry_type = header.entry_type();
            let device = || {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                (major, minor)
            };
            let mut data = None;
            let kind = match entry_type {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut hasher = Sha256::new();
                    if entry.size() <= KEEP_DATA {
                        let mut bytes = Vec::new();
                        entry
                            .read_to_end(&mut bytes)
                            .map_err(|e| format!("{path}: read: {e}"))?;
                        hasher.update(&bytes);
                        data = Some(bytes);
                    } else {
                        std::io::copy(&mut entry, &mut hasher)
                            .map_err(|e| format!("{path}: read: {e}"))?;
                    }
                    Kind::File {
                        sha256: format!("{:x}", hasher.finalize()),
                    }
                }
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink(link_name(&mut entry, &path)?),
                tar::EntryType::Fifo => Kind::Fifo,
                tar::EntryType::Char => {
                    let (major, minor) = device();
                    Kind::Char(major, minor)
                }
                tar::EntryType::Block => {
                    let (major, minor) = device();
                    Kind::Block(major, minor)
                }
                tar::EntryType::Link => {
                    let target = link_name(&mut entry, &path)?;
                    let target = normalize(&target)?
                        .ok_or_else(|| format!("{path}: hard link to the root"))?;
                    let node = self
                        .nodes
                        .get(&target)
                        .cloned()
                        .ok_or_else(|| format!("{path}: hard link to missing {target}"))?;
                    if !matches!(node.kind, Kind::File { .. }) {
                        return Err(format!("{path}: hard link to non-file {target}"));
                    }
                    self.put(&path, node);
                    added.insert(path);
                    continue;
                }
                other => return Err(format!("{path}: unsupported entry type {other:?}")),
            };
            let inode = self.next_inode;
            self.next_inode += 1;
            let node = Node {
                kind,
                mode,
                uid,
                gid,
                inode,
                data,
            };
            self.put(&path, node);
            added.insert(path);
        }
        Ok(())
    }

    /// Puts a node at `path` as extracting would: a directory over a
    /// directory keeps the children, anything else replaces the subtree.
    fn put(&mut self, path: &str, node: Node) {
        let dir_over_dir = matches!(node.kind, Kind::Dir)
            && self
                .nodes
                .get(path)
                .is_some_and(|old| matches!(old.kind, Kind::Dir | Kind::ImplicitDir));
        if !dir_over_dir {
            self.remove_subtree(path);
        }
        let mut parent = parent_of(path);
        while let Some(dir) = parent {
            if self.nodes.contains_key(dir) {
                break;
            }
            let inode = self.next_inode;
            self.next_inode += 1;
            self.nodes.insert(
                dir.to_owned(),
                Node {
                    kind: Kind::ImplicitDir,
                    mode: 0,
                    uid: 0,
                    gid: 0,
                    inode,
                    data: None,
                },
            );
            parent = parent_of(dir);
        }
        self.nodes.insert(path.to_owned(), node);
    }

    fn remove_subtree(&mut self, path: &str) {
        self.nodes.remove(path);
        let below: Vec<String> = self
            .nodes
            .range(format!("{path}/")..)
            .take_while(|(p, _)| is_under(p, path))
            .map(|(p, _)| p.clone())
            .collect();
        for p in below {
            self.nodes.remove(&p);
        }
    }

    /// For each path with hard links: the other paths sharing its inode.
    fn hardlink_peers(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut by_inode: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for (path, node) in &self.nodes {
            by_inode.entry(node.inode).or_default().push(path);
        }
        let mut peers = BTreeMap::new();
        for group in by_inode.values().filter(|g| g.len() > 1) {
            for path in group {
                let others = group.iter().copied().filter(|p| p != path).collect();
                peers.insert(*path, others);
            }
        }
        peers
    }
}

fn link_name<R: Read>(entry: &mut tar::Entry<R>, path: &str) -> Result<String, String> {
    entry
        .link_name()
        .map_err(|e| format!("{path}: link name: {e}"))?
        .map(|l| l.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{path}: link without a target"))
}

/// Every difference between two trees, one line each, `left`/`right`
/// naming the builders.
pub fn diff_trees(left: &Tree, right: &Tree, names: (&str, &str)) -> Vec<String> {
    let (ln, rn) = names;
    let mut diffs = Vec::new();
    let left_peers = left.hardlink_peers();
    let right_peers = right.hardlink_peers();
    let paths: BTreeSet<&String> = left.nodes.keys().chain(right.nodes.keys()).collect();
    for path in paths {
        let (l, r) = match (left.nodes.get(path), right.nodes.get(path)) {
            (Some(l), Some(r)) => (l, r),
            (Some(l), None) => {
                diffs.push(format!("{path}: only in {ln} ({})", l.kind.name()));
                continue;
            }
            (None, Some(r)) => {
                diffs.push(format!("{path}: only in {rn} ({})", r.kind.name()));
                continue;
            }
            (None, None) => continue,
        };
        if l.kind.name() != r.kind.name() {
            diffs.push(format!(
                "{path}: type {ln}={} {rn}={}",
                l.kind.name(),
                r.kind.name()
            ));
            continue;
        }
        if l.mode != r.mode {
            diffs.push(format!(
                "{path}: mode {ln}={:04o} {rn}={:04o}",
                l.mode, r.mode
            ));
        }
        if (l.uid, l.gid) != (r.uid, r.gid) {
            diffs.push(format!(
                "{path}: owner {ln}={}:{} {rn}={}:{}",
                l.uid, l.gid, r.uid, r.gid
            ));
        }
        match (&l.kind, &r.kind) {
            (Kind::File { sha256: lh }, Kind::File { sha256: rh }) if lh != rh => {
                diffs.push(format!("{path}: content differs"));
            }
            (Kind::Symlink(lt), Kind::Symlink(rt)) if lt != rt => {
                diffs.push(format!("{path}: link target {ln}={lt:?} {rn}={rt:?}"));
            }
            (lk, rk) if lk != rk && !matches!(lk, Kind::File { .. }) => {
                diffs.push(format!("{path}: {ln}={lk:?} {rn}={rk:?}"));
            }
            _ => {}
        }
        let lp = left_peers.get(path.as_str()).cloned().unwrap_or_default();
        let rp = right_peers.get(path.as_str()).cloned().unwrap_or_default();
        if lp != rp {
            diffs.push(format!("{path}: hard links {ln}={lp:?} {rn}={rp:?}"));
        }
    }
    diffs
}

/// The config fields compared, under the config's `config` object.
pub const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

/// Absent, null, "", [] and {} all mean "not set".
fn unset_as_null(value: Option<&Value>) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(other) => other.clone(),
    }
}

/// Differences in the run-relevant config fields, the platform, the layer
/// count and the history's empty-layer pattern.
pub fn diff_configs(left: &Value, right: &Value, names: (&str, &str)) -> Vec<String> {
    let (ln, rn) = names;
    let mut diffs = Vec::new();
    for field in CONFIG_FIELDS {
        let l = unset_as_null(left["config"].get(*field));
        let r = unset_as_null(right["config"].get(*field));
        if l != r {
            diffs.push(format!("config {field}: {ln}={l} {rn}={r}"));
        }
    }
    for field in ["os", "architecture"] {
        if left[field] != right[field] {
            diffs.push(format!(
                "{field}: {ln}={} {rn}={}",
                left[field], right[field]
            ));
        }
    }
    let layers = |c: &Value| c["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len);
    if layers(left) != layers(right) {
        diffs.push(format!(
            "layer count: {ln}={} {rn}={}",
            layers(left),
            layers(right)
        ));
    }
    let pattern = |c: &Value| -> String {
        c["history"].as_array().map_or_else(String::new, |h| {
            h.iter()
                .map(|e| if e["empty_layer"] == true { 'E' } else { 'L' })
                .collect()
        })
    };
    if pattern(left) != pattern(right) {
        diffs.push(format!(
            "history empty_layer pattern (L layer, E empty): {ln}={} {rn}={}",
            pattern(left),
            pattern(right)
        ));
    }
    diffs
}

/// `created_by` pairs that differ, for the report only.
pub fn created_by_differences(left: &Value, right: &Value) -> Vec<(String, String)> {
    let list = |c: &Value| -> Vec<String> {
        c["history"].as_array().map_or_else(Vec::new, |h| {
            h.iter()
                .map(|e| e["created_by"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
    };
    let (l, r) = (list(left), list(right));
    let n = l.len().max(r.len());
    (0..n)
        .map(|i| {
            (
                l.get(i).cloned().unwrap_or_default(),
                r.get(i).cloned().unwrap_or_default(),
            )
        })
        .filter(|(a, b)| a != b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            match kind {
                tar::EntryType::Link | tar::EntryType::Symlink => {
                    header.set_size(0);
                    builder.append_link(&mut header, path, data).unwrap();
                }
                _ => {
                    header.set_size(data.len() as u64);
                    builder
                        .append_data(&mut header, path, data.as_bytes())
                        .unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn paths(tree: &Tree) -> Vec<&str> {
        tree.nodes.keys().map(String::as_str).collect()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_layers_only() {
        use tar::EntryType::{Directory as D, Regular as F};
        let mut tree = Tree::default();
        tree.apply_layer(
            &layer(&[
                ("a/", D, ""),
                ("a/old", F, "1"),
                ("a/sub/x", F, "2"),
                ("b", F, "3"),
                ("o/", D, ""),
                ("o/lower", F, "4"),
            ])[..],
        )
        .unwrap();
        assert_eq!(tree.nodes["/a/sub"].kind, Kind::ImplicitDir);
        tree.apply_layer(
            &layer(&[
                ("o/", D, ""),
                ("o/new", F, "5"),
                ("o/.wh..wh..opq", F, ""),
                ("a/.wh.sub", F, ""),
                ("a/old", D, ""),
                ("b/", D, ""),
            ])[..],
        )
        .unwrap();
        assert_eq!(paths(&tree), ["/a", "/a/old", "/b", "/o", "/o/new"]);
        assert_eq!(tree.nodes["/a/old"].kind, Kind::Dir);
    }

    #[test]
    fn hard_links_share_an_inode_and_diffs_name_them() {
        use tar::EntryType::{Link as H, Regular as F, Symlink as S};
        let mut left = Tree::default();
        left.apply_layer(&layer(&[("f", F, "x"), ("h", H, "f"), ("s", S, "f")])[..])
            .unwrap();
        let mut right = Tree::default();
        right
            .apply_layer(&layer(&[("f", F, "x"), ("h", F, "x"), ("s", S, "g")])[..])
            .unwrap();
        assert!(diff_trees(&left, &left, ("l", "r")).is_empty());
        assert_eq!(
            diff_trees(&left, &right, ("l", "r")),
            [
                r#"/f: hard links l=["/h"] r=[]"#,
                r#"/h: hard links l=["/f"] r=[]"#,
                r#"/s: link target l="f" r="g""#,
            ]
        );
        assert!(
            left.apply_layer(&layer(&[("z", H, "missing")])[..])
                .is_err()
        );
        assert!(normalize("a/../../up").is_err());
        assert_eq!(normalize("./x//y/").unwrap().as_deref(), Some("/x/y"));
        assert_eq!(normalize("./").unwrap(), None);
    }
}
