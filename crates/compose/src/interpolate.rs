//! Variable interpolation in compose values: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, `$$`.
//!
//! Defaults and alternatives are themselves interpolated (nested
//! `${A:-${B:-c}}`). An unset variable without a default becomes the empty
//! string and is reported to the caller, who warns as compose does.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::yaml::{Node, Value};

/// The variables interpolation reads, and the unset ones it met.
#[derive(Debug, Default)]
pub struct Variables {
    /// Name -> value (`.env`, `--env-file`, then the process environment over them).
    pub values: BTreeMap<String, String>,
    /// Variables referenced without a value or default, in the order met.
    pub(crate) unset: BTreeSet<String>,
}

/// How deep defaults may nest (`${A:-${B:-...}}`).
const MAX_NESTING: usize = 64;

/// Why a template could not be expanded.
#[derive(Debug, PartialEq)]
pub(crate) enum TemplateError {
    /// Not a valid template (a lone `$`, an unclosed `${`).
    Invalid,
    /// `${VAR:?message}` or `${VAR?message}` with VAR unset (or empty for `:?`).
    Required { name: String, message: String },
}

impl Variables {
    /// Variables from name/value pairs.
    pub fn new(values: BTreeMap<String, String>) -> Variables {
        Variables {
            values,
            unset: BTreeSet::new(),
        }
    }

    /// Expands one string.
    pub(crate) fn expand(&mut self, text: &str) -> Result<String, TemplateError> {
        self.expand_nested(text, 0)
    }

    fn expand_nested(&mut self, text: &str, depth: usize) -> Result<String, TemplateError> {
        if depth > MAX_NESTING {
            return Err(TemplateError::Invalid);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = closing_brace(body).ok_or(TemplateError::Invalid)?;
                out.push_str(&self.braced(&body[..end], depth)?);
                rest = &body[end + 1..];
            } else {
                let len = name_len(after);
                if len == 0 {
                    return Err(TemplateError::Invalid);
                }
                out.push_str(&self.plain(&after[..len]));
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn plain(&mut self, name: &str) -> String {
        match self.values.get(name) {
            Some(value) => value.clone(),
            None => {
                self.unset.insert(name.to_owned());
                String::new()
            }
        }
    }

    /// The inside of `${...}`.
    fn braced(&mut self, body: &str, depth: usize) -> Result<String, TemplateError> {
        let len = name_len(body);
        if len == 0 {
            return Err(TemplateError::Invalid);
        }
        let (name, op) = body.split_at(len);
        if op.is_empty() {
            return Ok(self.plain(name));
        }
        let (colon, op) = match op.strip_prefix(':') {
            Some(op) => (true, op),
            None => (false, op),
        };
        let mut chars = op.chars();
        let kind = chars.next().ok_or(TemplateError::Invalid)?;
        let arg = chars.as_str();
        let value = self.values.get(name).cloned();
        // `:` also treats the empty string as unset.
        let set = value.as_ref().is_some_and(|v| !colon || !v.is_empty());
        match kind {
            '-' if set => Ok(value.unwrap_or_default()),
            '-' => self.expand_nested(arg, depth + 1),
            '+' if set => self.expand_nested(arg, depth + 1),
            '+' => Ok(String::new()),
            '?' if set => Ok(value.unwrap_or_default()),
            '?' => Err(TemplateError::Required {
                name: name.to_owned(),
                message: self.expand_nested(arg, depth + 1)?,
            }),
            _ => Err(TemplateError::Invalid),
        }
    }

    /// Interpolates every scalar value of a tree (keys stay as written).
    pub(crate) fn interpolate(&mut self, node: &mut Node, path: &str) -> Result<(), Error> {
        match &mut node.value {
            Value::Str { text, .. } => match self.expand(text) {
                Ok(expanded) => {
                    *text = expanded;
                    Ok(())
                }
                Err(TemplateError::Invalid) => Err(Error::invalid(
                    &node.pos,
                    path,
                    format!(
                        "invalid interpolation format: {text:?}; you may need to escape any $ with another $"
                    ),
                )),
                Err(TemplateError::Required { name, message }) => Err(Error::invalid(
                    &node.pos,
                    path,
                    format!("required variable {name} is missing a value: {message}"),
                )),
            },
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate(item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            Value::Map(entries) => {
                for (key, value) in entries.iter_mut() {
                    let sub = if path.is_empty() {
                        key.name.clone()
                    } else {
                        format!("{path}.{}", key.name)
                    };
                    self.interpolate(value, &sub)?;
                }
                Ok(())
            }
            Value::Null => Ok(()),
        }
    }

    /// The variables that were referenced without a value, sorted.
    pub fn unset(&self) -> impl Iterator<Item = &str> {
        self.unset.iter().map(String::as_str)
    }
}

/// Length of the variable name at the start of `text` (`[_a-zA-Z][_a-zA-Z0-9]*`).
fn name_len(text: &str) -> usize {
    let mut len = 0;
    for (i, c) in text.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// Index of the `}` closing a `${` whose body starts `body`, counting nested `${`.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        let mut values = BTreeMap::new();
        values.insert("A".to_owned(), "a".to_owned());
        values.insert("EMPTY".to_owned(), String::new());
        Variables::new(values)
    }

    #[test]
    fn every_form_expands_as_compose_does() {
        let mut v = vars();
        let cases = [
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y", "xay"),
            ("$$A", "$A"),
            ("${B:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${B-def}", "def"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${B:-${C:-${A}}}", "a"),
            ("${A:?boom}", "a"),
            ("$A.b", "a.b"),
            ("${B}", ""),
        ];
        for (input, want) in cases {
            assert_eq!(v.expand(input).unwrap(), want, "{input}");
        }
        assert_eq!(v.unset().collect::<Vec<_>>(), ["B"]);
    }

    #[test]
    fn required_and_invalid_templates_are_errors() {
        let mut v = vars();
        assert_eq!(
            v.expand("${B:?must be set}"),
            Err(TemplateError::Required {
                name: "B".into(),
                message: "must be set".into()
            })
        );
        assert!(matches!(
            v.expand("${EMPTY:?x}"),
            Err(TemplateError::Required { .. })
        ));
        assert_eq!(v.expand("${EMPTY?x}").unwrap(), "");
        let deep = format!("{}x{}", "${B:-".repeat(100_000), "}".repeat(100_000));
        assert_eq!(v.expand(&deep), Err(TemplateError::Invalid));
        for bad in ["$", "a $ b", "${", "${A", "${}", "${1}", "${A:}", "${A!x}"] {
            assert_eq!(v.expand(bad), Err(TemplateError::Invalid), "{bad}");
        }
    }
}
