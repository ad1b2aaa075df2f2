//! The streaming engine and the recording reader.

use std::io::Write;

use lifecycle_recording::event::{Event, Record, Stats};
use lifecycle_recording::read_recording;

use crate::{
    AuditConfig, AuditEngine, Completion, audit_records,
    testing::deleted_legacy_pod,
    testing::{BASE_NS, Script},
};

fn stats_at(ms: f64, seq: u64) -> Record {
    let time_ns = BASE_NS + (ms * 1e6) as i64;
    Record {
        seq,
        time: lifecycle_recording::time::format_rfc3339_nanos(i128::from(time_ns)),
        time_ns,
        boot_ns: None,
        cpu: None,
        event: Event::Stats(Stats::default()),
    }
}

/// A legacy pod that starts, is deleted at 1 s and gone at 2 s.
fn deleted_pod(uid: &str) -> Script {
    deleted_legacy_pod(uid, 0.0)
}

#[test]
fn a_deleted_pod_is_audited_once_the_stream_settled() {
    let mut engine = AuditEngine::new(AuditConfig::default());
    let mut out = Vec::new();
    let records = deleted_pod("u-1").records();
    let next_seq = records.len() as u64;
    for r in records {
        out.extend(engine.push(r));
    }
    assert!(out.is_empty(), "nothing before the settle time");
    assert_eq!(engine.pods_in_progress(), 1);
    assert!(engine.push(stats_at(6900.0, next_seq)).is_empty());
    let done = engine.push(stats_at(7100.0, next_seq + 1));
    assert_eq!(done.len(), 1, "deleted at 2 s + 5 s settle");
    assert_eq!(done[0].completed_by, Completion::Terminated);
    assert_eq!(done[0].pod.uid, "u-1");
    assert!(done[0].termination.is_some());
    assert_eq!(
        engine.pods_in_progress(),
        0,
        "a terminated pod is forgotten"
    );
    // A straggler of that pod does not start a new audit.
    let mut late = deleted_pod("u-1").records().remove(3);
    late.time_ns = BASE_NS + 7_200_000_000;
    assert!(engine.push(late).is_empty());
    assert_eq!(engine.records_after_audit(), 1);
    assert!(engine.finish().is_empty());
}

#[test]
fn startup_audits_come_early_when_asked_for() {
    let config = AuditConfig {
        emit_startup: true,
        settle_ns: 50_000_000,
        ..AuditConfig::default()
    };
    let mut engine = AuditEngine::new(config);
    let mut out = Vec::new();
    let mut records = deleted_pod("u-2").records();
    let seq = records.len() as u64;
    records.push(stats_at(300.0, seq));
    records.sort_by_key(|r| r.time_ns);
    for r in records {
        out.extend(engine.push(r));
    }
    out.extend(engine.finish());
    let kinds: Vec<Completion> = out.iter().map(|a| a.completed_by).collect();
    assert_eq!(
        kinds,
        vec![Completion::StartupComplete, Completion::Terminated]
    );
    assert!(
        out[0].termination.is_none(),
        "startup audit before the delete"
    );
    assert!(out[0].startup.is_some());
}

#[test]
fn late_and_interleaved_records_give_the_same_audits() {
    let a = deleted_pod("u-a").records();
    let b = deleted_pod("u-b").records();
    let mut mixed: Vec<Record> = a.iter().chain(b.iter()).cloned().collect();
    for (i, r) in mixed.iter_mut().enumerate() {
        r.seq = i as u64;
    }
    let sorted = audit_records(mixed.clone(), &AuditConfig::default());
    assert_eq!(sorted.len(), 2);
    assert_eq!(
        sorted
            .iter()
            .map(|p| p.pod.uid.as_str())
            .collect::<Vec<_>>(),
        vec!["u-a", "u-b"]
    );
    // Push in write order without sorting: b's records arrive late.
    let mut engine = AuditEngine::new(AuditConfig::default());
    let mut streamed = Vec::new();
    for r in mixed {
        streamed.extend(engine.push(r));
    }
    assert!(engine.late_records() > 0);
    streamed.extend(engine.finish());
    streamed.sort_by(|x, y| x.pod.uid.cmp(&y.pod.uid));
    for (x, y) in streamed.iter().zip(&sorted) {
        assert_eq!(x.termination, y.termination);
        assert_eq!(x.findings.len(), y.findings.len());
    }
}

