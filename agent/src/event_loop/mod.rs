//! The one event loop behind `record` and `run`.
//!
//! Kernel batches from the ring buffer reader go through the [`Pipeline`]
//! (decode errors counted, cgroup attribution, watch roots kept current)
//! and, with a pod watch, through the [`Joiner`], which may hold a record
//! until the API reports its container. Pod events become `pod` lines and
//! let the join release what it held; every [`RELEASE_TICK`] the join
//! releases what waited too long; every `stats_interval` a `stats` line is
//! due. What comes out goes to a [`Consumer`]: the `record` command writes
//! NDJSON, the daemon journals, audits and exports.
//!
//! * [`attach`]: probes loaded, filtered to the kubepods roots, read on
//!   their own task;
//! * [`pods`]: the pod watch feeding the store the join reads;
//! * [`housekeeping`]: the signals a process's runtime sends its own
//!   threads (Go's SIGURG), counted into `signal_summary` records instead
//!   of written;
//! * [`error`]: how the loop fails.

mod attach;
mod error;
pub mod housekeeping;
pub mod pods;

pub use error::LoopError;
use pods::widen_for_stop_signals;
pub use pods::{KubeOptions, PodFeed, pod_line};

use std::{
    future::Future,
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{error, warn};

use crate::{
    attribution::{Cgroup2Walker, CgroupCache},
    event::{Event, Record},
    join::Joiner,
    kernel::{
        loader::{FilteredSignals, ProbeOptions, Probes, ProgramStats},
        reader::Batch,
        signal_mask::SignalMask,
    },
    pipeline::Pipeline,
    pods::{PodEvent, PodStore},
};
use agent_common::KIND_SLOTS;
use attach::{Attached, attach, stats_record};
use housekeeping::Housekeeping;

/// How often the join releases what waited too long, and the daemon's
/// audit clock moves on without records.
pub const RELEASE_TICK: Duration = Duration::from_millis(500);

/// Longest a stop waits for the reader's last batches.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What the loop is built from (the cgroup cache comes walked, so `run`
/// can recover running containers from it first).
#[derive(Clone, Debug)]
pub struct LoopOptions {
    pub probes: ProbeOptions,
    /// Watch this node's pods and join them with the kernel events.
    pub kubernetes: Option<KubeOptions>,
    /// How often a `stats` record is due.
    pub stats_interval: Duration,
    /// Turn on the kernel's BPF run-time statistics while the loop lives.
    pub probe_stats: bool,
}

/// What a user of the loop does with its records.
pub trait Consumer {
    /// A record, attributed and joined, in the order the loop hands them out.
    fn record(&mut self, record: Record) -> Result<(), LoopError>;

    /// A `stats` record: periodic, and the closing one (`last`).
    fn stats(&mut self, record: Record) -> Result<(), LoopError> {
        self.record(record)?;
        self.flush()
    }

    /// After each kernel batch and each pod event.
    fn flush(&mut self) -> Result<(), LoopError> {
        Ok(())
    }

    /// Every [`RELEASE_TICK`], after the join's release. `pods_synced` is
    /// whether the pod list completed, with a pod watch.
    fn tick(&mut self, _now_unix_ns: i64, _pods_synced: Option<bool>) -> Result<(), LoopError> {
        Ok(())
    }

    /// Each turn of the loop (a liveness heartbeat).
    fn turn(&mut self) {}

    /// The stop came: before the last batches are drained.
    fn stopping(&mut self) {}
}

/// Why [`EventLoop::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The stop came and the reader's last batches were handled.
    Stopped,
    /// The reader closed its channel without being told to.
    ReaderClosed,
}

/// What the loop counted, at its end.
#[derive(Debug, Default)]
pub struct LoopSummary {
    pub events: [u64; KIND_SLOTS as usize],
    pub kernel_drops: [u64; KIND_SLOTS as usize],
    pub unattributed: u64,
    /// Signals the mask left out, counted in the kernel, and the mask.
    pub filtered_signals: FilteredSignals,
    pub signal_mask: SignalMask,
    /// Kernel-measured cost per probe (with `probe_stats`).
    pub probe_stats: Vec<ProgramStats>,
    /// How the ring buffer reader ended, when it failed.
    pub reader_error: Option<LoopError>,
}

