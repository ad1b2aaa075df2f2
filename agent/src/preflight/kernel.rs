//! Kernel version and BTF.

use std::ffi::CStr;
use std::fmt;
use std::path::Path;

use crate::kernel::btf::Btf;

use super::{Check, PreflightError};

/// Oldest kernel the probes load on: the ring buffer map and
/// `bpf_ktime_get_boot_ns` arrived in 5.8 (with CAP_BPF and CAP_PERFMON).
/// The other helpers (`bpf_probe_read_kernel` 5.5,
/// `bpf_get_current_ancestor_cgroup_id` 5.6), raw tracepoints (4.17) and
/// `task_struct.start_boottime` (5.5) are older.
pub const MIN_KERNEL: KernelVersion = KernelVersion::new(5, 8, 0);
/// From this version BPF memory is charged to the memory cgroup instead of
/// RLIMIT_MEMLOCK.
pub const MEMCG_ACCOUNTING: KernelVersion = KernelVersion::new(5, 11, 0);
/// From this version `struct sock` points at its cgroup directly
/// (`sk_cgrp_data.cgroup`); before, socket events carry no cgroup.
pub const SOCK_CGROUP_POINTER: KernelVersion = KernelVersion::new(5, 15, 0);

/// `major.minor.patch` of a kernel release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses the leading `major.minor[.patch]` of a release such as
    /// `6.1.0-18-amd64`, `5.15.0-1057-gke` or `5.10.210-201.852.amzn2.x86_64`.
    /// The patch level stops at the first non-digit (`6.8.0-rc3` is 6.8.0).
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.trim().splitn(3, '.');
        let number = |s: &str| -> Option<u32> {
            let digits: &str = &s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())];
            digits.parse().ok()
        };
        let major_part = parts.next()?;
        // The major number must be the whole first component.
        if major_part.is_empty() || !major_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let major = major_part.parse().ok()?;
        let minor = number(parts.next()?)?;
        let patch = parts.next().and_then(number).unwrap_or(0);
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The running kernel's release string (`uname -r`).
pub fn uname_release() -> Result<String, PreflightError> {
    // SAFETY: utsname is plain data; uname fills it or fails.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(PreflightError::UnameFailed(std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel NUL-terminates the field within its size.
    let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) };
    Ok(release.to_string_lossy().into_owned())
}

pub(super) fn check_version(release: &Result<String, PreflightError>) -> Check {
    const NAME: &str = "kernel_version";
    let release = match release {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(NAME, e.to_string(), "run on Linux; uname(2) must work")
                .with_label(e.label());
        }
    };
    let Some(version) = KernelVersion::parse(release) else {
        let e = PreflightError::KernelReleaseUnparsable(release.clone());
        return Check::warn(
            NAME,
            e.to_string(),
            format!("make sure the kernel is at least {MIN_KERNEL}; the other checks still apply"),
        )
        .with_label(e.label());
    };
    if version < MIN_KERNEL {
        return Check::fail(
            NAME,
            format!(
                "kernel {version} ({release}) is older than {MIN_KERNEL}: no BPF ring buffer, no \
                 bpf_ktime_get_boot_ns, no CAP_BPF/CAP_PERFMON"
            ),
            format!("use nodes with a kernel of at least {MIN_KERNEL} (5.15 or later recommended)"),
        )
        .with_label("kernel_too_old");
    }
    let mut notes = Vec::new();
    if version < MEMCG_ACCOUNTING {
        notes.push("before 5.11 BPF memory counts against RLIMIT_MEMLOCK (see bpf_memory)");
    }
    if version < SOCK_CGROUP_POINTER {
        notes.push("before 5.15 socket events may carry no cgroup (see kernel_offsets)");
    }
    let mut detail = format!("{version} ({release}), minimum {MIN_KERNEL}");
    for note in notes {
        detail.push_str("; ");
        detail.push_str(note);
    }
    Check::ok(NAME, detail)
}

/// Parses the kernel BTF; the parsed BTF feeds the offsets check.
pub(super) fn check_btf(path: &Path) -> (Check, Option<Btf>) {
    const NAME: &str = "btf";
    match Btf::from_file(path) {
        Ok(btf) => match btf.member("task_struct", "pid") {
            Ok(Some(_)) => {
                let detail = format!(
                    "{} parsed: {} types, struct task_struct present",
                    path.display(),
                    btf.type_count()
                );
                (Check::ok(NAME, detail), Some(btf))
            }
            _ => (
                Check::fail(
                    NAME,
                    format!(
                        "{} parses but has no struct task_struct: not the kernel's own BTF",
                        path.display()
                    ),
                    "point --btf-path at the running kernel's /sys/kernel/btf/vmlinux",
                )
                .with_label("btf_unavailable"),
                None,
            ),
        },
        Err(e) => (
            Check::failed_step(
                NAME,
                e,
                "the kernel needs CONFIG_DEBUG_INFO_BTF=y (most distribution kernels have \
                 it); in a pod, mount the host's /sys/kernel/btf read-only",
            ),
            None,
        ),
    }
}
