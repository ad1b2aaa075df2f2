//! Reading kernel memory at offsets resolved by userspace from BTF.

use agent_common::{KernelOffsets, MAX_WATCH_ROOTS, TaskId, WatchRoot, config::ABSENT};
use aya_ebpf::{
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_task},
    },
    macros::map,
    maps::Array,
};

/// Filled by userspace before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
pub(crate) static OFFSETS: KernelOffsets = KernelOffsets::unset();

/// Cgroup subtrees whose events are kept when filtering is on.
#[map]
static WATCH_ROOTS: Array<WatchRoot> = Array::with_max_entries(MAX_WATCH_ROOTS, 0);

/// Reads one offset from the global; volatile so the loader's value is used.
macro_rules! off {
    ($field:ident) => {{
        // SAFETY: reading a plain global.
        #[allow(unused_unsafe)]
        let value = unsafe { core::ptr::read_volatile(&$crate::kmem::OFFSETS.$field) };
        value
    }};
}
pub(crate) use off;

/// Reads a `T` at `base + offset`; `None` if the offset is absent or the read faults.
#[inline(always)]
pub fn read<T>(base: *const u8, offset: u32) -> Option<T> {
    if base.is_null() || offset == ABSENT {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address and may fail.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize) as *const T).ok() }
}

#[inline(always)]
pub fn read_ptr(base: *const u8, offset: u32) -> *const u8 {
    read::<u64>(base, offset).unwrap_or(0) as *const u8
}

#[inline(always)]
pub fn current_task() -> *const u8 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_get_current_task() as *const u8 }
}

/// `task->group_leader->start_boottime`: the process's start time.
#[inline(always)]
pub fn leader_start(task: *const u8) -> u64 {
    let leader = read_ptr(task, off!(task_group_leader));
    read::<u64>(leader, off!(task_start_boottime)).unwrap_or(0)
}

/// `task->cgroups->dfl_cgrp`: the task's cgroup v2.
#[inline(always)]
pub fn task_cgroup(task: *const u8) -> *const u8 {
    let cset = read_ptr(task, off!(task_cgroups));
    read_ptr(cset, off!(css_set_dfl_cgrp))
}

/// `cgrp->kn->id`: the cgroup id userspace sees as the directory inode.
#[inline(always)]
pub fn cgroup_id(cgrp: *const u8) -> u64 {
    let kn = read_ptr(cgrp, off!(cgroup_kn));
    read::<u64>(kn, off!(kernfs_node_id)).unwrap_or(0)
}

/// Full identity of any task (signal targets, fork children).
#[inline(always)]
pub fn task_id(task: *const u8) -> (TaskId, *const u8) {
    let cgrp = task_cgroup(task);
    let id = TaskId {
        pid: read::<u32>(task, off!(task_pid)).unwrap_or(0),
        tgid: read::<u32>(task, off!(task_tgid)).unwrap_or(0),
        start_boottime_ns: leader_start(task),
        cgroup_id: cgroup_id(cgrp),
        comm: read::<[u8; 16]>(task, off!(task_comm)).unwrap_or([0; 16]),
    };
    (id, cgrp)
}

#[inline(always)]
fn filtering() -> bool {
    off!(filter_enabled) != 0
}

/// Whether the current task sits in a watched subtree (always true when
/// filtering is off).
#[inline(always)]
pub fn current_watched() -> bool {
    if !filtering() {
        return true;
    }
    for i in 0..MAX_WATCH_ROOTS {
        let Some(root) = WATCH_ROOTS.get(i) else {
            continue;
        };
        if root.id == 0 {
            continue;
        }
        // SAFETY: helper without preconditions; returns 0 past the task's depth.
        if unsafe { bpf_get_current_ancestor_cgroup_id(root.level as i32) } == root.id {
            return true;
        }
    }
    false
}

/// Whether `cgrp` (a `struct cgroup *`) sits in a watched subtree.
#[inline(always)]
pub fn cgroup_watched(cgrp: *const u8) -> bool {
    if !filtering() {
        return true;
    }
    let Some(level) = read::<i32>(cgrp, off!(cgroup_level)) else {
        return false;
    };
    let ancestors = off!(cgroup_ancestors);
    let are_ids = off!(cgroup_ancestors_are_ids) != 0;
    for i in 0..MAX_WATCH_ROOTS {
        let Some(root) = WATCH_ROOTS.get(i) else {
            continue;
        };
        if root.id == 0 || root.level as i32 > level || ancestors == ABSENT {
            continue;
        }
        let slot = ancestors + root.level * 8;
        let id = if are_ids {
            read::<u64>(cgrp, slot).unwrap_or(0)
        } else {
            cgroup_id(read_ptr(cgrp, slot))
        };
        if id == root.id {
            return true;
        }
    }
    false
}

/// Raw pointer to a classic tracepoint's record, for offset reads.
pub trait TracepointBase {
    fn as_ptr_u8(&self) -> *const u8;
}

impl TracepointBase for aya_ebpf::programs::TracePointContext {
    fn as_ptr_u8(&self) -> *const u8 {
        use aya_ebpf::EbpfContext;
        self.as_ptr() as *const u8
    }
}

/// Copies a `__data_loc char[]` field (low 16 bits: offset in the record,
/// high 16 bits: length) into `dst`; returns the bytes copied without NUL.
#[inline(always)]
pub fn read_data_loc_str(record: *const u8, field: u32, dst: &mut [u8]) -> u32 {
    let Some(loc) = read::<u32>(record, field) else {
        return 0;
    };
    let src = record.wrapping_add((loc & 0xffff) as usize);
    // SAFETY: the helper bounds the copy by dst's length and checks the source.
    match unsafe { aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes(src, dst) } {
        Ok(bytes) => bytes.len() as u32,
        Err(_) => 0,
    }
}
