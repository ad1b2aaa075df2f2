//! Damaged recordings: a cut last line (an agent killed mid-write), a
//! garbled line and a stray non-UTF-8 byte are skipped, counted and
//! located; everything else is audited, and the pods the lost lines may
//! have held are marked partial.

use std::io::Write;

use lifecycle_recording::{Record, read_recording};

use crate::{
    AuditConfig,
    report::{Format, audit_file},
    testing::deleted_legacy_pod,
};

fn line(r: &Record) -> String {
    serde_json::to_string(r).expect("a record as JSON")
}

#[test]
fn a_cut_last_line_ends_a_killed_agents_journal_and_the_rest_is_audited() {
    let records = deleted_legacy_pod("u-cut", 0.0).records();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for r in &records {
        writeln!(file, "{}", line(r)).unwrap();
    }
    // The next write, cut half-way: no newline.
    let next = line(records.last().unwrap());
    write!(file, "{}", &next[..next.len() / 2]).unwrap();
    file.flush().unwrap();

    let (read, info) = read_recording(file.path()).expect("readable despite the cut");
    assert_eq!(read.len(), records.len());
    assert_eq!(info.damaged_lines, 1);
    assert_eq!(info.damaged_line_numbers, [records.len() + 1]);
    assert!(info.cut_last_line);

    let report = audit_file(file.path(), &AuditConfig::default()).expect("audited");
    assert_eq!(report.pods.len(), 1);
    let pod = &report.pods[0];
    assert!(
        pod.termination.is_some(),
        "the termination is still audited"
    );
    assert!(pod.partial && pod.damaged_lines == 1, "{pod:#?}");
    let text = report.render(Format::Text).unwrap();
    for part in [
        format!("1 damaged line(s) skipped (line {})", records.len() + 1),
        "the last line was cut short".to_owned(),
        "partial: 1 damaged recording line(s) in its span".to_owned(),
    ] {
        assert!(text.contains(&part), "{part}:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&report.render(Format::Json).unwrap()).unwrap();
    assert_eq!(json["recording"]["damaged_lines"], 1);
    assert_eq!(json["recording"]["cut_last_line"], true);
}

#[test]
fn damaged_lines_in_the_middle_mark_only_the_pods_around_them() {
    let early = deleted_legacy_pod("u-early", 0.0).records();
    // The second pod's whole story comes 100 s after the first one's.
    let late: Vec<Record> = deleted_legacy_pod("u-late", 0.0)
        .records()
        .into_iter()
        .map(|mut r| {
            r.time_ns += 100_000_000_000;
            r.boot_ns = r.boot_ns.map(|b| b + 100_000_000_000);
            r
        })
        .collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let half = early.len() / 2;
    for r in &early[..half] {
        writeln!(file, "{}", line(r)).unwrap();
    }
    writeln!(file, r#"{{"seq":1,"time_ns":1,"type":"sock"#).unwrap();
    file.write_all(b"{\"seq\":2,\"type\":\"pod\",\"x\":\"\xff\"}\n")
        .unwrap();
    for r in early[half..].iter().chain(&late) {
        writeln!(file, "{}", line(r)).unwrap();
    }
    file.flush().unwrap();

    let (read, info) = read_recording(file.path()).expect("readable");
    assert_eq!(read.len(), early.len() + late.len());
    assert_eq!(info.damaged_lines, 2);
    assert_eq!(info.damaged_line_numbers, [half + 1, half + 2]);
    assert!(!info.cut_last_line);

    let report = audit_file(file.path(), &AuditConfig::default()).expect("audited");
    let of = |uid: &str| {
        report
            .pods
            .iter()
            .find(|p| p.pod.uid == uid)
            .unwrap_or_else(|| panic!("no audit of {uid}"))
    };
    assert_eq!(
        (of("u-early").partial, of("u-early").damaged_lines),
        (true, 2)
    );
    assert_eq!(
        (of("u-late").partial, of("u-late").damaged_lines),
        (false, 0)
    );
    // The late pod's audit is the same as without the damage.
    let clean = crate::audit_records(late, &AuditConfig::default());
    assert_eq!(of("u-late").findings, clean[0].findings);
}
