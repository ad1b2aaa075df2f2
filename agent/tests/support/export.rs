//! Shared pieces of the export tests: the fixtures audited through the
//! library, the `lifecycle-agent export` command against a test OTLP
//! receiver, and span lookups.

use std::{collections::BTreeMap, process::Output};

use lifecycle_agent::{
    audit::{AuditConfig, PodAudit, audit_records},
    event::{Event, Stats},
};
use lifecycle_recording::read_recording;
use lifecycle_testkit::recording_fixture;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp_receiver::{ReceivedSpan, view};

use super::agent::command;

pub const LEGACY: &str = "legacy-proxy-exits-first.jsonl";
pub const NATIVE: &str = "native-ordered.jsonl";
pub const NODE: &str = "node-export-test";

/// The audits of a fixture, as `lifecycle-agent export` computes them
/// (default settings: kubelet 1.33).
pub fn audits(name: &str) -> Vec<PodAudit> {
    let (records, _) = read_recording(&recording_fixture(name)).expect("fixture reads");
    audit_records(records, &AuditConfig::default())
}

/// The last `stats` line of a fixture.
pub fn last_stats(name: &str) -> Stats {
    let (records, _) = read_recording(&recording_fixture(name)).expect("fixture reads");
    records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::Stats(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a stats line")
}

/// Runs `lifecycle-agent export <fixture> --json <extra>` off the async
/// runtime (the receiver keeps serving meanwhile).
pub async fn export_cli(name: &str, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![
        "export".into(),
        recording_fixture(name).display().to_string(),
        "--json".into(),
        "--node-name".into(),
        NODE.into(),
        "--shutdown-timeout".into(),
        "10s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        command(&args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
            .output()
            .expect("run lifecycle-agent export")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The JSON summary `export --json` printed (before any Prometheus text).
pub fn summary_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut de = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    de.next().expect("a JSON summary").expect("valid JSON")
}

pub fn ns(span_time: u64) -> i64 {
    span_time as i64
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Spans of `pod_uid` named `name`.
pub fn spans_named<'a>(
    spans: &'a [ReceivedSpan],
    pod_uid: &str,
    name: &str,
) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| {
            s.span.name == name
                && view::attr_str(&s.span.attributes, "k8s.pod.uid") == Some(pod_uid)
        })
        .collect()
}

/// The events named `name` of a span, as (time, attributes).
pub fn events<'a>(
    span: &'a Span,
    name: &str,
) -> Vec<&'a opentelemetry_proto::tonic::trace::v1::span::Event> {
    span.events.iter().filter(|e| e.name == name).collect()
}

/// How many findings per rule id, for comparing multisets.
pub fn count_by<I: IntoIterator<Item = String>>(items: I) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i).or_insert(0) += 1;
    }
    out
}
