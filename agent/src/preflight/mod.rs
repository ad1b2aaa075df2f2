//! Preflight checks: can this node run the agent, and if not, why.
//!
//! [`run_checks`] looks at what the probes and the pipeline need from the
//! kernel and the container they run in (kernel version, BTF, tracefs and
//! the tracepoint layouts, the cgroup v2 hierarchy, capabilities, BPF ring
//! buffers, where BPF memory is charged, BPF limits, the host's `/proc`)
//! without loading any program, and
//! returns one [`Check`] per item with what was found and, when it is not
//! fine, what to do about it. `lifecycle-agent doctor` prints the [`Report`];
//! `run` calls the same function at start.
//!
//! Checks reuse the agent's own code paths (`kernel::btf`, `kernel::tracefs`,
//! `kernel::offsets`, `attribution`), so a check that passes here exercises
//! what the agent will do. Failure labels are the loader's
//! (`LoadError::label`) wherever the same failure would stop the loader.

mod bpf;
mod caps;
mod host;
mod kernel;
pub mod memlock;
mod memory_check;
mod render;
mod tracing_checks;

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::kernel::loader::ProbeOptions;

pub use caps::{CAPABILITY_NAMES, CapSet, Need, REQUIREMENTS, capability_bit, capability_name};
pub use kernel::{KernelVersion, MEMCG_ACCOUNTING, MIN_KERNEL};
pub use memlock::{BpfMemory, MemlockError};

/// Every check [`run_checks`] performs, in report order.
pub const CHECK_NAMES: [&str; 11] = [
    "kernel_version",
    "btf",
    "tracefs",
    "tracepoints",
    "kernel_offsets",
    "cgroup",
    "capabilities",
    "bpf_memory",
    "ring_buffer",
    "bpf_limits",
    "proc",
];

/// Where to look and what the agent will be allowed to do.
#[derive(Clone, Debug)]
pub struct PreflightOptions {
    /// The kernel's BTF (`/sys/kernel/btf/vmlinux`).
    pub btf_path: PathBuf,
    /// A tracefs mount to use; `None` looks where the loader looks.
    pub tracefs_path: Option<PathBuf>,
    /// Mount tracefs when it is missing, as the agent does unless
    /// `--no-mount-tracefs` (needs CAP_SYS_ADMIN).
    pub mount_tracefs: bool,
    /// The `/proc` showing the host's processes (`/host/proc` in the
    /// DaemonSet); restart recovery reads it.
    pub proc_root: PathBuf,
    /// Ring buffer size to try creating, as `--ring-buffer-bytes`.
    pub ring_buffer_bytes: u32,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        Self {
            btf_path: PathBuf::from(crate::kernel::btf::VMLINUX_BTF),
            tracefs_path: None,
            mount_tracefs: true,
            proc_root: PathBuf::from("/proc"),
            ring_buffer_bytes: crate::kernel::loader::DEFAULT_RING_BUFFER_BYTES,
        }
    }
}

impl PreflightOptions {
    /// What `run` (and `doctor`, with the same flags) checks: the probes'
    /// ring buffer size and tracefs policy, and the host `/proc`.
    pub fn for_run(probes: &ProbeOptions, proc_root: &Path) -> Self {
        Self {
            mount_tracefs: probes.mount_tracefs,
            ring_buffer_bytes: probes.ring_buffer_bytes,
            proc_root: proc_root.to_path_buf(),
            ..Self::default()
        }
    }
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The agent runs, with less (named in the detail).
    Warn,
    /// The agent cannot run (or cannot do its main job) here.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One checked item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// One of [`CHECK_NAMES`].
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, when the status is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// Machine-readable failure label (the loader's where it applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'static str>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            remedy: None,
            label: None,
        }
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            remedy: Some(remedy.into()),
            ..Self::ok(name, detail)
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            remedy: Some(remedy.into()),
            ..Self::ok(name, detail)
        }
    }

    /// A failed check from an error of the loader's own steps: its message
    /// as the detail, the label it would carry as a [`LoadError`].
    pub fn failed_step<E>(name: &'static str, error: E, remedy: impl Into<String>) -> Self
    where
        E: std::fmt::Display,
        crate::kernel::loader::LoadError: From<E>,
    {
        let detail = error.to_string();
        let label = crate::kernel::loader::LoadError::from(error).label();
        Self::fail(name, detail, remedy).with_label(label)
    }

    pub fn with_label(mut self, label: &'static str) -> Self {
        self.label = Some(label);
        self
    }
}

