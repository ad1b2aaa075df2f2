//! Process lifecycle: fork (new processes only), exec, exit with exit code.

use agent_common::{
    EventKind, FILENAME_LEN, ProcessExecEvent, ProcessExitEvent, ProcessForkEvent, config::ABSENT,
};
use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};

use crate::{
    emit,
    kmem::{self, TracepointBase, off},
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
    let parent = kmem::read_ptr(kmem::current_task(), off!(task_real_parent));
    // SAFETY: `event` points at a reserved, exclusively owned record; every
    // field is written before submit.
    unsafe {
        (*event).header = emit::current_header(kind);
        (*event).parent_tgid = kmem::read::<u32>(parent, off!(task_tgid)).unwrap_or(0);
        let filename = &mut (*event).filename;
        filename[0] = 0;
        let len = kmem::read_data_loc_str(ctx.as_ptr_u8(), off!(tp_exec_filename), filename);
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
    let (child, _) = kmem::task_id(child_task);
    if child.pid != child.tgid {
        return Ok(()); // a new thread, not a new process
    }
    let kind = EventKind::ProcessFork as u32;
    let mut entry = emit::reserve::<ProcessForkEvent>(kind).ok_or(())?;
    entry.write(ProcessForkEvent {
        header: emit::current_header(kind),
        child,
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
    let group_dead_at = off!(tp_exit_group_dead);
    let header = emit::current_header(EventKind::ProcessExit as u32);
    let last_thread = if group_dead_at == ABSENT {
        header.task.pid == header.task.tgid
    } else {
        kmem::read::<u8>(ctx.as_ptr_u8(), group_dead_at).unwrap_or(0) != 0
    };
    if !last_thread || !kmem::current_watched() {
        return Ok(());
    }
    let exit_code = kmem::read::<u32>(kmem::current_task(), off!(task_exit_code)).unwrap_or(0);
    let mut entry = emit::reserve::<ProcessExitEvent>(header.kind).ok_or(())?;
    entry.write(ProcessExitEvent {
        header,
        exit_code,
        _pad: 0,
    });
    emit::submit(entry);
    Ok(())
}