/// Probes attached, reader running, pod watch and join when configured.
pub struct EventLoop {
    pipeline: Pipeline<Cgroup2Walker>,
    probes: Probes,
    batches: mpsc::Receiver<Batch>,
    reader_stop: watch::Sender<bool>,
    reader: JoinHandle<std::io::Result<u64>>,
    joiner: Option<Joiner>,
    feed: Option<PodFeed>,
    housekeeping: Housekeeping,
    stats_interval: Duration,
    next_stats: Instant,
    /// The kernel keeps BPF run-time statistics on while this fd is open.
    _probe_stats: Option<OwnedFd>,
}

impl EventLoop {
    /// Starts the pod watch (when configured), then loads and attaches the
    /// probes over the walked `cache` and starts reading.
    pub async fn start(
        options: &LoopOptions,
        cache: CgroupCache<Cgroup2Walker>,
    ) -> Result<Self, LoopError> {
        let feed = match &options.kubernetes {
            Some(kube) => Some(PodFeed::start(kube).await?),
            None => None,
        };
        let joiner = match (&feed, &options.kubernetes) {
            (Some(f), Some(kube)) => Some(Joiner::new(f.store.clone(), kube.pending)),
            _ => None,
        };
        let Attached {
            pipeline,
            probes,
            batches,
            reader_stop,
            reader,
        } = attach(&options.probes, cache)?;
        let probe_stats = match options.probe_stats {
            true => Some(
                aya::sys::enable_stats(aya::sys::Stats::RunTime)
                    .map_err(LoopError::ProbeStatsUnavailable)?,
            ),
            false => None,
        };
        Ok(Self {
            pipeline,
            probes,
            batches,
            reader_stop,
            reader,
            joiner,
            feed,
            housekeeping: Housekeeping::default(),
            stats_interval: options.stats_interval,
            next_stats: Instant::now() + options.stats_interval,
            _probe_stats: probe_stats,
        })
    }

    /// Unix nanoseconds now, by the pipeline's boot clock.
    pub fn now_unix_ns(&self) -> i64 {
        self.pipeline.now_unix_ns()
    }

    /// The pod store, with a pod watch.
    pub fn pod_store(&self) -> Option<&PodStore> {
        self.feed.as_ref().map(|f| &f.store)
    }

    /// A record that did not come from the probes (a process recovered
    /// from `/proc`), through the join to `out`.
    pub fn inject(&mut self, record: Record, out: &mut impl Consumer) -> Result<(), LoopError> {
        match self.joiner.as_mut() {
            Some(joiner) => joiner
                .join(record, Instant::now())
                .into_iter()
                .try_for_each(|r| out.record(r)),
            None => out.record(record),
        }
    }

    /// Runs until `stop` completes, then stops the reader and handles what
    /// it still hands over (for at most [`DRAIN_LIMIT`]); or until the
    /// reader closes on its own.
    pub async fn run(
        &mut self,
        out: &mut impl Consumer,
        stop: impl Future<Output = ()>,
    ) -> Result<Ended, LoopError> {
        let mut release_tick = tokio::time::interval(RELEASE_TICK);
        tokio::pin!(stop);
        loop {
            out.turn();
            let pods_open = self.feed.is_some();
            tokio::select! {
                batch = self.batches.recv() => match batch {
                    Some(batch) => self.kernel_batch(batch, out)?,
                    None => return Ok(Ended::ReaderClosed),
                },
                event = recv_pod(&mut self.feed), if pods_open => match event {
                    Some(event) => self.pod_event(event, out)?,
                    None => {
                        warn!("pod watch stopped; kernel events go on without pod names");
                        self.feed = None;
                    }
                },
                _ = release_tick.tick() => self.tick(out)?,
                () = &mut stop => break,
            }
            self.stats_if_due(out)?;
        }
        out.stopping();
        let _ = self.reader_stop.send(true);
        self.drain(out).await?;
        Ok(Ended::Stopped)
    }

    fn kernel_batch(&mut self, batch: Batch, out: &mut impl Consumer) -> Result<(), LoopError> {
        for error in &batch.errors {
            warn!(%error, "undecodable ring buffer record");
            self.pipeline.decode_error(error);
        }
        for sample in &batch.records {
            let record = self.pipeline.handle(sample);
            if !self.housekeeping.absorb(&record) {
                self.inject(record, out)?;
            }
        }
        if let Some(roots) = self.pipeline.take_changed_watch_roots() {
            self.probes.set_watch_roots(&roots)?;
        }
        // One flush per batch: a reader following the output sees events
        // within a poll interval.
        out.flush()
    }

