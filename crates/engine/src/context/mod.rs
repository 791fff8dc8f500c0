//! The build context: the files `COPY` and `ADD` read.
//!
//! A [`BuildContext`] is a directory (or a tar stream unpacked into a
//! private one) with its `.dockerignore` applied. It offers:
//!
//! - [`BuildContext::walk`]: every entry sent to the build, excluded
//!   subtrees pruned, symlinks reported and never followed;
//! - [`BuildContext::resolve`]: the entries one `COPY`'s sources name, with
//!   Go `filepath.Match` wildcards per path element as BuildKit has them; a
//!   source is cleaned as an absolute path first, so `../x` is `x`;
//! - [`BuildContext::checksum`]: a blake3 content checksum of those sources
//!   for the solver's cache key (see `checksum.rs` for what it covers),
//!   computed in parallel, each file read at most once per build and not at
//!   all when the persistent stat cache vouches for it;
//! - [`BuildContext::explain`] / [`BuildContext::remember`]: the first path
//!   that changed since the last build of the same sources.
//!
//! Only files the sources reach are opened. Everything is read through
//! descriptors opened one component at a time with `O_NOFOLLOW` (see
//! `fsx.rs`): symlinks in a source path are resolved inside the root as
//! BuildKit does, and nothing — `..`, absolute symlinks, an entry swapped
//! while the build runs — reads outside it.
//!
//! What it is not: it does not copy anything into a layer (the `COPY` op
//! does) and it knows nothing of Dockerfiles beyond the `.dockerignore`
//! lookup rule.

mod checksum;
mod fsx;
mod source;
mod statcache;
mod walk;

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use buildr_solver::{ContentHash, ContentHasher};
use rayon::prelude::*;

pub use checksum::{Change, ChangeKind};
pub use fsx::EntryKind;
pub use source::{StdinInput, find_dockerignore, load_dockerignore};
pub use statcache::RACY_WINDOW_NS;

use checksum::RecordBuf;
use fsx::{FsError, Resolved};
use statcache::StatCache;
use walk::Scan;
pub use walk::VisitError;

use crate::dockerignore::{Decision, DockerIgnore};
use crate::error::{Error, Result};
use buildr_fs::atomic::AtomicWrite;

/// How to open a build context.
#[derive(Debug, Clone, Default)]
pub struct ContextOptions {
    /// The patterns of the context's `.dockerignore` (see
    /// [`load_dockerignore`]); nothing is excluded when `None`.
    pub dockerignore: Option<DockerIgnore>,
    /// The store root; the stat cache and the per-source records live under
    /// `<root>/cache/context-stat/`. Nothing is persisted when `None`, nor
    /// for tar contexts (their directory is new each time).
    pub state_root: Option<PathBuf>,
    /// Where a tar context is unpacked; the system temp dir when `None`.
    pub temp_dir: Option<PathBuf>,
}

/// One entry the walk sends to the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the context root, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    /// `st_size` (for a symlink, the length of its target).
    pub size: u64,
    /// False for a directory excluded by `.dockerignore` but present because
    /// an exception re-includes something below it.
    pub included: bool,
    /// False for a directory that could not be listed; reading it is an
    /// error only if a `COPY` needs it.
    pub readable: bool,
}

/// One entry a `COPY` source names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMatch {
    /// The source as written in the instruction.
    pub source: String,
    /// The matched path as named (wildcards expanded), relative to the root.
    pub path: String,
    /// The path after symlinks were resolved inside the root.
    pub resolved: String,
    pub kind: EntryKind,
}

/// The checksum of one `COPY`'s sources and what it covered.
#[derive(Debug, Clone)]
pub struct Selection {
    key: [u8; 32],
    checksum: ContentHash,
    matches: Vec<SourceMatch>,
    record: RecordBuf,
}

impl Selection {
    /// The content checksum to mix into the op's cache key.
    pub fn checksum(&self) -> ContentHash {
        self.checksum
    }

    /// Which sources were selected (not their content): the same for the
    /// same `COPY` sources on every machine.
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The per-path record, as a cache carries it for another machine's
    /// [`Selection::first_change_from`].
    pub(crate) fn record_bytes(&self) -> Vec<u8> {
        checksum::record_bytes(&self.record)
    }

    /// The first path that differs from a record in
    /// [`Selection::record_bytes`]' form; `None` when `old` is not one, or
    /// nothing differs.
    pub(crate) fn first_change_from(&self, old: Vec<u8>) -> Option<Change> {
        let old = checksum::parse_record(old)?;
        checksum::first_change(&old, &self.record)
    }

    /// The entries the sources matched.
    pub fn matches(&self) -> &[SourceMatch] {
        &self.matches
    }

    /// How many paths (files, dirs, symlinks) the checksum covers.
    pub fn path_count(&self) -> usize {
        self.record.len()
    }
}

