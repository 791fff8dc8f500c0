//! Merging compose files (`-f a -f b`) and `extends`, as compose merges them:
//! mappings key by key, the later file winning on scalars; `environment`,
//! `labels`, `build.args`, `depends_on`, `networks` merged by key whichever
//! syntax each file used; `volumes` by target; `secrets`/`configs` by source;
//! `ports` and other sequences appended without duplicates; `command`,
//! `entrypoint`, `healthcheck.test` and `profiles` replaced.

use crate::yaml::{Key, Node, Value};

/// Merges a whole file over another.
pub(crate) fn merge_files(base: Node, over: Node) -> Node {
    merge_map(base, over, &|key, base, over| match key {
        "services" => merge_map(base, over, &|_, b, o| merge_service(b, o)),
        _ => merge_generic(key, base, over),
    })
}

/// Merges one service definition over another (also `extends`: the extended one is `base`).
pub(crate) fn merge_service(base: Node, over: Node) -> Node {
    merge_map(base, over, &|key, base, over| match key {
        "environment" | "labels" | "extra_hosts" | "annotations" | "sysctls" => {
            merge_generic(key, to_dict(base), to_dict(over))
        }
        "depends_on" | "networks" => merge_generic(key, to_keyed(base), to_keyed(over)),
        "build" => merge_map(
            to_build_map(base),
            to_build_map(over),
            &|key, b, o| match key {
                "args" | "labels" => merge_generic(key, to_dict(b), to_dict(o)),
                _ => merge_generic(key, b, o),
            },
        ),
        "volumes" => merge_seq_by(base, over, volume_target),
        "secrets" | "configs" => merge_seq_by(base, over, ref_source),
        _ => merge_generic(key, base, over),
    })
}

type Rule<'a> = &'a dyn Fn(&str, Node, Node) -> Node;

/// Merges two mappings key by key with `rule`; anything else: `over` wins.
fn merge_map(base: Node, over: Node, rule: Rule<'_>) -> Node {
    match (base.value, over.value) {
        (Value::Map(mut entries), Value::Map(over_entries)) => {
            for (key, value) in over_entries {
                match entries.iter().position(|(k, _)| k.name == key.name) {
                    Some(i) => {
                        let (old_key, old) = entries.remove(i);
                        let merged = rule(&key.name, old, value);
                        entries.insert(i, (old_key, merged));
                    }
                    None => entries.push((key, value)),
                }
            }
            Node::new(Value::Map(entries), base.pos)
        }
        (_, value) => Node::new(value, over.pos),
    }
}

fn merge_generic(key: &str, base: Node, over: Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(_), Value::Map(_)) => merge_map(base, over, &merge_generic),
        (Value::Seq(_), Value::Seq(_))
            if !matches!(key, "command" | "entrypoint" | "test" | "profiles") =>
        {
            merge_seq_by(base, over, |_| None)
        }
        _ => over,
    }
}

/// Appends `over`'s items to `base`'s; an item whose `key` matches one of
/// `base`'s replaces it in place, an item equal to one already there is dropped.
fn merge_seq_by(base: Node, over: Node, key: fn(&Node) -> Option<String>) -> Node {
    let (mut items, over_items) = match (base.value, over.value) {
        (Value::Seq(items), Value::Seq(over_items)) => (items, over_items),
        (_, value) => return Node::new(value, over.pos),
    };
    for item in over_items {
        let k = key(&item);
        if let Some(k) = &k
            && let Some(slot) = items.iter_mut().find(|i| key(i).as_ref() == Some(k))
        {
            *slot = item;
            continue;
        }
        if !items.iter().any(|i| same(i, &item)) {
            items.push(item);
        }
    }
    Node::new(Value::Seq(items), base.pos)
}

/// Structural equality, positions ignored.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Str { text: x, .. }, Value::Str { text: y, .. }) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka.name == kb.name && same(va, vb))
        }
        _ => false,
    }
}

fn volume_target(node: &Node) -> Option<String> {
    crate::volumes::target_of(&crate::fields::Field::new(node, ""))
}

fn ref_source(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str { text, .. } => Some(text.clone()),
        Value::Map(_) => match &node.get("source")?.value {
            Value::Str { text, .. } => Some(text.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A `KEY=value` list as a mapping (`KEY` alone maps to null); a mapping as is.
pub(crate) fn to_dict(node: Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let entries = items
        .into_iter()
        .map(|item| {
            let pos = item.pos.clone();
            match item.value {
                Value::Str { text, .. } => match text.split_once('=') {
                    Some((k, v)) => (key(k, &pos), Node::str(v, pos)),
                    None => (key(&text, &pos), Node::new(Value::Null, pos)),
                },
                other => (key("", &pos), Node::new(other, pos)),
            }
        })
        .collect();
    Node::new(Value::Map(entries), node.pos)
}

/// A list of names as a mapping of names to null (`depends_on`, `networks`).
fn to_keyed(node: Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let entries = items
        .into_iter()
        .map(|item| match item.value {
            Value::Str { text, .. } => (key(&text, &item.pos), Node::new(Value::Null, item.pos)),
            other => (key("", &item.pos), Node::new(other, item.pos)),
        })
        .collect();
    Node::new(Value::Map(entries), node.pos)
}

/// `build: ./dir` as `build: {context: ./dir}`.
fn to_build_map(node: Node) -> Node {
    match node.value {
        Value::Str { .. } => {
            let pos = node.pos.clone();
            Node::new(Value::Map(vec![(key("context", &pos), node)]), pos)
        }
        _ => node,
    }
}

fn key(name: &str, pos: &crate::yaml::Pos) -> Key {
    Key {
        name: name.to_owned(),
        pos: pos.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::yaml::parse;

    fn merged(a: &str, b: &str) -> Node {
        let f: Arc<str> = Arc::from("f");
        merge_files(parse(a, &f).unwrap(), parse(b, &f).unwrap())
    }

    fn texts(node: &Node) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(|i| match &i.value {
                    Value::Str { text, .. } => text.clone(),
                    _ => "?".into(),
                })
                .collect(),
            _ => panic!("not a sequence"),
        }
    }

    #[test]
    fn services_merge_by_compose_rules() {
        let a = "services:\n  s:\n    image: a\n    command: [x, y]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['d:/data', './x:/x']\n    depends_on: [db]\n";
        let b = "services:\n  s:\n    image: b\n    command: [z]\n    environment: {B: '3', C: '4'}\n    ports: ['80:80', '443:443']\n    volumes: ['e:/data']\n    depends_on: {cache: {condition: service_healthy}}\n";
        let m = merged(a, b);
        let s = m.get("services").unwrap().get("s").unwrap();
        assert!(matches!(&s.get("image").unwrap().value, Value::Str { text, .. } if text == "b"));
        assert_eq!(texts(s.get("command").unwrap()), ["z"]);
        assert_eq!(texts(s.get("ports").unwrap()), ["80:80", "443:443"]);
        assert_eq!(texts(s.get("volumes").unwrap()), ["e:/data", "./x:/x"]);
        let env = s.get("environment").unwrap();
        for (k, v) in [("A", "1"), ("B", "3"), ("C", "4")] {
            assert!(
                matches!(&env.get(k).unwrap().value, Value::Str { text, .. } if text == v),
                "{k}"
            );
        }
        let deps = s.get("depends_on").unwrap();
        assert!(deps.get("db").is_some() && deps.get("cache").is_some());
    }
}
