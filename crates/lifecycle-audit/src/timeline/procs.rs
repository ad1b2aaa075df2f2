//! The types a pod's processes are described with: a process across pid
//! reuse ([`ProcKey`]), a container's runs ([`Instance`]) and runtime execs
//! ([`HookExec`]), and what the records showed of each process
//! ([`ProcInfo`]). [`super::process`] collects them, [`super::runs`] sorts
//! them into runs.

use serde::{Deserialize, Serialize};

use super::At;

/// `(pid, start_ns)`: a process across pid reuse.
pub type ProcKey = (u32, u64);

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitObs {
    pub at: At,
    /// What a runtime reports: the status, or 128 + signal.
    pub code: i32,
    pub killed_by: Option<i32>,
}

/// One run of a container, represented by its PID 1: the process that
/// exec'd the entrypoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Container id (or `cgroup:<id>`).
    pub key: String,
    pub pid: u32,
    /// When the process was forked, which for runc's `[2:INIT]` is some
    /// 35 ms before the entrypoint's exec.
    pub start_ns: u64,
    pub comm: String,
    /// Last program PID 1 exec'd.
    pub filename: Option<String>,
    /// PID 1's first exec (the entrypoint); `None` when it predates the
    /// recording.
    pub exec: Option<At>,
    /// First record that showed PID 1 (its fork, when that was seen).
    pub first: At,
    pub exit: Option<ExitObs>,
}

impl Instance {
    /// Whether PID 1 ran at `ns` (a run seen without its exec ran before
    /// the recording started).
    pub fn alive_at(&self, ns: i64) -> bool {
        self.exec.is_none_or(|e| e.ns <= ns) && self.exit.is_none_or(|x| x.at.ns > ns)
    }

    /// When the run began, as far as the recording shows.
    pub fn began(&self) -> At {
        self.exec.unwrap_or(self.first)
    }
}

/// A process the runtime exec'd into a running container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookExec {
    pub pid: u32,
    pub start_ns: u64,
    /// Index into the container's instances.
    pub instance: usize,
    pub exec: At,
    pub filename: String,
    pub exit: Option<ExitObs>,
}

/// What a process is to its container. The container runtime's own setup
/// processes have no role: they are not the container's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcRole {
    Pid1,
    RuntimeExec,
    Child,
}

/// Where a process sits: container (by name), run, role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub container: String,
    pub instance: usize,
    pub role: ProcRole,
}

/// What the records showed of one process.
#[derive(Clone, Debug)]
pub(super) struct ProcInfo {
    pub key: ProcKey,
    pub comm: String,
    pub container: String,
    pub instance: String,
    pub first: At,
    /// Its first exec seen (a `/proc` recovery is not one).
    pub exec: Option<At>,
    pub exec_parent: Option<u32>,
    pub filename: Option<String>,
    /// The process that forked it, when the fork was seen in the pod.
    pub forked_by: Option<ProcKey>,
    /// Seen under a comm of the runtime's bootstrap since its last exec.
    pub bootstrap: bool,
    pub exit: Option<ExitObs>,
}

/// The processes of one container, sorted into runs and hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerProcesses {
    pub instances: Vec<Instance>,
    pub hooks: Vec<HookExec>,
    /// Processes of the container runtime's setup seen in its cgroups.
    pub runtime_setup: usize,
}
