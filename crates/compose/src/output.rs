//! `compose config` output: the resolved project as JSON or YAML.

use serde_json::Value;

use crate::model::Project;

/// The project as compose's `config --format json` prints it: keys sorted,
/// `$` written `$$` so the output reads back to the same values.
pub fn to_json(project: &Project) -> String {
    let value = escaped(project);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising a JSON value into memory cannot fail.
    if serde::Serialize::serialize(&value, &mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The project as block-style YAML (same values as [`to_json`]).
pub fn to_yaml(project: &Project) -> String {
    let value = escaped(project);
    let mut out = String::new();
    emit(&value, 0, &mut out);
    out
}

/// The project as a JSON value with every `$` in a string doubled.
fn escaped(project: &Project) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(project).unwrap_or(Value::Null);
    walk(&mut value);
    value
}

fn emit(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.push_str(&pad);
                out.push_str(&scalar_text(key));
                out.push(':');
                nested(v, indent, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                out.push_str(&pad);
                out.push('-');
                match v {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the others under it.
                        let mut first = String::new();
                        emit(v, indent + 2, &mut first);
                        out.push(' ');
                        out.push_str(first.trim_start());
                    }
                    _ => nested(v, indent, out),
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&leaf(other));
            out.push('\n');
        }
    }
}

/// What follows `key:` or `-`: a leaf on the same line, a collection below.
fn nested(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&leaf(v));
            out.push('\n');
        }
    }
}

fn leaf(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_text(s),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
    }
}

/// A string as a plain scalar when it reads back as the same string, else double-quoted.
fn scalar_text(s: &str) -> String {
    let first_ok = match s.chars().next() {
        None => false,
        Some('-') => !(s == "-" || s.starts_with("- ") || s.starts_with("---")),
        Some(c) => !"?:,[]{}#&*!|>'\"%@` \t".contains(c),
    };
    let plain_ok = first_ok
        && !looks_like_number(s)
        && !s.ends_with([' ', ':', '\t'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(|c| c.is_control())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain_ok {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// Whether a YAML reader (1.1 or 1.2) could take the text for a number.
fn looks_like_number(s: &str) -> bool {
    let body = s.trim_start_matches(['-', '+']);
    body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && (s.parse::<f64>().is_ok()
            || body.starts_with("0x")
            || body.starts_with("0o")
            || body.starts_with("0b")
            || body
                .chars()
                .all(|c| c.is_ascii_digit() || "_:.eE+-".contains(c)))
        || matches!(body.to_ascii_lowercase().as_str(), ".inf" | ".nan")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::yaml::{self, Node};

    /// A parsed YAML tree as JSON, every scalar as a string.
    fn as_json(node: &Node) -> Value {
        match &node.value {
            yaml::Value::Null => Value::Null,
            yaml::Value::Str { text, .. } => Value::String(text.clone()),
            yaml::Value::Seq(items) => Value::Array(items.iter().map(as_json).collect()),
            yaml::Value::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), as_json(v)))
                    .collect(),
            ),
        }
    }

    fn stringify(value: Value) -> Value {
        match value {
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Array(items) => Value::Array(items.into_iter().map(stringify).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, stringify(v))).collect())
            }
            other => other,
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_reads_back_as_itself(text in "\\PC{0,12}|[-:#0-9. a-z]{0,8}") {
            let doc = format!("k: {}\n", scalar_text(&text));
            let node = yaml::parse(&doc, &Arc::from("t")).unwrap();
            match &node.get("k").unwrap().value {
                yaml::Value::Str { text: got, .. } => proptest::prop_assert_eq!(got, &text),
                other => proptest::prop_assert!(false, "{doc:?} read back as {other:?}"),
            }
        }
    }

    #[test]
    fn yaml_output_reads_back_as_the_json_output() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/compose/kitchen");
        let options = crate::Options {
            working_dir: dir,
            ..crate::Options::default()
        };
        let project = crate::load(&options).unwrap();
        let json: Value = serde_json::from_str(&to_json(&project)).unwrap();
        assert!(to_json(&project).contains("$$HOME"), "$ is escaped");
        let text = to_yaml(&project);
        let reread = yaml::parse(&text, &Arc::from("out.yaml")).unwrap();
        assert_eq!(as_json(&reread), stringify(json), "{text}");
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        assert_eq!(scalar_text("nginx"), "nginx");
        assert_eq!(scalar_text("8080"), "\"8080\"");
        assert_eq!(scalar_text("2s"), "2s");
        assert_eq!(scalar_text("-c"), "-c");
        assert_eq!(scalar_text("- x"), "\"- x\"");
        assert_eq!(scalar_text("1:30"), "\"1:30\"");
        assert_eq!(scalar_text("1.5e3"), "\"1.5e3\"");
        assert_eq!(scalar_text(".inf"), "\".inf\"");
        assert_eq!(scalar_text("true"), "\"true\"");
        assert_eq!(scalar_text("a: b"), "\"a: b\"");
        assert_eq!(scalar_text(""), "\"\"");
        assert_eq!(scalar_text("line\nbreak"), "\"line\\nbreak\"");
    }
}
