//! Holding kernel events until their container can be attributed.
//!
//! The kernel sees a container start 1–2 s before the kubelet reports its id,
//! so early events often resolve to [`Resolution::UnlistedContainer`] or
//! [`Resolution::PodUnknown`]. [`PendingBuffer`] keeps them (bounded in
//! count and age) and hands them back once [`PodStore::resolve`] succeeds.
//! Items that age out are returned as expired and counted: sandbox (pause)
//! container events end up there by design, since their id never appears in
//! the API; they are counted separately when the store says so.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::pods::resolve::{Resolution, ResolvedContainer};
use crate::pods::store::PodStore;

/// Bounds of a pending buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Most items held; the oldest is expired early when full.
    pub max_items: usize,
    /// Longest an item is held.
    pub max_age: Duration,
}

impl Default for PendingLimits {
    fn default() -> Self {
        Self {
            max_items: 4096,
            max_age: Duration::from_secs(10),
        }
    }
}

/// Counts kept by a pending buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingCounters {
    /// Items attributed after having been held.
    pub attributed_late: u64,
    /// Items that expired (by age or because the buffer was full) without
    /// attribution. Includes `expired_likely_sandbox`.
    pub expired_unattributed: u64,
    /// Of those, items whose pod was known and fully reported (sandbox).
    pub expired_likely_sandbox: u64,
    /// Of those, items pushed out early because the buffer was full.
    pub expired_overflow: u64,
}

/// An item leaving the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released<T> {
    /// The container is now known.
    Attributed {
        /// Where the item belongs.
        container: ResolvedContainer,
        /// The held item.
        item: T,
    },
    /// Held too long (or pushed out); `last` is the final resolution tried.
    Expired {
        /// The held item.
        item: T,
        /// Resolution at expiry.
        last: Resolution,
    },
}

struct Held<T> {
    pod_uid: String,
    container_id: String,
    since: Instant,
    item: T,
}

/// A bounded buffer of items waiting for attribution.
pub struct PendingBuffer<T> {
    limits: PendingLimits,
    items: VecDeque<Held<T>>,
    counters: PendingCounters,
}

impl<T> PendingBuffer<T> {
    /// An empty buffer.
    pub fn new(limits: PendingLimits) -> Self {
        Self {
            limits,
            items: VecDeque::new(),
            counters: PendingCounters::default(),
        }
    }

    /// Holds `item` for (`pod_uid`, `container_id`). When the buffer is full
    /// the oldest item is expired and returned.
    pub fn hold(
        &mut self,
        store: &PodStore,
        pod_uid: &str,
        container_id: &str,
        item: T,
        now: Instant,
    ) -> Option<Released<T>> {
        let overflow = (self.items.len() >= self.limits.max_items.max(1))
            .then(|| self.items.pop_front())
            .flatten()
            .map(|held| {
                self.counters.expired_overflow += 1;
                self.expire(store, held)
            });
        self.items.push_back(Held {
            pod_uid: pod_uid.to_owned(),
            container_id: container_id.to_owned(),
            since: now,
            item,
        });
        overflow
    }

    /// Retries every held item: returns those now attributed and those that
    /// expired, in the order they were held.
    pub fn release(&mut self, store: &PodStore, now: Instant) -> Vec<Released<T>> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.items.len());
        for held in std::mem::take(&mut self.items) {
            match store.resolve(&held.pod_uid, &held.container_id) {
                Resolution::Container(container) => {
                    self.counters.attributed_late += 1;
                    out.push(Released::Attributed {
                        container,
                        item: held.item,
                    });
                }
                last if now.saturating_duration_since(held.since) >= self.limits.max_age => {
                    out.push(self.count_expired(held.item, last));
                }
                _ => keep.push_back(held),
            }
        }
        self.items = keep;
        out
    }

    fn expire(&mut self, store: &PodStore, held: Held<T>) -> Released<T> {
        let last = store.resolve(&held.pod_uid, &held.container_id);
        self.count_expired(held.item, last)
    }

    fn count_expired(&mut self, item: T, last: Resolution) -> Released<T> {
        self.counters.expired_unattributed += 1;
        if matches!(
            last,
            Resolution::UnlistedContainer {
                likely_sandbox: true,
                ..
            }
        ) {
            self.counters.expired_likely_sandbox += 1;
        }
        Released::Expired { item, last }
    }

    /// Items held now.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The counters so far.
    pub fn counters(&self) -> PendingCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_items_expire_by_age_and_overflow() {
        let store = PodStore::default();
        let limits = PendingLimits {
            max_items: 2,
            max_age: Duration::from_secs(5),
        };
        let mut buffer = PendingBuffer::new(limits);
        let t0 = Instant::now();
        assert!(buffer.hold(&store, "u", "a", 1, t0).is_none());
        assert!(buffer.hold(&store, "u", "b", 2, t0).is_none());
        let pushed = buffer.hold(&store, "u", "c", 3, t0 + Duration::from_secs(1));
        assert!(matches!(
            pushed,
            Some(Released::Expired {
                item: 1,
                last: Resolution::PodUnknown
            })
        ));
        assert!(
            buffer
                .release(&store, t0 + Duration::from_secs(4))
                .is_empty()
        );
        let out = buffer.release(&store, t0 + Duration::from_secs(5));
        assert_eq!(out.len(), 1, "only the item held at t0 is old enough");
        assert!(matches!(out[0], Released::Expired { item: 2, .. }));
        assert_eq!(buffer.len(), 1);
        let counters = buffer.counters();
        assert_eq!(
            (counters.expired_unattributed, counters.expired_overflow),
            (2, 1)
        );
        assert_eq!(counters.expired_likely_sandbox, 0);
    }
}
