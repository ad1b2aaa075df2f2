//! Time order for a live stream: a recording is written in `seq` order, and
//! records held for the join come out late. The buffer keeps records for a
//! window and releases them by `(time_ns, seq)`.

use std::collections::BTreeMap;

use lifecycle_recording::event::Record;

/// Holds records of a live stream and releases them in `(time_ns, seq)` order.
pub struct ReorderBuffer {
    window_ns: i64,
    held: BTreeMap<(i64, u64), Record>,
    newest_ns: i64,
}

impl ReorderBuffer {
    /// Holds each record until one `window_ns` newer arrived.
    pub fn new(window_ns: i64) -> Self {
        Self {
            window_ns,
            held: BTreeMap::new(),
            newest_ns: i64::MIN,
        }
    }

    /// Adds a record; returns those now old enough, in time order.
    pub fn push(&mut self, record: Record) -> Vec<Record> {
        self.newest_ns = self.newest_ns.max(record.time_ns);
        self.held.insert((record.time_ns, record.seq), record);
        let cut = self.newest_ns.saturating_sub(self.window_ns);
        let keep = self.held.split_off(&(cut.saturating_add(1), 0));
        std::mem::replace(&mut self.held, keep)
            .into_values()
            .collect()
    }

    /// Everything still held, in time order.
    pub fn drain(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.held).into_values().collect()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle_recording::event::{Event, Stats};

    fn record(seq: u64, time_ns: i64) -> Record {
        Record {
            seq,
            time: String::new(),
            time_ns,
            boot_ns: None,
            cpu: None,
            event: Event::Stats(Stats::default()),
        }
    }

    #[test]
    fn releases_in_time_order_after_the_window() {
        let mut buffer = ReorderBuffer::new(100);
        assert!(buffer.push(record(0, 1_000)).is_empty());
        assert!(buffer.push(record(1, 1_050)).is_empty());
        // Written late (seq 2) but earlier in time.
        assert!(buffer.push(record(2, 990)).is_empty());
        let out: Vec<u64> = buffer
            .push(record(3, 1_100))
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            out,
            vec![2, 0],
            "990 and 1000 are at least 100 ns older than 1100"
        );
        assert_eq!(buffer.len(), 2);
        let rest: Vec<u64> = buffer.drain().iter().map(|r| r.seq).collect();
        assert_eq!(rest, vec![1, 3]);
        assert!(buffer.is_empty());
    }
}
