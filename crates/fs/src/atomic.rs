//! Writing a file so that readers see the old content or the new, never a
//! prefix: a temp file on the same filesystem, fsync, rename over the
//! destination, fsync of its directory. The one home of this rule for the
//! store and for every crate above it (image archives, container state,
//! registry credentials, cache exports).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A step of an atomic write failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step} {}", path.display())]
pub struct AtomicWriteError {
    /// What was being done: "create a temp file in", "write", "rename into place", ...
    pub step: &'static str,
    /// The file or directory it was done to.
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl AtomicWriteError {
    /// `step` on `path` failed with `source`.
    pub fn new(step: &'static str, path: &Path, source: io::Error) -> AtomicWriteError {
        AtomicWriteError {
            step,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How a file is written atomically (a builder; [`AtomicWrite::new`] gives
/// the durable default: temp file beside the destination, fsyncs on).
#[derive(Debug, Clone, Copy)]
pub struct AtomicWrite<'a> {
    temp_dir: Option<&'a Path>,
    prefix: &'a str,
    mode: Option<u32>,
    sync: bool,
    create_parent: bool,
}

impl Default for AtomicWrite<'_> {
    fn default() -> Self {
        AtomicWrite::new()
    }
}

impl<'a> AtomicWrite<'a> {
    /// Temp file `.tmp-*` beside the destination, its mode as `tempfile`
    /// makes it (0600), fsync of the file and of the directory.
    pub fn new() -> AtomicWrite<'a> {
        AtomicWrite {
            temp_dir: None,
            prefix: ".tmp-",
            mode: None,
            sync: true,
            create_parent: false,
        }
    }

    /// Makes the temp file in `dir` (which must be on the destination's
    /// filesystem), e.g. a store's own `tmp/`.
    pub fn temp_dir(mut self, dir: &'a Path) -> Self {
        self.temp_dir = Some(dir);
        self
    }

    /// Names the temp file `PREFIX*`.
    pub fn prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = prefix;
        self
    }

    /// Gives the file permission bits `mode` before it becomes visible.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Skips the fsyncs (`false`) where durability comes from elsewhere (a
    /// deferred sync of the whole store) or does not matter (a memo); the
    /// file is still never visible half-written.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Creates the destination's missing parent directories first.
    pub fn create_parent(mut self) -> Self {
        self.create_parent = true;
        self
    }

    /// Writes `bytes` to `dest`.
    pub fn bytes(&self, dest: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
        self.with(dest, |file| {
            file.write_all(bytes)
                .map_err(|e| AtomicWriteError::new("write", dest, e))
        })
    }

    /// Lets `write` fill the temp file, then puts it in place as `dest`.
    /// Its errors are the caller's own; the steps around it fail as an
    /// [`AtomicWriteError`] converted into them.
    pub fn with<E>(
        &self,
        dest: &Path,
        write: impl FnOnce(&mut File) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<AtomicWriteError>,
    {
        fn fail<'p>(
            step: &'static str,
            path: &'p Path,
        ) -> impl FnOnce(io::Error) -> AtomicWriteError + 'p {
            move |e| AtomicWriteError::new(step, path, e)
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if self.create_parent {
            fs::create_dir_all(parent).map_err(fail("create the directory of", dest))?;
        }
        let dir = self.temp_dir.unwrap_or(parent);
        let mut tmp = tempfile::Builder::new()
            .prefix(self.prefix)
            .tempfile_in(dir)
            .map_err(fail("create a temp file in", dir))?;
        write(tmp.as_file_mut())?;
        if let Some(mode) = self.mode {
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
                .map_err(fail("set permissions on", tmp.path()))?;
        }
        if self.sync {
            tmp.as_file()
                .sync_all()
                .map_err(fail("fsync", tmp.path()))?;
        }
        tmp.persist(dest)
            .map_err(|e| fail("rename into place", dest)(e.error))?;
        if self.sync {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(fail("fsync the directory of", dest))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_with_their_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/file");
        AtomicWrite::new()
            .create_parent()
            .mode(0o640)
            .bytes(&dest, b"one")
            .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o640
        );
        AtomicWrite::new().sync(false).bytes(&dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "a temp file was left: {names:?}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file");
        fs::write(&dest, b"old").unwrap();
        let err = AtomicWrite::new()
            .with(&dest, |file| {
                file.write_all(b"partial").unwrap();
                Err(AtomicWriteError::new(
                    "write",
                    &dest,
                    io::Error::other("disk full"),
                ))
            })
            .unwrap_err();
        assert_eq!(err.step, "write");
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_parent_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("missing/file");
        let err = AtomicWrite::new().bytes(&dest, b"x").unwrap_err();
        assert_eq!(err.step, "create a temp file in");
        assert_eq!(err.path, dir.path().join("missing"));
    }
}
