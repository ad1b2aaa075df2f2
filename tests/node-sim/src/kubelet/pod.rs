//! A pod's resources on the node: its cgroup, network namespace, shim and
//! sandbox, set up before its containers and torn down after them.

use std::{
    fs,
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
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
    net::{PodNetwork, netns::tool},
    runtime::{
        CgroupDir, Instance, Launch, Shim,
        cgroups::{container_name, pod_path},
        new_container_id,
    },
};

/// Everything one pod's threads share.
pub struct PodContext {
    pub plan: PodPlan,
    pub uid: String,
    /// `namespace/name`
    pub key: String,
    pub state: Arc<Monitor<PodState>>,
    pub sandbox: Mutex<Option<Arc<Instance>>>,
    /// Prober threads, joined at teardown.
    pub threads: Mutex<Vec<JoinHandle<()>>>,
    /// Serialises readiness publications.
    publishing: Mutex<()>,
    pub status: StatusWriter,
    pub env: Arc<NodeEnv>,
    pub shim: Shim,
    pub net: PodNetwork,
    pub cgroup: CgroupDir,
    /// Container logs: `<workdir>/pods/<namespace>_<name>_<uid>/`.
    pub log_dir: PathBuf,
    pub rules_file: Option<PathBuf>,
}

impl PodContext {
    /// Pod cgroup, network namespace (capture rules written out), shim,
    /// sandbox; the status says the sandbox is ready.
    pub fn prepare(
        env: Arc<NodeEnv>,
        plan: PodPlan,
        uid: String,
        state: Arc<Monitor<PodState>>,
    ) -> Result<Arc<Self>, SimError> {
        let key = plan.key();
        let cgroup = CgroupDir::create(env.cgroup_root.join(pod_path(env.driver, plan.qos, &uid)))?;
        let net = env.cluster.add_pod()?;
        let log_dir = env
            .workdir
            .join("pods")
            .join(format!("{}_{}_{uid}", plan.namespace, plan.name));
        fs::create_dir_all(&log_dir).map_err(|source| SimError::WorkDirFailed {
            path: log_dir.clone(),
            source,
        })?;
        let rules_file = match &plan.capture {
            Some(capture) => {
                let path = log_dir.join("capture.rules");
                fs::write(&path, capture.rules()).map_err(|source| SimError::WorkDirFailed {
                    path: path.clone(),
                    source,
                })?;
                Some(path)
            }
            None => None,
        };
        let sandbox_id = new_container_id();
        let shim = Shim::start(&env.binaries, &sandbox_id)?;
        let status = StatusWriter::new(env.api.clone(), env.clock, &plan.namespace, &plan.name);
        let ctx = Arc::new(Self {
            key,
            uid,
            state,
            sandbox: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            publishing: Mutex::new(()),
            status,
            shim,
            net,
            cgroup,
            log_dir,
            rules_file,
            plan,
            env,
        });
        ctx.start_sandbox(sandbox_id)?;
        if let (Some(rules), false) = (&ctx.rules_file, ctx.plan.capture_by_init) {
            // No init container installs the capture: the CNI plugin does.
            crate::net::netns::run(
                Command::new(tool("ip"))
                    .args(["netns", "exec", ctx.net.ns.name()])
                    .arg(tool("iptables-restore"))
                    .arg(rules),
            )?;
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

    fn start_sandbox(self: &Arc<Self>, id: String) -> Result<(), SimError> {
        let cgroup =
            CgroupDir::create(self.cgroup.path.join(container_name(self.env.driver, &id)))?;
        let mut command = Command::new(&self.env.binaries.workload);
        command.arg("pause");
        let launch = Launch {
            command,
            netns: Some(self.net.ns.open()?),
            user: None,
            log: fs::File::create(self.log_dir.join("sandbox.log")).ok(),
        };
        let instance = Instance::start("", id.clone(), cgroup, launch, |_| {})?;
        self.env.log.record(
            &self.key,
            None,
            Action::SandboxStarted {
                container_id: id,
                pid: instance.pid,
                shim_pid: self.shim.pid(),
                netns: self.net.ns.name().to_owned(),
                pod_ip: self.net.ip.to_string(),
            },
        );
        *self.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(instance));
        Ok(())
    }

    /// StopPodSandbox: the pause process gets SIGKILL through the runtime.
    pub fn stop_sandbox(&self) {
        let sandbox = self
            .sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(sandbox) = sandbox {
            self.signal(None, sandbox.pid, libc::SIGKILL);
            sandbox.join();
        }
    }

    /// One stop signal through the shim, logged.
    pub fn signal(&self, container: Option<&str>, pid: u32, signal: i32) {
        match self.shim.kill(pid, signal) {
            Ok(report) => self.log_kill(container, &report),
            Err(error) => tracing::warn!(%error, pod = self.key, pid, signal, "runc kill failed"),
        }
    }

    pub fn log_kill(&self, container: Option<&str>, report: &crate::runtime::KillReport) {
        for target in &report.report.targets {
            self.env.log.record(
                &self.key,
                container,
                Action::SignalSent {
                    signal: report.report.signal,
                    target_pid: target.pid,
                    runc_pid: report.runc_pid,
                    shim_pid: report.shim_pid,
                    before_boot_ns: report.report.before_boot_ns,
                    after_boot_ns: report.report.after_boot_ns,
                    errno: target.errno,
                },
            );
        }
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

    /// Kills whatever is still in the pod's cgroups (error and abort paths)
    /// and waits for every thread that holds the pod, so dropping the
    /// context removes cgroups, namespace and shim.
    pub fn teardown(&self) {
        let populated = || {
            fs::read_to_string(self.cgroup.path.join("cgroup.events"))
                .map(|e| e.lines().any(|l| l == "populated 1"))
                .unwrap_or(false)
        };
        if populated() {
            tracing::warn!(pod = self.key, "killing processes left in the pod");
            let _ = fs::write(self.cgroup.path.join("cgroup.kill"), "1");
            let deadline = Instant::now() + Duration::from_secs(5);
            while populated() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
        // The state outlives the pod (the node keeps it for waiters): take
        // the runs out so their cgroups go now, before the pod's.
        let instances: Vec<Arc<Instance>> = self.state.update(|s| {
            s.containers
                .values_mut()
                .flat_map(|c| c.current.take().into_iter().chain(c.previous.drain(..)))
                .collect()
        });
        for instance in &instances {
            instance.join();
        }
        drop(instances);
        if let Some(sandbox) = self
            .sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            sandbox.join();
        }
    }
}
