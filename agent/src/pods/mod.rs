//! Pod model: what the Kubernetes API says about the pods of this node.
//!
//! * [`watch`] lists and watches this node's pods ([`watch::run_pod_watch`])
//!   and feeds the [`store::PodStore`]; [`node_events`] watches the Node's
//!   Events for kubelet restarts;
//! * the store keeps per pod its [`spec`] facts (containers in order with
//!   their [`classify`] kind and role, probes, hooks, grace period, owner,
//!   mesh mode) and a [`status`] history stamped with both the agent's and
//!   the API's clock ([`time`]);
//! * [`resolve`] joins kernel-side (pod uid, container id) pairs to
//!   containers, with [`pending`] holding events that arrive before the API
//!   reported the container;
//! * [`event::PodEvent`]s describe every change for the recording;
//! * [`client::make_client`] builds the Kubernetes client.

pub mod client;
pub mod diff;
pub mod entry;
pub mod node_events;
pub mod pending;
pub mod raw;
pub mod resolve;
pub mod store;
pub mod watch;

pub use entry::{PodEntry, PodIdentity};
pub use lifecycle_recording::pods::{
    ClassificationRules, ContainerKind, DeletedReason, MeshInfo, MeshMode, PodChange, PodEvent,
    PodSpecFacts, SidecarRole, StoreStats, annotations, classify, container, event, ids, mesh,
    spec, status, time,
};
pub use pending::{PendingBuffer, PendingLimits, Released};
pub use raw::{DecodedPod, MalformedPod, RawPod};
pub use resolve::{Resolution, ResolvedContainer};
pub use store::{PodStore, StoreConfig};
pub use watch::{PodWatchConfig, PodWatchError, run_pod_watch, run_pod_watch_with};
