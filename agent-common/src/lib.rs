//! Types shared by the eBPF programs (`agent-ebpf`) and the userspace agent.
//!
//! Every record written to the ring buffer starts with an [`EventHeader`]; its
//! `kind` says which `#[repr(C)]` struct follows. All structs are plain old data
//! with explicit padding so that both sides agree on the layout byte for byte.
//! The `user` feature implements `aya::Pod` for the userspace side.
#![no_std]

pub mod config;

pub use config::{KernelOffsets, MAX_WATCH_ROOTS, WatchRoot};

/// Length of a task's `comm` in the kernel (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Bytes kept of an exec'd filename; longer names are truncated (flagged).
pub const FILENAME_LEN: usize = 256;
/// Bytes kept of a cgroup path; longer paths are truncated (flagged).
pub const CGROUP_PATH_LEN: usize = 256;

/// Name of the ring buffer map.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the per-CPU array counting failed ring-buffer reservations by kind.
pub const DROPS_MAP: &str = "DROPS";
/// Name of the array of cgroup subtrees whose socket and process events are kept.
pub const WATCH_ROOTS_MAP: &str = "WATCH_ROOTS";
/// Name of the global holding [`KernelOffsets`].
pub const OFFSETS_GLOBAL: &str = "OFFSETS";
/// Name of the one-entry array holding the signal mask: bit `n - 1` set means
/// signal `n` is emitted (see [`config::SIGNAL_SLOTS`]).
pub const SIGNAL_MASK_MAP: &str = "SIGNAL_MASK";
/// Name of the per-CPU array counting signals left out by the mask, indexed
/// `filter_kind * SIGNAL_SLOTS + sig` ([`config::FILTERED_SIGNAL_SLOTS`]).
pub const FILTERED_SIGNALS_MAP: &str = "FILTERED_SIGNALS";

/// What follows an [`EventHeader`]. The numeric values are part of the
/// recording format: never renumber.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    SignalGenerate = 1,
    SignalDeliver = 2,
    ProcessExec = 3,
    ProcessFork = 4,
    ProcessExit = 5,
    CgroupMkdir = 6,
    CgroupRmdir = 7,
    CgroupAttach = 8,
    Socket = 9,
}

/// Number of slots in the drop counter map (indexed by `EventKind as u32`).
pub const KIND_SLOTS: u32 = 16;

impl EventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::SignalGenerate,
            2 => Self::SignalDeliver,
            3 => Self::ProcessExec,
            4 => Self::ProcessFork,
            5 => Self::ProcessExit,
            6 => Self::CgroupMkdir,
            7 => Self::CgroupRmdir,
            8 => Self::CgroupAttach,
            9 => Self::Socket,
            _ => return None,
        })
    }

    pub const ALL: [EventKind; 9] = [
        Self::SignalGenerate,
        Self::SignalDeliver,
        Self::ProcessExec,
        Self::ProcessFork,
        Self::ProcessExit,
        Self::CgroupMkdir,
        Self::CgroupRmdir,
        Self::CgroupAttach,
        Self::Socket,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::SignalGenerate => "signal_generate",
            Self::SignalDeliver => "signal_deliver",
            Self::ProcessExec => "process_exec",
            Self::ProcessFork => "process_fork",
            Self::ProcessExit => "process_exit",
            Self::CgroupMkdir => "cgroup_mkdir",
            Self::CgroupRmdir => "cgroup_rmdir",
            Self::CgroupAttach => "cgroup_attach",
            Self::Socket => "socket",
        }
    }
}

/// The task an event is about: the current task for most events, the signal
/// target or fork child where a struct says so.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskId {
    /// Thread id (kernel `pid`).
    pub pid: u32,
    /// Process id (kernel `tgid`).
    pub tgid: u32,
    /// `task->start_boottime` of the thread group leader, ns since boot:
    /// with `tgid` it identifies a process across pid reuse.
    pub start_boottime_ns: u64,
    /// Cgroup v2 id (the cgroup directory's inode number).
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

/// Common prefix of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`] value.
    pub kind: u32,
    /// CPU the probe ran on.
    pub cpu: u32,
    /// `bpf_ktime_get_boot_ns()` at the probe.
    pub boot_ns: u64,
    /// The current task (the actor) when the probe ran.
    pub task: TaskId,
    /// Effective uid of the current task (socket events: the socket's uid).
    pub uid: u32,
    pub _pad: u32,
}

/// `signal:signal_generate`: the current task is the sender.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SignalGenerateEvent {
    pub header: EventHeader,
    pub target: TaskId,
    /// Parent of the sender (tgid and comm), to recognise `runc` under `containerd-shim`.
    pub sender_parent_tgid: u32,
    pub sig: i32,
    pub sender_parent_comm: [u8; COMM_LEN],
    /// `si_code` (SI_USER = 0, SI_KERNEL = 0x80, SI_TKILL = -6, ...).
    pub code: i32,
    pub errno: i32,
    /// 1 when sent to the whole thread group.
    pub group: i32,
    /// 0 delivered, 1 ignored, 2 already pending, 3 overflow, 4 lose info.
    pub result: i32,
    /// The target's action for `sig` when it was sent: 0 SIG_DFL, 1 SIG_IGN,
    /// else a handler address; [`ACTION_UNREAD`] when it could not be read.
    pub target_handler: u64,
    /// `signal_struct.flags` of the target ([`SIGNAL_UNKILLABLE`]: it is the
    /// init of its pid namespace); [`FLAGS_UNREAD`] when unreadable.
    pub target_signal_flags: u32,
    pub _pad: u32,
}

