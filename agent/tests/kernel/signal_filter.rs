//! The probes' signal mask on the real kernel: a process in a kubelet-style
//! container sends a sibling SIGURG storms and a few lifecycle signals.
//! With the default mask only the lifecycle signals are recorded and the
//! kernel counts each SIGURG, generated and delivered, exactly; with
//! `--all-signals` every one is recorded and nothing is counted.

use std::{
    io::{BufRead, BufReader},
    os::fd::AsRawFd,
    process::{Child, ChildStdout, Command, Stdio},
};

use lifecycle_testkit::{Driver, FakeContainer, FakePod, Recording, spawn_in, workload_path};
use serde_json::Value;

use crate::support::agent::AGENT;
use crate::support::kernel::exclusive_blocking;

/// SIGURGs sent; lifecycle signals (SIGUSR2) sent, then one SIGTERM.
const URGS: u64 = 300;
const USR2S: u64 = 7;
const SIGURG: u64 = 23;
const SIGUSR2: u64 = 12;
const SIGTERM: u64 = 15;

/// The counts below are node-wide (every watched cgroup): no node-sim
/// scenario may run its Go runtime (runc) meanwhile.
struct ScenarioLock {
    _file: std::fs::File,
}

impl ScenarioLock {
    fn take() -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/scenario.lock")
            .expect("open /tmp/scenario.lock");
        // SAFETY: flock(2) on a descriptor we own; released when it closes.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
        Self { _file: file }
    }
}

/// What one exchange left: the recording, the receiver and sender pids,
/// and how many SIGURG and SIGUSR2 the receiver's handlers ran.
struct Exchange {
    records: Vec<Value>,
    receiver: u64,
    sender: u64,
    urg_caught: u64,
    usr2_caught: u64,
}

fn start_receiver(container: &FakeContainer) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(workload_path());
    cmd.args(["catch", &format!("{SIGURG},{SIGUSR2}")])
        .stdout(Stdio::piped());
    let mut child = spawn_in(&container.dir, &mut cmd);
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    assert_eq!(line.trim(), "ready");
    (child, out)
}

fn exchange(agent_args: &[&str]) -> Exchange {
    let mut pod = FakePod::create(Driver::Systemd);
    let container = pod.add_container();
    let recording = Recording::start(AGENT.as_ref(), agent_args);
    let (mut receiver, mut receiver_out) = start_receiver(&container);
    let pid = receiver.id().to_string();
    let mut cmd = Command::new(workload_path());
    cmd.args([
        "send",
        &pid,
        "23",
        &URGS.to_string(),
        "12",
        &USR2S.to_string(),
    ])
    .args(["15", "1"])
    .stdout(Stdio::null());
    let sender = spawn_in(&container.dir, &mut cmd);
    let sender_pid = sender.id() as u64;
    assert!(sender.wait_with_output().expect("sender").status.success());
    let mut caught = String::new();
    receiver_out.read_line(&mut caught).expect("caught line");
    assert!(receiver.wait().expect("receiver").success());
    let count = |sig: u64| -> u64 {
        caught
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{sig}=")))
            .map_or(0, |n| n.parse().expect("count"))
    };
    Exchange {
        records: recording.stop(),
        receiver: receiver.id() as u64,
        sender: sender_pid,
        urg_caught: count(SIGURG),
        usr2_caught: count(SIGUSR2),
    }
}

impl Exchange {
    /// Generated records from the sender to the receiver of `sig`.
    fn generated(&self, sig: u64) -> u64 {
        self.records
            .iter()
            .filter(|r| r["type"] == "signal_generate" && r["signal"] == sig)
            .filter(|r| r["sender"]["pid"] == self.sender && r["target"]["pid"] == self.receiver)
            .count() as u64
    }

    /// Delivered records of `sig` in the receiver.
    fn delivered(&self, sig: u64) -> u64 {
        self.records
            .iter()
            .filter(|r| r["type"] == "signal_deliver" && r["signal"] == sig)
            .filter(|r| r["process"]["pid"] == self.receiver)
            .count() as u64
    }

