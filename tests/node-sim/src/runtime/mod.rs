//! The container runtime side: cgroups, process placement, the shim and
//! `runc`, and container instances.

pub mod binaries;
pub mod cgroups;
pub mod container;
pub mod shim;
pub mod spawn;

pub use binaries::Binaries;
pub use cgroups::{CgroupDir, CgroupDriver, Qos};
pub use container::{ExitInfo, Instance, Launch, new_container_id};
pub use shim::{KillReport, Shim, ShimError};
