//! Durations as compose writes them (`1m30s`, `10s`, `1.5s`, `100ms`) and prints
//! them (Go's `time.Duration` format: `1m30s`, `1h0m0s`).

use std::fmt;

use serde::{Serialize, Serializer};

/// A non-negative duration, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Duration {
    /// Parses `1h2m3.5s`, `100ms`, `10us`, `5ns`, `0`.
    pub fn parse(text: &str) -> Option<Duration> {
        if text == "0" {
            return Some(Duration(0));
        }
        let mut rest = text;
        let mut total: u128 = 0;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (num, tail) = rest.split_at(num_len);
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return None,
            };
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            if int.is_empty() && frac.is_empty() {
                return None;
            }
            let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
            let mut part = int.checked_mul(scale)?;
            let mut div = scale;
            for digit in frac.chars().take(18) {
                div /= 10;
                part = part.checked_add(u128::from(digit.to_digit(10)?) * div)?;
            }
            total = total.checked_add(part)?;
            rest = tail;
        }
        u64::try_from(total).ok().map(Duration)
    }
}

impl fmt::Display for Duration {
    /// Go's `Duration.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        if ns < 1_000_000_000 {
            let (unit, scale) = match ns {
                n if n < 1_000 => return write!(f, "{n}ns"),
                n if n < 1_000_000 => ("µs", 1_000),
                _ => ("ms", 1_000_000),
            };
            return write!(f, "{}{unit}", fraction(ns, scale));
        }
        let hours = ns / 3_600_000_000_000;
        let minutes = ns / 60_000_000_000 % 60;
        let seconds = fraction(ns % 60_000_000_000, 1_000_000_000);
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{seconds}s")
        } else if minutes > 0 {
            write!(f, "{minutes}m{seconds}s")
        } else {
            write!(f, "{seconds}s")
        }
    }
}

/// `value / scale` with its fraction, trailing zeros dropped.
fn fraction(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_as_go_does() {
        for (input, want) in [
            ("10s", "10s"),
            ("90s", "1m30s"),
            ("1m30s", "1m30s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("100ms", "100ms"),
            ("0", "0s"),
            ("2h3m4.25s", "2h3m4.25s"),
            ("1500us", "1.5ms"),
        ] {
            assert_eq!(Duration::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in ["", "10", "s", "1x", "-1s", ".s", "99999999999999h"] {
            assert_eq!(Duration::parse(bad), None, "{bad}");
        }
    }
}
