//! A read-only merged view of a state's snapshots, without mounting them:
//! what a `COPY --from` reads and where `--chown` names are looked up.
//!
//! Snapshots are in overlay form, so the rules are overlayfs's: the topmost
//! layer holding a path wins, a 0/0 character device is a whiteout, a
//! non-directory hides everything below its path, and a directory with the
//! opaque xattr hides the lower layers' contents under it. Symlinks are
//! resolved inside the view: `..` and absolute targets never leave it.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};

use std::path::{Path, PathBuf};

use buildr_cache::Store;

use super::StateData;
use crate::error::{Error, Result};
use buildr_fs::overlay::{is_opaque_dir, is_whiteout};

const MAX_SYMLINKS: usize = 40;

/// One entry of the merged view: the file that backs it and its metadata.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub host: PathBuf,
    pub meta: Metadata,
}

/// The merged view of a state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Merged {
    /// Snapshot directories, topmost first.
    layers: Vec<PathBuf>,
}

enum Probe {
    /// The layer says nothing about the path; `opaque` if an ancestor in it
    /// hides the lower layers.
    Nothing {
        opaque: bool,
    },
    /// Deleted or hidden by this layer.
    Gone,
    Found(Found),
}

impl Merged {
    pub(crate) fn new(store: &Store, state: &StateData) -> Result<Merged> {
        let mut layers = Vec::with_capacity(state.layers.len());
        for layer in state.layers.iter().rev() {
            layers.push(store.snapshot_path(&layer.snapshot)?);
        }
        Ok(Merged { layers })
    }

    /// Snapshot directories, topmost first (overlay lower dirs).
    pub(crate) fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// The entry at `path` (components already resolved), not following a
    /// final symlink.
    pub(crate) fn lookup(&self, path: &str) -> Option<Found> {
        let comps = components(path);
        for layer in &self.layers {
            match probe(layer, &comps) {
                Probe::Found(found) => return Some(found),
                Probe::Gone | Probe::Nothing { opaque: true } => return None,
                Probe::Nothing { opaque: false } => {}
            }
        }
        None
    }

    /// The children of the directory at `path`, by name.
    pub(crate) fn list(&self, path: &str) -> Result<BTreeMap<String, Found>> {
        let comps = components(path);
        let mut out = BTreeMap::new();
        let mut deleted = std::collections::BTreeSet::new();
        for layer in &self.layers {
            let dir = match probe(layer, &comps) {
                Probe::Found(found) if found.meta.is_dir() => found.host,
                Probe::Found(_) | Probe::Gone | Probe::Nothing { opaque: true } => break,
                Probe::Nothing { opaque: false } => continue,
            };
            let entries = fs::read_dir(&dir).map_err(|source| Error::Io {
                action: "list",
                path: dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| Error::Io {
                    action: "list",
                    path: dir.clone(),
                    source,
                })?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if out.contains_key(&name) || deleted.contains(&name) {
                    continue;
                }
                let host = entry.path();
                let Ok(meta) = fs::symlink_metadata(&host) else {
                    continue;
                };
                if is_whiteout(&meta) {
                    deleted.insert(name);
                } else {
                    out.insert(name, Found { host, meta });
                }
            }
            if is_opaque_dir(&dir) {
                break;
            }
        }
        Ok(out)
    }

    /// The view with `top` (a plain directory, say a step's upper dir) over
    /// its layers.
    pub(crate) fn under(&self, top: &Path) -> Merged {
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.push(top.to_path_buf());
        layers.extend(self.layers.iter().cloned());
        Merged { layers }
    }

    /// Resolves symlinks in `path` inside the view; the final component is
    /// followed when `follow_last`. Returns the clean path (no leading `/`).
    pub(crate) fn resolve(&self, path: &str, follow_last: bool) -> Result<String> {
        self.resolve_beneath("", path, follow_last)
    }

