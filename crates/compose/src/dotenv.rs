//! `.env` files (`--env-file`, `env_file:`): `KEY=VALUE` lines as compose reads them.
//!
//! `#` comments, blank lines, an optional `export `, single quotes (literal),
//! double quotes (`\n`, `\t`, `\"`, `\\` escapes), unquoted values trimmed and
//! cut at ` #`. A line `KEY` alone names a variable without a value. Unquoted
//! and double-quoted values may use `${VAR}` of variables defined above them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::interpolate::Variables;
use crate::yaml::Pos;

/// Parses an env file's text; `lookup` gives the values `${VAR}` may use
/// besides those the file set above.
pub(crate) fn parse(
    text: &str,
    file: &Arc<str>,
    lookup: &BTreeMap<String, String>,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let pos = Pos {
            file: file.clone(),
            line: i + 1,
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, raw) = match line.split_once('=') {
            Some((key, raw)) => (key.trim_end(), Some(raw)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
            return Err(Error::invalid(
                &pos,
                key,
                format!("invalid variable name {key:?}"),
            ));
        }
        let value = match raw {
            None => None,
            Some(raw) => Some(value(raw.trim_start(), &pos, key, lookup, &out)?),
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn value(
    raw: &str,
    pos: &Pos,
    key: &str,
    lookup: &BTreeMap<String, String>,
    above: &[(String, Option<String>)],
) -> Result<String, Error> {
    if let Some(body) = raw.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or_else(|| Error::invalid(pos, key, "unterminated single quote"))?;
        return Ok(body[..end].to_owned());
    }
    let text = if let Some(body) = raw.strip_prefix('"') {
        let mut text = String::new();
        let mut chars = body.chars();
        loop {
            match chars.next() {
                None => return Err(Error::invalid(pos, key, "unterminated double quote")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('r') => text.push('\r'),
                    Some(c) => text.push(c),
                    None => return Err(Error::invalid(pos, key, "unterminated double quote")),
                },
                Some(c) => text.push(c),
            }
        }
        text
    } else {
        let cut = raw.find(" #").unwrap_or(raw.len());
        raw[..cut].trim_end().to_owned()
    };
    let mut values = lookup.clone();
    for (k, v) in above {
        if let Some(v) = v {
            values.insert(k.clone(), v.clone());
        }
    }
    Variables::new(values)
        .expand(&text)
        .map_err(|_| Error::invalid(pos, key, format!("invalid interpolation format: {text:?}")))
}

/// Reads and parses an env file.
pub(crate) fn read(
    path: &Path,
    lookup: &BTreeMap<String, String>,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &Arc::from(path.display().to_string()), lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_compose_reads_them() {
        let text =
            "# c\n\nA=1\nexport B = two # note\nC='x $A'\nD=\"a\\nb${A}\"\nE\nF=${A}-x\nA=3\n";
        let got = parse(text, &Arc::from(".env"), &BTreeMap::new()).unwrap();
        let want: Vec<(String, Option<String>)> = vec![
            ("B".into(), Some("two".into())),
            ("C".into(), Some("x $A".into())),
            ("D".into(), Some("a\nb1".into())),
            ("E".into(), None),
            ("F".into(), Some("1-x".into())),
            ("A".into(), Some("3".into())),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = parse("A=1\nB C=2\n", &Arc::from(".env"), &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().starts_with(".env:2:"), "{err}");
        let err = parse("A=\"x\n", &Arc::from(".env"), &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
    }
}
