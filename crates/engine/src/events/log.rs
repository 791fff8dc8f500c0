//! The event log: `<root>/events/log.jsonl`, one JSON event a line.
//!
//! Writers append each line with one `write` on an `O_APPEND` descriptor
//! while holding `events/lock` shared, so concurrent writers never
//! interleave. Past [`MAX_BYTES`] a writer takes the lock exclusive and
//! renames the log to `log.1.jsonl` (replacing the older one): the log
//! stays under twice that bound. Readers read `log.1.jsonl` then
//! `log.jsonl`; a follower notices the rename (a new inode under the name)
//! and drains the old file before moving on; nothing writes to it then,
//! since the rename waited for every writer's shared lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FlockOperation, flock};

use super::Event;
use crate::error::{Error, Result};

/// The size past which the log is rotated.
pub const MAX_BYTES: u64 = 1 << 20;

/// The event log of one store.
#[derive(Debug, Clone)]
pub struct EventLog {
    dir: PathBuf,
}

/// What [`EventLog::follow`] replays and how long it follows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowOptions {
    /// Replay the logged events from this time (ns since the epoch) on;
    /// `None`: only events from now on.
    pub since: Option<i64>,
    /// Stop once this time has passed; `None`: follow until the callback
    /// says stop.
    pub until: Option<i64>,
}

/// How often a follower looks for new lines.
const POLL: Duration = Duration::from_millis(100);

impl EventLog {
    /// The event log of the store at `root` (made on the first event).
    pub fn open(root: &Path) -> EventLog {
        EventLog {
            dir: root.join("events"),
        }
    }

    fn current(&self) -> PathBuf {
        self.dir.join("log.jsonl")
    }

    fn rotated(&self) -> PathBuf {
        self.dir.join("log.1.jsonl")
    }

    /// Takes `events/lock` shared or exclusive; released on drop.
    fn lock(&self, operation: FlockOperation) -> Result<File> {
        let path = self.dir.join("lock");
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source: std::io::Error| Error::Io {
                action,
                path,
                source,
            }
        };
        fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .map_err(io("open", &path))?;
        flock(&file, operation).map_err(|e| io("lock", &path)(e.into()))?;
        Ok(file)
    }

    /// Appends `event` as one line, rotating the log past [`MAX_BYTES`].
    pub(crate) fn append(&self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event).map_err(|source| Error::Encode {
            what: format!("the {} event", event.action),
            source,
        })?;
        line.push(b'\n');
        let lock = self.lock(FlockOperation::LockShared)?;
        let path = self.current();
        let io = |action: &'static str| {
            let path = path.clone();
            move |source: std::io::Error| Error::Io {
                action,
                path,
                source,
            }
        };
        let size = fs::metadata(&path).map_or(0, |m| m.len());
        if size + line.len() as u64 > MAX_BYTES {
            // Exclusive: no writer holds the old file when it is renamed.
            flock(&lock, FlockOperation::LockExclusive).map_err(|e| io("lock for")(e.into()))?;
            let size = fs::metadata(&path).map_or(0, |m| m.len());
            if size + line.len() as u64 > MAX_BYTES {
                fs::rename(&path, self.rotated()).map_err(io("rotate"))?;
            }
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&path)
            .map_err(io("open"))?;
        // One write: an O_APPEND write of a line is never interleaved.
        file.write_all(&line).map_err(io("append to"))?;
        drop(lock);
        Ok(())
    }

    /// The logged events from `since` to `until` (inclusive), oldest first.
    pub fn read(&self, since: Option<i64>, until: Option<i64>) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let _lock = self.lock(FlockOperation::LockShared)?;
        for path in [self.rotated(), self.current()] {
            let Some(mut tail) = Tail::open(&path, false)? else {
                continue;
            };
            tail.read_new(&mut |e| {
                if in_range(e, since, until) {
                    out.push(e.clone());
                }
                true
            })?;
        }
        Ok(out)
    }

    /// Calls `on_event` with the logged events since `options.since` (if
    /// given), then with each new event as it is logged, until
    /// `options.until` passes or `on_event` returns `false`.
    pub fn follow(
        &self,
        options: FollowOptions,
        mut on_event: impl FnMut(&Event) -> bool,
    ) -> Result<()> {
        let FollowOptions { since, until } = options;
        let keep_going = std::cell::Cell::new(true);
        let mut deliver = |e: &Event| {
            if until.is_some_and(|u| e.time_nano > u) {
                keep_going.set(false);
            } else if keep_going.get() && since.is_none_or(|s| e.time_nano >= s) {
                keep_going.set(on_event(e));
            }
            keep_going.get()
        };
        let mut tail = {
            // Shared: no rotation between the two files.
            let _lock = self.lock(FlockOperation::LockShared)?;
            if since.is_some()
                && let Some(mut old) = Tail::open(&self.rotated(), false)?
            {
                old.read_new(&mut deliver)?;
            }
            Tail::open(&self.current(), since.is_none())?
        };
        loop {
            if let Some(t) = tail.as_mut() {
                t.read_new(&mut deliver)?;
            }
            if !keep_going.get() || until.is_some_and(|u| super::now_nanos() > u) {
                return Ok(());
            }
            std::thread::sleep(POLL);
            tail = self.next_tail(tail, &mut deliver)?;
        }
    }

    /// The tail to read next: the same file, or after a rotation the new
    /// one (the old one drained first).
    fn next_tail(
        &self,
        tail: Option<Tail>,
        deliver: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<Option<Tail>> {
        let path = self.current();
        let now = match fs::metadata(&path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(_) => return Ok(tail),
        };
        match tail {
            Some(t) if t.identity == now => Ok(Some(t)),
            Some(mut old) => {
                old.read_new(deliver)?;
                Tail::open(&path, false)
            }
            None => Tail::open(&path, false),
        }
    }
}