/// Counters of one build's use of the context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// Files whose content was read and hashed.
    pub files_hashed: u64,
    /// Files whose hash came from the stat cache.
    pub cache_hits: u64,
    /// Whether the persisted stat cache was corrupt and ignored.
    pub cache_discarded: bool,
}

/// A build context: a root directory, its `.dockerignore` and its stat cache.
#[derive(Debug)]
pub struct BuildContext {
    root_path: PathBuf,
    root: OwnedFd,
    ignore: DockerIgnore,
    cache: StatCache,
    /// `<store>/cache/context-stat/<key>`: `.bin` is the stat cache, `.sel/`
    /// the per-source records.
    cache_base: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
}

impl BuildContext {
    /// Opens the context directory `dir`.
    pub fn from_dir(dir: &Path, opts: &ContextOptions) -> Result<BuildContext> {
        let root_path = std::fs::canonicalize(dir).map_err(|source| Error::Io {
            action: "open build context",
            path: dir.to_path_buf(),
            source,
        })?;
        let cache_base = opts
            .state_root
            .as_deref()
            .map(|state| statcache::cache_base(state, &root_path));
        BuildContext::open(root_path, opts, cache_base, None)
    }

    /// Unpacks a context tar stream (plain, gzip or zstd; e.g. stdin for
    /// `buildr build -`) into a private temporary directory, removed when
    /// the context is dropped. A `.dockerignore` inside it is not applied
    /// automatically: look it up with [`find_dockerignore`] on
    /// [`root`](Self::root) and pass it to [`set_dockerignore`](Self::set_dockerignore).
    pub fn from_tar<R: Read>(tar: R, opts: &ContextOptions) -> Result<BuildContext> {
        let temp = source::extract_tar(tar, opts.temp_dir.as_deref())?;
        let root_path = temp.path().to_path_buf();
        BuildContext::open(root_path, opts, None, Some(temp))
    }

    /// An empty context in a private temporary directory (a Dockerfile read
    /// from stdin with no context, `buildr build - < Dockerfile`).
    pub fn empty(opts: &ContextOptions) -> Result<BuildContext> {
        // An archive of no entries: its two zero end-of-archive blocks.
        BuildContext::from_tar(std::io::repeat(0).take(1024), opts)
    }

    fn open(
        root_path: PathBuf,
        opts: &ContextOptions,
        cache_base: Option<PathBuf>,
        temp: Option<tempfile::TempDir>,
    ) -> Result<BuildContext> {
        let root = fsx::open_root(&root_path).map_err(|errno| match errno {
            rustix::io::Errno::NOTDIR => Error::ContextNotDir {
                path: root_path.clone(),
            },
            errno => Error::Io {
                action: "open build context",
                path: root_path.clone(),
                source: errno.into(),
            },
        })?;
        let cache = match &cache_base {
            Some(base) => StatCache::load(&with_ext(base, "bin")),
            None => StatCache::default(),
        };
        Ok(BuildContext {
            root_path,
            root,
            ignore: opts.dockerignore.clone().unwrap_or_default(),
            cache,
            cache_base,
            _temp: temp,
        })
    }

    /// The context's root directory (for a tar context, the private copy).
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Replaces the `.dockerignore` patterns.
    pub fn set_dockerignore(&mut self, ignore: DockerIgnore) {
        self.ignore = ignore;
    }

    /// Every entry of the context the `.dockerignore` lets through, parents
    /// before children, siblings in byte order of name. Never opens a file.
    pub fn walk(&self) -> Result<Vec<ContextEntry>> {
        self.scan().walk(&self.root, "")
    }

    /// Like [`walk`](Self::walk) but only below the directory `rel` (a
    /// [`SourceMatch::resolved`] path; symlinks in it are resolved inside
    /// the root). Paths stay relative to the context root, the directory
    /// itself is not listed; a missing `rel` is BuildKit's not-found error.
    pub fn walk_under(&self, rel: &str) -> Result<Vec<ContextEntry>> {
        let mut out = Vec::new();
        self.visit_under(rel, |entry| {
            out.push(entry);
            Ok::<(), Error>(())
        })
        .map_err(VisitError::flatten)?;
        Ok(out)
    }

