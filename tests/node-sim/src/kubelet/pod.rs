//! A pod's resources on the node: its cgroup (made by the kubelet, as the
//! cgroupfs driver does), its sandbox (`RunPodSandbox`: pause, network
//! namespace, CNI address) and its log directory, set up before its
//! containers and torn down after them (`StopPodSandbox`,
//! `RemoveContainer`, `RemovePodSandbox`, the pod cgroup removed).

use std::{
    collections::HashMap,
    fs,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use k8s_cri::v1::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata,
};

use super::{
    plan::{ContainerKind, PodPlan},
    state::{Monitor, PodState},
    status::{Readiness, StatusWriter},
};
use crate::{
    env::NodeEnv,
    error::SimError,
    log::Action,
    net::{PodNetwork, cluster::NODE_IP, netns},
    runtime::{Instance, cgroups::pod_path, cri::SandboxInfo, hierarchy},
};

/// Everything one pod's threads share.
pub struct PodContext {
    pub plan: PodPlan,
    pub uid: String,
    /// `namespace/name`
    pub key: String,
    pub state: Arc<Monitor<PodState>>,
    pub sandbox: SandboxInfo,
    /// What `RunPodSandbox` got; `CreateContainer` needs it again.
    pub sandbox_config: PodSandboxConfig,
    /// Prober threads, joined at teardown.
    pub threads: Mutex<Vec<JoinHandle<()>>>,
    /// Serialises readiness publications.
    publishing: Mutex<()>,
    pub status: StatusWriter,
    pub env: Arc<NodeEnv>,
    pub net: PodNetwork,
    /// The pod cgroup, relative to each hierarchy's root.
    pub cgroup: PathBuf,
    /// Container logs (the sandbox's log directory):
    /// `<workdir>/pods/<namespace>_<name>_<uid>/`.
    pub log_dir: PathBuf,
    pub rules_file: Option<PathBuf>,
    sandbox_gone: AtomicBool,
}

/// The CRI labels the kubelet puts on sandboxes and containers.
pub fn pod_labels(plan: &PodPlan, uid: &str) -> HashMap<String, String> {
    HashMap::from([
        ("io.kubernetes.pod.name".into(), plan.name.clone()),
        ("io.kubernetes.pod.namespace".into(), plan.namespace.clone()),
        ("io.kubernetes.pod.uid".into(), uid.to_owned()),
    ])
}

fn pid_mode(share_pid: bool) -> i32 {
    if share_pid {
        NamespaceMode::Pod as i32
    } else {
        NamespaceMode::Container as i32
    }
}

/// The namespaces of a pod's sandbox or container: network and IPC per
/// pod, pid per container unless `shareProcessNamespace`.
pub fn namespaces(share_pid: bool) -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: pid_mode(share_pid),
        ipc: NamespaceMode::Pod as i32,
        ..NamespaceOption::default()
    }
}

fn sandbox_config(plan: &PodPlan, uid: &str, log_dir: &std::path::Path) -> PodSandboxConfig {
    let cgroup = pod_path(plan.qos, uid);
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: plan.name.clone(),
            uid: uid.to_owned(),
            namespace: plan.namespace.clone(),
            attempt: 0,
        }),
        hostname: plan.name.clone(),
        log_directory: log_dir.display().to_string(),
        labels: pod_labels(plan, uid),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{}", cgroup.display()),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(plan.share_pid)),
                ..LinuxSandboxSecurityContext::default()
            }),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    }
}

