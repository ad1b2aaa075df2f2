//! What can go wrong while simulating a node.

use crate::{
    kubelet::plan::PlanError,
    net::{NetError, cluster::PeerError},
    runtime::{ShimError, binaries::BinariesError, cgroups::CgroupError, spawn::SpawnError},
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
    Net(#[from] NetError),
    #[error(transparent)]
    Peers(#[from] PeerError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Shim(#[from] ShimError),
    #[error(transparent)]
    Binaries(#[from] BinariesError),
    #[error("the API server refused {what}: {source}")]
    ApiRefused {
        what: String,
        source: kube_api_server::DriverError,
    },
    #[error("cannot prepare the node's work directory {path}: {source}")]
    WorkDirFailed {
        path: std::path::PathBuf,
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
}
