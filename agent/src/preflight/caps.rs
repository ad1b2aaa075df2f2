//! The agent's own capabilities, from `CapEff` in `/proc/self/status`,
//! against what the code needs.
//!
//! Measured on kernel 6.18 as uid 0 with every other capability dropped
//! (`setpriv --bounding-set -all,+… --inh-caps -all,+…`, then
//! `lifecycle-agent record`): no capability fails creating the first map;
//! CAP_BPF alone fails loading the first (tracing) program; CAP_PERFMON
//! alone fails creating a map; CAP_BPF + CAP_PERFMON loads and attaches all
//! nine programs and records events with their kernel reads; CAP_SYS_ADMIN
//! alone works too; mounting a missing tracefs needs CAP_SYS_ADMIN.
//! Restart recovery reads `/proc/<pid>/stat` and `cgroup`, which uid 0
//! reads without CAP_SYS_PTRACE (`environ` and `exe` would need it).

use std::path::{Path, PathBuf};

use super::kernel::{KernelVersion, MEMCG_ACCOUNTING};
use super::{Check, PreflightError};

/// Capability names by bit number (`include/uapi/linux/capability.h`).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// When the agent needs a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Always (CAP_SYS_ADMIN stands in on any kernel that has both).
    Always,
    /// On kernels older than this version only.
    Before(KernelVersion),
    /// Only to mount tracefs when the host has not.
    ToMountTracefs,
}

/// The capabilities the agent uses, when, and the kernel check behind it.
pub const REQUIREMENTS: [(&str, Need, &str); 4] = [
    (
        "cap_bpf",
        Need::Always,
        "bpf(2) BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_BTF_LOAD (bpf_capable)",
    ),
    (
        "cap_perfmon",
        Need::Always,
        "loading tracing programs and bpf_probe_read_kernel (perfmon_capable), \
         perf_event_open of tracepoints",
    ),
    (
        "cap_sys_resource",
        Need::Before(MEMCG_ACCOUNTING),
        "setrlimit(RLIMIT_MEMLOCK) above the hard limit; kernels before 5.11 charge BPF maps to it",
    ),
    (
        "cap_sys_admin",
        Need::ToMountTracefs,
        "mount(2) of tracefs; also bpf(2) BPF_ENABLE_STATS for --probe-stats",
    ),
];

/// The bit of a capability given as `CAP_BPF`, `cap_bpf` or `BPF` (the
/// Kubernetes spelling).
pub fn capability_bit(name: &str) -> Option<u32> {
    let lower = name.trim().to_ascii_lowercase();
    let full = if lower.starts_with("cap_") {
        lower
    } else {
        format!("cap_{lower}")
    };
    CAPABILITY_NAMES
        .iter()
        .position(|n| *n == full)
        .map(|i| i as u32)
}

pub fn capability_name(bit: u32) -> String {
    CAPABILITY_NAMES
        .get(bit as usize)
        .map_or_else(|| format!("cap_{bit}"), |n| (*n).to_owned())
}

/// A capability bitmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Parses the hexadecimal `CapEff:` line of a `/proc/<pid>/status` text.
    pub fn from_status(status: &str) -> Option<Self> {
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .map(CapSet)
    }

    pub fn has(self, bit: u32) -> bool {
        bit < 64 && self.0 & (1 << bit) != 0
    }

    /// Names of the set bits, lowest first.
    pub fn names(self) -> Vec<String> {
        (0..64)
            .filter(|&b| self.has(b))
            .map(capability_name)
            .collect()
    }
}

/// The effective set of this process.
pub fn own_capabilities() -> Result<CapSet, PreflightError> {
    read_capabilities(Path::new("/proc/self/status"))
}

fn read_capabilities(path: &Path) -> Result<CapSet, PreflightError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| PreflightError::StatusUnreadable {
            path: path.to_owned(),
            source,
        })?;
    CapSet::from_status(&text).ok_or_else(|| PreflightError::CapEffMissing(PathBuf::from(path)))
}

/// Names the missing capabilities (empty when the agent can load).
/// CAP_SYS_RESOURCE is not judged here: whether the kernel charges BPF
/// memory to RLIMIT_MEMLOCK, and whether the limit could be raised, is
/// the `bpf_memory` check's question.
pub fn missing(caps: CapSet, mount_tracefs: bool) -> Vec<&'static str> {
    let admin = caps.has(CAP_SYS_ADMIN);
    let mut out = Vec::new();
    if !caps.has(CAP_BPF) && !admin {
        out.push("cap_bpf");
    }
    if !caps.has(CAP_PERFMON) && !admin {
        out.push("cap_perfmon");
    }
    if mount_tracefs && !admin {
        out.push("cap_sys_admin");
    }
    out
}

pub(super) fn check(
    caps: &Result<CapSet, PreflightError>,
    kernel: Option<KernelVersion>,
    mount_tracefs: bool,
) -> Check {
    const NAME: &str = "capabilities";
    let caps = match caps {
        Ok(c) => *c,
        Err(e) => {
            return Check::fail(NAME, e.to_string(), "run on Linux with /proc mounted")
                .with_label(e.label());
        }
    };
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let missing = missing(caps, mount_tracefs);
    let names = caps.names();
    // Whichever list is shorter: what is there, or what is not.
    let absent: Vec<&str> = CAPABILITY_NAMES
        .iter()
        .enumerate()
        .filter(|(b, _)| !caps.has(*b as u32))
        .map(|(_, n)| *n)
        .collect();
    let effective = if absent.len() < names.len() {
        format!(
            "{} capabilities, all but [{}]",
            names.len(),
            absent.join(", ")
        )
    } else {
        format!("[{}]", names.join(", "))
    };
    let mut detail = format!("euid {uid}; effective {effective}");
    if uid != 0 {
        detail.push_str(
            "; not uid 0: host files such as tracefs may be unreadable without \
             cap_dac_read_search",
        );
    }
    if missing.is_empty() {
        let old = kernel.is_some_and(|v| v < MEMCG_ACCOUNTING);
        detail.push_str(if old {
            "; enough to load and attach the probes (before 5.11 also RLIMIT_MEMLOCK: see \
             bpf_memory)"
        } else {
            "; enough to load and attach the probes"
        });
        return Check::ok(NAME, detail);
    }
    detail.push_str(&format!("; missing: {}", missing.join(", ")));
    Check::fail(
        NAME,
        detail,
        "grant the missing capabilities (securityContext.capabilities.add, see \
         docs/operations.md); CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON",
    )
    .with_label("capabilities_missing")
}
