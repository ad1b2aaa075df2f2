//! Unit tests on the fixture recordings: partial times, one startup per
//! pod in the metrics, the resource.

use lifecycle_recording::read_recording;
use std::path::Path;

use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

use super::{
    ExportArgs, ResourceInfo, Telemetry,
    config::ExportConfig,
    keys,
    spans::{self, TraceKind},
};
use crate::{
    audit::{AuditConfig, Completion, PodAudit, audit_records},
    event::{Event, Record},
};

fn records(name: &str) -> Vec<Record> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/recordings")
        .join(name);
    read_recording(&path).expect("fixture").0
}

fn audit(records: Vec<Record>) -> PodAudit {
    let mut audits = audit_records(records, &AuditConfig::default());
    assert_eq!(audits.len(), 1);
    audits.remove(0)
}

fn attr<'a>(span: &'a opentelemetry_sdk::trace::SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[test]
fn a_missing_exit_is_marked_partial_and_a_full_story_is_not() {
    let all = records("legacy-proxy-exits-first.jsonl");
    let full = audit(all.clone());
    let traces = spans::traces(&full, true);
    assert_eq!(traces.len(), 2);
    for t in &traces {
        for s in &t.spans {
            assert!(attr(s, keys::TIME_PARTIAL).is_none(), "{}", s.name);
            assert!(s.end_time >= s.start_time);
        }
    }
    // Cut the recording before the app's PID 1 exit (its last exit).
    let t = full.termination.as_ref().unwrap();
    let app_exit = t.container("app").unwrap().exit.unwrap().at.seq;
    let cut: Vec<Record> = all
        .into_iter()
        .filter(|r| r.seq < app_exit && !matches!(r.event, Event::Pod(_) if r.seq > app_exit))
        .collect();
    let partial = audit(cut);
    let term = spans::traces(&partial, false);
    assert_eq!(term.len(), 1);
    assert_eq!(term[0].kind, TraceKind::Termination);
    let app = term[0]
        .spans
        .iter()
        .find(|s| attr(s, keys::K8S_CONTAINER_NAME) == Some(&Value::from("app")))
        .unwrap();
    assert_eq!(attr(app, keys::TIME_PARTIAL), Some(&Value::Bool(true)));
    assert_eq!(attr(app, keys::PROCESS_EXIT_CODE), None);
    let root = &term[0].spans[0];
    assert_eq!(attr(root, keys::TIME_PARTIAL), Some(&Value::Bool(true)));
    assert!(root.end_time >= app.end_time);
}

fn histogram_count(t: &Telemetry, name: &str) -> u64 {
    let rm = t.collect().unwrap();
    rm.scope_metrics()
        .flat_map(|s| s.metrics())
        .filter(|m| m.name() == name)
        .map(|m| match m.data() {
            AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                h.data_points().map(|p| p.count()).sum()
            }
            _ => 0,
        })
        .sum()
}

#[test]
fn a_pod_audited_twice_counts_its_startup_once() {
    let final_audit = audit(records("native-startup-race.jsonl"));
    let gaps = final_audit.startup.as_ref().unwrap().gaps.len() as u64;
    let measured: u64 = final_audit
        .startup
        .as_ref()
        .unwrap()
        .gaps
        .iter()
        .map(|g| {
            [g.exec_gap_s, g.connect_gap_s, g.accept_gap_s]
                .iter()
                .flatten()
                .count() as u64
        })
        .sum();
    assert!(gaps > 0);
    let mut startup = final_audit.clone();
    startup.completed_by = Completion::StartupComplete;
    startup.termination = None;

    let t = Telemetry::from_config(&ExportConfig::default(), &ResourceInfo::default());
    t.record_audit(&startup);
    assert_eq!(histogram_count(&t, "lifecycle.startup.gap"), measured);
    assert_eq!(
        histogram_count(&t, "lifecycle.termination.sigterm_to_exit"),
        0
    );
    t.record_audit(&final_audit);
    assert_eq!(
        histogram_count(&t, "lifecycle.startup.gap"),
        measured,
        "not twice"
    );
    let stopped = final_audit.termination.as_ref().map_or(0, |t| {
        t.containers
            .iter()
            .filter(|c| c.exit.is_some() && c.stop_signal.is_some())
            .count() as u64
    });
    assert_eq!(
        histogram_count(&t, "lifecycle.termination.sigterm_to_exit"),
        stopped,
        "the final audit's termination counts"
    );
}

#[test]
fn the_resource_is_the_agent_on_its_node() {
    let args = ExportArgs {
        service_name: Some("agent-x".into()),
        ..ExportArgs::default()
    };
    let mut config = ExportConfig::offline(&args);
    config.resource_attributes = vec![
        ("service.name".into(), "ignored".into()),
        ("deployment.environment".into(), "prod".into()),
    ];
    let r = ResourceInfo {
        node_name: Some("node-1".into()),
    }
    .resource(&config);
    let get = |k: &str| r.get(&opentelemetry::Key::from(k.to_owned()));
    assert_eq!(get("service.name"), Some(Value::from("agent-x")));
    assert_eq!(get("k8s.node.name"), Some(Value::from("node-1")));
    assert_eq!(get("deployment.environment"), Some(Value::from("prod")));
}

/// A pod without a controller is its own workload: its metrics name it, so
/// a dashboard templated on workload does not lose it.
#[test]
fn a_bare_pods_metrics_name_the_pod_as_its_workload() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/recordings/legacy-proxy-exits-first.jsonl");
    let text = std::fs::read_to_string(fixture).expect("fixture");
    let owner = r#""owner":{"kind":"ReplicaSet","name":"web-5d8f9c7b4"},"#;
    assert!(text.contains(owner), "the fixture names its owner");
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = dir.path().join("bare.jsonl");
    std::fs::write(&bare, text.replace(owner, "")).expect("write");
    let audit = audit(read_recording(&bare).expect("recording").0);
    assert_eq!(audit.workload.kind, "Pod");
    assert!(!audit.findings.is_empty(), "the fixture has findings");

    let t = Telemetry::from_config(&ExportConfig::default(), &ResourceInfo::default());
    t.record_audit(&audit);
    let metrics = t.prometheus_text();
    let want = format!(
        r#"lifecycle_workload_kind="Pod",lifecycle_workload_name="{}""#,
        audit.pod.name
    );
    let findings: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("lifecycle_findings_total{"))
        .collect();
    assert!(!findings.is_empty(), "{metrics}");
    assert!(
        findings.iter().all(|l| l.contains(&want)),
        "every finding series names the pod as its workload ({want}):\n{}",
        findings.join("\n")
    );
}
