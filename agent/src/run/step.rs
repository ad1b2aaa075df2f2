//! The daemon's loop: one step per kernel batch, pod event or timer tick.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{AUDIT_TICK, RunError, RunSummary, health::Health, journal::Journal, live::LiveAudit};
use crate::{
    attribution::Cgroup2Walker,
    audit::PodAudit,
    event::{Event, Record},
    export::{DaemonState, Exporter, Telemetry},
    join::Joiner,
    kernel::{loader::Probes, reader::Batch},
    pipeline::Pipeline,
    pods::PodEvent,
    record::{
        pods::{PodFeed, pod_record},
        stats_record,
    },
};

/// Longest the stop waits for the reader's last batches.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

pub(super) struct Daemon {
    pub rx: mpsc::Receiver<Batch>,
    pub pipeline: Pipeline<Cgroup2Walker>,
    pub probes: Probes,
    pub joiner: Option<Joiner>,
    pub feed: Option<PodFeed>,
    pub journal: Option<Journal>,
    pub live: LiveAudit,
    pub telemetry: Telemetry,
    pub exporter: Exporter,
    pub health: Arc<Health>,
    /// Container processes recovered from `/proc` at start.
    pub recovered: u64,
    pub stats_interval: Duration,
}

impl Daemon {
    /// Steps until the reader's channel closes or a step fails.
    pub async fn run_loop(&mut self) -> Result<(), RunError> {
        let mut audit_tick = tokio::time::interval(AUDIT_TICK);
        let mut next_stats = Instant::now() + self.stats_interval;
        loop {
            self.health.beat();
            tokio::select! {
                batch = self.rx.recv() => match batch {
                    Some(batch) => self.kernel_batch(batch)?,
                    None => return Err(RunError::ReaderStopped),
                },
                event = recv_pod(&mut self.feed) => match event {
                    Some(event) => self.pod_event(event),
                    None => {
                        warn!("pod watch stopped; kernel events go on without pod names");
                        self.feed = None;
                    }
                },
                _ = audit_tick.tick() => self.tick(),
            }
            if Instant::now() >= next_stats {
                next_stats = Instant::now() + self.stats_interval;
                self.stats(false)?;
            }
        }
    }

    fn kernel_batch(&mut self, batch: Batch) -> Result<(), RunError> {
        for error in &batch.errors {
            warn!(%error, "undecodable ring buffer record");
            self.pipeline.decode_error(error);
        }
        for raw in &batch.records {
            let record = self.pipeline.handle(raw);
            self.join(record);
        }
        if let Some(roots) = self.pipeline.take_changed_watch_roots() {
            self.probes.set_watch_roots(&roots)?;
        }
        if let Some(j) = self.journal.as_mut() {
            j.flush();
        }
        Ok(())
    }

    fn pod_event(&mut self, event: PodEvent) {
        self.ingest(pod_record(event));
        let released = match self.joiner.as_mut() {
            Some(joiner) => joiner.release(Instant::now()),
            None => Vec::new(),
        };
        self.ingest_all(released);
    }

    fn tick(&mut self) {
        if let Some(feed) = &self.feed {
            self.health.set_pods_synced(feed.store.synced());
        }
        self.telemetry.set_ready(self.health.ready());
        let released = match self.joiner.as_mut() {
            Some(joiner) => joiner.release(Instant::now()),
            None => Vec::new(),
        };
        self.ingest_all(released);
        let now = self.pipeline.now_unix_ns();
        let audits = self.live.tick(now);
        self.publish(audits);
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
        if let Some(j) = self.journal.as_mut() {
            j.flush();
        }
    }

    /// An attributed record through the join (which may hold it until
    /// the API reports its container) into the journal and the audit.
    pub fn join(&mut self, record: Record) {
        match self.joiner.as_mut() {
            Some(joiner) => {
                let joined = joiner.join(record, Instant::now());
                self.ingest_all(joined);
            }
            None => self.ingest(record),
        }
    }

    /// Records (attributed and joined) into the journal and the audit.
    pub fn ingest_all(&mut self, records: Vec<Record>) {
        for record in records {
            self.ingest(record);
        }
    }

    fn ingest(&mut self, record: Record) {
        if let Some(j) = self.journal.as_mut() {
            j.write(&record);
        }
        let audits = self.live.push(record);
        self.publish(audits);
    }

    fn publish(&mut self, audits: Vec<PodAudit>) {
        for audit in audits {
            self.telemetry.record_audit(&audit);
            self.exporter.submit(&audit);
        }
    }

    fn stats(&mut self, last: bool) -> Result<(), RunError> {
        let record = stats_record(
            &mut self.pipeline,
            &self.probes,
            self.joiner.as_ref(),
            self.feed.as_ref().map(|f| &f.store),
            last,
        )?;
        if let Event::Stats(stats) = &record.event {
            self.telemetry.observe_stats(stats);
        }
        if let Some(j) = self.journal.as_mut() {
            j.write(&record);
            j.flush();
        }
        Ok(())
    }

    /// After the reader was told to stop: the batches it still sends.
    pub async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(batch)) => {
                    if let Err(error) = self.kernel_batch(batch) {
                        warn!(%error, "while draining");
                    }
                }
                Ok(None) => return,
                Err(_) => {
                    warn!("reader did not stop within the drain limit");
                    return;
                }
            }
        }
    }

    /// Completes the audits in flight and flushes the exporter.
    pub async fn finish(mut self, within: Duration) -> RunSummary {
        if let Some(feed) = self.feed.take() {
            feed.stop();
        }
        if let Some(joiner) = self.joiner.as_mut() {
            let rest = joiner.flush();
            self.ingest_all(rest);
        }
        if let Err(error) = self.stats(true) {
            warn!(%error, "closing stats");
        }
        let (audits, counters) = self.live.finish();
        let completed_at_stop = audits.len() as u64;
        for audit in &audits {
            self.telemetry.record_audit(audit);
            self.exporter.submit_audit(audit, false);
        }
        let export = self.exporter.shutdown(within).await;
        info!(?export, "exporter flushed");
        let journal = self.journal.as_ref().map(Journal::counters);
        RunSummary {
            live: counters,
            completed_at_stop,
            journal,
            export,
        }
    }
}

async fn recv_pod(feed: &mut Option<PodFeed>) -> Option<PodEvent> {
    match feed {
        Some(f) => f.events.recv().await,
        None => std::future::pending().await,
    }
}
