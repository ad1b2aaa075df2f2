//! The probes' signal filter maps: the mask written before the programs
//! attach (and widened later, e.g. by a pod's stop signal), and the
//! per-CPU counters of what it left out.

use std::collections::BTreeMap;

use agent_common::{
    EventKind, FILTERED_SIGNALS_MAP, SIGNAL_MASK_MAP,
    config::{FILTER_DELIVER, FILTER_GENERATE, SIGNAL_SLOTS},
};
use aya::maps::{Array, PerCpuArray};
use lifecycle_recording::event::names::signal_name;
use tracing::debug;

use super::{LoadError, Probes};
use crate::kernel::signal_mask::SignalMask;

/// Signals of watched cgroups the mask kept out of the ring buffer since
/// the probes loaded, summed over CPUs, by signal number (index 0 unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilteredSignals {
    pub generate: [u64; SIGNAL_SLOTS as usize],
    pub deliver: [u64; SIGNAL_SLOTS as usize],
}

impl Default for FilteredSignals {
    fn default() -> Self {
        Self {
            generate: [0; SIGNAL_SLOTS as usize],
            deliver: [0; SIGNAL_SLOTS as usize],
        }
    }
}

impl FilteredSignals {
    /// Event kind name (`signal_generate`, `signal_deliver`) -> signal name
    /// -> count, non-zero entries only: the `stats` line's form.
    pub fn by_kind(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let row = |counts: &[u64; SIGNAL_SLOTS as usize]| -> BTreeMap<String, u64> {
            (1..SIGNAL_SLOTS as usize)
                .filter(|s| counts[*s] > 0)
                .map(|s| (signal_name(s as i32), counts[s]))
                .collect()
        };
        [
            (EventKind::SignalGenerate, row(&self.generate)),
            (EventKind::SignalDeliver, row(&self.deliver)),
        ]
        .into_iter()
        .filter(|(_, row)| !row.is_empty())
        .map(|(kind, row)| (kind.name().to_string(), row))
        .collect()
    }

    /// Every filtered record, both kinds.
    pub fn total(&self) -> u64 {
        self.generate.iter().chain(&self.deliver).sum()
    }
}

impl Probes {
    /// Writes the mask the programs test each watched signal against.
    pub fn set_signal_mask(&mut self, mask: SignalMask) -> Result<(), LoadError> {
        let map = self
            .ebpf
            .map_mut(SIGNAL_MASK_MAP)
            .ok_or(LoadError::MapMissing(SIGNAL_MASK_MAP))?;
        let mut array =
            Array::<_, u64>::try_from(map).map_err(|_| LoadError::MapMissing(SIGNAL_MASK_MAP))?;
        array.set(0, mask.0, 0)?;
        self.signal_mask = mask;
        debug!(%mask, "signal mask set");
        Ok(())
    }

    /// The mask in force.
    pub fn signal_mask(&self) -> SignalMask {
        self.signal_mask
    }

    /// The kernel's counters of signals left out by the mask.
    pub fn filtered_signals(&self) -> Result<FilteredSignals, LoadError> {
        let map = self
            .ebpf
            .map(FILTERED_SIGNALS_MAP)
            .ok_or(LoadError::MapMissing(FILTERED_SIGNALS_MAP))?;
        let array = PerCpuArray::<_, u64>::try_from(map)
            .map_err(|_| LoadError::MapMissing(FILTERED_SIGNALS_MAP))?;
        let mut out = FilteredSignals::default();
        for (row, counts) in [
            (FILTER_GENERATE, &mut out.generate),
            (FILTER_DELIVER, &mut out.deliver),
        ] {
            for (sig, total) in counts.iter_mut().enumerate().skip(1) {
                let index = row * SIGNAL_SLOTS + sig as u32;
                *total = array.get(&index, 0)?.iter().sum();
            }
        }
        Ok(out)
    }
}
