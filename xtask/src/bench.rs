//! `cargo xtask bench`: prints the figures the README quotes.
//!
//! 1. Userspace: events/s decoded, attributed and timestamped on one thread
//!    (the `pipeline` bench of the agent crate).
//! 2. Kernel: each probe's cost per hit, from the kernel's own BPF run-time
//!    statistics (run_time_ns / run_cnt), while a dense workload runs.
//! 3. Slowdown: the same workload (loopback TCP connect/accept/close churn and
//!    a signal storm) inside a kubelet-style container cgroup, with
//!    `lifecycle-agent record` attached versus not, alternated in one run.
//! 4. The signal mask: a SIGURG storm recorded with the default mask and
//!    with `--all-signals` (`sigstorm`).

mod sigstorm;

use std::{
    fs,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;
use lifecycle_testkit::{Driver, FakePod, spawn_in};
use serde_json::Value;

use crate::{
    cargo,
    recorder::{Binaries, build_release, start_recording, stop_recording},
    run,
};

#[derive(Args)]
pub struct BenchArgs {
    /// TCP connections per workload run.
    #[arg(long, default_value_t = 20_000)]
    connections: u64,
    /// Signals per workload run.
    #[arg(long, default_value_t = 200_000)]
    signals: u64,
    /// Rounds of (without agent, with agent); medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// SIGURGs per storm of the signal-mask figure (0: skip it).
    #[arg(long, default_value_t = 100_000)]
    sigurg_signals: u64,
    /// Only the signal-mask figure.
    #[arg(long)]
    only_sigurg: bool,
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.only_sigurg {
        run_cmd_userspace()?;
    }
    let Binaries { agent, workload } = build_release()?;

    let mut pod = FakePod::create(Driver::Systemd);
    let container = pod.add_container();
    if args.sigurg_signals > 0 {
        sigstorm::sigurg_storm(
            &agent,
            &workload,
            &container,
            args.sigurg_signals,
            args.rounds,
        )?;
    }
    if args.only_sigurg {
        return Ok(());
    }
    let workload_run = || -> anyhow::Result<Duration> {
        let mut cmd = Command::new(&workload);
        cmd.args([
            "churn",
            &args.connections.to_string(),
            &args.signals.to_string(),
        ])
        .stdout(Stdio::piped());
        let out = spawn_in(&container.dir, &mut cmd).wait_with_output()?;
        if !out.status.success() {
            bail!("workload failed: {}", out.status);
        }
        let report: Value = serde_json::from_slice(&out.stdout).context("workload report")?;
        Ok(Duration::from_nanos(
            report["elapsed_ns"].as_u64().context("elapsed_ns")?,
        ))
    };

    workload_run()?; // warm-up: page cache, port ranges
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut last_stats = String::new();
    for round in 0..args.rounds {
        off.push(workload_run()?);
        let dir = std::env::temp_dir().join("lifecycle-bench");
        fs::create_dir_all(&dir)?;
        let agent_proc =
            start_recording(&agent, &dir.join("events.ndjson"), &["--probe-stats"], true)?;
        on.push(workload_run()?);
        last_stats = stop_recording(agent_proc)?;
        eprintln!(
            "round {}: without {:?}, with {:?}",
            round + 1,
            off[round],
            on[round]
        );
    }
    let (m_off, m_on) = (median(&mut off), median(&mut on));
    println!(
        "\nworkload: {} TCP connections + {} signals in a container cgroup, {} rounds",
        args.connections, args.signals, args.rounds
    );
    println!(
        "  without agent (median): {:>8.1} ms",
        m_off.as_secs_f64() * 1e3
    );
    println!(
        "  with agent    (median): {:>8.1} ms",
        m_on.as_secs_f64() * 1e3
    );
    println!(
        "  slowdown:               {:>8.3}x",
        m_on.as_secs_f64() / m_off.as_secs_f64()
    );
    println!("\nkernel cost per probe hit (last round, BPF_ENABLE_STATS):");
    let (mut runs, mut time) = (0u64, 0u64);
    for line in last_stats
        .lines()
        .filter(|l| l.trim_start().starts_with("probe "))
    {
        println!("  {}", line.trim());
        let fields: Vec<&str> = line.split_whitespace().collect();
        runs += fields
            .get(3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        time += fields
            .get(5)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    if let Some(average) = time.checked_div(runs) {
        println!("  all probes: {runs} hits, {average} ns per hit on average");
    }
    for line in last_stats
        .lines()
        .filter(|l| l.contains("dropped in kernel") || l.starts_with("recorded"))
    {
        println!("  {}", line.trim());
    }
    Ok(())
}

fn run_cmd_userspace() -> anyhow::Result<()> {
    run(cargo().args(["bench", "-p", "lifecycle-agent", "--bench", "pipeline"]))?;
    run(cargo().args(["bench", "-p", "lifecycle-agent", "--bench", "export_spans"]))?;
    run(cargo().args([
        "run",
        "--release",
        "-p",
        "lifecycle-agent",
        "--example",
        "pods_bench",
    ]))
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}
