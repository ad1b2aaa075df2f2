//! Reading kernel memory at offsets resolved by userspace from BTF.

use agent_common::{
    KIND_SLOTS, KernelOffsets, MAX_WATCH_ROOTS, TaskId, WatchRoot,
    config::{ABSENT, SPAN_MAX_BYTES, Span},
};
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_task},
    },
    macros::map,
    maps::{Array, PerCpuArray},
    programs::TracePointContext,
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

/// Scratch for [`SpanCopy`]s, one per CPU and per program (indexed by event
/// kind): a program never nests with itself on one CPU, but one running in
/// softirq can interrupt another. Twice `SPAN_MAX_BYTES`, so that the masks
/// below keep every access inside whatever the verifier knows of the span.
#[map]
static SPANS: PerCpuArray<[u64; SPAN_MAX_BYTES as usize / 4]> =
    PerCpuArray::with_max_entries(KIND_SLOTS, 0);

/// A [`Span`] of a kernel object, copied by one probe read. Userspace made
/// the span hold its members naturally aligned.
pub struct SpanCopy {
    buf: *const u8,
    start: u32,
}

impl SpanCopy {
    /// Copies `span` of `base` into the scratch of `slot`; `None` when the
    /// span is [`Span::NONE`] or the read faults: then read the members one
    /// by one (each read then fails or not as it always did).
    #[inline(always)]
    pub fn of(slot: u32, base: *const u8, span: Span) -> Option<SpanCopy> {
        if base.is_null() || span.start == ABSENT {
            return None;
        }
        let buf = SPANS.get_ptr_mut(slot)?.cast::<u8>();
        // SAFETY: the scratch holds 2 * SPAN_MAX_BYTES bytes, as much as the
        // masked length; the helper checks the source.
        let rc = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel(
                buf.cast(),
                span.len & (2 * SPAN_MAX_BYTES - 1),
                base.wrapping_add(span.start as usize).cast(),
            )
        };
        if rc != 0 {
            return None;
        }
        Some(SpanCopy {
            buf: buf.cast_const(),
            start: span.start,
        })
    }

    /// Where the member at `offset` of the object sits in the scratch.
    #[inline(always)]
    fn at(&self, offset: u32) -> *const u8 {
        let rel = offset.wrapping_sub(self.start) & (SPAN_MAX_BYTES - 1);
        self.buf.wrapping_add(rel as usize)
    }

    #[inline(always)]
    pub fn u32_at(&self, offset: u32) -> u32 {
        // SAFETY: inside the scratch; 4-byte aligned (checked by userspace).
        unsafe { self.at(offset).cast::<u32>().read() }
    }

    #[inline(always)]
    pub fn u64_at(&self, offset: u32) -> u64 {
        // SAFETY: inside the scratch; 8-byte aligned (checked by userspace).
        unsafe { self.at(offset).cast::<u64>().read() }
    }

    #[inline(always)]
    pub fn ptr_at(&self, offset: u32) -> *const u8 {
        self.u64_at(offset) as *const u8
    }

    #[inline(always)]
    pub fn bytes16_at(&self, offset: u32) -> [u8; 16] {
        // SAFETY: inside the scratch; 8-byte aligned (checked by userspace).
        let words = unsafe { self.at(offset).cast::<[u64; 2]>().read() };
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&words[0].to_ne_bytes());
        out[8..].copy_from_slice(&words[1].to_ne_bytes());
        out
    }
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

/// Start time of `task`'s process: `task->group_leader->start_boottime`.
/// A task whose pid equals its tgid is its group's leader (de_thread copies
/// the leader's `start_boottime` before taking over its pid), so one read of
/// its own `start_boottime` does instead of two.
#[inline(always)]
pub fn process_start(task: *const u8, is_leader: bool) -> u64 {
    let leader = if is_leader {
        task
    } else {
        read_ptr(task, off!(task_group_leader))
    };
    read::<u64>(leader, off!(task_start_boottime)).unwrap_or(0)
}

