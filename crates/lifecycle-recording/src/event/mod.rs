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
            Event::Cgroup(_) | Event::Pod(_) | Event::Stats(_) => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SignalGenerate(SignalGenerate),
    SignalDeliver(SignalDeliver),
    ProcessExec(ProcessExec),
    ProcessFork(ProcessFork),
    ProcessExit(ProcessExit),
    Cgroup(CgroupChange),
    Socket(SocketChange),
    /// A change the Kubernetes API reported about a pod of this node.
    Pod(PodEvent),
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
    pub sender: Process,
    pub sender_parent_pid: u32,
    pub sender_parent_comm: String,
    pub target: Process,
    pub signal: i32,
    pub signal_name: String,
    pub code: i32,
    pub code_name: String,
    pub errno: i32,
    /// Sent to the whole thread group (kill) rather than one thread (tgkill).
    pub group: bool,
    /// delivered, ignored, already_pending, overflow_fail, lose_info.
    pub result: String,
}

/// `signal:signal_deliver`: the receiver is about to act on a signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalDeliver {
    pub process: Process,
    pub signal: i32,
    pub signal_name: String,
    pub code: i32,
    /// default, ignore, or handler.
    pub handler: String,
    pub sa_flags: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExec {
    pub process: Process,
    pub parent_pid: u32,
    pub filename: String,
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
    pub parent: Process,
    pub child: Process,
}

/// The last thread of a process exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupOp {
    Mkdir,
    Rmdir,
    /// A task was moved into the cgroup (e.g. runc moving its bootstrap
    /// `runc:[0:PARENT]` into a new container's cgroup).
    Attach,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupChange {
    pub op: CgroupOp,
    pub cgroup_id: u64,
    pub level: u32,
    /// Path relative to the cgroup v2 root.
    pub path: String,
    pub path_truncated: bool,
    pub class: CgroupClass,
    /// The task that made the change.
    pub actor: Process,
    /// For attach: the pid moved into the cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_pid: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketOp {
    ListenStart,
    ListenStop,
    ConnectStart,
    ConnectEstablished,
    /// The connect failed: see `error` (ECONNREFUSED = refused, ETIMEDOUT, ...).
    ConnectFailed,
    /// A connection completed its handshake on a listener (ready to accept).
    Accept,
    Close,
}

/// A TCP socket transition, attributed to the socket's owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketChange {
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
    pub socket_cgroup: Option<CgroupClass>,
    /// Kubernetes names of the socket's container (pod watch on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_k8s: Option<K8sRef>,
    /// The socket's uid (`sk_uid`): tells a mesh proxy (1337, 2102) apart.
    pub uid: u32,
    /// ipv4 or ipv6.
    pub family: String,
    pub local_addr: String,
    pub local_port: u16,
    pub remote_addr: String,
    pub remote_port: u16,
    pub old_state: String,
    pub new_state: String,
    /// errno name from `sk_err`, e.g. ECONNREFUSED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub errno: u32,
}

/// Self-telemetry written periodically and as the last line of a recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub format_version: u32,
    /// True for the closing stats line.
    pub last: bool,
    /// Events the kernel could not write to the full ring buffer, by kind.
    pub kernel_drops: BTreeMap<String, u64>,
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
}
