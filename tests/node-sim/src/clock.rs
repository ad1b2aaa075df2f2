//! Time stamps of the driver's actions and the scenario time scale.

use std::time::Duration;

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

    /// Whole Unix seconds, as the API writes its timestamps.
    pub fn api_seconds(&self) -> i64 {
        (self.wall_ns / 1_000_000_000) as i64
    }
}

/// Converts the scenario's seconds (Kubernetes time: grace periods, probe
/// periods, hook sleeps) into real time on this machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// `factor` real seconds per scenario second (0.05: a 30 s grace runs
    /// in 1.5 s). Clamped to (0, 1].
    pub fn new(factor: f64) -> Self {
        Self(if factor > 0.0 { factor.min(1.0) } else { 1.0 })
    }

    pub fn factor(&self) -> f64 {
        self.0
    }

    /// Real duration of `seconds` scenario seconds.
    pub fn real(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.0).max(0.0))
    }

    /// Real milliseconds of `seconds` scenario seconds (for workload flags).
    pub fn real_ms(&self, seconds: f64) -> u64 {
        self.real(seconds).as_millis() as u64
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        Self::new(0.05)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_kubernetes_seconds() {
        let scale = TimeScale::new(0.05);
        assert_eq!(scale.real(30.0), Duration::from_millis(1500));
        assert_eq!(scale.real_ms(2.0), 100);
        assert_eq!(TimeScale::new(0.0).factor(), 1.0);
        assert_eq!(TimeScale::new(7.0).factor(), 1.0);
    }

    #[test]
    fn stamps_move_forward() {
        let a = Stamp::now();
        let b = Stamp::now();
        assert!(b.boot_ns >= a.boot_ns && b.mono_ns >= a.mono_ns && b.wall_ns >= a.wall_ns);
        assert_eq!(
            Stamp {
                wall_ns: 1_795_305_424_999_999_999,
                ..a
            }
            .api_seconds(),
            1_795_305_424
        );
    }
}
