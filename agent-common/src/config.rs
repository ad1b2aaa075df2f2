//! Load-time configuration passed from userspace into the eBPF programs.
//!
//! Rust eBPF has no CO-RE relocations, so kernel struct member offsets are
//! resolved in userspace from `/sys/kernel/btf/vmlinux`, and classic tracepoint
//! field offsets from tracefs `format` files, then written into the
//! [`KernelOffsets`] global before the programs load.

/// Marker for "this member or field does not exist on this kernel".
pub const ABSENT: u32 = u32::MAX;

/// How many cgroup subtrees can be watched at once (e.g. `kubepods.slice` and
/// `kubepods` on one node).
pub const MAX_WATCH_ROOTS: u32 = 4;

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
    // signal:signal_deliver fields
    pub tp_deliver_sig: u32,
    pub tp_deliver_errno: u32,
    pub tp_deliver_code: u32,
    pub tp_deliver_sa_handler: u32,
    pub tp_deliver_sa_flags: u32,
    // sched:sched_process_exec / sched_process_exit fields
    pub tp_exec_filename: u32,
    pub tp_exit_group_dead: u32,
    // cgroup:cgroup_mkdir / cgroup_rmdir fields (same class)
    pub tp_cgroup_root: u32,
    pub tp_cgroup_id: u32,
    pub tp_cgroup_level: u32,
    pub tp_cgroup_path: u32,
    // cgroup:cgroup_attach_task fields
    pub tp_attach_root: u32,
    pub tp_attach_id: u32,
    pub tp_attach_level: u32,
    pub tp_attach_pid: u32,
    pub tp_attach_path: u32,
    // sock:inet_sock_set_state fields
    pub tp_sock_skaddr: u32,
    pub tp_sock_oldstate: u32,
    pub tp_sock_newstate: u32,
    pub tp_sock_sport: u32,
    pub tp_sock_dport: u32,
    pub tp_sock_family: u32,
    pub tp_sock_protocol: u32,
    pub tp_sock_saddr: u32,
    pub tp_sock_daddr: u32,
    pub tp_sock_saddr_v6: u32,
    pub tp_sock_daddr_v6: u32,
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
            css_set_dfl_cgrp: ABSENT,
            cgroup_kn: ABSENT,
            cgroup_level: ABSENT,
            cgroup_ancestors: ABSENT,
            cgroup_ancestors_are_ids: 0,
            kernfs_node_id: ABSENT,
            sock_err: ABSENT,
            sock_uid: ABSENT,
            sock_cgroup_ptr: ABSENT,
            tp_deliver_sig: ABSENT,
            tp_deliver_errno: ABSENT,
            tp_deliver_code: ABSENT,
            tp_deliver_sa_handler: ABSENT,
            tp_deliver_sa_flags: ABSENT,
            tp_exec_filename: ABSENT,
            tp_exit_group_dead: ABSENT,
            tp_cgroup_root: ABSENT,
            tp_cgroup_id: ABSENT,
            tp_cgroup_level: ABSENT,
            tp_cgroup_path: ABSENT,
            tp_attach_root: ABSENT,
            tp_attach_id: ABSENT,
            tp_attach_level: ABSENT,
            tp_attach_pid: ABSENT,
            tp_attach_path: ABSENT,
            tp_sock_skaddr: ABSENT,
            tp_sock_oldstate: ABSENT,
            tp_sock_newstate: ABSENT,
            tp_sock_sport: ABSENT,
            tp_sock_dport: ABSENT,
            tp_sock_family: ABSENT,
            tp_sock_protocol: ABSENT,
            tp_sock_saddr: ABSENT,
            tp_sock_daddr: ABSENT,
            tp_sock_saddr_v6: ABSENT,
            tp_sock_daddr_v6: ABSENT,
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
