//! Signals: who sent which signal to whom, and how the receiver handled it.

use agent_common::{
    ACTION_UNREAD, EventKind, FLAGS_UNREAD, SignalDeliverEvent, SignalGenerateEvent,
    config::{ABSENT, FILTER_DELIVER, FILTER_GENERATE, tp},
};
use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use aya_log_ebpf::warn;

use crate::{
    emit,
    kmem::{self, off},
    sigmask,
};

/// `SEND_SIG_NOINFO` / `SEND_SIG_PRIV`: special siginfo pointer values.
const SEND_SIG_NOINFO: u64 = 0;
const SEND_SIG_PRIV: u64 = 1;
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;

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
    let current = kmem::current_task();
    let target_task = ctx.arg::<u64>(2) as *const u8;
    // A signal to oneself (raise, kill(getpid()), a fault): the target is
    // the current task, whose identity the header already carries.
    let to_self = target_task == current;
    // The sender's filter is a helper call; the target's cgroup (two reads,
    // then its ancestors) is read only when the sender is not watched.
    let mut target_cgroup_id = 0;
    if !kmem::current_watched() {
        if to_self {
            return Ok(());
        }
        let Some(id) = kmem::watched_cgroup_id(
            EventKind::SignalGenerate as u32,
            kmem::task_cgroup(target_task),
        ) else {
            return Ok(());
        };
        target_cgroup_id = id;
    }
    // Watched: the mask decides before anything is reserved or read.
    let sig = ctx.arg::<u64>(0) as i32;
    if !sigmask::kept(FILTER_GENERATE, sig) {
        return Ok(());
    }
    let kind = EventKind::SignalGenerate as u32;
    let mut entry = emit::reserve::<SignalGenerateEvent>(kind).ok_or(())?;
    let (header, parent) = emit::current_header_and_parent(kind, current, true);
    let target = if to_self {
        header.task
    } else {
        let target = kmem::task_id(kind, target_task, target_cgroup_id);
        if target.tgid == 0 {
            warn!(ctx, "signal_generate: unreadable target task");
        }
        target
    };
    let info = ctx.arg::<u64>(1);
    let (code, errno) = match info {
        SEND_SIG_NOINFO => (SI_USER, 0),
        SEND_SIG_PRIV => (SI_KERNEL, 0),
        // `kernel_siginfo` starts with si_signo, si_errno, si_code (uapi
        // layout): one read for both.
        ptr => {
            let [_signo, errno, code] =
                kmem::read::<[i32; 3]>(ptr as *const u8, 0).unwrap_or([0; 3]);
            (code, errno)
        }
    };
    entry.write(SignalGenerateEvent {
        header,
        target,
        sender_parent_tgid: kmem::read::<u32>(parent, off!(task_tgid)).unwrap_or(0),
        sig,
        sender_parent_comm: kmem::read::<[u8; 16]>(parent, off!(task_comm)).unwrap_or([0; 16]),
        code,
        errno,
        group: ctx.arg::<u64>(3) as i32,
        result: ctx.arg::<u64>(4) as i32,
        target_handler: target_handler(target_task, sig),
        target_signal_flags: target_signal_flags(target_task),
        _pad: 0,
    });
    emit::submit(entry);
    Ok(())
}

/// The target's action for `sig` as the kernel judged the signal with it:
/// `task->sighand->action[sig - 1].sa.sa_handler`.
#[inline(always)]
fn target_handler(task: *const u8, sig: i32) -> u64 {
    if !(1..=64).contains(&sig) {
        return ACTION_UNREAD;
    }
    let stride = off!(k_sigaction_bytes);
    let (action, handler) = (off!(sighand_action), off!(k_sigaction_handler));
    if stride == 0 || stride > 256 || action == ABSENT || handler == ABSENT {
        return ACTION_UNREAD;
    }
    let sighand = kmem::read_ptr(task, off!(task_sighand));
    let at = action
        .wrapping_add((sig as u32 - 1) * stride)
        .wrapping_add(handler);
    kmem::read::<u64>(sighand, at).unwrap_or(ACTION_UNREAD)
}

/// `task->signal->flags`: tells a pid namespace's init (SIGNAL_UNKILLABLE).
#[inline(always)]
fn target_signal_flags(task: *const u8) -> u32 {
    let signal = kmem::read_ptr(task, off!(task_signal));
    kmem::read::<u32>(signal, off!(signal_flags)).unwrap_or(FLAGS_UNREAD)
}

/// Classic tracepoint; runs in the receiver's context. Its fields are loaded
/// straight from the record (layout checked by userspace).
#[tracepoint(category = "signal", name = "signal_deliver")]
pub fn on_signal_deliver(ctx: TracePointContext) -> u32 {
    let _ = try_signal_deliver(&ctx);
    0
}

fn try_signal_deliver(ctx: &TracePointContext) -> Result<(), ()> {
    if !kmem::current_watched() {
        return Ok(());
    }
    let sig = kmem::tp_load::<i32, { tp::DELIVER_SIG }>(ctx);
    if !sigmask::kept(FILTER_DELIVER, sig) {
        return Ok(());
    }
    let kind = EventKind::SignalDeliver as u32;
    let mut entry = emit::reserve::<SignalDeliverEvent>(kind).ok_or(())?;
    entry.write(SignalDeliverEvent {
        header: emit::current_header(kind, kmem::current_task()),
        sig,
        code: kmem::tp_load::<i32, { tp::DELIVER_CODE }>(ctx),
        errno: kmem::tp_load::<i32, { tp::DELIVER_ERRNO }>(ctx),
        _pad: 0,
        sa_handler: kmem::tp_load::<u64, { tp::DELIVER_SA_HANDLER }>(ctx),
        sa_flags: kmem::tp_load::<u64, { tp::DELIVER_SA_FLAGS }>(ctx),
    });
    emit::submit(entry);
    Ok(())
}
