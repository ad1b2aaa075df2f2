//! Hand-written record sequences for the audit tests: a pod from a
//! manifest, then processes, signals, sockets and API changes at chosen
//! times, written as the recorder would write them (`net`: sockets).

mod checks;
mod net;
mod pods;
mod runtime;

use std::collections::HashMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use lifecycle_recording::cgroup::{CgroupClass, CgroupDriver, ContainerCgroup, QosClass, Runtime};
use lifecycle_recording::event::{
    Event, Process, ProcessExec, ProcessExit, ProcessFork, Record, SignalDeliver, SignalGenerate,
};
use lifecycle_recording::join::K8sRef;
use lifecycle_recording::pods::{
    ClassificationRules, PodChange, PodEvent, PodSpecFacts,
    ids::ContainerId,
    status::{ConditionSnapshot, ContainerChange, TerminatedFacts},
    time::{ApiTimeSource, Stamp},
};
use lifecycle_recording::time::{NS_PER_S, format_rfc3339_nanos};
use serde_json::Value;

use super::{AuditConfig, PodAudit, audit_records};

pub use checks::{ORDERED_STOP_HOLDS, assert_held, kinds, one, outcome, problems};
pub use pods::{deleted_legacy_pod, istio_legacy, istio_native, runc_legacy_pod};

/// 2027-01-15T08:00:00Z: every script starts on a whole second.
pub const BASE_NS: i64 = 1_800_000_000 * NS_PER_S;

/// A process of the script.
#[derive(Clone, Debug)]
pub struct Proc {
    /// The process's pid.
    pub pid: u32,
    /// The `start_ns` its records carry (taken from the script's clock); with
    /// `pid` it names the process.
    pub start_ns: u64,
    process: Process,
}

impl Proc {
    /// The process as the last record written for it shows it.
    pub fn process(&self) -> &Process {
        &self.process
    }
}

