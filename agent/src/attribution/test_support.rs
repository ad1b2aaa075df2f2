//! Helpers shared by the attribution tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A clock that only moves when told to.
#[derive(Clone)]
pub(crate) struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    pub(crate) fn now(&self) -> Instant {
        *self.0.lock().expect("clock lock")
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }

    /// A time source for [`CgroupCache::with_time_source`](super::CgroupCache::with_time_source).
    pub(crate) fn source(&self) -> impl Fn() -> Instant + Send + Sync + 'static {
        let clock = self.clone();
        move || clock.now()
    }
}
