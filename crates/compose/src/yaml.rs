//! A compose file's YAML as a tree whose every node knows its file and line.
//!
//! Built from `saphyr-parser`'s events (a YAML 1.2 parser that reports spans).
//! Anchors and aliases are expanded (with a cap, so an alias bomb is an error,
//! not an exhausted machine), `<<` merge keys are applied, duplicate keys are
//! errors. Scalars stay text: what a value means is decided by the model, after
//! interpolation, as compose does.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::error::Error;

/// Where a node was written: a file (as the user named it) and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The file, as shown in messages.
    pub file: Arc<str>,
    /// The line, 1-based; 0 when the value was made by buildr.
    pub line: usize,
}

impl Pos {
    /// A position for a value buildr made (a default, a value from the CLI).
    pub(crate) fn synthetic(file: &Arc<str>) -> Pos {
        Pos {
            file: file.clone(),
            line: 0,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// A YAML node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A node's value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    /// A scalar; `plain` when it was written without quotes or block style.
    Str {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
    pub(crate) fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub(crate) fn str(text: impl Into<String>, pos: Pos) -> Node {
        Node::new(
            Value::Str {
                text: text.into(),
                plain: false,
            },
            pos,
        )
    }

    /// The mapping's entry under `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short word for the node's kind, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Str { .. } => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    /// How deep the tree goes (an alias must not nest past [`MAX_DEPTH`]).
    fn height(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::height).max().unwrap_or(0),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| v.height()).max().unwrap_or(0),
            _ => 1,
        }
    }

    /// How many nodes the tree holds (for the alias-expansion cap).
    fn weight(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::weight).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| v.weight()).sum::<usize>(),
            _ => 1,
        }
    }
}

/// The most nodes aliases may add to one file (an alias bomb stops here).
const ALIAS_BUDGET: usize = 1_000_000;

/// The deepest nesting accepted (the tree is walked recursively later).
const MAX_DEPTH: usize = 200;

/// Parses one YAML document; an empty file is `Null`.
pub(crate) fn parse(text: &str, file: &Arc<str>) -> Result<Node, Error> {
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        budget: ALIAS_BUDGET,
        done: None,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| Error::Yaml {
            file: file.to_string(),
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let pos = Pos {
            file: file.clone(),
            line: span.start.line(),
        };
        match event {
            Event::DocumentStart(_) if builder.done.is_some() => {
                return Err(builder.invalid(pos, "a compose file holds one YAML document"));
            }
            _ => builder.event(event, pos)?,
        }
    }
    Ok(builder
        .done
        .unwrap_or_else(|| Node::new(Value::Null, Pos::synthetic(file))))
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
        pos: Pos,
        anchor: usize,
    },
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    budget: usize,
    done: Option<Node>,
}

impl Builder {
    fn invalid(&self, pos: Pos, message: &str) -> Error {
        Error::Invalid {
            pos,
            key: String::new(),
            message: message.to_owned(),
        }
    }

    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), Error> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !tagged_str;
                let value = if plain && is_null(&text) {
                    Value::Null
                } else {
                    Value::Str {
                        text: text.into_owned(),
                        plain,
                    }
                };
                self.complete(Node::new(value, pos), anchor)
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id) else {
                    return Err(self.invalid(pos, "alias to an unknown anchor"));
                };
                if self.stack.len() + node.height() > MAX_DEPTH {
                    return Err(self.invalid(pos, "nesting too deep"));
                }
                let weight = node.weight();
                if weight > self.budget {
                    return Err(self.invalid(pos, "aliases expand to too many nodes"));
                }
                self.budget -= weight;
                let node = node.clone();
                self.complete(node, 0)
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                Err(self.invalid(pos, "nesting too deep"))
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    pos,
                    anchor,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { items, pos, anchor }) => {
                    self.complete(Node::new(Value::Seq(items), pos), anchor)
                }
                Some(Frame::Map {
                    entries,
                    pos,
                    anchor,
                    ..
                }) => {
                    let entries = apply_merge_keys(entries)?;
                    self.complete(Node::new(Value::Map(entries), pos), anchor)
                }
                None => Err(self.invalid(Pos::synthetic(&self.file), "unbalanced YAML")),
            },
            _ => Ok(()),
        }
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), Error> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.done = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let name = match node.value {
                        Value::Str { text, .. } => text,
                        Value::Null => "null".to_owned(),
                        _ => {
                            return Err(Error::Invalid {
                                pos: node.pos,
                                key: String::new(),
                                message: "a mapping key must be a scalar".to_owned(),
                            });
                        }
                    };
                    if name != "<<"
                        && let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name)
                    {
                        return Err(Error::Invalid {
                            pos: node.pos,
                            key: name.clone(),
                            message: format!(
                                "mapping key already defined at line {}",
                                first.pos.line
                            ),
                        });
                    }
                    *key = Some(Key {
                        name,
                        pos: node.pos,
                    });
                    Ok(())
                }
                Some(k) => {
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

/// YAML 1.2 core schema nulls.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Applies `<<: *anchor` (or a list of them): the merged mappings' entries that
/// the mapping does not set itself, earlier sources first.
fn apply_merge_keys(entries: Vec<(Key, Node)>) -> Result<Vec<(Key, Node)>, Error> {
    if !entries.iter().any(|(k, _)| k.name == "<<") {
        return Ok(entries);
    }
    let mut own = Vec::new();
    let mut sources = Vec::new();
    for (key, value) in entries {
        if key.name != "<<" {
            own.push((key, value));
            continue;
        }
        match value.value {
            Value::Map(map) => sources.push(map),
            Value::Seq(items) => {
                for item in items {
                    match item.value {
                        Value::Map(map) => sources.push(map),
                        _ => return Err(merge_error(item.pos)),
                    }
                }
            }
            _ => return Err(merge_error(value.pos)),
        }
    }
    for map in sources {
        for (key, value) in map {
            if !own.iter().any(|(k, _)| k.name == key.name) {
                own.push((key, value));
            }
        }
    }
    Ok(own)
}

fn merge_error(pos: Pos) -> Error {
    Error::Invalid {
        pos,
        key: "<<".to_owned(),
        message: "a merge key takes a mapping or a list of mappings".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<str> {
        Arc::from("compose.yaml")
    }

    #[test]
    fn nodes_know_their_lines() {
        let node = parse("services:\n  web:\n    image: nginx\n", &file()).unwrap();
        let image = node
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!(image.pos.line, 3);
        assert_eq!(
            image.value,
            Value::Str {
                text: "nginx".into(),
                plain: true
            }
        );
    }

    #[test]
    fn anchors_and_merge_keys_expand() {
        let text = "x-base: &base\n  image: a\n  tty: true\nservices:\n  s:\n    <<: *base\n    image: b\n";
        let node = parse(text, &file()).unwrap();
        let s = node.get("services").unwrap().get("s").unwrap();
        assert!(matches!(&s.get("image").unwrap().value, Value::Str { text, .. } if text == "b"));
        assert!(s.get("tty").is_some());
    }

    #[test]
    fn duplicate_keys_and_bad_yaml_name_the_line() {
        let err = parse("a: 1\na: 2\n", &file()).unwrap_err().to_string();
        assert!(err.starts_with("compose.yaml:2:"), "{err}");
        let err = parse("a: [1\n", &file()).unwrap_err().to_string();
        assert!(err.starts_with("compose.yaml:"), "{err}");
    }

    #[test]
    fn an_alias_bomb_is_an_error() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text, &file()).unwrap_err().to_string();
        assert!(err.contains("too many nodes"), "{err}");
    }
}
