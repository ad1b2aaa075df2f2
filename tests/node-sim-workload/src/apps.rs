//! Application-side roles: app server and client, log shipper, Job worker,
//! secrets agent, database proxy, init task, mesh init, pause, and the
//! cluster's peer services.

use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    args::Args,
    common::{self, event, json_str},
    net::{REQUEST_TIMEOUT, Server, always_ok, optional_server, ready_gated, request, targets},
    reap,
};

/// `app`: serves `--serve PORT` (ready after `--ready-after-ms`), calls each
/// `--call ADDR` every `--interval-ms`, and on SIGTERM keeps both going for
/// `--drain-ms` before exiting 0; `--listen-delay-ms` opens the port that
/// late. `--ignore-term` never stops (SIGKILL
/// ends it); `--default-term` leaves SIGTERM's default action in place.
/// `--preempt-per-s N`: Go-like SIGURG preemption of its own threads.
pub fn app(args: &Args) -> Result<i32, String> {
    let calls = targets(args, "call")?;
    let interval = args.ms("interval-ms", 50)?;
    let drain = Duration::from_millis(args.ms("drain-ms", 0)?);
    // `--default-term`: no handler at all, so SIGTERM keeps its default
    // action (the kernel drops it for a pid namespace's init).
    let ignore = args.flag("ignore-term") || args.flag("default-term");
    if args.flag("ignore-term") {
        common::ignore_term();
    } else if !args.flag("default-term") {
        common::handle_term();
    }
    common::preempt_like_go(args.number("preempt-per-s", 0)?);
    // `--listen-delay-ms`: the server opens its port that late (an app
    // still loading, or one that binds only once its dependencies answer).
    let listen_after = Duration::from_millis(args.ms("listen-delay-ms", 0)?);
    let started = Instant::now();
    let mut server = if listen_after.is_zero() {
        optional_server(args, "serve", ready_gated)?
    } else {
        None
    };
    event("started", &[]);
    let mut term_at: Option<Instant> = None;
    loop {
        if server.is_none() && !listen_after.is_zero() && started.elapsed() >= listen_after {
            server = optional_server(args, "serve", ready_gated)?;
        }
        if !ignore && term_at.is_none() && common::term_seen() {
            term_at = Some(Instant::now());
            common::sigterm_event(&[("drain_ms", drain.as_millis().to_string())]);
        }
        if term_at.is_some_and(|t| t.elapsed() >= drain) {
            break;
        }
        for target in &calls {
            request(*target, "GET", "/", "request");
        }
        common::sleep_ms(interval.max(1));
    }
    if let Some(server) = server {
        server.close();
    }
    event("exit", &[("code", "0".into())]);
    Ok(0)
}

/// `log-shipper`: ships a batch to `--sink` every `--interval-ms`, serves
/// health on `--health-port` and, with `--forward-port`, accepts the app's
/// logs there (Fluent Bit's forward input). On SIGTERM it pauses its inputs
/// (closes the forward port at once), keeps flushing for `--drain-ms`
/// (Fluent Bit's `Grace`), sends a last batch and exits 0.
pub fn log_shipper(args: &Args) -> Result<i32, String> {
    let sink = common::addr(args.required("sink")?)?;
    let interval = args.ms("interval-ms", 100)?;
    let grace = Duration::from_millis(args.ms("drain-ms", 0)?);
    common::handle_term();
    let server = optional_server(args, "health-port", always_ok)?;
    let mut forward = optional_server(args, "forward-port", always_ok)?;
    event("started", &[]);
    while !common::sleep_unless_term(interval.max(1)) {
        request(sink, "POST", "/logs", "shipped");
    }
    common::sigterm_event(&[]);
    if let Some(forward) = forward.take() {
        forward.close();
        event("inputs_paused", &[]);
    }
    let paused = Instant::now();
    while paused.elapsed() < grace {
        request(sink, "POST", "/logs", "shipped");
        common::sleep_ms(interval.max(1).min(grace.as_millis() as u64));
    }
    request(sink, "POST", "/logs", "final_flush");
    if let Some(server) = server {
        server.close();
    }
    event("exit", &[("code", "0".into())]);
    Ok(0)
}

