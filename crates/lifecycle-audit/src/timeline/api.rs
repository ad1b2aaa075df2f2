//! What the Kubernetes API said about a pod, from its `pod` records: spec
//! facts, container transitions, deletion requests, phases and conditions.
//! API times are whole seconds (rule A1); each fact also keeps the record
//! it came from (`seq`) and when the agent saw it.

use std::collections::HashMap;

use lifecycle_recording::event::{Event, Record};
use lifecycle_recording::pods::{
    ContainerKind, PodChange, PodSpecFacts, SidecarRole,
    status::{ConditionSnapshot, ContainerChange},
};
use serde::{Deserialize, Serialize};

use super::At;

/// A run of a container as the API reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRun {
    /// When the agent saw the `running` transition, and its record.
    pub at: At,
    /// `startedAt`, whole seconds.
    pub api_s: Option<i64>,
    /// The run's container id, without scheme (64 hex digits).
    pub container_id: Option<String>,
    /// The container's `restartCount` in that status.
    pub restart_count: i32,
}

/// A run's end as the API reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTermination {
    /// When the agent saw the `terminated` transition, and its record.
    pub at: At,
    /// The `exitCode` the API reported.
    pub exit_code: i32,
    /// The API's `reason` (`Completed`, `Error`, `OOMKilled`, …).
    pub reason: Option<String>,
    /// `finishedAt`, whole seconds.
    pub finished_at_s: Option<i64>,
}

/// A change of the `started` or `ready` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFlag {
    /// When the agent saw the change, and its record.
    pub at: At,
    /// The flag's new value.
    pub value: bool,
    /// The kubelet's status write, whole seconds.
    pub api_s: Option<i64>,
}

/// Everything the API said about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerApi {
    /// Container kind the pod watch attached to its transitions; `None` without
    /// any.
    pub kind: Option<ContainerKind>,
    /// Container role the pod watch attached to its transitions; `None` without
    /// any.
    pub role: Option<SidecarRole>,
    /// Runs the API reported (`running` transitions), in record order.
    pub runs: Vec<ApiRun>,
    /// Ends of runs the API reported (`terminated` transitions), in record
    /// order.
    pub terminations: Vec<ApiTermination>,
    /// Changes of the `started` flag, in record order.
    pub started: Vec<ApiFlag>,
    /// Changes of the `ready` flag, in record order.
    pub ready: Vec<ApiFlag>,
}

impl ContainerApi {
    /// First time the flag turned true.
    pub fn first_true(flags: &[ApiFlag]) -> Option<ApiFlag> {
        flags.iter().find(|f| f.value).copied()
    }
}

/// A graceful delete request (or a shortening of its deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionObs {
    /// When the agent saw the request, and its record.
    pub at: At,
    /// `deletionTimestamp`, whole seconds.
    pub deletion_timestamp_s: i64,
    /// `deletionGracePeriodSeconds`.
    pub grace_s: Option<i64>,
    /// When the request reached the API server: `deletionTimestamp − grace`,
    /// whole seconds (the true instant lies in `[request_s, request_s + 1)`).
    pub request_s: i64,
}

/// The API side of a pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiFacts {
    /// Namespace from the first pod event; `None` without pod events.
    pub namespace: Option<String>,
    /// Pod name from the first pod event; `None` without pod events.
    pub name: Option<String>,
    /// Spec facts of the latest `added` or `spec_changed` event.
    pub spec: Option<PodSpecFacts>,
    /// Per container name.
    pub containers: HashMap<String, ContainerApi>,
    /// Container names in the order the API first mentioned them.
    pub order: Vec<String>,
    /// Container id (hex, lower case) -> container name.
    pub names_by_id: HashMap<String, String>,
    /// Delete requests, in record order.
    pub deletions: Vec<DeletionObs>,
    /// The first `deleted` event; `None` while the pod exists.
    pub deleted: Option<At>,
    /// Phase changes with the new phase name, in record order.
    pub phases: Vec<(At, String)>,
    /// Condition transitions, in record order.
    pub conditions: Vec<(At, ConditionSnapshot)>,
    /// The node's kubelet started while the pod was there (its `Starting`
    /// Event): when the agent saw it, and the event's whole second.
    pub kubelet_starts: Vec<(At, Option<i64>)>,
}

