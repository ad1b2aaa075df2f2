//! The two kernel clocks the conversion needs.

use std::io;

use super::ClockError;

/// Reads `CLOCK_BOOTTIME` and `CLOCK_REALTIME`.
///
/// [`SystemClocks`] is the real implementation; tests substitute their own to
/// simulate NTP steps.
pub trait ClockSource: Send + Sync {
    /// Nanoseconds since boot, suspend included (what `bpf_ktime_get_boot_ns` returns).
    fn boottime_ns(&self) -> Result<u64, ClockError>;
    /// Nanoseconds since the Unix epoch, UTC (negative before 1970).
    fn realtime_ns(&self) -> Result<i128, ClockError>;
}

/// The kernel's clocks, via `clock_gettime(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClocks;

fn read_clock(id: libc::clockid_t, name: &'static str) -> Result<i128, ClockError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Err(ClockError::ClockReadFailed {
            clock: name,
            source: io::Error::last_os_error(),
        });
    }
    Ok(
        i128::from(ts.tv_sec) * i128::from(lifecycle_recording::time::NS_PER_S)
            + i128::from(ts.tv_nsec),
    )
}

impl ClockSource for SystemClocks {
    fn boottime_ns(&self) -> Result<u64, ClockError> {
        let ns = read_clock(libc::CLOCK_BOOTTIME, "CLOCK_BOOTTIME")?;
        // Boot time is never negative and fits u64 for ~584 years of uptime.
        u64::try_from(ns).map_err(|_| ClockError::ClockReadFailed {
            clock: "CLOCK_BOOTTIME",
            source: io::Error::other(format!("value {ns} ns out of range")),
        })
    }

    fn realtime_ns(&self) -> Result<i128, ClockError> {
        read_clock(libc::CLOCK_REALTIME, "CLOCK_REALTIME")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clocks_are_readable_and_sane() {
        let boot = SystemClocks.boottime_ns().expect("boottime");
        let real = SystemClocks.realtime_ns().expect("realtime");
        assert!(boot > 0);
        // After 2020-01-01: the machine's wall clock is set.
        assert!(real > 1_577_836_800 * 1_000_000_000);
        let later = SystemClocks.boottime_ns().expect("boottime");
        assert!(later >= boot, "CLOCK_BOOTTIME went backwards");
    }
}
