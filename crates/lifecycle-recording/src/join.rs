//! The join's part of the format: the Kubernetes names a kernel event
//! carries once the agent matched its cgroup to a container, and the join's
//! counters in the `stats` line.

use serde::{Deserialize, Serialize};

use crate::pods::{ContainerKind, MeshMode, SidecarRole};

/// Kubernetes names of a process's or socket's container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct K8sRef {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub pod: String,
    /// Pod uid as the API server spells it.
    pub pod_uid: String,
    /// Container name; `null` for the pod's sandbox (pause) container or a
    /// pod-level cgroup.
    pub container: Option<String>,
    /// How the container takes part in the pod lifecycle; absent when
    /// `container` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_kind: Option<ContainerKind>,
    /// What the container is for (mesh proxy, log shipper, ...); absent when
    /// `container` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_role: Option<SidecarRole>,
    /// How the pod's mesh proxy is wired in (a JSON object tagged by `mode`).
    pub mesh_mode: MeshMode,
    /// The pod was already deleted in the API (kept for late events).
    pub pod_deleted: bool,
}

/// Counts of the join, for `stats` lines. Fields missing in older
/// recordings read as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JoinCounters {
    /// Records held because a container was not reported yet.
    pub held: u64,
    /// Held records attributed later.
    pub attributed_late: u64,
    /// Held records written without Kubernetes names (expired or overflow).
    pub expired_unattributed: u64,
    /// Of those, records of a pod's sandbox (pause) container.
    pub expired_likely_sandbox: u64,
    /// Records of pods the API never showed after an earlier wait expired
    /// (static pods, pods of another API server), written without waiting.
    pub unknown_pod_not_held: u64,
}
