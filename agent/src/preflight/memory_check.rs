//! The `bpf_memory` check: whether the BPF maps the agent creates are
//! charged to the memory cgroup or to RLIMIT_MEMLOCK, and whether the
//! limit was raised where it applies (what [`super::memlock`] found).

use std::io;

use super::Check;
use super::bpf::OVERLAY_REMEDY;
use super::kernel::MIN_KERNEL;
use super::memlock::{Accounting, BpfMemory, Probe, Raise};

/// Judges what [`super::memlock::prepare`] found: passes when BPF memory
/// goes to the memory cgroup or RLIMIT_MEMLOCK is (now) unlimited, fails
/// when the kernel charges the limit and it stayed finite.
pub fn check_memory(memory: &BpfMemory) -> Check {
    const NAME: &str = "bpf_memory";
    if let Some(v) = memory.version.filter(|v| *v < MIN_KERNEL) {
        return Check::ok(
            NAME,
            format!("not judged: kernel {v} is older than {MIN_KERNEL} (see kernel_version)"),
        );
    }
    let kernel = memory.version.map_or_else(
        || "kernel of unknown version".to_owned(),
        |v| format!("kernel {v}"),
    );
    let limit = memory.describe_limit();
    let accounting = memory.accounting();
    if accounting == Accounting::Memcg {
        let why = if memory.probe == Probe::Created {
            "a BPF map was created with RLIMIT_MEMLOCK at 0: backported"
        } else {
            "5.11 and later"
        };
        let mut detail = format!(
            "{kernel}: BPF memory is charged to the memory cgroup ({why}); RLIMIT_MEMLOCK does \
             not apply and CAP_SYS_RESOURCE is not needed"
        );
        if let Some(note) = memory.kmem.note() {
            detail.push_str("; ");
            detail.push_str(note);
        }
        return Check::ok(NAME, detail);
    }
    let charged = match (accounting, memory.version) {
        (Accounting::Memlock, Some(v)) => {
            format!("kernel 5.8–5.10 ({v}): BPF memory is charged to RLIMIT_MEMLOCK")
        }
        (Accounting::Memlock, None) => format!(
            "{kernel}: BPF memory is charged to RLIMIT_MEMLOCK (a BPF map was refused with the \
             limit at 0)"
        ),
        _ => {
            let why = match &memory.probe {
                Probe::Inconclusive(reason) => reason.as_str(),
                _ => "no probe",
            };
            format!("{kernel}: cannot tell whether BPF memory is charged to RLIMIT_MEMLOCK ({why})")
        }
    };
    // Judged by the limit itself, not by what `prepare` meant to do.
    let unlimited = memory
        .limit
        .is_some_and(|(soft, _)| soft == libc::RLIM_INFINITY);
    let why = match memory.raise {
        Raise::Raised => {
            let detail =
                format!("{charged}; {limit} raised to unlimited, as the agent does at start");
            return Check::ok(NAME, detail);
        }
        _ if unlimited => return Check::ok(NAME, format!("{charged}; {limit}: unlimited already")),
        Raise::Failed(errno) => {
            format!("raising it failed: {}", io::Error::from_raw_os_error(errno))
        }
        Raise::NotNeeded => "it was not raised".to_owned(),
    };
    let detail = format!("{charged}; {limit} and {why}");
    if accounting == Accounting::Memlock {
        Check::fail(NAME, detail, OVERLAY_REMEDY).with_label("memlock_too_low")
    } else {
        Check::warn(
            NAME,
            detail,
            format!("if the kernel is older than 5.11, {OVERLAY_REMEDY}"),
        )
        .with_label("bpf_memory_unknown")
    }
}
