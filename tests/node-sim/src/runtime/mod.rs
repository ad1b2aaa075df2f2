//! The container runtime side: a real containerd (with runc) per node,
//! driven over CRI; pod cgroups as the kubelet names them; the images.

pub mod binaries;
pub mod cgroups;
pub mod container;
pub mod containerd;
pub mod cri;
pub mod hierarchy;
pub mod images;
pub mod stale;

pub use cgroups::Qos;
pub use container::{ExitInfo, Instance, Launch};
pub use cri::{Cri, CriError};