fn in_range(event: &Event, since: Option<i64>, until: Option<i64>) -> bool {
    since.is_none_or(|s| event.time_nano >= s) && until.is_none_or(|u| event.time_nano <= u)
}

/// An open log file read line by line from an offset.
struct Tail {
    file: File,
    path: PathBuf,
    identity: (u64, u64),
    /// A line not yet ended by its newline.
    partial: Vec<u8>,
}

impl Tail {
    /// Opens `path` at its start, or its end; `None` if it does not exist.
    fn open(path: &Path, at_end: bool) -> Result<Option<Tail>> {
        let io = |action: &'static str| {
            let path = path.to_path_buf();
            move |source: std::io::Error| Error::Io {
                action,
                path,
                source,
            }
        };
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open")(e)),
        };
        let meta = file.metadata().map_err(io("stat"))?;
        if at_end {
            file.seek(SeekFrom::End(0)).map_err(io("seek"))?;
        }
        Ok(Some(Tail {
            file,
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            partial: Vec::new(),
        }))
    }

    /// Hands every complete new line's event to `deliver` (a line that
    /// is not an event, such as a torn write, is skipped) until it says
    /// stop.
    fn read_new(&mut self, deliver: &mut dyn FnMut(&Event) -> bool) -> Result<()> {
        let mut chunk = Vec::new();
        self.file
            .read_to_end(&mut chunk)
            .map_err(|source| Error::Io {
                action: "read",
                path: self.path.clone(),
                source,
            })?;
        self.partial.extend_from_slice(&chunk);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.partial.split_off(end + 1);
        let lines = std::mem::replace(&mut self.partial, rest);
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Event>(line) {
                Ok(event) => {
                    if !deliver(&event) {
                        return Ok(());
                    }
                }
                Err(err) => {
                    tracing::debug!("skipping an event line in {}: {err}", self.path.display())
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::EventType;
    use super::*;

    fn event(n: i64) -> Event {
        let mut event =
            Event::now(EventType::Image, "tag", "sha256:00").with("name", format!("n{n}"));
        event.time_nano = n;
        event
    }

    #[test]
    fn appends_read_back_in_order_within_bounds_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path());
        assert!(log.read(None, None).unwrap().is_empty(), "no log yet");
        let line = serde_json::to_vec(&event(0)).unwrap().len() as u64 + 1;
        let n = (MAX_BYTES / line) as i64 + 10;
        let mut written = 0u64;
        for i in 0..n {
            written += serde_json::to_vec(&event(i)).unwrap().len() as u64 + 1;
            log.append(&event(i)).unwrap();
        }
        let rotated = fs::metadata(log.rotated()).unwrap().len();
        let current = fs::metadata(log.current()).unwrap().len();
        assert!(
            rotated <= MAX_BYTES && current <= MAX_BYTES,
            "{rotated} {current}"
        );
        assert_eq!(rotated + current, written, "nothing lost in the rotation");
        let all = log.read(None, None).unwrap();
        assert_eq!(all.len() as i64, n);
        assert!(all.windows(2).all(|w| w[0].time_nano < w[1].time_nano));
        let some = log.read(Some(5), Some(7)).unwrap();
        assert_eq!(
            some.iter().map(|e| e.time_nano).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        // A torn line is skipped, the next event still read.
        let mut file = OpenOptions::new().append(true).open(log.current()).unwrap();
        file.write_all(b"{\"type\":\"ima\n").unwrap();
        log.append(&event(n)).unwrap();
        assert_eq!(log.read(Some(n), None).unwrap().len(), 1);
    }

    #[test]
    fn follow_replays_and_stops_at_until_or_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path());
        for i in 1..=5 {
            log.append(&event(i)).unwrap();
        }
        let mut seen = Vec::new();
        let options = FollowOptions {
            since: Some(2),
            until: Some(4),
        };
        log.follow(options, |e| {
            seen.push(e.time_nano);
            true
        })
        .unwrap();
        assert_eq!(seen, [2, 3, 4]);
        let mut first = Vec::new();
        let options = FollowOptions {
            since: Some(0),
            until: None,
        };
        log.follow(options, |e| {
            first.push(e.time_nano);
            false
        })
        .unwrap();
        assert_eq!(first, [1], "the callback stops it");
    }
}