    fn pod_event(&mut self, event: PodEvent, out: &mut impl Consumer) -> Result<(), LoopError> {
        widen_for_stop_signals(&mut self.probes, &event)?;
        out.record(pod_line(event))?;
        self.release(out)?;
        out.flush()
    }

    fn tick(&mut self, out: &mut impl Consumer) -> Result<(), LoopError> {
        self.release(out)?;
        let synced = self.pod_store().map(PodStore::synced);
        out.tick(self.pipeline.now_unix_ns(), synced)
    }

    /// What the join holds and may now write.
    fn release(&mut self, out: &mut impl Consumer) -> Result<(), LoopError> {
        let released = match self.joiner.as_mut() {
            Some(joiner) => joiner.release(Instant::now()),
            None => Vec::new(),
        };
        released.into_iter().try_for_each(|r| out.record(r))
    }

    fn stats_if_due(&mut self, out: &mut impl Consumer) -> Result<(), LoopError> {
        if Instant::now() < self.next_stats {
            return Ok(());
        }
        self.next_stats = Instant::now() + self.stats_interval;
        self.summaries(out)?;
        let record = self.stats(false)?;
        out.stats(record)
    }

    /// The housekeeping summaries due, through the join (they name a pod's
    /// process like any other record).
    fn summaries(&mut self, out: &mut impl Consumer) -> Result<(), LoopError> {
        self.housekeeping
            .take_summaries()
            .into_iter()
            .try_for_each(|r| self.inject(r, out))
    }

    fn stats(&mut self, last: bool) -> Result<Record, LoopError> {
        let store = self.feed.as_ref().map(|f| &f.store);
        let mut record = stats_record(
            &mut self.pipeline,
            &self.probes,
            self.joiner.as_ref(),
            store,
            last,
        )?;
        if let Event::Stats(stats) = &mut record.event {
            stats.summarized_signals = self.housekeeping.totals().clone();
        }
        Ok(record)
    }

    /// After the reader was told to stop: the batches it still sends.
    async fn drain(&mut self, out: &mut impl Consumer) -> Result<(), LoopError> {
        let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
        loop {
            match tokio::time::timeout_at(deadline, self.batches.recv()).await {
                Ok(Some(batch)) => self.kernel_batch(batch, out)?,
                Ok(None) => return Ok(()),
                Err(_) => {
                    warn!("the ring buffer reader did not stop within the drain limit");
                    return Ok(());
                }
            }
        }
    }

    /// The end: the reader joined, the pod watch stopped, what the join
    /// still holds written, then the closing `stats` record.
    pub async fn finish(mut self, out: &mut impl Consumer) -> Result<LoopSummary, LoopError> {
        let _ = self.reader_stop.send(true);
        let reader_error = match tokio::time::timeout(DRAIN_LIMIT, &mut self.reader).await {
            Ok(Ok(Ok(_))) => None,
            Ok(Ok(Err(e))) => Some(LoopError::ReaderFailed(e)),
            Ok(Err(e)) => Some(LoopError::ReaderFailed(std::io::Error::other(e))),
            Err(_) => {
                error!("the ring buffer reader did not stop");
                None
            }
        };
        if let Some(feed) = self.feed.as_ref() {
            feed.stop();
        }
        self.summaries(out)?;
        if let Some(joiner) = self.joiner.as_mut() {
            joiner.flush().into_iter().try_for_each(|r| out.record(r))?;
        }
        let closing = self.stats(true)?;
        let unattributed = match &closing.event {
            Event::Stats(s) => s.unattributed,
            _ => 0,
        };
        out.stats(closing)?;
        Ok(LoopSummary {
            events: *self.pipeline.event_counts(),
            kernel_drops: self.probes.drops()?,
            unattributed,
            filtered_signals: self.probes.filtered_signals()?,
            signal_mask: self.probes.signal_mask(),
            probe_stats: self.probes.program_stats(),
            reader_error,
        })
    }
}

async fn recv_pod(feed: &mut Option<PodFeed>) -> Option<PodEvent> {
    match feed {
        Some(f) => f.events.recv().await,
        None => std::future::pending().await,
    }
}
