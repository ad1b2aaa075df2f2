//! `cargo xtask demo`: the agent on this machine, no cluster needed.
//!
//! Builds the agent, lays out a kubelet-style pod with two containers (an
//! "app" and a mesh-proxy stand-in) in real cgroups, and records while a
//! legacy-sidecar shutdown plays out: the proxy is stopped first, the app's
//! next connection is refused, then the app is stopped. Prints the
//! attributed kernel timeline and leaves the recording in target/demo/.

use std::{
    collections::HashMap,
    fs,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::bail;
use lifecycle_testkit::{Driver, FakeContainer, FakePod, spawn_in};
use serde_json::Value;

use crate::{
    recorder::{Binaries, build_release, start_recording, stop_recording, terminate},
    workspace_root,
};

pub fn demo() -> anyhow::Result<()> {
    eprintln!("[1/4] building lifecycle-agent (release; the first build takes a few minutes)");
    let Binaries { agent, workload } = build_release()?;
    let out_dir = workspace_root().join("target/demo");
    fs::create_dir_all(&out_dir)?;
    let recording = out_dir.join("recording.ndjson");
    eprintln!("[2/4] creating pod cgroups and starting `lifecycle-agent record`");
    let mut pod = FakePod::create(Driver::Systemd);
    let (app, proxy) = (pod.add_container(), pod.add_container());
    let agent_proc = start_recording(&agent, &recording, &[], false)?;

    eprintln!("[3/4] running the scenario: proxy stops before the app");
    let start =
        |c: &FakeContainer, args: &[&str]| -> anyhow::Result<(std::process::Child, String)> {
            let mut cmd = Command::new(&workload);
            cmd.args(args).stdout(Stdio::piped());
            let mut child = spawn_in(&c.dir, &mut cmd);
            let mut line = String::new();
            let read = match child.stdout.take() {
                Some(stdout) => BufReader::new(stdout).read_line(&mut line),
                None => Ok(0),
            };
            if read.is_err() || !line.starts_with("ready") {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{args:?} did not get ready: {line:?}");
            }
            Ok((child, line.trim().to_string()))
        };
    let (mut proxy_listener, ready_line) = start(&proxy, &["listen", "127.0.0.1:0", "1"])?;
    let port = ready_line.trim_start_matches("ready ").to_string();
    let (mut app_proc, _) = start(&app, &["handle-term"])?;
    let connect = |c: &FakeContainer| {
        let mut cmd = Command::new(&workload);
        cmd.args(["connect", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null());
        spawn_in(&c.dir, &mut cmd).wait()
    };
    connect(&app)?; // served by the proxy
    proxy_listener.wait()?; // the proxy exits (as if its drain ended)
    connect(&app)?; // refused: nothing listens any more
    terminate(app_proc.id());
    app_proc.wait()?;
    stop_recording(agent_proc)?;

    eprintln!("[4/4] timeline of what the kernel saw in pod {}", pod.uid);
    print_timeline(
        &fs::read_to_string(&recording)?,
        &[("app", &app), ("proxy", &proxy)],
    )?;
    println!("\nfull recording: {}", recording.display());
    Ok(())
}

/// One line per event inside the demo's containers.
fn print_timeline(ndjson: &str, names: &[(&str, &FakeContainer)]) -> anyhow::Result<()> {
    let by_id: HashMap<&str, &str> = names.iter().map(|(n, c)| (c.id.as_str(), *n)).collect();
    let name_of = |cgroup: &Value| {
        cgroup["container_id"]
            .as_str()
            .and_then(|id| by_id.get(id).copied())
    };
    let mut first: Option<i64> = None;
    println!("{:>9}  {:<6} {:<8} event", "t (ms)", "where", "pid");
    for line in ndjson.lines() {
        let r: Value = serde_json::from_str(line)?;
        let (who, pid, what) = match r["type"].as_str().unwrap_or("") {
            "process_exec" => (
                name_of(&r["process"]["cgroup"]),
                &r["process"]["pid"],
                format!("exec {}", r["filename"]),
            ),
            "process_exit" => (
                name_of(&r["process"]["cgroup"]),
                &r["process"]["pid"],
                format!("exit, code {}", r["container_exit_code"]),
            ),
            "signal_generate" if name_of(&r["target"]["cgroup"]).is_some() => (
                name_of(&r["target"]["cgroup"]),
                &r["target"]["pid"],
                format!(
                    "got {} from {} (pid {}), {}",
                    r["signal_name"], r["sender"]["comm"], r["sender"]["pid"], r["result"]
                ),
            ),
            "socket" => (
                name_of(&r["socket_cgroup"]),
                &r["owner"]["pid"],
                format!(
                    "{} {}:{} -> {}:{}{}",
                    r["op"].as_str().unwrap_or(""),
                    r["local_addr"].as_str().unwrap_or(""),
                    r["local_port"],
                    r["remote_addr"].as_str().unwrap_or(""),
                    r["remote_port"],
                    r["error"]
                        .as_str()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
            ),
            _ => continue,
        };
        let Some(who) = who else { continue };
        let t = r["time_ns"].as_i64().unwrap_or(0);
        let t0 = *first.get_or_insert(t);
        println!(
            "{:>9.3}  {:<6} {:<8} {}",
            (t - t0) as f64 / 1e6,
            who,
            pid,
            what
        );
    }
    Ok(())
}
