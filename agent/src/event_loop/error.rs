//! How the event loop fails. Each variant says what failed; the cause is
//! its `#[source]`, printed once by whoever prints the chain.

use thiserror::Error;

use crate::{
    attribution::CgroupError, clock::ClockError, kernel::loader::LoadError,
    pods::client::ClientError, preflight::MemlockError,
};

#[derive(Debug, Error)]
pub enum LoopError {
    #[error(transparent)]
    ProbesUnavailable(#[from] LoadError),
    #[error(transparent)]
    MemlockNotRaised(#[from] MemlockError),
    #[error("the cgroup v2 hierarchy is unavailable")]
    CgroupsUnavailable(#[from] CgroupError),
    #[error("the Kubernetes API is unavailable")]
    KubernetesUnavailable(#[from] ClientError),
    #[error("BPF run-time statistics are unavailable")]
    ProbeStatsUnavailable(#[source] aya::sys::SyscallError),
    #[error("the clocks are unreadable")]
    ClockUnavailable(#[from] ClockError),
    #[error("writing the records failed")]
    WriteFailed(#[source] std::io::Error),
    #[error("the ring buffer reader failed")]
    ReaderFailed(#[source] std::io::Error),
    #[error("the ring buffer reader stopped on its own")]
    ReaderStopped,
}

impl LoopError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ProbesUnavailable(e) => e.label(),
            Self::MemlockNotRaised(_) => "memlock_too_low",
            Self::CgroupsUnavailable(_) => "cgroups_unavailable",
            Self::KubernetesUnavailable(_) => "kubernetes_unavailable",
            Self::ProbeStatsUnavailable(_) => "probe_stats_unavailable",
            Self::ClockUnavailable(_) => "clock_unavailable",
            Self::WriteFailed(_) => "write_failed",
            Self::ReaderFailed(_) => "reader_failed",
            Self::ReaderStopped => "reader_stopped",
        }
    }
}
