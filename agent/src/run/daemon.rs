//! The daemon's consumer of the event loop: every record into the journal
//! and the live audit, whose audits go to the metrics and the exporter;
//! the health flags and the daemon's own metrics on every tick.

use std::{sync::Arc, time::Duration};

use tracing::info;

use super::{RunSummary, health::Health, journal::Journal, live::LiveAudit};
use crate::{
    api_events::ApiEvents,
    audit::PodAudit,
    event::{Event, Record},
    event_loop::{Consumer, LoopError},
    export::{DaemonState, Exporter, Telemetry},
};

pub(super) struct Daemon {
    pub journal: Option<Journal>,
    pub live: LiveAudit,
    pub telemetry: Telemetry,
    pub exporter: Exporter,
    /// Findings as Kubernetes Events, when on.
    pub events: Option<ApiEvents>,
    pub health: Arc<Health>,
    /// Container processes recovered from `/proc` at start.
    pub recovered: u64,
}

impl Consumer for Daemon {
    fn record(&mut self, record: Record) -> Result<(), LoopError> {
        if let Some(j) = self.journal.as_mut() {
            j.write(&record);
        }
        let audits = self.live.push(record);
        self.publish(audits);
        Ok(())
    }

    /// Self-telemetry and the journal; `stats` records are not audited.
    fn stats(&mut self, record: Record) -> Result<(), LoopError> {
        if let Event::Stats(stats) = &record.event {
            self.telemetry.observe_stats(stats);
        }
        if let Some(j) = self.journal.as_mut() {
            j.write(&record);
            j.flush();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LoopError> {
        if let Some(j) = self.journal.as_mut() {
            j.flush();
        }
        Ok(())
    }

    fn tick(&mut self, now_unix_ns: i64, pods_synced: Option<bool>) -> Result<(), LoopError> {
        if let Some(synced) = pods_synced {
            self.health.set_pods_synced(synced);
        }
        self.telemetry.set_ready(self.health.ready());
        let audits = self.live.tick(now_unix_ns);
        self.publish(audits);
        if let Some(events) = &self.events {
            self.telemetry.observe_api_events(&events.counts());
        }
        let journal = self
            .journal
            .as_ref()
            .map(Journal::counters)
            .unwrap_or_default();
        self.telemetry.observe_daemon(&DaemonState {
            recovered_processes: self.recovered,
            audits_in_progress: self.live.pods_in_progress() as u64,
            journal_lines: journal.lines,
            journal_write_errors: journal.write_errors,
            journal_rotations: journal.rotations,
        });
        self.flush()
    }

    fn turn(&mut self) {
        self.health.beat();
    }

    fn stopping(&mut self) {
        // Not ready from here on; no new kernel events once drained.
        self.health.set_stopping();
        info!("stopping: draining events, finishing audits in flight");
    }
}

/// The wall clock in Unix ns, for Event times.
fn now_unix_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl Daemon {
    fn publish(&mut self, audits: Vec<PodAudit>) {
        for audit in audits {
            self.telemetry.record_audit(&audit);
            self.exporter.submit(&audit);
            if let Some(events) = self.events.as_mut() {
                events.submit(&audit, now_unix_ns());
            }
        }
    }

    /// Completes the audits in flight and flushes the exporter (the loop
    /// has already written what the join held and the closing stats).
    pub async fn finish(self, within: Duration) -> RunSummary {
        let Self {
            live,
            telemetry,
            exporter,
            mut events,
            journal,
            ..
        } = self;
        let (audits, counters) = live.finish();
        let completed_at_stop = audits.len() as u64;
        for audit in &audits {
            telemetry.record_audit(audit);
            exporter.submit_audit(audit, false);
            if let Some(events) = events.as_mut() {
                events.submit(audit, now_unix_ns());
            }
        }
        let posting = async {
            match events {
                Some(e) => Some(e.shutdown(within).await),
                None => None,
            }
        };
        let (export, events) = tokio::join!(exporter.shutdown(within), posting);
        info!(?export, ?events, "exporter and Events flushed");
        let journal = journal.as_ref().map(Journal::counters);
        RunSummary {
            live: counters,
            completed_at_stop,
            journal,
            export,
            events,
        }
    }
}
