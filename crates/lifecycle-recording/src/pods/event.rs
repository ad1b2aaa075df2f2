//! Pod events for the recording.
//!
//! Each [`PodEvent`] is one line of the NDJSON recording, next to the
//! kernel events. Field names are snake_case and stable; the example below
//! is the serialised form of a container termination:
//!
//! ```json
//! {"observed_ns":1795305431123456789,"api_time_s":1795305430,
//!  "api_time_source":"finished_at","namespace":"shop","pod":"cart-7d9f",
//!  "pod_uid":"5c1e…","change":{"kind":"container_transition",
//!  "container":"app","container_kind":"app","container_role":"other",
//!  "transition":{"type":"terminated","exit_code":143,"signal":null,
//!  "reason":"Error","started_at_s":1795305400,"finished_at_s":1795305430,
//!  "container_id":"containerd://…","restart_count":0}}}
//! ```

use serde::{Deserialize, Serialize};

use crate::{
    pods::classify::{ContainerKind, SidecarRole},
    pods::spec::PodSpecFacts,
    pods::status::{ConditionSnapshot, ContainerChange},
    pods::time::Stamp,
};

/// Why a pod counts as deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletedReason {
    /// The watch delivered a `DELETED` event.
    WatchDeleted,
    /// A re-list (after a 410 or a restart of the watch) no longer contained
    /// the pod: it was deleted while the agent was not watching.
    MissingFromRelist,
}

/// What changed about a pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PodChange {
    /// First time the agent sees the pod; carries its spec facts.
    /// `api_time_s` is the creation time.
    Added {
        /// Spec facts: containers in order with kind, role, probes and hooks;
        /// grace period; owner; mesh mode.
        spec: Box<PodSpecFacts>,
    },
    /// The lifecycle-relevant part of the spec changed (an image update).
    SpecChanged {
        /// The new spec facts.
        spec: Box<PodSpecFacts>,
    },
    /// A container changed state or flags.
    ContainerTransition {
        /// Container name.
        container: String,
        /// Its lifecycle kind.
        container_kind: ContainerKind,
        /// Its role.
        container_role: SidecarRole,
        /// The change (`type`: `waiting`, `running`, `terminated`,
        /// `started`, `ready`).
        transition: ContainerChange,
    },
    /// A pod condition appeared or changed status. `api_time_s` is its
    /// `lastTransitionTime`.
    ConditionTransition {
        /// The condition after the change.
        condition: ConditionSnapshot,
    },
    /// `status.phase` changed.
    PhaseChanged {
        /// New phase.
        phase: String,
    },
    /// A graceful delete was requested (or its deadline shortened).
    /// `api_time_s` is the request time, `deletion_timestamp_s −
    /// grace_period_s`.
    DeletionRequested {
        /// `metadata.deletionTimestamp`, Unix seconds.
        deletion_timestamp_s: i64,
        /// `metadata.deletionGracePeriodSeconds`.
        grace_period_s: Option<i64>,
    },
    /// The node's kubelet started (its `Starting` Event on the Node) while
    /// the pod was on the node: a kubelet restart, after which the kubelet
    /// retries a termination in progress with the full grace. `api_time_s`
    /// is the event's time; one record per live pod of the node.
    KubeletStarted,
    /// The pod is gone.
    Deleted {
        /// How the agent learned it.
        reason: DeletedReason,
    },
}

/// One pod fact with its timing and the pod's identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodEvent {
    /// `observed_ns`, `api_time_s`, `api_time_source`: when the agent saw the
    /// change (wall clock, Unix ns) and what the API says (Unix seconds).
    #[serde(flatten)]
    pub at: Stamp,
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod uid.
    pub pod_uid: String,
    /// What changed.
    pub change: PodChange,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::time::ApiTimeSource;

    #[test]
    fn field_names_are_stable() {
        let event = PodEvent {
            at: Stamp::with_api(5, Some(4), ApiTimeSource::DeletionRequest),
            namespace: "ns".into(),
            pod: "p".into(),
            pod_uid: "u".into(),
            change: PodChange::DeletionRequested {
                deletion_timestamp_s: 34,
                grace_period_s: Some(30),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "observed_ns": 5, "api_time_s": 4, "api_time_source": "deletion_request",
                "namespace": "ns", "pod": "p", "pod_uid": "u",
                "change": {"kind": "deletion_requested", "deletion_timestamp_s": 34, "grace_period_s": 30}
            })
        );
        assert_eq!(serde_json::from_value::<PodEvent>(json).unwrap(), event);
    }

    #[test]
    fn deleted_reason_is_snake_case() {
        let change = PodChange::Deleted {
            reason: DeletedReason::MissingFromRelist,
        };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "deleted", "reason": "missing_from_relist"})
        );
    }
}
