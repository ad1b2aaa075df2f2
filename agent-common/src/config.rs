//! Load-time configuration passed from userspace into the eBPF programs.
//!
//! Rust eBPF has no CO-RE relocations, so kernel struct member offsets are
//! resolved in userspace from `/sys/kernel/btf/vmlinux` and written into the
//! [`KernelOffsets`] global before the programs load. Classic tracepoint
//! fields are read at compile-time offsets ([`tp`]) that userspace checks
//! against the tracefs `format` files ([`TRACEPOINT_FIELDS`]).

/// Marker for "this member or field does not exist on this kernel".
pub const ABSENT: u32 = u32::MAX;

/// How many cgroup subtrees can be watched at once (e.g. `kubepods.slice` and
/// `kubepods` on one node).
pub const MAX_WATCH_ROOTS: u32 = 4;

/// Slots per event kind in the filtered-signal counters: index 0 is unused,
/// 1..=64 are the signal numbers.
pub const SIGNAL_SLOTS: u32 = 65;
/// Filtered-signal counter rows: `signal:signal_generate`...
pub const FILTER_GENERATE: u32 = 0;
/// ...and `signal:signal_deliver`.
pub const FILTER_DELIVER: u32 = 1;
/// Size of the filtered-signal counter map: two rows of [`SIGNAL_SLOTS`].
pub const FILTERED_SIGNAL_SLOTS: u32 = 2 * SIGNAL_SLOTS;

/// A cgroup subtree whose processes and sockets are reported: a task or
/// socket is kept when its cgroup's ancestor at `level` has id `id`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchRoot {
    /// Cgroup id of the subtree root; 0 = unused slot.
    pub id: u64,
    /// Depth of the root below the hierarchy root (which is level 0).
    pub level: u32,
    pub _pad: u32,
}

/// Most bytes a [`Span`] may cover: the size of the programs' per-CPU
/// scratch for one span.
pub const SPAN_MAX_BYTES: u32 = 512;

/// A stretch of a kernel struct the programs copy with one probe read to get
/// several members at once: a probe read costs about 26 ns whatever its
/// size, plus about 0.05 ns per byte. Userspace computes it from BTF so that
/// it holds every member it is meant for, naturally aligned, within
/// [`SPAN_MAX_BYTES`]; otherwise it is [`Span::NONE`] and the members are
/// read one by one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte copied (a multiple of 8); [`ABSENT`]: none.
    pub start: u32,
    /// Bytes copied.
    pub len: u32,
}

impl Span {
    pub const NONE: Span = Span {
        start: ABSENT,
        len: 0,
    };
}

/// Offsets (bytes) the eBPF programs read kernel memory at.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    // struct task_struct
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_comm: u32,
    pub task_start_boottime: u32,
    pub task_cgroups: u32,
    pub task_exit_code: u32,
    /// `task_struct.sighand` and `.signal` (pointers).
    pub task_sighand: u32,
    pub task_signal: u32,
    /// `sighand_struct.action`: the `struct k_sigaction` array, signal n at
    /// index n - 1, `k_sigaction_bytes` apart.
    pub sighand_action: u32,
    pub k_sigaction_bytes: u32,
    /// `k_sigaction.sa.sa_handler` (0 SIG_DFL, 1 SIG_IGN, else a handler).
    pub k_sigaction_handler: u32,
    /// `signal_struct.flags` (SIGNAL_UNKILLABLE: a pid namespace's init).
    pub signal_flags: u32,
    // struct css_set / cgroup / kernfs_node
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub cgroup_level: u32,
    /// `cgroup.ancestors` (pointers, 5.18+) or `cgroup.ancestor_ids` (ids).
    pub cgroup_ancestors: u32,
    /// 1 when `cgroup_ancestors` points at an array of u64 ids, 0 for pointers.
    pub cgroup_ancestors_are_ids: u32,
    pub kernfs_node_id: u32,
    // struct sock
    pub sock_err: u32,
    pub sock_uid: u32,
    /// Offset of the `struct cgroup *` inside `sk->sk_cgrp_data`, from `sk`.
    pub sock_cgroup_ptr: u32,
    /// `task_struct` from `start_boottime` to `comm`: the current task's
    /// start time and comm when it leads its thread group.
    pub task_ids_span: Span,
    /// `task_struct` holding `pid`, `tgid`, `real_parent`, `group_leader`,
    /// `start_boottime` and `comm`.
    pub task_span: Span,
    /// `sock` holding `sk_err` and `sk_uid`.
    pub sock_span: Span,
    /// `cgroup` holding `level` and `kn`.
    pub cgroup_span: Span,
    /// 1 when `sched:sched_process_exit` has `group_dead` at
    /// [`tp::EXIT_GROUP_DEAD`] (checked by userspace), 0 when the kernel has no
    /// such field (exits then fall back to `pid == tgid`).
    pub exit_has_group_dead: u32,
    /// Hierarchy id of cgroup v2 in the cgroup tracepoints (always 0 upstream).
    pub cgroup2_hierarchy_id: u32,
    /// 1: keep only process/socket/signal events touching a watched subtree.
    pub filter_enabled: u32,
    /// Bytes of unread data in the ring buffer above which a submit wakes
    /// the reader; below it submits do not wake it (the reader also polls on
    /// a timer). Waking on every event costs an inter-processor interrupt.
    pub wakeup_threshold_bytes: u32,
    pub _pad: u32,
}

