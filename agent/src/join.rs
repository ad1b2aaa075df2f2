//! The join: kernel records get the pod and container the API knows them by.
//!
//! A process or socket whose cgroup is a container's carries the pod uid and
//! container id (from the cgroup path); the pod store maps them to
//! namespace, pod name, container name, kind and role. Events of containers
//! the API has not reported yet (the kernel sees a container's first exec a
//! second or two before its status is published) are held in a bounded
//! buffer and written when the pod model catches up, or written without the
//! Kubernetes names once they expire; both are counted.

use std::time::Instant;

pub use lifecycle_recording::join::{JoinCounters, K8sRef};

use crate::{
    attribution::CgroupClass,
    event::{Event, Process, Record},
    pods::{
        MeshMode, PendingBuffer, PendingLimits, PodStore, Released, Resolution,
        pending::PendingCounters,
    },
};

/// What a cgroup resolves to in the pod store.
enum Lookup {
    Found(K8sRef),
    /// Not reported yet: worth waiting for. `pod_known` tells a missing
    /// container of a known pod from a pod the API has not shown at all.
    NotYet {
        pod_uid: String,
        container_id: String,
        pod_known: bool,
    },
    /// Not a pod's cgroup, or nothing to wait for.
    None,
}

/// `give_up` is set when a held record expires: an unreported container of
/// a fully reported pod is then taken to be its sandbox (pause) container.
/// Before that it may just as well be a restarted container whose new id
/// the kubelet has not published yet, so it waits.
fn lookup(store: &PodStore, class: Option<&CgroupClass>, give_up: bool) -> Lookup {
    let (pod_uid, container_id) = match class {
        Some(CgroupClass::Container(c)) => (c.pod_uid.as_str(), Some(c.container_id.as_str())),
        Some(CgroupClass::Pod(p)) => (p.pod_uid.as_str(), None),
        _ => return Lookup::None,
    };
    let resolution = store.resolve(pod_uid, container_id.unwrap_or(""));
    let pod_only = |pod: &crate::pods::PodIdentity, mesh: MeshMode, pod_deleted: bool| K8sRef {
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        pod_uid: pod.uid.clone(),
        container: None,
        container_kind: None,
        container_role: None,
        mesh_mode: mesh,
        pod_deleted,
    };
    match (resolution, container_id) {
        (Resolution::Container(c), _) => Lookup::Found(K8sRef {
            container: Some(c.container),
            container_kind: Some(c.kind),
            container_role: Some(c.role),
            ..pod_only(&c.pod, c.mesh, c.pod_deleted)
        }),
        (
            Resolution::UnlistedContainer {
                pod,
                mesh,
                pod_deleted,
                ..
            },
            None,
        ) => Lookup::Found(pod_only(&pod, mesh, pod_deleted)),
        (
            Resolution::UnlistedContainer {
                pod,
                mesh,
                likely_sandbox: true,
                pod_deleted,
            },
            Some(_),
        ) if give_up => Lookup::Found(pod_only(&pod, mesh, pod_deleted)),
        (resolution, id) => Lookup::NotYet {
            pod_uid: pod_uid.to_string(),
            container_id: id.unwrap_or_default().to_string(),
            pod_known: !matches!(resolution, Resolution::PodUnknown),
        },
    }
}

/// The processes and sockets of a record whose cgroups can be joined.
fn joinable(event: &mut Event) -> Vec<(&Option<CgroupClass>, &mut Option<K8sRef>)> {
    fn process(p: &mut Process) -> (&Option<CgroupClass>, &mut Option<K8sRef>) {
        (&p.cgroup, &mut p.k8s)
    }
    match event {
        Event::SignalGenerate(e) => vec![process(&mut e.sender), process(&mut e.target)],
        Event::SignalDeliver(e) => vec![process(&mut e.process)],
        Event::SignalSummary(e) => vec![process(&mut e.process)],
        Event::ProcessExec(e) => vec![process(&mut e.process)],
        Event::ProcessFork(e) => vec![process(&mut e.parent), process(&mut e.child)],
        Event::ProcessExit(e) => vec![process(&mut e.process)],
        Event::Socket(e) => {
            let mut out = vec![(&e.socket_cgroup, &mut e.socket_k8s)];
            if let Some(owner) = e.owner.as_mut() {
                out.push(process(owner));
            }
            out
        }
        Event::Cgroup(_) | Event::Stats(_) | Event::Pod(_) => Vec::new(),
    }
}