/// What [`task_fields`] reads of a task.
pub struct TaskFields {
    /// pid and tgid (only for `TaskRead::Any`).
    pub pid_tgid: (u32, u32),
    pub start_boottime_ns: u64,
    pub comm: [u8; 16],
    /// `real_parent` (only when asked for).
    pub real_parent: *const u8,
}

/// Which task [`task_fields`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TaskRead {
    /// The current task, whose pid and tgid the caller has; `true` when it
    /// leads its thread group (pid == tgid).
    Current { is_leader: bool },
    /// Any task: pid and tgid are read too.
    Any,
}

/// The process start time and comm of `task` (and pid/tgid for
/// `TaskRead::Any`, `real_parent` when `with_parent`), with one probe read
/// of a span of `task_struct` where userspace found one (see `Span`).
#[inline(always)]
pub fn task_fields(slot: u32, task: *const u8, which: TaskRead, with_parent: bool) -> TaskFields {
    let start_at = off!(task_start_boottime);
    let comm_at = off!(task_comm);
    // A group leader without its parent needs only start_boottime and comm.
    let span = match which {
        TaskRead::Current { is_leader: true } if !with_parent => off!(task_ids_span),
        _ => off!(task_span),
    };
    if let Some(copy) = SpanCopy::of(slot, task, span) {
        let pid_tgid = match which {
            TaskRead::Any => (copy.u32_at(off!(task_pid)), copy.u32_at(off!(task_tgid))),
            TaskRead::Current { .. } => (0, 0),
        };
        let is_leader = match which {
            TaskRead::Current { is_leader } => is_leader,
            TaskRead::Any => pid_tgid.0 == pid_tgid.1,
        };
        // A task whose pid equals its tgid is its group's leader (de_thread
        // copies the leader's start_boottime before taking over its pid):
        // its own start_boottime is its process's.
        let start_boottime_ns = if is_leader {
            copy.u64_at(start_at)
        } else {
            read::<u64>(copy.ptr_at(off!(task_group_leader)), start_at).unwrap_or(0)
        };
        return TaskFields {
            pid_tgid,
            start_boottime_ns,
            comm: copy.bytes16_at(comm_at),
            real_parent: if with_parent {
                copy.ptr_at(off!(task_real_parent))
            } else {
                core::ptr::null()
            },
        };
    }
    // No span on this kernel: member by member.
    let pid_tgid = match which {
        TaskRead::Any => (
            read::<u32>(task, off!(task_pid)).unwrap_or(0),
            read::<u32>(task, off!(task_tgid)).unwrap_or(0),
        ),
        TaskRead::Current { .. } => (0, 0),
    };
    let is_leader = match which {
        TaskRead::Current { is_leader } => is_leader,
        TaskRead::Any => pid_tgid.0 == pid_tgid.1,
    };
    TaskFields {
        pid_tgid,
        start_boottime_ns: process_start(task, is_leader),
        comm: read::<[u8; 16]>(task, comm_at).unwrap_or([0; 16]),
        real_parent: if with_parent {
            read_ptr(task, off!(task_real_parent))
        } else {
            core::ptr::null()
        },
    }
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

/// Full identity of any task (signal targets, fork children); `cgroup_id`
/// is the id of its `task_cgroup` when the caller already has it, 0 if not.
#[inline(always)]
pub fn task_id(slot: u32, task: *const u8, cgroup_id: u64) -> TaskId {
    let fields = task_fields(slot, task, TaskRead::Any, false);
    TaskId {
        pid: fields.pid_tgid.0,
        tgid: fields.pid_tgid.1,
        start_boottime_ns: fields.start_boottime_ns,
        cgroup_id: if cgroup_id == 0 {
            self::cgroup_id(task_cgroup(task))
        } else {
            cgroup_id
        },
        comm: fields.comm,
    }
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

/// `cgroup_id(cgrp)` when `cgrp` (a `struct cgroup *`) sits in a watched
/// subtree or filtering is off; `None` when it is filtered out. The id is
/// read once, whether the filter needed it or the caller does. `slot` is the
/// program's event kind (its scratch).
#[inline(always)]
pub fn watched_cgroup_id(slot: u32, cgrp: *const u8) -> Option<u64> {
    if !filtering() {
        return Some(cgroup_id(cgrp));
    }
    // level and kn with one read where they are close (they are).
    let (level, kn) = match SpanCopy::of(slot, cgrp, off!(cgroup_span)) {
        Some(copy) => (
            copy.u32_at(off!(cgroup_level)) as i32,
            copy.ptr_at(off!(cgroup_kn)),
        ),
        None => (
            read::<i32>(cgrp, off!(cgroup_level))?,
            read_ptr(cgrp, off!(cgroup_kn)),
        ),
    };
    let own_id = || read::<u64>(kn, off!(kernfs_node_id)).unwrap_or(0);
    let ancestors = off!(cgroup_ancestors);
    let are_ids = off!(cgroup_ancestors_are_ids) != 0;
    // 0 until read: cgroup ids are never 0.
    let mut own = 0u64;
    for i in 0..MAX_WATCH_ROOTS {
        let Some(root) = WATCH_ROOTS.get(i) else {
            continue;
        };
        if root.id == 0 || root.level as i32 > level || ancestors == ABSENT {
            continue;
        }
        let id = if root.level as i32 == level {
            if own == 0 {
                own = own_id();
            }
            own
        } else {
            let slot = ancestors + root.level * 8;
            if are_ids {
                read::<u64>(cgrp, slot).unwrap_or(0)
            } else {
                cgroup_id(read_ptr(cgrp, slot))
            }
        };
        if id == root.id {
            if own == 0 {
                own = own_id();
            }
            return Some(own);
        }
    }
    None
}

/// Loads the `T` at `OFFSET` in a classic tracepoint's record with a direct
/// context load, which costs a single instruction where a probe read is a
/// helper call. The verifier allows context loads only at constant offsets,
/// naturally aligned and inside the record: `OFFSET` comes from
/// `agent_common::config::tp`, checked against tracefs by userspace.
#[inline(always)]
pub fn tp_load<T: Copy, const OFFSET: usize>(ctx: &TracePointContext) -> T {
    const { assert!(OFFSET >= 8 && OFFSET % size_of::<T>() == 0 && size_of::<T>() <= 8) };
    // SAFETY: the context is the tracepoint's record, which holds a `T` at
    // `OFFSET` (verified by the kernel at load and by userspace against
    // tracefs); volatile keeps the load at exactly this offset and size.
    unsafe { core::ptr::read_volatile(ctx.as_ptr().cast::<u8>().add(OFFSET).cast::<T>()) }
}

/// A 16-byte array field (IPv6 address) at `OFFSET` as two 8-byte context
/// loads; `SECOND` is `OFFSET + 8` (spelled out: no const arithmetic on
/// generic parameters).
#[inline(always)]
pub fn tp_load_16<const OFFSET: usize, const SECOND: usize>(ctx: &TracePointContext) -> [u8; 16] {
    const { assert!(SECOND == OFFSET + 8) };
    let low = tp_load::<u64, OFFSET>(ctx).to_ne_bytes();
    let high = tp_load::<u64, SECOND>(ctx).to_ne_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&low);
    out[8..].copy_from_slice(&high);
    out
}

/// Copies the `__data_loc char[]` field at `OFFSET` (low 16 bits: offset of
/// the string in the record, high 16 bits: its length) into `dst`; returns
/// the bytes copied without NUL.
#[inline(always)]
pub fn read_data_loc_str<const OFFSET: usize>(ctx: &TracePointContext, dst: &mut [u8]) -> u32 {
    let loc = tp_load::<u32, OFFSET>(ctx);
    let src = ctx
        .as_ptr()
        .cast::<u8>()
        .cast_const()
        .wrapping_add((loc & 0xffff) as usize);
    // SAFETY: the helper bounds the copy by dst's length and checks the source.
    match unsafe { aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes(src, dst) } {
        Ok(bytes) => bytes.len() as u32,
        Err(_) => 0,
    }
}
