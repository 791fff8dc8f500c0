//! Volumes: directories under `<root>/volumes/<name>/_data` that outlive
//! containers, with a `meta.json` beside them. Named volumes are created on
//! first use (`-v name:/path`) or by `volume create`; anonymous ones (the
//! image's `VOLUME`s) get a random hex name and go with `rm -v`. An empty
//! volume mounted where the image has a directory starts with its content
//! (docker's copy-up, in `create.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{now_nanos, read_json, write_json};
use super::*;
use crate::error::{Error, Result};

/// One volume as `volume inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// The host directory mounted into containers.
    pub mountpoint: PathBuf,
    /// Nanoseconds since the epoch.
    pub created: i128,
    pub anonymous: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    created: i128,
    anonymous: bool,
}

/// The volumes of one store.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Volumes {
    /// The volumes under `<root>/volumes`.
    pub fn new(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("meta.json")
    }

    /// Creates `name` unless it exists; returns it either way.
    pub fn create(&self, name: &str, anonymous: bool) -> Result<Volume> {
        if !valid_name(name) {
            return Err(Error::VolumeConflict {
                name: name.to_owned(),
                reason: "invalid name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".into(),
            });
        }
        if let Ok(volume) = self.inspect(name) {
            return Ok(volume);
        }
        let data = self.dir.join(name).join("_data");
        fs::create_dir_all(&data).map_err(|source| Error::Io {
            action: "create volume directory",
            path: data.clone(),
            source,
        })?;
        let meta = Meta {
            created: now_nanos(),
            anonymous,
        };
        write_json(&self.meta_path(name), &meta)?;
        self.inspect(name)
    }

    /// The volume called `name`.
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        if !valid_name(name) {
            return Err(Error::VolumeNotFound {
                name: name.to_owned(),
            });
        }
        let path = self.meta_path(name);
        if !path.exists() {
            return Err(Error::VolumeNotFound {
                name: name.to_owned(),
            });
        }
        let meta: Meta = read_json(&path)?;
        Ok(Volume {
            name: name.to_owned(),
            mountpoint: self.dir.join(name).join("_data"),
            created: meta.created,
            anonymous: meta.anonymous,
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => {
                return Err(Error::Io {
                    action: "list volumes in",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(volume) = self.inspect(&name) {
                out.push(volume);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes `name` and its data (the caller checked it is unused).
    pub(crate) fn remove_unchecked(&self, name: &str) -> Result<()> {
        self.inspect(name)?;
        let dir = self.dir.join(name);
        // Drop the marker first: a half-removed volume is no volume.
        let _ = fs::remove_file(self.meta_path(name));
        fs::remove_dir_all(&dir).map_err(|source| Error::Io {
            action: "remove volume",
            path: dir,
            source,
        })
    }
}

impl Containers {
    pub(super) fn volume_in_use(&self, name: &str) -> Result<bool> {
        Ok(self
            .all()?
            .iter()
            .any(|c| c.config.volumes.iter().any(|v| v.name == name)))
    }

    /// Removes a volume unless a container (running or not) uses it.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        self.volumes.inspect(name)?;
        if !force && self.volume_in_use(name)? {
            return Err(Error::VolumeConflict {
                name: name.to_owned(),
                reason: "volume is in use by a container".into(),
            });
        }
        self.volumes.remove_unchecked(name)
    }

    /// Removes the volumes no container uses (anonymous ones only unless
    /// `all`); returns their names.
    pub fn prune_volumes(&self, all: bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for volume in self.volumes.list()? {
            if (all || volume.anonymous) && !self.volume_in_use(&volume.name)? {
                self.volumes.remove_unchecked(&volume.name)?;
                removed.push(volume.name);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["data", "my-vol_1.x", "a1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-x", "../x", "a/b", ".hidden", "x y"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn create_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let volumes = Volumes::new(dir.path());
        let vol = volumes.create("data", false).unwrap();
        fs::write(vol.mountpoint.join("f"), "x").unwrap();
        // Creating again keeps the data.
        let again = volumes.create("data", false).unwrap();
        assert_eq!(fs::read_to_string(again.mountpoint.join("f")).unwrap(), "x");
        assert_eq!(volumes.list().unwrap().len(), 1);
        volumes.remove_unchecked("data").unwrap();
        assert!(volumes.list().unwrap().is_empty());
        assert!(matches!(
            volumes.inspect("data"),
            Err(Error::VolumeNotFound { .. })
        ));
        assert!(volumes.create("../etc", false).is_err());
    }
}
