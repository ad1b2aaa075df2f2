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
    pub at: At,
    /// `startedAt`, whole seconds.
    pub api_s: Option<i64>,
    /// The run's container id, without scheme (64 hex digits).
    pub container_id: Option<String>,
    pub restart_count: i32,
}

/// A run's end as the API reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTermination {
    pub at: At,
    pub exit_code: i32,
    pub reason: Option<String>,
    /// `finishedAt`, whole seconds.
    pub finished_at_s: Option<i64>,
}

/// A change of the `started` or `ready` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFlag {
    pub at: At,
    pub value: bool,
    /// The kubelet's status write, whole seconds.
    pub api_s: Option<i64>,
}

/// Everything the API said about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerApi {
    pub kind: Option<ContainerKind>,
    pub role: Option<SidecarRole>,
    pub runs: Vec<ApiRun>,
    pub terminations: Vec<ApiTermination>,
    pub started: Vec<ApiFlag>,
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
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub spec: Option<PodSpecFacts>,
    /// Per container name.
    pub containers: HashMap<String, ContainerApi>,
    /// Container names in the order the API first mentioned them.
    pub order: Vec<String>,
    /// Container id (hex, lower case) -> container name.
    pub names_by_id: HashMap<String, String>,
    pub deletions: Vec<DeletionObs>,
    pub deleted: Option<At>,
    pub phases: Vec<(At, String)>,
    pub conditions: Vec<(At, ConditionSnapshot)>,
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
