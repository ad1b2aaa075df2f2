//! `pilot-agent`: Istio's proxy container as it really is, the agent as
//! PID 1 and Envoy its child (istio/istio `pkg/envoy/agent.go`).
//!
//! The agent starts Envoy (this binary's `mesh-proxy --envoy`: capture
//! ports and the admin port 15000) and serves the status ports itself:
//! 15021 `/healthz/ready` asks Envoy's admin `/ready`, 15020 answers
//! `/quitquitquit`. On SIGTERM it asks Envoy to drain
//! (`drain_listeners?inboundonly&graceful`: inbound stops, outbound keeps
//! working), waits `--drain-ms` (`terminationDrainDuration`, 5 s), then
//! SIGKILLs Envoy and exits 0. When Envoy is already draining at SIGTERM
//! (a native sidecar whose preStop `pilot-agent request POST drain` began
//! the drain at t0), it says so and SIGKILLs Envoy at once. The SIGKILL from
//! the agent to its own child is how Istio ends Envoy, in both modes.

use std::{
    net::SocketAddr,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    args::Args,
    common::{self, event},
    net::Server,
    reap,
};

const ENVOY_ADMIN: &str = "127.0.0.1:15000";

/// Names the calling thread's process `comm` (what the kernel reports).
pub fn set_comm(name: &str) {
    let mut bytes = [0u8; 16];
    for (b, c) in bytes.iter_mut().zip(name.bytes().take(15)) {
        *b = c;
    }
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr()) };
}

fn envoy_admin(method: &str, path: &str) -> Option<u16> {
    let addr: SocketAddr = ENVOY_ADMIN.parse().ok()?;
    common::http(addr, method, path, Duration::from_millis(500))
        .ok()
        .map(|r| r.status)
}

pub fn run(args: &Args) -> Result<i32, String> {
    set_comm("pilot-agent");
    common::handle_term();
    let drain = Duration::from_millis(args.ms("drain-ms", 5_000)?);
    let mut envoy = Command::new("/proc/self/exe");
    envoy.args([
        "mesh-proxy",
        "--mesh",
        "istio",
        "--envoy",
        "--listen-delay-ms",
        &args.ms("listen-delay-ms", 0)?.to_string(),
    ]);
    let pid = reap::spawn(&mut envoy).map_err(|e| format!("start envoy: {e}"))?;
    event("envoy_started", &[("pid", pid.to_string())]);
    let quit = Arc::new(AtomicBool::new(false));
    let status = [15021, 15020]
        .into_iter()
        .map(|port| Server::start(port, Duration::ZERO, status_answer, Some(quit.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    while !common::term_seen() && !quit.load(Ordering::SeqCst) {
        common::sleep_ms(10);
    }
    if common::term_seen() {
        common::sigterm_event(&[("drain_ms", drain.as_millis().to_string())]);
        if envoy_admin("GET", "/ready") == Some(503) {
            event("already_drained", &[]);
        } else {
            envoy_admin("POST", "/drain_listeners?inboundonly&graceful");
            event("draining", &[("drain_ms", drain.as_millis().to_string())]);
            std::thread::sleep(drain);
        }
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let ended = reap::wait(pid).map_err(|e| format!("wait for envoy: {e}"))?;
    event(
        "envoy_killed",
        &[("status", format!("{ended:?}").replace('"', ""))],
    );
    status.into_iter().for_each(Server::close);
    event("exit", &[("code", "0".into())]);
    Ok(0)
}

/// What the agent's status ports (15021, 15020) answer: readiness as
/// Envoy's admin reports it, and `/quitquitquit` (which [`Server`] turns
/// into the quit flag).
fn status_answer(path: &str, _ready: bool) -> u16 {
    match path {
        "/healthz/ready" => envoy_admin("GET", "/ready").unwrap_or(503),
        "/quitquitquit" => 200,
        _ => 404,
    }
}
