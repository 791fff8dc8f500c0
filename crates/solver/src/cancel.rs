//! Cooperative cancellation: a flag, a condition variable to wait on, and kill
//! callbacks that run exactly once when the flag is raised.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

type Callback = Box<dyn FnOnce() + Send>;

/// A cloneable cancellation flag. The solver makes one per solve; a caller
/// can pass its own to [`Solver::cancel_token`](crate::Solver::cancel_token)
/// to cancel a solve from outside (e.g. on Ctrl-C).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Mirrors `cancelled` for `wait_timeout`.
    waiters: Mutex<bool>,
    wake: Condvar,
    callbacks: Mutex<Callbacks>,
}

#[derive(Default)]
struct Callbacks {
    next_id: u64,
    pending: BTreeMap<u64, Callback>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking callback must not wedge cancellation for everyone else.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CancelToken {
    /// A fresh, not cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag, wakes waiters and runs every registered callback once.
    /// Idempotent.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        // Callbacks are taken before waiters wake, so an op that waits for
        // cancellation cannot unregister its kill callback in between.
        let callbacks = std::mem::take(&mut lock(&self.inner.callbacks).pending);
        *lock(&self.inner.waiters) = true;
        self.inner.wake.notify_all();
        for (_, callback) in callbacks {
            callback();
        }
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Blocks up to `timeout` for cancellation; true if cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut cancelled = lock(&self.inner.waiters);
        while !*cancelled {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            cancelled = self
                .inner
                .wake
                .wait_timeout(cancelled, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Runs `callback` once on cancellation, or right now if already
    /// cancelled. Dropping the registration unregisters the callback.
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) -> CancelRegistration {
        let mut callbacks = lock(&self.inner.callbacks);
        // Checked under the callbacks lock: `cancel` raises the flag before it
        // takes this lock, so a callback is either seen by `cancel` or run here.
        if self.is_cancelled() {
            drop(callbacks);
            callback();
            return CancelRegistration { token: None, id: 0 };
        }
        let id = callbacks.next_id;
        callbacks.next_id += 1;
        callbacks.pending.insert(id, Box::new(callback));
        CancelRegistration {
            token: Some(self.clone()),
            id,
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Keeps a kill callback registered; dropping it unregisters the callback.
#[must_use = "dropping the registration unregisters the callback"]
#[derive(Debug)]
pub struct CancelRegistration {
    token: Option<CancelToken>,
    id: u64,
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        if let Some(token) = &self.token {
            lock(&token.inner.callbacks).pending.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn callbacks_run_once_and_late_ones_run_at_once() {
        let token = CancelToken::new();
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let _reg = token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        token.cancel();
        token.cancel();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let c = Arc::clone(&count);
        let _late = token.on_cancel(move || {
            c.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(count.load(Ordering::SeqCst), 11);
        assert!(token.wait_timeout(Duration::from_secs(5)));
    }

    #[test]
    fn dropped_registration_never_runs() {
        let token = CancelToken::new();
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        drop(token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        token.cancel();
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn wait_times_out_when_not_cancelled() {
        assert!(!CancelToken::new().wait_timeout(Duration::from_millis(10)));
    }
}
