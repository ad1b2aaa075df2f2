//! Delivery while the collector is down: `submit` never waits, the queue
//! stays within its bound, every span is either exported or counted as
//! dropped, failures and retries are counted and exported as
//! self-telemetry once the receiver is back, and later spans arrive.

use std::time::{Duration, Instant};

use crate::support::export::*;
use lifecycle_agent::{
    audit::PodAudit,
    export::{ExportArgs, Exporter, ResourceInfo, Telemetry, config::Protocol},
};
use otlp_receiver::{Receiver, view};

/// Copies of the fixtures' audits, each a different pod.
fn many_audits(n: usize, tag: &str) -> Vec<PodAudit> {
    let base: Vec<PodAudit> = [LEGACY, NATIVE].into_iter().flat_map(audits).collect();
    (0..n)
        .map(|i| {
            let mut a = base[i % base.len()].clone();
            a.pod.uid = format!("{tag}-{i:05}");
            a.pod.name = format!("{}-{tag}-{i}", a.pod.name);
            a
        })
        .collect()
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn args(endpoint: &str, protocol: Protocol, queue: usize) -> ExportArgs {
    ExportArgs {
        otlp_endpoint: Some(endpoint.to_owned()),
        otlp_protocol: Some(protocol),
        otlp_timeout: Some(Duration::from_secs(1)),
        export_queue_spans: queue,
        export_batch_spans: 12,
        export_retry_initial: Duration::from_millis(20),
        export_retry_max: Duration::from_millis(200),
        export_retry_attempts: 3,
        metrics_export_interval: Some(Duration::from_millis(250)),
        ..ExportArgs::default()
    }
}

fn metric_total(receiver: &Receiver, name: &str, filter: &[(&str, &str)]) -> f64 {
    view::latest_metric(&receiver.metric_requests(), name)
        .map_or(0.0, |m| view::number_total(&m, filter))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_is_survived_counted_and_recovered() {
    let mut receiver = Receiver::start().await.unwrap();
    let endpoint = receiver.endpoint();
    receiver.stop().await; // the port is closed: connections are refused
    let args = args(&endpoint, Protocol::Grpc, 60);
    let resource = ResourceInfo {
        node_name: Some(NODE.into()),
    };
    let config = args.config().unwrap();
    let telemetry = Telemetry::from_config(&config, &resource);
    let exporter = Exporter::from_config(&config, &resource, telemetry.clone()).unwrap();
    let capacity = exporter.queue_capacity();

    let audits = many_audits(600, "outage");
    let rss_before = vm_rss_kib();
    let mut slowest = Duration::ZERO;
    let mut submitted = 0;
    for (i, audit) in audits.iter().enumerate() {
        telemetry.record_audit(audit);
        let t = Instant::now();
        submitted += exporter.submit(audit).spans;
        slowest = slowest.max(t.elapsed());
        assert!(exporter.queue_len() <= capacity, "queue within its bound");
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let during = exporter.summary();
    let rss_after = vm_rss_kib();
    println!(
        "outage: {submitted} spans submitted, slowest submit {slowest:?}, queue high water {}/{capacity}, RSS {rss_before} -> {rss_after} KiB, {during:?}",
        exporter.queue_high_water()
    );
    assert!(exporter.queue_high_water() <= capacity);
    assert_eq!(during.spans_submitted, submitted as u64);
    assert!(
        during.spans_dropped_queue_full > 0,
        "a small queue overflows"
    );
    assert!(
        during.span_export_failures > 0 && during.span_export_retries > 0,
        "{during:?}"
    );
    assert_eq!(during.spans_exported, 0, "nothing can arrive");
    assert!(
        during.spans_exported + during.spans_dropped + during.spans_pending
            == during.spans_submitted,
        "every span is exported, dropped or pending: {during:?}"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 200 * 1024,
        "memory stays bounded"
    );

    // The collector comes back on the same port.
    receiver.restart().await.unwrap();
    let later = many_audits(3, "after");
    for a in &later {
        exporter.submit(a);
    }
    let arrived = receiver
        .wait_until(Duration::from_secs(20), |r| {
            let spans = r.spans();
            later
                .iter()
                .all(|a| !spans_named(&spans, &a.pod.uid, "pod.termination").is_empty())
        })
        .await;
    assert!(arrived, "spans submitted after the outage arrive");
    // The self-telemetry with the drops and retries arrives too.
    let counted = receiver
        .wait_until(Duration::from_secs(20), |r| {
            metric_total(
                r,
                "lifecycle.agent.export.dropped",
                &[("lifecycle.export.signal", "traces")],
            ) > 0.0
                && metric_total(
                    r,
                    "lifecycle.agent.export.retries",
                    &[("lifecycle.export.signal", "traces")],
                ) > 0.0
                && metric_total(
                    r,
                    "lifecycle.agent.export.failed",
                    &[("lifecycle.export.signal", "traces")],
                ) > 0.0
        })
        .await;
    assert!(counted, "dropped, failed and retried counts are exported");

    let summary = exporter.shutdown(Duration::from_secs(5)).await;
    println!("final: {summary:?}");
    assert_eq!(summary.spans_pending, 0);
    assert_eq!(
        summary.spans_exported + summary.spans_dropped,
        summary.spans_submitted
    );
    assert_eq!(receiver.spans().len() as u64, summary.spans_exported);
    assert_eq!(
        metric_total(
            &receiver,
            "lifecycle.agent.export.dropped",
            &[("lifecycle.export.signal", "traces")]
        ),
        summary.spans_dropped as f64,
        "the final metric export carries the final counts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_collector_over_http_is_retried_until_it_answers() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_unavailable(true);
    let mut a = args(&receiver.endpoint(), Protocol::HttpProtobuf, 4096);
    a.export_retry_attempts = 50;
    let config = a.config().unwrap();
    let telemetry = Telemetry::from_config(&config, &ResourceInfo::default());
    let exporter = Exporter::from_config(&config, &ResourceInfo::default(), telemetry).unwrap();
    let audits = many_audits(4, "busy");
    let mut submitted = 0;
    for audit in &audits {
        submitted += exporter.submit(audit).spans;
    }
    assert!(
        receiver
            .wait_until(Duration::from_secs(10), |r| r.refused() >= 3)
            .await
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while exporter.summary().metric_export_failures == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        exporter.summary().metric_export_failures > 0,
        "metric exports fail while unavailable too"
    );
    assert!(receiver.spans().is_empty());
    receiver.set_unavailable(false);
    let all_in = receiver
        .wait_until(Duration::from_secs(20), |r| r.spans().len() >= submitted)
        .await;
    assert!(
        all_in,
        "retried batches are delivered once the collector answers"
    );
    let summary = exporter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(summary.spans_exported, submitted as u64);
    assert_eq!(summary.spans_dropped, 0);
    assert!(summary.span_export_retries > 0 && summary.span_export_failures > 0);
}
