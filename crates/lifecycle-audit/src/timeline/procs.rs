//! The types a pod's processes are described with: a process across pid
//! reuse ([`ProcKey`]), a container's runs ([`Instance`]) and runtime execs
//! ([`HookExec`]), and what the records showed of each process
//! (`ProcInfo`). [`super::process`] collects them, [`super::runs`] sorts
//! them into runs.

use serde::{Deserialize, Serialize};

use super::At;

/// `(pid, start_ns)`: a process across pid reuse.
pub type ProcKey = (u32, u64);

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitObs {
    /// The `process_exit` record.
    pub at: At,
    /// What a runtime reports: the status, or 128 + signal.
    pub code: i32,
    /// Number of the signal that killed it; `None` when it exited by itself.
    pub killed_by: Option<i32>,
}

/// One run of a container, represented by its PID 1: the process that
/// exec'd the entrypoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Container id (or `cgroup:<id>`).
    pub key: String,
    /// PID 1's host pid (kernel tgid).
    pub pid: u32,
    /// When the process was forked, which for runc's `[2:INIT]` is some
    /// 35 ms before the entrypoint's exec.
    pub start_ns: u64,
    /// PID 1's command name at its last exec seen (else as first seen).
    pub comm: String,
    /// Last program PID 1 exec'd.
    pub filename: Option<String>,
    /// PID 1's first exec (the entrypoint); `None` when it predates the
    /// recording.
    pub exec: Option<At>,
    /// First record that showed PID 1 (its fork, when that was seen).
    pub first: At,
    /// PID 1's exit; `None` while it runs or when not seen.
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
    /// Host pid of the exec'd process.
    pub pid: u32,
    /// Its start, ns since boot (with `pid`, a [`ProcKey`]).
    pub start_ns: u64,
    /// Index into the container's instances.
    pub instance: usize,
    /// Its first exec seen.
    pub exec: At,
    /// Path of the program it exec'd last.
    pub filename: String,
    /// Its exit; `None` when not seen.
    pub exit: Option<ExitObs>,
}

/// What a process is to its container. The container runtime's own setup
/// processes have no role: they are not the container's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcRole {
    /// The run's PID 1: the process that exec'd the entrypoint.
    Pid1,
    /// A process entered from outside the run (hook, exec probe,
    /// `kubectl exec`).
    RuntimeExec,
    /// A process forked inside the run, or one never seen exec'ing.
    Child,
}

/// Where a process sits: container (by name), run, role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Container name.
    pub container: String,
    /// Index into the container's instances.
    pub instance: usize,
    /// What the process is to the run.
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
    /// Runs, in the order their PID 1 started.
    pub instances: Vec<Instance>,
    /// Runtime execs into the runs, by exec time.
    pub hooks: Vec<HookExec>,
    /// Processes of the container runtime's setup seen in its cgroups.
    pub runtime_setup: usize,
}
