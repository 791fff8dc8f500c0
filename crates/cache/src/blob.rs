//! Content-addressed blobs: streaming writes that hash in one pass, reads
//! that verify the content against its digest.

use std::fs::{self, File};
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};
use crate::store::{Store, StoreLease};
use crate::util;
use crate::{Digest, Hasher};

/// A blob as committed: its digest and size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// Streams a new blob into the store, hashing as it writes.
///
/// Nothing is visible under `blobs/` until [`BlobWriter::commit`]; dropping
/// an uncommitted writer removes its temp file. Holds a [`StoreLease`] for
/// its whole life, so `prune` never sees it half-done.
#[derive(Debug)]
pub struct BlobWriter {
    out: BufWriter<NamedTempFile>,
    hasher: Hasher,
    size: u64,
    blobs_dir: PathBuf,
    /// False while a [`crate::DeferredSync`] puts fsyncs off.
    sync: bool,
    _lease: StoreLease,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finishes the blob: fsyncs it (unless a [`crate::DeferredSync`] is
    /// alive), checks it against `expected` (if given), and renames it into
    /// `blobs/sha256/<hex>`.
    ///
    /// On a mismatch the error names both digests and the temp file is
    /// removed. If the blob already exists it is replaced by this verified
    /// copy (same bytes; readers holding the old file keep reading it).
    pub fn commit(self, expected: Option<Digest>) -> Result<BlobInfo> {
        let BlobWriter {
            out,
            hasher,
            size,
            blobs_dir,
            sync,
            _lease,
        } = self;
        let tmp = out.into_inner().map_err(|e| {
            let (source, out) = e.into_parts();
            Error::Io {
                op: "write",
                path: out.get_ref().path().to_path_buf(),
                source,
            }
        })?;
        let digest = hasher.finish();
        if let Some(expected) = expected
            && expected != digest
        {
            // `tmp` is dropped here, removing the temp file.
            return Err(Error::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .ctx("set permissions on", tmp.path())?;
        if sync {
            tmp.as_file().sync_all().ctx("fsync", tmp.path())?;
        }
        let dest = blobs_dir.join(digest.hex());
        tmp.persist(&dest).map_err(|e| Error::Io {
            op: "rename temp file to",
            path: dest.clone(),
            source: e.error,
        })?;
        if sync {
            util::fsync_dir(&blobs_dir)?;
        }
        Ok(BlobInfo { digest, size })
    }
}

/// Reads a blob and checks it against its digest as it goes.
///
/// The check completes at end of file: the read that would return 0 instead
/// returns an `InvalidData` error (wrapping [`Error::CorruptBlob`]) if the
/// content does not hash to the digest or its length is wrong. A consumer
/// that may stop early (a tar reader leaves the trailing padding) must call
/// [`BlobReader::finish`] to drain and check the rest.
#[derive(Debug)]
pub struct BlobReader {
    file: File,
    path: PathBuf,
    digest: Digest,
    hasher: Option<Hasher>,
    expected_size: u64,
    read: u64,
    state: ReadState,
}

#[derive(Debug)]
enum ReadState {
    Reading,
    Verified,
    Corrupt(String),
}

impl BlobReader {
    /// The digest this reader checks against.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.expected_size
    }

    /// Reads to the end and reports whether the whole content matched.
    pub fn finish(mut self) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.into_error(e)),
            }
        }
    }

    fn into_error(self, e: io::Error) -> Error {
        match self.state {
            ReadState::Corrupt(reason) => Error::CorruptBlob {
                digest: self.digest,
                reason,
            },
            _ => Error::Io {
                op: "read blob",
                path: self.path,
                source: e,
            },
        }
    }

    fn corrupt(&mut self, reason: String) -> io::Error {
        self.state = ReadState::Corrupt(reason.clone());
        corrupt_io(self.digest, reason)
    }
}

