//! A deliberately tiny ring buffer overfilled while the reader is frozen:
//! what the recording holds plus what the kernel counted as dropped must be
//! exactly what the workload generated. It holds the kernel lock like every
//! test of this binary, so no other test adds events to the same counters.

use std::process::{Command, Stdio};

use lifecycle_testkit::{Driver, FakePod, Recording, spawn_in, workload_path};
use serde_json::Value;

use crate::support::agent::AGENT;
use crate::support::kernel::exclusive_blocking;

const SIGNALS: u64 = 5_000;
const SIGUSR1: i64 = 10;

#[test]
fn delivered_plus_dropped_equals_generated() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let mut pod = FakePod::create(Driver::Systemd);
    let container = pod.add_container();
    let recording = Recording::start(AGENT.as_ref(), &["--ring-buffer-bytes", "4096"]);

    // Freeze the agent so nothing drains the 4 KiB ring during the storm.
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(recording.pid() as i32, libc::SIGSTOP) },
        0
    );
    let mut cmd = Command::new(workload_path());
    cmd.args(["signal-storm", &SIGNALS.to_string()])
        .stdout(Stdio::null());
    let storm = spawn_in(&container.dir, &mut cmd);
    let storm_pid = storm.id() as u64;
    assert!(storm.wait_with_output().expect("storm").status.success());
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::kill(recording.pid() as i32, libc::SIGCONT) },
        0
    );
    let records = recording.stop();

    let count = |kind: &str, pred: &dyn Fn(&Value) -> bool| {
        records
            .iter()
            .filter(|r| r["type"] == kind && pred(r))
            .count() as u64
    };
    let stats = records.last().expect("closing stats");
    assert_eq!(stats["last"], true);
    let dropped = |kind: &str| stats["kernel_drops"][kind].as_u64().expect("drop counter");

    // signal_generate: SIGNALS x SIGUSR1 to itself; its SIGCHLD to its
    // parent at exit is outside the default signal mask, counted in the
    // kernel and never reserved, so it is no drop.
    let generated = count("signal_generate", &|r| r["sender"]["pid"] == storm_pid);
    let usr1 = count("signal_generate", &|r| {
        r["sender"]["pid"] == storm_pid && r["signal"] == SIGUSR1
    });
    assert_eq!(generated, usr1, "only the storm's own SIGUSR1s");
    assert_eq!(generated + dropped("signal_generate"), SIGNALS);
    assert!(
        stats["filtered_signals"]["signal_generate"]["SIGCHLD"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "the storm's SIGCHLD counted as filtered: {stats}"
    );
    // signal_deliver: each SIGUSR1 is delivered to its handler once.
    let delivered = count("signal_deliver", &|r| r["process"]["pid"] == storm_pid);
    assert_eq!(delivered + dropped("signal_deliver"), SIGNALS);
    // The buffer really overflowed, and the counters are exported in the stream.
    assert!(
        dropped("signal_generate") > SIGNALS / 2,
        "expected most signals dropped: {stats}"
    );
    assert_eq!(
        stats["kernel_drops_total"].as_u64().unwrap(),
        stats["kernel_drops"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    );
}
