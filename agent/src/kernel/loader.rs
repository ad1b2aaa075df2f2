//! Loading the embedded eBPF object, filling its offsets, attaching every
//! program, and access to its maps (drop counters, watch roots, stats;
//! the signal mask and its counters in `signals`).

mod signals;

use std::path::Path;

use agent_common::{
    DROPS_MAP, EVENTS_MAP, KIND_SLOTS, KernelOffsets, MAX_WATCH_ROOTS, OFFSETS_GLOBAL,
    WATCH_ROOTS_MAP, WatchRoot,
};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::{btf::Btf, offsets, signal_mask::SignalMask, tracefs};
pub use signals::FilteredSignals;

/// The eBPF object built by `build.rs` from `agent-ebpf`.
static PROBES_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lifecycle-probes"));

/// How a program hooks into the kernel.
#[derive(Clone, Copy, Debug)]
pub enum Hook {
    /// Classic tracepoint (`category`, `name`).
    Tracepoint(&'static str, &'static str),
    /// Raw tracepoint: the `TP_PROTO` arguments, including task pointers.
    Raw(&'static str),
}

/// Every program of the object and where it attaches.
pub const PROGRAMS: &[(&str, Hook)] = &[
    ("on_signal_generate", Hook::Raw("signal_generate")),
    (
        "on_signal_deliver",
        Hook::Tracepoint("signal", "signal_deliver"),
    ),
    (
        "on_process_exec",
        Hook::Tracepoint("sched", "sched_process_exec"),
    ),
    ("on_process_fork", Hook::Raw("sched_process_fork")),
    (
        "on_process_exit",
        Hook::Tracepoint("sched", "sched_process_exit"),
    ),
    (
        "on_cgroup_mkdir",
        Hook::Tracepoint("cgroup", "cgroup_mkdir"),
    ),
    (
        "on_cgroup_rmdir",
        Hook::Tracepoint("cgroup", "cgroup_rmdir"),
    ),
    (
        "on_cgroup_attach",
        Hook::Tracepoint("cgroup", "cgroup_attach_task"),
    ),
    (
        "on_inet_sock_set_state",
        Hook::Tracepoint("sock", "inet_sock_set_state"),
    ),
];

/// What to load with.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_bytes: u32,
    /// Keep only events that touch a watched cgroup subtree (see `WatchRoot`).
    pub filter_to_watch_roots: bool,
    /// Mount tracefs at /sys/kernel/tracing if it is not mounted.
    pub mount_tracefs: bool,
    /// Signals written to the ring buffer; the rest are only counted.
    pub signal_mask: SignalMask,
}

