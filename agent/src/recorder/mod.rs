//! `lifecycle-agent record`: the attributed kernel event stream as NDJSON,
//! with, when a pod watch is configured, the pod events of this node and
//! the Kubernetes names of every container in the same stream. The loop is
//! [`crate::event_loop`]'s; this module is its NDJSON consumer.

mod sink;

use std::{io::Write, path::PathBuf, time::Duration};

use agent_common::EventKind;
use tokio::sync::watch;

use crate::{
    attribution::{CacheConfig, Cgroup2Walker, CgroupCache},
    event::Record,
    event_loop::{Consumer, EventLoop, LoopError, LoopOptions, LoopSummary},
};

use sink::Sink;

#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// Probes, pod watch, stats interval, probe statistics.
    pub event_loop: LoopOptions,
    /// Stop after this long (`None`: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Created (empty) once the probes are attached and reading has begun.
    pub ready_file: Option<PathBuf>,
    pub cache: CacheConfig,
}

/// What a finished recording counted.
#[derive(Debug, Default)]
pub struct RecordSummary {
    pub lines: u64,
    /// The loop's counts.
    pub counts: LoopSummary,
}

impl RecordSummary {
    /// One line per kind with events or drops, for stderr at exit.
    pub fn describe(&self) -> String {
        let mut out = format!("recorded {} lines", self.lines);
        for kind in EventKind::ALL {
            let c = &self.counts;
            let (n, d) = (c.events[kind as usize], c.kernel_drops[kind as usize]);
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
            self.counts.kernel_drops.iter().sum::<u64>(),
            self.counts.unattributed
        ));
        let filtered = &self.counts.filtered_signals;
        out.push_str(&format!(
            "\n  signals filtered in kernel: {} (recorded: {})",
            filtered.total(),
            self.counts.signal_mask
        ));
        for (kind, by_signal) in filtered.by_kind() {
            let counts: Vec<String> = by_signal.iter().map(|(s, n)| format!("{s} {n}")).collect();
            out.push_str(&format!("\n    {kind:<16} {}", counts.join(", ")));
        }
        for probe in self.counts.probe_stats.iter().filter(|p| p.run_count > 0) {
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
) -> Result<RecordSummary, LoopError> {
    let walker = Cgroup2Walker::discover()?;
    let mut cache = CgroupCache::new(options.cache.clone(), walker);
    cache.populate()?;
    let mut event_loop = EventLoop::start(&options.event_loop, cache).await?;
    if let Some(path) = &options.ready_file {
        std::fs::write(path, b"").map_err(LoopError::WriteFailed)?;
    }
    let mut sink = Sink::new(out);
    let duration = options.duration;
    let until_stopped = async move {
        let deadline = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => {}
            () = deadline => {}
        }
    };
    // A reader that closes on its own has failed: `finish` reports how.
    event_loop.run(&mut sink, until_stopped).await?;
    let mut counts = event_loop.finish(&mut sink).await?;
    if let Some(error) = counts.reader_error.take() {
        return Err(error);
    }
    Ok(RecordSummary {
        lines: sink.lines(),
        counts,
    })
}

impl Consumer for Sink<'_> {
    fn record(&mut self, record: Record) -> Result<(), LoopError> {
        self.write(record)
    }

    fn flush(&mut self) -> Result<(), LoopError> {
        Sink::flush(self)
    }

    fn tick(&mut self, _now_unix_ns: i64, _pods_synced: Option<bool>) -> Result<(), LoopError> {
        // Records the join released go out now, not with the next batch.
        Sink::flush(self)
    }
}