impl KernelOffsets {
    /// Every offset absent, filtering off: the eBPF side falls back to zeros.
    pub const fn unset() -> Self {
        Self {
            task_pid: ABSENT,
            task_tgid: ABSENT,
            task_real_parent: ABSENT,
            task_group_leader: ABSENT,
            task_comm: ABSENT,
            task_start_boottime: ABSENT,
            task_cgroups: ABSENT,
            task_exit_code: ABSENT,
            task_sighand: ABSENT,
            task_signal: ABSENT,
            sighand_action: ABSENT,
            k_sigaction_bytes: 0,
            k_sigaction_handler: ABSENT,
            signal_flags: ABSENT,
            css_set_dfl_cgrp: ABSENT,
            cgroup_kn: ABSENT,
            cgroup_level: ABSENT,
            cgroup_ancestors: ABSENT,
            cgroup_ancestors_are_ids: 0,
            kernfs_node_id: ABSENT,
            sock_err: ABSENT,
            sock_uid: ABSENT,
            sock_cgroup_ptr: ABSENT,
            task_ids_span: Span::NONE,
            task_span: Span::NONE,
            sock_span: Span::NONE,
            cgroup_span: Span::NONE,
            exit_has_group_dead: 0,
            cgroup2_hierarchy_id: 0,
            filter_enabled: 0,
            wakeup_threshold_bytes: 0,
            _pad: 0,
        }
    }
}

impl Default for KernelOffsets {
    fn default() -> Self {
        Self::unset()
    }
}

/// Layout of the classic tracepoint records the programs read.
///
/// The programs load these fields straight from the record (a direct context
/// load costs nothing; a `bpf_probe_read_kernel` per field costs tens of ns),
/// and the verifier only accepts context loads at offsets fixed at compile
/// time. So the offsets are constants here, and userspace checks every entry
/// of [`TRACEPOINT_FIELDS`] against the running kernel's tracefs `format`
/// files before loading: a kernel with another layout is refused with an
/// error naming the field, never read at the wrong place.
///
/// These layouts have been stable for years (the common header is 8 bytes).
pub mod tp {
    // signal:signal_deliver
    pub const DELIVER_SIG: usize = 8;
    pub const DELIVER_ERRNO: usize = 12;
    pub const DELIVER_CODE: usize = 16;
    pub const DELIVER_SA_HANDLER: usize = 24;
    pub const DELIVER_SA_FLAGS: usize = 32;
    // sched:sched_process_exec
    pub const EXEC_FILENAME: usize = 8;
    // sched:sched_process_exit
    pub const EXIT_GROUP_DEAD: usize = 32;
    // cgroup:cgroup_mkdir and cgroup:cgroup_rmdir (one event class)
    pub const CGROUP_ROOT: usize = 8;
    pub const CGROUP_LEVEL: usize = 12;
    pub const CGROUP_ID: usize = 16;
    pub const CGROUP_PATH: usize = 24;
    // cgroup:cgroup_attach_task
    pub const ATTACH_ROOT: usize = 8;
    pub const ATTACH_LEVEL: usize = 12;
    pub const ATTACH_ID: usize = 16;
    pub const ATTACH_PID: usize = 24;
    pub const ATTACH_PATH: usize = 28;
    // sock:inet_sock_set_state
    pub const SOCK_SKADDR: usize = 8;
    pub const SOCK_OLDSTATE: usize = 16;
    pub const SOCK_NEWSTATE: usize = 20;
    pub const SOCK_SPORT: usize = 24;
    pub const SOCK_DPORT: usize = 26;
    pub const SOCK_FAMILY: usize = 28;
    pub const SOCK_PROTOCOL: usize = 30;
    pub const SOCK_SADDR: usize = 32;
    pub const SOCK_DADDR: usize = 36;
    pub const SOCK_SADDR_V6: usize = 40;
    pub const SOCK_DADDR_V6: usize = 56;
}

/// How a tracepoint field is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TracepointFieldKind {
    /// A plain value (integer, pointer, or byte array) of `size` bytes.
    Value,
    /// A `__data_loc` field: a u32 holding `length << 16 | offset` of data
    /// stored after the fixed part of the record.
    DataLoc,
}

