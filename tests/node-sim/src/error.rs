//! What can go wrong while simulating a node.

use crate::{
    kubelet::plan::PlanError,
    net::{NetError, cluster::PeerError},
    runtime::{
        CriError, binaries::BinariesError, cgroups::CgroupError, container::StartError,
        containerd::ContainerdError, hierarchy::HierarchyError,
    },
    scenario::ScenarioError,
};

/// Every failure of the driver, by what failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Hierarchy(#[from] HierarchyError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Peers(#[from] PeerError),
    #[error(transparent)]
    Binaries(#[from] BinariesError),
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the API server refused {what}: {source}")]
    ApiRefused {
        what: String,
        #[source]
        source: kube_api_server::DriverError,
    },
    #[error("cannot prepare the node's work directory {path}: {source}")]
    WorkDirFailed {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pod {0} is not on this node")]
    UnknownPod(String),
    #[error("pod {pod}: container {container} is not in its spec")]
    UnknownContainer { pod: String, container: String },
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    WaitTimedOut { what: String, seconds: f64 },
    #[error("pod {pod} failed: {reason}")]
    PodFailed { pod: String, reason: String },
    #[error("the simulation was aborted")]
    Aborted,
    #[error("a pod worker thread panicked: {0}")]
    WorkerPanicked(String),
    #[error("container {container} of pod {pod} has no running process to signal")]
    NotRunning { pod: String, container: String },
    #[error("the host shell that was to send {signal} to pid {pid} failed: {reason}")]
    HostKillFailed {
        signal: String,
        pid: u32,
        reason: String,
    },
    #[error("pod {pod} has no address yet: its sandbox is not up")]
    NoPodAddress { pod: String },
    #[error("cannot start the inbound caller of pod {pod}: {source}")]
    CallerFailed {
        pod: String,
        #[source]
        source: std::io::Error,
    },
}
