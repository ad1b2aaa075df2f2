//! Time stamps of the driver's actions. Scenarios play at real speed: the
//! kernel's times and the API's whole seconds are one clock.

use serde::Serialize;

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One instant on the three clocks: boot time (what the agent's `boot_ns`
/// uses), monotonic, and wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Stamp {
    pub boot_ns: u64,
    pub mono_ns: u64,
    pub wall_ns: u64,
}

impl Stamp {
    pub fn now() -> Self {
        Self {
            boot_ns: clock_ns(libc::CLOCK_BOOTTIME),
            mono_ns: clock_ns(libc::CLOCK_MONOTONIC),
            wall_ns: clock_ns(libc::CLOCK_REALTIME),
        }
    }

    /// The same instant as a wall-clock time `wall_ns` (a runtime's
    /// timestamp), placed on the other clocks by their offsets now.
    pub fn from_wall_ns(wall_ns: u64) -> Self {
        let now = Self::now();
        let back = now.wall_ns.saturating_sub(wall_ns);
        let ahead = wall_ns.saturating_sub(now.wall_ns);
        Self {
            boot_ns: (now.boot_ns + ahead).saturating_sub(back),
            mono_ns: (now.mono_ns + ahead).saturating_sub(back),
            wall_ns,
        }
    }

    /// Whole Unix seconds, as the API writes its timestamps.
    pub fn api_seconds(&self) -> i64 {
        (self.wall_ns / 1_000_000_000) as i64
    }
}

/// Whole Unix seconds now, as the API stamps its objects.
pub fn api_now() -> i64 {
    Stamp::now().api_seconds()
}

/// A scenario's seconds (grace periods, probe periods, drains) as a
/// duration; negative is zero.
pub fn secs(seconds: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(seconds.max(0.0))
}

/// A scenario's seconds in whole milliseconds (for workload flags).
pub fn millis(seconds: f64) -> u64 {
    secs(seconds).as_millis() as u64
}
