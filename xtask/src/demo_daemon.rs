//! The last part of `cargo xtask demo`: the DaemonSet's job on this
//! machine. `lifecycle-agent run` is started first (its API server is not
//! up yet, so it reports "not ready"), then the node simulator plays a
//! scenario at real speed against a test API server on the port the agent
//! was told about, and an OTLP receiver prints the traces the agent sends.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use lifecycle_testkit::{free_local_addr, http_get};

const NODE: &str = "demo-node";
const SCENARIO: &str = "istio-legacy-refused.yaml";

fn kubeconfig(api: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: http://{api}\n\
         users:\n- name: demo\n  user:\n    token: demo\ncontexts:\n- name: demo\n  context:\n    \
         cluster: demo\n    user: demo\ncurrent-context: demo\n"
    )
}

fn wait_readyz(health: SocketAddr, status: u16, limit: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((got, body)) = http_get(health, "/readyz")
            && got == status
            && (status == 200 || body.contains("not synced"))
        {
            return Ok(format!("{got} {}", body.trim()));
        }
        if Instant::now() > deadline {
            bail!("the agent's /readyz never answered {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The namespace of the scenario's pod.
const NAMESPACE: &str = "bookinfo";
/// Events the scenario's termination audit posts (M1, M4 with its repeat
/// in the series, and the startup race before them).
const EXPECTED_EVENTS: usize = 3;

/// `kubectl get events` of the scenario's namespace once the agent's
/// Events are all there (or what there is at `limit`).
fn wait_for_events(kubeconfig: &Path, limit: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "events", "-n", NAMESPACE])
            .output()
            .context("run kubectl")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let rows = text.lines().filter(|l| l.contains("Warning")).count();
        if rows >= EXPECTED_EVENTS || Instant::now() > deadline {
            return Ok(text);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn stop(mut child: Child) -> anyhow::Result<std::process::ExitStatus> {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    Ok(child.wait()?)
}

/// Plays the daemon part; `bin` holds the release binaries, `out` is
/// target/demo.
pub fn daemon(root: &Path, bin: &Path, out: &Path) -> anyhow::Result<()> {
    let (api, health, otlp) = (free_local_addr(), free_local_addr(), free_local_addr());
    let dir = out.join("daemon");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("kubeconfig");
    std::fs::write(&config, kubeconfig(api))?;

    let receiver = Command::new(bin.join("otlp-receiver"))
        .arg("--listen")
        .arg(otlp.to_string())
        .stdout(std::fs::File::create(dir.join("receiver.txt"))?)
        .spawn()
        .context("start otlp-receiver")?;
    let agent = Command::new(bin.join("lifecycle-agent"))
        .args(["run", "--node-name", NODE, "--otlp-protocol", "grpc"])
        .args(["--metrics-export-interval", "5s", "--stats-interval", "5s"])
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--health-addr")
        .arg(health.to_string())
        .arg("--otlp-endpoint")
        .arg(format!("http://{otlp}"))
        .arg("--journal-dir")
        .arg(dir.join("journal"))
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(dir.join("agent.log"))?)
        .spawn()
        .context("start lifecycle-agent run")?;
    let before = wait_readyz(health, 503, Duration::from_secs(60))?;
    println!("\n===== lifecycle-agent run =====");
    println!("/readyz before the API server is up: {before}");

    let sim = Command::new(bin.join("node-sim"))
        .arg("run")
        .arg(root.join("tests/scenarios").join(SCENARIO))
        .args(["--node-name", NODE, "--linger-s", "15"])
        .arg("--api-listen")
        .arg(api.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start node-sim")?;
    let after = wait_readyz(health, 200, Duration::from_secs(60))?;
    println!("/readyz once the pod list is synced: {after}");
    println!("playing {SCENARIO} at real speed (about 20 s)...");
    // The simulator keeps its API server up 15 s after the scenario: the
    // termination audit comes 5 s after the pod object is gone, and its
    // findings are posted as Events, which kubectl then reads.
    let events = wait_for_events(&config, Duration::from_secs(90))?;
    let sim_status = sim.wait_with_output()?.status;
    if !sim_status.success() {
        bail!("node-sim failed: {sim_status}");
    }
    let metrics = http_get(health, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let status = stop(agent)?;
    std::thread::sleep(Duration::from_millis(300));
    let _ = stop(receiver);

    println!("\nthe agent's log (audits and findings):");
    let log = std::fs::read_to_string(dir.join("agent.log"))?;
    for line in log
        .lines()
        .filter(|l| l.contains("pod audit complete") || l.contains(" rule="))
    {
        println!("  {}", strip_ansi(line));
    }
    println!("\nspans at the OTLP receiver:");
    let received = std::fs::read_to_string(dir.join("receiver.txt"))?;
    for line in received.lines().filter(|l| l.starts_with("span ")) {
        println!("  {line}");
    }
    println!("\nkubectl get events -n {NAMESPACE} (the findings as Kubernetes Events):");
    for line in events.lines() {
        println!("  {line}");
    }
    println!("\n/metrics (findings and audits):");
    for line in metrics.lines().filter(|l| {
        l.starts_with("lifecycle_findings_total") || l.starts_with("lifecycle_audits_total")
    }) {
        println!("  {line}");
    }
    println!(
        "\nagent exit on SIGTERM: {status}; log, journal and receiver output in {}",
        dir.strip_prefix(root).unwrap_or(&dir).display()
    );
    if !status.success() {
        bail!("lifecycle-agent run did not exit cleanly");
    }
    Ok(())
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
