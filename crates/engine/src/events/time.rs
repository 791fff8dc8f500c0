//! `events --since` and `--until` times, as docker reads them.

use crate::error::{Error, Result};

/// A time given to `--since`/`--until`, in nanoseconds since the epoch:
/// Unix seconds (`1700000000`, `1700000000.5`), RFC 3339
/// (`2024-01-02T03:04:05Z`), or a Go duration before `now_nano` (`10m`,
/// `1h30m`).
pub fn parse_timestamp(text: &str, now_nano: i64) -> Result<i64> {
    let bad = || Error::Filter {
        filter: text.to_owned(),
        reason: "not a Unix time, an RFC 3339 time or a duration (10m, 1h30m)".to_owned(),
    };
    if let Some((secs, frac)) = unix_time(text) {
        return Ok(secs.saturating_mul(1_000_000_000).saturating_add(frac));
    }
    if let Some(secs) = crate::image::time::parse_rfc3339(text) {
        return Ok(secs.saturating_mul(1_000_000_000));
    }
    let ago = crate::container::parse_duration(text).map_err(|_| bad())?;
    Ok(now_nano.saturating_sub(i64::try_from(ago.as_nanos()).unwrap_or(i64::MAX)))
}

/// `SECS[.FRACTION]`: seconds and nanoseconds.
fn unix_time(text: &str) -> Option<(i64, i64)> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || secs.len() > 12 {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some((secs.parse().ok()?, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_rfc3339_and_durations() {
        let now: i64 = 2_000_000_000 * 1_000_000_000;
        assert_eq!(
            parse_timestamp("1700000000", now).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_timestamp("1700000000.5", now).unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(parse_timestamp("10m", now).unwrap(), now - 600_000_000_000);
        for bad in ["", "yesterday", "1.2.3", "-5"] {
            assert!(parse_timestamp(bad, now).is_err(), "{bad}");
        }
    }
}
