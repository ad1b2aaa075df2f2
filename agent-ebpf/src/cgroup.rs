//! Cgroup v2 directory creation/removal and task migration. These are never
//! filtered: they are rare, and userspace needs them to attribute cgroup ids
//! (including for cgroups already gone when their events are read).

use agent_common::{CGROUP_PATH_LEN, CgroupEvent, EventKind};
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};

use crate::{
    emit,
    kmem::{self, TracepointBase, off},
};

/// Where a cgroup tracepoint keeps its fields (mkdir/rmdir vs attach_task).
struct Fields {
    root: u32,
    id: u32,
    level: u32,
    path: u32,
    pid: Option<u32>,
}

#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub fn on_cgroup_mkdir(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup(&ctx, EventKind::CgroupMkdir, dir_fields());
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_rmdir")]
pub fn on_cgroup_rmdir(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup(&ctx, EventKind::CgroupRmdir, dir_fields());
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_attach_task")]
pub fn on_cgroup_attach(ctx: TracePointContext) -> u32 {
    let fields = Fields {
        root: off!(tp_attach_root),
        id: off!(tp_attach_id),
        level: off!(tp_attach_level),
        path: off!(tp_attach_path),
        pid: Some(off!(tp_attach_pid)),
    };
    let _ = try_cgroup(&ctx, EventKind::CgroupAttach, fields);
    0
}

#[inline(always)]
fn dir_fields() -> Fields {
    Fields {
        root: off!(tp_cgroup_root),
        id: off!(tp_cgroup_id),
        level: off!(tp_cgroup_level),
        path: off!(tp_cgroup_path),
        pid: None,
    }
}

#[inline(always)]
fn try_cgroup(ctx: &TracePointContext, kind: EventKind, fields: Fields) -> Result<(), ()> {
    let record = ctx.as_ptr_u8();
    let root = kmem::read::<i32>(record, fields.root).ok_or(())?;
    if root as u32 != off!(cgroup2_hierarchy_id) {
        return Ok(()); // a cgroup v1 hierarchy
    }
    let kind = kind as u32;
    let mut entry = emit::reserve::<CgroupEvent>(kind).ok_or(())?;
    let event = entry.as_mut_ptr();
    // SAFETY: `event` is a reserved record we own; all fields are written.
    unsafe {
        (*event).header = emit::current_header(kind);
        (*event).cgroup_id = kmem::read::<u64>(record, fields.id).unwrap_or(0);
        (*event).level = kmem::read::<i32>(record, fields.level).unwrap_or(0) as u32;
        (*event).attach_pid = match fields.pid {
            Some(at) => kmem::read::<i32>(record, at).unwrap_or(0) as u32,
            None => 0,
        };
        (*event)._pad = 0;
        let path = &mut (*event).path;
        path[0] = 0;
        let len = kmem::read_data_loc_str(record, fields.path, path);
        (*event).path_len = if len as usize >= CGROUP_PATH_LEN - 1 {
            CGROUP_PATH_LEN as u32
        } else {
            len
        };
    }
    emit::submit(entry);
    Ok(())
}