    /// Resolves `path` below `base` (a resolved directory) as if `base` were
    /// the root, as a chroot into it would: `..` stops at `base`, absolute
    /// link targets start there. Returns the clean path from the real root.
    pub(crate) fn resolve_beneath(
        &self,
        base: &str,
        path: &str,
        follow_last: bool,
    ) -> Result<String> {
        let floor: Vec<String> = components(base).into_iter().map(str::to_owned).collect();
        let mut pending: Vec<String> = components(path)
            .into_iter()
            .rev()
            .map(str::to_owned)
            .collect();
        let mut done = floor.clone();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            if comp == ".." {
                if done.len() > floor.len() {
                    done.pop();
                }
                continue;
            }
            done.push(comp);
            let is_last = pending.is_empty();
            if is_last && !follow_last {
                break;
            }
            let current = done.join("/");
            let Some(found) = self.lookup(&current) else {
                continue;
            };
            if !found.meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINKS {
                return Err(Error::Build {
                    location: String::new(),
                    message: format!("too many levels of symbolic links resolving /{path}"),
                });
            }
            let target = fs::read_link(&found.host).map_err(|source| Error::Io {
                action: "read link",
                path: found.host.clone(),
                source,
            })?;
            let target = target.to_string_lossy().into_owned();
            done.pop();
            if target.starts_with('/') {
                done.truncate(floor.len());
            }
            for part in components(&target).into_iter().rev() {
                pending.push(part.to_owned());
            }
        }
        Ok(done.join("/"))
    }

    /// Reads a whole small file (passwd, group) through the view.
    pub(crate) fn read_small(&self, path: &str, cap: u64) -> Option<String> {
        let resolved = self.resolve(path, true).ok()?;
        let found = self.lookup(&resolved)?;
        if !found.meta.is_file() || found.meta.len() > cap {
            return None;
        }
        fs::read_to_string(&found.host).ok()
    }
}

/// The non-empty, non-`.` components of `path`.
pub(crate) fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn probe(layer: &Path, comps: &[&str]) -> Probe {
    let mut host = layer.to_path_buf();
    if comps.is_empty() {
        return match fs::symlink_metadata(&host) {
            Ok(meta) => Probe::Found(Found { host, meta }),
            Err(_) => Probe::Nothing { opaque: false },
        };
    }
    let mut opaque = false;
    for (i, comp) in comps.iter().enumerate() {
        if *comp == ".." {
            return Probe::Nothing { opaque };
        }
        host.push(comp);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            return Probe::Nothing { opaque };
        };
        if is_whiteout(&meta) {
            return Probe::Gone;
        }
        if i + 1 == comps.len() {
            return Probe::Found(Found { host, meta });
        }
        if !meta.is_dir() {
            return Probe::Gone;
        }
        if is_opaque_dir(&host) {
            opaque = true;
        }
    }
    Probe::Nothing { opaque }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn resolve_beneath_treats_the_base_as_the_root() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("opt/etc")).unwrap();
        symlink("/etc", lower.path().join("opt/abs")).unwrap();
        symlink("../../..", lower.path().join("opt/up")).unwrap();
        fs::create_dir_all(upper.path().join("opt")).unwrap();
        symlink("/etc", upper.path().join("opt/new")).unwrap();
        let view = Merged {
            layers: vec![lower.path().to_path_buf()],
        }
        .under(upper.path());
        assert_eq!(
            view.resolve_beneath("opt", "abs/x", true).unwrap(),
            "opt/etc/x"
        );
        assert_eq!(view.resolve_beneath("opt", "up/x", true).unwrap(), "opt/x");
        assert_eq!(view.resolve_beneath("opt", "new", true).unwrap(), "opt/etc");
        assert_eq!(view.resolve_beneath("", "opt/abs", true).unwrap(), "etc");
        assert_eq!(view.resolve_beneath("", "opt/up", true).unwrap(), "");
    }
}
