//! Signals: who sent which signal to whom, and how the receiver handled it.

use agent_common::{EventKind, SignalDeliverEvent, SignalGenerateEvent};
use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use aya_log_ebpf::warn;

use crate::{
    emit,
    kmem::{self, TracepointBase, off},
};

/// `SEND_SIG_NOINFO` / `SEND_SIG_PRIV`: special siginfo pointer values.
const SEND_SIG_NOINFO: u64 = 0;
const SEND_SIG_PRIV: u64 = 1;
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;
/// `kernel_siginfo`: si_signo @0, si_errno @4, si_code @8 (uapi layout).
const SIGINFO_ERRNO: u32 = 4;
const SIGINFO_CODE: u32 = 8;

/// Raw tracepoint so that the target `task_struct` is available: the target
/// is attributed to its own cgroup in the kernel, not only the sender.
/// TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task,
///          int group, int result).
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn on_signal_generate(ctx: RawTracePointContext) -> i32 {
    let _ = try_signal_generate(&ctx);
    0
}

fn try_signal_generate(ctx: &RawTracePointContext) -> Result<(), ()> {
    let target_task = ctx.arg::<u64>(2) as *const u8;
    let (target, target_cgrp) = kmem::task_id(target_task);
    if target.tgid == 0 {
        warn!(ctx, "signal_generate: unreadable target task");
    }
    if !kmem::current_watched() && !kmem::cgroup_watched(target_cgrp) {
        return Ok(());
    }
    let info = ctx.arg::<u64>(1);
    let (code, errno) = match info {
        SEND_SIG_NOINFO => (SI_USER, 0),
        SEND_SIG_PRIV => (SI_KERNEL, 0),
        ptr => {
            let p = ptr as *const u8;
            (
                kmem::read::<i32>(p, SIGINFO_CODE).unwrap_or(0),
                kmem::read::<i32>(p, SIGINFO_ERRNO).unwrap_or(0),
            )
        }
    };
    let parent = kmem::read_ptr(kmem::current_task(), off!(task_real_parent));
    let kind = EventKind::SignalGenerate as u32;
    let mut entry = emit::reserve::<SignalGenerateEvent>(kind).ok_or(())?;
    entry.write(SignalGenerateEvent {
        header: emit::current_header(kind),
        target,
        sender_parent_tgid: kmem::read::<u32>(parent, off!(task_tgid)).unwrap_or(0),
        sig: ctx.arg::<u64>(0) as i32,
        sender_parent_comm: kmem::read::<[u8; 16]>(parent, off!(task_comm)).unwrap_or([0; 16]),
        code,
        errno,
        group: ctx.arg::<u64>(3) as i32,
        result: ctx.arg::<u64>(4) as i32,
    });
    emit::submit(entry);
    Ok(())
}

/// Classic tracepoint; runs in the receiver's context.
#[tracepoint(category = "signal", name = "signal_deliver")]
pub fn on_signal_deliver(ctx: TracePointContext) -> u32 {
    let _ = try_signal_deliver(&ctx);
    0
}

fn try_signal_deliver(ctx: &TracePointContext) -> Result<(), ()> {
    if !kmem::current_watched() {
        return Ok(());
    }
    let base = ctx.as_ptr_u8();
    let kind = EventKind::SignalDeliver as u32;
    let mut entry = emit::reserve::<SignalDeliverEvent>(kind).ok_or(())?;
    entry.write(SignalDeliverEvent {
        header: emit::current_header(kind),
        sig: kmem::read::<i32>(base, off!(tp_deliver_sig)).unwrap_or(0),
        code: kmem::read::<i32>(base, off!(tp_deliver_code)).unwrap_or(0),
        errno: kmem::read::<i32>(base, off!(tp_deliver_errno)).unwrap_or(0),
        _pad: 0,
        sa_handler: kmem::read::<u64>(base, off!(tp_deliver_sa_handler)).unwrap_or(0),
        sa_flags: kmem::read::<u64>(base, off!(tp_deliver_sa_flags)).unwrap_or(0),
    });
    emit::submit(entry);
    Ok(())
}