/// Who sends a signal.
pub enum By<'a> {
    /// `runc` under `containerd-shim`.
    Runtime,
    /// A host process with this comm.
    Host(&'a str),
    /// A process of the pod.
    Proc(&'a Proc),
}

/// One pod's records, written step by step at a clock the test moves, and
/// its audit.
pub struct Script {
    uid: String,
    namespace: String,
    name: String,
    spec: PodSpecFacts,
    records: Vec<Record>,
    now_ns: i64,
    next_pid: u32,
    next_socket: u64,
    runs: HashMap<String, u32>,
    reserved: HashMap<String, String>,
    current: HashMap<String, (String, u64)>,
    api_server_offset_ns: i64,
}

impl Script {
    /// A pod from a manifest (`metadata` and `spec`); writes its `added` event.
    pub fn new(manifest: Value) -> Self {
        Self::with_uid(manifest, "5c1e0c2a-7d1f-4d2b-9a55-0f3e4d2c1b0a")
    }

    /// [`Script::new`] for a pod with another uid.
    pub fn with_uid(manifest: Value, uid: &str) -> Self {
        let meta: ObjectMeta =
            serde_json::from_value(manifest["metadata"].clone()).expect("metadata");
        let spec: PodSpec = serde_json::from_value(manifest["spec"].clone()).expect("spec");
        let facts = PodSpecFacts::from_pod(&meta, &spec, &ClassificationRules::default());
        let mut script = Self {
            uid: uid.into(),
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            name: meta.name.clone().unwrap_or_else(|| "pod".into()),
            spec: facts.clone(),
            records: Vec::new(),
            now_ns: BASE_NS,
            next_pid: 1000,
            next_socket: 1,
            runs: HashMap::new(),
            reserved: HashMap::new(),
            current: HashMap::new(),
            api_server_offset_ns: 0,
        };
        script.pod_event(PodChange::Added {
            spec: Box::new(facts),
        });
        script
    }

    /// The pod's uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Moves the clock to `ms` milliseconds after the start.
    pub fn at(&mut self, ms: f64) -> &mut Self {
        self.now_ns = BASE_NS + (ms * 1e6) as i64;
        self
    }

    fn push(&mut self, event: Event, kernel: bool) {
        let seq = self.records.len() as u64;
        self.records.push(Record {
            seq,
            time: format_rfc3339_nanos(i128::from(self.now_ns)),
            time_ns: self.now_ns,
            boot_ns: kernel.then_some(self.now_ns as u64 - BASE_NS as u64 + NS_PER_S as u64),
            cpu: kernel.then_some(0),
            event,
        });
    }

    fn api_s(&self) -> i64 {
        self.now_ns.div_euclid(NS_PER_S)
    }

    fn pod_event(&mut self, change: PodChange) {
        self.pod_event_at(change, self.api_s());
    }

    /// A pod event whose API time is `api_s` (whole seconds).
    fn pod_event_at(&mut self, change: PodChange, api_s: i64) {
        let source = match &change {
            PodChange::DeletionRequested { .. } => ApiTimeSource::DeletionRequest,
            PodChange::ContainerTransition { .. } => ApiTimeSource::StartedAt,
            PodChange::KubeletStarted => ApiTimeSource::EventTime,
            _ => ApiTimeSource::StatusUpdate,
        };
        let event = PodEvent {
            at: Stamp::with_api(self.now_ns, Some(api_s), source),
            namespace: self.namespace.clone(),
            pod: self.name.clone(),
            pod_uid: self.uid.clone(),
            change,
        };
        self.push(Event::Pod(event), false);
    }

    fn container_change(&mut self, container: &str, transition: ContainerChange) {
        let (_, c) = self.spec.container(container).expect("container in spec");
        let change = PodChange::ContainerTransition {
            container: container.into(),
            container_kind: c.kind,
            container_role: c.role,
            transition,
        };
        self.pod_event(change);
    }

    fn new_id(&mut self, container: &str) -> String {
        let run = self.runs.entry(container.into()).or_insert(0);
        *run += 1;
        let index = self.spec.container(container).map_or(99, |(i, _)| i);
        format!("{:0>64}", format!("c{index:02x}a{:04x}", *run))
    }

    /// The API reports the container running: the run started last, or the
    /// next one when none started yet.
    pub fn api_running(&mut self, container: &str) -> &mut Self {
        let id = match (self.reserved.get(container), self.current.get(container)) {
            (Some(id), _) | (None, Some((id, _))) => id.clone(),
            (None, None) => {
                let id = self.new_id(container);
                self.reserved.insert(container.into(), id.clone());
                id
            }
        };
        let runs = self.runs[container];
        self.container_change(
            container,
            ContainerChange::Running {
                container_id: ContainerId::parse(&format!("containerd://{id}")),
                restart_count: runs as i32 - 1,
            },
        );
        self
    }

    /// The API reports the container's `started` flag true.
    pub fn api_started(&mut self, container: &str) -> &mut Self {
        self.container_change(container, ContainerChange::Started { started: true });
        self
    }

    /// The API reports the container ready.
    pub fn api_ready(&mut self, container: &str) -> &mut Self {
        self.container_change(container, ContainerChange::Ready { ready: true });
        self
    }

    /// The API reports the container terminated with `code` in this second.
    pub fn api_terminated(&mut self, container: &str, code: i32) -> &mut Self {
        let id = self.current.get(container).map(|(id, _)| id.clone());
        let facts = TerminatedFacts {
            exit_code: code,
            signal: None,
            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
            started_at_s: None,
            finished_at_s: Some(self.api_s()),
            container_id: id.and_then(|i| ContainerId::parse(&format!("containerd://{i}"))),
        };
        self.container_change(
            container,
            ContainerChange::Terminated {
                facts: Box::new(facts),
                restart_count: 0,
            },
        );
        self
    }

    /// The pod condition `kind` (e.g. `ContainersReady`) becomes `status`.
    pub fn condition(&mut self, kind: &str, status: bool) -> &mut Self {
        self.pod_event(PodChange::ConditionTransition {
            condition: ConditionSnapshot {
                kind: kind.into(),
                status: if status { "True" } else { "False" }.into(),
                reason: None,
                last_transition_s: Some(self.api_s()),
            },
        });
        self
    }

    /// The node's kubelet starts: its `Starting` Event, seen now, stamped
    /// with this whole second.
    pub fn kubelet_started(&mut self) -> &mut Self {
        self.pod_event(PodChange::KubeletStarted);
        self
    }

    /// The API reports the pod's phase (`Running`, `Failed`, …).
    pub fn phase(&mut self, phase: &str) -> &mut Self {
        self.pod_event(PodChange::PhaseChanged {
            phase: phase.into(),
        });
        self
    }

    /// Runs the API server's clock `seconds` ahead of the node's (behind
    /// when negative): the times the API server stamps (a delete request)
    /// move, the kubelet's and the kernel's do not.
    pub fn api_server_ahead(&mut self, seconds: f64) -> &mut Self {
        self.api_server_offset_ns = (seconds * 1e9) as i64;
        self
    }

    /// A graceful delete with `grace_s`, requested now (on the API
    /// server's clock).
    pub fn delete(&mut self, grace_s: i64) -> &mut Self {
        let request = (self.now_ns + self.api_server_offset_ns).div_euclid(NS_PER_S);
        let change = PodChange::DeletionRequested {
            deletion_timestamp_s: request + grace_s,
            grace_period_s: Some(grace_s),
        };
        self.pod_event_at(change, request);
        self
    }

    /// The pod is gone from the API (a watch `deleted` event).
    pub fn deleted(&mut self) -> &mut Self {
        self.pod_event(PodChange::Deleted {
            reason: lifecycle_recording::pods::DeletedReason::WatchDeleted,
        });
        self
    }

    fn container_process(&mut self, container: &str, comm: &str, start_ns: u64) -> Process {
        let (id, cgroup_id) = self
            .current
            .get(container)
            .cloned()
            .expect("container started");
        let (_, c) = self.spec.container(container).expect("container in spec");
        Process {
            pid: self.next_pid,
            tid: self.next_pid,
            start_ns,
            comm: comm.chars().take(15).collect(),
            cgroup_id,
            cgroup: Some(CgroupClass::Container(ContainerCgroup {
                runtime: Runtime::Containerd,
                container_id: id,
                pod_uid: self.uid.clone(),
                qos: QosClass::Burstable,
                driver: CgroupDriver::Systemd,
                sub_path: None,
            })),
            k8s: Some(K8sRef {
                namespace: self.namespace.clone(),
                pod: self.name.clone(),
                pod_uid: self.uid.clone(),
                container: Some(container.into()),
                container_kind: Some(c.kind),
                container_role: Some(c.role),
                mesh_mode: self.spec.mesh.mode,
                pod_deleted: false,
            }),
        }
    }

    fn host_process(&mut self, comm: &str) -> Process {
        self.next_pid += 1;
        Process {
            pid: self.next_pid,
            tid: self.next_pid,
            start_ns: self.now_ns as u64,
            comm: comm.into(),
            cgroup_id: 1,
            cgroup: Some(CgroupClass::NotKubernetes),
            k8s: None,
        }
    }

    fn exec(&mut self, container: &str, filename: &str, parent_pid: u32) -> Proc {
        self.next_pid += 1;
        let comm = filename.rsplit('/').next().unwrap_or(filename);
        let process = self.container_process(container, comm, self.now_ns as u64);
        self.push_exec(process, filename, parent_pid)
    }

    /// A `process_exec` record of `process` running `filename`.
    fn push_exec(&mut self, process: Process, filename: &str, parent_pid: u32) -> Proc {
        self.push(
            Event::ProcessExec(ProcessExec {
                process: process.clone(),
                parent_pid,
                filename: filename.into(),
                filename_truncated: false,
                recovered: None,
            }),
            true,
        );
        Proc::of(process)
    }

    /// A new run of `container`: its PID 1 execs `filename` (the
    /// simulator's way: no runtime process shows in the cgroup).
    pub fn start(&mut self, container: &str, filename: &str) -> Proc {
        self.new_run(container);
        self.exec(container, filename, 1)
    }

    /// Gives `container` the container id and cgroup of a new run.
    fn new_run(&mut self, container: &str) {
        let id = match self.reserved.remove(container) {
            Some(id) => id,
            None => self.new_id(container),
        };
        let cgroup_id = 5000 + self.records.len() as u64;
        self.current.insert(container.into(), (id, cgroup_id));
    }

    /// The runtime execs `filename` into the running container (a hook).
    pub fn hook(&mut self, container: &str, filename: &str) -> Proc {
        let shim = self.host_process("runc");
        self.exec(container, filename, shim.pid)
    }

    /// `parent` forks and the child execs `filename` in the same container.
    pub fn child(&mut self, parent: &Proc, filename: &str) -> Proc {
        let container = parent
            .process
            .k8s
            .as_ref()
            .and_then(|k| k.container.clone())
            .expect("pod process");
        let mut child = self.container_process(&container, "fork", self.now_ns as u64);
        self.next_pid += 1;
        child.pid = self.next_pid;
        child.tid = self.next_pid;
        self.push(
            Event::ProcessFork(ProcessFork {
                parent: parent.process.clone(),
                child: child.clone(),
            }),
            true,
        );
        let mut exec = child.clone();
        exec.comm = filename.rsplit('/').next().unwrap_or(filename).into();
        self.push(
            Event::ProcessExec(ProcessExec {
                process: exec.clone(),
                parent_pid: parent.pid,
                filename: filename.into(),
                filename_truncated: false,
                recovered: None,
            }),
            true,
        );
        Proc {
            pid: exec.pid,
            start_ns: exec.start_ns,
            process: exec,
        }
    }

    /// `p` exits by itself with `code`.
    pub fn exit(&mut self, p: &Proc, code: i32) -> &mut Self {
        self.push(
            Event::ProcessExit(ProcessExit {
                process: p.process.clone(),
                exit_code_raw: (code as u32) << 8,
                exit_status: Some(code),
                killed_by_signal: None,
                container_exit_code: code,
            }),
            true,
        );
        self
    }

    /// `p` dies of `signal` (container exit code 128 + signal).
    pub fn killed(&mut self, p: &Proc, signal: i32) -> &mut Self {
        self.push(
            Event::ProcessExit(ProcessExit {
                process: p.process.clone(),
                exit_code_raw: signal as u32,
                exit_status: None,
                killed_by_signal: Some(signal),
                container_exit_code: 128 + signal,
            }),
            true,
        );
        self
    }

    /// `from` sends `signal` to `target`, whose disposition is `handler`
    /// (`default`, `handler`, or `ignore`: then the kernel reports it ignored).
    pub fn signal(&mut self, from: By<'_>, target: &Proc, signal: i32, handler: &str) -> &mut Self {
        self.signal_with(from, target, signal, handler, None)
    }

    /// `from` sends `signal` to `target`, a pid namespace's init without a
    /// handler for it: the kernel drops it (`ignored`, no delivery).
    pub fn signal_to_bare_init(&mut self, from: By<'_>, target: &Proc, signal: i32) -> &mut Self {
        self.signal_with(from, target, signal, "init-default", Some(true))
    }

    fn signal_with(
        &mut self,
        from: By<'_>,
        target: &Proc,
        signal: i32,
        handler: &str,
        ns_init: Option<bool>,
    ) -> &mut Self {
        let (sender, parent_comm, code) = match from {
            By::Runtime => (self.host_process("runc"), "containerd-shim", 0),
            By::Host(comm) => (self.host_process(comm), "bash", 0),
            By::Proc(p) => (p.process.clone(), "sh", 0),
        };
        let ignored = handler == "ignore" || ns_init == Some(true);
        let action = if handler == "init-default" {
            "default"
        } else {
            handler
        };
        self.push(
            Event::SignalGenerate(SignalGenerate {
                sender,
                sender_parent_pid: 1,
                sender_parent_comm: parent_comm.into(),
                target: target.process.clone(),
                signal,
                signal_name: lifecycle_recording::event::names::signal_name(signal),
                code,
                code_name: lifecycle_recording::event::names::si_code_name(code).into(),
                errno: 0,
                group: true,
                result: if ignored { "ignored" } else { "delivered" }.into(),
                target_action: Some(action.into()),
                target_ns_init: ns_init,
            }),
            true,
        );
        if !ignored {
            self.push(
                Event::SignalDeliver(SignalDeliver {
                    process: target.process.clone(),
                    signal,
                    signal_name: lifecycle_recording::event::names::signal_name(signal),
                    code,
                    handler: handler.into(),
                    sa_flags: 0,
                }),
                true,
            );
        }
        self
    }

    /// The runtime's SIGTERM, handled by the target.
    pub fn term(&mut self, target: &Proc) -> &mut Self {
        self.signal(By::Runtime, target, 15, "handler")
    }

    /// The runtime's SIGKILL; the target dies of it.
    pub fn kill(&mut self, target: &Proc) -> &mut Self {
        self.signal(By::Runtime, target, 9, "default");
        self.killed(target, 9)
    }

    /// Every record written so far, in `seq` order.
    pub fn records(&self) -> Vec<Record> {
        self.records.clone()
    }

    /// The pod's audit with the default settings.
    pub fn audit(&self) -> PodAudit {
        self.audit_with(&AuditConfig::default())
    }

    /// The pod's audit with `config`; panics if the pod is not audited.
    pub fn audit_with(&self, config: &AuditConfig) -> PodAudit {
        audit_records(self.records(), config)
            .into_iter()
            .find(|a| a.pod.uid == self.uid)
            .expect("the pod is audited")
    }
}

/// A manifest: `containers` and `init` are JSON arrays of containers.
pub fn manifest(init: Value, containers: Value, extra_spec: Value) -> Value {
    let mut spec =
        serde_json::json!({"initContainers": init, "containers": containers, "nodeName": "node-a"});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(extra.clone());
    }
    serde_json::json!({
        "metadata": {"name": "web-6d4cf56db6-abcde", "namespace": "shop",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": "web-6d4cf56db6", "uid": "r1", "controller": true}]},
        "spec": spec,
    })
}
