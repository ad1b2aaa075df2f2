//! A pod's story as facts: per container its runs (PID 1 exec to exit), the
//! runtime's execs into it (hooks), its TCP activity and what the API said;
//! per pod the signals, deletion requests and phases. Every fact keeps the
//! `seq` of the record that showed it, for evidence.
//!
//! Built from the pod's records in time order; the rules read only this.

pub mod api;
pub mod locate;
pub mod process;
pub mod procs;
pub mod runs;
pub mod signal;
pub mod socket;

use std::collections::HashMap;

use lifecycle_recording::event::Record;
use lifecycle_recording::pods::{
    ContainerKind, PodSpecFacts, SidecarRole, classify::Section, spec::ContainerSpecFacts,
};
use serde::{Deserialize, Serialize};

pub use api::{ApiFacts, ContainerApi, DeletionObs};
pub use procs::{ExitObs, HookExec, Instance, Place, ProcKey, ProcRole};
pub use runs::is_runtime_bootstrap;
pub use signal::{SenderClass, SignalObs};
pub use socket::{Accepted, Connection, ListenPeriod, SocketActivity};

/// A point in the recording: wall-clock ns and the record's `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct At {
    /// Wall-clock time of the record (`time_ns`), ns since the Unix epoch.
    pub ns: i64,
    /// The record's `seq`: its position in the recording.
    pub seq: u64,
}

impl At {
    /// The instant and `seq` of `record`.
    pub fn of(record: &Record) -> Self {
        Self {
            ns: record.time_ns,
            seq: record.seq,
        }
    }
}

/// Who a pod is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodRef {
    /// Empty when the recording has no pod events for it.
    pub namespace: String,
    /// The pod uid when the name is not known.
    pub name: String,
    /// The pod's UID.
    pub uid: String,
}

/// One container of the pod with everything seen of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerTimeline {
    /// Container name (`container-<first 12 hex of its id>` when only a cgroup
    /// named it).
    pub name: String,
    /// App, init, native or legacy sidecar: from the spec, else the API, else
    /// the join; `None` when none of them said.
    pub kind: Option<ContainerKind>,
    /// What the container is for (mesh proxy, log shipper, …), from the same
    /// sources as `kind`.
    pub role: Option<SidecarRole>,
    /// Its spec facts; `None` when no spec was seen or the spec does not list
    /// it.
    pub spec: Option<ContainerSpecFacts>,
    /// Its runs, in the order their PID 1 started.
    pub instances: Vec<Instance>,
    /// Processes the runtime exec'd into its runs (hooks, exec probes,
    /// `kubectl exec`), by exec time.
    pub hooks: Vec<HookExec>,
    /// Processes of the container runtime's own setup seen in the
    /// container's cgroups (runc's bootstrap stages): not the container's,
    /// counted only.
    pub runtime_setup: usize,
    /// Its TCP listens, outbound connections and accepted connections.
    pub sockets: SocketActivity,
    /// What the API reported about it (empty without pod events).
    pub api: ContainerApi,
}

impl ContainerTimeline {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: None,
            role: None,
            spec: None,
            instances: Vec::new(),
            hooks: Vec::new(),
            runtime_setup: 0,
            sockets: SocketActivity::default(),
            api: ContainerApi::default(),
        }
    }

    /// A regular (spec.containers) container: app or legacy sidecar.
    pub fn is_main(&self) -> bool {
        match &self.spec {
            Some(spec) => spec.section == Section::Regular,
            None => matches!(
                self.kind,
                Some(ContainerKind::App | ContainerKind::LegacySidecar)
            ),
        }
    }

    /// Whether it is a native sidecar (an init container with
    /// `restartPolicy: Always`).
    pub fn is_native_sidecar(&self) -> bool {
        self.kind == Some(ContainerKind::NativeSidecar)
    }

    /// Whether it is a sidecar, native or legacy.
    pub fn is_sidecar(&self) -> bool {
        self.kind.is_some_and(ContainerKind::is_sidecar)
    }

    /// The run alive at `ns`, if any.
    pub fn instance_at(&self, ns: i64) -> Option<(usize, &Instance)> {
        self.instances
            .iter()
            .enumerate()
            .rev()
            .find(|(_, i)| i.alive_at(ns))
    }

    /// Whether the PID 1 of one of its runs was running at wall-clock `ns`.
    pub fn alive_at(&self, ns: i64) -> bool {
        self.instance_at(ns).is_some()
    }

    /// First exec of the first run.
    pub fn first_exec(&self) -> Option<At> {
        self.instances.iter().filter_map(|i| i.exec).min()
    }
}

