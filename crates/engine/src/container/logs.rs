//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`,
//! size-capped with rotation (`container.log` -> `container.log.1`).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::now_nanos;
use crate::error::{Error, Result};

/// Default cap of one log file before rotation.
pub const DEFAULT_LOG_MAX: u64 = 10 << 20;
/// A partial line longer than this is written as its own entry.
const MAX_PARTIAL: usize = 16 << 10;
/// A log line longer than this is refused when reading (corrupt file).
const MAX_LINE: usize = 1 << 20;

/// Which stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One entry of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The text, newline included when the line was complete.
    pub log: String,
    pub stream: LogStream,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// Appends entries to `container.log`, rotating it at `max_size`.
#[derive(Debug)]
pub(crate) struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64) -> Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                action: "open log",
                path: path.to_owned(),
                source,
            })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_owned(),
            file,
            size,
            max_size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Takes a chunk of output; complete lines become entries.
    pub fn write(&mut self, stream: LogStream, chunk: &[u8]) {
        let idx = stream as usize;
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&rest[..=pos]);
            self.entry(stream, &line);
            rest = &rest[pos + 1..];
        }
        self.partial[idx].extend_from_slice(rest);
        if self.partial[idx].len() > MAX_PARTIAL {
            let line = std::mem::take(&mut self.partial[idx]);
            self.entry(stream, &line);
        }
    }

    /// Writes what is left of unterminated lines.
    pub fn flush(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.entry(stream, &line);
            }
        }
        let _ = self.file.sync_data();
    }

    fn entry(&mut self, stream: LogStream, bytes: &[u8]) {
        let entry = LogEntry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream,
            time: format_time(now_nanos()),
        };
        let Ok(mut line) = serde_json::to_vec(&entry) else {
            return;
        };
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate();
        }
        // A full disk loses log lines, never the container.
        if self.file.write_all(&line).is_ok() {
            self.size += line.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let old = rotated(&self.path);
        if fs::rename(&self.path, &old).is_err() {
            return;
        }
        if let Ok(file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            self.file = file;
            self.size = 0;
        }
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Options of `logs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Keep reading until the container stops.
    pub follow: bool,
}

/// Reads all entries (rotated file first), then calls `on_entry` for each,
/// the last `tail` only; with `follow`, keeps polling the live file until
/// `running()` turns false and nothing more arrives.
pub(crate) fn read(
    path: &Path,
    options: LogOptions,
    mut running: impl FnMut() -> bool,
    mut on_entry: impl FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<()> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io {
            action: "read log",
            path,
            source,
        }
    };
    let mut entries = Vec::new();
    let old = rotated(path);
    if let Ok(file) = File::open(&old) {
        read_lines(&mut BufReader::new(file), &old, &mut entries)?;
    }
    let mut live = match File::open(path) {
        Ok(file) => Some(BufReader::new(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(path)(e)),
    };
    if let Some(reader) = live.as_mut() {
        read_lines(reader, path, &mut entries)?;
    }
    let skip = options.tail.map_or(0, |n| entries.len().saturating_sub(n));
    for entry in &entries[skip..] {
        if on_entry(entry).is_err() {
            return Ok(());
        }
    }
    if !options.follow {
        return Ok(());
    }
    let mut offset = match live.as_mut() {
        Some(reader) => reader.stream_position().map_err(io_err(path))?,
        None => 0,
    };
    loop {
        let still_running = running();
        // Reopen each round: the file may have been rotated away.
        let mut batch = Vec::new();
        if let Ok(mut file) = File::open(path) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0;
            }
            file.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
            let mut reader = BufReader::new(file);
            read_lines(&mut reader, path, &mut batch)?;
            offset = reader.stream_position().map_err(io_err(path))?;
        }
        for entry in &batch {
            if on_entry(entry).is_err() {
                return Ok(());
            }
        }
        if !still_running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads complete lines; a trailing partial line is left for later.
fn read_lines(reader: &mut BufReader<File>, path: &Path, out: &mut Vec<LogEntry>) -> Result<()> {
    let mut line = Vec::new();
    loop {
        let start = reader.stream_position().unwrap_or(0);
        line.clear();
        let n = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::Io {
                action: "read log",
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            if n >= MAX_LINE {
                return Err(Error::ContainerState {
                    path: path.to_owned(),
                    reason: format!("log line at byte {start} is longer than {MAX_LINE} bytes"),
                });
            }
            reader
                .seek(SeekFrom::Start(start))
                .map_err(|source| Error::Io {
                    action: "seek log",
                    path: path.to_owned(),
                    source,
                })?;
            return Ok(());
        }
        match serde_json::from_slice::<LogEntry>(&line) {
            Ok(entry) => out.push(entry),
            Err(e) => {
                return Err(Error::ContainerState {
                    path: path.to_owned(),
                    reason: format!("bad log line at byte {start}: {e}"),
                });
            }
        }
    }
}

use std::io::Read as _;

/// RFC 3339 with nine fraction digits, UTC, for nanoseconds since the epoch.
pub(crate) fn format_time(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::image::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_time(1_709_251_199_000_000_001),
            "2024-02-29T23:59:59.000000001Z"
        );
    }

    #[test]
    fn lines_split_rotate_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut writer = LogWriter::open(&path, 400).unwrap();
        writer.write(LogStream::Stdout, b"one\ntw");
        writer.write(LogStream::Stderr, b"err\n");
        writer.write(LogStream::Stdout, b"o\n");
        for i in 0..10 {
            writer.write(LogStream::Stdout, format!("line {i}\n").as_bytes());
        }
        writer.write(LogStream::Stdout, b"no newline");
        writer.flush();
        assert!(rotated(&path).exists(), "rotated at the cap");
        assert!(fs::metadata(&path).unwrap().len() <= 400);
        let mut all = Vec::new();
        read(
            &path,
            LogOptions::default(),
            || false,
            |e| {
                all.push(e.clone());
                Ok(())
            },
        )
        .unwrap();
        let texts: Vec<&str> = all.iter().map(|e| e.log.as_str()).collect();
        // The oldest entries went with the first rotation; the end is intact.
        assert_eq!(texts.last(), Some(&"no newline"));
        assert_eq!(texts[texts.len() - 2], "line 9\n");
        let mut tail = Vec::new();
        let options = LogOptions {
            tail: Some(2),
            follow: false,
        };
        read(
            &path,
            options,
            || false,
            |e| {
                tail.push(e.log.clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(tail, ["line 9\n", "no newline"]);

        let small = dir.path().join("small.log");
        let mut writer = LogWriter::open(&small, DEFAULT_LOG_MAX).unwrap();
        writer.write(LogStream::Stdout, b"one\ntw");
        writer.write(LogStream::Stderr, b"err\n");
        writer.write(LogStream::Stdout, b"o\n");
        writer.flush();
        let mut got = Vec::new();
        read(
            &small,
            LogOptions::default(),
            || false,
            |e| {
                got.push((e.stream, e.log.clone()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            got,
            [
                (LogStream::Stdout, "one\n".to_owned()),
                (LogStream::Stderr, "err\n".to_owned()),
                (LogStream::Stdout, "two\n".to_owned()),
            ]
        );
    }

    #[test]
    fn corrupt_log_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        fs::write(&path, b"{\"log\":1}\n").unwrap();
        let err = read(&path, LogOptions::default(), || false, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("container.log"), "{err}");
    }
}
