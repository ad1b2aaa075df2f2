//! The recording format: one JSON object per line (NDJSON).
//!
//! Every line is a [`Record`]: a sequence number, the wall-clock time (RFC3339
//! with nanoseconds, and integer nanoseconds since the Unix epoch), and one
//! event tagged by `type`. Kernel events also carry the kernel boot-clock
//! time they were taken at and the CPU. Field names are part of the format
//! (documented in docs/recording.md): add fields, never rename them.

pub mod names;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    cgroup::CgroupClass,
    join::{JoinCounters, K8sRef},
    pods::{PodEvent, StoreStats},
};

/// Version of the recording format, written in the first `stats` record.
pub const FORMAT_VERSION: u32 = 1;

/// One line of a recording: its position, when it happened and the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the recording, from 0, without gaps.
    pub seq: u64,
    /// Wall-clock UTC, RFC3339 with 9 fractional digits.
    pub time: String,
    /// The same instant as integer nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// Kernel CLOCK_BOOTTIME at the probe (kernel events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_ns: Option<u64>,
    /// CPU the probe ran on (kernel events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// The event; flattened, so its `type` tag and its fields sit at the top
    /// level of the JSON line next to `seq` and `time`.
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// The processes the record names: sender and target of a signal,
    /// parent and child of a fork, a socket's owner, the process of the
    /// other process events.
    pub fn processes(&self) -> Vec<&Process> {
        match &self.event {
            Event::SignalGenerate(e) => vec![&e.sender, &e.target],
            Event::SignalDeliver(e) => vec![&e.process],
            Event::ProcessExec(e) => vec![&e.process],
            Event::ProcessFork(e) => vec![&e.parent, &e.child],
            Event::ProcessExit(e) => vec![&e.process],
            Event::Socket(e) => e.owner.iter().collect(),
            Event::SignalSummary(e) => vec![&e.process],
            Event::Cgroup(_) | Event::Pod(_) | Event::Stats(_) => Vec::new(),
        }
    }
}

/// What a line reports; the JSON `type` field names the variant in
/// snake_case (`signal_generate`, `process_exit`, `stats`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// `signal_generate`: a signal was sent.
    SignalGenerate(SignalGenerate),
    /// `signal_deliver`: a process is about to act on a signal.
    SignalDeliver(SignalDeliver),
    /// `signal_summary`: housekeeping signals a process sent its own
    /// threads, counted instead of written one by one.
    SignalSummary(SignalSummary),
    /// `process_exec`: a process exec'd a program, or was found running at start-up.
    ProcessExec(ProcessExec),
    /// `process_fork`: a new process was created.
    ProcessFork(ProcessFork),
    /// `process_exit`: the last thread of a process exited.
    ProcessExit(ProcessExit),
    /// `cgroup`: a cgroup was created or removed, or a task was moved into one.
    Cgroup(CgroupChange),
    /// `socket`: a TCP socket changed state.
    Socket(SocketChange),
    /// A change the Kubernetes API reported about a pod of this node.
    Pod(PodEvent),
    /// `stats`: the agent's own counters.
    Stats(Stats),
}

/// A process, identified by `(pid, start_ns)`: pids are reused, the pair is not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id (the kernel's tgid).
    pub pid: u32,
    /// Thread id (the kernel's pid).
    pub tid: u32,
    /// Start of the process, ns since boot (`start_boottime` of its leader).
    pub start_ns: u64,
    /// Command name (the kernel's `comm`, at most 15 characters).
    pub comm: String,
    /// Cgroup v2 id (inode of the cgroup directory).
    pub cgroup_id: u64,
    /// What the cgroup is (container, pod, not Kubernetes, unknown layout);
    /// `null` when the cgroup id could not be resolved to a path.
    pub cgroup: Option<CgroupClass>,
    /// Namespace, pod and container names from the API (pod watch on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s: Option<K8sRef>,
}

impl Process {
    /// `"<pid>@<start_ns>"`: the process key used across a recording.
    pub fn key(&self) -> String {
        format!("{}@{}", self.pid, self.start_ns)
    }
}

