//! The library's log events on stderr: `buildr: warning: ...` lines, at
//! `warn` by default; `-v` (info), `-vv` (debug), `-vvv` (trace),
//! `--log-level LEVEL` or `BUILDR_LOG` (tracing's filter syntax, e.g.
//! `buildr_oci=debug`) say more.
//!
//! A live progress frame may be on stderr while events arrive: the frame is
//! erased before the line is written (the next tick draws it again below),
//! so log lines and the frame never overwrite each other.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Lines of the live progress frame drawn on stderr (0: none), shared by
/// the tty renderer and the log writer; its lock orders their writes.
static FRAME: Mutex<usize> = Mutex::new(0);

/// Runs `draw` (which writes a frame of `lines` lines to stderr, starting
/// by moving up over `drawn` lines) under the terminal lock.
pub fn with_frame<R>(draw: impl FnOnce(usize) -> (R, usize)) -> R {
    let mut frame = FRAME.lock().unwrap_or_else(PoisonError::into_inner);
    let (result, lines) = draw(*frame);
    *frame = lines;
    result
}

/// A log filter that does not parse: the directive, where it came from
/// (`--log-level`, `BUILDR_LOG`, ...) and the parser's error.
///
/// The parser's message ends this one and is not also offered as the
/// source: tracing-subscriber's level errors return themselves as their
/// source, so a chain would print them twice.
#[derive(Debug)]
pub struct FilterError {
    directive: String,
    from: &'static str,
    cause: tracing_subscriber::filter::ParseError,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid log filter {:?} ({}): {}",
            self.directive, self.from, self.cause
        )
    }
}

impl std::error::Error for FilterError {}

/// The filter the flags and the environment ask for: `--log-level`, else
/// `-v`s, else `BUILDR_LOG`, else `warn`.
pub fn filter(level: Option<&str>, verbose: u8) -> Result<EnvFilter, FilterError> {
    let env = std::env::var("BUILDR_LOG").ok().filter(|v| !v.is_empty());
    let (directive, from) = match (level, verbose, env) {
        (Some(level), _, _) => (level.to_string(), "--log-level"),
        (None, 1, _) => ("info".into(), "-v"),
        (None, 2, _) => ("debug".into(), "-vv"),
        (None, 3.., _) => ("trace".into(), "-vvv"),
        (None, 0, Some(env)) => (env, "BUILDR_LOG"),
        (None, 0, None) => ("warn".into(), "the default"),
    };
    EnvFilter::try_new(&directive).map_err(|cause| FilterError {
        directive,
        from,
        cause,
    })
}

/// Installs the subscriber (once, first thing in `main`).
pub fn init(filter: EnvFilter) {
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_ansi(color)
        .with_env_filter(filter)
        .with_writer(Stderr)
        .event_format(Format)
        .try_init();
}

/// `buildr: LEVEL: message field=value ...`, the target too below info.
struct Format;

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "buildr: {level}: ")?;
        if *meta.level() > Level::INFO {
            write!(writer, "[{}] ", meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Writes each event to stderr in one piece, above any live frame.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One event's text, written out when the formatter is done with it.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.0);
        with_frame(|drawn| {
            let mut err = std::io::stderr().lock();
            if drawn > 0 && err.is_terminal() {
                // Erase the frame; the renderer draws it again below.
                let _ = write!(err, "\r\x1b[{drawn}A\x1b[J");
            }
            let _ = err.write_all(&text);
            let _ = err.flush();
            ((), 0)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_take_precedence_over_the_environment() {
        assert_eq!(filter(Some("debug"), 0).unwrap().to_string(), "debug");
        assert_eq!(filter(None, 1).unwrap().to_string(), "info");
        assert_eq!(filter(None, 2).unwrap().to_string(), "debug");
        assert_eq!(filter(None, 7).unwrap().to_string(), "trace");
        assert!(filter(Some("buildr_oci=nonsense=1"), 0).is_err());
    }
}
