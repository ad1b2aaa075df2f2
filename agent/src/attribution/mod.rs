//! Cgroup id -> container attribution.
//!
//! The eBPF side tags every event with a cgroup v2 id (the inode number of the
//! cgroup's directory) and reports cgroup creation and removal with the
//! cgroup's path. This module turns those into Kubernetes terms:
//!
//! * [`cgroup_path`]: a pure parser from a kubelet cgroup path to a
//!   [`CgroupClass`] (container, pod, QoS parent, ...), for the systemd and
//!   cgroupfs drivers and the containerd, CRI-O and docker runtimes;
//! * [`cgroup_fs`]: finding the cgroup2 mount and walking it to list every
//!   cgroup with its id;
//! * [`cache`]: the id -> classification table, filled by a walk and kept
//!   current by the mkdir/rmdir events.
//!
//! Paths handed to the cache must be complete: a tracepoint path that was
//! truncated could end on a component boundary and look like a parent cgroup.
//! Drop such paths and let a lookup miss re-walk the hierarchy instead.

pub mod cache;
pub mod cgroup_fs;
mod mountinfo;

pub use cache::{CacheConfig, CacheCounters, CgroupCache, CgroupEntry};
pub use cgroup_fs::{
    Cgroup2Mount, Cgroup2Walker, CgroupDir, CgroupError, HierarchyWalker, find_cgroup2_mount,
    find_cgroup2_mount_info, pick_cgroup2_mount, walk_cgroups,
};
pub use lifecycle_recording::cgroup::{
    CgroupClass, CgroupDriver, ContainerCgroup, PodCgroup, QosClass, Runtime, canonical_pod_uid,
    cgroup_level, is_container_id, is_watch_root, parse_cgroup_path,
};

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod test_support;
