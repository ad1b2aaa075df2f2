//! Plays a scenario on a fresh node and collects what happened: the
//! driver's log and every event the workloads reported.

use std::{
    collections::BTreeMap,
    net::SocketAddrV4,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use kube_api_server::TestApiServer;
use serde::Serialize;
use serde_json::Value;

use super::{Scenario, ScenarioError, Step, model::PodNames};
use crate::{
    clock::Stamp,
    error::SimError,
    kubelet::{PodPlan, Stage},
    log::Entry,
    node::{Node, NodeOptions, PodInfo},
};

/// Overrides for one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub node_name: Option<String>,
    /// Keep pod logs here instead of a temporary directory.
    pub workdir: Option<PathBuf>,
    /// Real-time limit of each wait step (default 30 s).
    pub wait_timeout: Option<Duration>,
    /// Plays the scenario with another kubelet version's behaviour.
    pub kubelet: Option<crate::kubelet::KubeletVersion>,
}

/// One line a workload wrote (its container log).
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadEvent {
    /// `namespace/name`, or `cluster` for the peer services.
    pub pod: String,
    pub container: String,
    /// Restart count of the run (`None` for hook processes).
    pub run: Option<u32>,
    pub event: Value,
}

/// What a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub node_name: String,
    pub started: Stamp,
    pub finished: Stamp,
    pub pods: Vec<PodInfo>,
    pub log: Vec<Entry>,
    pub events: Vec<WorkloadEvent>,
}

impl ScenarioReport {
    /// The pod named `name` (metadata.name).
    pub fn pod(&self, name: &str) -> Option<&PodInfo> {
        self.pods.iter().find(|p| p.name == name)
    }

    /// Log entries of a pod (by name) and, if given, a container.
    pub fn entries(&self, pod: &str, container: Option<&str>) -> impl Iterator<Item = &Entry> {
        let key = self.pod(pod).map(|p| p.key()).unwrap_or_default();
        let container = container.map(str::to_owned);
        self.log.iter().filter(move |e| {
            e.pod == key && (container.is_none() || e.container.as_deref() == container.as_deref())
        })
    }

    /// Workload events of a container with this `ev` name; `pod` is a pod
    /// name, or `cluster` (container `peers`) for the peer services.
    pub fn events_of(
        &self,
        pod: &str,
        container: &str,
        ev: &str,
    ) -> impl Iterator<Item = &WorkloadEvent> {
        let key = self
            .pod(pod)
            .map(|p| p.key())
            .unwrap_or_else(|| pod.to_owned());
        let (container, ev) = (container.to_owned(), ev.to_owned());
        self.events.iter().filter(move |e| {
            e.pod == key && e.container == container && e.event["ev"] == ev.as_str()
        })
    }
}

fn peers(scenario: &Scenario) -> Result<BTreeMap<String, SocketAddrV4>, ScenarioError> {
    scenario
        .peers
        .iter()
        .map(|(name, address)| {
            address
                .parse()
                .map(|a| (name.clone(), a))
                .map_err(|_| ScenarioError::BadPeerAddress {
                    name: name.clone(),
                    address: address.clone(),
                })
        })
        .collect()
}

