//! Fills [`KernelOffsets`] from BTF and tracefs.
//!
//! Every offset the eBPF programs use is looked up here at startup. Besides
//! the offset itself, the member's or field's size and kind are checked
//! against what the eBPF side reads, so a kernel that changed a layout fails
//! loudly here instead of producing garbage events later.

use agent_common::KernelOffsets;
use tracing::{info, warn};

use super::btf::{Btf, BtfError, TypeShape};
use super::tracefs::{Tracefs, TracefsError, TracepointFormat};

/// What could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error("kernel struct member `{strukt}.{member}` not found in BTF")]
    MissingMember { strukt: String, member: String },
    #[error("tracepoint {event} has no field `{field}`")]
    MissingField { event: String, field: String },
    #[error("kernel struct member `{strukt}.{member}` should be {expected}, but BTF says {found}")]
    UnexpectedMemberType {
        strukt: String,
        member: String,
        expected: String,
        found: String,
    },
    #[error("tracepoint field {event}.{field} should be {expected}, but tracefs says {found}")]
    UnexpectedFieldLayout {
        event: String,
        field: String,
        expected: String,
        found: String,
    },
    #[error(
        "cgroup:cgroup_rmdir field `{field}` is at {rmdir:?} but cgroup_mkdir has it at {mkdir}; \
         the two events no longer share a layout"
    )]
    RmdirLayoutDiffers {
        field: String,
        mkdir: u32,
        rmdir: Option<u32>,
    },
    #[error("BTF lookup failed: {0}")]
    Btf(#[from] BtfError),
    #[error("tracepoint format lookup failed: {0}")]
    Tracefs(#[from] TracefsError),
}

/// Human-readable account of the choices made while resolving, e.g. for a
/// `doctor` command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetReport {
    /// One sentence per fallback or optional item that was absent.
    pub notes: Vec<String>,
    /// Names of the [`KernelOffsets`] fields left at [`agent_common::config::ABSENT`].
    pub absent: Vec<&'static str>,
}

impl OffsetReport {
    fn note(&mut self, note: String) {
        info!("{note}");
        self.notes.push(note);
    }

    fn absent(&mut self, field: &'static str, why: String) {
        warn!(field, "{why}");
        self.absent.push(field);
        self.notes.push(why);
    }
}

/// What a BTF member or tracepoint field must look like.
#[derive(Clone, Copy, Debug)]
enum Want {
    Ptr,
    Bytes(u32),
    AtLeast(u32),
    /// A `__data_loc` string field (tracepoints only).
    DataLoc,
}

const PTR_BYTES: u32 = std::mem::size_of::<usize>() as u32;

impl Want {
    fn describe(self) -> String {
        match self {
            Want::Ptr => "a pointer".into(),
            Want::Bytes(n) => format!("{n} bytes"),
            Want::AtLeast(n) => format!("at least {n} bytes"),
            Want::DataLoc => "a __data_loc field".into(),
        }
    }

    fn size_ok(self, size: Option<u32>) -> bool {
        match (self, size) {
            (Want::Bytes(n), Some(s)) => s == n,
            (Want::AtLeast(n), Some(s)) => s >= n,
            _ => false,
        }
    }
}

/// Byte offset of a required struct member of the expected shape.
fn member(btf: &Btf, strukt: &str, path: &str, want: Want) -> Result<u32, OffsetsError> {
    optional_member(btf, strukt, path, want)?.ok_or_else(|| OffsetsError::MissingMember {
        strukt: strukt.to_owned(),
        member: path.to_owned(),
    })
}

/// Like [`member`], but a missing member (or missing intermediate in a
/// dotted path) is `None` instead of an error.
fn optional_member(
    btf: &Btf,
    strukt: &str,
    path: &str,
    want: Want,
) -> Result<Option<u32>, OffsetsError> {
    let Some(m) = btf.member(strukt, path)? else {
        return Ok(None);
    };
    let shape = btf.shape(m.type_id)?;
    let ok = m.bitfield_size == 0
        && match want {
            Want::Ptr => shape.is_pointer(),
            other => other.size_ok(shape.size()),
        };
    if !ok {
        return Err(OffsetsError::UnexpectedMemberType {
            strukt: strukt.to_owned(),
            member: path.to_owned(),
            expected: want.describe(),
            found: format!("{shape:?} (bitfield width {})", m.bitfield_size),
        });
    }
    Ok(Some(m.byte_offset()))
}

