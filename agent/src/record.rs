//! `lifecycle-agent record`: the attributed kernel event stream as NDJSON.

use std::{
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use agent_common::{EventKind, KIND_SLOTS};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::{
    attribution::{CacheConfig, Cgroup2Walker, CgroupCache, CgroupError},
    clock::BootClock,
    kernel::{
        loader::{LoadError, ProbeOptions, Probes, ProgramStats},
        reader::{Batch, read_ring},
    },
    pipeline::Pipeline,
};

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
}

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    ProbesUnavailable(#[from] LoadError),
    #[error("cgroup v2 hierarchy unavailable: {0}")]
    CgroupsUnavailable(#[from] CgroupError),
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
    let known = cache.populate()?;
    let mut probes = Probes::load(&options.probes)?;
    // The kernel keeps BPF run-time statistics on while this fd is open.
    let _stats_guard = if options.probe_stats {
        Some(
            aya::sys::enable_stats(aya::sys::Stats::RunTime)
                .map_err(|e| RecordError::ProbeStatsUnavailable(e.to_string()))?,
        )
    } else {
        None
    };
    for note in &probes.notes {
        info!(note, "kernel offsets");
    }
    let mut pipeline = Pipeline::new(cache, BootClock::new()?);
    probes.set_watch_roots(pipeline.watch_roots())?;
    let _ = pipeline.take_changed_watch_roots();
    info!(
        cgroups = known,
        roots = pipeline.watch_roots().len(),
        "cgroup hierarchy walked"
    );

    let ring = probes.take_events()?;
    let logger = probes.take_logger();
    let (tx, mut rx) = mpsc::channel::<Batch>(64);
    let (reader_stop_tx, reader_stop_rx) = watch::channel(false);
    let reader = tokio::spawn(read_ring(ring, tx, reader_stop_rx, logger));
    if let Some(path) = &options.ready_file {
        std::fs::write(path, b"").map_err(RecordError::WriteFailed)?;
    }

    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut next_stats = Instant::now() + options.stats_interval;
    let mut lines = 0u64;
    let mut stopping = false;
    loop {
        let batch = tokio::select! {
            batch = rx.recv() => batch,
            _ = stop.changed(), if !stopping => { stopping = true; let _ = reader_stop_tx.send(true); continue; }
            _ = sleep_until(deadline), if !stopping => { stopping = true; let _ = reader_stop_tx.send(true); continue; }
        };
        let Some(batch) = batch else { break };
        for error in &batch.errors {
            warn!(%error, "undecodable ring buffer record");
            pipeline.decode_error(error);
        }
        for record in &batch.records {
            write_line(out, &pipeline.handle(record))?;
            lines += 1;
        }
        if let Some(roots) = pipeline.take_changed_watch_roots() {
            probes.set_watch_roots(&roots)?;
        }
        if Instant::now() >= next_stats {
            next_stats = Instant::now() + options.stats_interval;
            let drops = probes.drops()?;
            write_line(out, &pipeline.stats(&drops, false))?;
            lines += 1;
        }
    }
    match reader.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(RecordError::ReaderFailed(e)),
        Err(e) => return Err(RecordError::ReaderFailed(std::io::Error::other(e))),
    }
    let kernel_drops = probes.drops()?;
    let closing = pipeline.stats(&kernel_drops, true);
    let unattributed = match &closing.event {
        crate::event::Event::Stats(s) => s.unattributed,
        _ => 0,
    };
    write_line(out, &closing)?;
    out.flush().map_err(RecordError::WriteFailed)?;
    Ok(RecordSummary {
        lines: lines + 1,
        events: *pipeline.event_counts(),
        kernel_drops,
        unattributed,
        probe_stats: probes.program_stats(),
    })
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn write_line(
    out: &mut (dyn Write + Send),
    record: &crate::event::Record,
) -> Result<(), RecordError> {
    serde_json::to_writer(&mut *out, record).map_err(|e| RecordError::WriteFailed(e.into()))?;
    out.write_all(b"\n").map_err(RecordError::WriteFailed)
}
