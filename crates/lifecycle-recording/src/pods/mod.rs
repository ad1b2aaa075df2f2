//! What the Kubernetes API said about a pod, as recorded data.
//!
//! * [`spec`]: the lifecycle facts of a pod spec (containers in order,
//!   probes, hooks, grace period, owner);
//! * [`status`]: container and condition snapshots and the changes between
//!   two of them;
//! * [`time`]: the two clocks of every pod fact (when the agent saw it,
//!   what the API wrote);
//! * [`event`]: the `pod` line of a recording;
//! * [`container`]: one container's facts (kind, role, probes, hooks);
//! * [`classify`]: container kind and sidecar role; [`mesh`]: the mesh mode;
//! * [`annotations`]: the annotations that change a pod's lifecycle;
//! * [`ids`]: container ids as the API and cgroup paths write them;
//! * [`stats`]: the pod store's counters as a `stats` line carries them.

pub mod annotations;
pub mod classify;
pub mod container;
pub mod event;
pub mod ids;
pub mod mesh;
pub mod spec;
pub mod stats;
pub mod status;
pub mod time;

pub use classify::{ClassificationRules, ContainerKind, SidecarRole};
pub use event::{DeletedReason, PodChange, PodEvent};
pub use mesh::{MeshInfo, MeshMode};
pub use spec::PodSpecFacts;
pub use stats::StoreStats;
