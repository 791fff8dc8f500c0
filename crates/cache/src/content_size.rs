//! Layer content sizes: the bytes of a layer's regular files, each inode
//! once, as docker reports an image's (uncompressed) SIZE. Recorded once
//! per snapshot id under `<root>/sizes/<id>` (a decimal number), so listing
//! images never walks a tree: a snapshot's size is written when it is
//! created, a layer known only as a blob is measured once by the caller,
//! and a snapshot older than this record is walked on first use.

use std::fs;
use std::io;

use crate::error::{IoContext, Result};
use crate::{SnapshotId, Store, util};

/// The largest size record read back: a decimal u64 and a newline.
const MAX_RECORD: u64 = 32;

impl Store {
    /// The recorded content size of the layer named `id` (a snapshot id,
    /// whether or not the snapshot exists); `None` when none is recorded or
    /// the record is unreadable (it is then measured and written again).
    pub fn content_size(&self, id: &SnapshotId) -> Result<Option<u64>> {
        let path = self.sizes_dir().join(id.as_str());
        let bytes = match util::read_limited(&path, MAX_RECORD)? {
            util::Limited::Read(bytes) => bytes,
            util::Limited::Absent | util::Limited::TooLarge(_) => return Ok(None),
        };
        Ok(std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.trim().parse().ok()))
    }

    /// Records `bytes` as the content size of the layer named `id`.
    pub fn record_content_size(&self, id: &SnapshotId, bytes: u64) -> Result<()> {
        let dir = self.sizes_dir();
        fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        // A lost record is measured again: it needs no fsync of its own.
        util::write_renamed(
            &self.tmp_dir(),
            &dir.join(id.as_str()),
            format!("{bytes}\n").as_bytes(),
            false,
        )
    }

    /// The content size of snapshot `id`: recorded, or measured by one
    /// walk of the snapshot and recorded; `None` if there is no snapshot
    /// and no record.
    pub fn snapshot_content_size(&self, id: &SnapshotId) -> Result<Option<u64>> {
        if let Some(bytes) = self.content_size(id)? {
            return Ok(Some(bytes));
        }
        if !self.has_snapshot(id)? {
            return Ok(None);
        }
        // It may vanish under a concurrent prune.
        let Ok(bytes) = util::file_bytes(&self.snapshot_dir(id)) else {
            return Ok(None);
        };
        // Best effort: a store this process cannot write still answers.
        let _ = self.record_content_size(id, bytes);
        Ok(Some(bytes))
    }

    /// Removes the size records of layers that have no snapshot and that
    /// `keep` does not name (layers no image or record references).
    pub(crate) fn prune_content_sizes(
        &self,
        keep: &std::collections::BTreeSet<SnapshotId>,
    ) -> Result<()> {
        for name in util::list_dir(&self.sizes_dir())? {
            let id = name.to_str().and_then(|n| SnapshotId::new(n).ok());
            match id {
                Some(id) if keep.contains(&id) || self.has_snapshot(&id)? => {}
                Some(id) => self.remove_content_size(&id)?,
                None => {
                    let path = self.sizes_dir().join(&name);
                    util::remove_tree(&path)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the size record of `id`, if any.
    pub(crate) fn remove_content_size(&self, id: &SnapshotId) -> Result<()> {
        let path = self.sizes_dir().join(id.as_str());
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).ctx("remove", path),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_records_its_file_bytes_once_and_prune_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = SnapshotId::new("layer-a").unwrap();
        assert_eq!(store.snapshot_content_size(&id).unwrap(), None);
        store
            .create_snapshot::<crate::Error, _>(&id, |root| {
                fs::write(root.join("a"), vec![0u8; 1000]).unwrap();
                fs::create_dir(root.join("d")).unwrap();
                fs::write(root.join("d/b"), b"12345").unwrap();
                // A hard link is the same bytes; a symlink is no file bytes.
                fs::hard_link(root.join("a"), root.join("d/a-again")).unwrap();
                std::os::unix::fs::symlink("a-long-symlink-target", root.join("l")).unwrap();
                Ok(())
            })
            .unwrap();
        assert_eq!(store.content_size(&id).unwrap(), Some(1005));
        // The record answers, not the tree.
        fs::write(store.snapshot_path(&id).unwrap().join("new"), b"xx").unwrap();
        assert_eq!(store.snapshot_content_size(&id).unwrap(), Some(1005));
        // A snapshot without a record (an older store) is walked once.
        store.remove_content_size(&id).unwrap();
        assert_eq!(store.snapshot_content_size(&id).unwrap(), Some(1007));
        assert_eq!(store.content_size(&id).unwrap(), Some(1007));
        // A garbage record is measured again.
        fs::write(store.sizes_dir().join("layer-a"), b"not a number").unwrap();
        assert_eq!(store.snapshot_content_size(&id).unwrap(), Some(1007));
        store.prune(&crate::PruneOptions::default()).unwrap();
        assert!(!store.has_snapshot(&id).unwrap());
        assert_eq!(store.content_size(&id).unwrap(), None);
    }
}