/// The pause process's parent: the pod's `containerd-shim-runc-v2`.
fn parent_of(pid: u32) -> u32 {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

impl PodContext {
    /// Pod cgroup, log directory (capture rules written out), sandbox; the
    /// status says the sandbox is ready.
    pub fn prepare(
        env: Arc<NodeEnv>,
        plan: PodPlan,
        uid: String,
        state: Arc<Monitor<PodState>>,
    ) -> Result<Arc<Self>, SimError> {
        let key = plan.key();
        let cgroup = pod_path(plan.qos, &uid);
        hierarchy::create_pod_cgroup(&cgroup)?;
        env.containerd.track_cgroup(&cgroup);
        let log_dir = env
            .workdir
            .join("pods")
            .join(format!("{}_{}_{uid}", plan.namespace, plan.name));
        let prepared = (|| {
            fs::create_dir_all(&log_dir).map_err(|source| SimError::WorkDirFailed {
                path: log_dir.clone(),
                source,
            })?;
            let rules_file = match &plan.capture {
                Some(capture) => {
                    let path = log_dir.join("capture.rules");
                    fs::write(&path, capture.rules()).map_err(|source| {
                        SimError::WorkDirFailed {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    Some(path)
                }
                None => None,
            };
            let config = sandbox_config(&plan, &uid, &log_dir);
            let id = env.cri.run_pod_sandbox(&key, config.clone())?;
            let sandbox = match env.cri.sandbox_status(&key, &id) {
                Ok(sandbox) => sandbox,
                Err(error) => {
                    let _ = env.cri.stop_pod_sandbox(&key, &id);
                    let _ = env.cri.remove_pod_sandbox(&key, &id);
                    return Err(error.into());
                }
            };
            Ok((rules_file, config, sandbox))
        })();
        let (rules_file, sandbox_config, sandbox) = match prepared {
            Ok(p) => p,
            Err(error) => {
                let _ = hierarchy::remove_pod_cgroup(&cgroup);
                return Err(error);
            }
        };
        let net = PodNetwork {
            netns: PathBuf::from(&sandbox.netns),
            ip: sandbox
                .ip
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            gateway: NODE_IP,
        };
        env.log.record(
            &key,
            None,
            Action::SandboxStarted {
                container_id: sandbox.id.clone(),
                pid: sandbox.pid,
                shim_pid: parent_of(sandbox.pid),
                netns: sandbox.netns.clone(),
                pod_ip: sandbox.ip.clone(),
            },
        );
        state.update(|s| s.pod_ip = Some(net.ip));
        let status = StatusWriter::new(env.api.clone(), &plan.namespace, &plan.name);
        let ctx = Arc::new(Self {
            key,
            uid,
            state,
            sandbox,
            sandbox_config,
            threads: Mutex::new(Vec::new()),
            publishing: Mutex::new(()),
            status,
            net,
            cgroup,
            log_dir,
            rules_file,
            plan,
            env,
            sandbox_gone: AtomicBool::new(false),
        });
        if !ctx.plan.capture_by_init {
            // No init container installs the capture: the CNI plugin does.
            ctx.install_capture(false)?;
        }
        let has_init = ctx
            .plan
            .containers
            .iter()
            .any(|c| c.kind != ContainerKind::Main);
        ctx.status.sandbox_ready(
            &ctx.net.gateway.to_string(),
            &ctx.net.ip.to_string(),
            has_init,
        );
        Ok(ctx)
    }

    /// The mesh's iptables rules into the pod's network namespace. The
    /// images carry no iptables, so the driver enters the sandbox's
    /// namespace for the init container (or the CNI plugin) it stands for.
    pub fn install_capture(&self, by_init: bool) -> Result<(), SimError> {
        let Some(rules) = &self.rules_file else {
            return Ok(());
        };
        netns::restore_rules(&self.net.netns, rules)?;
        self.env
            .log
            .record(&self.key, None, Action::CaptureInstalled { by_init });
        Ok(())
    }

    /// `namespace/name/container`, for CRI errors.
    pub fn target(&self, container: &str) -> String {
        format!("{}/{container}", self.key)
    }

    /// StopPodSandbox (the runtime SIGKILLs pause and tears the network
    /// down), then the kubelet's garbage collection: RemoveContainer for
    /// every run, RemovePodSandbox, and the pod cgroup. Once.
    pub fn stop_sandbox(&self) {
        if self.sandbox_gone.swap(true, Ordering::SeqCst) {
            return;
        }
        let cri = &self.env.cri;
        match cri.stop_pod_sandbox(&self.key, &self.sandbox.id) {
            Ok(()) => {
                self.env.log.record(&self.key, None, Action::SandboxStopped);
            }
            Err(error) => tracing::warn!(%error, pod = self.key, "StopPodSandbox failed"),
        }
        let ids: Vec<(String, String)> = self.state.read(|s| {
            s.containers
                .values()
                .flat_map(|c| c.current.iter().chain(c.previous.iter()))
                .map(|i| (i.name.clone(), i.id.clone()))
                .collect()
        });
        for (name, id) in ids {
            if let Err(error) = cri.remove_container(&self.target(&name), &id) {
                tracing::warn!(%error, pod = self.key, container = name, "RemoveContainer failed");
            }
        }
        match cri.remove_pod_sandbox(&self.key, &self.sandbox.id) {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, pod = self.key, "RemovePodSandbox failed"),
        }
        if let Err(error) = hierarchy::remove_pod_cgroup(&self.cgroup) {
            tracing::warn!(%error, pod = self.key, "cannot remove the pod cgroup");
        }
        self.env.log.record(&self.key, None, Action::SandboxRemoved);
    }

    /// The pod conditions that follow from the containers' flags.
    pub fn readiness(&self, state: &PodState) -> Readiness {
        let flag = |kind: ContainerKind| {
            self.plan
                .of_kind(kind)
                .all(|c| state.container(&c.name).is_some_and(|s| s.ready))
        };
        let containers_ready = flag(ContainerKind::Main);
        let initialized = !matches!(
            state.stage,
            super::state::Stage::Preparing | super::state::Stage::Initializing
        );
        Readiness {
            initialized,
            containers_ready,
            ready: containers_ready && flag(ContainerKind::Sidecar),
        }
    }

    /// Publishes a container's started/ready flags with the pod conditions.
    pub fn publish_flags(&self, container: &str) {
        // One publisher at a time, so the last write reflects the last state.
        let _turn = self.publishing.lock().unwrap_or_else(|e| e.into_inner());
        let (started, ready, readiness) = self.state.read(|s| {
            let c = s.container(container);
            (
                c.is_some_and(|c| c.started),
                c.is_some_and(|c| c.ready),
                self.readiness(s),
            )
        });
        // The API first: a waiter acting on the state must find it there.
        self.status.flags(container, started, ready, &readiness);
        self.state.update(|s| s.pod_ready = readiness.ready);
    }

    pub fn set_phase(&self, phase: &str) {
        if self.state.read(|s| s.phase == phase) {
            return;
        }
        // The API first: a waiter acting on the state must find it there.
        self.status.phase(phase);
        let phase = phase.to_owned();
        self.env.log.record(
            &self.key,
            None,
            Action::PhaseChanged {
                phase: phase.clone(),
            },
        );
        self.state.update(|s| s.phase = phase);
    }

    /// Error and abort paths: stops what still runs (StopContainer with no
    /// grace), waits for every thread that holds the pod, and removes the
    /// sandbox and the pod cgroup.
    pub fn teardown(&self) {
        let running: Vec<(String, String)> = self.state.read(|s| {
            s.containers
                .iter()
                .filter(|(_, c)| c.running)
                .filter_map(|(n, c)| c.current.as_ref().map(|i| (n.clone(), i.id.clone())))
                .collect()
        });
        for (name, id) in running {
            tracing::warn!(
                pod = self.key,
                container = name,
                "stopping a container left running"
            );
            let _ = self.env.cri.stop_container(&self.target(&name), &id, 0);
        }
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
        let instances: Vec<Arc<Instance>> = self.state.read(|s| {
            s.containers
                .values()
                .flat_map(|c| c.current.iter().chain(c.previous.iter()).cloned())
                .collect()
        });
        for instance in &instances {
            instance.join(true);
        }
        self.stop_sandbox();
    }
}
