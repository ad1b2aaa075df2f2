//! The ring buffer, the drop counters and the event header.

use agent_common::{EventHeader, KIND_SLOTS, TaskId};
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
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

/// Submits a reserved record, waking the reader only when enough data is
/// waiting (see `KernelOffsets::wakeup_threshold_bytes`).
#[inline(always)]
pub fn submit<T: 'static>(entry: RingBufEntry<T>) {
    const BPF_RB_AVAIL_DATA: u64 = 0;
    const BPF_RB_NO_WAKEUP: u64 = 1;
    const BPF_RB_FORCE_WAKEUP: u64 = 2;
    let threshold = crate::kmem::off!(wakeup_threshold_bytes) as u64;
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA) >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags);
}

/// Identity of the current task: pid, tgid, process start time, cgroup, comm.
#[inline(always)]
pub fn current_task_id() -> TaskId {
    let pid_tgid = bpf_get_current_pid_tgid();
    TaskId {
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        start_boottime_ns: kmem::leader_start(kmem::current_task()),
        // SAFETY: helper without preconditions.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    }
}

/// Header for an event whose actor is the current task.
#[inline(always)]
pub fn current_header(kind: u32) -> EventHeader {
    EventHeader {
        kind,
        // SAFETY: helpers without preconditions.
        cpu: unsafe { bpf_get_smp_processor_id() },
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        task: current_task_id(),
        uid: bpf_get_current_uid_gid() as u32,
        _pad: 0,
    }
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
