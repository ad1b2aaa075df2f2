//! Tests against the running kernel's BTF and tracefs, plus copies of the
//! real format files edited to simulate other kernels.

use std::path::Path;
use std::sync::OnceLock;

use agent_common::config::{ABSENT, SPAN_MAX_BYTES, Span};

use super::*;
use crate::kernel::btf::VMLINUX_BTF;
use crate::kernel::tracefs::ensure_tracefs;

const EVENTS: [(&str, &str); 7] = [
    ("signal", "signal_deliver"),
    ("sched", "sched_process_exec"),
    ("sched", "sched_process_exit"),
    ("cgroup", "cgroup_mkdir"),
    ("cgroup", "cgroup_rmdir"),
    ("cgroup", "cgroup_attach_task"),
    ("sock", "inet_sock_set_state"),
];

fn btf() -> &'static Btf {
    static BTF: OnceLock<Btf> = OnceLock::new();
    BTF.get_or_init(|| Btf::from_file(VMLINUX_BTF).expect("this machine exports BTF"))
}

fn real_tracefs() -> Tracefs {
    ensure_tracefs(true).expect("tracefs mounted or mountable")
}

/// Copies the real format files of [`EVENTS`] into a temporary tree,
/// passing each through `edit(event, text)`.
fn edited_tracefs(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let real = real_tracefs();
    let dir = tempfile::tempdir().unwrap();
    for (category, event) in EVENTS {
        let rel = Path::new("events").join(category).join(event);
        let text = std::fs::read_to_string(real.root().join(&rel).join("format")).unwrap();
        std::fs::create_dir_all(dir.path().join(&rel)).unwrap();
        std::fs::write(dir.path().join(&rel).join("format"), edit(event, text)).unwrap();
    }
    dir
}

#[test]
fn real_kernel_offsets_match_known_values() {
    lifecycle_testkit::needs_root!();
    let (o, report) = resolve_offsets(btf(), &real_tracefs()).unwrap();
    assert_eq!(o.task_tgid, o.task_pid + 4);
    assert_eq!(
        o.cgroup_ancestors_are_ids, 0,
        "6.x kernel: cgroup.ancestors pointers"
    );
    assert_eq!(
        (o.cgroup2_hierarchy_id, o.filter_enabled),
        (0, 0),
        "left for the caller"
    );
    let via_parts = btf()
        .member_offset("sock", "sk_cgrp_data")
        .unwrap()
        .unwrap()
        + btf()
            .member_offset("sock_cgroup_data", "cgroup")
            .unwrap()
            .unwrap();
    assert_eq!(o.sock_cgroup_ptr, via_parts);
    assert_eq!(o.exit_has_group_dead, 1, "this kernel has group_dead");
    // x86-64 `struct sigaction`: handler, flags, restorer, one-word mask.
    assert_eq!((o.k_sigaction_bytes, o.k_sigaction_handler), (32, 0));
    assert!(o.sighand_action > 0 && o.task_sighand != o.task_signal);
    assert!(report.absent.is_empty(), "{report:?}");
    assert!(
        report.notes.iter().any(|n| n.contains("cgroup.ancestors")),
        "{report:?}"
    );

    // Nothing was left unset.
    let all = format!("{o:?}");
    assert!(!all.contains(&ABSENT.to_string()), "{all}");
}

/// The compile-time tracepoint offsets the probes load at are exactly this
/// machine's tracefs layout, field by field.
#[test]
fn tracepoint_constants_match_this_kernel() {
    lifecycle_testkit::needs_root!();
    let tracefs = real_tracefs();
    for want in TRACEPOINT_FIELDS {
        let format = tracefs.field_offsets(want.category, want.event).unwrap();
        let f = format
            .field(want.field)
            .unwrap_or_else(|| panic!("{}.{} missing", format.event, want.field));
        assert_eq!(
            (f.offset as usize, f.size as usize, f.is_data_loc),
            (
                want.offset,
                want.size,
                want.kind == TracepointFieldKind::DataLoc
            ),
            "{}.{}",
            format.event,
            want.field
        );
        assert!(check_field(&format, want).unwrap());
    }
    // Every event the loader attaches a classic tracepoint program to is covered.
    for (category, event) in EVENTS {
        assert!(
            TRACEPOINT_FIELDS
                .iter()
                .any(|f| (f.category, f.event) == (category, event)),
            "{category}:{event}"
        );
    }
}