/// `signal:signal_generate`: a signal was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalGenerate {
    /// The process that sent the signal.
    pub sender: Process,
    /// Process id of the sender's parent (tells `runc` under `containerd-shim` apart).
    pub sender_parent_pid: u32,
    /// Command name of the sender's parent.
    pub sender_parent_comm: String,
    /// The process the signal was sent to, attributed to its own cgroup.
    pub target: Process,
    /// Signal number (15 for SIGTERM).
    pub signal: i32,
    /// Name of `signal`, e.g. `SIGTERM`; `SIG<n>` for real-time and unknown numbers.
    pub signal_name: String,
    /// `si_code` of the signal (0 SI_USER, 0x80 SI_KERNEL, -6 SI_TKILL, ...).
    pub code: i32,
    /// Name of `code`, e.g. `SI_USER`.
    pub code_name: String,
    /// `si_errno` from the signal's siginfo; 0 when the kernel passed none.
    pub errno: i32,
    /// Sent to the whole thread group (kill) rather than one thread (tgkill).
    pub group: bool,
    /// delivered, ignored, already_pending, overflow_fail, lose_info.
    pub result: String,
    /// How the target had `signal` set up when it was sent: `default`,
    /// `ignore` or `handler`. Absent in recordings made before the probe read
    /// it, or when the kernel's layout did not allow the read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_action: Option<String>,
    /// The target is the init of its pid namespace (`SIGNAL_UNKILLABLE`): a
    /// signal it has no handler for is dropped unless the kernel forces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ns_init: Option<bool>,
}

/// Signals a process sent to its own threads for its runtime's
/// housekeeping (Go's goroutine preemption with SIGURG, glibc's SIGCANCEL
/// and SIGSETXID), hundreds a second: counted per process and signal since
/// the previous summary, and written instead of their `signal_generate` and
/// `signal_deliver` records. Nothing audits them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalSummary {
    /// The process as the last of them found it (its receiving thread in
    /// `tid`; after an exec, its new `comm`).
    pub process: Process,
    /// Signal number.
    pub signal: i32,
    /// Name of `signal`, e.g. `SIGURG`.
    pub signal_name: String,
    /// `signal_generate` records summarized.
    pub generated: u64,
    /// `signal_deliver` records summarized.
    pub delivered: u64,
    /// The first and last of them, ns since boot.
    pub first_boot_ns: u64,
    /// See `first_boot_ns`.
    pub last_boot_ns: u64,
}

/// `signal:signal_deliver`: the receiver is about to act on a signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalDeliver {
    /// The process receiving the signal.
    pub process: Process,
    /// Signal number.
    pub signal: i32,
    /// Name of `signal`, e.g. `SIGTERM`.
    pub signal_name: String,
    /// `si_code` of the signal being delivered.
    pub code: i32,
    /// default, ignore, or handler.
    pub handler: String,
    /// `sa_flags` of the receiver's action for this signal (SA_SIGINFO, SA_RESTART, ...).
    pub sa_flags: u64,
}

/// A process exec'd a new program, or was found running when the agent started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExec {
    /// The process, as it is after the exec.
    pub process: Process,
    /// Process id of its parent.
    pub parent_pid: u32,
    /// Path of the executed file as the kernel received it.
    pub filename: String,
    /// `filename` was cut at the probe's 256-byte buffer.
    pub filename_truncated: bool,
    /// Set when this is not an exec the probes saw but a process found
    /// running in `/proc` when the agent started (see `run`'s recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovered>,
}

/// How a process found at start-up was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// Where it was read from (`proc`).
    pub source: String,
    /// `process.start_ns` is this coarse (`/proc/<pid>/stat` counts clock
    /// ticks): the probes' exact start lies in `[start_ns, start_ns +
    /// start_resolution_ns)`. The audit matches the two by that rule.
    pub start_resolution_ns: u64,
}

/// A new process (threads are not reported).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFork {
    /// The process that forked.
    pub parent: Process,
    /// The new process.
    pub child: Process,
}

/// The last thread of a process exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
    /// The process that exited.
    pub process: Process,
    /// The kernel's wait status (`status << 8`, or the signal number).
    pub exit_code_raw: u32,
    /// exit(2) status when the process exited by itself.
    pub exit_status: Option<i32>,
    /// Signal that killed it, if any.
    pub killed_by_signal: Option<i32>,
    /// What a container runtime reports: the status, or 128 + signal.
    pub container_exit_code: i32,
}

/// What happened to a cgroup (JSON `op`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupOp {
    /// The cgroup was created.
    Mkdir,
    /// The cgroup was removed.
    Rmdir,
    /// A task was moved into the cgroup (e.g. runc moving its bootstrap
    /// `runc:[0:PARENT]` into a new container's cgroup).
    Attach,
}

