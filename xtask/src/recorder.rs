//! Release binaries and a `lifecycle-agent record` process, shared by the
//! demo and the benchmark.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{cargo, run, workspace_root};

/// Paths of the release agent and workload binaries, built first.
pub struct Binaries {
    pub agent: PathBuf,
    pub workload: PathBuf,
}

pub fn build_release() -> anyhow::Result<Binaries> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "lifecycle-agent",
        "-p",
        "lifecycle-testkit",
    ]))?;
    let target = workspace_root().join("target/release");
    Ok(Binaries {
        agent: target.join("lifecycle-agent"),
        workload: target.join("lifecycle-workload"),
    })
}

/// Starts `agent record --output <output> <extra>` and waits until its
/// probes are attached. Stderr is piped when `capture_stderr`.
pub fn start_recording(
    agent: &Path,
    output: &Path,
    extra: &[&str],
    capture_stderr: bool,
) -> anyhow::Result<Child> {
    let ready = output.with_extension("ready");
    let _ = fs::remove_file(&ready);
    let mut cmd = Command::new(agent);
    cmd.args(["record", "--log", "warn", "--output"])
        .arg(output)
        .arg("--ready-file")
        .arg(&ready)
        .args(extra);
    if capture_stderr {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().context("start lifecycle-agent record")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        if let Some(status) = child.try_wait()? {
            bail!("lifecycle-agent record exited early: {status}");
        }
        if Instant::now() > deadline {
            bail!("lifecycle-agent record not ready after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

/// Stops a recording as an operator would (SIGTERM) and returns its stderr.
pub fn stop_recording(child: Child) -> anyhow::Result<String> {
    terminate(child.id());
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("lifecycle-agent record failed ({}): {stderr}", out.status);
    }
    Ok(stderr)
}

/// SIGTERM through kill(1): xtask stays free of libc.
pub fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
