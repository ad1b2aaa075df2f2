//! Boot clock -> wall clock conversion.
//!
//! The eBPF programs stamp events with `bpf_ktime_get_boot_ns()`, i.e.
//! `CLOCK_BOOTTIME`: nanoseconds since boot, suspend included, never stepped.
//! Recordings want UTC wall-clock time. [`BootClock`] keeps a fresh estimate
//! of `CLOCK_REALTIME - CLOCK_BOOTTIME` and adds it to kernel timestamps;
//! [`format_rfc3339_nanos`] renders the result.
//!
//! * [`source`]: the clocks being read, behind a trait so tests can script them;
//! * [`boot`]: offset sampling and conversion;
//! * [`rfc3339`]: fixed-width RFC 3339 formatting.

pub mod boot;
pub mod source;

use std::io;

use thiserror::Error;

pub use boot::{BootClock, DEFAULT_RESAMPLE_INTERVAL, OffsetSample, tightest_offset};
pub use lifecycle_recording::time::{format_rfc3339_nanos, try_format_rfc3339_nanos};
pub use source::{ClockSource, SystemClocks};

/// Failures reading clocks or rendering timestamps.
#[derive(Debug, Error)]
pub enum ClockError {
    #[error("clock_gettime({clock}) failed: {source}")]
    ClockReadFailed {
        clock: &'static str,
        source: io::Error,
    },
}