fn corrupt_io(digest: Digest, reason: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Error::CorruptBlob { digest, reason },
    )
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            ReadState::Verified => return Ok(0),
            ReadState::Corrupt(reason) => return Err(corrupt_io(self.digest, reason.clone())),
            ReadState::Reading => {}
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.file.read(buf)?;
        if n == 0 {
            if self.read != self.expected_size {
                let reason = format!(
                    "expected {} bytes, found only {}",
                    self.expected_size, self.read
                );
                return Err(self.corrupt(reason));
            }
            let actual = self.hasher.take().map(Hasher::finish);
            if actual != Some(self.digest) {
                let reason = match actual {
                    Some(actual) => format!("content hashes to {actual}"),
                    None => "content could not be hashed".to_string(),
                };
                return Err(self.corrupt(reason));
            }
            self.state = ReadState::Verified;
            return Ok(0);
        }
        self.read += n as u64;
        if self.read > self.expected_size {
            let reason = format!("longer than the expected {} bytes", self.expected_size);
            return Err(self.corrupt(reason));
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

impl Store {
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Starts writing a new blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let lease = self.lease()?;
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmp_dir)
            .ctx("create temp file in", &tmp_dir)?;
        Ok(BlobWriter {
            out: BufWriter::with_capacity(256 * 1024, tmp),
            hasher: Hasher::new(),
            size: 0,
            blobs_dir: self.blobs_dir(),
            sync: !self.fsync_deferred(),
            _lease: lease,
        })
    }

    /// Writes `bytes` as a blob.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<BlobInfo> {
        // A blob already stored with exactly these bytes is left alone (a
        // no-op build re-exports the same config and manifest). Anything
        // else, a damaged copy included, is replaced by a fresh write.
        let digest = Digest::of(bytes);
        let path = self.blobs_dir().join(digest.hex());
        let _lease = self.lease()?;
        if let Ok(meta) = fs::symlink_metadata(&path)
            && meta.is_file()
            && meta.len() == bytes.len() as u64
            && fs::read(&path).is_ok_and(|stored| stored == bytes)
        {
            return Ok(BlobInfo {
                digest,
                size: bytes.len() as u64,
            });
        }
        let mut writer = self.blob_writer()?;
        let tmp_path = writer.out.get_ref().path().to_path_buf();
        writer.write_all(bytes).ctx("write", tmp_path)?;
        writer.commit(None)
    }

    /// Opens a blob for reading; the reader verifies the content as it goes.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        // Never follow a symlink planted in blobs/: content outside the root
        // is not ours to serve, even if it happens to hash right.
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path);
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobNotFound { digest: *digest });
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(Error::CorruptBlob {
                    digest: *digest,
                    reason: "is a symbolic link".to_string(),
                });
            }
            Err(e) => return Err(e).ctx("open blob", path),
        };
        let meta = file.metadata().ctx("stat blob", &path)?;
        if !meta.is_file() {
            return Err(Error::CorruptBlob {
                digest: *digest,
                reason: "not a regular file".to_string(),
            });
        }
        Ok(BlobReader {
            file,
            path,
            digest: *digest,
            hasher: Some(Hasher::new()),
            expected_size: meta.len(),
            read: 0,
            state: ReadState::Reading,
        })
    }

    /// Opens a blob whose size a descriptor states; a different size on
    /// disk is reported as corruption before any byte is read.
    pub fn open_blob_sized(&self, digest: &Digest, size: u64) -> Result<BlobReader> {
        let reader = self.open_blob(digest)?;
        if reader.expected_size != size {
            return Err(Error::CorruptBlob {
                digest: *digest,
                reason: format!(
                    "size is {} bytes, the descriptor says {size}",
                    reader.expected_size
                ),
            });
        }
        Ok(reader)
    }

    /// Reads a whole (small) blob, verified; `max_size` guards against a
    /// hostile or mistaken digest naming a huge blob.
    pub fn read_blob(&self, digest: &Digest, max_size: u64) -> Result<Vec<u8>> {
        let mut reader = self.open_blob(digest)?;
        if reader.expected_size > max_size {
            return Err(Error::BlobTooLarge {
                digest: *digest,
                size: reader.expected_size,
                max: max_size,
            });
        }
        let mut bytes = Vec::with_capacity(reader.expected_size as usize);
        if let Err(e) = reader.read_to_end(&mut bytes) {
            return Err(reader.into_error(e));
        }
        Ok(bytes)
    }

    /// Reads the whole blob and checks it against its digest.
    pub fn verify_blob(&self, digest: &Digest) -> Result<()> {
        self.open_blob(digest)?.finish()
    }

    /// Removes the blob stored under `digest` if its content does not hash
    /// to it (swapped, truncated or damaged on disk), so that records
    /// naming it stop hitting and the next build or pull writes it again.
    /// Returns whether it removed anything; a blob that verifies, or one
    /// replaced by a verified copy meanwhile, is left alone.
    pub fn remove_corrupt_blob(&self, digest: &Digest) -> Result<bool> {
        let _lease = self.lease()?;
        self.remove_corrupt_blob_locked(digest)
    }

    /// [`Store::remove_corrupt_blob`] for a caller holding a lease or the
    /// exclusive lock.
    pub(crate) fn remove_corrupt_blob_locked(&self, digest: &Digest) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).ctx("open blob", path),
        };
        let held = file.metadata().ctx("stat blob", &path)?;
        let mut hasher = Hasher::new();
        let mut reader = io::BufReader::with_capacity(1 << 20, &file);
        loop {
            let chunk = reader.fill_buf().ctx("read blob", &path)?;
            if chunk.is_empty() {
                break;
            }
            hasher.update(chunk);
            let n = chunk.len();
            reader.consume(n);
        }
        if hasher.finish() == *digest {
            return Ok(false);
        }
        // Only the file that was checked: a writer may have renamed a
        // verified copy into place since.
        match fs::symlink_metadata(&path) {
            Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => {}
            _ => return Ok(false),
        }
        fs::remove_file(&path).ctx("remove corrupt blob", &path)?;
        util::fsync_dir(&self.blobs_dir())?;
        Ok(true)
    }

    /// The size of a blob in bytes.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound { digest: *digest })
            }
            Err(e) => Err(e).ctx("stat blob", path),
        }
    }

    /// Whether a blob is present as a regular file (its content is not
    /// checked here).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).ctx("stat blob", path),
        }
    }
}
