//! What a cgroup is, from the point of view of Kubernetes attribution.
//!
//! These types are the output of [`parse_cgroup_path`](super::parse_cgroup_path)
//! and are stored per cgroup id in the [`CgroupCache`](super::CgroupCache).
//! They serialize with `snake_case` names so they can go straight into
//! recordings and self-telemetry.

use serde::{Deserialize, Serialize};

/// How kubelet names its cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupDriver {
    /// systemd slices and scopes: `kubepods.slice/kubepods-burstable.slice/...`.
    Systemd,
    /// Plain directories: `/kubepods/burstable/pod<uid>/<container id>`.
    Cgroupfs,
}

/// Kubernetes quality-of-service class, as encoded in the pod's cgroup parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QosClass {
    /// Pod cgroup sits directly below the kubepods root.
    Guaranteed,
    /// Pod cgroup below the `burstable` QoS parent.
    Burstable,
    /// Pod cgroup below the `besteffort` QoS parent.
    BestEffort,
}

impl QosClass {
    /// Name of the QoS parent cgroup (`burstable`, `besteffort`); Guaranteed
    /// pods have no QoS parent.
    pub fn cgroup_name(self) -> Option<&'static str> {
        match self {
            Self::Guaranteed => None,
            Self::Burstable => Some("burstable"),
            Self::BestEffort => Some("besteffort"),
        }
    }

    /// Inverse of [`cgroup_name`](Self::cgroup_name).
    pub fn from_cgroup_name(name: &str) -> Option<Self> {
        match name {
            "burstable" => Some(Self::Burstable),
            "besteffort" => Some(Self::BestEffort),
            _ => None,
        }
    }
}

/// Container runtime, when the cgroup name says which one created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// `cri-containerd-<id>.scope`.
    Containerd,
    /// `crio-<id>.scope` or `crio-<id>`.
    #[serde(rename = "crio")]
    CriO,
    /// `docker-<id>.scope` (dockershim or cri-dockerd).
    Docker,
    /// A bare id (cgroupfs driver with containerd or docker): the path alone
    /// does not say which runtime made it.
    Unspecified,
}

/// A container's cgroup (or a cgroup nested inside it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerCgroup {
    /// Runtime the cgroup name points to.
    pub runtime: Runtime,
    /// 64 lowercase hex digits.
    pub container_id: String,
    /// Pod uid as the API server spells it: a dashed UUID, or for static pods
    /// the 32-hex-digit config hash kubelet uses as the uid.
    pub pod_uid: String,
    /// QoS class of the pod.
    pub qos: QosClass,
    /// Cgroup driver the path follows.
    pub driver: CgroupDriver,
    /// Path below the container's own cgroup when this cgroup is nested inside
    /// it (e.g. `container` for CRI-O's `crio-<id>.scope/container`); `None`
    /// for the container cgroup itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// A pod-level cgroup (the parent of the pod's container cgroups).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodCgroup {
    /// Pod uid as the API server spells it (dashed UUID, or a static pod's
    /// 32-hex-digit hash).
    pub pod_uid: String,
    /// QoS class of the pod.
    pub qos: QosClass,
    /// Cgroup driver the path follows.
    pub driver: CgroupDriver,
}

/// Classification of one cgroup v2 directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CgroupClass {
    /// A container's cgroup, or a cgroup below it.
    Container(ContainerCgroup),
    /// A pod's cgroup.
    Pod(PodCgroup),
    /// The top of kubelet's pod hierarchy (`kubepods.slice`, `kubepods`, ...).
    KubepodsRoot {
        /// Cgroup driver the root's name follows.
        driver: CgroupDriver,
    },
    /// The Burstable or BestEffort parent of pod cgroups.
    QosParent {
        /// Cgroup driver the path follows.
        driver: CgroupDriver,
        /// Burstable or BestEffort (Guaranteed pods have no QoS parent).
        qos: QosClass,
    },
    /// CRI-O's `conmon` monitor process for a container: it lives in the pod
    /// but is not the container.
    ConmonMonitor {
        /// Id of the monitored container (64 lowercase hex digits).
        container_id: String,
        /// Pod uid as the API server spells it.
        pod_uid: String,
        /// QoS class of the pod.
        qos: QosClass,
        /// Cgroup driver the path follows.
        driver: CgroupDriver,
    },
    /// Not below any kubepods root.
    NotKubernetes,
    /// Below a kubepods root but not a layout this parser knows.
    Unknown {
        /// What in the path did not match kubelet's naming.
        reason: String,
    },
}

impl CgroupClass {
    /// The container, when this cgroup belongs to one.
    pub fn container(&self) -> Option<&ContainerCgroup> {
        match self {
            Self::Container(c) => Some(c),
            _ => None,
        }
    }

    /// The pod uid, for every class that lives inside a pod.
    pub fn pod_uid(&self) -> Option<&str> {
        match self {
            Self::Container(c) => Some(&c.pod_uid),
            Self::Pod(p) => Some(&p.pod_uid),
            Self::ConmonMonitor { pod_uid, .. } => Some(pod_uid),
            _ => None,
        }
    }

    /// True for [`CgroupClass::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown { .. })
    }

    pub(crate) fn unknown(reason: impl Into<String>) -> Self {
        Self::Unknown {
            reason: reason.into(),
        }
    }
}
