//! buildr's own events, as `docker events` shows the daemon's: container
//! create, start, die, kill, stop, restart, rename, destroy, commit; image
//! pull, import, load, tag, untag, delete. The engine's functions record each state change as
//! it happens (one `emit` call each), so library users and the CLI see
//! the same stream; there is no daemon, so the stream is a log in the
//! store (`log.rs`): JSON lines, appended atomically, rotated at a bound.

mod filter;
mod log;
mod time;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use filter::EventFilters;
pub use log::{EventLog, FollowOptions, MAX_BYTES};
pub use time::parse_timestamp;

/// What an event is about, as docker's `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Container,
    Image,
}

impl EventType {
    /// docker's spelling: `container`, `image`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
        }
    }
}

/// One event: what happened to which object, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `create`, `start`, `die`, `tag`, ...
    pub action: String,
    /// The container's full id, the image's id (`sha256:...`), or for a
    /// pull the reference pulled.
    pub actor: String,
    /// `name`, `image`, `exitCode`, `signal`, the container's labels...
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    /// An event that happens now.
    pub fn now(kind: EventType, action: &str, actor: &str) -> Event {
        Event {
            kind,
            action: action.to_owned(),
            actor: actor.to_owned(),
            attributes: BTreeMap::new(),
            time_nano: now_nanos(),
        }
    }

    /// With one more attribute.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Event {
        self.attributes.insert(key.to_owned(), value.into());
        self
    }

    /// docker's text line: `TIME TYPE ACTION ACTOR (k=v, k=v)`.
    pub fn text(&self) -> String {
        let attributes: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut line = format!(
            "{} {} {} {}",
            crate::container::format_time(i128::from(self.time_nano)),
            self.kind.as_str(),
            self.action,
            self.actor
        );
        if !attributes.is_empty() {
            line.push_str(&format!(" ({})", attributes.join(", ")));
        }
        line
    }

    /// docker's `events.Message` document (`--format '{{json .}}'`).
    pub fn docker_json(&self) -> serde_json::Value {
        let from = match self.kind {
            EventType::Container => self.attributes.get("image").cloned(),
            EventType::Image => None,
        };
        let mut doc = serde_json::json!({
            "status": self.action,
            "id": self.actor,
            "Type": self.kind.as_str(),
            "Action": self.action,
            "Actor": {"ID": self.actor, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano.div_euclid(1_000_000_000),
            "timeNano": self.time_nano,
        });
        if let Some(from) = from {
            doc["from"] = serde_json::Value::String(from);
        }
        doc
    }
}

/// Records `event` in the store at `root`. Best effort: a state change
/// has happened whether or not its event could be written, so a failure
/// is a warning, never the caller's error.
pub(crate) fn emit(root: &Path, event: Event) {
    if let Err(err) = EventLog::open(root).append(&event) {
        tracing::warn!(
            "cannot record the {} {} event of {}: {err}",
            event.kind.as_str(),
            event.action,
            event.actor
        );
    }
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// An image's event: `actor` is its id (a pull's: the reference pulled),
/// `name` (normalized) its attribute as docker shows names.
pub(crate) fn image_event(action: &str, actor: &str, name: &str) -> Event {
    Event::now(
        EventType::Image,
        action,
        &crate::image::familiar_name(actor),
    )
    .with("name", crate::image::familiar_name(name))
}

/// A container's event, with docker's attributes: its image, its name and
/// its labels.
pub(crate) fn container_event(config: &crate::container::ContainerConfig, action: &str) -> Event {
    let mut event = Event::now(EventType::Container, action, &config.id);
    for (key, value) in &config.labels {
        event.attributes.insert(key.clone(), value.clone());
    }
    event
        .with("image", config.image.clone())
        .with("name", config.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_are_dockers() {
        let mut event = Event::now(EventType::Container, "die", "0123abcd")
            .with("name", "web")
            .with("exitCode", "3")
            .with("image", "busybox");
        event.time_nano = 1_700_000_000_123_456_789;
        assert_eq!(
            event.text(),
            "2023-11-14T22:13:20.123456789Z container die 0123abcd (exitCode=3, image=busybox, name=web)"
        );
        let doc = event.docker_json();
        assert_eq!(doc["Type"], "container");
        assert_eq!(doc["Action"], "die");
        assert_eq!(doc["status"], "die");
        assert_eq!(doc["from"], "busybox");
        assert_eq!(doc["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(doc["time"], 1_700_000_000);
        assert_eq!(doc["timeNano"].as_i64(), Some(1_700_000_000_123_456_789));
        let bare = Event::now(EventType::Image, "delete", "sha256:ab");
        assert!(
            bare.text().ends_with(" image delete sha256:ab"),
            "{}",
            bare.text()
        );
    }
}
