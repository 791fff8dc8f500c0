//! A cache in a local directory: an OCI image layout whose `index.json`
//! names each entry manifest by its key (`org.opencontainers.image.ref.name`).
//!
//! Writers take an exclusive `flock` on the directory's lock file, read the
//! index, add their entries and rename a new index into place, so two
//! builds exporting to one directory both keep their entries; blobs are
//! written to a temp file and renamed, so a reader never sees half a blob.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use buildr_cache::{Digest, RecordKey, Store};
use buildr_oci::{Descriptor, Index, media_type};

use super::format::{self, MAX_ENTRY_BYTES};
use super::registry::Problem;
use crate::error::{Error, Result};
use crate::ops::StateData;
use buildr_fs::atomic::AtomicWrite;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MAX_INDEX_BYTES: u64 = 256 << 20;

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

/// Reads the layout's index; an absent one is empty.
fn read_index(dir: &Path) -> Result<Index> {
    let path = dir.join("index.json");
    let bytes = match fs::File::open(&path) {
        Ok(f) => {
            let mut bytes = Vec::new();
            f.take(MAX_INDEX_BYTES)
                .read_to_end(&mut bytes)
                .map_err(io_err("read", &path))?;
            bytes
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Index {
                schema_version: 2,
                media_type: Some(media_type::OCI_INDEX.to_owned()),
                artifact_type: None,
                manifests: Vec::new(),
                subject: None,
                annotations: None,
                extra: Default::default(),
            });
        }
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| Error::Build {
        location: path.display().to_string(),
        message: format!("not an OCI image index: {e}"),
    })
}

/// One local cache read by a build: its index, read once.
pub(crate) struct LocalSource {
    dir: PathBuf,
    entries: HashMap<String, Descriptor>,
}

impl LocalSource {
    pub(crate) fn open(dir: &Path) -> std::result::Result<LocalSource, Problem> {
        if !dir.join("index.json").is_file() {
            return Err(Problem::Unreachable(format!(
                "{} has no index.json",
                dir.display()
            )));
        }
        let index = read_index(dir).map_err(|e| Problem::Unreachable(e.to_string()))?;
        let entries = index
            .manifests
            .into_iter()
            .filter_map(|d| {
                let name = d.annotations.as_ref()?.get(REF_NAME)?.clone();
                Some((name, d))
            })
            .collect();
        Ok(LocalSource {
            dir: dir.to_owned(),
            entries,
        })
    }

