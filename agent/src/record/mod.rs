//! `lifecycle-agent record`: the attributed kernel event stream as NDJSON,
//! with, when a pod watch is configured, the pod events of this node and
//! the Kubernetes names of every container in the same stream.

mod attach;
pub(crate) mod pods;
mod sink;

pub(crate) use attach::{Attached, attach, stats_record};

pub use pods::KubeOptions;

use std::{
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use agent_common::{EventKind, KIND_SLOTS};
use thiserror::Error;
use tokio::sync::watch;
use tracing::warn;

use crate::{
    attribution::{CacheConfig, Cgroup2Walker, CgroupCache, CgroupError},
    event::Event,
    join::Joiner,
    kernel::loader::{LoadError, ProbeOptions, ProgramStats},
};

use sink::Sink;

#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub probes: ProbeOptions,
    /// Stop after this long (`None`: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// How often a `stats` line is written.
    pub stats_interval: Duration,
    /// Created (empty) once the probes are attached and reading has begun.
    pub ready_file: Option<PathBuf>,
    pub cache: CacheConfig,
    /// Turn on the kernel's BPF run-time statistics while recording and
    /// report each probe's cost at exit.
    pub probe_stats: bool,
    /// Watch this node's pods and join them with the kernel events.
    pub kubernetes: Option<KubeOptions>,
}

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    ProbesUnavailable(#[from] LoadError),
    #[error("cgroup v2 hierarchy unavailable: {0}")]
    CgroupsUnavailable(#[from] CgroupError),
    #[error("Kubernetes API unavailable: {0}")]
    KubernetesUnavailable(String),
    #[error("BPF run-time statistics unavailable: {0}")]
    ProbeStatsUnavailable(String),
    #[error("clocks unreadable: {0}")]
    ClockUnavailable(#[from] crate::clock::ClockError),
    #[error("writing the recording failed: {0}")]
    WriteFailed(#[source] std::io::Error),
    #[error("ring buffer reader failed: {0}")]
    ReaderFailed(#[source] std::io::Error),
}

impl RecordError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::ProbesUnavailable(e) => e.label(),
            Self::CgroupsUnavailable(_) => "cgroups_unavailable",
            Self::ClockUnavailable(_) => "clock_unavailable",
            Self::ProbeStatsUnavailable(_) => "probe_stats_unavailable",
            Self::KubernetesUnavailable(_) => "kubernetes_unavailable",
            Self::WriteFailed(_) => "write_failed",
            Self::ReaderFailed(_) => "reader_failed",
        }
    }
}

/// What a finished recording counted.
#[derive(Clone, Debug, Default)]
pub struct RecordSummary {
    pub lines: u64,
    pub events: [u64; KIND_SLOTS as usize],
    pub kernel_drops: [u64; KIND_SLOTS as usize],
    pub unattributed: u64,
    /// Kernel-measured cost per probe (with `probe_stats`).
    pub probe_stats: Vec<ProgramStats>,
}

impl RecordSummary {
    /// One line per kind with events or drops, for stderr at exit.
    pub fn describe(&self) -> String {
        let mut out = format!("recorded {} lines", self.lines);
        for kind in EventKind::ALL {
            let (n, d) = (self.events[kind as usize], self.kernel_drops[kind as usize]);
            if n > 0 || d > 0 {
                out.push_str(&format!(
                    "\n  {:<16} events {:>10}  dropped {:>8}",
                    kind.name(),
                    n,
                    d
                ));
            }
        }
        out.push_str(&format!(
            "\n  dropped in kernel (ring buffer full): {}\n  unattributed: {}",
            self.kernel_drops.iter().sum::<u64>(),
            self.unattributed
        ));
        for probe in self.probe_stats.iter().filter(|p| p.run_count > 0) {
            out.push_str(&format!(
                "\n  probe {:<24} runs {:>10} run_time_ns {:>12} avg_ns {:>6}",
                probe.name,
                probe.run_count,
                probe.run_time_ns,
                probe.run_time_ns / probe.run_count
            ));
        }
        out
    }
}

/// Records until `stop` turns true or the duration elapses; writes one JSON
/// line per event into `out` and a closing `stats` line, then flushes.
pub async fn record(
    options: &RecordOptions,
    out: &mut (dyn Write + Send),
    mut stop: watch::Receiver<bool>,
) -> Result<RecordSummary, RecordError> {
    let walker = Cgroup2Walker::discover()?;
    let mut cache = CgroupCache::new(options.cache.clone(), walker);
    cache.populate()?;
    let mut feed = match &options.kubernetes {
        Some(kube) => Some((pods::PodFeed::start(kube).await?, kube.pending)),
        None => None,
    };
    let mut joiner = feed
        .as_ref()
        .map(|(f, limits)| Joiner::new(f.store.clone(), *limits));
    let Attached {
        mut pipeline,
        mut probes,
        batches: mut rx,
        reader_stop: reader_stop_tx,
        reader,
    } = attach::<RecordError>(&options.probes, cache)?;
    // The kernel keeps BPF run-time statistics on while this fd is open.
    let _stats_guard = if options.probe_stats {
        let fd = aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map_err(|e| RecordError::ProbeStatsUnavailable(e.to_string()))?;
        Some(fd)
    } else {
        None
    };
    if let Some(path) = &options.ready_file {
        std::fs::write(path, b"").map_err(RecordError::WriteFailed)?;
    }

    let mut sink = Sink::new(out);
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut next_stats = Instant::now() + options.stats_interval;
    let mut release_tick = tokio::time::interval(Duration::from_millis(500));
    let mut stopping = false;
    loop {
        let pods_open = feed.is_some();
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                for error in &batch.errors {
                    warn!(%error, "undecodable ring buffer record");
                    pipeline.decode_error(error);
                }
                for record in &batch.records {
                    let record = pipeline.handle(record);
                    match joiner.as_mut() {
                        Some(joiner) => sink.write_all(joiner.join(record, Instant::now()))?,
                        None => sink.write(record)?,
                    }
                }
                if let Some(roots) = pipeline.take_changed_watch_roots() {
                    probes.set_watch_roots(&roots)?;
                }
                // One write per batch: a reader following the file (tail -f,
                // a collector) sees events within a poll interval.
                sink.flush()?;
            }
            event = recv_pod(&mut feed), if pods_open => match event {
                Some(event) => {
                    sink.write(pods::pod_record(event))?;
                    if let Some(joiner) = joiner.as_mut() {
                        sink.write_all(joiner.release(Instant::now()))?;
                    }
                    sink.flush()?;
                }
                None => {
                    warn!("pod watch stopped; kernel events keep being recorded without pod names");
                    feed = None;
                }
            },
            _ = release_tick.tick() => {
                if let Some(joiner) = joiner.as_mut() {
                    sink.write_all(joiner.release(Instant::now()))?;
                }
            }
            _ = stop.changed(), if !stopping => { stopping = true; let _ = reader_stop_tx.send(true); }
            _ = sleep_until(deadline), if !stopping => { stopping = true; let _ = reader_stop_tx.send(true); }
        }
        if Instant::now() >= next_stats {
            next_stats = Instant::now() + options.stats_interval;
            let stats = stats_record(
                &mut pipeline,
                &probes,
                joiner.as_ref(),
                feed.as_ref().map(|(f, _)| &f.store),
                false,
            )?;
            sink.write(stats)?;
            sink.flush()?;
        }
    }
    match reader.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(RecordError::ReaderFailed(e)),
        Err(e) => return Err(RecordError::ReaderFailed(std::io::Error::other(e))),
    }
    if let Some((f, _)) = feed.as_ref() {
        f.stop();
    }
    if let Some(joiner) = joiner.as_mut() {
        sink.write_all(joiner.flush())?;
    }
    let closing = stats_record(
        &mut pipeline,
        &probes,
        joiner.as_ref(),
        feed.as_ref().map(|(f, _)| &f.store),
        true,
    )?;
    let unattributed = match &closing.event {
        Event::Stats(s) => s.unattributed,
        _ => 0,
    };
    sink.write(closing)?;
    sink.flush()?;
    Ok(RecordSummary {
        lines: sink.lines(),
        events: *pipeline.event_counts(),
        kernel_drops: probes.drops()?,
        unattributed,
        probe_stats: probes.program_stats(),
    })
}

async fn recv_pod(
    feed: &mut Option<(pods::PodFeed, crate::pods::PendingLimits)>,
) -> Option<crate::pods::PodEvent> {
    match feed {
        Some((f, _)) => f.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