/// The ring buffer's default size: 8 MiB.
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 8 << 20;

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            filter_to_watch_roots: true,
            mount_tracefs: true,
            signal_mask: SignalMask::lifecycle(),
        }
    }
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("ring buffer size {0} is not a power of two of at least 4096 bytes")]
    BadRingBufferSize(u32),
    #[error("tracefs is not available: {0}")]
    TracefsUnavailable(#[from] tracefs::TracefsError),
    #[error("kernel BTF is not readable: {0}")]
    BtfUnavailable(#[from] super::btf::BtfError),
    #[error("kernel offsets could not be resolved: {0}")]
    OffsetsUnresolved(#[from] offsets::OffsetsError),
    #[error("loading the eBPF object failed: {0}")]
    LoadFailed(#[from] aya::EbpfError),
    #[error("program {0} is missing from the eBPF object")]
    ProgramMissing(&'static str),
    #[error("program {program} failed to load or attach: {source}")]
    AttachFailed {
        program: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error("map {0} is missing or of the wrong type")]
    MapMissing(&'static str),
    #[error("map operation failed: {0}")]
    MapFailed(#[from] aya::maps::MapError),
}

impl LoadError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::BadRingBufferSize(_) => "bad_ring_buffer_size",
            Self::TracefsUnavailable(_) => "tracefs_unavailable",
            Self::BtfUnavailable(_) => "btf_unavailable",
            // The probes load tracepoint fields at compile-time offsets:
            // another layout needs a rebuilt agent, not a fixed node.
            Self::OffsetsUnresolved(offsets::OffsetsError::TracepointLayoutUnsupported {
                ..
            }) => "tracepoint_layout_unsupported",
            Self::OffsetsUnresolved(_) => "offsets_unresolved",
            Self::LoadFailed(_) => "load_failed",
            Self::ProgramMissing(_) => "program_missing",
            Self::AttachFailed { .. } => "attach_failed",
            Self::MapMissing(_) => "map_missing",
            Self::MapFailed(_) => "map_failed",
        }
    }
}

/// Kernel-side cost of one program, from `kernel.bpf_stats_enabled`.
#[derive(Clone, Debug)]
pub struct ProgramStats {
    pub name: &'static str,
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// The loaded and attached probes.
pub struct Probes {
    ebpf: Ebpf,
    pub offsets: KernelOffsets,
    pub notes: Vec<String>,
    signal_mask: SignalMask,
}

impl Probes {
    /// Resolves offsets, loads the object and attaches every program.
    pub fn load(options: &ProbeOptions) -> Result<Self, LoadError> {
        let size = options.ring_buffer_bytes;
        if size < 4096 || !size.is_power_of_two() {
            return Err(LoadError::BadRingBufferSize(size));
        }
        let tracefs = tracefs::ensure_tracefs(options.mount_tracefs)?;
        let btf = Btf::from_file(Path::new("/sys/kernel/btf/vmlinux"))?;
        let (mut offsets, report) = offsets::resolve_offsets(&btf, &tracefs)?;
        offsets.filter_enabled = options.filter_to_watch_roots as u32;
        offsets.wakeup_threshold_bytes = size / 4;
        let ebpf = EbpfLoader::new()
            .map_max_entries(EVENTS_MAP, size)
            .override_global(OFFSETS_GLOBAL, &offsets, true)
            .load(PROBES_OBJECT)?;
        let mut probes = Self {
            ebpf,
            offsets,
            notes: report.notes,
            signal_mask: SignalMask::ALL,
        };
        // Before any program runs, so no signal slips past the mask.
        probes.set_signal_mask(options.signal_mask)?;
        for (name, hook) in PROGRAMS {
            attach(&mut probes.ebpf, name, *hook)?;
        }
        info!(
            programs = PROGRAMS.len(),
            ring_buffer_bytes = size,
            filter = options.filter_to_watch_roots,
            signals = %options.signal_mask,
            "eBPF probes attached"
        );
        Ok(probes)
    }

    /// Takes the event ring buffer (once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or(LoadError::MapMissing(EVENTS_MAP))?;
        RingBuf::try_from(map).map_err(|_| LoadError::MapMissing(EVENTS_MAP))
    }

    /// Takes the eBPF-side log buffer, forwarded to `tracing`.
    pub fn take_logger(&mut self) -> Option<aya_log::EbpfLogger<super::ebpf_log::TracingLog>> {
        match aya_log::EbpfLogger::init_with_logger(&mut self.ebpf, super::ebpf_log::TracingLog) {
            Ok(logger) => Some(logger),
            Err(e) => {
                warn!(error = %e, "eBPF log buffer unavailable; eBPF diagnostics are not forwarded");
                None
            }
        }
    }

    /// Failed ring-buffer reservations per event kind, summed over CPUs.
    pub fn drops(&self) -> Result<[u64; KIND_SLOTS as usize], LoadError> {
        let map = self
            .ebpf
            .map(DROPS_MAP)
            .ok_or(LoadError::MapMissing(DROPS_MAP))?;
        let array =
            PerCpuArray::<_, u64>::try_from(map).map_err(|_| LoadError::MapMissing(DROPS_MAP))?;
        let mut out = [0u64; KIND_SLOTS as usize];
        for (slot, total) in out.iter_mut().enumerate() {
            *total = array.get(&(slot as u32), 0)?.iter().sum();
        }
        Ok(out)
    }

    /// Replaces the watched cgroup subtrees (at most `MAX_WATCH_ROOTS`).
    pub fn set_watch_roots(&mut self, roots: &[WatchRoot]) -> Result<(), LoadError> {
        let map = self
            .ebpf
            .map_mut(WATCH_ROOTS_MAP)
            .ok_or(LoadError::MapMissing(WATCH_ROOTS_MAP))?;
        let mut array = Array::<_, WatchRoot>::try_from(map)
            .map_err(|_| LoadError::MapMissing(WATCH_ROOTS_MAP))?;
        for slot in 0..MAX_WATCH_ROOTS {
            let root = roots.get(slot as usize).copied().unwrap_or_default();
            array.set(slot, root, 0)?;
        }
        debug!(?roots, "watch roots updated");
        Ok(())
    }

    /// Per-program run time and count (non-zero only while bpf stats are on).
    pub fn program_stats(&self) -> Vec<ProgramStats> {
        let mut out = Vec::new();
        for (name, _) in PROGRAMS {
            let Some(program) = self.ebpf.program(name) else {
                continue;
            };
            if let Ok(info) = program.info() {
                out.push(ProgramStats {
                    name,
                    run_time_ns: info.run_time().as_nanos() as u64,
                    run_count: info.run_count(),
                });
            }
        }
        out
    }
}

fn attach(ebpf: &mut Ebpf, name: &'static str, hook: Hook) -> Result<(), LoadError> {
    let program = ebpf
        .program_mut(name)
        .ok_or(LoadError::ProgramMissing(name))?;
    let failed = |source| LoadError::AttachFailed {
        program: name,
        source,
    };
    match hook {
        Hook::Tracepoint(category, event) => {
            let tp: &mut TracePoint = program.try_into().map_err(failed)?;
            tp.load().map_err(failed)?;
            tp.attach(category, event).map_err(failed)?;
        }
        Hook::Raw(event) => {
            let tp: &mut RawTracePoint = program.try_into().map_err(failed)?;
            tp.load().map_err(failed)?;
            tp.attach(event).map_err(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoint_layout_errors_have_their_own_label() {
        let layout =
            LoadError::OffsetsUnresolved(offsets::OffsetsError::TracepointLayoutUnsupported {
                event: "sock:inet_sock_set_state".into(),
                field: "newstate".into(),
                expected: "a plain field at offset 20, 4 bytes".into(),
                found: "`int newstate`: a plain field at offset 24, 4 bytes".into(),
            });
        assert_eq!(layout.label(), "tracepoint_layout_unsupported");
        assert!(layout.to_string().contains("newstate"), "{layout}");
        let missing = LoadError::OffsetsUnresolved(offsets::OffsetsError::MissingField {
            event: "signal:signal_deliver".into(),
            field: "code".into(),
        });
        assert_eq!(missing.label(), "offsets_unresolved");
    }
}
