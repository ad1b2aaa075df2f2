//! Cgroup v2 directory creation/removal and task migration. These are never
//! filtered: they are rare, and userspace needs them to attribute cgroup ids
//! (including for cgroups already gone when their events are read).

use agent_common::{CGROUP_PATH_LEN, CgroupEvent, EventKind, config::tp};
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};

use crate::{
    emit,
    kmem::{self, off},
};

#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub fn on_cgroup_mkdir(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup_dir(&ctx, EventKind::CgroupMkdir);
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_rmdir")]
pub fn on_cgroup_rmdir(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup_dir(&ctx, EventKind::CgroupRmdir);
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_attach_task")]
pub fn on_cgroup_attach(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup_attach(&ctx);
    0
}

/// mkdir and rmdir share one event class, hence one record layout.
#[inline(always)]
fn try_cgroup_dir(ctx: &TracePointContext, kind: EventKind) -> Result<(), ()> {
    let root = kmem::tp_load::<i32, { tp::CGROUP_ROOT }>(ctx);
    if root as u32 != off!(cgroup2_hierarchy_id) {
        return Ok(()); // a cgroup v1 hierarchy
    }
    emit_cgroup::<{ tp::CGROUP_PATH }>(
        ctx,
        kind,
        kmem::tp_load::<u64, { tp::CGROUP_ID }>(ctx),
        kmem::tp_load::<i32, { tp::CGROUP_LEVEL }>(ctx),
        0,
    )
}

#[inline(always)]
fn try_cgroup_attach(ctx: &TracePointContext) -> Result<(), ()> {
    let root = kmem::tp_load::<i32, { tp::ATTACH_ROOT }>(ctx);
    if root as u32 != off!(cgroup2_hierarchy_id) {
        return Ok(()); // a cgroup v1 hierarchy
    }
    emit_cgroup::<{ tp::ATTACH_PATH }>(
        ctx,
        EventKind::CgroupAttach,
        kmem::tp_load::<u64, { tp::ATTACH_ID }>(ctx),
        kmem::tp_load::<i32, { tp::ATTACH_LEVEL }>(ctx),
        kmem::tp_load::<i32, { tp::ATTACH_PID }>(ctx),
    )
}

/// Writes the event; `PATH` is the offset of the record's `__data_loc` path.
#[inline(always)]
fn emit_cgroup<const PATH: usize>(
    ctx: &TracePointContext,
    kind: EventKind,
    cgroup_id: u64,
    level: i32,
    attach_pid: i32,
) -> Result<(), ()> {
    let kind = kind as u32;
    let mut entry = emit::reserve::<CgroupEvent>(kind).ok_or(())?;
    let event = entry.as_mut_ptr();
    // SAFETY: `event` is a reserved record we own; all fields are written.
    unsafe {
        (*event).header = emit::current_header(kind, kmem::current_task());
        (*event).cgroup_id = cgroup_id;
        (*event).level = level as u32;
        (*event).attach_pid = attach_pid as u32;
        (*event)._pad = 0;
        let path = &mut (*event).path;
        path[0] = 0;
        let len = kmem::read_data_loc_str::<PATH>(ctx, path);
        (*event).path_len = if len as usize >= CGROUP_PATH_LEN - 1 {
            CGROUP_PATH_LEN as u32
        } else {
            len
        };
    }
    emit::submit(entry);
    Ok(())
}
