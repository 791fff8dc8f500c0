//! Rendering build progress: `plain` (BuildKit's plain mode: `#N` per
//! step, `CACHED`, timed log lines, `DONE`, errors, why a step missed),
//! `tty` (BuildKit's live view, redrawn in place: [`tty`]) and `json` (one
//! JSON object per event).

mod tty;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use buildr::build::CancelToken;
use buildr::build::LogStream;
use buildr::build::ProgressEvent;

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Json,
    Quiet,
}

impl Mode {
    /// The mode for `--progress NAME` (and `--quiet`): `auto` and `tty` are
    /// the live view when stderr is a terminal that can move its cursor
    /// (not `TERM=dumb`), plain otherwise.
    pub fn choose(quiet: bool, progress: &str) -> Mode {
        match (quiet, progress) {
            (true, _) => Mode::Quiet,
            (_, "json") => Mode::Json,
            (_, "plain") => Mode::Plain,
            _ if stderr_is_live_terminal() => Mode::Tty,
            _ => Mode::Plain,
        }
    }
}

fn stderr_is_live_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// Renders the events from `rx` on stderr in `mode` until the sender
/// hangs up; `cancel` tells whether the build was interrupted.
pub fn render(mode: Mode, rx: &Receiver<ProgressEvent>, cancel: &CancelToken) {
    if mode == Mode::Tty {
        tty::run(rx, cancel);
        return;
    }
    let mut renderer = Renderer::new(mode);
    let stderr = std::io::stderr();
    for event in rx {
        let mut out = stderr.lock();
        renderer.event(&mut out, &event);
    }
}

/// Renders events to stderr as they arrive.
#[derive(Debug)]
pub struct Renderer {
    mode: Mode,
    numbers: HashMap<String, usize>,
    started: HashMap<String, Instant>,
    partial: HashMap<String, Vec<u8>>,
}

impl Renderer {
    pub fn new(mode: Mode) -> Renderer {
        Renderer {
            mode,
            numbers: HashMap::new(),
            started: HashMap::new(),
            partial: HashMap::new(),
        }
    }

    fn number(&mut self, key: &str) -> (usize, bool) {
        let next = self.numbers.len() + 1;
        let mut fresh = false;
        let n = *self.numbers.entry(key.to_owned()).or_insert_with(|| {
            fresh = true;
            next
        });
        (n, fresh)
    }

    pub fn event(&mut self, out: &mut impl Write, event: &ProgressEvent) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => {
                let _ = writeln!(out, "{}", json(event));
            }
            Mode::Plain | Mode::Tty => self.plain(out, event),
        }
    }

    fn plain(&mut self, out: &mut impl Write, event: &ProgressEvent) {
        let vertex = event.vertex();
        let key = vertex.digest.to_hex();
        let (n, fresh) = self.number(&key);
        if fresh {
            let _ = writeln!(out, "#{n} {}", vertex.name);
        }
        match event {
            ProgressEvent::Started { explain, at, .. } => {
                self.started.insert(key, *at);
                if let Some(why) = explain {
                    let _ = writeln!(out, "#{n} cache miss: {why}");
                }
            }
            ProgressEvent::Cached { .. } => {
                let _ = writeln!(out, "#{n} CACHED");
            }
            ProgressEvent::Log { data, .. } => {
                let since = self
                    .started
                    .get(&key)
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
                let buf = self.partial.entry(key).or_default();
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                    let _ = writeln!(out, "#{n} {since:.3} {text}");
                }
            }
            ProgressEvent::Finished { duration, .. } => {
                self.flush_partial(out, n, &key);
                let _ = writeln!(out, "#{n} DONE {:.1}s", duration.as_secs_f64());
            }
            ProgressEvent::Failed {
                duration, message, ..
            } => {
                self.flush_partial(out, n, &key);
                let _ = writeln!(out, "#{n} ERROR {message} ({:.1}s)", duration.as_secs_f64());
            }
        }
        if !matches!(
            event,
            ProgressEvent::Log { .. } | ProgressEvent::Started { .. }
        ) {
            let _ = writeln!(out);
        }
    }

    fn flush_partial(&mut self, out: &mut impl Write, n: usize, key: &str) {
        if let Some(rest) = self.partial.remove(key).filter(|r| !r.is_empty()) {
            let _ = writeln!(out, "#{n} {}", String::from_utf8_lossy(&rest));
        }
    }
}

/// One event as a JSON object.
pub fn json(event: &ProgressEvent) -> serde_json::Value {
    let vertex = event.vertex();
    let mut obj = serde_json::json!({
        "vertex": vertex.digest.to_hex(),
        "name": vertex.name,
        "location": vertex.location,
    });
    let fields = match event {
        ProgressEvent::Started { key, explain, .. } => serde_json::json!({
            "event": "started", "key": key.to_hex(), "explain": explain,
        }),
        ProgressEvent::Cached { key, .. } => serde_json::json!({
            "event": "cached", "key": key.to_hex(),
        }),
        ProgressEvent::Log { stream, data, .. } => serde_json::json!({
            "event": "log",
            "stream": if *stream == LogStream::Stderr { "stderr" } else { "stdout" },
            "data": String::from_utf8_lossy(data),
        }),
        ProgressEvent::Finished { key, duration, .. } => serde_json::json!({
            "event": "finished", "key": key.to_hex(), "duration_ms": duration.as_millis() as u64,
        }),
        ProgressEvent::Failed {
            duration, message, ..
        } => serde_json::json!({
            "event": "failed", "message": message, "duration_ms": duration.as_millis() as u64,
        }),
    };
    if let (Some(obj), serde_json::Value::Object(fields)) = (obj.as_object_mut(), fields) {
        obj.extend(fields);
    }
    obj
}
