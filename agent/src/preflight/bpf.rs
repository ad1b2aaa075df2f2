//! BPF ring buffer support and the limits around BPF: RLIMIT_MEMLOCK (for
//! context; whether it applies is `memlock.rs`'s question),
//! `kernel.unprivileged_bpf_disabled`, `kernel.perf_event_paranoid` and
//! kernel lockdown.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::{Check, PreflightError};

const BPF_MAP_CREATE: libc::c_long = 0;
pub(super) const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// The leading part of `union bpf_attr` for BPF_MAP_CREATE; the kernel
/// accepts a shorter attribute and zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// Creates a map of `map_type` and returns its file descriptor.
pub(super) fn create_map(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &[u8],
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        ..MapCreateAttr::default()
    };
    // The kernel wants a NUL within the 16 bytes.
    let len = name.len().min(attr.map_name.len() - 1);
    attr.map_name[..len].copy_from_slice(&name[..len]);
    // SAFETY: a valid pointer to a bpf_attr prefix of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            &attr as *const MapCreateAttr,
            std::mem::size_of::<MapCreateAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a file descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Creates a BPF ring buffer of `bytes` and closes it again.
pub fn create_ring_buffer(bytes: u32) -> Result<(), PreflightError> {
    create_map(BPF_MAP_TYPE_RINGBUF, 0, 0, bytes, b"lca_preflight")
        .map(drop)
        .map_err(|source| PreflightError::RingBufferCreateFailed { bytes, source })
}

pub(super) fn check_ring_buffer(bytes: u32) -> Check {
    const NAME: &str = "ring_buffer";
    match create_ring_buffer(bytes) {
        Ok(()) => Check::ok(
            NAME,
            format!("created and closed a BPF ring buffer of {bytes} bytes"),
        ),
        Err(e) => {
            let remedy = match &e {
                PreflightError::RingBufferCreateFailed { source, .. } => {
                    match source.raw_os_error() {
                        Some(libc::EPERM) => {
                            "grant CAP_BPF (or CAP_SYS_ADMIN); with seccomp RuntimeDefault the \
                             runtime must allow bpf(2) for CAP_BPF (containerd 1.6.9 and later do); before \
                             kernel 5.11 see bpf_memory (RLIMIT_MEMLOCK, overlays/kernel-5.8)"
                        }
                        Some(libc::EINVAL) => {
                            "--ring-buffer-bytes must be a power of two of at least 4096, and the \
                             kernel must support BPF_MAP_TYPE_RINGBUF (5.8+)"
                        }
                        Some(libc::ENOMEM) => "lower --ring-buffer-bytes or raise the memory limit",
                        Some(libc::ENOSYS) => {
                            "the kernel lacks bpf(2) (CONFIG_BPF_SYSCALL) or seccomp blocks it"
                        }
                        _ => "see the error above",
                    }
                }
                _ => "see the error above",
            };
            Check::fail(NAME, e.to_string(), remedy).with_label(e.label())
        }
    }
}

/// What to do on a 5.8–5.10 node whose limit the agent cannot raise.
pub const OVERLAY_REMEDY: &str = "deploy with overlays/kernel-5.8 (CAP_SYS_RESOURCE)";

/// RLIMIT_MEMLOCK (soft, hard) in bytes.
pub fn memlock_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit.
    (unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0)
        .then_some((limit.rlim_cur, limit.rlim_max))
}

/// The active mode of `/sys/kernel/security/lockdown` text
/// (`none [integrity] confidentiality` -> `integrity`).
pub fn parse_lockdown(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = start + text[start..].find(']')?;
    Some(&text[start + 1..end])
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(path))
        .ok()
        .map(|s| s.trim().to_owned())
}

pub(super) fn describe_limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} KiB", v / 1024)
    }
}

pub(super) fn check_limits() -> Check {
    const NAME: &str = "bpf_limits";
    let mut facts = Vec::new();
    let memlock = memlock_limit();
    if let Some((soft, hard)) = memlock {
        facts.push(format!(
            "RLIMIT_MEMLOCK {} (hard {})",
            describe_limit(soft),
            describe_limit(hard)
        ));
    }
    for (name, path) in [
        (
            "unprivileged_bpf_disabled",
            "/proc/sys/kernel/unprivileged_bpf_disabled",
        ),
        (
            "perf_event_paranoid",
            "/proc/sys/kernel/perf_event_paranoid",
        ),
    ] {
        let value = read_trimmed(path).unwrap_or_else(|| "unreadable".to_owned());
        facts.push(format!("{name} {value}"));
    }
    let lockdown = read_trimmed("/sys/kernel/security/lockdown");
    let mode = lockdown
        .as_deref()
        .and_then(parse_lockdown)
        .map(str::to_owned);
    facts.push(format!(
        "lockdown {}",
        mode.as_deref()
            .unwrap_or("unknown (securityfs not visible)")
    ));
    let detail = facts.join("; ");

    if mode.as_deref() == Some("confidentiality") {
        return Check::fail(
            NAME,
            detail,
            "kernel lockdown=confidentiality forbids bpf_probe_read_kernel, which every probe \
             uses: boot without it (lockdown=integrity is fine)",
        )
        .with_label("kernel_lockdown");
    }
    // With CAP_BPF (or CAP_SYS_ADMIN) the unprivileged_bpf_disabled and
    // perf_event_paranoid settings do not apply: reported for context.
    Check::ok(NAME, detail)
}
