//! `cargo xtask demo`: the agent on this machine, no cluster needed.
//!
//! Builds the agent and the node simulator, plays two before/after pairs of
//! scenarios with the agent recording (an Istio-style pod with the proxy as a
//! legacy sidecar, then as a native sidecar; a Job with a database-proxy
//! sidecar, legacy then native), prints each audit report and the two
//! comparisons, and writes HTML reports; then runs the daemon
//! (`lifecycle-agent run`) on a scenario played at real speed, with its
//! live audits exported to an OTLP receiver ([`crate::demo_daemon`]).
//! Everything lands in target/demo/.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, bail};

use crate::{cargo, run, workspace_root};

/// (label, scenario file) for each side of each pair.
const PAIRS: [(&str, [(&str, &str); 2]); 2] = [
    (
        "Istio-style pod: legacy sidecar -> native sidecar",
        [
            ("istio-legacy", "istio-legacy-refused.yaml"),
            ("istio-native", "istio-native-startup-probe.yaml"),
        ],
    ),
    (
        "Job with a cloud-sql-proxy-like sidecar: legacy -> native",
        [
            ("job-legacy", "job-cloud-sql-proxy-legacy.yaml"),
            ("job-native", "job-cloud-sql-proxy-native.yaml"),
        ],
    ),
];

pub fn demo() -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!(
        "[1/5] building lifecycle-agent, the node simulator, its workload (also static, for the containers) and the OTLP receiver (release; the first build takes a few minutes)"
    );
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "lifecycle-agent",
        "-p",
        "node-sim",
        "-p",
        "node-sim-workload",
        "-p",
        "otlp-receiver",
    ]))?;
    crate::build_static_workload()?;
    let root = workspace_root();
    let bin = root.join("target/release");
    let (agent, node_sim) = (bin.join("lifecycle-agent"), bin.join("node-sim"));
    let out = root.join("target/demo");
    std::fs::create_dir_all(&out)?;

    let mut step = 0;
    let total = PAIRS.len() * 2;
    let mut recordings: Vec<(String, PathBuf)> = Vec::new();
    for (_, sides) in PAIRS {
        for (name, file) in sides {
            step += 1;
            eprintln!(
                "[2/5] {:5.1} s  scenario {step}/{total}: {name} ({file}) with the agent recording",
                started.elapsed().as_secs_f64()
            );
            let recording = out.join(format!("{name}.ndjson"));
            play(
                &node_sim,
                &agent,
                &root.join("tests/scenarios").join(file),
                &recording,
                &out.join(format!("{name}.timeline.txt")),
            )?;
            recordings.push((name.to_string(), recording));
        }
    }

    eprintln!(
        "[3/5] {:5.1} s  audit reports",
        started.elapsed().as_secs_f64()
    );
    for (name, recording) in &recordings {
        println!(
            "\n===== {name}: lifecycle-agent report {} =====",
            rel(&root, recording)
        );
        let text = agent_output(
            &agent,
            &["report", &recording.to_string_lossy(), "--format", "text"],
        )?;
        print!("{text}");
        let html = out.join(format!("{name}.html"));
        agent_output(
            &agent,
            &[
                "report",
                &recording.to_string_lossy(),
                "--format",
                "html",
                "-o",
                &html.to_string_lossy(),
            ],
        )?;
    }

    eprintln!(
        "[4/5] {:5.1} s  before/after comparisons",
        started.elapsed().as_secs_f64()
    );
    for (i, (title, _)) in PAIRS.iter().enumerate() {
        let (before, after) = (&recordings[2 * i].1, &recordings[2 * i + 1].1);
        println!("\n===== {title}: lifecycle-agent compare =====");
        print!(
            "{}",
            agent_output(
                &agent,
                &[
                    "compare",
                    &before.to_string_lossy(),
                    &after.to_string_lossy()
                ]
            )?
        );
    }
    eprintln!(
        "[5/5] {:5.1} s  the daemon: lifecycle-agent run with live audits and OTLP export",
        started.elapsed().as_secs_f64()
    );
    crate::demo_daemon::daemon(&root, &bin, &out)?;
    println!(
        "\nrecordings, timelines and HTML reports: {}",
        rel(&root, &out)
    );
    eprintln!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Plays one scenario with the agent attached; keeps the driver's timeline.
fn play(
    node_sim: &Path,
    agent: &Path,
    scenario: &Path,
    recording: &Path,
    timeline: &Path,
) -> anyhow::Result<()> {
    let output = Command::new(node_sim)
        .arg("run")
        .arg(scenario)
        .arg("--agent")
        .arg(agent)
        .arg("--recording")
        .arg(recording)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", node_sim.display()))?;
    std::fs::write(timeline, &output.stdout)?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            scenario.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn agent_output(agent: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(agent)
        .args(args)
        .output()
        .context("cannot run lifecycle-agent")?;
    if !output.status.success() {
        bail!(
            "lifecycle-agent {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
