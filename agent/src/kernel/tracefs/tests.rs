//! Tests for format parsing (synthetic text) and for the real tracefs.

use super::*;

const EXEC_FORMAT: &str = "name: sched_process_exec
ID: 365
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;
\tfield:const void * skaddr;\toffset:32;\tsize:8;\tsigned:0;
\tfield:int grid[2][3];\toffset:40;\tsize:24;

print fmt: \"filename=%s pid=%d\", __get_str(filename), REC->pid
";

#[test]
fn parses_every_kind_of_field_line() {
    let f = TracepointFormat::parse("sched:sched_process_exec", EXEC_FORMAT).unwrap();
    assert_eq!(f.id, Some(365));
    let names: Vec<&str> = f.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "common_type",
            "common_pid",
            "filename",
            "pid",
            "comm",
            "skaddr",
            "grid"
        ]
    );
    let filename = f.field("filename").unwrap();
    assert!(filename.is_data_loc);
    assert_eq!(
        (filename.offset, filename.size, filename.signed),
        (8, 4, false)
    );
    assert_eq!(filename.decl, "__data_loc char[] filename");
    let pid = f.field("pid").unwrap();
    assert!(pid.signed && !pid.is_data_loc);
    assert_eq!(f.offset("comm"), Some(16));
    assert_eq!(f.field("comm").unwrap().size, 16);
    assert_eq!(f.offset("skaddr"), Some(32));
    let grid = f.field("grid").unwrap();
    assert_eq!(
        (grid.offset, grid.size, grid.signed),
        (40, 24, false),
        "signed: is optional"
    );
    assert_eq!(f.offset("nope"), None);
}

#[test]
fn rejects_broken_formats() {
    let bad = "format:\n\tfield:int x;\toffset:eight;\tsize:4;\tsigned:1;\n";
    let err = TracepointFormat::parse("a:b", bad).unwrap_err();
    assert!(
        matches!(
            err,
            TracefsError::BadFormatLine {
                reason: "attribute is not a number",
                ..
            }
        ),
        "{err}"
    );
    let no_size = "\tfield:int x;\toffset:8;\tsigned:1;\n";
    assert!(matches!(
        TracepointFormat::parse("a:b", no_size),
        Err(TracefsError::BadFormatLine {
            reason: "no size",
            ..
        })
    ));
    let no_name = "\tfield:[4];\toffset:8;\tsize:4;\n";
    assert!(matches!(
        TracepointFormat::parse("a:b", no_name),
        Err(TracefsError::BadFormatLine { .. })
    ));
    assert!(matches!(
        TracepointFormat::parse("a:b", "name: b\nID: 3\n"),
        Err(TracefsError::NoFields { .. })
    ));
}

#[test]
fn finds_tracefs_mounts_in_mountinfo() {
    let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
        50 23 0:12 / /sys/kernel/tracing rw,nosuid - tracefs tracefs rw\n\
        51 23 0:12 / /host/my\\040trace rw - tracefs tracefs rw\n\
        52 23 0:40 / /sys/kernel/debug rw - debugfs debugfs rw\n";
    assert_eq!(
        tracefs_mounts(text),
        [
            PathBuf::from("/sys/kernel/tracing"),
            PathBuf::from("/host/my trace")
        ]
    );
}

#[test]
fn reads_formats_from_a_directory_tree() {
    let dir = tempfile::tempdir().unwrap();
    let event_dir = dir.path().join("events/sched/sched_process_exec");
    std::fs::create_dir_all(&event_dir).unwrap();
    std::fs::write(event_dir.join("format"), EXEC_FORMAT).unwrap();
    let fs = Tracefs::at(dir.path());
    assert_eq!(
        fs.field_offsets("sched", "sched_process_exec")
            .unwrap()
            .offset("pid"),
        Some(12)
    );
    let err = fs.field_offsets("sched", "sched_nothing").unwrap_err();
    assert!(
        matches!(err, TracefsError::EventNotFound { ref event, .. } if event == "sched_nothing"),
        "{err}"
    );
}

#[test]
fn not_mounted_error_says_how_to_mount() {
    let err = TracefsError::NotMounted {
        tried: vec![PathBuf::from(MOUNT_POINT)],
    };
    let msg = err.to_string();
    assert!(
        msg.contains("mount -t tracefs tracefs /sys/kernel/tracing"),
        "{msg}"
    );
    assert!(msg.contains("/sys/kernel/tracing"), "{msg}");
}

#[test]
fn mounts_tracefs_on_a_private_directory() {
    lifecycle_testkit::needs_root!();
    let dir = tempfile::tempdir().unwrap();
    mount_tracefs(dir.path()).expect("tests run as root");
    let has_events = dir
        .path()
        .join("events/signal/signal_deliver/format")
        .is_file();
    let c = CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    assert_eq!(rc, 0, "umount: {}", std::io::Error::last_os_error());
    assert!(has_events);
}

fn real_tracefs() -> Tracefs {
    let fs = ensure_tracefs(true).expect("tracefs mounted or mountable");
    assert!(fs.root().join("events").is_dir());
    fs
}

#[test]
fn real_signal_deliver_offsets() {
    lifecycle_testkit::needs_root!();
    let f = real_tracefs()
        .field_offsets("signal", "signal_deliver")
        .unwrap();
    let expected = [
        ("sig", 8),
        ("errno", 12),
        ("code", 16),
        ("sa_handler", 24),
        ("sa_flags", 32),
    ];
    for (name, off) in expected {
        assert_eq!(f.offset(name), Some(off), "{name}");
    }
    assert!(f.field("sig").unwrap().signed);
    assert_eq!(f.field("sa_flags").unwrap().size, 8);
}

#[test]
fn real_inet_sock_set_state_offsets() {
    lifecycle_testkit::needs_root!();
    let f = real_tracefs()
        .field_offsets("sock", "inet_sock_set_state")
        .unwrap();
    let expected = [
        ("skaddr", 8),
        ("oldstate", 16),
        ("newstate", 20),
        ("sport", 24),
        ("dport", 26),
        ("family", 28),
        ("protocol", 30),
        ("saddr", 32),
        ("daddr", 36),
        ("saddr_v6", 40),
        ("daddr_v6", 56),
    ];
    for (name, off) in expected {
        assert_eq!(f.offset(name), Some(off), "{name}");
    }
    assert_eq!(f.field("daddr_v6").unwrap().size, 16);
}

#[test]
fn real_exec_filename_is_data_loc() {
    lifecycle_testkit::needs_root!();
    let f = real_tracefs()
        .field_offsets("sched", "sched_process_exec")
        .unwrap();
    let filename = f.field("filename").unwrap();
    assert!(filename.is_data_loc);
    assert_eq!(filename.size, 4);
    assert!(f.id.is_some());
    assert!(matches!(
        real_tracefs().field_offsets("sched", "no_such_event"),
        Err(TracefsError::EventNotFound { .. })
    ));
}

#[test]
fn multibyte_character_before_the_name_is_not_split() {
    // Found by the tracefs_format fuzz target: the name's start was taken
    // one byte after the last non-identifier character, inside a 3-byte one.
    let line = "field:int\u{fffd}errno;\toffset:12;\tsize:4;\tsigned:1;";
    let field = parse_field(line).expect("parses");
    assert_eq!(field.name, "errno");
    assert_eq!(field_name("char \u{e9}t\u{e9}[4]"), None);
    assert_eq!(field_name("u8 \u{e9}x"), Some("x"));
}
