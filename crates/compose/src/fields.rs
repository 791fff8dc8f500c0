//! Reading typed values out of YAML nodes, every failure naming file, line and key.

use std::collections::BTreeMap;

use crate::duration::Duration;
use crate::error::Error;
use crate::yaml::{Key, Node, Value};

/// A node being read, with its key path (`services.web.ports[0]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    pub node: &'a Node,
    pub path: &'a str,
}

impl<'a> Field<'a> {
    pub(crate) fn new(node: &'a Node, path: &'a str) -> Field<'a> {
        Field { node, path }
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> Error {
        Error::invalid(&self.node.pos, self.path, message)
    }

    fn expected(&self, what: &str) -> Error {
        self.err(format!("expected {what}, found {}", self.node.kind()))
    }

    /// The mapping's entries; an error for anything else.
    pub(crate) fn map(&self) -> Result<&'a [(Key, Node)], Error> {
        match &self.node.value {
            Value::Map(entries) => Ok(entries),
            _ => Err(self.expected("a mapping")),
        }
    }

    /// The mapping's entries, `null` read as empty.
    pub(crate) fn map_or_null(&self) -> Result<&'a [(Key, Node)], Error> {
        match &self.node.value {
            Value::Null => Ok(&[]),
            _ => self.map(),
        }
    }

    /// The sequence's items.
    pub(crate) fn seq(&self) -> Result<&'a [Node], Error> {
        match &self.node.value {
            Value::Seq(items) => Ok(items),
            _ => Err(self.expected("a sequence")),
        }
    }

    /// A scalar's text (numbers and booleans as written).
    pub(crate) fn str(&self) -> Result<String, Error> {
        match &self.node.value {
            Value::Str { text, .. } => Ok(text.clone()),
            _ => Err(self.expected("a string")),
        }
    }

    /// A scalar written as a string: a plain number or boolean is refused
    /// (compose's schema types `command` items and the like as strings).
    pub(crate) fn strict_str(&self) -> Result<String, Error> {
        if let Value::Str { text, plain: true } = &self.node.value
            && (text.parse::<f64>().is_ok()
                || matches!(
                    text.as_str(),
                    "true" | "false" | "True" | "False" | "TRUE" | "FALSE"
                ))
        {
            return Err(self.err(format!("must be a string, found {text}")));
        }
        self.str()
    }

    /// [`Field::strict_str`], or `None` for null.
    pub(crate) fn strict_opt_str(&self) -> Result<Option<String>, Error> {
        match &self.node.value {
            Value::Null => Ok(None),
            _ => self.strict_str().map(Some),
        }
    }

    /// A list of strings ([`Field::strict_str`] items).
    pub(crate) fn strict_str_list(&self) -> Result<Vec<String>, Error> {
        self.seq()?
            .iter()
            .enumerate()
            .map(|(i, item)| Field::new(item, &format!("{}[{i}]", self.path)).strict_str())
            .collect()
    }

    /// A scalar's text, or `None` for null.
    pub(crate) fn opt_str(&self) -> Result<Option<String>, Error> {
        match &self.node.value {
            Value::Null => Ok(None),
            _ => self.str().map(Some),
        }
    }

    /// A boolean: `true`/`false` in YAML 1.2's spellings (`yes`/`no` are strings there, and refused here).
    pub(crate) fn bool(&self) -> Result<bool, Error> {
        match self.str()?.as_str() {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" => Ok(false),
            other => Err(self.err(format!("expected a boolean, found {other:?}"))),
        }
    }

    /// An unsigned integer.
    pub(crate) fn u64(&self) -> Result<u64, Error> {
        let text = self.str()?;
        text.parse()
            .map_err(|_| self.err(format!("expected a non-negative integer, found {text:?}")))
    }

    /// A duration (`10s`, `1m30s`).
    pub(crate) fn duration(&self) -> Result<Duration, Error> {
        let text = self.str()?;
        Duration::parse(&text).ok_or_else(|| self.err(format!("invalid duration {text:?}")))
    }

    /// A child field `key` of this mapping.
    pub(crate) fn sub(&self, key: &Key) -> String {
        format!("{}.{}", self.path, key.name)
    }

    /// A string or a list of strings, as a list.
    pub(crate) fn str_list(&self) -> Result<Vec<String>, Error> {
        match &self.node.value {
            Value::Null => Ok(Vec::new()),
            Value::Str { text, .. } => Ok(vec![text.clone()]),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Field::new(item, &format!("{}[{i}]", self.path)).str())
                .collect(),
            Value::Map(_) => Err(self.expected("a string or a list of strings")),
        }
    }

    /// A `KEY: value` mapping or a `KEY=value` list (environment, labels, args).
    /// A list item without `=`, or a null value, is `None`.
    pub(crate) fn dict(&self) -> Result<BTreeMap<String, Option<String>>, Error> {
        let mut out = BTreeMap::new();
        match &self.node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (key, value) in entries {
                    let path = self.sub(key);
                    out.insert(key.name.clone(), Field::new(value, &path).opt_str()?);
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let text = Field::new(item, &format!("{}[{i}]", self.path)).str()?;
                    match text.split_once('=') {
                        Some((k, v)) => out.insert(k.to_owned(), Some(v.to_owned())),
                        None => out.insert(text, None),
                    };
                }
            }
            Value::Str { .. } => return Err(self.expected("a mapping or a list")),
        }
        Ok(out)
    }

    /// Like [`Field::dict`], a missing value read as the empty string (labels).
    pub(crate) fn labels(&self) -> Result<BTreeMap<String, String>, Error> {
        Ok(self
            .dict()?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }
}