/// The facts of one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodTimeline {
    /// Namespace, name and UID.
    pub pod: PodRef,
    /// The last spec facts the API reported; `None` without an `added` or
    /// `spec_changed` event.
    pub spec: Option<PodSpecFacts>,
    /// Spec order (init containers, then regular ones), then containers
    /// the spec does not list.
    pub containers: Vec<ContainerTimeline>,
    /// Graceful delete requests (and shortened graces), in record order.
    pub deletions: Vec<DeletionObs>,
    /// When the pod was reported gone (its first `deleted` event); `None` if
    /// never.
    pub deleted: Option<At>,
    /// Phase changes (`Pending`, `Running`, `Succeeded`, …), in record order.
    pub phases: Vec<(At, String)>,
    /// Starts of the node's kubelet while the pod was there (when the agent
    /// saw the `Starting` Event, and its whole second).
    pub kubelet_starts: Vec<(At, Option<i64>)>,
    /// Signals to the pod's processes, in time order.
    pub signals: Vec<SignalObs>,
    /// Container, run and role of every process of a run except the runtime's
    /// setup, by `(pid, start_ns)`.
    pub places: HashMap<ProcKey, Place>,
    /// Wall-clock ns of the pod's first record (0 without records).
    pub first_ns: i64,
    /// Wall-clock ns of the pod's last record (0 without records).
    pub last_ns: i64,
    /// The latest time the input reached (the recording's end, or the
    /// stream's current time).
    pub horizon_ns: i64,
}

impl PodTimeline {
    /// Builds the timeline of pod `uid` from its records (time order).
    pub fn build(uid: &str, records: &[Record], horizon_ns: i64) -> Self {
        let api = ApiFacts::collect(uid, records);
        let locator = locate::Locator {
            uid,
            names_by_id: &api.names_by_id,
            api_known: api.any(),
        };
        let table = process::ProcessTable::collect(records, &locator);
        let mut names: Vec<String> = Vec::new();
        if let Some(spec) = &api.spec {
            names.extend(spec.containers.iter().map(|c| c.name.to_string()));
        }
        names.extend(api.order.iter().cloned());
        names.extend(table.containers());
        let signals = signal::collect(records, &locator);
        let mut sockets = socket::collect(records, &locator);
        names.extend(sockets.keys().cloned());
        let k8s_kinds = kinds_from_records(records, &locator);

        let (mut procs, places) = table.organise();
        let mut containers: Vec<ContainerTimeline> = Vec::new();
        for name in names {
            if containers.iter().any(|c| c.name == name) {
                continue;
            }
            let mut c = ContainerTimeline::new(&name);
            c.spec = api
                .spec
                .as_ref()
                .and_then(|s| s.container(&name))
                .map(|(_, spec)| spec.clone());
            c.api = api.containers.get(&name).cloned().unwrap_or_default();
            let seen = k8s_kinds.get(&name).copied();
            c.kind = c
                .spec
                .as_ref()
                .map(|s| s.kind)
                .or(c.api.kind)
                .or(seen.and_then(|k| k.0));
            c.role = c
                .spec
                .as_ref()
                .map(|s| s.role)
                .or(c.api.role)
                .or(seen.and_then(|k| k.1));
            if let Some(p) = procs.remove(&name) {
                c.instances = p.instances;
                c.hooks = p.hooks;
                c.runtime_setup = p.runtime_setup;
            }
            c.sockets = sockets.remove(&name).unwrap_or_default();
            containers.push(c);
        }
        let joined = identity_from_join(uid, records);
        let first_ns = records.first().map_or(0, |r| r.time_ns);
        let last_ns = records.last().map_or(0, |r| r.time_ns);
        Self {
            pod: PodRef {
                namespace: api
                    .namespace
                    .clone()
                    .or_else(|| joined.as_ref().map(|j| j.0.clone()))
                    .unwrap_or_default(),
                name: api
                    .name
                    .clone()
                    .or_else(|| joined.map(|j| j.1))
                    .unwrap_or_else(|| uid.to_owned()),
                uid: uid.to_owned(),
            },
            spec: api.spec,
            containers,
            deletions: api.deletions,
            deleted: api.deleted,
            phases: api.phases,
            kubelet_starts: api.kubelet_starts,
            signals,
            places,
            first_ns,
            last_ns,
            horizon_ns: horizon_ns.max(last_ns),
        }
    }

    /// The container called `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerTimeline> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Index of the container called `name` in `containers`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.containers.iter().position(|c| c.name == name)
    }

    /// Whether the process is its container's PID 1.
    pub fn is_pid1(&self, pid: u32, start_ns: u64) -> bool {
        self.places
            .get(&(pid, start_ns))
            .is_some_and(|p| p.role == ProcRole::Pid1)
    }
}

/// Namespace and name the join wrote on kernel records (for recordings
/// whose pod events are missing).
fn identity_from_join(uid: &str, records: &[Record]) -> Option<(String, String)> {
    records.iter().find_map(|r| match &r.event {
        lifecycle_recording::event::Event::ProcessExec(e) => e
            .process
            .k8s
            .as_ref()
            .filter(|k| k.pod_uid == uid)
            .map(|k| (k.namespace.clone(), k.pod.clone())),
        _ => None,
    })
}

type SeenKind = (Option<ContainerKind>, Option<SidecarRole>);

/// Kinds and roles the join wrote on kernel records, by container name.
fn kinds_from_records(
    records: &[Record],
    locator: &locate::Locator<'_>,
) -> HashMap<String, SeenKind> {
    let mut out = HashMap::new();
    for record in records {
        if let lifecycle_recording::event::Event::ProcessExec(e) = &record.event
            && let Some(located) = locator.process(&e.process)
            && located.kind.is_some()
        {
            out.entry(located.container)
                .or_insert((located.kind, located.role));
        }
    }
    out
}
