//! One pod in the store: its spec facts and its observed history.

use std::sync::Arc;

use serde::Serialize;

use crate::pods::classify::ClassificationRules;
use crate::pods::diff::{UpdateTime, condition_changes, container_changes};
use crate::pods::event::{DeletedReason, PodChange, PodEvent};
use crate::pods::ids::{ContainerId, IdKey};
use crate::pods::raw::DecodedPod;
use crate::pods::spec::PodSpecFacts;
use crate::pods::status::{
    ConditionSnapshot, ConditionTransition, ContainerSnapshot, ContainerTransition,
};
use crate::pods::time::{ApiTimeSource, Stamp, api_seconds};

/// Who a pod is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PodIdentity {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid.
    pub uid: String,
}

/// Caps on the history kept per pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Transitions kept per container (oldest dropped first).
    pub per_container: usize,
    /// Condition and phase transitions kept per pod.
    pub per_pod: usize,
}

/// What the agent observed of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerEntry {
    /// Latest status snapshot (none until the kubelet reported the container).
    pub current: Option<ContainerSnapshot>,
    /// Transitions, oldest first.
    pub history: Vec<ContainerTransition>,
    /// Every run id seen for this container, oldest first.
    pub ids: Vec<ContainerId>,
    /// Transitions dropped because of [`HistoryLimits::per_container`].
    pub history_dropped: u32,
}

/// The pending graceful deletion of a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeletionFacts {
    /// `deletionTimestamp`, Unix seconds.
    pub deletion_timestamp_s: i64,
    /// `deletionGracePeriodSeconds`.
    pub grace_period_s: Option<i64>,
    /// When the agent saw it; API time is the request time.
    pub seen: Stamp,
}

/// Everything the store knows about one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodEntry {
    /// Identity, shared with resolutions.
    pub identity: Arc<PodIdentity>,
    /// `creationTimestamp`, Unix seconds.
    pub created_s: Option<i64>,
    /// Spec facts.
    pub spec: PodSpecFacts,
    /// One entry per entry of `spec.containers`, same order.
    pub containers: Vec<ContainerEntry>,
    /// Latest `status.phase`.
    pub phase: Option<String>,
    /// Phase changes, oldest first.
    pub phase_history: Vec<(Stamp, String)>,
    /// Latest conditions.
    pub conditions: Vec<ConditionSnapshot>,
    /// Condition changes, oldest first.
    pub condition_history: Vec<ConditionTransition>,
    /// Graceful deletion, once requested.
    pub deletion: Option<DeletionFacts>,
    /// Set when the pod is gone (kept for a while for late attribution).
    pub deleted: Option<(Stamp, DeletedReason)>,
}

fn push_bounded<T>(list: &mut Vec<T>, item: T, cap: usize) -> bool {
    list.push(item);
    if list.len() > cap.max(1) {
        list.remove(0);
        return true;
    }
    false
}

fn lifecycle_spec_differs(old: &PodSpecFacts, pod: &DecodedPod) -> bool {
    let init = pod.spec.init_containers.iter().flatten();
    let new: Vec<(&str, &str)> = init
        .chain(pod.spec.containers.iter())
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
        .collect();
    new.len() != old.containers.len()
        || new
            .iter()
            .zip(&old.containers)
            .any(|((n, i), c)| *n != &*c.name || *i != &*c.image)
}

impl PodEntry {
    /// A entry for a pod seen for the first time, plus its events: `added`
    /// followed by whatever its status already shows.
    pub fn first_seen(
        pod: &DecodedPod,
        rules: &ClassificationRules,
        limits: HistoryLimits,
        observed_ns: i64,
        new_ids: &mut Vec<(IdKey, usize)>,
    ) -> (Self, Vec<PodEvent>) {
        let meta = &pod.meta;
        let spec = PodSpecFacts::from_pod(meta, &pod.spec, rules);
        let created_s = meta.creation_timestamp.as_ref().map(api_seconds);
        let mut entry = Self {
            identity: Arc::new(PodIdentity {
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
                uid: meta.uid.clone().unwrap_or_default(),
            }),
            created_s,
            containers: vec![ContainerEntry::default(); spec.containers.len()],
            spec,
            phase: None,
            phase_history: Vec::new(),
            conditions: Vec::new(),
            condition_history: Vec::new(),
            deletion: None,
            deleted: None,
        };
        let added = entry.event(
            Stamp::with_api(observed_ns, created_s, ApiTimeSource::CreationTimestamp),
            PodChange::Added {
                spec: Box::new(entry.spec.clone()),
            },
        );
        let mut events = vec![added];
        events.extend(entry.update(pod, rules, limits, observed_ns, new_ids));
        (entry, events)
    }

