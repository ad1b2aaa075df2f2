//! Metrics at a real OTLP receiver: names, units and values agree with the
//! audits the library computes from the same recording, and with the
//! Prometheus text of the same registry.

use std::collections::BTreeMap;

use crate::support::export::*;
use lifecycle_agent::{
    audit::PodAudit,
    export::{prometheus::family_name, telemetry::defs},
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use otlp_receiver::{Receiver, Transport, view};

fn expected_findings(audits: &[PodAudit]) -> BTreeMap<String, usize> {
    count_by(
        audits
            .iter()
            .flat_map(|a| &a.findings)
            .map(|f| f.rule.to_string()),
    )
}

/// Sample totals per family in Prometheus text (sums over label sets).
fn prometheus_totals(text: &str) -> BTreeMap<String, f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let mut out = BTreeMap::new();
    for s in scrape.samples {
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => continue,
        };
        *out.entry(s.metric).or_insert(0.0) += v;
    }
    out
}

async fn check_metrics(protocol: &str, transport: Transport, fixture_name: &str) {
    let receiver = Receiver::start().await.unwrap();
    let out = export_cli(
        fixture_name,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otlp-protocol",
            protocol,
            "--print-metrics",
        ],
    )
    .await;
    let summary = summary_json(&out);
    let requests = receiver.metric_requests();
    assert!(!requests.is_empty(), "metrics arrived");
    assert!(requests.iter().all(|r| r.transport == transport));
    let audits = audits(fixture_name);

    // The resource is the agent on its node.
    let resource = requests[0].request.resource_metrics[0]
        .resource
        .as_ref()
        .unwrap();
    assert_eq!(
        view::attr_str(&resource.attributes, "k8s.node.name"),
        Some(NODE)
    );
    assert_eq!(
        view::attr_str(&resource.attributes, "service.name"),
        Some("lifecycle-agent")
    );

    // Names and units as defined.
    let names = view::metric_names(&requests);
    for def in defs::ALL {
        if let Some(m) = view::latest_metric(&requests, def.name) {
            assert_eq!(m.unit, def.unit, "{}", def.name);
            let kind_ok = match (&m.data, def.instrument) {
                (Some(Data::Sum(s)), defs::Instrument::Counter) => s.is_monotonic,
                (Some(Data::Histogram(_)), defs::Instrument::Histogram) => true,
                (Some(Data::Gauge(_)), defs::Instrument::Gauge) => true,
                _ => false,
            };
            assert!(kind_ok, "{} is a {:?}", def.name, def.instrument);
        }
    }
    let mut required = vec![
        "lifecycle.termination.sigterm_to_exit",
        "lifecycle.termination.grace_used",
        "lifecycle.audits",
        "lifecycle.agent.events",
        "lifecycle.agent.export.exported",
        "lifecycle.agent.export.dropped",
    ];
    if audits.iter().any(|a| !a.findings.is_empty()) {
        required.push("lifecycle.findings");
    }
    for name in required {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| defs::ALL.iter().any(|d| d.name == n)),
        "{names:?}"
    );

    // Values equal the audit's.
    let findings = view::latest_metric(&requests, "lifecycle.findings");
    let total = |filter: &[(&str, &str)]| {
        findings
            .as_ref()
            .map_or(0.0, |m| view::number_total(m, filter))
    };
    let expected = expected_findings(&audits);
    for (rule, n) in &expected {
        assert_eq!(
            total(&[("lifecycle.finding.rule", rule)]),
            *n as f64,
            "findings of {rule}"
        );
    }
    assert_eq!(total(&[]), expected.values().sum::<usize>() as f64);
    let sigkills: usize = audits
        .iter()
        .filter_map(|a| a.termination.as_ref())
        .flat_map(|t| &t.containers)
        .filter(|c| c.sigkill.is_some())
        .count();
    let got = view::latest_metric(&requests, "lifecycle.termination.sigkills")
        .map_or(0.0, |m| view::number_total(&m, &[]));
    assert_eq!(got, sigkills as f64, "SIGKILLs");
    let refused: u32 = audits
        .iter()
        .filter_map(|a| a.bypass.as_ref())
        .map(|b| b.in_windows.refused_by_capture)
        .sum();
    let got = view::latest_metric(&requests, "lifecycle.bypass.connections").map_or(0.0, |m| {
        view::number_total(&m, &[("lifecycle.flow.class", "refused_by_capture")])
    });
    assert_eq!(got, f64::from(refused), "refused connections in windows");
    let stop_to_exit: Vec<f64> = audits
        .iter()
        .filter_map(|a| a.termination.as_ref())
        .flat_map(|t| &t.containers)
        .filter_map(|c| Some((c.exit?.at.ns - c.stop_signal.as_ref()?.at.ns) as f64 / 1e9))
        .collect();
    let hist = view::latest_metric(&requests, "lifecycle.termination.sigterm_to_exit").unwrap();
    let (count, sum) = view::histogram_totals(&hist, &[]);
    assert_eq!(count, stop_to_exit.len() as u64);
    assert!(
        (sum - stop_to_exit.iter().sum::<f64>()).abs() < 1e-9,
        "{sum}"
    );

    // Self-telemetry: the recording's event counters, and what was exported.
    let stats = last_stats(fixture_name);
    let events = view::latest_metric(&requests, "lifecycle.agent.events").unwrap();
    for (kind, n) in &stats.events {
        assert_eq!(
            view::number_total(&events, &[("lifecycle.event.kind", kind)]),
            *n as f64,
            "{kind}"
        );
    }
    let exported = view::latest_metric(&requests, "lifecycle.agent.export.exported").unwrap();
    assert_eq!(
        view::number_total(&exported, &[("lifecycle.export.signal", "traces")]),
        summary["export"]["spans_exported"].as_f64().unwrap()
    );
    assert_eq!(
        receiver.spans().len() as f64,
        summary["export"]["spans_exported"].as_f64().unwrap()
    );

    // The Prometheus text of the same registry has the same values under
    // the mapped names (export counters excepted: the text was taken
    // before the final flush).
    let text = String::from_utf8_lossy(&out.stdout);
    let prom = prometheus_totals(&text[text.find("# HELP").expect("metrics printed")..]);
    for def in defs::ALL
        .iter()
        .filter(|d| !d.name.starts_with("lifecycle.agent.export"))
    {
        let Some(m) = view::latest_metric(&requests, def.name) else {
            continue;
        };
        let otlp = match def.instrument {
            defs::Instrument::Histogram => view::histogram_totals(&m, &[]).0 as f64,
            _ => view::number_total(&m, &[]),
        };
        let family = family_name(
            def.name,
            def.unit,
            def.instrument == defs::Instrument::Counter,
        );
        let key = match def.instrument {
            defs::Instrument::Histogram => format!("{family}_count"),
            _ => family.clone(),
        };
        let value = prom
            .get(&key)
            .copied()
            .or_else(|| prom.get(&family).copied());
        assert_eq!(value, Some(otlp), "{} as {key}", def.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_arrive_over_grpc_with_the_audit_values() {
    check_metrics("grpc", Transport::Grpc, LEGACY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_arrive_over_http_with_the_audit_values() {
    check_metrics("http/protobuf", Transport::Http, NATIVE).await;
}