    /// [`walk_under`](Self::walk_under), calling `each` with one entry at a
    /// time instead of listing them (`""` for the whole context): memory
    /// follows the widest directory, not the context. Stops at the first
    /// error, the walk's or the visitor's.
    pub fn visit_under<E>(
        &self,
        rel: &str,
        mut each: impl FnMut(ContextEntry) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), VisitError<E>> {
        let scan = self.scan();
        let cleaned = crate::gopath::clean_relative(rel);
        if cleaned.is_empty() {
            return scan.visit(&self.root, "", &mut each);
        }
        let not_found = || {
            VisitError::Walk(Error::ContextSourceNotFound {
                source_path: format!("/{cleaned}"),
            })
        };
        let dir = self
            .lookup(&scan, &cleaned)
            .map_err(VisitError::Walk)?
            .ok_or_else(not_found)?;
        if EntryKind::of(&dir.stat) != EntryKind::Dir
            || self.ignore.decide(&dir.rel, true) == Decision::Exclude
        {
            return Err(not_found());
        }
        let fd = fsx::open_dir_at(dir.parent.as_fd(), OsStr::from_bytes(&dir.name), &dir.stat)
            .map_err(|e| VisitError::Walk(scan.error(&dir.rel, e)))?;
        scan.visit(&fd, &dir.rel, &mut each)
    }

    /// The entries the sources of one `COPY` name. A path that does not
    /// exist (or is excluded) is an error worded as BuildKit's; a wildcard
    /// that matches nothing is not, as BuildKit's `AllowEmptyWildcard`
    /// (`COPY foo nomatch* /` copies `foo`, `COPY nomatch* /` copies
    /// nothing), unless the directory before its first wildcard is missing.
    pub fn resolve<S: AsRef<str>>(&self, sources: &[S]) -> Result<Vec<SourceMatch>> {
        let mut out = Vec::new();
        for source in sources {
            let source = source.as_ref();
            for (path, resolved) in self.expand(source)? {
                out.push(SourceMatch {
                    source: source.to_owned(),
                    path,
                    kind: EntryKind::of(&resolved.stat),
                    resolved: resolved.rel,
                });
            }
        }
        Ok(out)
    }

    /// The content checksum of the sources of one `COPY`.
    pub fn checksum<S: AsRef<str>>(&self, sources: &[S]) -> Result<Selection> {
        let mut hasher = ContentHasher::new();
        hasher.update(b"buildr-context-selection/v1");
        let mut key = blake3::Hasher::new();
        let mut matches = Vec::new();
        let mut record = RecordBuf::default();
        for source in sources {
            let source = source.as_ref();
            let cleaned = crate::gopath::clean_relative(source);
            let wildcard = cleaned.split('/').any(crate::gopath::glob::has_wildcards);
            key.update(&(cleaned.len() as u64).to_le_bytes());
            key.update(cleaned.as_bytes());
            hasher.update(cleaned.as_bytes());
            let expanded = self.expand(source)?;
            let sums = expanded
                .par_iter()
                .map(|(_, resolved)| self.entry_sum(resolved))
                .collect::<Result<Vec<_>>>()?;
            hasher.update(&(expanded.len() as u64).to_le_bytes());
            for ((path, resolved), (sum, entries)) in expanded.into_iter().zip(sums) {
                if wildcard {
                    hasher.update(path.rsplit('/').next().unwrap_or_default().as_bytes());
                }
                hasher.update(&sum);
                record.append(entries);
                matches.push(SourceMatch {
                    source: source.to_owned(),
                    path,
                    kind: EntryKind::of(&resolved.stat),
                    resolved: resolved.rel,
                });
            }
        }
        Ok(Selection {
            key: *key.finalize().as_bytes(),
            checksum: hasher.finish(),
            matches,
            record,
        })
    }

    /// The first path that differs from the record [`remember`](Self::remember)
    /// saved for the same sources; `None` without a record (or persistence)
    /// or when nothing differs.
    pub fn explain(&self, selection: &Selection) -> Option<Change> {
        let path = self.record_path(selection)?;
        let old = checksum::load_record(&path)?;
        checksum::first_change(&old, &selection.record)
    }

    /// Saves the per-path record of `selection` for a later
    /// [`explain`](Self::explain).
    pub fn remember(&self, selection: &Selection) -> Result<()> {
        match self.record_path(selection) {
            Some(path) => checksum::save_record(&path, &selection.record),
            None => Ok(()),
        }
    }

    /// Saves the stat cache (at the end of a build).
    pub fn save(&self) -> Result<()> {
        let Some(base) = &self.cache_base else {
            return Ok(());
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        self.cache.save(&with_ext(base, "bin"), now)
    }

    /// What this build did with the context so far.
    pub fn stats(&self) -> ContextStats {
        ContextStats {
            files_hashed: self.cache.hashed.load(Ordering::Relaxed),
            cache_hits: self.cache.hits.load(Ordering::Relaxed),
            cache_discarded: self.cache.discarded,
        }
    }

    fn record_path(&self, selection: &Selection) -> Option<PathBuf> {
        let base = self.cache_base.as_ref()?;
        let name = blake3::Hash::from_bytes(selection.key).to_hex();
        Some(with_ext(base, "sel").join(format!("{name}.bin")))
    }

    fn scan(&self) -> Scan<'_> {
        Scan {
            ignore: &self.ignore,
            root_path: &self.root_path,
        }
    }