/// A cgroup was created or removed, or a task was moved into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupChange {
    /// What happened.
    pub op: CgroupOp,
    /// Cgroup v2 id (directory inode) of the cgroup created, removed or moved into.
    pub cgroup_id: u64,
    /// Depth below the cgroup v2 root (the root is 0), the kernel's `cgroup->level`.
    pub level: u32,
    /// Path relative to the cgroup v2 root.
    pub path: String,
    /// `path` was cut at the probe's 256-byte buffer.
    pub path_truncated: bool,
    /// What the path says the cgroup is.
    pub class: CgroupClass,
    /// The task that made the change.
    pub actor: Process,
    /// For attach: the pid moved into the cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_pid: Option<u32>,
}

/// Which TCP state transition a `socket` line reports (JSON `op`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketOp {
    /// The socket started listening (CLOSE to LISTEN).
    ListenStart,
    /// A listener was closed (LISTEN to CLOSE).
    ListenStop,
    /// A connect began (CLOSE to SYN_SENT); the local port is still 0.
    ConnectStart,
    /// A connect succeeded (SYN_SENT to ESTABLISHED).
    ConnectEstablished,
    /// The connect failed: see `error` (ECONNREFUSED = refused, ETIMEDOUT, ...).
    ConnectFailed,
    /// A connection completed its handshake on a listener (ready to accept).
    Accept,
    /// A connection is gone (any other state to CLOSE).
    Close,
}

/// A TCP socket transition, attributed to the socket's owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketChange {
    /// The transition.
    pub op: SocketOp,
    /// Kernel socket address in hex: the same for every event of one socket.
    pub socket: String,
    /// The process that owns the socket (the one that listened or connected;
    /// for accepted connections the listener's owner); `null` if the socket
    /// predates the agent.
    pub owner: Option<Process>,
    /// Cgroup the socket belongs to (`sk_cgrp_data`): attributes it even in
    /// softirq context.
    pub socket_cgroup_id: u64,
    /// Classification of `socket_cgroup_id`; `null` when the id did not resolve.
    pub socket_cgroup: Option<CgroupClass>,
    /// Kubernetes names of the socket's container (pod watch on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_k8s: Option<K8sRef>,
    /// The socket's uid (`sk_uid`): tells a mesh proxy (1337, 2102) apart.
    pub uid: u32,
    /// ipv4 or ipv6.
    pub family: String,
    /// Local IP address, as text.
    pub local_addr: String,
    /// Local port; 0 for `connect_start` (the kernel picks it later).
    pub local_port: u16,
    /// Remote IP address, as text.
    pub remote_addr: String,
    /// Remote port.
    pub remote_port: u16,
    /// TCP state before the transition, e.g. `SYN_SENT`.
    pub old_state: String,
    /// TCP state after the transition, e.g. `ESTABLISHED`.
    pub new_state: String,
    /// errno name from `sk_err`, e.g. ECONNREFUSED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `sk_err` as a number; 0 when no error is set.
    pub errno: u32,
}

/// Self-telemetry written periodically and as the last line of a recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Version of the recording format the writer used ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// True for the closing stats line.
    pub last: bool,
    /// Events the kernel could not write to the full ring buffer, by kind.
    pub kernel_drops: BTreeMap<String, u64>,
    /// Sum of `kernel_drops` over all kinds.
    pub kernel_drops_total: u64,
    /// Events decoded, by kind.
    pub events: BTreeMap<String, u64>,
    /// Ring-buffer records that could not be decoded, by reason.
    pub decode_errors: BTreeMap<String, u64>,
    /// Events with a process or socket whose cgroup id could not be resolved.
    pub unattributed: u64,
    /// Cgroups whose path is below a kubepods root but of an unknown layout.
    pub unknown_layouts: u64,
    /// The join with the pod model (pod watch on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinCounters>,
    /// The pod watch and store (pod watch on): malformed objects, watch
    /// errors, re-lists, pods kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_store: Option<StoreStats>,
    /// Housekeeping signals summarized (`signal_summary`) rather than
    /// written, by signal name, since the agent started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub summarized_signals: BTreeMap<String, u64>,
    /// Signals of watched cgroups the probes' signal mask kept out of the
    /// recording, counted in the kernel since the agent started: by event
    /// kind (`signal_generate`, `signal_deliver`), then signal name.
    /// Non-zero entries only; absent when none were left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filtered_signals: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sum of `filtered_signals`; absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub filtered_signals_total: u64,
    /// The signals the probes wrote (the mask, by name); absent when every
    /// signal was written (`--all-signals`, or a recording older than the
    /// mask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_signals: Option<Vec<String>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
