//! Cache records: one small JSON file per record key, replaced atomically.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::util;
use crate::{Digest, RecordKey, SnapshotId};

/// Records are small; anything bigger is not one of ours.
const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// The result a record key maps to.
///
/// `blobs` and `snapshots` are what the store guarantees: a record is only
/// written once they exist, [`Store::get_record`] returns it only while they
/// still do, and garbage collection keeps them. `value` is the caller's own
/// data (e.g. a layer descriptor or an image config digest), opaque here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub blobs: Vec<Digest>,
    #[serde(default)]
    pub snapshots: Vec<SnapshotId>,
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The file format: the key is repeated so a misplaced file is detected.
#[derive(Serialize, Deserialize)]
struct RecordFile {
    key: RecordKey,
    record: Record,
}

/// A record as found on disk, before its referents are checked.
pub(crate) enum Loaded {
    Absent,
    Corrupt(Error),
    Present(Record),
}

impl Store {
    fn record_path(&self, key: &RecordKey) -> PathBuf {
        self.records_dir().join(format!("{}.json", key.hex()))
    }

    /// Stores `record` under `key`, replacing any previous record.
    ///
    /// Fails with [`Error::MissingReferent`] unless every blob and snapshot
    /// it names exists. The check and the write happen under a store lease,
    /// so a prune cannot slip in between.
    pub fn put_record(&self, key: &RecordKey, record: &Record) -> Result<()> {
        let _lease = self.lease()?;
        if let Some(what) = self.missing_referent(record)? {
            return Err(Error::MissingReferent { key: *key, what });
        }
        let file = RecordFile {
            key: *key,
            record: record.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| Error::CorruptRecord {
            key: *key,
            path: self.record_path(key),
            reason: format!("cannot serialize: {e}"),
        })?;
        let sync = !self.fsync_deferred();
        util::write_renamed(&self.tmp_dir(), &self.record_path(key), &bytes, sync)
    }

    /// The record for `key`, if there is one and everything it names is
    /// still in the store (a record whose blob or snapshot is gone is a
    /// miss). A record file that does not parse is an error naming it.
    pub fn get_record(&self, key: &RecordKey) -> Result<Option<Record>> {
        match self.load_record(key)? {
            Loaded::Absent => Ok(None),
            Loaded::Corrupt(e) => Err(e),
            Loaded::Present(record) => match self.missing_referent(&record)? {
                Some(_) => Ok(None),
                None => Ok(Some(record)),
            },
        }
    }

    /// Removes the record for `key`; `false` if there was none.
    pub fn remove_record(&self, key: &RecordKey) -> Result<bool> {
        let path = self.record_path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).ctx("remove record", path),
        }
    }

    pub(crate) fn load_record(&self, key: &RecordKey) -> Result<Loaded> {
        let path = self.record_path(key);
        let corrupt = |reason: String| {
            Loaded::Corrupt(Error::CorruptRecord {
                key: *key,
                path: path.clone(),
                reason,
            })
        };
        let bytes = match util::read_limited(&path, MAX_RECORD_BYTES)? {
            util::Limited::Absent => return Ok(Loaded::Absent),
            util::Limited::TooLarge(max) => return Ok(corrupt(util::Limited::too_large(max))),
            util::Limited::Read(bytes) => bytes,
        };
        let file: RecordFile = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => return Ok(corrupt(e.to_string())),
        };
        if file.key != *key {
            return Ok(corrupt(format!("file holds the record of {}", file.key)));
        }
        Ok(Loaded::Present(file.record))
    }

    /// The first blob or snapshot `record` names that is not in the store.
    pub(crate) fn missing_referent(&self, record: &Record) -> Result<Option<String>> {
        for digest in &record.blobs {
            if !self.has_blob(digest)? {
                return Ok(Some(format!("blob {digest}")));
            }
        }
        for id in &record.snapshots {
            if !self.has_snapshot(id)? {
                return Ok(Some(format!("snapshot {id}")));
            }
        }
        Ok(None)
    }

    /// The keys of all record files, and the paths of files in `records/`
    /// that are not named like one.
    pub(crate) fn list_records(&self) -> Result<(Vec<RecordKey>, Vec<PathBuf>)> {
        let dir = self.records_dir();
        let mut keys = Vec::new();
        let mut stray = Vec::new();
        for name in util::list_dir(&dir)? {
            let key = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|hex| RecordKey::from_hex(hex).ok());
            match key {
                Some(key) => keys.push(key),
                None => stray.push(dir.join(name)),
            }
        }
        Ok((keys, stray))
    }
}