    fn closing_stats(&self) -> &Value {
        let stats = self.records.last().expect("closing stats");
        assert_eq!(stats["last"], true, "{stats}");
        stats
    }
}

#[test]
fn default_mask_counts_sigurg_in_the_kernel_and_records_the_rest() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let _scenarios = ScenarioLock::take();
    let x = exchange(&[]);
    assert!(x.urg_caught > 0 && x.usr2_caught > 0, "handlers ran");

    // Not one SIGURG crossed the ring buffer, summarized or not.
    assert_eq!(x.generated(SIGURG) + x.delivered(SIGURG), 0);
    assert!(
        !x.records
            .iter()
            .any(|r| r["type"] == "signal_summary" && r["signal"] == SIGURG),
        "no SIGURG summary"
    );
    // Every lifecycle signal did, generated once per kill and delivered as
    // often as the receiver's handler ran.
    assert_eq!(x.generated(SIGUSR2), USR2S);
    assert_eq!(x.generated(SIGTERM), 1);
    assert_eq!(x.delivered(SIGUSR2), x.usr2_caught);
    assert_eq!(x.delivered(SIGTERM), 1);

    // The kernel counted them: each kill once, each handler run once.
    let stats = x.closing_stats();
    let filtered = &stats["filtered_signals"];
    assert_eq!(filtered["signal_generate"]["SIGURG"], URGS, "{stats}");
    assert_eq!(
        filtered["signal_deliver"]["SIGURG"], x.urg_caught,
        "{stats}"
    );
    for kind in ["signal_generate", "signal_deliver"] {
        for sig in ["SIGUSR2", "SIGTERM"] {
            assert!(filtered[kind][sig].is_null(), "{kind} {sig}: {stats}");
        }
    }
    let total: u64 = filtered
        .as_object()
        .unwrap()
        .values()
        .flat_map(|by| by.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(stats["filtered_signals_total"], total);
    let recorded = stats["recorded_signals"].as_array().expect("the mask");
    assert_eq!(recorded.len(), 10, "{stats}");
    assert!(recorded.contains(&Value::from("SIGWINCH")));
    assert!(!recorded.contains(&Value::from("SIGURG")));
}

#[test]
fn all_signals_records_every_sigurg_and_counts_none() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let _scenarios = ScenarioLock::take();
    let x = exchange(&["--all-signals"]);
    assert!(x.urg_caught > 0, "handler ran");

    // SIGURG between two processes is no housekeeping: written one by one.
    assert_eq!(x.generated(SIGURG), URGS);
    assert_eq!(x.delivered(SIGURG), x.urg_caught);
    assert_eq!(x.generated(SIGUSR2), USR2S);
    assert_eq!(x.generated(SIGTERM), 1);
    assert_eq!(x.delivered(SIGUSR2), x.usr2_caught);

    let stats = x.closing_stats();
    assert!(stats["filtered_signals"].is_null(), "{stats}");
    assert!(stats["filtered_signals_total"].is_null(), "{stats}");
    assert!(stats["recorded_signals"].is_null(), "{stats}");
}

#[test]
fn a_signals_list_keeps_what_it_names() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let _scenarios = ScenarioLock::take();
    // SIGUSR2 left out, SIGURG named by number.
    let x = exchange(&["--signals", "TERM,23"]);
    assert_eq!(x.generated(SIGURG), URGS);
    assert_eq!(x.generated(SIGUSR2), 0);
    assert_eq!(x.generated(SIGTERM), 1);
    let stats = x.closing_stats();
    let filtered = &stats["filtered_signals"];
    assert_eq!(filtered["signal_generate"]["SIGUSR2"], USR2S, "{stats}");
    assert_eq!(
        filtered["signal_deliver"]["SIGUSR2"], x.usr2_caught,
        "{stats}"
    );
    assert!(filtered["signal_generate"]["SIGURG"].is_null(), "{stats}");
    assert_eq!(
        stats["recorded_signals"],
        serde_json::json!(["SIGTERM", "SIGURG"])
    );
}
