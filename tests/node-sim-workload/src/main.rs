//! `node-sim-workload`: the processes the node simulator runs.
//!
//! It takes a role (`node-sim-workload ROLE --flag value ...`): the
//! containers' main processes (mesh proxy, app, log shipper, Job worker,
//! secrets agent, database proxy, init task, mesh init, pause), the
//! cluster's peer services, and the hooks the kubelet runs inside a
//! container. Invoked as `pause` with no arguments it is the pause process,
//! so a sandbox image can carry it as `/pause`.
//!
//! In a container it may be PID 1 of its pid namespace, and then reaps
//! every child that exits ([`reap`]).
//!
//! Every role reports what it does as JSON lines on stdout (the container
//! log), each stamped with wall-clock and boot-clock nanoseconds.

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

mod apps;
mod args;
mod common;
mod hooks;
mod net;
mod pilot_agent;
mod proxy;
mod reap;

use std::path::Path;

use args::Args;

fn main() {
    reap::start_if_init();
    let argv: Vec<String> = std::env::args().collect();
    let code = match argv.as_slice() {
        [argv0] if Path::new(argv0).file_name().is_some_and(|n| n == "pause") => {
            finish(apps::pause())
        }
        [_, rest @ ..] => run_role(rest),
        [] => usage("no role given"),
    };
    std::process::exit(code);
}

fn run_role(argv: &[String]) -> i32 {
    let Some((role, rest)) = argv.split_first() else {
        return usage("no role given");
    };
    let args = match Args::parse(rest) {
        Ok(args) => args,
        Err(e) => return usage(&e),
    };
    let result = match role.as_str() {
        "pause" => apps::pause(),
        "mesh-proxy" => proxy::run(&args),
        "pilot-agent" => pilot_agent::run(&args),
        "app" => apps::app(&args),
        "log-shipper" => apps::log_shipper(&args),
        "job-worker" => apps::job_worker(&args),
        "secrets-agent" => apps::secrets_agent(&args),
        "db-proxy" => apps::db_proxy(&args),
        "init-task" => apps::init_task(&args),
        "mesh-init" => apps::mesh_init(&args),
        "peer-server" => apps::peer_server(&args),
        "caller" => apps::caller(&args),
        "hook-sleep" => hooks::sleep(&args),
        "hook-http" => hooks::http(&args),
        "hook-wait" => hooks::wait(&args),
        other => return usage(&format!("unknown role {other}")),
    };
    finish(result)
}

/// A role's exit code; an error is logged as an `error` event and exits 1.
fn finish(result: Result<i32, String>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            common::event("error", &[("message", common::json_str(&e))]);
            1
        }
    }
}

fn usage(problem: &str) -> i32 {
    eprintln!(
        "{problem}\nusage: node-sim-workload ROLE [--flag value]...   (or `pause`, under that name)\n\
         roles: pause mesh-proxy pilot-agent app log-shipper job-worker secrets-agent db-proxy init-task \
         mesh-init peer-server caller hook-sleep hook-http hook-wait"
    );
    2
}
