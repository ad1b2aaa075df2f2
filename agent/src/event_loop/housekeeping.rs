//! Housekeeping signals: what a process's own runtime sends its threads.
//!
//! Go preempts goroutines by sending SIGURG to its own threads (`tgkill`),
//! hundreds of times a second under load; glibc's threads signal each
//! other with SIGCANCEL and SIGSETXID. None of it is a lifecycle event. A
//! thread-directed signal whose sender and target are the same process, of
//! one of those numbers, is absorbed here with its delivery: counted per
//! process and signal, and written as one `signal_summary` record per
//! process and signal each stats interval, so the recording does not grow
//! with it and the audit never sees it. Signals of any other number, or
//! between processes, pass untouched.
//!
//! None of these numbers is in the probes' default signal mask: the kernel
//! counts them (`stats.filtered_signals`) and nothing reaches this module.
//! It works on what a wider mask lets through (`--all-signals`, or the
//! numbers named in `--signals`).

use std::collections::{BTreeMap, HashMap};

use crate::event::{Event, Record, SignalSummary};

/// SIGURG (Go's preemption), and glibc's SIGCANCEL (32) and SIGSETXID (33).
pub const HOUSEKEEPING_SIGNALS: [i32; 3] = [23, 32, 33];

/// (pid, start_ns, signal): a process and one signal.
type Key = (u32, u64, i32);
/// (pid, tid, start_ns, signal): one thread of a process and one signal.
type ThreadKey = (u32, u32, u64, i32);

/// The absorbed signals, and what is still to be summarized.
#[derive(Debug, Default)]
pub struct Housekeeping {
    /// Open summaries, with the time fields of the last record absorbed.
    open: HashMap<Key, (SignalSummary, Record)>,
    /// Deliveries still expected per receiving thread.
    undelivered: HashMap<ThreadKey, u64>,
    /// Generated records summarized since start, by signal name.
    totals: BTreeMap<String, u64>,
}

impl Housekeeping {
    /// Whether `record` is housekeeping; if so it is counted and must not
    /// be written.
    pub fn absorb(&mut self, record: &Record) -> bool {
        match &record.event {
            Event::SignalGenerate(e) => {
                let own = e.sender.pid == e.target.pid && e.sender.start_ns == e.target.start_ns;
                if !own || e.group || !HOUSEKEEPING_SIGNALS.contains(&e.signal) {
                    return false;
                }
                let key = (e.target.pid, e.target.start_ns, e.signal);
                let boot = record.boot_ns.unwrap_or(0);
                let (summary, last) = self.open.entry(key).or_insert_with(|| {
                    let summary = SignalSummary {
                        process: e.target.clone(),
                        signal: e.signal,
                        signal_name: e.signal_name.clone(),
                        generated: 0,
                        delivered: 0,
                        first_boot_ns: boot,
                        last_boot_ns: boot,
                    };
                    (summary, record.clone())
                });
                summary.generated += 1;
                summary.last_boot_ns = boot;
                // The latest thread and comm: a process that exec'd (runc's
                // init, a Go program, becoming the container's app) keeps its
                // key and is named as it is now.
                if summary.process != e.target {
                    summary.process = e.target.clone();
                }
                *last = record.clone();
                *self.totals.entry(e.signal_name.clone()).or_default() += 1;
                if e.result == "delivered" {
                    *self
                        .undelivered
                        .entry((e.target.pid, e.target.tid, e.target.start_ns, e.signal))
                        .or_default() += 1;
                }
                true
            }
            Event::SignalDeliver(e) => {
                let p = &e.process;
                let thread = (p.pid, p.tid, p.start_ns, e.signal);
                let Some(waiting) = self.undelivered.get_mut(&thread).filter(|n| **n > 0) else {
                    return false;
                };
                *waiting -= 1;
                if *waiting == 0 {
                    self.undelivered.remove(&thread);
                }
                let key = (e.process.pid, e.process.start_ns, e.signal);
                if let Some((summary, _)) = self.open.get_mut(&key) {
                    summary.delivered += 1;
                }
                true
            }
            // A process that exits has no deliveries left to wait for.
            Event::ProcessExit(e) => {
                let (pid, start) = (e.process.pid, e.process.start_ns);
                self.undelivered
                    .retain(|&(p, _, s, _), _| (p, s) != (pid, start));
                false
            }
            _ => false,
        }
    }

    /// One `signal_summary` record per process and signal absorbed since
    /// the last call, stamped like the last record each one counted.
    pub fn take_summaries(&mut self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .open
            .drain()
            .map(|(_, (summary, last))| Record {
                event: Event::SignalSummary(summary),
                ..last
            })
            .collect();
        out.sort_by_key(|r| r.boot_ns);
        out
    }

    /// Generated records summarized since start, by signal name.
    pub fn totals(&self) -> &BTreeMap<String, u64> {
        &self.totals
    }
}

#[cfg(test)]
mod tests;
