//! Process lifecycle: fork (new processes only), exec, exit with exit code.

use agent_common::{
    EventKind, FILENAME_LEN, ProcessExecEvent, ProcessExitEvent, ProcessForkEvent, TaskId,
    config::tp,
};
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};

use crate::{
    emit,
    kmem::{self, off},
};

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn on_process_exec(ctx: TracePointContext) -> u32 {
    let _ = try_process_exec(&ctx);
    0
}

fn try_process_exec(ctx: &TracePointContext) -> Result<(), ()> {
    if !kmem::current_watched() {
        return Ok(());
    }
    let kind = EventKind::ProcessExec as u32;
    let mut entry = emit::reserve::<ProcessExecEvent>(kind).ok_or(())?;
    let event = entry.as_mut_ptr();
    let (header, parent) = emit::current_header_and_parent(kind, kmem::current_task(), true);
    // SAFETY: `event` points at a reserved, exclusively owned record; every
    // field is written before submit.
    unsafe {
        (*event).header = header;
        (*event).parent_tgid = kmem::read::<u32>(parent, off!(task_tgid)).unwrap_or(0);
        let filename = &mut (*event).filename;
        filename[0] = 0;
        let len = kmem::read_data_loc_str::<{ tp::EXEC_FILENAME }>(ctx, filename);
        (*event).filename_len = if len as usize >= FILENAME_LEN - 1 {
            FILENAME_LEN as u32
        } else {
            len
        };
    }
    emit::submit(entry);
    Ok(())
}

/// Raw tracepoint: TP_PROTO(struct task_struct *parent, struct task_struct *child).
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn on_process_fork(ctx: RawTracePointContext) -> i32 {
    let _ = try_process_fork(&ctx);
    0
}

fn try_process_fork(ctx: &RawTracePointContext) -> Result<(), ()> {
    if !kmem::current_watched() {
        return Ok(());
    }
    let child_task = ctx.arg::<u64>(1) as *const u8;
    let kind = EventKind::ProcessFork as u32;
    let child = kmem::task_fields(kind, child_task, kmem::TaskRead::Any, false);
    let (pid, tgid) = child.pid_tgid;
    if pid != tgid {
        return Ok(()); // a new thread, not a new process
    }
    let mut entry = emit::reserve::<ProcessForkEvent>(kind).ok_or(())?;
    entry.write(ProcessForkEvent {
        header: emit::current_header(kind, kmem::current_task()),
        child: TaskId {
            pid,
            tgid,
            start_boottime_ns: child.start_boottime_ns,
            cgroup_id: kmem::cgroup_id(kmem::task_cgroup(child_task)),
            comm: child.comm,
        },
    });
    emit::submit(entry);
    Ok(())
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn on_process_exit(ctx: TracePointContext) -> u32 {
    let _ = try_process_exit(&ctx);
    0
}

fn try_process_exit(ctx: &TracePointContext) -> Result<(), ()> {
    let last_thread = if off!(exit_has_group_dead) != 0 {
        kmem::tp_load::<u8, { tp::EXIT_GROUP_DEAD }>(ctx) != 0
    } else {
        let pid_tgid = bpf_get_current_pid_tgid();
        pid_tgid as u32 == (pid_tgid >> 32) as u32
    };
    if !last_thread || !kmem::current_watched() {
        return Ok(());
    }
    let kind = EventKind::ProcessExit as u32;
    let mut entry = emit::reserve::<ProcessExitEvent>(kind).ok_or(())?;
    let task = kmem::current_task();
    entry.write(ProcessExitEvent {
        header: emit::current_header(kind, task),
        exit_code: kmem::read::<u32>(task, off!(task_exit_code)).unwrap_or(0),
        _pad: 0,
    });
    emit::submit(entry);
    Ok(())
}
