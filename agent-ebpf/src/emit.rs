//! The ring buffer, the drop counters and the event header.

use agent_common::{EventHeader, KIND_SLOTS, TaskId};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_get_current_cgroup_id, bpf_get_smp_processor_id, bpf_ktime_get_boot_ns},
    },
    macros::map,
    maps::{PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};

use crate::kmem;

/// Size here is a placeholder: userspace sets it at load time.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Failed reservations, indexed by event kind.
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(KIND_SLOTS, 0);

/// Reserves room for a `T`, counting the drop when the buffer is full.
#[inline(always)]
pub fn reserve<T: 'static>(kind: u32) -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        if let Some(slot) = DROPS.get_ptr_mut(kind) {
            // SAFETY: per-CPU slot, only this CPU writes it while we run.
            unsafe { *slot += 1 };
        }
    }
    entry
}

/// Submits a reserved record. The reader is woken only when this record
/// makes the unread data cross `KernelOffsets::wakeup_threshold_bytes`;
/// below it the reader polls on a timer. A wake-up per record would cost an
/// inter-processor interrupt per event.
#[inline(always)]
pub fn submit<T: 'static>(entry: RingBufEntry<T>) {
    const BPF_RB_AVAIL_DATA: u64 = 0;
    const BPF_RB_NO_WAKEUP: u64 = 1;
    const BPF_RB_FORCE_WAKEUP: u64 = 2;
    let threshold = crate::kmem::off!(wakeup_threshold_bytes) as u64;
    // Unread bytes, including this reserved record (and its 8-byte header).
    let unread = EVENTS.query(BPF_RB_AVAIL_DATA);
    let before = unread.saturating_sub(size_of::<T>() as u64 + 8);
    let flags = if unread >= threshold && before < threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags);
}

/// The current task's cgroup v2 id.
#[inline(always)]
pub fn current_cgroup_id() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_get_current_cgroup_id() }
}

/// Identity of the current task (`task`, from `kmem::current_task()`), in
/// cgroup `cgroup_id`: pid, tgid, process start time, comm; and its
/// `real_parent` when `with_parent`. `slot` is the program's event kind (its
/// scratch).
#[inline(always)]
pub fn current_task_id_in(
    slot: u32,
    task: *const u8,
    cgroup_id: u64,
    with_parent: bool,
) -> (TaskId, *const u8) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = pid_tgid as u32;
    let tgid = (pid_tgid >> 32) as u32;
    // start_boottime, comm (a probe read costs half of bpf_get_current_comm,
    // which copies with strscpy_pad; the bytes are the same) and the parent
    // pointer: one probe read where they are close enough.
    let which = kmem::TaskRead::Current {
        is_leader: pid == tgid,
    };
    let fields = kmem::task_fields(slot, task, which, with_parent);
    let id = TaskId {
        pid,
        tgid,
        start_boottime_ns: fields.start_boottime_ns,
        cgroup_id,
        comm: fields.comm,
    };
    (id, fields.real_parent)
}

/// Header for an event whose actor is the current task (`task`, from
/// `kmem::current_task()`), and the task's `real_parent` when `with_parent`.
#[inline(always)]
pub fn current_header_and_parent(
    kind: u32,
    task: *const u8,
    with_parent: bool,
) -> (EventHeader, *const u8) {
    let (id, parent) = current_task_id_in(kind, task, current_cgroup_id(), with_parent);
    (
        header_for(kind, id, bpf_get_current_uid_gid() as u32),
        parent,
    )
}

#[inline(always)]
pub fn current_header(kind: u32, task: *const u8) -> EventHeader {
    current_header_and_parent(kind, task, false).0
}

/// Header for an event whose actor is `task` (socket owners).
#[inline(always)]
pub fn header_for(kind: u32, task: TaskId, uid: u32) -> EventHeader {
    EventHeader {
        kind,
        // SAFETY: helpers without preconditions.
        cpu: unsafe { bpf_get_smp_processor_id() },
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        task,
        uid,
        _pad: 0,
    }
}