/// [`SignalGenerateEvent::target_handler`] when the action was not read.
pub const ACTION_UNREAD: u64 = u64::MAX;
/// [`SignalGenerateEvent::target_signal_flags`] when the flags were not read.
pub const FLAGS_UNREAD: u32 = u32::MAX;
/// `SIGNAL_UNKILLABLE` (include/linux/sched/signal.h): the task is a pid
/// namespace's init, and signals it has no handler for are not delivered
/// unless the kernel forces them (SIGKILL/SIGSTOP from an ancestor namespace).
pub const SIGNAL_UNKILLABLE: u32 = 0x40;

/// `signal:signal_deliver`: the current task is the receiver.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SignalDeliverEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub code: i32,
    pub errno: i32,
    pub _pad: u32,
    /// 0 = SIG_DFL, 1 = SIG_IGN, anything else is a handler address.
    pub sa_handler: u64,
    pub sa_flags: u64,
}

/// `sched:sched_process_exec`: the current task has just exec'd `filename`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcessExecEvent {
    pub header: EventHeader,
    pub parent_tgid: u32,
    /// Bytes of `filename` used (without the NUL); `FILENAME_LEN` if truncated.
    pub filename_len: u32,
    pub filename: [u8; FILENAME_LEN],
}

/// `sched:sched_process_fork` for a new process (threads are not reported):
/// the header's task is the parent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessForkEvent {
    pub header: EventHeader,
    pub child: TaskId,
}

/// `sched:sched_process_exit` when the whole thread group is gone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessExitEvent {
    pub header: EventHeader,
    /// `task->exit_code`: wait(2) status layout (`code << 8`, or the signal).
    pub exit_code: u32,
    pub _pad: u32,
}

/// `cgroup:cgroup_mkdir`, `cgroup_rmdir` and `cgroup_attach_task` on the
/// cgroup v2 hierarchy.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgroupEvent {
    pub header: EventHeader,
    /// The cgroup created, removed, or moved into.
    pub cgroup_id: u64,
    pub level: u32,
    /// For attach: the migrated task's pid (the header holds the mover).
    pub attach_pid: u32,
    pub path_len: u32,
    pub _pad: u32,
    pub path: [u8; CGROUP_PATH_LEN],
}

/// What a [`SocketEvent`] reports, derived from a TCP state transition.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketOp {
    /// CLOSE -> LISTEN.
    ListenStart = 1,
    /// LISTEN -> CLOSE.
    ListenStop = 2,
    /// CLOSE -> SYN_SENT.
    ConnectStart = 3,
    /// SYN_SENT -> ESTABLISHED.
    ConnectEstablished = 4,
    /// SYN_SENT -> CLOSE (with `sk_err` saying refused, timed out, ...).
    ConnectFailed = 5,
    /// SYN_RECV -> ESTABLISHED: a connection completed on a listener.
    Accept = 6,
    /// Any other state -> CLOSE: the connection is gone.
    Close = 7,
}

impl SocketOp {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::ListenStart,
            2 => Self::ListenStop,
            3 => Self::ConnectStart,
            4 => Self::ConnectEstablished,
            5 => Self::ConnectFailed,
            6 => Self::Accept,
            7 => Self::Close,
            _ => return None,
        })
    }
}

/// `sock:inet_sock_set_state` for TCP, reduced to the transitions the agent
/// needs. The header's task is the socket's OWNER (remembered from the
/// process-context transition), not the task that happened to be current
/// (state changes often run in softirq context). `owner_known == 0` means no
/// owner was remembered (the socket predates the agent): then the header task
/// fields are zero and only `sock_cgroup_id` and the header uid are known.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketEvent {
    pub header: EventHeader,
    /// Kernel address of the socket: ties the events of one connection together.
    pub skaddr: u64,
    /// Cgroup the socket was created in (`sk->sk_cgrp_data`).
    pub sock_cgroup_id: u64,
    pub op: u32,
    pub oldstate: u32,
    pub newstate: u32,
    /// `sk->sk_err` (e.g. 111 ECONNREFUSED, 110 ETIMEDOUT) at the transition.
    pub sk_err: u32,
    pub family: u16,
    pub sport: u16,
    pub dport: u16,
    pub owner_known: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

// aya reads these types from kernel memory: `unsafe impl aya::Pod` states
// that every bit pattern is valid for them.
#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod_impls {
    use super::*;
    // SAFETY: all of these are #[repr(C)] structs of integers and byte arrays
    // with explicit padding fields, valid for any bit pattern.
    unsafe impl aya::Pod for EventHeader {}
    unsafe impl aya::Pod for SignalGenerateEvent {}
    unsafe impl aya::Pod for SignalDeliverEvent {}
    unsafe impl aya::Pod for ProcessExecEvent {}
    unsafe impl aya::Pod for ProcessForkEvent {}
    unsafe impl aya::Pod for ProcessExitEvent {}
    unsafe impl aya::Pod for CgroupEvent {}
    unsafe impl aya::Pod for SocketEvent {}
    unsafe impl aya::Pod for KernelOffsets {}
    unsafe impl aya::Pod for WatchRoot {}
}
