//! The order services start in: every service after the services it depends on.
//! A dependency cycle is refused while loading, as compose refuses it.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Project;

impl Project {
    /// Service names, each after the enabled services it depends on; among
    /// services free to start, by name. (Loading refused cycles.)
    pub fn start_order(&self) -> Vec<&str> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::with_capacity(self.services.len());
        while order.len() < self.services.len() {
            let ready: Vec<&str> = self
                .services
                .iter()
                .filter(|(name, _)| !done.contains(name.as_str()))
                .filter(|(_, s)| {
                    s.depends_on
                        .keys()
                        .all(|d| done.contains(d.as_str()) || !self.services.contains_key(d))
                })
                .map(|(name, _)| name.as_str())
                .collect();
            if ready.is_empty() {
                // A cycle: not reachable for a loaded project; keep the rest in name order.
                order.extend(
                    self.services
                        .keys()
                        .map(String::as_str)
                        .filter(|n| !done.contains(n)),
                );
                break;
            }
            done.extend(ready.iter().copied());
            order.extend(ready);
        }
        order
    }
}

/// A dependency cycle among `services`' `depends_on` (name -> dependencies), as
/// the path `a -> b -> a`, the first one found in name order.
pub(crate) fn find_cycle(graph: &BTreeMap<&str, Vec<&str>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for &start in graph.keys() {
        if marks.contains_key(start) {
            continue;
        }
        // Depth first with an explicit stack of (node, next edge index).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Open);
        while let Some((node, edge)) = stack.last_mut() {
            let deps = graph.get(node).map_or(&[][..], Vec::as_slice);
            let Some(&next) = deps.get(*edge) else {
                marks.insert(node, Mark::Done);
                stack.pop();
                continue;
            };
            *edge += 1;
            if !graph.contains_key(next) {
                continue;
            }
            match marks.get(next) {
                Some(Mark::Open) => {
                    let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut path: Vec<String> =
                        stack[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                    path.push(next.to_owned());
                    return Some(path);
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(next, Mark::Open);
                    stack.push((next, 0));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_with_their_path() {
        let graph = BTreeMap::from([
            ("a", vec!["b"]),
            ("b", vec!["c"]),
            ("c", vec!["a"]),
            ("d", vec![]),
        ]);
        assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
        let graph = BTreeMap::from([("a", vec!["a"])]);
        assert_eq!(find_cycle(&graph).unwrap(), ["a", "a"]);
        let graph = BTreeMap::from([("a", vec!["b", "c"]), ("b", vec!["c"]), ("c", vec![])]);
        assert_eq!(find_cycle(&graph), None);
    }
}