    /// Folds a newer version of the pod into the entry; returns the events
    /// for what changed and appends newly seen container ids to `new_ids`.
    pub fn update(
        &mut self,
        pod: &DecodedPod,
        rules: &ClassificationRules,
        limits: HistoryLimits,
        observed_ns: i64,
        new_ids: &mut Vec<(IdKey, usize)>,
    ) -> Vec<PodEvent> {
        let t = UpdateTime {
            observed_ns,
            status_written_s: pod.status_written_s,
        };
        let mut events = Vec::new();
        if lifecycle_spec_differs(&self.spec, pod) {
            self.spec = PodSpecFacts::from_pod(&pod.meta, &pod.spec, rules);
            self.containers
                .resize_with(self.spec.containers.len(), ContainerEntry::default);
            events.push(self.event(
                Stamp::observed(observed_ns),
                PodChange::SpecChanged {
                    spec: Box::new(self.spec.clone()),
                },
            ));
        }

        let status = &pod.status;
        if status.phase.is_some() && status.phase != self.phase {
            let phase = status.phase.clone().unwrap_or_default();
            let at = Stamp::with_api(observed_ns, t.status_written_s, ApiTimeSource::StatusUpdate);
            push_bounded(&mut self.phase_history, (at, phase.clone()), limits.per_pod);
            self.phase = Some(phase.clone());
            events.push(self.event(at, PodChange::PhaseChanged { phase }));
        }

        let statuses = status.init_container_statuses.iter().flatten();
        for cs in statuses.chain(status.container_statuses.iter().flatten()) {
            let Some((index, facts)) = self.spec.container(&cs.name) else {
                tracing::debug!(pod = %self.identity.name, container = %cs.name,
                    "status for a container not in the spec");
                continue;
            };
            let (name, kind, role) = (facts.name.to_string(), facts.kind, facts.role);
            let snapshot = ContainerSnapshot::from(cs);
            let entry = &mut self.containers[index];
            let ids = snapshot.container_id.iter().chain(
                snapshot
                    .last_terminated
                    .iter()
                    .filter_map(|t| t.container_id.as_ref()),
            );
            for id in ids {
                if !entry.ids.contains(id) {
                    // Most containers only ever have one run: no spare room.
                    entry.ids.reserve_exact(1);
                    entry.ids.push(id.clone());
                    new_ids.push((id.key.clone(), index));
                }
            }
            for transition in container_changes(entry.current.as_ref(), &snapshot, t) {
                events.push(PodEvent {
                    at: transition.at,
                    namespace: self.identity.namespace.clone(),
                    pod: self.identity.name.clone(),
                    pod_uid: self.identity.uid.clone(),
                    change: PodChange::ContainerTransition {
                        container: name.clone(),
                        container_kind: kind,
                        container_role: role,
                        transition: transition.change.clone(),
                    },
                });
                if push_bounded(&mut entry.history, transition, limits.per_container) {
                    entry.history_dropped += 1;
                }
            }
            entry.current = Some(snapshot);
        }

        let conditions: Vec<ConditionSnapshot> = status
            .conditions
            .iter()
            .flatten()
            .map(ConditionSnapshot::from)
            .collect();
        for change in condition_changes(&self.conditions, &conditions, t) {
            events.push(self.event(
                change.at,
                PodChange::ConditionTransition {
                    condition: change.condition.clone(),
                },
            ));
            push_bounded(&mut self.condition_history, change, limits.per_pod);
        }
        self.conditions = conditions;

        if let Some(ts) = pod.meta.deletion_timestamp.as_ref().map(api_seconds) {
            let grace = pod.meta.deletion_grace_period_seconds;
            let changed = self
                .deletion
                .is_none_or(|d| d.deletion_timestamp_s != ts || d.grace_period_s != grace);
            if changed {
                let requested = grace.map(|g| ts - g);
                let seen = Stamp::with_api(observed_ns, requested, ApiTimeSource::DeletionRequest);
                self.deletion = Some(DeletionFacts {
                    deletion_timestamp_s: ts,
                    grace_period_s: grace,
                    seen,
                });
                events.push(self.event(
                    seen,
                    PodChange::DeletionRequested {
                        deletion_timestamp_s: ts,
                        grace_period_s: grace,
                    },
                ));
            }
        }
        events
    }

    /// Marks the pod deleted and returns the `deleted` event.
    pub fn mark_deleted(&mut self, reason: DeletedReason, observed_ns: i64) -> PodEvent {
        let at = Stamp::observed(observed_ns);
        self.deleted = Some((at, reason));
        self.event(at, PodChange::Deleted { reason })
    }

    /// Builds an event about this pod.
    pub fn event(&self, at: Stamp, change: PodChange) -> PodEvent {
        PodEvent {
            at,
            namespace: self.identity.namespace.clone(),
            pod: self.identity.name.clone(),
            pod_uid: self.identity.uid.clone(),
            change,
        }
    }

    /// Whether the pod was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }
}