/// The result of [`run_checks`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `uname -r`, or why it is unknown.
    pub kernel_release: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// True when any check failed: the agent should not start.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Aligned lines for a terminal, remedies indented below their check.
    pub fn render_text(&self) -> String {
        render::text(self)
    }

    /// Pretty JSON: `kernel_release`, `failed`, `warnings`, `checks`.
    pub fn render_json(&self) -> String {
        render::json(self)
    }
}

/// What went wrong inside a check (reported in its detail, never returned).
#[derive(Debug, Error)]
pub enum PreflightError {
    #[error("uname(2) failed: {0}")]
    UnameFailed(std::io::Error),
    #[error("kernel release {0:?} does not start with a version number")]
    KernelReleaseUnparsable(String),
    #[error("cannot read {path}: {source}")]
    StatusUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no parsable CapEff line in {0}")]
    CapEffMissing(PathBuf),
    #[error("creating a BPF ring buffer of {bytes} bytes failed: {source}")]
    RingBufferCreateFailed { bytes: u32, source: std::io::Error },
}

impl PreflightError {
    /// Short label for metrics and the JSON report.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnameFailed(_) => "uname_failed",
            Self::KernelReleaseUnparsable(_) => "kernel_release_unparsable",
            Self::StatusUnreadable { .. } => "status_unreadable",
            Self::CapEffMissing(_) => "capeff_missing",
            Self::RingBufferCreateFailed { .. } => "ring_buffer_create_failed",
        }
    }
}

/// Runs every check of [`CHECK_NAMES`] (sync; reads files and makes a few
/// syscalls, loads no program). May mount tracefs when
/// `opts.mount_tracefs` is set and tracefs is missing, and below kernel
/// 5.11 raises RLIMIT_MEMLOCK, as the loader would (so the ring buffer is
/// tried under the limit the probes will see).
pub fn run_checks(opts: &PreflightOptions) -> Report {
    let release = kernel::uname_release();
    let version = release.as_deref().ok().and_then(KernelVersion::parse);
    let caps = caps::own_capabilities();
    let mut checks = Vec::with_capacity(CHECK_NAMES.len());

    checks.push(kernel::check_version(&release));
    let (btf_check, btf) = kernel::check_btf(&opts.btf_path);
    checks.push(btf_check);
    let (tracefs_check, tracefs, mount_needed) = tracing_checks::check_tracefs(opts);
    checks.push(tracefs_check);
    checks.push(tracing_checks::check_tracepoints(tracefs.as_ref()));
    checks.push(tracing_checks::check_offsets(btf.as_ref()));
    checks.push(host::check_cgroup());
    checks.push(caps::check(&caps, version, mount_needed));
    checks.push(memory_check::check_memory(&memlock::prepare(version)));
    checks.push(bpf::check_ring_buffer(opts.ring_buffer_bytes));
    checks.push(bpf::check_limits());
    checks.push(host::check_proc(&opts.proc_root));

    tracing::info!(
        failed = checks.iter().filter(|c| c.status == Status::Fail).count(),
        warnings = checks.iter().filter(|c| c.status == Status::Warn).count(),
        "preflight checks done"
    );
    Report {
        kernel_release: release.unwrap_or_else(|e| format!("unknown ({e})")),
        checks,
    }
}

#[cfg(test)]
mod memlock_tests;
#[cfg(test)]
mod tests;