/// A record after the join: ready to write, or waiting for a container.
enum Filled {
    Ready(Record),
    Waiting {
        record: Record,
        pod_uid: String,
        container_id: String,
    },
}

/// Pod uids remembered as never shown by the API (see `Joiner::fill`).
const MAX_UNKNOWN_PODS: usize = 1024;

pub struct Joiner {
    store: PodStore,
    pending: PendingBuffer<Record>,
    held: u64,
    /// Pods whose held events expired with the pod still unknown to the
    /// API (e.g. static pods, whose cgroup uid is the manifest hash, or pods
    /// of another API server): their later events are written at once
    /// instead of waiting again.
    unknown_pods: std::collections::HashSet<String>,
    not_held: u64,
}

impl Joiner {
    pub fn new(store: PodStore, limits: PendingLimits) -> Self {
        Self {
            store,
            pending: PendingBuffer::new(limits),
            held: 0,
            unknown_pods: std::collections::HashSet::new(),
            not_held: 0,
        }
    }

    fn remember_unknown(&mut self, pod_uid: &str) {
        if self.unknown_pods.len() >= MAX_UNKNOWN_PODS {
            self.unknown_pods.clear();
        }
        self.unknown_pods.insert(pod_uid.to_string());
    }

    /// Fills the Kubernetes names it can, and says whether some container
    /// is not reported yet (then the record should wait).
    fn fill(&mut self, mut record: Record, give_up: bool) -> Filled {
        let mut waiting: Option<(String, String)> = None;
        for (class, k8s) in joinable(&mut record.event) {
            match lookup(&self.store, class.as_ref(), give_up) {
                Lookup::Found(found) => *k8s = Some(found),
                Lookup::NotYet {
                    pod_uid,
                    container_id,
                    pod_known,
                } => {
                    if give_up && !pod_known {
                        self.remember_unknown(&pod_uid);
                    }
                    if pod_known || !self.unknown_pods.contains(&pod_uid) {
                        waiting.get_or_insert((pod_uid, container_id));
                    } else if !give_up {
                        self.not_held += 1;
                    }
                }
                Lookup::None => {}
            }
        }
        match waiting {
            Some((pod_uid, container_id)) => Filled::Waiting {
                record,
                pod_uid,
                container_id,
            },
            None => Filled::Ready(record),
        }
    }

    /// A new record: returned to be written now, or held (then the returned
    /// list holds whatever the buffer pushed out to make room).
    pub fn join(&mut self, record: Record, now: Instant) -> Vec<Record> {
        match self.fill(record, false) {
            Filled::Ready(record) => vec![record],
            Filled::Waiting {
                record,
                pod_uid,
                container_id,
            } => {
                self.held += 1;
                let pushed_out =
                    self.pending
                        .hold(&self.store, &pod_uid, &container_id, record, now);
                pushed_out
                    .into_iter()
                    .map(|released| self.finish(released))
                    .collect()
            }
        }
    }

    /// Held records whose containers are now known, and those too old to wait.
    pub fn release(&mut self, now: Instant) -> Vec<Record> {
        let released = self.pending.release(&self.store, now);
        let mut out = Vec::with_capacity(released.len());
        for r in released {
            out.push(self.finish(r));
        }
        out
    }

    /// At shutdown: everything still held, joined as far as possible.
    pub fn flush(&mut self) -> Vec<Record> {
        let far_future = Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
        self.release(far_future)
    }

    fn finish(&mut self, released: Released<Record>) -> Record {
        let (record, give_up) = match released {
            Released::Attributed { item, .. } => (item, false),
            Released::Expired { item, .. } => (item, true),
        };
        // Join again: other processes of the record may have resolved too.
        match self.fill(record, give_up) {
            Filled::Ready(record) | Filled::Waiting { record, .. } => record,
        }
    }

    pub fn counters(&self) -> JoinCounters {
        let PendingCounters {
            attributed_late,
            expired_unattributed,
            expired_likely_sandbox,
            ..
        } = self.pending.counters();
        JoinCounters {
            held: self.held,
            attributed_late,
            expired_unattributed,
            expired_likely_sandbox,
            unknown_pod_not_held: self.not_held,
        }
    }
}