    pub(crate) fn name(&self) -> String {
        self.dir.display().to_string()
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The bytes of a blob of the layout, at most `cap`, verified.
    fn read_blob(&self, d: &Descriptor, cap: u64) -> Result<Vec<u8>> {
        let path = blob_path(&self.dir, &d.digest);
        if d.size > cap {
            return Err(Error::Build {
                location: path.display().to_string(),
                message: format!("{} bytes, at most {cap} expected", d.size),
            });
        }
        let mut bytes = Vec::new();
        File::open(&path)
            .map_err(io_err("open", &path))?
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        if Digest::of(&bytes) != d.digest || bytes.len() as u64 != d.size {
            return Err(Error::Build {
                location: path.display().to_string(),
                message: format!("does not hash to {} ({} bytes)", d.digest, d.size),
            });
        }
        Ok(bytes)
    }

    /// The layer of the cache mount entry for `id`, if there is one.
    pub(crate) fn mount(&self, id: &str) -> std::result::Result<Option<Descriptor>, Problem> {
        let Some(d) = self.entries.get(&format::mount_name(id)) else {
            return Ok(None);
        };
        let what = format!("cache mount {id} in {}", self.dir.display());
        let bytes = self
            .read_blob(d, 4 << 20)
            .map_err(|e| Problem::Corrupt(format!("{what}: {e}")))?;
        format::decode_mount(id, &bytes, &what, |d| self.read_blob(d, MAX_ENTRY_BYTES))
            .map(Some)
            .map_err(Problem::from)
    }

    /// The per-path record of the `COPY` `id`'s last export, if any.
    pub(crate) fn selection(&self, id: &str) -> std::result::Result<Option<Vec<u8>>, Problem> {
        let Some(d) = self.entries.get(&format::selection_name(id)) else {
            return Ok(None);
        };
        let what = format!("cache selection {id} in {}", self.dir.display());
        let bytes = self
            .read_blob(d, 4 << 20)
            .map_err(|e| Problem::Corrupt(format!("{what}: {e}")))?;
        let record =
            format::decode_selection(id, &bytes, &what, |d| self.read_blob(d, MAX_ENTRY_BYTES))
                .map_err(Problem::from)?;
        self.read_blob(&record, format::MAX_SELECTION_BYTES)
            .map(Some)
            .map_err(|e| Problem::Corrupt(e.to_string()))
    }

    pub(crate) fn entry(&self, key: &RecordKey) -> std::result::Result<Option<StateData>, Problem> {
        let Some(d) = self.entries.get(&key.hex()) else {
            return Ok(None);
        };
        let what = format!("cache entry {} in {}", key.hex(), self.dir.display());
        let bytes = self
            .read_blob(d, 4 << 20)
            .map_err(|e| Problem::Corrupt(format!("{what}: {e}")))?;
        let state = format::decode(key, &bytes, &what, |d| self.read_blob(d, MAX_ENTRY_BYTES))
            .map_err(Problem::from)?;
        for layer in &state.layers {
            let path = blob_path(&self.dir, &layer.digest);
            if fs::metadata(&path).map(|m| m.len()).ok() != Some(layer.size) {
                return Err(Problem::Corrupt(format!(
                    "{what}: layer {} is missing",
                    layer.digest
                )));
            }
        }
        Ok(Some(state))
    }
}

/// Writes `entries` (manifests in `store`) into the layout at `dir`,
/// creating it: blobs first (those it lacks), then the index, merged under
/// the directory's lock with what other writers put there.
pub(crate) fn write(store: &Store, dir: &Path, entries: &[format::Encoded]) -> Result<()> {
    let blobs_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs_dir).map_err(io_err("create", &blobs_dir))?;
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        AtomicWrite::new().bytes(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let mut wanted: Vec<Descriptor> = Vec::new();
    for e in entries {
        let bytes = store.read_blob(&e.manifest, 4 << 20)?;
        let m: buildr_oci::Manifest =
            serde_json::from_slice(&bytes).map_err(|err| Error::Build {
                location: "cache export".into(),
                message: format!("manifest {}: {err}", e.manifest),
            })?;
        wanted.push(Descriptor::new(
            media_type::OCI_MANIFEST,
            e.manifest,
            e.manifest_size,
        ));
        wanted.push(m.config);
        wanted.extend(m.layers);
    }
    for d in &wanted {
        let path = blob_path(dir, &d.digest);
        if fs::metadata(&path).map(|m| m.len()).ok() == Some(d.size) {
            continue;
        }
        let mut reader = crate::image::layer_bytes::open_layer(store, d)?;
        AtomicWrite::new().with(&path, |file| {
            io::copy(&mut reader, file)
                .map(drop)
                .map_err(io_err("write", &path))
        })?;
    }
    let lock_path = dir.join(".buildr-cache.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock", &lock_path)(e.into()))?;
    let mut index = read_index(dir)?;
    for e in entries {
        let name = e.name.clone();
        index.manifests.retain(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_none_or(|n| *n != name)
        });
        let mut d = Descriptor::new(media_type::OCI_MANIFEST, e.manifest, e.manifest_size);
        d.artifact_type = Some(format::ENTRY_ARTIFACT.to_owned());
        d.annotations = Some([(REF_NAME.to_owned(), name)].into_iter().collect());
        index.manifests.push(d);
    }
    let bytes = serde_json::to_vec(&index).map_err(|source| Error::Encode {
        what: dir.join("index.json").display().to_string(),
        source,
    })?;
    AtomicWrite::new().bytes(&dir.join("index.json"), &bytes)?;
    drop(lock);
    Ok(())
}