/// Offset of a tracepoint field of the expected size/kind; `None` if absent.
fn optional_field(
    format: &TracepointFormat,
    name: &str,
    want: Want,
) -> Result<Option<u32>, OffsetsError> {
    let Some(f) = format.field(name) else {
        return Ok(None);
    };
    let ok = match want {
        Want::DataLoc => f.is_data_loc,
        Want::Ptr => !f.is_data_loc && f.size == PTR_BYTES,
        other => !f.is_data_loc && other.size_ok(Some(f.size)),
    };
    if !ok {
        return Err(OffsetsError::UnexpectedFieldLayout {
            event: format.event.clone(),
            field: name.to_owned(),
            expected: want.describe(),
            found: format!("`{}` of {} bytes", f.decl, f.size),
        });
    }
    Ok(Some(f.offset))
}

fn field(format: &TracepointFormat, name: &str, want: Want) -> Result<u32, OffsetsError> {
    optional_field(format, name, want)?.ok_or_else(|| OffsetsError::MissingField {
        event: format.event.clone(),
        field: name.to_owned(),
    })
}

/// Resolves every offset in [`KernelOffsets`]. `cgroup2_hierarchy_id` and
/// `filter_enabled` stay 0 for the caller to set.
pub fn resolve_offsets(
    btf: &Btf,
    tracefs: &Tracefs,
) -> Result<(KernelOffsets, OffsetReport), OffsetsError> {
    let mut o = KernelOffsets::unset();
    let mut report = OffsetReport::default();
    resolve_structs(btf, &mut o, &mut report)?;
    resolve_tracepoints(tracefs, &mut o, &mut report)?;
    Ok((o, report))
}

fn resolve_structs(
    btf: &Btf,
    o: &mut KernelOffsets,
    report: &mut OffsetReport,
) -> Result<(), OffsetsError> {
    let task = "task_struct";
    o.task_pid = member(btf, task, "pid", Want::Bytes(4))?;
    o.task_tgid = member(btf, task, "tgid", Want::Bytes(4))?;
    o.task_real_parent = member(btf, task, "real_parent", Want::Ptr)?;
    o.task_group_leader = member(btf, task, "group_leader", Want::Ptr)?;
    o.task_comm = member(btf, task, "comm", Want::AtLeast(16))?;
    o.task_start_boottime = member(btf, task, "start_boottime", Want::Bytes(8))?;
    o.task_cgroups = member(btf, task, "cgroups", Want::Ptr)?;
    o.task_exit_code = member(btf, task, "exit_code", Want::Bytes(4))?;

    o.css_set_dfl_cgrp = member(btf, "css_set", "dfl_cgrp", Want::Ptr)?;
    o.cgroup_kn = member(btf, "cgroup", "kn", Want::Ptr)?;
    o.cgroup_level = member(btf, "cgroup", "level", Want::Bytes(4))?;
    o.kernfs_node_id = member(btf, "kernfs_node", "id", Want::Bytes(8))?;
    resolve_ancestors(btf, o, report)?;

    o.sock_err = member(btf, "sock", "sk_err", Want::Bytes(4))?;
    o.sock_uid = member(btf, "sock", "sk_uid", Want::Bytes(4))?;
    match optional_member(btf, "sock", "sk_cgrp_data.cgroup", Want::Ptr)? {
        Some(off) => o.sock_cgroup_ptr = off,
        None => report.absent(
            "sock_cgroup_ptr",
            "struct sock has no sk_cgrp_data.cgroup pointer (CONFIG_SOCK_CGROUP_DATA off or \
             pre-5.15 layout): socket events carry no cgroup"
                .into(),
        ),
    }
    Ok(())
}

/// `cgroup.ancestors` (array of `struct cgroup *`, 5.18+) or the older
/// `cgroup.ancestor_ids` (array of u64).
fn resolve_ancestors(
    btf: &Btf,
    o: &mut KernelOffsets,
    report: &mut OffsetReport,
) -> Result<(), OffsetsError> {
    let shape_err =
        |member: &str, shape: TypeShape, expected: &str| OffsetsError::UnexpectedMemberType {
            strukt: "cgroup".into(),
            member: member.into(),
            expected: expected.into(),
            found: format!("{shape:?}"),
        };
    if let Some(shape) = btf.member_shape("cgroup", "ancestors")? {
        if !shape.is_pointer_array() {
            return Err(shape_err("ancestors", shape, "an array of pointers"));
        }
        o.cgroup_ancestors = member(btf, "cgroup", "ancestors", Want::AtLeast(0))?;
        o.cgroup_ancestors_are_ids = 0;
        report.note(
            "cgroup ancestors: `cgroup.ancestors` pointer array (kernel 5.18+ layout)".into(),
        );
    } else if let Some(shape) = btf.member_shape("cgroup", "ancestor_ids")? {
        if !shape.is_u64_array() {
            return Err(shape_err("ancestor_ids", shape, "an array of u64"));
        }
        o.cgroup_ancestors = member(btf, "cgroup", "ancestor_ids", Want::AtLeast(0))?;
        o.cgroup_ancestors_are_ids = 1;
        report.note("cgroup ancestors: `cgroup.ancestor_ids` u64 array (pre-5.18 layout)".into());
    } else {
        return Err(OffsetsError::MissingMember {
            strukt: "cgroup".into(),
            member: "ancestors".into(),
        });
    }
    Ok(())
}

