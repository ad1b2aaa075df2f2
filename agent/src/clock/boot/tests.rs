//! Offset sampling and conversion, against the real clocks and a scripted one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use super::*;

const SEC: u64 = 1_000_000_000;

/// Boot clock and wall-clock offset set by the test; optionally failing.
#[derive(Clone, Default)]
struct ScriptedClocks {
    boot_ns: Arc<AtomicU64>,
    offset_ns: Arc<AtomicI64>,
    fail: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
}

impl ScriptedClocks {
    fn new(boot_ns: u64, offset_ns: i64) -> Self {
        let clocks = Self::default();
        clocks.boot_ns.store(boot_ns, Ordering::SeqCst);
        clocks.offset_ns.store(offset_ns, Ordering::SeqCst);
        clocks
    }
    fn advance(&self, ns: u64) {
        self.boot_ns.fetch_add(ns, Ordering::SeqCst);
    }
    fn step_wall_clock(&self, by_ns: i64) {
        self.offset_ns.fetch_add(by_ns, Ordering::SeqCst);
    }
    fn check(&self, clock: &'static str) -> Result<(), ClockError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(ClockError::ClockReadFailed {
                clock,
                source: std::io::Error::other("scripted failure"),
            });
        }
        Ok(())
    }
}

impl ClockSource for ScriptedClocks {
    fn boottime_ns(&self) -> Result<u64, ClockError> {
        self.check("boot")?;
        Ok(self.boot_ns.load(Ordering::SeqCst))
    }
    fn realtime_ns(&self) -> Result<i128, ClockError> {
        self.check("real")?;
        let boot = i128::from(self.boot_ns.load(Ordering::SeqCst));
        Ok(boot + i128::from(self.offset_ns.load(Ordering::SeqCst)))
    }
}

fn system_now_ns() -> i128 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i128::try_from(since.as_nanos()).expect("fits")
}

#[test]
fn converted_now_is_within_1ms_of_system_time() {
    let clock = BootClock::new().expect("kernel clocks");
    let boot = clock.now_boot_ns().expect("boottime");
    let converted = clock.to_unix_ns(boot);
    let system = system_now_ns();
    let diff = (converted - system).abs();
    assert!(
        diff < 1_000_000,
        "converted {converted} vs system {system}: {diff} ns apart"
    );
    assert!(clock.current_offset().uncertainty_ns < 1_000_000);
}

#[test]
fn tightest_triple_wins_and_uses_the_midpoint() {
    let triples = [
        (1_000, 5_000_400, 1_900),
        (2_000, 5_001_100, 2_200), // narrowest: width 200, midpoint 2_100
        (3_000, 5_003_000, 3_500),
    ];
    let sample = tightest_offset(&triples).expect("non-empty");
    assert_eq!(sample.offset_ns, 5_001_100 - 2_100);
    assert_eq!(sample.uncertainty_ns, 100);
    assert_eq!(sample.sampled_at_boot_ns, 2_100);
    assert_eq!(tightest_offset(&[]), None);
}

#[test]
fn resamples_after_the_interval_and_follows_a_step() {
    let clocks = ScriptedClocks::new(100 * SEC, 1_700_000_000 * SEC as i64);
    let clock = BootClock::with_source(clocks.clone(), Duration::from_secs(1)).expect("clock");
    let event = 100 * SEC + 5;
    assert_eq!(clock.to_unix_ns(event), 1_700_000_100 * i128::from(SEC) + 5);

    // NTP steps the wall clock forward by 2.5 s.
    clocks.step_wall_clock(2_500_000_000);
    clocks.advance(SEC / 2);
    assert_eq!(
        clock.to_unix_ns(event),
        1_700_000_100 * i128::from(SEC) + 5,
        "inside the interval the old offset is still used"
    );
    clocks.advance(SEC / 2);
    assert_eq!(
        clock.to_unix_ns(event),
        1_700_000_102 * i128::from(SEC) + 500_000_005
    );
    assert_eq!(clock.current_offset().sampled_at_boot_ns, 101 * SEC);

    // A backwards step is followed too.
    clocks.step_wall_clock(-10 * SEC as i64);
    clocks.advance(SEC);
    assert_eq!(
        clock.to_unix_ns(event),
        1_700_000_092 * i128::from(SEC) + 500_000_005
    );
}

#[test]
fn explicit_resample_ignores_the_interval() {
    let clocks = ScriptedClocks::new(SEC, 0);
    let clock = BootClock::with_source(clocks.clone(), Duration::from_secs(3600)).expect("clock");
    clocks.step_wall_clock(42);
    assert_eq!(clock.to_unix_ns(SEC), i128::from(SEC));
    assert_eq!(clock.resample().expect("resample").offset_ns, 42);
    assert_eq!(clock.to_unix_ns(SEC), i128::from(SEC) + 42);
}

#[test]
fn failing_clock_keeps_the_last_offset() {
    let clocks = ScriptedClocks::new(SEC, 7);
    let clock = BootClock::with_source(clocks.clone(), Duration::from_secs(1)).expect("clock");
    clocks.fail.store(true, Ordering::SeqCst);
    clocks.advance(10 * SEC);
    assert_eq!(clock.to_unix_ns(SEC), i128::from(SEC) + 7);
    assert!(clock.now_boot_ns().is_err());
    assert!(clock.resample().is_err());
    assert!(BootClock::with_source(clocks, Duration::from_secs(1)).is_err());
}

#[test]
fn fresh_offset_does_not_reread_every_triple() {
    let clocks = ScriptedClocks::new(SEC, 0);
    let clock = BootClock::with_source(clocks.clone(), Duration::from_secs(1)).expect("clock");
    let after_first_sample = clocks.reads.load(Ordering::SeqCst);
    for _ in 0..10 {
        clock.to_unix_ns(SEC);
    }
    // One staleness check per conversion, no re-sampling.
    assert_eq!(clocks.reads.load(Ordering::SeqCst), after_first_sample + 10);
}

#[test]
fn now_unix_ns_matches_system_time_and_survives_a_broken_boot_clock() {
    let clock = BootClock::new().expect("kernel clocks");
    let diff = (clock.now_unix_ns() - system_now_ns()).abs();
    assert!(diff < 1_000_000, "{diff} ns apart");

    let clocks = ScriptedClocks::new(5 * SEC, 1_000 * SEC as i64);
    let clock = BootClock::with_source(clocks.clone(), Duration::from_secs(1)).expect("clock");
    assert_eq!(clock.now_unix_ns(), 1_005 * i128::from(SEC));
    clocks.fail.store(true, Ordering::SeqCst);
    let diff = (clock.now_unix_ns() - system_now_ns()).abs();
    assert!(
        diff < 1_000_000,
        "last resort is the system clock: {diff} ns apart"
    );
}
