//! What a cgroup is, in Kubernetes terms, and how its path says so.
//!
//! The eBPF side tags events with a cgroup v2 id; the agent resolves the id
//! to a path and [`parse_cgroup_path`] turns the path into a
//! [`CgroupClass`]. Recordings carry the class, so it belongs to the format.

mod class;
mod ids;
mod path;

pub use class::{CgroupClass, CgroupDriver, ContainerCgroup, PodCgroup, QosClass, Runtime};
pub use ids::{canonical_pod_uid, is_container_id};
pub use path::{cgroup_level, is_watch_root, parse_cgroup_path};
