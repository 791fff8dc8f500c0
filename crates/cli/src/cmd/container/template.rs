//! The subset of Go templates docker users pass to `ps --format`:
//! `{{.Field}}`, `{{.Label "key"}}`, `{{json .}}`, `{{json .Field}}`,
//! literal text with `\t` and `\n` escapes, and a `table` prefix that adds
//! a header row and aligns columns as docker's tabwriter does. An unknown
//! placeholder is an error naming it and the fields there are. Also the
//! `--filter` matcher.

use std::collections::BTreeMap;

use anyhow::bail;

/// One container as `ps --format` sees it: docker's field names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub fields: BTreeMap<&'static str, String>,
    pub labels: BTreeMap<String, String>,
}

/// Docker's `ps` fields, in `{{json .}}` order, with their table headers.
pub const FIELDS: [(&str, &str); 14] = [
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Labels", "LABELS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Mounts", "MOUNTS"),
    ("Names", "NAMES"),
    ("Networks", "NETWORKS"),
    ("Ports", "PORTS"),
    ("RunningFor", "CREATED"),
    ("Size", "SIZE"),
    ("State", "STATE"),
    ("Status", "STATUS"),
];

/// Docker's default `ps` table.
pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Docker's default `ps --size` table: the default one and SIZE.
pub const SIZE_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(&'static str),
    Label(String),
    Json(Option<&'static str>),
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    table: bool,
    pieces: Vec<Piece>,
}

fn field(name: &str, placeholder: &str) -> anyhow::Result<&'static str> {
    match FIELDS.iter().find(|(f, _)| *f == name) {
        Some((f, _)) => Ok(f),
        None => {
            let known: Vec<String> = FIELDS.iter().map(|(f, _)| format!(".{f}")).collect();
            bail!(
                "template: unknown placeholder {placeholder:?}: can't evaluate field {name}; \
                 known fields are {}, .Label \"KEY\" and json .",
                known.join(" ")
            )
        }
    }
}

impl Template {
    /// Parses a `--format` value.
    pub fn parse(format: &str) -> anyhow::Result<Template> {
        let (table, body) = match format.strip_prefix("table") {
            Some("") => (true, &DEFAULT_TABLE["table ".len()..]),
            Some(rest) if rest.starts_with([' ', '\t']) => (true, &rest[1..]),
            _ => (false, format),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                bail!("template: unclosed action in {format:?}: missing }}}}");
            };
            let action = &after[..close];
            pieces.push(Self::action(action.trim().trim_matches('-').trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { table, pieces })
    }

    fn action(action: &str) -> anyhow::Result<Piece> {
        let placeholder = format!("{{{{{action}}}}}");
        let words: Vec<&str> = action.split_whitespace().collect();
        match words.as_slice() {
            ["json", "."] => Ok(Piece::Json(None)),
            ["json", name] if name.starts_with('.') => {
                Ok(Piece::Json(Some(field(&name[1..], &placeholder)?)))
            }
            [".Label", key] => Ok(Piece::Label(key.trim_matches('"').to_owned())),
            [name] if name.starts_with('.') && name.len() > 1 => {
                Ok(Piece::Field(field(&name[1..], &placeholder)?))
            }
            _ => bail!(
                "template: unsupported action {placeholder:?}: use {{{{.Field}}}}, \
                 {{{{.Label \"KEY\"}}}} or {{{{json .}}}}"
            ),
        }
    }

    /// Whether it starts with `table`.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The header row of a table: each placeholder's header, text kept.
    pub fn header(&self) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(name) | Piece::Json(Some(name)) => {
                    let header = FIELDS.iter().find(|(f, _)| f == name).map_or("", |f| f.1);
                    out.push_str(header);
                }
                Piece::Label(key) => out.push_str(&key.to_uppercase()),
                Piece::Json(None) => {}
            }
        }
        out
    }

    /// One row.
    pub fn render(&self, row: &Row) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(name) => out.push_str(row.fields.get(name).map_or("", |v| v)),
                Piece::Label(key) => out.push_str(row.labels.get(key).map_or("", |v| v)),
                Piece::Json(Some(name)) => {
                    let value = row.fields.get(name).cloned().unwrap_or_default();
                    out.push_str(&serde_json::Value::String(value).to_string());
                }
                Piece::Json(None) => {
                    let object: serde_json::Map<String, serde_json::Value> = FIELDS
                        .iter()
                        .map(|(name, _)| {
                            let value = row.fields.get(name).cloned().unwrap_or_default();
                            ((*name).to_owned(), serde_json::Value::String(value))
                        })
                        .collect();
                    out.push_str(&serde_json::Value::Object(object).to_string());
                }
            }
        }
        out
    }
}

/// `ps --filter` values: the same key ORs, different keys AND.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    by_key: BTreeMap<String, Vec<String>>,
}

