//! The kubelet side: the pod spec as the kubelet reads it, startup and
//! termination ordering per version, hooks, probes, and status reporting.

pub mod containers;
pub mod hooks;
pub mod plan;
pub mod pod;
pub mod probes;
pub mod startup;
pub mod state;
pub mod status;
pub mod termination;
pub mod version;
pub mod worker;

pub use plan::{ContainerKind, ContainerPlan, PodPlan, RestartPolicy};
pub use state::{Monitor, PodState, Stage};
pub use version::KubeletVersion;
