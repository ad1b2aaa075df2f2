//! The bounded span queue between `submit` and the delivery task.
//!
//! Items are whole traces (a root and its children travel together) and the
//! bound is in spans. When a new trace does not fit, the oldest traces are
//! dropped to make room (the freshest audits matter most when a collector
//! comes back); a trace larger than the whole queue is dropped itself.
//! Callers count what `push` reports as dropped.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct TraceQueue<T> {
    traces: VecDeque<Vec<T>>,
    spans: usize,
    capacity: usize,
    high_water: usize,
}

impl<T> TraceQueue<T> {
    /// A queue of at most `capacity` spans (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            traces: VecDeque::new(),
            spans: 0,
            capacity: capacity.max(1),
            high_water: 0,
        }
    }

    /// Queues a trace; returns how many spans were dropped to keep the
    /// bound (older ones, or this trace when it alone is too large).
    pub fn push(&mut self, trace: Vec<T>) -> usize {
        let n = trace.len();
        if n == 0 {
            return 0;
        }
        if n > self.capacity {
            return n;
        }
        let mut dropped = 0;
        while self.spans + n > self.capacity {
            match self.traces.pop_front() {
                Some(old) => {
                    self.spans -= old.len();
                    dropped += old.len();
                }
                None => break,
            }
        }
        self.spans += n;
        self.traces.push_back(trace);
        self.high_water = self.high_water.max(self.spans);
        dropped
    }

    /// Takes whole traces from the front, up to `max` spans (always at
    /// least one trace when the queue is not empty).
    pub fn take(&mut self, max: usize) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(front) = self.traces.front() {
            if !out.is_empty() && out.len() + front.len() > max {
                break;
            }
            let trace = self.traces.pop_front().unwrap_or_default();
            self.spans -= trace.len();
            out.extend(trace);
        }
        out
    }

    /// Empties the queue; returns the spans it held.
    pub fn clear(&mut self) -> usize {
        let n = self.spans;
        self.traces.clear();
        self.spans = 0;
        n
    }

    /// Spans queued.
    pub fn len(&self) -> usize {
        self.spans
    }

    pub fn is_empty(&self) -> bool {
        self.spans == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Most spans ever queued at once.
    pub fn high_water(&self) -> usize {
        self.high_water
    }
}

#[cfg(test)]
mod tests {
    use super::TraceQueue;

    #[test]
    fn oldest_traces_make_room_and_the_bound_holds() {
        let mut q = TraceQueue::new(5);
        assert_eq!(q.push(vec![1, 2]), 0);
        assert_eq!(q.push(vec![3, 4]), 0);
        assert_eq!(q.push(vec![5, 6, 7]), 2, "the first trace goes");
        assert_eq!(q.len(), 5);
        assert_eq!(
            q.push(vec![0; 6]),
            6,
            "larger than the queue: dropped itself"
        );
        assert_eq!(q.len(), 5);
        assert!(q.high_water() <= q.capacity());
        assert_eq!(q.take(3), vec![3, 4], "whole traces up to the batch size");
        assert_eq!(q.take(1), vec![5, 6, 7], "at least one trace");
        assert!(q.is_empty());
        q.push(vec![8]);
        assert_eq!(q.clear(), 1);
    }
}
