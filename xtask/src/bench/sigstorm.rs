//! The signal mask's effect on a SIGURG storm (Go's preemption signal,
//! outside the default mask): the same storm inside a container cgroup,
//! recorded with the default mask and with `--all-signals`. Printed: the
//! storm's time, the signal events that reached userspace and their rate,
//! what the kernel counted as filtered, and the probes' cost per hit.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use lifecycle_testkit::FakeContainer;
use serde_json::Value;

use crate::recorder::{start_recording, stop_recording};

const SIGURG: &str = "23";

/// What one recorded storm showed.
struct Round {
    storm: Duration,
    /// signal_generate + signal_deliver records decoded.
    reached: u64,
    dropped: u64,
    filtered: u64,
    probes: Vec<String>,
}

/// Runs `signals` SIGURG in `container`, with the default mask then with
/// `--all-signals`, `rounds` times each, and prints the medians.
pub fn sigurg_storm(
    agent: &Path,
    workload: &Path,
    container: &FakeContainer,
    signals: u64,
    rounds: usize,
) -> anyhow::Result<()> {
    let storm = || -> anyhow::Result<Duration> {
        let mut cmd = Command::new(workload);
        cmd.args(["signal-storm", &signals.to_string(), SIGURG])
            .stdout(Stdio::piped());
        let out = lifecycle_testkit::spawn_in(&container.dir, &mut cmd).wait_with_output()?;
        if !out.status.success() {
            bail!("storm failed: {}", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let report: Value = text
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .context("storm report")?;
        Ok(Duration::from_nanos(
            report["elapsed_ns"].as_u64().context("elapsed_ns")?,
        ))
    };
    storm()?; // warm-up
    println!("\nSIGURG storm: {signals} signals to itself in a container cgroup, {rounds} rounds");
    for (label, extra) in [
        ("default mask", &["--probe-stats"][..]),
        ("--all-signals", &["--probe-stats", "--all-signals"][..]),
    ] {
        let mut results = Vec::new();
        for _ in 0..rounds {
            let dir = std::env::temp_dir().join("lifecycle-bench-sigurg");
            fs::create_dir_all(&dir)?;
            let output = dir.join("events.ndjson");
            let agent_proc = start_recording(agent, &output, extra, true)?;
            let elapsed = storm()?;
            let stderr = stop_recording(agent_proc)?;
            let _ = fs::remove_dir_all(&dir);
            results.push(parse(elapsed, &stderr));
        }
        results.sort_by_key(|r| r.storm);
        let r = &results[results.len() / 2];
        let rate = r.reached as f64 / r.storm.as_secs_f64();
        println!(
            "  {label:<14} storm {:>7.1} ms  to userspace {:>7} signal events ({:>9.0}/s)  dropped {:>6}  filtered in kernel {:>7}",
            r.storm.as_secs_f64() * 1e3,
            r.reached,
            rate,
            r.dropped,
            r.filtered
        );
        for probe in r.probes.iter().filter(|p| p.contains("signal")) {
            println!("      {probe}");
        }
    }
    Ok(())
}

/// Reads `record`'s exit summary.
fn parse(storm: Duration, stderr: &str) -> Round {
    let number_after = |line: &str, word: &str| -> u64 {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields
            .iter()
            .position(|f| *f == word)
            .and_then(|i| fields.get(i + 1))
            .and_then(|v| v.trim_end_matches(',').parse().ok())
            .unwrap_or(0)
    };
    let mut round = Round {
        storm,
        reached: 0,
        dropped: 0,
        filtered: 0,
        probes: Vec::new(),
    };
    for line in stderr.lines().map(str::trim) {
        if line.starts_with("signal_generate ") || line.starts_with("signal_deliver ") {
            round.reached += number_after(line, "events");
            round.dropped += number_after(line, "dropped");
        } else if let Some(rest) = line.strip_prefix("signals filtered in kernel:") {
            round.filtered = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.starts_with("probe ") {
            round.probes.push(line.to_string());
        }
    }
    round
}
