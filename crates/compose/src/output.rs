//! `compose config` output: the resolved project as JSON or YAML.

use serde_json::Value;

use crate::model::Project;

/// The project as compose's `config --format json` prints it (4-space indent).
pub fn to_json(project: &Project) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising plain data into memory cannot fail; fall back to compact if it ever did.
    if serde::Serialize::serialize(project, &mut ser).is_err() {
        return serde_json::to_string(project).unwrap_or_default();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The project as block-style YAML.
pub fn to_yaml(project: &Project) -> String {
    let value = serde_json::to_value(project).unwrap_or(Value::Null);
    let mut out = String::new();
    emit(&value, 0, &mut out);
    out
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
    let plain_ok = !s.is_empty()
        && !s.starts_with(|c: char| {
            "-?:,[]{}#&*!|>'\"%@` ".contains(c) || c.is_ascii_digit() || c == '.'
        })
        && !s.ends_with([' ', ':'])
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

#[cfg(test)]
mod tests {
    use super::scalar_text;

    #[test]
    fn ambiguous_strings_are_quoted() {
        assert_eq!(scalar_text("nginx"), "nginx");
        assert_eq!(scalar_text("8080"), "\"8080\"");
        assert_eq!(scalar_text("true"), "\"true\"");
        assert_eq!(scalar_text("a: b"), "\"a: b\"");
        assert_eq!(scalar_text(""), "\"\"");
        assert_eq!(scalar_text("line\nbreak"), "\"line\\nbreak\"");
    }
}
