//! Export throughput on one core: audits of the fixture recordings turned
//! into spans (`spans::traces`), and into metrics (`record_audit`), and
//! the Prometheus text rendered. Prints spans per second.

use std::{hint::black_box, path::Path, time::Instant};

use lifecycle_agent::{
    audit::{AuditConfig, PodAudit, audit_records},
    export::{ExportArgs, ResourceInfo, Telemetry, config::ExportConfig, spans},
};
use lifecycle_recording::read_recording;

fn audits() -> Vec<PodAudit> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/recordings");
    [
        "legacy-proxy-exits-first.jsonl",
        "native-ordered.jsonl",
        "native-startup-race.jsonl",
    ]
    .iter()
    .flat_map(|name| {
        let (records, _) = read_recording(&dir.join(name)).expect("fixture");
        audit_records(records, &AuditConfig::default())
    })
    .collect()
}

fn main() {
    let audits = audits();
    let rounds = 20_000;
    let start = Instant::now();
    let mut spans_built = 0usize;
    for i in 0..rounds {
        let a = &audits[i % audits.len()];
        for t in spans::traces(black_box(a), true) {
            spans_built += t.spans.len();
            black_box(t);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "spans from audits: {spans_built} spans from {rounds} audits in {secs:.3} s = {:.0} spans/s ({:.1} µs per audit)",
        spans_built as f64 / secs,
        secs * 1e6 / rounds as f64
    );

    let config = ExportConfig::offline(&ExportArgs::default());
    let telemetry = Telemetry::from_config(&config, &ResourceInfo::default());
    let start = Instant::now();
    for i in 0..rounds {
        let mut a = audits[i % audits.len()].clone();
        a.pod.uid = format!("bench-{i}");
        telemetry.record_audit(black_box(&a));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "metrics from audits: {:.0} audits/s ({:.1} µs per audit, clone included)",
        rounds as f64 / secs,
        secs * 1e6 / rounds as f64
    );
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..200 {
        bytes = black_box(telemetry.prometheus_text()).len();
    }
    println!(
        "Prometheus text: {bytes} bytes, {:.2} ms per render",
        start.elapsed().as_secs_f64() * 1e3 / 200.0
    );
}
