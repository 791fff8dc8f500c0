//! The image index: image name (`name:tag`, already normalized by the
//! caller) -> manifest digest, in one JSON file replaced atomically.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::util;

const TAGS_FILE: &str = "tags.json";
const TAGS_LOCK: &str = "tags.lock";
const TAGS_VERSION: u32 = 1;
const MAX_TAGS_BYTES: u64 = 64 * 1024 * 1024;
const MAX_NAME_LEN: usize = 1024;

#[derive(Serialize, Deserialize, Default)]
struct TagsFile {
    version: u32,
    tags: BTreeMap<String, Digest>,
}

impl Store {
    fn tags_path(&self) -> PathBuf {
        self.root().join(TAGS_FILE)
    }

    /// Points `name` at `manifest`, returning the digest it pointed at before.
    /// The manifest blob must be in the store.
    pub fn set_tag(&self, name: &str, manifest: &Digest) -> Result<Option<Digest>> {
        check_name(name)?;
        let _lease = self.lease()?;
        if !self.has_blob(manifest)? {
            return Err(Error::TagTargetMissing {
                name: name.to_string(),
                digest: *manifest,
            });
        }
        self.update_tags(|tags| tags.insert(name.to_string(), *manifest))
    }

    /// Removes `name`, returning the digest it pointed at.
    pub fn remove_tag(&self, name: &str) -> Result<Option<Digest>> {
        check_name(name)?;
        let _lease = self.lease()?;
        self.update_tags(|tags| tags.remove(name))
    }

    /// The manifest digest `name` points at.
    pub fn get_tag(&self, name: &str) -> Result<Option<Digest>> {
        Ok(self.list_tags()?.remove(name))
    }

    /// All tags, sorted by name.
    pub fn list_tags(&self) -> Result<BTreeMap<String, Digest>> {
        Ok(self.read_tags()?.tags)
    }

    fn read_tags(&self) -> Result<TagsFile> {
        let path = self.tags_path();
        let corrupt = |reason: String| Error::CorruptTags {
            path: path.clone(),
            reason,
        };
        let bytes = match util::read_limited(&path, MAX_TAGS_BYTES)? {
            util::Limited::Absent => {
                return Ok(TagsFile {
                    version: TAGS_VERSION,
                    tags: BTreeMap::new(),
                });
            }
            util::Limited::TooLarge(max) => return Err(corrupt(util::Limited::too_large(max))),
            util::Limited::Read(bytes) => bytes,
        };
        let file: TagsFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version > TAGS_VERSION {
            return Err(corrupt(format!(
                "version {} is newer than the supported {TAGS_VERSION}",
                file.version
            )));
        }
        Ok(file)
    }

    /// Read-modify-write of the tags file under `tags.lock`, so concurrent
    /// updates from several processes are serialized and none is lost.
    /// The caller holds a store lease (the temp file lives in `tmp/`).
    fn update_tags<T>(&self, change: impl FnOnce(&mut BTreeMap<String, Digest>) -> T) -> Result<T> {
        let _lock = self.lock_tags()?;
        let mut file = self.read_tags()?;
        let before = file.tags.clone();
        let out = change(&mut file.tags);
        if file.tags == before && file.version == TAGS_VERSION {
            // Nothing changed (re-tagging a name with the digest it has):
            // no rewrite, no fsync.
            return Ok(out);
        }
        file.version = TAGS_VERSION;
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| Error::CorruptTags {
            path: self.tags_path(),
            reason: format!("cannot serialize: {e}"),
        })?;
        if self.fsync_deferred() {
            // A build's writes are not durable yet (`durability.rs`); a tag
            // may point at them, so they are flushed before it is written.
            self.sync_all()?;
        }
        util::write_atomic(&self.tmp_dir(), &self.tags_path(), &bytes)?;
        Ok(out)
    }

    fn lock_tags(&self) -> Result<File> {
        let path = self.root().join(TAGS_LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open lock file", &path)?;
        file.lock().ctx("take exclusive lock on", &path)?;
        Ok(file)
    }
}

fn check_name(name: &str) -> Result<()> {
    let err = |reason| Error::InvalidTag {
        input: name.chars().take(100).collect(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(err("must be 1 to 1024 bytes"));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err("must not contain whitespace or control characters"));
    }
    Ok(())
}