#[test]
fn records_beyond_the_cap_are_counted() {
    let config = AuditConfig {
        max_records_per_pod: 5,
        ..AuditConfig::default()
    };
    let records = deleted_pod("u-3").records();
    let total = records.len();
    let audits = audit_records(records, &config);
    assert_eq!(audits[0].records, 5);
    assert_eq!(audits[0].dropped_records, (total - 5) as u64);
}

#[test]
fn recordings_are_read_sorted_and_unknown_types_skipped() {
    let records = deleted_pod("u-4").records();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for r in records.iter().rev() {
        writeln!(file, "{}", serde_json::to_string(r).unwrap()).unwrap();
    }
    writeln!(
        file,
        r#"{{"seq":99,"time":"x","time_ns":1,"type":"future_kind","x":1}}"#
    )
    .unwrap();
    writeln!(file).unwrap();
    let (read, info) = read_recording(file.path()).unwrap();
    assert_eq!(read.len(), records.len());
    assert_eq!(info.skipped_lines, 1);
    assert!(read.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));

    // A stats line of an older revision (fields missing): read, fields
    // default to zero, its drop counter kept.
    writeln!(
        file,
        r#"{{"seq":99,"time":"x","time_ns":1,"type":"stats","kernel_drops_total":7}}"#
    )
    .unwrap();
    let (_, info) = read_recording(file.path()).unwrap();
    assert_eq!((info.skipped_lines, info.kernel_drops), (1, 7));

    // A known type that does not decode is damaged: skipped, counted and
    // located, not an error (tests/damaged.rs has the rest).
    writeln!(file, r#"{{"seq":100,"type":"socket"}}"#).unwrap();
    let (read, info) = read_recording(file.path()).unwrap();
    assert_eq!(read.len(), records.len() + 1, "the stats line counts");
    assert_eq!((info.damaged_lines, info.cut_last_line), (1, false));
}

/// A Job whose worker completes at 1 s beside a legacy sidecar that nothing
/// ever stops: the engine audits it while it still runs, 12 s after the
/// exit, as `JobStuck`, with T5's finding; before that, nothing.
#[test]
fn a_job_kept_running_by_a_legacy_sidecar_is_audited_while_it_runs() {
    let m = crate::testing::manifest(
        serde_json::json!([]),
        serde_json::json!([{"name": "migrate", "image": "shop/migrate:1"},
                           {"name": "cloud-sql-proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2"}]),
        serde_json::json!({"restartPolicy": "Never"}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    let worker = s.start("migrate", "/migrate");
    s.api_running("migrate");
    let _proxy = s.start("cloud-sql-proxy", "/cloud-sql-proxy");
    s.api_running("cloud-sql-proxy");
    let helper = s.at(100.0).child(&worker, "/bin/true");
    s.at(500.0).exit(&helper, 0);
    s.at(1000.0).exit(&worker, 0);
    s.api_terminated("migrate", 0);
    let mut engine = AuditEngine::new(AuditConfig::default());
    // The helper's exit arrives last, as a record held until its container
    // was known does: the worker's later exit still starts the 12 s.
    let mut records = s.records();
    let late = records
        .iter()
        .position(|r| r.time_ns == BASE_NS + 500_000_000)
        .expect("the helper's exit");
    let late = records.remove(late);
    records.push(late);
    let mut out = Vec::new();
    for r in records {
        out.extend(engine.push(r));
    }
    out.extend(engine.advance_to(BASE_NS + 12_500_000_000));
    assert!(out.is_empty(), "not before 12 s after the exit: {out:#?}");
    out.extend(engine.advance_to(BASE_NS + 13_100_000_000));
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].completed_by, Completion::JobStuck);
    let f = out[0]
        .findings
        .iter()
        .find(|f| f.kind == crate::FindingKind::JobSidecarsKeptRunning)
        .expect("T5's finding");
    assert!(
        f.message
            .contains("legacy sidecar cloud-sql-proxy still ran 12.100 s after"),
        "{}",
        f.message
    );
    assert_eq!(engine.pods_in_progress(), 0, "audited once and forgotten");
}