/// The kernel's BTF describes each tracepoint class's record as a struct
/// `trace_event_raw_<class>`; the constants must agree with it too.
#[test]
fn tracepoint_constants_agree_with_btf_tracepoint_structs() {
    use agent_common::config::tp;
    let checks = [
        (
            "trace_event_raw_signal_deliver",
            "sa_flags",
            tp::DELIVER_SA_FLAGS,
        ),
        (
            "trace_event_raw_sched_process_exec",
            "__data_loc_filename",
            tp::EXEC_FILENAME,
        ),
        (
            "trace_event_raw_sched_process_exit",
            "group_dead",
            tp::EXIT_GROUP_DEAD,
        ),
        ("trace_event_raw_cgroup", "root", tp::CGROUP_ROOT),
        ("trace_event_raw_cgroup", "id", tp::CGROUP_ID),
        ("trace_event_raw_cgroup", "level", tp::CGROUP_LEVEL),
        ("trace_event_raw_cgroup", "__data_loc_path", tp::CGROUP_PATH),
        (
            "trace_event_raw_cgroup_migrate",
            "dst_root",
            tp::ATTACH_ROOT,
        ),
        ("trace_event_raw_cgroup_migrate", "dst_id", tp::ATTACH_ID),
        (
            "trace_event_raw_cgroup_migrate",
            "dst_level",
            tp::ATTACH_LEVEL,
        ),
        ("trace_event_raw_cgroup_migrate", "pid", tp::ATTACH_PID),
        (
            "trace_event_raw_cgroup_migrate",
            "__data_loc_dst_path",
            tp::ATTACH_PATH,
        ),
        (
            "trace_event_raw_inet_sock_set_state",
            "protocol",
            tp::SOCK_PROTOCOL,
        ),
        (
            "trace_event_raw_inet_sock_set_state",
            "daddr_v6",
            tp::SOCK_DADDR_V6,
        ),
    ];
    for (strukt, member, constant) in checks {
        assert_eq!(
            btf().member_offset(strukt, member).unwrap(),
            Some(constant as u32),
            "{strukt}.{member}"
        );
    }
}

#[test]
fn missing_group_dead_is_absent_not_an_error() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event != "sched_process_exit" {
            return text;
        }
        text.lines()
            .filter(|l| !l.contains("group_dead;"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let (o, report) = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap();
    assert_eq!(o.exit_has_group_dead, 0);
    assert_eq!(report.absent, ["exit_has_group_dead"]);
    assert!(
        report.notes.iter().any(|n| n.contains("group_dead")),
        "{report:?}"
    );
}

#[test]
fn rmdir_with_a_different_layout_is_rejected() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event == "cgroup_rmdir" {
            text.replace("path;\toffset:24;", "path;\toffset:28;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::TracepointLayoutUnsupported { ref event, ref field, ref expected, ref found }
            if event == "cgroup:cgroup_rmdir" && field == "path"
                && expected.contains("offset 24") && found.contains("offset 28")),
        "{err}"
    );
}

/// A field that moved is refused: the probes load it at a fixed offset.
#[test]
fn moved_field_is_rejected_with_both_layouts() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event == "inet_sock_set_state" {
            text.replace("newstate;\toffset:20;", "newstate;\toffset:24;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::TracepointLayoutUnsupported { ref event, ref field, .. }
            if event == "sock:inet_sock_set_state" && field == "newstate"),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("offset 20, 4 bytes") && message.contains("offset 24, 4 bytes"),
        "{message}"
    );
}

/// `group_dead` is optional, but where it exists it must be where the
/// probe loads it.
#[test]
fn moved_optional_field_is_rejected() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event == "sched_process_exit" {
            text.replace("group_dead;\toffset:32;", "group_dead;\toffset:33;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::TracepointLayoutUnsupported { ref field, .. } if field == "group_dead"),
        "{err}"
    );
}

#[test]
fn plain_field_turned_data_loc_is_rejected() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event == "cgroup_attach_task" {
            text.replace("field:int pid;", "field:__data_loc char[] pid;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::TracepointLayoutUnsupported { ref field, ref found, .. }
            if field == "pid" && found.contains("__data_loc")),
        "{err}"
    );
}

#[test]
fn missing_required_field_names_event_and_field() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event == "signal_deliver" {
            text.replace(" code;", " si_code;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::MissingField { ref event, ref field }
            if event == "signal:signal_deliver" && field == "code"),
        "{err}"
    );
}

