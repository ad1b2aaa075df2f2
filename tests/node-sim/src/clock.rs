//! Time stamps of the driver's actions, the scenario time scale, and the
//! cluster's clock that runs at scenario speed.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

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

const NS_PER_S: u64 = 1_000_000_000;

/// The simulated cluster's clock: Kubernetes time runs at scenario speed
/// from `origin` on, like the kubelet's timers. The API's whole-second
/// timestamps (creation, status writes, deletion requests) are read from
/// it, so that a 30 s grace period is 30 of its seconds between
/// `deletionTimestamp − grace` and `deletionTimestamp`, and an API second
/// is one scenario second (rule A1's precision), not 20.
///
/// [`Self::to_scenario_time`] puts a recording made meanwhile on the same
/// clock, so that audits judging real seconds see what a kubelet running at
/// scenario speed would have produced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScenarioClock {
    /// Where real and scenario time coincide.
    pub origin: Stamp,
    pub scale: f64,
}

impl ScenarioClock {
    /// Starts now.
    pub fn start(scale: TimeScale) -> Self {
        Self {
            origin: Stamp::now(),
            scale: scale.factor(),
        }
    }

    /// `ns` of a real clock whose value at the origin was `origin`, on the
    /// scenario clock: stretched by `1 / scale` after the origin, unchanged
    /// before it (both sides stay ordered).
    fn stretch(&self, ns: u64, origin: u64) -> u64 {
        match ns.checked_sub(origin) {
            Some(since) => origin + (since as f64 / self.scale).round() as u64,
            None => ns,
        }
    }

    /// A real wall-clock instant (Unix ns) on the scenario clock.
    pub fn wall_ns(&self, real_wall_ns: u64) -> u64 {
        self.stretch(real_wall_ns, self.origin.wall_ns)
    }

    /// A real boot-clock instant on the scenario clock.
    pub fn boot_ns(&self, real_boot_ns: u64) -> u64 {
        self.stretch(real_boot_ns, self.origin.boot_ns)
    }

    /// The API's whole Unix second at `at` (what the kubelet writes).
    pub fn api_seconds(&self, at: Stamp) -> i64 {
        (self.wall_ns(at.wall_ns) / NS_PER_S) as i64
    }

    /// The API's whole Unix second now.
    pub fn api_now(&self) -> i64 {
        self.api_seconds(Stamp::now())
    }

    /// Puts one line of a `lifecycle-agent record` recording made during
    /// the scenario on this clock: the agent's wall-clock times (`time_ns`,
    /// `time`, `observed_ns`) and boot-clock times (`boot_ns`, processes'
    /// `start_ns`) are stretched; the API's seconds in `pod` lines already
    /// are the cluster's. Everything else is left as it is.
    pub fn to_scenario_time(&self, record: &mut Value) {
        self.stretch_fields(record);
        if let Some(ns) = record.get("time_ns").and_then(Value::as_u64) {
            record["time"] = Value::String(rfc3339_ns(ns));
        }
    }

    fn stretch_fields(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, field) in map.iter_mut() {
                    match (key.as_str(), field.as_u64()) {
                        ("time_ns" | "observed_ns", Some(ns)) => *field = self.wall_ns(ns).into(),
                        ("boot_ns" | "start_ns", Some(ns)) => *field = self.boot_ns(ns).into(),
                        _ => self.stretch_fields(field),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.stretch_fields(v)),
            _ => {}
        }
    }
}

/// RFC3339 UTC with nine fractional digits, as the recording writes `time`.
fn rfc3339_ns(unix_ns: u64) -> String {
    let (secs, nanos) = (unix_ns / NS_PER_S, unix_ns % NS_PER_S);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
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

    #[test]
    fn the_cluster_clock_runs_at_scenario_speed() {
        let origin = Stamp {
            boot_ns: 5 * NS_PER_S,
            mono_ns: 4 * NS_PER_S,
            wall_ns: 1_795_305_424 * NS_PER_S + 900_000_000,
        };
        let clock = ScenarioClock {
            origin,
            scale: 0.05,
        };
        let later = |ms: u64| Stamp {
            boot_ns: origin.boot_ns + ms * 1_000_000,
            mono_ns: origin.mono_ns + ms * 1_000_000,
            wall_ns: origin.wall_ns + ms * 1_000_000,
        };
        // 1.5 s of real time are 30 scenario seconds.
        assert_eq!(
            clock.wall_ns(later(1_500).wall_ns),
            origin.wall_ns + 30 * NS_PER_S
        );
        assert_eq!(clock.boot_ns(later(1_500).boot_ns), 35 * NS_PER_S);
        assert_eq!(clock.api_seconds(origin), 1_795_305_424);
        // 4 ms real are 80 ms: still the same second; 10 ms are 200 ms.
        assert_eq!(clock.api_seconds(later(4)), 1_795_305_424);
        assert_eq!(clock.api_seconds(later(10)), 1_795_305_425);
        // 100 ms later the real second moved by one, the cluster's by two.
        assert_eq!(later(100).api_seconds(), 1_795_305_425);
        assert_eq!(clock.api_seconds(later(100)), 1_795_305_426);
        // Before the origin nothing moves.
        assert_eq!(clock.boot_ns(NS_PER_S), NS_PER_S);
    }

    #[test]
    fn recordings_are_put_on_the_cluster_clock() {
        let origin = Stamp {
            boot_ns: 100 * NS_PER_S,
            mono_ns: 0,
            wall_ns: 1_795_305_400 * NS_PER_S,
        };
        let clock = ScenarioClock { origin, scale: 0.5 };
        let mut exec = serde_json::json!({
            "seq": 3, "time": "x", "time_ns": 1_795_305_401_000_000_000_u64,
            "boot_ns": 101_000_000_000_u64, "type": "process_exec",
            "process": {"pid": 7, "start_ns": 100_500_000_000_u64, "cgroup_id": 12},
            "parent_pid": 1
        });
        clock.to_scenario_time(&mut exec);
        assert_eq!(exec["time_ns"], 1_795_305_402_000_000_000_u64);
        assert_eq!(exec["time"], "2026-11-21T23:56:42.000000000Z");
        assert_eq!(exec["boot_ns"], 102_000_000_000_u64);
        assert_eq!(exec["process"]["start_ns"], 101_000_000_000_u64);
        assert_eq!(
            (exec["process"]["pid"].clone(), exec["seq"].clone()),
            (7.into(), 3.into())
        );
        let mut pod = serde_json::json!({
            "time_ns": 1_795_305_400_250_000_000_u64, "observed_ns": 1_795_305_400_250_000_000_u64,
            "api_time_s": 1_795_305_400, "type": "pod"
        });
        clock.to_scenario_time(&mut pod);
        assert_eq!(pod["observed_ns"], 1_795_305_400_500_000_000_u64);
        assert_eq!(pod["api_time_s"], 1_795_305_400, "already the cluster's");
        assert_eq!(
            rfc3339_ns(951_782_400 * NS_PER_S + 5),
            "2000-02-29T00:00:00.000000005Z"
        );
    }
}
