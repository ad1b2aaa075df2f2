//! A node: pods run by kubelet-like workers on a real containerd (with
//! runc and CNI) of the node's own, sharing the node network, the API
//! server and the action log.

use std::{
    collections::BTreeMap,
    net::SocketAddrV4,
    path::PathBuf,
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use kube_api_server::TestApiServer;
use serde::Serialize;

use crate::{
    clock::Stamp,
    env::NodeEnv,
    error::SimError,
    kubelet::{KubeletVersion, Monitor, PodPlan, PodState, Stage, worker},
    log::{Action, SimLog},
    net::ClusterNetwork,
    runtime::{Cri, binaries::locate_workload, cgroups::cgroup2_mount, containerd::Containerd},
};

/// How to build a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub node_name: String,
    pub version: KubeletVersion,
    pub peers: BTreeMap<String, SocketAddrV4>,
    /// Where pod logs go; a fresh temporary directory (removed with the
    /// node) when `None`.
    pub workdir: Option<PathBuf>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            node_name: "node-a".into(),
            version: KubeletVersion::LATEST,
            peers: BTreeMap::new(),
            workdir: None,
        }
    }
}

/// A pod the node runs.
#[derive(Clone, Debug, Serialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub log_dir: PathBuf,
}

impl PodInfo {
    /// `namespace/name`, the key of the driver's log and of the pod's events.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

type Worker = JoinHandle<Result<(), SimError>>;

struct PodHandle {
    info: PodInfo,
    grace_s: i64,
    state: Arc<Monitor<PodState>>,
    thread: Option<Worker>,
}

/// A running node; dropping it aborts its pods and removes what it made.
pub struct Node {
    env: Arc<NodeEnv>,
    pods: Mutex<BTreeMap<String, PodHandle>>,
    owns_workdir: bool,
    /// How far the API server's clock runs ahead of the node's, in ms.
    api_clock_ahead_ms: std::sync::atomic::AtomicI64,
}

/// Six random hex digits.
fn random_suffix() -> String {
    let mut bytes = [0u8; 3];
    if let Ok(mut file) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut file, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Node {
    /// Prepares the work directory, the node namespace with the peers, and
    /// the node's containerd in it (images imported), connected over CRI.
    pub fn start(options: NodeOptions, api: Arc<TestApiServer>) -> Result<Self, SimError> {
        let suffix = random_suffix();
        let (workdir, owns_workdir) = match options.workdir {
            Some(dir) => (dir, false),
            None => (
                std::env::temp_dir().join(format!("node-sim-{suffix}")),
                true,
            ),
        };
        std::fs::create_dir_all(&workdir).map_err(|source| SimError::WorkDirFailed {
            path: workdir.clone(),
            source,
        })?;
        let cleanup = |e: SimError| {
            if owns_workdir {
                let _ = std::fs::remove_dir_all(&workdir);
            }
            e
        };
        // What a killed run left (its containerd, shims, mounts, pod cgroups
        // and node namespace) goes first, before anything new is named.
        if let Err(error) = crate::runtime::stale::clear_stale() {
            tracing::warn!(%error, "stale state of an earlier run not cleared");
        }
        let cgroup_root = cgroup2_mount().map_err(|e| cleanup(e.into()))?;
        let cluster =
            ClusterNetwork::create(&format!("nsim{suffix}")).map_err(|e| cleanup(e.into()))?;
        let peers: Vec<SocketAddrV4> = options.peers.values().copied().collect();
        if !peers.is_empty() {
            let workload = locate_workload().map_err(|e| cleanup(e.into()))?;
            let peer_log = std::fs::File::create(workdir.join("peers.log")).ok();
            cluster
                .start_peers(&workload, &peers, peer_log)
                .map_err(|e| cleanup(e.into()))?;
        }
        let containerd = Containerd::start(cluster.netns()).map_err(|e| cleanup(e.into()))?;
        let cri = Cri::connect(containerd.address()).map_err(|e| cleanup(e.into()))?;
        let env = NodeEnv {
            node_name: options.node_name,
            version: options.version,
            cgroup_root,
            cri: Arc::new(cri),
            containerd,
            cluster,
            peers: options.peers,
            workdir,
            api,
            log: SimLog::default(),
            kubelet: tokio::sync::watch::channel(0).0,
        };
        Ok(Self {
            env: Arc::new(env),
            pods: Mutex::new(BTreeMap::new()),
            owns_workdir,
            api_clock_ahead_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Runs the API server's clock `seconds` ahead of the node's (behind
    /// when negative) for what the API server stamps itself: a pod's
    /// creation and its delete request. The kubelet's status times stay on
    /// the node's clock, as on a real node.
    pub fn set_api_clock_ahead(&self, seconds: f64) {
        let ms = (seconds * 1000.0).round() as i64;
        self.api_clock_ahead_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// `at` on the API server's clock, in whole seconds.
    fn api_server_seconds(&self, at: Stamp) -> i64 {
        let ahead_ns = self
            .api_clock_ahead_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            * 1_000_000;
        (at.wall_ns as i64 + ahead_ns).div_euclid(1_000_000_000)
    }

    pub fn log(&self) -> &SimLog {
        &self.env.log
    }

    /// The node's CRI client (for pods outside a scenario, such as the
    /// agent's own DaemonSet pod).
    pub fn cri(&self) -> &Cri {
        &self.env.cri
    }

    pub fn containerd(&self) -> &Containerd {
        &self.env.containerd
    }

    /// The node's network namespace (containerd, the bridge, the peers).
    pub fn netns(&self) -> &crate::net::NetNs {
        self.env.cluster.netns()
    }

    /// containerd's log (for a failed run's message).
    pub fn runtime_log_tail(&self, lines: usize) -> String {
        self.env.containerd.log_tail(lines)
    }

    pub fn workdir(&self) -> &std::path::Path {
        &self.env.workdir
    }

    pub fn node_name(&self) -> &str {
        &self.env.node_name
    }

    fn pods(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PodHandle>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the pod in the API (the uid it gets names the cgroups) and
    /// starts its worker.
    pub fn run_pod(&self, plan: PodPlan) -> Result<PodInfo, SimError> {
        let created = self
            .env
            .api
            .create_pod_at(plan.manifest.clone(), self.api_server_seconds(Stamp::now()))
            .map_err(|source| SimError::ApiRefused {
                what: format!("creating pod {}", plan.key()),
                source,
            })?;
        let uid = created
            .pointer("/metadata/uid")
            .and_then(|u| u.as_str())
            .unwrap_or_default()
            .to_owned();
        self.env
            .log
            .record(&plan.key(), None, Action::PodCreated { uid: uid.clone() });
        let info = PodInfo {
            namespace: plan.namespace.clone(),
            name: plan.name.clone(),
            log_dir: self
                .env
                .workdir
                .join("pods")
                .join(format!("{}_{}_{uid}", plan.namespace, plan.name)),
            uid: uid.clone(),
        };
        let state = Arc::new(Monitor::new(PodState::new(
            plan.containers.iter().map(|c| c.name.clone()),
        )));
        let (env, worker_state, grace_s) = (self.env.clone(), state.clone(), plan.grace_s);
        let thread = std::thread::Builder::new()
            .name(format!("pod-{}", plan.name))
            .spawn(move || worker::run(env, plan, uid, worker_state))
            .map_err(|e| SimError::WorkerPanicked(e.to_string()))?;
        self.pods().insert(
            info.name.clone(),
            PodHandle {
                info: info.clone(),
                grace_s,
                state,
                thread: Some(thread),
            },
        );
        Ok(info)
    }

    pub fn pod(&self, name: &str) -> Option<PodInfo> {
        self.pods().get(name).map(|p| p.info.clone())
    }

    /// Graceful deletes, one after the other without pause (a node drain
    /// when several); `grace` overrides each pod's own.
    pub fn delete(&self, names: &[String], grace: Option<i64>) -> Result<(), SimError> {
        let targets: Vec<(PodInfo, i64, Arc<Monitor<PodState>>)> = {
            let pods = self.pods();
            names
                .iter()
                .map(|n| {
                    pods.get(n)
                        .map(|p| (p.info.clone(), grace.unwrap_or(p.grace_s), p.state.clone()))
                        .ok_or_else(|| SimError::UnknownPod(n.clone()))
                })
                .collect::<Result<_, _>>()?
        };
        for (info, grace_s, state) in targets {
            let at = Stamp::now();
            self.env
                .api
                .request_deletion(
                    &info.namespace,
                    &info.name,
                    grace_s,
                    self.api_server_seconds(at),
                )
                .map_err(|source| SimError::ApiRefused {
                    what: format!("deleting pod {}/{}", info.namespace, info.name),
                    source,
                })?;
            let key = info.key();
            self.env
                .log
                .record_at(at, &key, None, Action::DeletionRequested { grace_s });
            state.update(|s| {
                s.deletion.get_or_insert(grace_s);
            });
        }
        Ok(())
    }

    /// Waits (real `timeout`) until `check` holds for the pod's state.
    pub fn wait(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&PodState) -> bool,
    ) -> Result<(), SimError> {
        let state = self
            .pods()
            .get(name)
            .map(|p| p.state.clone())
            .ok_or_else(|| SimError::UnknownPod(name.to_owned()))?;
        let outcome = state.wait_for(Some(Instant::now() + timeout), |s| {
            if check(s) {
                Some(Ok(()))
            } else if let Some(reason) = &s.failure {
                Some(Err(SimError::PodFailed {
                    pod: name.to_owned(),
                    reason: reason.clone(),
                }))
            } else if s.stage == Stage::Gone {
                Some(Err(SimError::PodFailed {
                    pod: name.to_owned(),
                    reason: format!("gone while waiting for {what}"),
                }))
            } else {
                None
            }
        });
        outcome.unwrap_or_else(|| {
            Err(SimError::WaitTimedOut {
                what: format!("{what} of pod {name}"),
                seconds: timeout.as_secs_f64(),
            })
        })
    }

    /// A host shell sends `signal` to the container's current PID 1 with
    /// its builtin `kill` (a process outside the runtime, child of this
    /// one), as an operator on the node would.
    pub fn host_kill(&self, pod: &str, container: &str, signal: &str) -> Result<(), SimError> {
        let pid = self
            .inspect(pod, |s| {
                s.container(container)
                    .filter(|c| c.running)
                    .and_then(|c| c.current.as_ref().map(|i| i.pid))
            })?
            .ok_or_else(|| SimError::NotRunning {
                pod: pod.to_owned(),
                container: container.to_owned(),
            })?;
        let name = signal.trim_start_matches("SIG");
        let failed = |reason: String| SimError::HostKillFailed {
            signal: signal.to_owned(),
            pid,
            reason,
        };
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("kill -s {name} {pid}"))
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let sender_pid = child.id();
        let out = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            return Err(failed(format!("exit status {}", out.status)));
        }
        let key = self
            .pods()
            .get(pod)
            .map(|p| p.info.key())
            .ok_or_else(|| SimError::UnknownPod(pod.to_owned()))?;
        self.env.log.record(
            &key,
            Some(container),
            Action::HostSignalSent {
                signal: format!("SIG{name}"),
                sender_pid,
                target_pid: pid,
            },
        );
        Ok(())
    }

    /// A client outside the pod, in the node namespace, calls the pod's
    /// address on `port` every `every_s` for `for_s` (scenario seconds),
    /// in the background: the traffic a Service sends to a pod's endpoint.
    /// Its requests go to `callers.log` in the work directory.
    pub fn call(&self, pod: &str, port: u16, every_s: f64, for_s: f64) -> Result<(), SimError> {
        let ip = self
            .inspect(pod, |s| s.pod_ip)?
            .ok_or_else(|| SimError::NoPodAddress {
                pod: pod.to_owned(),
            })?;
        let key = self
            .pod(pod)
            .map(|p| p.key())
            .ok_or_else(|| SimError::UnknownPod(pod.to_owned()))?;
        let workload = locate_workload()?;
        let failed = |source| SimError::CallerFailed {
            pod: pod.to_owned(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.env.workdir.join("callers.log"))
            .map_err(failed)?;
        let caller_pid = self
            .env
            .cluster
            .start_caller(
                &workload,
                SocketAddrV4::new(ip, port),
                crate::clock::secs(every_s),
                crate::clock::secs(for_s),
                Some(log),
            )
            .map_err(failed)?;
        self.env
            .log
            .record(&key, None, Action::InboundCallsStarted { port, caller_pid });
        Ok(())
    }

    /// The kubelet dies and comes back `down_s` (scenario seconds) later,
    /// as a node's kubelet restarted by systemd does. Its in-flight
    /// StopContainer calls are reset (containerd then sends no SIGKILL);
    /// the new kubelet posts its `Starting` Event on the Node and, finding
    /// pods still deleting, stops their containers again from the start
    /// with the full grace.
    pub fn restart_kubelet(&self, down_s: f64) -> Result<(), SimError> {
        let states: Vec<(String, Arc<Monitor<PodState>>)> = self
            .pods()
            .values()
            .map(|p| (p.info.key(), p.state.clone()))
            .collect();
        let generation = *self.env.kubelet.borrow() + 1;
        for (_, state) in &states {
            state.update(|s| {
                s.kubelet_generation = generation;
                s.kubelet_down = true;
            });
        }
        self.env.kubelet.send_replace(generation);
        for (key, _) in &states {
            self.env.log.record(key, None, Action::KubeletStopped);
        }
        std::thread::sleep(crate::clock::secs(down_s));
        let started = Stamp::now();
        self.env
            .api
            .kubelet_started(
                &self.env.node_name,
                (started.wall_ns / 1_000_000_000) as i64,
            )
            .map_err(|source| SimError::ApiRefused {
                what: format!(
                    "posting the kubelet's Starting event on {}",
                    self.env.node_name
                ),
                source,
            })?;
        for (key, state) in &states {
            state.update(|s| s.kubelet_down = false);
            self.env
                .log
                .record_at(started, key, None, Action::KubeletStarted);
        }
        Ok(())
    }

    /// Reads the pod's state.
    pub fn inspect<R>(&self, name: &str, f: impl FnOnce(&PodState) -> R) -> Result<R, SimError> {
        let state = self
            .pods()
            .get(name)
            .map(|p| p.state.clone())
            .ok_or_else(|| SimError::UnknownPod(name.to_owned()))?;
        Ok(state.read(f))
    }

    /// Waits for every pod worker to end (pods not deleted are aborted) and
    /// returns the first error.
    pub fn finish(&self) -> Result<(), SimError> {
        let mut first_error = None;
        let handles: Vec<(String, Arc<Monitor<PodState>>, Option<Worker>)> = self
            .pods()
            .iter_mut()
            .map(|(n, p)| (n.clone(), p.state.clone(), p.thread.take()))
            .collect();
        for (name, state, thread) in handles {
            let Some(thread) = thread else { continue };
            if state.read(|s| s.stage != Stage::Gone && s.deletion.is_none()) {
                tracing::warn!(pod = name, "pod still running at the end: aborting it");
                state.update(|s| s.aborted = true);
            }
            let result = thread
                .join()
                .unwrap_or_else(|panic| Err(SimError::WorkerPanicked(format!("{panic:?}"))));
            if let Err(error) = result
                && first_error.is_none()
                && !matches!(error, SimError::Aborted)
            {
                first_error = Some(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Aborts every pod: stops waiting, kills what runs, cleans up.
    pub fn abort(&self) {
        for pod in self.pods().values() {
            pod.state.update(|s| s.aborted = true);
        }
        let _ = self.finish();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.abort();
        if self.owns_workdir {
            let _ = std::fs::remove_dir_all(&self.env.workdir);
        }
    }
}
