//! `node-sim`: runs scenario files on this machine (as root) against a
//! test API server, optionally with `lifecycle-agent record` attached.

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use node_sim::{
    RunOptions, Scenario, ScenarioReport, SimApi,
    log::Action,
    net::{CaptureConfig, Mesh},
};

#[derive(Parser)]
#[command(
    about = "Kubelet-like node simulator: real cgroups, namespaces, mesh capture and runtime-shaped signals"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// tracing filter
    #[arg(long, env = "NODE_SIM_LOG", default_value = "warn", global = true)]
    log: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one scenario file.
    Run(Box<RunArgs>),
    /// Lists the scenarios of a directory.
    List {
        #[arg(default_value = "tests/scenarios")]
        dir: PathBuf,
    },
    /// Prints the capture rules a mesh init would install.
    Rules {
        #[arg(long, value_parser = ["istio", "linkerd"])]
        mesh: String,
        /// Outbound ports left uncaptured, e.g. `5432,9000-9002`.
        #[arg(long, default_value = "")]
        exclude_outbound: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    scenario: PathBuf,
    #[arg(long, default_value = "node-a")]
    node_name: String,
    /// Plays the scenario with this kubelet version's behaviour instead.
    #[arg(long)]
    kubelet: Option<String>,
    /// Where the API server listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    api_listen: std::net::SocketAddr,
    /// Writes a kubeconfig for the API server here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Starts this `lifecycle-agent` with `record` before the scenario.
    #[arg(long)]
    agent: Option<PathBuf>,
    /// The agent's recording (with --agent).
    #[arg(long, default_value = "recording.ndjson")]
    recording: PathBuf,
    /// Writes the driver's log (NDJSON, one action a line) here.
    #[arg(long)]
    actions: Option<PathBuf>,
    /// Writes the whole report (log, pods, workload events) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Keeps pod logs in this directory.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keeps the API server up this many seconds after the scenario, for a
    /// daemon attached to it to finish its audits and post their Events
    /// (and for kubectl to read them).
    #[arg(long, default_value_t = 0)]
    linger_s: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::Run(args) => run(*args),
        Cmd::List { dir } => {
            let mut scenarios = Scenario::load_dir(&dir)?;
            scenarios.sort_by_key(|(_, s)| s.system);
            for (i, group) in scenarios
                .chunk_by(|a, b| a.1.system == b.1.system)
                .enumerate()
            {
                if i > 0 {
                    println!();
                }
                println!("{} ({})", group[0].1.system.title(), group.len());
                for (path, scenario) in group {
                    let first = scenario.description.lines().next().unwrap_or_default();
                    println!(
                        "  {:<40} {}",
                        path.file_name().unwrap_or_default().to_string_lossy(),
                        first
                    );
                }
            }
            Ok(())
        }
        Cmd::Rules {
            mesh,
            exclude_outbound,
        } => {
            let mesh = if mesh == "istio" {
                Mesh::Istio
            } else {
                Mesh::Linkerd
            };
            let mut config = CaptureConfig::defaults(mesh);
            config.exclude_outbound_ports = node_sim::net::capture::parse_ports(&exclude_outbound);
            print!("{}", config.rules());
            Ok(())
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(version) = &args.kubelet {
        scenario.kubelet = node_sim::KubeletVersion::parse(version)?;
    }
    eprintln!("node-sim: {} (kubelet {})", scenario.name, scenario.kubelet);
    let api =
        SimApi::bind(args.api_listen, scenario.kubelet).context("starting the test API server")?;
    let temp = std::env::temp_dir().join(format!("node-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&temp)?;
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| temp.join("kubeconfig"));
    api.write_kubeconfig(&kubeconfig)?;
    eprintln!(
        "node-sim: API server {} (kubeconfig {})",
        api.url(),
        kubeconfig.display()
    );
    let agent = match &args.agent {
        Some(bin) => Some(start_agent(bin, &args, &kubeconfig, &temp)?),
        None => None,
    };
    let started = Instant::now();
    let result = node_sim::scenario::run(
        &scenario,
        api.server(),
        RunOptions {
            node_name: Some(args.node_name.clone()),
            workdir: args.workdir.clone(),
            wait_timeout: None,
            kubelet: None,
        },
    );
    if let Some(agent) = agent {
        // Let the watch deliver the last pod changes before stopping.
        std::thread::sleep(Duration::from_millis(500));
        stop_agent(agent)?;
        eprintln!("node-sim: recording in {}", args.recording.display());
    }
    if args.linger_s > 0 {
        eprintln!("node-sim: API server up for {} s more", args.linger_s);
        std::thread::sleep(Duration::from_secs(args.linger_s));
    }
    let _ = std::fs::remove_dir_all(&temp);
    let report = result?;
    eprintln!("node-sim: done in {:.1} s", started.elapsed().as_secs_f64());
    print_summary(&report);
    if let Some(path) = &args.actions {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for entry in &report.log {
            serde_json::to_writer(&mut out, entry)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}

fn start_agent(
    bin: &Path,
    args: &RunArgs,
    kubeconfig: &Path,
    temp: &Path,
) -> anyhow::Result<Child> {
    let ready = temp.join("agent-ready");
    let mut child = Command::new(bin)
        .arg("record")
        .arg("--output")
        .arg(&args.recording)
        .arg("--ready-file")
        .arg(&ready)
        .args(["--node-name", &args.node_name])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        if let Some(status) = child.try_wait()? {
            bail!("the agent exited before it was ready: {status}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the agent was not ready after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("node-sim: agent recording to {}", args.recording.display());
    Ok(child)
}

fn stop_agent(mut child: Child) -> anyhow::Result<()> {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait()?;
    if !status.success() {
        bail!("the agent exited with {status}");
    }
    Ok(())
}

/// One line per action, relative to the start of the run.
fn print_summary(report: &ScenarioReport) {
    let t0 = report.started.boot_ns;
    println!("   t (ms)  pod/container                      action");
    for entry in &report.log {
        let what = match &entry.action {
            Action::ContainerStarted { pid, restart, .. } => {
                format!("started pid {pid} (run {restart})")
            }
            Action::ContainerExited {
                exit_code, reason, ..
            } => format!("exited {exit_code} ({reason})"),
            Action::StopRequested { timeout_s } => format!("StopContainer, timeout {timeout_s} s"),
            Action::StopReturned => "StopContainer returned".into(),
            Action::LivenessFailed { failures } => {
                format!("liveness failed {failures} times: killing")
            }
            Action::CaptureInstalled { by_init } => format!(
                "capture installed ({})",
                if *by_init { "init container" } else { "CNI" }
            ),
            Action::HookStarted { hook, .. } => format!("{hook:?} hook"),
            Action::HookFinished { hook, ok } => format!("{hook:?} hook done, ok={ok}"),
            Action::ProbeSucceeded { probe } => format!("{probe:?} probe ok"),
            Action::KillingStarted { .. } => "killing".into(),
            Action::TurnReached {
                waited_ms,
                deadline_hit,
            } => {
                format!(
                    "turn after {waited_ms} ms{}",
                    if *deadline_hit { " (deadline)" } else { "" }
                )
            }
            Action::DeletionRequested { grace_s } => format!("delete requested, grace {grace_s} s"),
            Action::PostStartFailed => "FailedPostStartHook: killing the container".into(),
            Action::HostSignalSent {
                signal,
                sender_pid,
                target_pid,
            } => format!("host shell {sender_pid} sent {signal} to pid {target_pid}"),
            Action::KubeletStopped => "kubelet died".into(),
            Action::KubeletStarted => "kubelet started: Starting event".into(),
            Action::TerminationRetried => "termination retried by the new kubelet".into(),
            Action::RestartedDuringTermination => "restarted before its turn to stop".into(),
            Action::InboundCallsStarted { port, caller_pid } => {
                format!("caller {caller_pid} calling the pod on {port}")
            }
            Action::TerminationStarted { cause, grace_s } => {
                format!("termination ({cause:?}, grace {grace_s} s)")
            }
            Action::PhaseChanged { phase } => format!("phase {phase}"),
            Action::PodCreated { .. } => "created".into(),
            Action::SandboxStarted { pod_ip, .. } => format!("sandbox up, ip {pod_ip}"),
            Action::SandboxStopped => "sandbox stopped".into(),
            Action::SandboxRemoved => "sandbox and pod cgroup removed".into(),
            Action::PodDeleted => "deleted".into(),
        };
        let at = entry.at.boot_ns.saturating_sub(t0) as f64 / 1e6;
        let name = entry.pod.rsplit('/').next().unwrap_or(&entry.pod);
        let who = match &entry.container {
            Some(c) => format!("{name}/{c}"),
            None => name.to_owned(),
        };
        println!("{at:>9.1}  {who:<34} {what}");
    }
}
