//! Converting `CLOCK_BOOTTIME` timestamps to Unix wall-clock time.
//!
//! Wall time = boot time + (REALTIME - BOOTTIME). The offset is not constant:
//! NTP steps move it at once and slewing moves it gradually, so it is sampled
//! again whenever the last sample is older than the configured interval.
//!
//! One sample reads BOOTTIME, REALTIME, BOOTTIME in a row, several times. The
//! triple whose two BOOTTIME reads are closest (least disturbed by preemption
//! or interrupts) wins, and its REALTIME read is paired with the midpoint of
//! its BOOTTIME reads; half the bracket is the sample's uncertainty.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::ClockError;
use super::source::{ClockSource, SystemClocks};

/// How often the offset is re-sampled unless configured otherwise.
pub const DEFAULT_RESAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Triples read per sample.
const TRIPLES_PER_SAMPLE: usize = 5;

/// One estimate of `CLOCK_REALTIME - CLOCK_BOOTTIME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OffsetSample {
    /// Wall-clock ns minus boot-clock ns.
    pub offset_ns: i128,
    /// Half the BOOTTIME bracket around the REALTIME read.
    pub uncertainty_ns: u64,
    /// Boot time the sample was taken at.
    pub sampled_at_boot_ns: u64,
}

/// Picks the triple `(boot_before, real, boot_after)` with the narrowest
/// bracket and turns it into a sample; `None` for an empty slice.
pub fn tightest_offset(triples: &[(u64, i128, u64)]) -> Option<OffsetSample> {
    let &(before, real, after) = triples
        .iter()
        .min_by_key(|(before, _, after)| after.saturating_sub(*before))?;
    let width = after.saturating_sub(before);
    let mid = before + width / 2;
    Some(OffsetSample {
        offset_ns: real - i128::from(mid),
        uncertainty_ns: width.div_ceil(2),
        sampled_at_boot_ns: mid,
    })
}

/// Converts boot-clock nanoseconds to Unix nanoseconds (see the module docs).
///
/// Shareable between threads: conversions take `&self`.
pub struct BootClock<S: ClockSource = SystemClocks> {
    source: S,
    resample_every_ns: u64,
    last: Mutex<OffsetSample>,
}

impl BootClock<SystemClocks> {
    /// Reads the kernel clocks, re-sampling every [`DEFAULT_RESAMPLE_INTERVAL`].
    pub fn new() -> Result<Self, ClockError> {
        Self::with_source(SystemClocks, DEFAULT_RESAMPLE_INTERVAL)
    }
}

impl<S: ClockSource> BootClock<S> {
    /// Takes a first sample from `source`; fails if its clocks cannot be read.
    pub fn with_source(source: S, resample_interval: Duration) -> Result<Self, ClockError> {
        let first = sample(&source)?;
        tracing::debug!(
            offset_ns = %first.offset_ns,
            uncertainty_ns = first.uncertainty_ns,
            "boot clock offset sampled"
        );
        Ok(Self {
            source,
            resample_every_ns: u64::try_from(resample_interval.as_nanos()).unwrap_or(u64::MAX),
            last: Mutex::new(first),
        })
    }

    /// Current `CLOCK_BOOTTIME`, comparable to event timestamps.
    pub fn now_boot_ns(&self) -> Result<u64, ClockError> {
        self.source.boottime_ns()
    }

    /// Current wall-clock time, by the same conversion as event timestamps
    /// (so it orders consistently with them).
    ///
    /// If the boot clock cannot be read, the source's wall clock is used
    /// directly, and if that fails too, the standard library's.
    pub fn now_unix_ns(&self) -> i128 {
        match self.source.boottime_ns() {
            Ok(boot) => self.to_unix_ns(boot),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read CLOCK_BOOTTIME; using the wall clock directly");
                self.source
                    .realtime_ns()
                    .unwrap_or_else(|_| std_realtime_ns())
            }
        }
    }

    /// Unix nanoseconds (UTC) for a boot-clock timestamp.
    ///
    /// Uses the current offset, re-sampled first if it is stale. If the clocks
    /// cannot be read the previous offset is kept (and a warning logged).
    pub fn to_unix_ns(&self, boot_ns: u64) -> i128 {
        i128::from(boot_ns) + self.current_offset().offset_ns
    }

    /// The offset in use, re-sampled first if stale.
    pub fn current_offset(&self) -> OffsetSample {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = match self.source.boottime_ns() {
            Ok(now) => now,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read CLOCK_BOOTTIME; keeping the last offset");
                return *last;
            }
        };
        if now.saturating_sub(last.sampled_at_boot_ns) >= self.resample_every_ns {
            match sample(&self.source) {
                Ok(fresh) => {
                    let moved = fresh.offset_ns - last.offset_ns;
                    if moved.unsigned_abs() > 1_000_000 {
                        tracing::info!(
                            moved_ns = %moved,
                            offset_ns = %fresh.offset_ns,
                            "wall clock moved relative to the boot clock"
                        );
                    }
                    *last = fresh;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot re-sample the clock offset; keeping the last one");
                }
            }
        }
        *last
    }

    /// Samples the offset now, whatever the age of the last sample.
    pub fn resample(&self) -> Result<OffsetSample, ClockError> {
        let fresh = sample(&self.source)?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(fresh)
    }
}

fn std_realtime_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

fn sample<S: ClockSource>(source: &S) -> Result<OffsetSample, ClockError> {
    let mut triples = [(0u64, 0i128, 0u64); TRIPLES_PER_SAMPLE];
    for triple in &mut triples {
        let before = source.boottime_ns()?;
        let real = source.realtime_ns()?;
        let after = source.boottime_ns()?;
        *triple = (before, real, after);
    }
    tightest_offset(&triples).ok_or_else(|| ClockError::ClockReadFailed {
        clock: "CLOCK_REALTIME",
        source: std::io::Error::other("no samples taken"),
    })
}

#[cfg(test)]
mod tests;
