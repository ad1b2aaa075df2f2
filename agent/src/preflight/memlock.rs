//! Where the kernel charges BPF memory, and what the agent does about it.
//!
//! From 5.11 maps and programs are charged to the memory cgroup of the
//! process creating them and RLIMIT_MEMLOCK plays no part: nothing here
//! touches the limit then. On 5.8–5.10 they count against RLIMIT_MEMLOCK
//! (summed per user: every uid-0 process of the node shares one count),
//! and the 8 MiB ring buffer alone is more than the usual limits. The agent
//! then raises the limit to unlimited, which takes CAP_SYS_RESOURCE unless
//! the hard limit is unlimited already; `deploy/overlays/kernel-5.8` grants
//! it.
//!
//! The kernel version decides, except below 5.11 or when the release does
//! not parse: there a probe creates a one-entry array map with the soft
//! limit at 0, which only a kernel with memcg accounting (a backport)
//! allows. cilium/ebpf detects it the same way; libbpf's older test, for the
//! `bpf_ktime_get_coarse_ns` helper of the same release, was fooled by
//! kernels that backported the helper alone.
//!
//! [`prepare`] serves both `doctor`'s `bpf_memory` check and the loader, so
//! they decide alike. (aya 0.14 retries a refused map or program once after
//! raising the limit itself below 5.11, but only logs when that fails.)

use std::io;

use thiserror::Error;
use tracing::{info, warn};

use super::bpf::{BPF_MAP_TYPE_ARRAY, create_map, describe_limit, memlock_limit};
use super::kernel::{KernelVersion, MEMCG_ACCOUNTING, uname_release};

/// Where BPF memory is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounting {
    /// The memory cgroup: 5.11 and later, or a backport the probe found.
    Memcg,
    /// RLIMIT_MEMLOCK: 5.8–5.10.
    Memlock,
    /// The release does not parse and the probe could not tell.
    Unknown,
}

/// Result of the array-map probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Not needed: the kernel version is 5.11 or later.
    NotRun,
    /// The map was created with the soft limit at 0: not charged to it.
    Created,
    /// Refused (EPERM) at 0 after succeeding at the current limit.
    Refused,
    /// `bpf(2)` failed at the current limit too, or the limit could not be
    /// lowered: the reason.
    Inconclusive(String),
}

/// What was done about RLIMIT_MEMLOCK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raise {
    /// BPF memory is not charged to it, or the soft limit is unlimited.
    NotNeeded,
    /// Raised to unlimited.
    Raised,
    /// `setrlimit(2)` failed with this errno (EPERM: no CAP_SYS_RESOURCE
    /// and a finite hard limit).
    Failed(i32),
}

/// Cgroup memory accounting as the kernel command line sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kmem {
    /// The default: kernel memory, BPF's included, is charged.
    On,
    /// `cgroup.memory=nokmem`: kernel memory is not charged.
    Off,
    /// `cgroup_disable=memory`: no memory controller at all.
    NoMemcg,
}

impl Kmem {
    /// Reads `/proc/cmdline` text.
    pub fn from_cmdline(cmdline: &str) -> Self {
        let listed = |key: &str, word: &str| {
            cmdline
                .split_whitespace()
                .filter_map(|arg| arg.strip_prefix(key))
                .any(|list| list.split(',').any(|w| w == word))
        };
        if listed("cgroup_disable=", "memory") {
            Kmem::NoMemcg
        } else if listed("cgroup.memory=", "nokmem") {
            Kmem::Off
        } else {
            Kmem::On
        }
    }

    /// What it means for BPF memory under memcg accounting, if anything.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Kmem::On => None,
            Kmem::Off => Some(
                "kernel memory accounting is off (cgroup.memory=nokmem): BPF maps do not count \
                 against the pod's memory limit",
            ),
            Kmem::NoMemcg => Some(
                "the memory controller is off (cgroup_disable=memory): BPF memory is charged \
                 nowhere",
            ),
        }
    }
}

/// What [`prepare`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfMemory {
    pub version: Option<KernelVersion>,
    pub probe: Probe,
    /// RLIMIT_MEMLOCK (soft, hard) before any change.
    pub limit: Option<(u64, u64)>,
    pub raise: Raise,
    pub kmem: Kmem,
}

/// BPF memory is charged to RLIMIT_MEMLOCK and the limit could not be
/// raised: the agent's maps would be refused.
#[derive(Debug, Error)]
#[error(
    "kernel {kernel} charges BPF memory to RLIMIT_MEMLOCK; {limit} and raising it to unlimited \
     failed: {source}; deploy with deploy/overlays/kernel-5.8 (CAP_SYS_RESOURCE)"
)]
pub struct MemlockError {
    kernel: String,
    limit: String,
    #[source]
    source: io::Error,
}

