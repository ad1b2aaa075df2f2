//! Tests against the running kernel's BTF and tracefs, plus copies of the
//! real format files edited to simulate other kernels.

use std::path::Path;
use std::sync::OnceLock;

use agent_common::config::ABSENT;

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
    let (o, report) = resolve_offsets(btf(), &real_tracefs()).unwrap();
    assert_eq!(
        [
            o.tp_deliver_sig,
            o.tp_deliver_errno,
            o.tp_deliver_code,
            o.tp_deliver_sa_handler,
            o.tp_deliver_sa_flags
        ],
        [8, 12, 16, 24, 32]
    );
    let sock = [
        o.tp_sock_skaddr,
        o.tp_sock_oldstate,
        o.tp_sock_newstate,
        o.tp_sock_sport,
        o.tp_sock_dport,
        o.tp_sock_family,
        o.tp_sock_protocol,
        o.tp_sock_saddr,
        o.tp_sock_daddr,
        o.tp_sock_saddr_v6,
        o.tp_sock_daddr_v6,
    ];
    assert_eq!(sock, [8, 16, 20, 24, 26, 28, 30, 32, 36, 40, 56]);
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
    assert_ne!(o.tp_exit_group_dead, ABSENT, "this kernel has group_dead");
    assert!(report.absent.is_empty(), "{report:?}");
    assert!(
        report.notes.iter().any(|n| n.contains("cgroup.ancestors")),
        "{report:?}"
    );

    // Nothing was left unset.
    let all = format!("{o:?}");
    assert!(!all.contains(&ABSENT.to_string()), "{all}");
}

/// The kernel's BTF describes each tracepoint class's record as a struct
/// `trace_event_raw_<class>`; tracefs offsets must agree with it.
#[test]
fn tracefs_offsets_agree_with_btf_tracepoint_structs() {
    let (o, _) = resolve_offsets(btf(), &real_tracefs()).unwrap();
    let checks = [
        (
            "trace_event_raw_sched_process_exec",
            "__data_loc_filename",
            o.tp_exec_filename,
        ),
        (
            "trace_event_raw_sched_process_exit",
            "group_dead",
            o.tp_exit_group_dead,
        ),
        ("trace_event_raw_cgroup", "root", o.tp_cgroup_root),
        ("trace_event_raw_cgroup", "id", o.tp_cgroup_id),
        ("trace_event_raw_cgroup", "level", o.tp_cgroup_level),
        (
            "trace_event_raw_cgroup",
            "__data_loc_path",
            o.tp_cgroup_path,
        ),
        (
            "trace_event_raw_cgroup_migrate",
            "dst_root",
            o.tp_attach_root,
        ),
        ("trace_event_raw_cgroup_migrate", "dst_id", o.tp_attach_id),
        (
            "trace_event_raw_cgroup_migrate",
            "dst_level",
            o.tp_attach_level,
        ),
        ("trace_event_raw_cgroup_migrate", "pid", o.tp_attach_pid),
        (
            "trace_event_raw_cgroup_migrate",
            "__data_loc_dst_path",
            o.tp_attach_path,
        ),
        (
            "trace_event_raw_inet_sock_set_state",
            "protocol",
            o.tp_sock_protocol,
        ),
        (
            "trace_event_raw_inet_sock_set_state",
            "daddr_v6",
            o.tp_sock_daddr_v6,
        ),
    ];
    for (strukt, member, resolved) in checks {
        assert_eq!(
            btf().member_offset(strukt, member).unwrap(),
            Some(resolved),
            "{strukt}.{member}"
        );
    }
}

#[test]
fn missing_group_dead_is_absent_not_an_error() {
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
    assert_eq!(o.tp_exit_group_dead, ABSENT);
    assert_eq!(report.absent, ["tp_exit_group_dead"]);
    assert!(
        report.notes.iter().any(|n| n.contains("group_dead")),
        "{report:?}"
    );
}

#[test]
fn rmdir_with_a_different_layout_is_rejected() {
    let dir = edited_tracefs(|event, text| {
        if event == "cgroup_rmdir" {
            text.replace("path;\toffset:24;", "path;\toffset:28;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::RmdirLayoutDiffers { ref field, mkdir: 24, rmdir: Some(28) } if field == "path"),
        "{err}"
    );
}

#[test]
fn missing_required_field_names_event_and_field() {
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
    let dir = edited_tracefs(|event, text| {
        if event == "cgroup_mkdir" {
            text.replace("id;\toffset:16;\tsize:8;", "id;\toffset:16;\tsize:4;")
        } else {
            text
        }
    });
    let err = resolve_offsets(btf(), &Tracefs::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, OffsetsError::UnexpectedFieldLayout { ref field, .. } if field == "id"),
        "{err}"
    );
}

#[test]
fn missing_event_is_a_tracefs_error() {
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
