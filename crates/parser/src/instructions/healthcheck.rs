//! HEALTHCHECK: `NONE`, or `CMD` with Go-style durations and a retry count.

use std::time::Duration;

use super::flags::{Flags, Kind};
use super::{CommandLine, Problem, Req, Result};

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// Disable any health check inherited from the base image.
    None,
    Cmd(HealthcheckCmd),
}

/// The check command and its timing. A duration or retry count that is
/// absent or zero is `None`: inherit from the base image, as BuildKit reads
/// zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    /// Exec form (`CMD` in the image config) or shell form (`CMD-SHELL`).
    pub command: CommandLine,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

const FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::String),
    ("timeout", Kind::String),
    ("start-period", Kind::String),
    ("start-interval", Kind::String),
    ("retries", Kind::String),
];

pub(crate) fn parse(req: &Req<'_>) -> Result<Healthcheck> {
    let (words, json) = req.words();
    let Some(first) = words.first() else {
        return Err(Problem::new(
            req.after_keyword(),
            "HEALTHCHECK requires at least one argument",
        )
        .help("expected `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD <command>`"));
    };
    let kind = first.to_ascii_uppercase();
    let rest = &words[1..];
    if kind == "NONE" {
        // BuildKit does not look at flags for NONE.
        if !rest.is_empty() {
            return Err(
                Problem::new(req.pos_of(&rest[0]), "HEALTHCHECK NONE takes no arguments")
                    .help("remove the words after NONE"),
            );
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(req, FLAGS)?;
    if kind != "CMD" {
        return Err(Problem::new(
            req.pos_of(first),
            format!("unknown type {first:?} in HEALTHCHECK (try CMD)"),
        )
        .help("expected `CMD` or `NONE`"));
    }
    let command = if json {
        CommandLine::Exec(rest.to_vec())
    } else {
        CommandLine::Shell(rest.join(" "))
    };
    let empty = match &command {
        CommandLine::Exec(v) => v.is_empty(),
        CommandLine::Shell(s) => s.is_empty(),
    };
    if empty {
        return Err(
            Problem::new(req.pos_of(first), "missing command after HEALTHCHECK CMD")
                .help("expected a command, e.g. `HEALTHCHECK CMD curl -f http://localhost/`"),
        );
    }
    Ok(Healthcheck::Cmd(HealthcheckCmd {
        command,
        interval: interval(req, &flags, "interval")?,
        timeout: interval(req, &flags, "timeout")?,
        start_period: interval(req, &flags, "start-period")?,
        start_interval: interval(req, &flags, "start-interval")?,
        retries: retries(&flags)?,
    }))
}

/// An optional interval flag: absent or zero is `None`; anything else must
/// be at least a millisecond.
fn interval(req: &Req<'_>, flags: &Flags<'_>, name: &str) -> Result<Option<Duration>> {
    let Some(value) = flags.string(name) else {
        return Ok(None);
    };
    let pos = flags.span(name).map_or(req.start(), |s| s.start);
    if value.is_empty() {
        return Ok(None);
    }
    let nanos = parse_go_duration(&value).map_err(|why| {
        Problem::new(
            pos,
            format!("invalid duration {value:?} for --{name}: {why}"),
        )
        .help("expected a Go duration such as `30s`, `1m30s` or `500ms`")
    })?;
    if nanos == 0 {
        return Ok(None);
    }
    if nanos < 1_000_000 {
        return Err(
            Problem::new(pos, format!("interval --{name} cannot be less than 1ms"))
                .help("use 0s to inherit the base image's value, or at least 1ms"),
        );
    }
    Ok(Some(Duration::from_nanos(nanos as u64)))
}

fn retries(flags: &Flags<'_>) -> Result<Option<u32>> {
    let Some(value) = flags.string("retries") else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let pos = flags.span("retries").unwrap_or_default().start;
    let n: i32 = parse_go_int(&value).ok_or_else(|| {
        Problem::new(pos, format!("invalid value {value:?} for --retries"))
            .help("expected a whole number, e.g. --retries=3")
    })?;
    if n < 0 {
        return Err(
            Problem::new(pos, format!("--retries cannot be negative ({n})"))
                .help("use 0 to inherit the base image's value"),
        );
    }
    Ok((n > 0).then_some(n as u32))
}

/// Go's `strconv.ParseInt(s, 10, 32)`: optional sign, decimal digits.
fn parse_go_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Why a Go duration did not parse (the text after `invalid duration ...:`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("expected a number")]
    ExpectedNumber,
    #[error("missing unit")]
    MissingUnit,
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    #[error("duration out of range")]
    OutOfRange,
}

/// Go's `time.ParseDuration`, in nanoseconds (negative allowed):
/// `[-+]` then one or more `<number><unit>` with units `ns us µs μs ms s m h`
/// and decimal fractions (`1.5h`); a bare `0` is zero.
pub(crate) fn parse_go_duration(text: &str) -> std::result::Result<i64, DurationError> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    const MAX: u128 = i64::MAX as u128;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(DurationError::ExpectedNumber);
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "" => return Err(DurationError::MissingUnit),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        let mut whole: u128 = 0;
        for b in int_digits.bytes() {
            whole = whole * 10 + u128::from(b - b'0');
            if whole > MAX {
                return Err(DurationError::OutOfRange);
            }
        }
        let mut part = whole * scale;
        // Fractions beyond nanosecond precision are truncated, as in Go;
        // 20 digits keep `frac * scale` far inside u128.
        let mut frac: u128 = 0;
        let mut denom: u128 = 1;
        for b in frac_digits.bytes().take(20) {
            frac = frac * 10 + u128::from(b - b'0');
            denom *= 10;
        }
        part += frac * scale / denom;
        total += part;
        if total > MAX {
            return Err(DurationError::OutOfRange);
        }
        rest = after;
    }
    let total = total as i64;
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration;

    #[test]
    fn go_durations() {
        let s = 1_000_000_000i64;
        for (text, want) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("30s", Some(30 * s)),
            ("1m30s", Some(90 * s)),
            ("500ms", Some(500_000_000)),
            ("1.5h", Some(5400 * s)),
            (".5s", Some(500_000_000)),
            ("1.s", Some(s)),
            ("-2s", Some(-2 * s)),
            ("+2s", Some(2 * s)),
            ("3\u{b5}s", Some(3000)),
            ("1h2m3s4ms5us6ns", Some(3723 * s + 4_005_006)),
            ("2562047h47m16.854775807s", Some(i64::MAX)),
            ("2562048h", None),
            ("0.000000000000000000000000000001h", Some(0)),
            ("", None),
            ("30", None),
            ("s", None),
            ("1x", None),
            ("1.2.3s", None),
            ("- 1s", None),
            ("99999999999999999999999s", None),
        ] {
            assert_eq!(parse_go_duration(text).ok(), want, "{text:?}");
        }
        // Long fractions neither overflow nor lose more than a nanosecond
        // (Go rounds through a float here, we truncate).
        let long = parse_go_duration("1.99999999999999999999999999999999999999h").unwrap();
        assert!(
            (7_199_999_999_999..=7_200_000_000_000).contains(&long),
            "{long}"
        );
    }
}