/// Where BPF memory goes, from the version and, below 5.11, the probe.
pub fn accounting(version: Option<KernelVersion>, probe: &Probe) -> Accounting {
    match (version, probe) {
        (Some(v), _) if v >= MEMCG_ACCOUNTING => Accounting::Memcg,
        (_, Probe::Created) => Accounting::Memcg,
        (Some(_), _) | (None, Probe::Refused) => Accounting::Memlock,
        (None, _) => Accounting::Unknown,
    }
}

impl BpfMemory {
    pub fn accounting(&self) -> Accounting {
        accounting(self.version, &self.probe)
    }

    /// `RLIMIT_MEMLOCK 8192 KiB (hard 8192 KiB)`, as found.
    pub fn describe_limit(&self) -> String {
        self.limit.map_or_else(
            || "RLIMIT_MEMLOCK unreadable".to_owned(),
            |(soft, hard)| {
                format!(
                    "RLIMIT_MEMLOCK {} (hard {})",
                    describe_limit(soft),
                    describe_limit(hard)
                )
            },
        )
    }

    /// The loader's verdict: an error when the kernel charges BPF memory
    /// to RLIMIT_MEMLOCK and the limit stayed finite. Where that is only a
    /// guess (version unknown), a warning and on.
    pub fn require_raised(&self) -> Result<(), MemlockError> {
        let Raise::Failed(errno) = self.raise else {
            return Ok(());
        };
        let source = io::Error::from_raw_os_error(errno);
        if self.accounting() != Accounting::Memlock {
            warn!(
                error = %source,
                limit = %self.describe_limit(),
                "could not raise RLIMIT_MEMLOCK; if this kernel is older than 5.11, BPF maps will be refused"
            );
            return Ok(());
        }
        Err(MemlockError {
            kernel: self
                .version
                .map_or_else(|| "of unknown version".to_owned(), |v| v.to_string()),
            limit: self.describe_limit(),
            source,
        })
    }
}

/// Finds where BPF memory is charged and, when it is (or may be)
/// RLIMIT_MEMLOCK, raises the limit to unlimited as far as allowed. From
/// 5.11 it only reads the limit and `/proc/cmdline`.
pub fn prepare(version: Option<KernelVersion>) -> BpfMemory {
    let limit = memlock_limit();
    let kmem =
        std::fs::read_to_string("/proc/cmdline").map_or(Kmem::On, |c| Kmem::from_cmdline(&c));
    let mut memory = BpfMemory {
        version,
        probe: Probe::NotRun,
        limit,
        raise: Raise::NotNeeded,
        kmem,
    };
    if version.is_some_and(|v| v >= MEMCG_ACCOUNTING) {
        return memory;
    }
    memory.probe = probe();
    let unlimited = limit.is_some_and(|(soft, _)| soft == libc::RLIM_INFINITY);
    if memory.accounting() != Accounting::Memcg && !unlimited {
        memory.raise = raise_to_unlimited();
        if memory.raise == Raise::Raised {
            info!(
                previous = %memory.describe_limit(),
                "RLIMIT_MEMLOCK raised to unlimited: this kernel charges BPF memory to it"
            );
        }
    }
    memory
}

/// [`prepare`] for the running kernel (`uname -r`).
pub fn prepare_running_kernel() -> BpfMemory {
    let release = uname_release().ok();
    prepare(release.as_deref().and_then(KernelVersion::parse))
}

fn set_memlock(soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises both limits to unlimited (needs CAP_SYS_RESOURCE when the hard
/// limit is finite).
pub fn raise_to_unlimited() -> Raise {
    match set_memlock(libc::RLIM_INFINITY, libc::RLIM_INFINITY) {
        Ok(()) => Raise::Raised,
        Err(e) => Raise::Failed(e.raw_os_error().unwrap_or(libc::EPERM)),
    }
}

/// Creates a one-entry array map with the soft RLIMIT_MEMLOCK at 0, then
/// puts the limit back (lowering and restoring the soft limit below the
/// hard one needs no capability).
pub fn probe() -> Probe {
    let Some((soft, hard)) = memlock_limit() else {
        return Probe::Inconclusive("getrlimit(RLIMIT_MEMLOCK) failed".to_owned());
    };
    let create = || create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, b"lca_memcg_probe");
    if let Err(e) = create() {
        return Probe::Inconclusive(format!("creating a BPF array map failed: {e}"));
    }
    if let Err(e) = set_memlock(0, hard) {
        return Probe::Inconclusive(format!("lowering RLIMIT_MEMLOCK failed: {e}"));
    }
    let at_zero = create();
    if let Err(error) = set_memlock(soft, hard) {
        warn!(%error, soft, hard, "could not restore RLIMIT_MEMLOCK after the BPF memory probe");
    }
    match at_zero {
        Ok(_map) => Probe::Created,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Probe::Refused,
        Err(e) => Probe::Inconclusive(format!(
            "creating a BPF array map with RLIMIT_MEMLOCK at 0 failed: {e}"
        )),
    }
}
