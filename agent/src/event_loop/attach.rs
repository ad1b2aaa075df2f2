//! The loop's kernel side once the cgroup cache is walked: the probes
//! loaded and filtered to the kubepods roots, the pipeline, the ring buffer
//! reader on its own task; and the `stats` record.

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::info;

use super::LoopError;

use crate::{
    attribution::{Cgroup2Walker, CgroupCache},
    clock::BootClock,
    event::{Event, Record},
    join::Joiner,
    kernel::{
        loader::{LoadError, ProbeOptions, Probes},
        reader::{Batch, read_ring},
    },
    pipeline::Pipeline,
    pods::PodStore,
};

/// Probes attached and being read.
pub struct Attached {
    pub pipeline: Pipeline<Cgroup2Walker>,
    pub probes: Probes,
    /// Decoded batches from the reader (bounded).
    pub batches: mpsc::Receiver<Batch>,
    /// `true` stops the reader; it then closes `batches`.
    pub reader_stop: watch::Sender<bool>,
    pub reader: JoinHandle<std::io::Result<u64>>,
}

/// Loads and attaches the probes, points their filter at the cache's
/// kubepods roots, and starts reading the ring buffer.
pub fn attach(
    options: &ProbeOptions,
    cache: CgroupCache<Cgroup2Walker>,
) -> Result<Attached, LoopError> {
    // Before 5.11 BPF memory counts against RLIMIT_MEMLOCK: raised to
    // unlimited here, or a clear error naming the kernel-5.8 overlay. From
    // 5.11 the limit is left alone.
    crate::preflight::memlock::prepare_running_kernel().require_raised()?;
    let mut probes = Probes::load(options)?;
    for note in &probes.notes {
        info!(note, "kernel offsets");
    }
    let mut pipeline = Pipeline::new(cache, BootClock::new()?);
    probes.set_watch_roots(pipeline.watch_roots())?;
    let _ = pipeline.take_changed_watch_roots();
    info!(
        cgroups = pipeline.cache().len(),
        roots = pipeline.watch_roots().len(),
        "cgroup hierarchy walked"
    );
    let ring = probes.take_events()?;
    let logger = probes.take_logger();
    let (tx, batches) = mpsc::channel::<Batch>(64);
    let (reader_stop, stop_rx) = watch::channel(false);
    let reader = tokio::spawn(read_ring(ring, tx, stop_rx, logger));
    Ok(Attached {
        pipeline,
        probes,
        batches,
        reader_stop,
        reader,
    })
}

/// A `stats` record: kernel drops and filtered signals, pipeline counts,
/// and with a pod watch the join and pod store counters.
pub fn stats_record(
    pipeline: &mut Pipeline<Cgroup2Walker>,
    probes: &Probes,
    joiner: Option<&Joiner>,
    store: Option<&PodStore>,
    last: bool,
) -> Result<Record, LoadError> {
    let mut record = pipeline.stats(&probes.drops()?, last);
    if let Event::Stats(stats) = &mut record.event {
        stats.join = joiner.map(Joiner::counters);
        stats.pod_store = store.map(PodStore::stats);
        let filtered = probes.filtered_signals()?;
        stats.filtered_signals = filtered.by_kind();
        stats.filtered_signals_total = filtered.total();
        let mask = probes.signal_mask();
        stats.recorded_signals = (!mask.is_all()).then(|| mask.names());
    }
    Ok(record)
}