/// `job-worker`: calls `--call` every `--interval-ms` for `--work-ms`, then
/// exits with `--exit`, after POSTing `/quitquitquit` (or `--quit-path`)
/// to `--quit ADDR` when given. SIGTERM keeps its default action.
pub fn job_worker(args: &Args) -> Result<i32, String> {
    let calls = targets(args, "call")?;
    let interval = args.ms("interval-ms", 50)?;
    let work = Duration::from_millis(args.ms("work-ms", 0)?);
    let code: i32 = args.number("exit", 0)?;
    event("started", &[]);
    let start = Instant::now();
    while start.elapsed() < work {
        for target in &calls {
            request(*target, "GET", "/query", "request");
        }
        common::sleep_ms(interval.max(1));
    }
    // The workaround for legacy sidecars of Jobs: tell the sidecar to quit
    // as the last act.
    if let Some(quit) = args.get("quit") {
        let path = args.get("quit-path").unwrap_or("/quitquitquit");
        request(common::addr(quit)?, "POST", path, "quit_sent");
    }
    event("exit", &[("code", code.to_string())]);
    Ok(code)
}

/// `secrets-agent`: fetches from `--vault` at start (`--once`: then exits
/// 0, or 1 if the fetch failed), renews every `--interval-ms`, exits 0 on
/// SIGTERM.
pub fn secrets_agent(args: &Args) -> Result<i32, String> {
    let vault = common::addr(args.required("vault")?)?;
    let interval = args.ms("interval-ms", 200)?;
    common::handle_term();
    let fetched = request(vault, "GET", "/v1/secret/data/app", "fetched");
    if args.flag("once") {
        return Ok(if fetched { 0 } else { 1 });
    }
    let server = optional_server(args, "health-port", always_ok)?;
    while !common::sleep_unless_term(interval.max(1)) {
        request(vault, "PUT", "/v1/auth/token/renew-self", "renewed");
    }
    common::sigterm_event(&[]);
    if let Some(server) = server {
        server.close();
    }
    event("exit", &[("code", "0".into())]);
    Ok(0)
}

/// `db-proxy`: a cloud-sql-proxy-like forwarder from `--listen` (opened
/// after `--listen-delay-ms`, as the proxy first checks its instance) to
/// `--upstream`, health on `--health-port` (`/startup`, `/liveness`,
/// `/readiness`, `/quitquitquit`); on SIGTERM it keeps forwarding for
/// `--drain-ms` (cloud-sql-proxy's `--max-sigterm-delay`, 0 by default:
/// the listener closes at once), then exits `--term-exit` (143 as
/// cloud-sql-proxy does, 0 with its `--exit-zero-on-sigterm`).
/// `--crash-after-ms` aborts it that long after its listener opened (a crash).
pub fn db_proxy(args: &Args) -> Result<i32, String> {
    let listen = common::addr(args.required("listen")?)?;
    let upstream = common::addr(args.required("upstream")?)?;
    let drain = Duration::from_millis(args.ms("drain-ms", 0)?);
    let ready_after = Duration::from_millis(args.ms("ready-after-ms", 0)?);
    common::handle_term();
    let quit = Arc::new(AtomicBool::new(false));
    let health = args
        .get("health-port")
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("--health-port {p} is not a port"))
        })
        .transpose()?
        .map(|port| Server::start(port, ready_after, ready_gated, Some(quit.clone())))
        .transpose()?;
    common::sleep_unless_term(args.ms("listen-delay-ms", 0)?);
    let listener: TcpListener = common::bind(listen)?;
    event("listening", &[("port", listen.port().to_string())]);
    let crash_after = args
        .get("crash-after-ms")
        .map(|_| args.ms("crash-after-ms", 0))
        .transpose()?
        .map(Duration::from_millis);
    let started = Instant::now();
    let mut term_at: Option<Instant> = None;
    loop {
        if crash_after.is_some_and(|after| started.elapsed() >= after) {
            event("crash", &[]);
            std::process::abort();
        }
        if term_at.is_none() && common::term_seen() {
            term_at = Some(Instant::now());
            common::sigterm_event(&[]);
        }
        if term_at.is_some_and(|t| t.elapsed() >= drain) || quit.load(Ordering::SeqCst) {
            break;
        }
        for (_, client) in common::accept_any(&[&listener], 5) {
            std::thread::spawn(move || {
                match std::net::TcpStream::connect_timeout(&upstream, REQUEST_TIMEOUT) {
                    Ok(server) => common::splice(client, server),
                    Err(e) => event(
                        "upstream_failed",
                        &[("errno", common::errno_of(&e).to_string())],
                    ),
                }
            });
        }
    }
    drop(listener);
    if let Some(health) = health {
        health.close();
    }
    let code = match term_at {
        Some(_) => args.number("term-exit", 0)?,
        None => 0,
    };
    event("exit", &[("code", code.to_string())]);
    Ok(code)
}

