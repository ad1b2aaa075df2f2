//! `node-sim-workload`: the processes the node simulator runs.
//!
//! Called by its own name it takes a role (`node-sim-workload ROLE --flag
//! value ...`): the containers' main processes (mesh proxy, app, log
//! shipper, Job worker, secrets agent, database proxy, init task, mesh
//! init, pause), the cluster's peer services, and the hooks the kubelet runs
//! inside a container. Copied under the names `containerd-shim-runc-v2` and
//! `runc` it plays the container runtime: a long-lived shim that runs a
//! short-lived `runc kill` for every signal the kubelet asks for, so the
//! kernel sees the sender shape of a real node.
//!
//! Every role reports what it does as JSON lines on stdout (the container
//! log), each stamped with wall-clock and boot-clock nanoseconds.

mod apps;
mod args;
mod common;
mod hooks;
mod proxy;
mod runtime;

use args::Args;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let invoked_as = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_owned())
        .unwrap_or_default();
    let code = match invoked_as.as_str() {
        "containerd-shim-runc-v2" => runtime::shim(),
        "runc" => runtime::runc(&argv[1..]),
        _ => run_role(&argv[1..]),
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
        "app" => apps::app(&args),
        "log-shipper" => apps::log_shipper(&args),
        "job-worker" => apps::job_worker(&args),
        "secrets-agent" => apps::secrets_agent(&args),
        "db-proxy" => apps::db_proxy(&args),
        "init-task" => apps::init_task(&args),
        "mesh-init" => apps::mesh_init(&args),
        "peer-server" => apps::peer_server(&args),
        "hook-sleep" => hooks::sleep(&args),
        "hook-http" => hooks::http(&args),
        "hook-wait" => hooks::wait(&args),
        other => return usage(&format!("unknown role {other}")),
    };
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
        "{problem}\nusage: node-sim-workload ROLE [--flag value]...\n\
         roles: pause mesh-proxy app log-shipper job-worker secrets-agent db-proxy init-task \
         mesh-init peer-server hook-sleep hook-http hook-wait"
    );
    2
}