/// One field the programs read, at the offset and size they assume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracepointField {
    pub category: &'static str,
    pub event: &'static str,
    pub field: &'static str,
    pub offset: usize,
    pub size: usize,
    pub kind: TracepointFieldKind,
    /// The programs do without it when the kernel lacks the field (see
    /// [`KernelOffsets::exit_has_group_dead`]); present elsewhere, it is
    /// still refused.
    pub optional: bool,
}

const fn tp_field(
    category: &'static str,
    event: &'static str,
    field: &'static str,
    offset: usize,
    size: usize,
) -> TracepointField {
    TracepointField {
        category,
        event,
        field,
        offset,
        size,
        kind: TracepointFieldKind::Value,
        optional: false,
    }
}

const fn tp_data_loc(
    category: &'static str,
    event: &'static str,
    field: &'static str,
    offset: usize,
) -> TracepointField {
    TracepointField {
        kind: TracepointFieldKind::DataLoc,
        ..tp_field(category, event, field, offset, 4)
    }
}

/// Every tracepoint field the programs read, with the layout they assume.
pub const TRACEPOINT_FIELDS: &[TracepointField] = &[
    tp_field("signal", "signal_deliver", "sig", tp::DELIVER_SIG, 4),
    tp_field("signal", "signal_deliver", "errno", tp::DELIVER_ERRNO, 4),
    tp_field("signal", "signal_deliver", "code", tp::DELIVER_CODE, 4),
    tp_field(
        "signal",
        "signal_deliver",
        "sa_handler",
        tp::DELIVER_SA_HANDLER,
        8,
    ),
    tp_field(
        "signal",
        "signal_deliver",
        "sa_flags",
        tp::DELIVER_SA_FLAGS,
        8,
    ),
    tp_data_loc("sched", "sched_process_exec", "filename", tp::EXEC_FILENAME),
    TracepointField {
        optional: true,
        ..tp_field(
            "sched",
            "sched_process_exit",
            "group_dead",
            tp::EXIT_GROUP_DEAD,
            1,
        )
    },
    tp_field("cgroup", "cgroup_mkdir", "root", tp::CGROUP_ROOT, 4),
    tp_field("cgroup", "cgroup_mkdir", "level", tp::CGROUP_LEVEL, 4),
    tp_field("cgroup", "cgroup_mkdir", "id", tp::CGROUP_ID, 8),
    tp_data_loc("cgroup", "cgroup_mkdir", "path", tp::CGROUP_PATH),
    tp_field("cgroup", "cgroup_rmdir", "root", tp::CGROUP_ROOT, 4),
    tp_field("cgroup", "cgroup_rmdir", "level", tp::CGROUP_LEVEL, 4),
    tp_field("cgroup", "cgroup_rmdir", "id", tp::CGROUP_ID, 8),
    tp_data_loc("cgroup", "cgroup_rmdir", "path", tp::CGROUP_PATH),
    tp_field(
        "cgroup",
        "cgroup_attach_task",
        "dst_root",
        tp::ATTACH_ROOT,
        4,
    ),
    tp_field(
        "cgroup",
        "cgroup_attach_task",
        "dst_level",
        tp::ATTACH_LEVEL,
        4,
    ),
    tp_field("cgroup", "cgroup_attach_task", "dst_id", tp::ATTACH_ID, 8),
    tp_field("cgroup", "cgroup_attach_task", "pid", tp::ATTACH_PID, 4),
    tp_data_loc("cgroup", "cgroup_attach_task", "dst_path", tp::ATTACH_PATH),
    tp_field("sock", "inet_sock_set_state", "skaddr", tp::SOCK_SKADDR, 8),
    tp_field(
        "sock",
        "inet_sock_set_state",
        "oldstate",
        tp::SOCK_OLDSTATE,
        4,
    ),
    tp_field(
        "sock",
        "inet_sock_set_state",
        "newstate",
        tp::SOCK_NEWSTATE,
        4,
    ),
    tp_field("sock", "inet_sock_set_state", "sport", tp::SOCK_SPORT, 2),
    tp_field("sock", "inet_sock_set_state", "dport", tp::SOCK_DPORT, 2),
    tp_field("sock", "inet_sock_set_state", "family", tp::SOCK_FAMILY, 2),
    tp_field(
        "sock",
        "inet_sock_set_state",
        "protocol",
        tp::SOCK_PROTOCOL,
        2,
    ),
    tp_field("sock", "inet_sock_set_state", "saddr", tp::SOCK_SADDR, 4),
    tp_field("sock", "inet_sock_set_state", "daddr", tp::SOCK_DADDR, 4),
    tp_field(
        "sock",
        "inet_sock_set_state",
        "saddr_v6",
        tp::SOCK_SADDR_V6,
        16,
    ),
    tp_field(
        "sock",
        "inet_sock_set_state",
        "daddr_v6",
        tp::SOCK_DADDR_V6,
        16,
    ),
];
