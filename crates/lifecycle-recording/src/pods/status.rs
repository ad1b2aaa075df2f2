//! Compact snapshots of container and pod status, and the change records
//! derived from comparing two of them.

#[cfg(feature = "k8s")]
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "k8s")]
use crate::pods::time::api_seconds;
use crate::{pods::ids::ContainerId, pods::time::Stamp};

/// A finished run of a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminatedFacts {
    /// Exit code (143 = SIGTERM, 137 = SIGKILL or OOM).
    pub exit_code: i32,
    /// Signal, when the runtime reported one (rare).
    pub signal: Option<i32>,
    /// Reason (`Completed`, `Error`, `OOMKilled`, …).
    pub reason: Option<Box<str>>,
    /// `startedAt`, Unix seconds.
    pub started_at_s: Option<i64>,
    /// `finishedAt`, Unix seconds.
    pub finished_at_s: Option<i64>,
    /// The run's container id.
    pub container_id: Option<ContainerId>,
}

#[cfg(feature = "k8s")]
impl From<&ContainerStateTerminated> for TerminatedFacts {
    fn from(t: &ContainerStateTerminated) -> Self {
        Self {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: t.reason.as_deref().map(Box::from),
            started_at_s: t.started_at.as_ref().map(api_seconds),
            finished_at_s: t.finished_at.as_ref().map(api_seconds),
            container_id: t.container_id.as_deref().and_then(ContainerId::parse),
        }
    }
}

/// The current state of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateSnapshot {
    /// Not running yet (or between restarts).
    Waiting {
        /// `ContainerCreating`, `PodInitializing`, `CrashLoopBackOff`, …
        reason: Option<Box<str>>,
    },
    /// Running since `started_at_s`.
    Running {
        /// `startedAt`, Unix seconds.
        started_at_s: Option<i64>,
    },
    /// Finished.
    Terminated(Box<TerminatedFacts>),
    /// The status had no state.
    Unknown,
}

#[cfg(feature = "k8s")]
impl From<Option<&ContainerState>> for StateSnapshot {
    fn from(state: Option<&ContainerState>) -> Self {
        let Some(state) = state else {
            return Self::Unknown;
        };
        if let Some(t) = &state.terminated {
            Self::Terminated(Box::new(t.into()))
        } else if let Some(r) = &state.running {
            Self::Running {
                started_at_s: r.started_at.as_ref().map(api_seconds),
            }
        } else if let Some(w) = &state.waiting {
            Self::Waiting {
                reason: w.reason.as_deref().map(Box::from),
            }
        } else {
            Self::Unknown
        }
    }
}

/// What the API last said about one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSnapshot {
    /// Id of the current (or last) run.
    pub container_id: Option<ContainerId>,
    /// Current state.
    pub state: StateSnapshot,
    /// `lastState.terminated`: the previous run.
    pub last_terminated: Option<Box<TerminatedFacts>>,
    /// `started` (startup probe passed / postStart returned).
    pub started: bool,
    /// `ready`.
    pub ready: bool,
    /// `restartCount`.
    pub restart_count: i32,
}

#[cfg(feature = "k8s")]
impl From<&ContainerStatus> for ContainerSnapshot {
    fn from(s: &ContainerStatus) -> Self {
        Self {
            container_id: s.container_id.as_deref().and_then(ContainerId::parse),
            state: s.state.as_ref().into(),
            last_terminated: s
                .last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .map(|t| Box::new(TerminatedFacts::from(t))),
            started: s.started.unwrap_or(false),
            ready: s.ready,
            restart_count: s.restart_count,
        }
    }
}

/// A change of one container, as recorded in its history and in events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContainerChange {
    /// Entered `waiting` (or the waiting reason changed).
    Waiting {
        /// Waiting reason.
        reason: Option<Box<str>>,
    },
    /// A run started.
    Running {
        /// Id of the run.
        container_id: Option<ContainerId>,
        /// `restartCount` at that point.
        restart_count: i32,
    },
    /// A run ended.
    Terminated {
        /// The run's facts.
        #[serde(flatten)]
        facts: Box<TerminatedFacts>,
        /// `restartCount` at that point.
        restart_count: i32,
    },
    /// The `started` flag changed.
    Started {
        /// New value.
        started: bool,
    },
    /// The `ready` flag changed.
    Ready {
        /// New value.
        ready: bool,
    },
}

/// A container change with its timing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerTransition {
    /// When it was seen / when the API says it happened.
    pub at: Stamp,
    /// What changed.
    pub change: ContainerChange,
}

/// What the API last said about one pod condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionSnapshot {
    /// Condition type (`PodReadyToStartContainers`, `Initialized`,
    /// `ContainersReady`, `Ready`, `PodScheduled`, …).
    pub kind: Box<str>,
    /// `True`, `False` or `Unknown`.
    pub status: Box<str>,
    /// Machine-readable reason.
    pub reason: Option<Box<str>>,
    /// `lastTransitionTime`, Unix seconds.
    pub last_transition_s: Option<i64>,
}

#[cfg(feature = "k8s")]
impl From<&PodCondition> for ConditionSnapshot {
    fn from(c: &PodCondition) -> Self {
        Self {
            kind: c.type_.as_str().into(),
            status: c.status.as_str().into(),
            reason: c.reason.as_deref().map(Box::from),
            last_transition_s: c.last_transition_time.as_ref().map(api_seconds),
        }
    }
}

/// A recorded condition change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionTransition {
    /// Timing.
    pub at: Stamp,
    /// The condition after the change.
    pub condition: ConditionSnapshot,
}

#[cfg(test)]
#[cfg(feature = "k8s")]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snapshot_from_restarted_status() {
        let status: ContainerStatus = serde_json::from_value(json!({
            "name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 2,
            "started": true,
            "containerID": "containerd://abc",
            "state": {"running": {"startedAt": "2026-11-21T23:57:04Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                          "finishedAt": "2026-11-21T23:57:03Z",
                                          "containerID": "containerd://old"}}
        }))
        .unwrap();
        let snap = ContainerSnapshot::from(&status);
        assert_eq!(
            snap.state,
            StateSnapshot::Running {
                started_at_s: Some(1_795_305_424)
            }
        );
        let last = snap.last_terminated.unwrap();
        assert_eq!(
            (last.exit_code, last.finished_at_s),
            (137, Some(1_795_305_423))
        );
        assert_eq!(last.container_id.unwrap().to_string(), "containerd://old");
        assert!(snap.ready && snap.started);
    }

    #[test]
    fn terminated_change_serialises_flat() {
        let change = ContainerChange::Terminated {
            facts: Box::new(TerminatedFacts {
                exit_code: 143,
                signal: None,
                reason: Some("Error".into()),
                started_at_s: Some(1),
                finished_at_s: Some(2),
                container_id: None,
            }),
            restart_count: 0,
        };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(json["type"], "terminated");
        assert_eq!(json["exit_code"], 143);
        assert_eq!(
            serde_json::from_value::<ContainerChange>(json).unwrap(),
            change
        );
    }
}
