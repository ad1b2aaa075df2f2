//! The signal mask: which signal numbers reach the ring buffer.
//!
//! Userspace writes one `u64` before the programs attach (bit `n - 1` for
//! signal `n`). A signal of a watched cgroup whose bit is clear is not
//! written; it is only counted here, per CPU, per program and per signal
//! number, so that userspace can still say how many there were. Go's
//! SIGURG preemption is the usual case: hundreds a second per busy service.

use agent_common::config::{FILTERED_SIGNAL_SLOTS, SIGNAL_SLOTS};
use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};

/// The mask of signals written; slot 0 only.
#[map]
static SIGNAL_MASK: Array<u64> = Array::with_max_entries(1, 0);

/// Signals left out by the mask, at `row * SIGNAL_SLOTS + sig`.
#[map]
static FILTERED_SIGNALS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FILTERED_SIGNAL_SLOTS, 0);

/// Whether signal `sig` is to be written by the program of counter row
/// `row` (`FILTER_GENERATE`, `FILTER_DELIVER`); when not, it is counted.
/// Numbers outside 1..=64 are always written: the mask has no bit for them.
#[inline(always)]
pub fn kept(row: u32, sig: i32) -> bool {
    if !(1..=64).contains(&sig) {
        return true;
    }
    // A missing slot keeps everything rather than losing signals silently.
    let mask = SIGNAL_MASK.get(0).copied().unwrap_or(u64::MAX);
    if mask & (1u64 << (sig as u32 - 1)) != 0 {
        return true;
    }
    if let Some(slot) = FILTERED_SIGNALS.get_ptr_mut(row * SIGNAL_SLOTS + sig as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe { *slot += 1 };
    }
    false
}