    /// Expands one source into `(path as named, resolved entry)` pairs.
    fn expand(&self, source: &str) -> Result<Vec<(String, Resolved)>> {
        let cleaned = crate::gopath::clean_relative(source);
        let not_found = || Error::ContextSourceNotFound {
            source_path: format!("/{cleaned}"),
        };
        let scan = self.scan();
        let parts: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
        let mut candidates = vec![String::new()];
        let wildcard = parts
            .iter()
            .any(|part| crate::gopath::glob::has_wildcards(part));
        if wildcard {
            let fixed: Vec<&str> = parts
                .iter()
                .take_while(|part| !crate::gopath::glob::has_wildcards(part))
                .copied()
                .collect();
            // fsutil walks the directory before the first wildcard.
            if self.lookup(&scan, &fixed.join("/"))?.is_none() {
                return Err(not_found());
            }
            for part in parts {
                if !crate::gopath::glob::has_wildcards(part) {
                    for candidate in &mut candidates {
                        push_part(candidate, part);
                    }
                    continue;
                }
                crate::gopath::glob::validate_pattern(part).map_err(|_| {
                    Error::ContextBadPattern {
                        pattern: source.to_owned(),
                    }
                })?;
                let mut next = Vec::new();
                for candidate in candidates {
                    let Some(dir) = self.lookup(&scan, &candidate)? else {
                        continue;
                    };
                    if EntryKind::of(&dir.stat) != EntryKind::Dir {
                        continue;
                    }
                    let fd = fsx::open_dir_at(
                        dir.parent.as_fd(),
                        OsStr::from_bytes(&dir.name),
                        &dir.stat,
                    )
                    .map_err(|e| scan.error(&dir.rel, e))?;
                    let mut names = list_names(&fd).map_err(|e| scan.error(&dir.rel, e))?;
                    names.sort();
                    for name in names {
                        if crate::gopath::glob::matches(part, &name).unwrap_or(false) {
                            let mut path = candidate.clone();
                            push_part(&mut path, &name);
                            next.push(path);
                        }
                    }
                }
                candidates = next;
            }
        } else {
            candidates = vec![cleaned.clone()];
        }
        let mut out = Vec::new();
        for candidate in candidates {
            let Some(resolved) = self.lookup(&scan, &candidate)? else {
                continue;
            };
            let is_dir = EntryKind::of(&resolved.stat) == EntryKind::Dir;
            if self.ignore.decide(&resolved.rel, is_dir) == Decision::Exclude {
                continue;
            }
            out.push((candidate, resolved));
        }
        if out.is_empty() && !wildcard {
            return Err(not_found());
        }
        Ok(out)
    }

    /// Resolves a cleaned path inside the root, following symlinks scoped to
    /// it; `None` when it does not exist.
    fn lookup(&self, scan: &Scan<'_>, rel: &str) -> Result<Option<Resolved>> {
        match fsx::resolve(self.root.as_fd(), rel, true) {
            Ok(resolved) => Ok(resolved),
            Err(FsError::NotDir) => Ok(None),
            Err(err) => Err(scan.error(rel, err)),
        }
    }

    /// The checksum of one resolved source and the record of what it covers.
    fn entry_sum(&self, resolved: &Resolved) -> Result<([u8; 32], RecordBuf)> {
        let scan = self.scan();
        if EntryKind::of(&resolved.stat) == EntryKind::Dir {
            let fd = fsx::open_dir_at(
                resolved.parent.as_fd(),
                OsStr::from_bytes(&resolved.name),
                &resolved.stat,
            )
            .map_err(|e| scan.error(&resolved.rel, e))?;
            return scan.sum_dir(&self.cache, &fd, &resolved.rel, resolved.stat.st_mode);
        }
        // A symlink here is one that was not followed.
        let sum = scan.leaf_sum(
            &self.cache,
            resolved.parent.as_fd(),
            &resolved.name,
            &resolved.rel,
            &resolved.stat,
        )?;
        let mut record = RecordBuf::default();
        let path = if resolved.rel.is_empty() {
            "."
        } else {
            &resolved.rel
        };
        record.push(path, &sum);
        Ok((sum, record))
    }
}

fn push_part(path: &mut String, part: &str) {
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(part);
}

fn list_names(dir: &OwnedFd) -> Result<Vec<String>, FsError> {
    let entries = rustix::fs::Dir::read_from(dir).map_err(fsx::io("list directory"))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(fsx::io("list directory"))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(names)
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Writes `path` atomically (durably, parents created), `write` filling
/// the file.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    AtomicWrite::new().create_parent().with(path, |file| {
        write(file).map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    })
}
