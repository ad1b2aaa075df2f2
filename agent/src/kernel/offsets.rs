//! Fills [`KernelOffsets`] from BTF and checks the tracepoint layouts.
//!
//! Every kernel struct offset the eBPF programs use is looked up here at
//! startup; besides the offset, the member's size and kind are checked
//! against what the eBPF side reads. Classic tracepoint fields are read at
//! compile-time offsets (`agent_common::config::tp`, direct context loads),
//! so here every field of [`TRACEPOINT_FIELDS`] is checked against the
//! kernel's tracefs `format` files. Either way a kernel that changed a layout
//! fails loudly here instead of producing garbage events later.

use agent_common::KernelOffsets;
use agent_common::config::{
    SPAN_MAX_BYTES, Span, TRACEPOINT_FIELDS, TracepointField, TracepointFieldKind,
};
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
    #[error(
        "tracepoint field {event}.{field}: the probes load it as {expected}, but this kernel's \
         tracefs format has {found}; this tracepoint layout is not supported"
    )]
    TracepointLayoutUnsupported {
        event: String,
        field: String,
        expected: String,
        found: String,
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
}

impl Want {
    fn describe(self) -> String {
        match self {
            Want::Ptr => "a pointer".into(),
            Want::Bytes(n) => format!("{n} bytes"),
            Want::AtLeast(n) => format!("at least {n} bytes"),
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

/// Checks one field the programs load at a fixed place: `Ok(false)` when an
/// optional field is absent.
fn check_field(format: &TracepointFormat, want: &TracepointField) -> Result<bool, OffsetsError> {
    let Some(f) = format.field(want.field) else {
        if want.optional {
            return Ok(false);
        }
        return Err(OffsetsError::MissingField {
            event: format.event.clone(),
            field: want.field.to_owned(),
        });
    };
    let data_loc = want.kind == TracepointFieldKind::DataLoc;
    let describe = |offset: u32, size: u32, data_loc: bool| {
        let kind = if data_loc {
            "a __data_loc field"
        } else {
            "a plain field"
        };
        format!("{kind} at offset {offset}, {size} bytes")
    };
    if f.offset as usize != want.offset || f.size as usize != want.size || f.is_data_loc != data_loc
    {
        return Err(OffsetsError::TracepointLayoutUnsupported {
            event: format.event.clone(),
            field: want.field.to_owned(),
            expected: describe(want.offset as u32, want.size as u32, data_loc),
            found: format!(
                "`{}`: {}",
                f.decl,
                describe(f.offset, f.size, f.is_data_loc)
            ),
        });
    }
    Ok(true)
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

/// The BTF half of [`resolve_offsets`]: every kernel struct member the
/// programs read, without touching tracefs (for preflight checks).
pub fn resolve_struct_offsets(btf: &Btf) -> Result<(KernelOffsets, OffsetReport), OffsetsError> {
    let mut o = KernelOffsets::unset();
    let mut report = OffsetReport::default();
    resolve_structs(btf, &mut o, &mut report)?;
    Ok((o, report))
}

/// The tracefs half of [`resolve_offsets`]: checks every field of
/// [`TRACEPOINT_FIELDS`] against this kernel's `format` files.
pub fn check_tracepoint_layouts(tracefs: &Tracefs) -> Result<OffsetReport, OffsetsError> {
    let mut o = KernelOffsets::unset();
    let mut report = OffsetReport::default();
    resolve_tracepoints(tracefs, &mut o, &mut report)?;
    Ok(report)
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
    resolve_signal_actions(btf, o, report)?;

    o.task_ids_span = span(
        "task_struct start_boottime..comm",
        &[(o.task_start_boottime, 8), (o.task_comm, 16)],
        report,
    );
    o.task_span = span(
        "task_struct pid..comm",
        &[
            (o.task_pid, 4),
            (o.task_tgid, 4),
            (o.task_real_parent, 8),
            (o.task_group_leader, 8),
            (o.task_start_boottime, 8),
            (o.task_comm, 16),
        ],
        report,
    );
    o.cgroup_span = span(
        "cgroup level..kn",
        &[(o.cgroup_level, 4), (o.cgroup_kn, 8)],
        report,
    );

    o.sock_err = member(btf, "sock", "sk_err", Want::Bytes(4))?;
    o.sock_uid = member(btf, "sock", "sk_uid", Want::Bytes(4))?;
    o.sock_span = span(
        "sock sk_err..sk_uid",
        &[(o.sock_err, 4), (o.sock_uid, 4)],
        report,
    );
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

/// The stretch of a struct holding `members` (offset, bytes read), copied by
/// the programs with one probe read; [`Span::NONE`] (members read one by
/// one) when it is longer than [`SPAN_MAX_BYTES`] or a member is not
/// naturally aligned (the programs load members from the copy as aligned
/// 4- or 8-byte words).
fn span(what: &str, members: &[(u32, u32)], report: &mut OffsetReport) -> Span {
    let start = members.iter().map(|&(offset, _)| offset).min().unwrap_or(0) & !7;
    let end = members
        .iter()
        .map(|&(offset, size)| offset.saturating_add(size))
        .max()
        .unwrap_or(0);
    let len = end.saturating_sub(start);
    let aligned = members
        .iter()
        .all(|&(offset, size)| offset % size.min(8) == 0);
    if members.is_empty() || len > SPAN_MAX_BYTES || !aligned {
        report.note(format!(
            "{what}: {len} bytes{}, more than one read can take ({SPAN_MAX_BYTES} bytes, \
             aligned members): read member by member",
            if aligned {
                ""
            } else {
                " with unaligned members"
            }
        ));
        return Span::NONE;
    }
    Span { start, len }
}

/// What the signal probe reads of a target: its action for the signal
/// (`task->sighand->action[sig - 1].sa.sa_handler`) and whether it is a pid
/// namespace's init (`task->signal->flags`). Optional: without them signal
/// events say nothing of the target's disposition.
fn resolve_signal_actions(
    btf: &Btf,
    o: &mut KernelOffsets,
    report: &mut OffsetReport,
) -> Result<(), OffsetsError> {
    let task = "task_struct";
    let found = (
        optional_member(btf, task, "sighand", Want::Ptr)?,
        optional_member(btf, task, "signal", Want::Ptr)?,
        optional_member(btf, "sighand_struct", "action", Want::AtLeast(1))?,
        optional_member(btf, "k_sigaction", "sa.sa_handler", Want::Ptr)?,
        optional_member(btf, "signal_struct", "flags", Want::Bytes(4))?,
    );
    let (Some(sighand), Some(signal), Some(action), Some(handler), Some(flags)) = found else {
        report.absent(
            "signal_actions",
            "task_struct.sighand/.signal, sighand_struct.action, k_sigaction.sa.sa_handler or \
             signal_struct.flags not found: signal events do not say how the target had the \
             signal set up, nor whether it is a pid namespace's init"
                .into(),
        );
        return Ok(());
    };
    o.task_sighand = sighand;
    o.task_signal = signal;
    o.sighand_action = action;
    o.k_sigaction_bytes = btf.struct_size("k_sigaction")?;
    o.k_sigaction_handler = handler;
    o.signal_flags = flags;
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

/// Checks every tracepoint field the programs load against tracefs.
fn resolve_tracepoints(
    tracefs: &Tracefs,
    o: &mut KernelOffsets,
    report: &mut OffsetReport,
) -> Result<(), OffsetsError> {
    let mut formats: Vec<TracepointFormat> = Vec::new();
    for want in TRACEPOINT_FIELDS {
        let event = format!("{}:{}", want.category, want.event);
        let format = match formats.iter().position(|f| f.event == event) {
            Some(i) => &formats[i],
            None => {
                formats.push(tracefs.field_offsets(want.category, want.event)?);
                formats.last().expect("just pushed")
            }
        };
        let present = check_field(format, want)?;
        let group_dead = (want.event, want.field) == ("sched_process_exit", "group_dead");
        if group_dead {
            o.exit_has_group_dead = present as u32;
        }
        if !present {
            let why = if group_dead {
                "sched:sched_process_exit has no group_dead field on this kernel: exit events \
                 cannot tell a whole-process exit from a thread exit"
                    .to_owned()
            } else {
                format!(
                    "tracepoint {event} has no field {} on this kernel",
                    want.field
                )
            };
            report.absent(
                if group_dead {
                    "exit_has_group_dead"
                } else {
                    want.field
                },
                why,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
