//! [`ProgressSink`]: where progress events go, the one type for every
//! kind of progress buildr reports (a build's [`crate::Event`]s, a pull's
//! or push's layer events).

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::Sender;

/// A receiver of progress events of type `E`, called from any thread: a
/// channel (`Sender<E>` converts into one, and a dropped receiver is
/// ignored) or a callback ([`ProgressSink::new`]). Cheap to clone.
pub struct ProgressSink<E>(Arc<dyn Fn(E) + Send + Sync>);

impl<E> ProgressSink<E> {
    /// A sink that calls `f` with each event (from the emitting thread:
    /// keep it short).
    pub fn new(f: impl Fn(E) + Send + Sync + 'static) -> ProgressSink<E> {
        ProgressSink(Arc::new(f))
    }

    /// Hands one event over.
    pub fn emit(&self, event: E) {
        (self.0)(event);
    }
}

impl<E> Clone for ProgressSink<E> {
    fn clone(&self) -> Self {
        ProgressSink(Arc::clone(&self.0))
    }
}

impl<E> fmt::Debug for ProgressSink<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl<E: Send + 'static> From<Sender<E>> for ProgressSink<E> {
    fn from(tx: Sender<E>) -> ProgressSink<E> {
        ProgressSink::new(move |event| {
            let _ = tx.send(event);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_callbacks_receive_every_event() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = ProgressSink::from(tx);
        sink.clone().emit(1);
        sink.emit(2);
        drop(sink);
        assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let sink = ProgressSink::new(move |e: &str| log.lock().unwrap().push(e.to_owned()));
        sink.emit("a");
        assert_eq!(*seen.lock().unwrap(), ["a"]);
        // A dropped receiver is not an error.
        let (tx, rx) = std::sync::mpsc::channel::<u8>();
        drop(rx);
        ProgressSink::from(tx).emit(3);
    }
}