#[test]
fn wrongly_sized_field_is_rejected() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|event, text| {
        if event == "cgroup_mkdir" {
            text.replace("id;\toffset:16;\tsize:8;", "id;\toffset:16;\tsize:4;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::TracepointLayoutUnsupported { ref field, .. } if field == "id"),
        "{err}"
    );
}

#[test]
fn missing_event_is_a_tracefs_error() {
    lifecycle_testkit::needs_root!();
    let dir = edited_tracefs(|_, text| text);
    std::fs::remove_dir_all(dir.path().join("events/sock")).unwrap();
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(
            err,
            OffsetsError::Tracefs(TracefsError::EventNotFound { .. })
        ),
        "{err}"
    );
}

#[test]
fn member_checks_report_missing_and_mistyped_members() {
    let err = member(btf(), "task_struct", "no_such_member", Want::Bytes(4)).unwrap_err();
    assert!(
        matches!(err, OffsetsError::MissingMember { ref strukt, ref member }
            if strukt == "task_struct" && member == "no_such_member"),
        "{err}"
    );
    let err = member(btf(), "task_struct", "pid", Want::Ptr).unwrap_err();
    assert!(
        matches!(err, OffsetsError::UnexpectedMemberType { .. }),
        "{err}"
    );
    assert_eq!(
        optional_member(btf(), "sock", "sk_cgrp_data.no_such", Want::Ptr).unwrap(),
        None
    );
    assert!(matches!(
        member(btf(), "no_such_struct", "x", Want::Ptr),
        Err(OffsetsError::Btf(BtfError::StructNotFound(_)))
    ));
}

/// Every span holds its members, starts 8-aligned and fits the scratch; on
/// this kernel none is missing.
#[test]
fn spans_hold_their_members_on_this_kernel() {
    lifecycle_testkit::needs_root!();
    let (o, _) = resolve_offsets(btf(), &real_tracefs()).unwrap();
    let spans = [
        (
            "task_ids_span",
            o.task_ids_span,
            vec![(o.task_start_boottime, 8), (o.task_comm, 16)],
        ),
        (
            "task_span",
            o.task_span,
            vec![
                (o.task_pid, 4),
                (o.task_tgid, 4),
                (o.task_real_parent, 8),
                (o.task_group_leader, 8),
                (o.task_start_boottime, 8),
                (o.task_comm, 16),
            ],
        ),
        (
            "cgroup_span",
            o.cgroup_span,
            vec![(o.cgroup_level, 4), (o.cgroup_kn, 8)],
        ),
        (
            "sock_span",
            o.sock_span,
            vec![(o.sock_err, 4), (o.sock_uid, 4)],
        ),
    ];
    for (name, span, members) in spans {
        assert_ne!(span, Span::NONE, "{name}");
        assert_eq!(span.start % 8, 0, "{name}");
        assert!(span.len <= SPAN_MAX_BYTES, "{name}: {span:?}");
        for (offset, size) in members {
            assert!(
                offset >= span.start && offset + size <= span.start + span.len,
                "{name}: member at {offset} ({size} bytes) outside {span:?}"
            );
            assert_eq!((offset - span.start) % size.min(8), 0, "{name}: {offset}");
        }
    }
}

#[test]
fn span_is_aligned_down_and_refused_when_too_long_or_unaligned() {
    let mut report = OffsetReport::default();
    assert_eq!(
        span("t", &[(1560, 8), (1752, 16)], &mut report),
        Span {
            start: 1560,
            len: 208
        }
    );
    assert_eq!(
        span("t", &[(1268, 4), (1280, 8)], &mut report),
        Span {
            start: 1264,
            len: 24
        }
    );
    assert!(report.notes.is_empty(), "{report:?}");
    assert_eq!(
        span("t", &[(0, 8), (SPAN_MAX_BYTES - 8, 8)], &mut report),
        Span {
            start: 0,
            len: SPAN_MAX_BYTES
        }
    );
    assert_eq!(
        span("too long", &[(0, 8), (SPAN_MAX_BYTES, 8)], &mut report),
        Span::NONE
    );
    assert_eq!(
        span("unaligned", &[(0, 8), (12, 8)], &mut report),
        Span::NONE
    );
    assert_eq!(report.notes.len(), 2, "{report:?}");
    assert!(report.notes[0].starts_with("too long"), "{report:?}");
    assert!(report.notes[1].contains("unaligned"), "{report:?}");
    assert!(report.absent.is_empty());
}