fn default_steps(scenario: &Scenario) -> Vec<Step> {
    let all = PodNames::Many(
        scenario
            .pods
            .iter()
            .filter_map(|p| {
                p.manifest
                    .pointer("/metadata/name")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect(),
    );
    vec![
        Step::WaitReady(all.clone()),
        Step::Sleep(1.0),
        Step::Delete {
            pods: all.clone(),
            grace: None,
        },
        Step::WaitGone(all),
    ]
}

/// Runs `scenario` against `api` on a fresh node; the node is gone (every
/// container, sandbox, cgroup, namespace and process removed) when this
/// returns.
pub fn run(
    scenario: &Scenario,
    api: Arc<TestApiServer>,
    options: RunOptions,
) -> Result<ScenarioReport, SimError> {
    let node = Node::start(
        NodeOptions {
            node_name: options.node_name.clone().unwrap_or_else(|| "node-a".into()),
            version: options.kubelet.unwrap_or(scenario.kubelet),
            peers: peers(scenario)?,
            workdir: options.workdir.clone(),
        },
        api,
    )?;
    run_on(&node, scenario, &options)
}

/// Plays `scenario` on a running node (its peers must be the node's);
/// returns when every pod worker ended. The node stays up.
pub fn run_on(
    node: &Node,
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<ScenarioReport, SimError> {
    let node_name = node.node_name().to_owned();
    node.set_api_clock_ahead(scenario.api_clock_ahead);
    let started = Stamp::now();
    let plans: Vec<PodPlan> = scenario
        .pods
        .iter()
        .map(|entry| PodPlan::build(entry, &node_name))
        .collect::<Result<_, _>>()?;
    let mut pods = Vec::new();
    for plan in plans {
        pods.push(node.run_pod(plan)?);
    }
    let steps = if scenario.steps.is_empty() {
        default_steps(scenario)
    } else {
        scenario.steps.clone()
    };
    let timeout = options.wait_timeout.unwrap_or(Duration::from_secs(30));
    let played = steps.iter().try_for_each(|step| play(node, step, timeout));
    let finished_ok = node.finish();
    let finished = Stamp::now();
    played?;
    finished_ok?;
    let events = read_events(node.workdir(), &pods);
    Ok(ScenarioReport {
        scenario: scenario.name.clone(),
        node_name,
        started,
        finished,
        pods,
        log: node.log().entries(),
        events,
    })
}

/// The scenario's peers, parsed (for [`NodeOptions::peers`]).
pub fn peers_of(scenario: &Scenario) -> Result<BTreeMap<String, SocketAddrV4>, SimError> {
    Ok(peers(scenario)?)
}

/// Plays one step.
pub fn play(node: &Node, step: &Step, timeout: Duration) -> Result<(), SimError> {
    tracing::info!(?step, "step");
    let each = |names: &PodNames, what: &str, check: &dyn Fn(&crate::kubelet::PodState) -> bool| {
        names
            .names()
            .iter()
            .try_for_each(|name| node.wait(name, what, timeout, check))
    };
    match step {
        Step::WaitReady(names) => each(names, "Ready", &|s| s.pod_ready),
        Step::WaitGone(names) => each(names, "deletion", &|s| s.stage == Stage::Gone),
        Step::WaitPhase { pod, phase } => node.wait(pod, &format!("phase {phase}"), timeout, |s| {
            &s.phase == phase
        }),
        Step::WaitStarted { pod, container } => {
            node.wait(pod, &format!("start of {container}"), timeout, |s| {
                s.container(container)
                    .is_some_and(|c| c.started && c.running)
            })
        }
        Step::WaitExited { pod, container } => {
            node.wait(pod, &format!("exit of {container}"), timeout, |s| {
                s.container(container)
                    .is_some_and(|c| !c.running && c.last_exit.is_some())
            })
        }
        Step::WaitRestarts {
            pod,
            container,
            count,
        } => node.wait(
            pod,
            &format!("{count} restarts of {container}"),
            timeout,
            |s| {
                s.container(container)
                    .is_some_and(|c| c.restarts >= *count && c.running)
            },
        ),
        Step::Sleep(seconds) => {
            std::thread::sleep(crate::clock::secs(*seconds));
            Ok(())
        }
        Step::Delete { pods, grace } => node.delete(&pods.names(), *grace),
        Step::HostKill {
            pod,
            container,
            signal,
        } => node.host_kill(pod, container, signal),
        Step::RestartKubelet { down } => node.restart_kubelet(*down),
        Step::Call {
            pod,
            port,
            every,
            for_s,
        } => node.call(pod, *port, *every, *for_s),
    }
}

/// A line of a CRI container log (`<RFC 3339> <stream> <F|P> <content>`,
/// as containerd writes them) without its prefix; other lines (hook
/// output, the peers' log) as they are.
fn cri_log_content(line: &str) -> &str {
    let mut fields = line.splitn(4, ' ');
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(_), Some("stdout" | "stderr"), Some("F" | "P"), Some(content)) => content,
        _ => line,
    }
}

/// Every JSON line of the pods' container logs and the peers' log.
fn read_events(workdir: &Path, pods: &[PodInfo]) -> Vec<WorkloadEvent> {
    let mut events = Vec::new();
    let mut read = |path: &Path, pod: &str, container: &str, run: Option<u32>| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            if let Ok(event) = serde_json::from_str::<Value>(cri_log_content(line)) {
                events.push(WorkloadEvent {
                    pod: pod.to_owned(),
                    container: container.to_owned(),
                    run,
                    event,
                });
            }
        }
    };
    for pod in pods {
        let key = pod.key();
        let Ok(entries) = std::fs::read_dir(&pod.log_dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let Some(stem) = file.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if file.extension().is_none_or(|x| x != "log") {
                continue;
            }
            let Some((container, suffix)) = stem.rsplit_once('-') else {
                continue;
            };
            read(&file, &key, container, suffix.parse().ok());
        }
    }
    read(&workdir.join("peers.log"), "cluster", "peers", None);
    read(&workdir.join("callers.log"), "cluster", "callers", None);
    events
}
