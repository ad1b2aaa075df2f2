//! The bounded queue between the event loop (which must never wait) and
//! the posting task: a push takes a short lock; past the bound the oldest
//! waiting Event is dropped and counted.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::sync::Notify;

use super::{
    counters::{Counters, DropReason},
    draft::EventDraft,
};

/// A draft with the wall-clock time its finding was submitted.
#[derive(Clone, Debug)]
pub struct Queued {
    pub draft: EventDraft,
    /// Unix ns: the Event's `eventTime` / the series' `lastObservedTime`.
    pub observed_unix_ns: i128,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Queued>,
    closed: bool,
}

/// Shared by the submitting handle and the posting task.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    /// The posting task holds an item it has not finished with.
    in_flight: AtomicBool,
    pub counters: Arc<Counters>,
}

impl Queue {
    pub fn new(capacity: usize, counters: Arc<Counters>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
            in_flight: AtomicBool::new(false),
            counters,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item`; drops the oldest waiting one when full.
    pub fn push(&self, item: Queued) {
        let len = {
            let mut s = self.state();
            if s.items.len() == self.capacity {
                s.items.pop_front();
                self.counters.dropped(DropReason::QueueFull, 1);
            }
            s.items.push_back(item);
            s.items.len()
        };
        self.counters.set_queued(len);
        self.ready.notify_one();
    }

    /// The next item; `None` once closed and empty.
    pub async fn pop(&self) -> Option<Queued> {
        loop {
            {
                let mut s = self.state();
                if let Some(item) = s.items.pop_front() {
                    self.counters.set_queued(s.items.len());
                    self.in_flight.store(true, Ordering::Relaxed);
                    return Some(item);
                }
                if s.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// The item the last `pop` gave is done with.
    pub fn done(&self) {
        self.in_flight.store(false, Ordering::Relaxed);
    }

    /// No more pushes; the task ends once it has posted what waits.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// Empties the queue; how many were waiting or in flight.
    pub fn drain(&self) -> usize {
        let mut s = self.state();
        let n = s.items.len() + usize::from(self.in_flight.swap(false, Ordering::Relaxed));
        s.items.clear();
        self.counters.set_queued(0);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_events::draft::{EventDraft, EventType};
    use lifecycle_audit::RuleId;

    fn item(n: i128) -> Queued {
        Queued {
            draft: EventDraft {
                namespace: "ns".into(),
                pod: "p".into(),
                pod_uid: "u".into(),
                field_path: None,
                reason: "R".into(),
                event_type: EventType::Warning,
                action: "Terminating",
                note: String::new(),
                rule: RuleId::T2,
                identity: 0,
            },
            observed_unix_ns: n,
        }
    }

    #[tokio::test]
    async fn the_oldest_goes_when_full_and_is_counted() {
        let counters = Arc::new(Counters::default());
        let q = Queue::new(2, counters.clone());
        for n in 1..=3 {
            q.push(item(n));
        }
        let counts = counters.snapshot();
        assert_eq!(counts.dropped_for(DropReason::QueueFull.label()), 1);
        assert_eq!(counts.queued, 2);
        assert_eq!(q.pop().await.map(|i| i.observed_unix_ns), Some(2));
        assert_eq!(q.pop().await.map(|i| i.observed_unix_ns), Some(3));
        q.close();
        assert!(q.pop().await.is_none(), "closed and empty");
    }
}
