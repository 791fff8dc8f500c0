//! `events --filter`: docker's keys, values of one key ORed, keys ANDed.
//!
//! - `type=container|image`
//! - `event=ACTION` (`start`, `die`, ...)
//! - `container=NAME|ID`: the container's name or id (or an id prefix)
//! - `image=NAME|ID`: a container's image, or an image event's id or name
//! - `label=KEY[=VALUE]`: a container's labels (among the attributes)

use std::collections::BTreeMap;

use super::{Event, EventType};
use crate::error::{Error, Result};

/// Parsed `events --filter` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilters {
    filters: BTreeMap<String, Vec<String>>,
}

/// The keys `events --filter` takes.
const KEYS: [&str; 5] = ["type", "event", "container", "image", "label"];

impl EventFilters {
    /// Parses `KEY=VALUE` values; an unknown key or a bad type names the
    /// filter.
    pub fn parse<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Result<EventFilters> {
        let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for value in values {
            let value = value.as_ref();
            let bad = |reason: &str| Error::Filter {
                filter: value.to_owned(),
                reason: reason.to_owned(),
            };
            let Some((key, arg)) = value.split_once('=') else {
                return Err(bad("expected KEY=VALUE"));
            };
            if !KEYS.contains(&key) {
                return Err(bad(
                    "the filters are type, event, container, image and label",
                ));
            }
            if arg.is_empty() {
                return Err(bad("the value is empty"));
            }
            if key == "type" && !["container", "image"].contains(&arg) {
                return Err(bad("buildr's events are of type container or image"));
            }
            filters
                .entry(key.to_owned())
                .or_default()
                .push(arg.to_owned());
        }
        Ok(EventFilters { filters })
    }

    /// Whether `event` passes every key.
    pub fn matches(&self, event: &Event) -> bool {
        let attr = |key: &str| event.attributes.get(key).map(String::as_str);
        self.filters.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "type" => event.kind.as_str() == v,
                "event" => event.action == *v,
                "container" => {
                    event.kind == EventType::Container
                        && (event.actor.starts_with(v.as_str()) || attr("name") == Some(v))
                }
                "image" => match event.kind {
                    EventType::Container => attr("image") == Some(v),
                    EventType::Image => {
                        event.actor == *v
                            || event
                                .actor
                                .strip_prefix("sha256:")
                                .is_some_and(|h| h.starts_with(v.as_str()))
                            || attr("name") == Some(v)
                    }
                },
                "label" => match v.split_once('=') {
                    Some((k, val)) => attr(k) == Some(val),
                    None => attr(v).is_some(),
                },
                _ => false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(action: &str) -> Event {
        Event::now(EventType::Container, action, "abcdef0123")
            .with("name", "web")
            .with("image", "busybox")
            .with("tier", "front")
    }

    #[test]
    fn keys_are_anded_and_values_ored() {
        let start = container("start");
        let tag = Event::now(EventType::Image, "tag", "sha256:feed").with("name", "app:1");
        let pass =
            |filters: &[&str], event: &Event| EventFilters::parse(filters).unwrap().matches(event);
        assert!(pass(&[], &start));
        assert!(pass(&["type=container"], &start));
        assert!(!pass(&["type=image"], &start));
        assert!(pass(&["event=stop", "event=start"], &start));
        assert!(!pass(&["event=start", "type=image"], &start));
        assert!(pass(&["container=web"], &start));
        assert!(pass(&["container=abcd"], &start));
        assert!(!pass(&["container=db"], &start));
        assert!(!pass(&["container=web"], &tag));
        assert!(pass(&["image=busybox"], &start));
        assert!(pass(&["image=app:1"], &tag));
        assert!(pass(&["image=fee"], &tag));
        assert!(pass(&["label=tier"], &start));
        assert!(pass(&["label=tier=front"], &start));
        assert!(!pass(&["label=tier=back"], &start));
    }

    #[test]
    fn bad_filters_are_named() {
        for bad in ["type=network", "color=red", "event=", "novalue"] {
            let err = EventFilters::parse([bad]).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