/// `init-task`: works for `--work-ms`, then exits with `--exit`.
pub fn init_task(args: &Args) -> Result<i32, String> {
    let code: i32 = args.number("exit", 0)?;
    event("started", &[]);
    common::sleep_ms(args.ms("work-ms", 0)?);
    event("exit", &[("code", code.to_string())]);
    Ok(code)
}

/// `mesh-init`: installs the pod's capture rules (`iptables-restore
/// --rules FILE`) in the network namespace it runs in, like istio-init or
/// linkerd-init.
pub fn mesh_init(args: &Args) -> Result<i32, String> {
    let rules = args.required("rules")?;
    let tool = args.get("iptables-restore").unwrap_or("iptables-restore");
    let file = std::fs::File::open(rules).map_err(|e| format!("open {rules}: {e}"))?;
    let status = reap::status(std::process::Command::new(tool).stdin(file))
        .map_err(|e| format!("run {tool}: {e}"))?;
    let code = status.code().unwrap_or(1);
    event("rules_applied", &[("code", code.to_string())]);
    Ok(code)
}

/// `pause`: the sandbox process; exits 0 on SIGTERM. As PID 1 of a pod's
/// shared pid namespace it is the one that reaps the orphans
/// ([`crate::reap`]).
pub fn pause() -> Result<i32, String> {
    common::handle_term();
    event("started", &[]);
    while !common::sleep_unless_term(1000) {}
    common::sigterm_event(&[]);
    Ok(0)
}

/// `caller`: a client elsewhere in the cluster (another pod, an ingress)
/// calling `--to` every `--interval-ms` for `--duration-ms`, each request
/// logged as an `inbound_request` event.
pub fn caller(args: &Args) -> Result<i32, String> {
    let to = common::addr(args.required("to")?)?;
    let interval = args.ms("interval-ms", 200)?;
    let duration = Duration::from_millis(args.ms("duration-ms", 0)?);
    common::handle_term();
    let start = Instant::now();
    while start.elapsed() < duration && !common::term_seen() {
        request(to, "GET", "/", "inbound_request");
        common::sleep_ms(interval.max(1));
    }
    Ok(0)
}

/// `peer-server`: answers every HTTP request with 200 on each `--listen`
/// address (the services in the cluster namespace), logging each one.
pub fn peer_server(args: &Args) -> Result<i32, String> {
    let addrs = targets(args, "listen")?;
    common::handle_term();
    let listeners: Vec<TcpListener> = addrs
        .iter()
        .map(|a| common::bind(*a))
        .collect::<Result<_, _>>()?;
    event("listening", &[("count", listeners.len().to_string())]);
    let refs: Vec<&TcpListener> = listeners.iter().collect();
    while !common::term_seen() {
        for (i, mut stream) in common::accept_any(&refs, 20) {
            let local = addrs[i];
            std::thread::spawn(move || {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let path = common::read_request(&mut stream)
                    .map(|(_, p)| p)
                    .unwrap_or_default();
                common::respond(&mut stream, 200, "peer");
                event(
                    "served",
                    &[
                        ("service", json_str(&local.to_string())),
                        ("peer", json_str(&peer)),
                        ("path", json_str(&path)),
                    ],
                );
            });
        }
    }
    Ok(0)
}