/// The mapping's `x-` extensions as JSON, plain scalars typed as YAML 1.2's core schema types them.
pub(crate) fn extensions(field: &Field<'_>) -> BTreeMap<String, serde_json::Value> {
    let Value::Map(entries) = &field.node.value else {
        return BTreeMap::new();
    };
    entries
        .iter()
        .filter(|(k, _)| k.name.starts_with("x-"))
        .map(|(k, v)| (k.name.clone(), to_json(v)))
        .collect()
}

/// A node as JSON: plain `true`/`false`, integers and floats typed, the rest strings.
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Str { text, plain } => {
            if !plain {
                return J::String(text.clone());
            }
            match text.as_str() {
                "true" | "True" | "TRUE" => J::Bool(true),
                "false" | "False" | "FALSE" => J::Bool(false),
                _ => text
                    .parse::<i64>()
                    .map(J::from)
                    .ok()
                    .or_else(|| {
                        text.parse::<f64>()
                            .ok()
                            .filter(|f| {
                                f.is_finite()
                                    && text
                                        .chars()
                                        .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
                            })
                            .and_then(|f| serde_json::Number::from_f64(f).map(J::Number))
                    })
                    .unwrap_or_else(|| J::String(text.clone())),
            }
        }
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// Rejects keys outside `known`, keeping `x-` extensions; keys in `ignored`
/// are compose keys buildr does not model: they are kept out with a warning.
pub(crate) fn check_keys(
    field: &Field<'_>,
    known: &[&str],
    ignored: &[&str],
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    for (key, _) in field.map_or_null()? {
        if known.contains(&key.name.as_str()) || key.name.starts_with("x-") {
            continue;
        }
        if ignored.contains(&key.name.as_str()) {
            warnings.push(format!(
                "{}: {}: not supported by buildr yet, ignored",
                key.pos,
                field.sub(key)
            ));
            continue;
        }
        return Err(Error::invalid(
            &key.pos,
            &field.sub(key),
            format!("unknown key {:?}", key.name),
        ));
    }
    Ok(())
}

/// Parses a size (`512m`, `1g`, `100000`, `1.5gb`) into bytes.
pub(crate) fn bytes(field: &Field<'_>) -> Result<u64, Error> {
    let text = field.str()?;
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (num, scale) = match trimmed.char_indices().last() {
        Some((i, 'k')) => (&trimmed[..i], 1u64 << 10),
        Some((i, 'm')) => (&trimmed[..i], 1 << 20),
        Some((i, 'g')) => (&trimmed[..i], 1 << 30),
        Some((i, 't')) => (&trimmed[..i], 1 << 40),
        _ => (trimmed, 1),
    };
    let value: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| field.err(format!("invalid size {text:?}")))?;
    let total = value * scale as f64;
    if total >= u64::MAX as f64 {
        return Err(field.err(format!("size {text:?} is too large")));
    }
    Ok(total as u64)
}