fn resolve_tracepoints(
    tracefs: &Tracefs,
    o: &mut KernelOffsets,
    report: &mut OffsetReport,
) -> Result<(), OffsetsError> {
    const ULONG: Want = Want::Bytes(std::mem::size_of::<libc::c_ulong>() as u32);
    let deliver = tracefs.field_offsets("signal", "signal_deliver")?;
    o.tp_deliver_sig = field(&deliver, "sig", Want::Bytes(4))?;
    o.tp_deliver_errno = field(&deliver, "errno", Want::Bytes(4))?;
    o.tp_deliver_code = field(&deliver, "code", Want::Bytes(4))?;
    o.tp_deliver_sa_handler = field(&deliver, "sa_handler", ULONG)?;
    o.tp_deliver_sa_flags = field(&deliver, "sa_flags", ULONG)?;

    let exec = tracefs.field_offsets("sched", "sched_process_exec")?;
    o.tp_exec_filename = field(&exec, "filename", Want::DataLoc)?;
    let exit = tracefs.field_offsets("sched", "sched_process_exit")?;
    match optional_field(&exit, "group_dead", Want::Bytes(1))? {
        Some(off) => o.tp_exit_group_dead = off,
        None => report.absent(
            "tp_exit_group_dead",
            "sched:sched_process_exit has no group_dead field on this kernel: exit events \
             cannot tell a whole-process exit from a thread exit"
                .into(),
        ),
    }

    let mkdir = tracefs.field_offsets("cgroup", "cgroup_mkdir")?;
    o.tp_cgroup_root = field(&mkdir, "root", Want::Bytes(4))?;
    o.tp_cgroup_id = field(&mkdir, "id", Want::Bytes(8))?;
    o.tp_cgroup_level = field(&mkdir, "level", Want::Bytes(4))?;
    o.tp_cgroup_path = field(&mkdir, "path", Want::DataLoc)?;
    let rmdir = tracefs.field_offsets("cgroup", "cgroup_rmdir")?;
    let shared = [
        ("root", o.tp_cgroup_root),
        ("id", o.tp_cgroup_id),
        ("level", o.tp_cgroup_level),
        ("path", o.tp_cgroup_path),
    ];
    for (name, mkdir_off) in shared {
        let rmdir_off = rmdir.offset(name);
        if rmdir_off != Some(mkdir_off) {
            return Err(OffsetsError::RmdirLayoutDiffers {
                field: name.into(),
                mkdir: mkdir_off,
                rmdir: rmdir_off,
            });
        }
    }

    let attach = tracefs.field_offsets("cgroup", "cgroup_attach_task")?;
    o.tp_attach_root = field(&attach, "dst_root", Want::Bytes(4))?;
    o.tp_attach_id = field(&attach, "dst_id", Want::Bytes(8))?;
    o.tp_attach_level = field(&attach, "dst_level", Want::Bytes(4))?;
    o.tp_attach_pid = field(&attach, "pid", Want::Bytes(4))?;
    o.tp_attach_path = field(&attach, "dst_path", Want::DataLoc)?;

    let sock = tracefs.field_offsets("sock", "inet_sock_set_state")?;
    o.tp_sock_skaddr = field(&sock, "skaddr", Want::Ptr)?;
    o.tp_sock_oldstate = field(&sock, "oldstate", Want::Bytes(4))?;
    o.tp_sock_newstate = field(&sock, "newstate", Want::Bytes(4))?;
    o.tp_sock_sport = field(&sock, "sport", Want::Bytes(2))?;
    o.tp_sock_dport = field(&sock, "dport", Want::Bytes(2))?;
    o.tp_sock_family = field(&sock, "family", Want::Bytes(2))?;
    o.tp_sock_protocol = field(&sock, "protocol", Want::Bytes(2))?;
    o.tp_sock_saddr = field(&sock, "saddr", Want::Bytes(4))?;
    o.tp_sock_daddr = field(&sock, "daddr", Want::Bytes(4))?;
    o.tp_sock_saddr_v6 = field(&sock, "saddr_v6", Want::Bytes(16))?;
    o.tp_sock_daddr_v6 = field(&sock, "daddr_v6", Want::Bytes(16))?;
    Ok(())
}

#[cfg(test)]
mod tests;