impl ApiFacts {
    /// Collects the `pod` records of pod `uid`.
    pub fn collect(uid: &str, records: &[Record]) -> Self {
        let mut facts = Self::default();
        for record in records {
            let Event::Pod(pod) = &record.event else {
                continue;
            };
            if pod.pod_uid != uid {
                continue;
            }
            facts.namespace.get_or_insert_with(|| pod.namespace.clone());
            facts.name.get_or_insert_with(|| pod.pod.clone());
            let at = At::of(record);
            match &pod.change {
                PodChange::Added { spec } | PodChange::SpecChanged { spec } => {
                    facts.spec = Some((**spec).clone());
                }
                PodChange::ContainerTransition {
                    container,
                    container_kind,
                    container_role,
                    transition,
                } => {
                    let api_s = pod.at.api_time_s;
                    facts.transition(container, at, api_s, transition);
                    let entry = facts.entry(container);
                    entry.kind = Some(*container_kind);
                    entry.role = Some(*container_role);
                }
                PodChange::DeletionRequested {
                    deletion_timestamp_s,
                    grace_period_s,
                } => facts.deletions.push(DeletionObs {
                    at,
                    deletion_timestamp_s: *deletion_timestamp_s,
                    grace_s: *grace_period_s,
                    request_s: pod
                        .at
                        .api_time_s
                        .unwrap_or(deletion_timestamp_s - grace_period_s.unwrap_or(0)),
                }),
                PodChange::Deleted { .. } => {
                    facts.deleted.get_or_insert(at);
                }
                PodChange::PhaseChanged { phase } => facts.phases.push((at, phase.clone())),
                PodChange::ConditionTransition { condition } => {
                    facts.conditions.push((at, condition.clone()));
                }
                PodChange::KubeletStarted => facts.kubelet_starts.push((at, pod.at.api_time_s)),
            }
        }
        facts
    }

    fn entry(&mut self, name: &str) -> &mut ContainerApi {
        if !self.containers.contains_key(name) {
            self.order.push(name.to_owned());
        }
        self.containers.entry(name.to_owned()).or_default()
    }

    fn remember_id(&mut self, id: Option<String>, name: &str) {
        if let Some(id) = id {
            self.names_by_id.insert(id, name.to_owned());
        }
    }

    fn transition(&mut self, name: &str, at: At, api_s: Option<i64>, change: &ContainerChange) {
        match change {
            ContainerChange::Running {
                container_id,
                restart_count,
            } => {
                let id = container_id.as_ref().map(|c| c.key.to_string());
                self.remember_id(id.clone(), name);
                self.entry(name).runs.push(ApiRun {
                    at,
                    api_s,
                    container_id: id,
                    restart_count: *restart_count,
                });
            }
            ContainerChange::Terminated { facts, .. } => {
                let id = facts.container_id.as_ref().map(|c| c.key.to_string());
                self.remember_id(id, name);
                self.entry(name).terminations.push(ApiTermination {
                    at,
                    exit_code: facts.exit_code,
                    reason: facts.reason.as_deref().map(str::to_owned),
                    finished_at_s: facts.finished_at_s,
                });
            }
            ContainerChange::Started { started } => self.entry(name).started.push(ApiFlag {
                at,
                value: *started,
                api_s,
            }),
            ContainerChange::Ready { ready } => self.entry(name).ready.push(ApiFlag {
                at,
                value: *ready,
                api_s,
            }),
            ContainerChange::Waiting { .. } => {
                self.entry(name);
            }
        }
    }

    /// Whether the pod watch reported anything about this pod.
    pub fn any(&self) -> bool {
        self.name.is_some()
    }
}
