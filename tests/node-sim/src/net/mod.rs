//! Pod networking: namespaces, the cluster namespace with the pods' peers,
//! mesh capture rules, and the kubelet's HTTP calls.

pub mod capture;
pub mod cluster;
pub mod forward;
pub mod http;
pub mod netns;

pub use capture::{CaptureConfig, Mesh};
pub use cluster::{ClusterNetwork, PodNetwork};
pub use netns::{NetError, NetNs};
