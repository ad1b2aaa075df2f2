//! The driver's own tests, without the agent, on the node's real
//! containerd: kubelet cgroup names, the pod network from CNI, the capture
//! rules and a redirected connection, the runtime's signal path, and
//! termination ordering per kubelet version. Everything
//! observable is read from the machine (/proc, cgroupfs, `ip`,
//! `iptables-save`), the workloads' own logs, or the driver's log.
//!
//! One module per theme; this file has the node and log helpers.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

mod cgroups;
mod network;
mod ordering;
mod runtime;

use std::time::Duration;

use lifecycle_testkit::require_root;
use node_sim::{
    Action, Node, NodeOptions, PodPlan, Scenario, ScenarioReport, SimApi,
    log::Entry,
    net::netns::tool,
    scenario::{PodNames, RunOptions, Step, run::play},
};

const WAIT: Duration = Duration::from_secs(30);

/// One driver test at a time: they share the machine's two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scenario(yaml: &str) -> Scenario {
    Scenario::parse(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// A node with one pod of `scenario` running and Ready.
struct Live {
    node: Node,
    _api: SimApi,
    name: String,
}

impl Live {
    fn start(scenario: &Scenario) -> Self {
        require_root();
        let api = SimApi::start(scenario.kubelet).expect("API server");
        let peers = scenario
            .peers
            .iter()
            .map(|(n, a)| (n.clone(), a.parse().expect("peer")))
            .collect();
        let node = Node::start(
            NodeOptions {
                peers,
                ..NodeOptions::default()
            },
            api.server(),
        )
        .expect("node");
        let plan = PodPlan::build(&scenario.pods[0], "node-a").expect("plan");
        let name = plan.name.clone();
        node.run_pod(plan).expect("pod");
        play(&node, &Step::WaitReady(PodNames::One(name.clone())), WAIT).expect("ready");
        Self {
            node,
            _api: api,
            name,
        }
    }

    fn entries(&self) -> Vec<Entry> {
        self.node.log().entries()
    }

    /// (container, pid, container id) of every started container.
    fn containers(&self) -> Vec<(String, u32, String)> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e.action {
                Action::ContainerStarted {
                    pid, container_id, ..
                } => Some((e.container?, pid, container_id)),
                _ => None,
            })
            .collect()
    }

    fn netns(&self) -> String {
        self.entries()
            .into_iter()
            .find_map(|e| match e.action {
                Action::SandboxStarted { netns, .. } => Some(netns),
                _ => None,
            })
            .expect("sandbox")
    }

    fn ip_netns(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(tool("nsenter"))
            .arg(format!("--net={}", self.netns()))
            .args(args)
            .output()
            .expect("nsenter --net");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deletes the pod, waits until it is gone, and returns the log.
    fn delete(self) -> Vec<Entry> {
        self.delete_then(|_| ()).0
    }

    /// Like [`Self::delete`], running `after` before the node (and its pod
    /// logs) goes away.
    fn delete_then<T>(self, after: impl FnOnce(&Live) -> T) -> (Vec<Entry>, T) {
        self.node
            .delete(std::slice::from_ref(&self.name), None)
            .expect("delete");
        play(
            &self.node,
            &Step::WaitGone(PodNames::One(self.name.clone())),
            WAIT,
        )
        .expect("gone");
        self.node.finish().expect("clean finish");
        let result = after(&self);
        (self.entries(), result)
    }
}

/// Plays a whole scenario (driver only).
fn run(yaml: &str) -> ScenarioReport {
    require_root();
    let scenario = scenario(yaml);
    let api = SimApi::start(scenario.kubelet).expect("API server");
    node_sim::scenario::run(&scenario, api.server(), RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

const PLAIN: &str = r#"
name: plain
description: two containers
pods:
  - manifest:
      metadata: {name: plain-1, namespace: default}
      spec:
        terminationGracePeriodSeconds: 10
        containers:
          - {name: web, image: nginx:1.27, readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
          - {name: worker, image: busybox:1.36}
    containers:
      web: {role: app-server, serve: 8080}
      worker: {role: app-server}
"#;
fn events(live: &Live, container: &str, ev: &str) -> Vec<serde_json::Value> {
    let dir = live.node.pod(&live.name).expect("pod").log_dir;
    std::fs::read_dir(&dir)
        .expect("log dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{container}-")))
        })
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        // CRI log lines: `<time> <stream> <F|P> <content>`.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.splitn(4, ' ').last()?).ok())
        .filter(|e| e["ev"] == ev)
        .collect()
}

/// Log entries of a container with this action.
fn at<'a>(log: &'a [Entry], container: &str, matches: impl Fn(&Action) -> bool) -> &'a Entry {
    log.iter()
        .find(|e| e.container.as_deref() == Some(container) && matches(&e.action))
        .unwrap_or_else(|| panic!("{container}: no such entry in {log:#?}"))
}

/// When the driver asked the runtime to stop the container.
fn sigterm(log: &[Entry], container: &str) -> u64 {
    at(log, container, |a| {
        matches!(a, Action::StopRequested { .. })
    })
    .at
    .boot_ns
}

fn exited(log: &[Entry], container: &str) -> u64 {
    at(log, container, |a| {
        matches!(a, Action::ContainerExited { .. })
    })
    .at
    .boot_ns
}

fn t0(log: &[Entry]) -> u64 {
    log.iter()
        .find(|e| matches!(e.action, Action::TerminationStarted { .. }))
        .expect("termination")
        .at
        .boot_ns
}