const FILTER_KEYS: [&str; 4] = ["status", "name", "label", "id"];

impl Filters {
    pub fn parse(values: &[String]) -> anyhow::Result<Filters> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for value in values {
            let Some((key, wanted)) = value.split_once('=') else {
                bail!("bad format of filter {value:?} (expected name=value)");
            };
            if !FILTER_KEYS.contains(&key) {
                bail!(
                    "invalid filter {key:?}: supported are {}",
                    FILTER_KEYS.join(", ")
                );
            }
            let statuses = ["created", "restarting", "running", "paused", "exited"];
            if key == "status" && !statuses.contains(&wanted) {
                bail!(
                    "invalid filter 'status={wanted}': created, restarting, running, paused or exited"
                );
            }
            by_key
                .entry(key.to_owned())
                .or_default()
                .push(wanted.to_owned());
        }
        Ok(Filters { by_key })
    }

    /// A status filter lists stopped containers without `-a`, as docker.
    pub fn has_status(&self) -> bool {
        self.by_key.contains_key("status")
    }

    /// Whether a container with this full id, name, state and labels passes.
    pub fn matches(
        &self,
        id: &str,
        name: &str,
        state: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.by_key.iter().all(|(key, wanted)| {
            wanted.iter().any(|w| match key.as_str() {
                "status" => state == w,
                "name" => name.contains(w.trim_start_matches('/')),
                "id" => id.starts_with(w.as_str()),
                "label" => match w.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
                    None => labels.contains_key(w.as_str()),
                },
                _ => false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        let mut fields = BTreeMap::new();
        fields.insert("ID", "0123456789ab".to_owned());
        fields.insert("Names", "web".to_owned());
        fields.insert("Status", "Up 3 seconds (healthy)".to_owned());
        fields.insert("Labels", "a=1,b=2".to_owned());
        let labels = [("a", "1"), ("b", "2")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        Row { fields, labels }
    }

    #[test]
    fn placeholders_render_and_tables_get_headers() {
        let t = Template::parse("{{.ID}} {{ .Names }}: {{.Status}}").unwrap();
        assert!(!t.is_table());
        assert_eq!(t.render(&row()), "0123456789ab web: Up 3 seconds (healthy)");
        let t = Template::parse("table {{.ID}}\\t{{.Names}}\\t{{.Label \"b\"}}").unwrap();
        assert!(t.is_table());
        assert_eq!(t.header(), "CONTAINER ID\tNAMES\tB");
        assert_eq!(t.render(&row()), "0123456789ab\tweb\t2");
        let t = Template::parse("table").unwrap();
        assert_eq!(
            t.header(),
            "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES"
        );
    }

    #[test]
    fn json_renders_every_field() {
        let t = Template::parse("{{json .}}").unwrap();
        let doc: serde_json::Value = serde_json::from_str(&t.render(&row())).unwrap();
        assert_eq!(doc["ID"], "0123456789ab");
        assert_eq!(doc["Labels"], "a=1,b=2");
        assert_eq!(doc["Ports"], "");
        assert_eq!(doc.as_object().unwrap().len(), FIELDS.len());
        let t = Template::parse("{{json .Names}}").unwrap();
        assert_eq!(t.render(&row()), "\"web\"");
    }

    #[test]
    fn unknown_placeholders_are_clear_errors() {
        let err = Template::parse("{{.Nope}}").unwrap_err().to_string();
        assert!(err.contains("{{.Nope}}") && err.contains(".Names"), "{err}");
        let err = Template::parse("{{.ID").unwrap_err().to_string();
        assert!(err.contains("unclosed"), "{err}");
        let err = Template::parse("{{range .}}x{{end}}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported"), "{err}");
    }

    #[test]
    fn filters_and_across_keys_and_or_within_one() {
        let labels: BTreeMap<String, String> = [("tier".to_owned(), "web".to_owned())].into();
        let f = Filters::parse(&["status=running".into(), "status=exited".into()]).unwrap();
        assert!(f.has_status());
        assert!(f.matches("abc", "n", "running", &labels));
        assert!(f.matches("abc", "n", "exited", &labels));
        assert!(!f.matches("abc", "n", "created", &labels));
        let f = Filters::parse(&["name=we".into(), "label=tier=web".into()]).unwrap();
        assert!(f.matches("abc", "web1", "running", &labels));
        assert!(!f.matches("abc", "db", "running", &labels));
        let f = Filters::parse(&["label=tier".into(), "id=ab".into()]).unwrap();
        assert!(f.matches("abc", "x", "exited", &labels));
        assert!(!f.matches("bcd", "x", "exited", &labels));
        assert!(Filters::parse(&["colour=red".into()]).is_err());
        assert!(Filters::parse(&["status=sleeping".into()]).is_err());
        assert!(Filters::parse(&["status".into()]).is_err());
    }
}
