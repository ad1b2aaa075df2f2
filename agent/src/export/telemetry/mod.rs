//! The agent's metrics: one OpenTelemetry SDK meter whose instruments are
//! read on demand (a manual reader), both for OTLP export and for the
//! Prometheus text. Both paths read the same aggregation, so names, units
//! and values agree by construction.
//!
//! * [`Telemetry::record_audit`]: histograms and counters from one audit
//!   ([`audit`]);
//! * [`Telemetry::observe_stats`]: self-telemetry from the agent's
//!   periodic `Stats` record, cumulative values turned into counter
//!   increments ([`stats`]);
//! * the exporter's own counters (exported, failed, retried, dropped).
//!
//! Labels are bounded: namespace and owner workload, never pod names
//! unless `--metrics-pod-labels`; the SDK caps every instrument at 2000
//! label sets (further ones go to one `otel.metric.overflow` series).

pub mod api_events;
pub mod audit;
pub mod daemon;
pub mod defs;
pub mod stats;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
        data::ResourceMetrics, reader::MetricReader,
    },
};

use self::defs::MetricDef;
use super::{
    ExportError, ResourceInfo,
    config::{ExportConfig, MetricOptions},
    keys,
    seen::SeenSet,
};

/// Which OTLP signal an export counter is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    pub fn label(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
        }
    }
}

/// Why exported items were given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The queue was full; the oldest traces made room.
    QueueFull,
    /// Every retry failed.
    RetriesExhausted,
    /// Still queued or in flight when the shutdown deadline passed.
    Shutdown,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::RetriesExhausted => "retries_exhausted",
            Self::Shutdown => "shutdown",
        }
    }
}

/// A reader handle the meter provider owns while [`Telemetry`] keeps
/// another to collect.
#[derive(Clone, Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

pub(crate) struct Instruments {
    pub sigterm_to_exit: Histogram<f64>,
    pub grace_used: Histogram<f64>,
    pub sigkills: Counter<u64>,
    pub startup_gap: Histogram<f64>,
    pub bypass_window: Histogram<f64>,
    pub bypass_connections: Counter<u64>,
    pub findings: Counter<u64>,
    pub audits: Counter<u64>,
    pub kernel_drops: Counter<u64>,
    pub events: Counter<u64>,
    pub decode_errors: Counter<u64>,
    pub unattributed: Counter<u64>,
    pub unknown_layouts: Counter<u64>,
    pub summarized_signals: Counter<u64>,
    pub filtered_signals: Counter<u64>,
    pub join_records: Counter<u64>,
    pub watch_restarts: Counter<u64>,
    pub watch_relists: Counter<u64>,
    pub malformed_objects: Counter<u64>,
    pub objects_applied: Counter<u64>,
    pub pods: Gauge<u64>,
    pub exported: Counter<u64>,
    pub export_failed: Counter<u64>,
    pub export_retries: Counter<u64>,
    pub export_dropped: Counter<u64>,
    pub export_queue: Gauge<u64>,
    pub ready: Gauge<u64>,
    pub recovered: Gauge<u64>,
    pub audits_in_progress: Gauge<u64>,
    pub journal_lines: Counter<u64>,
    pub journal_write_errors: Counter<u64>,
    pub journal_rotations: Counter<u64>,
    pub k8s_events_posted: Counter<u64>,
    pub k8s_events_failed: Counter<u64>,
    pub k8s_events_retries: Counter<u64>,
    pub k8s_events_dropped: Counter<u64>,
    pub k8s_events_filtered: Counter<u64>,
    pub k8s_events_queue: Gauge<u64>,
}

/// Adds to `counter` what a cumulative `value` gained since the last one
/// seen for `series` (remembered in `seen`). A lower value means the
/// source restarted and counts whole; a new series is created even at 0,
/// so a dashboard shows "none" rather than nothing.
pub(crate) fn add_cumulative(
    seen: &mut HashMap<String, u64>,
    series: String,
    value: u64,
    counter: &Counter<u64>,
    attrs: &[KeyValue],
) {
    let last = seen.insert(series, value);
    let delta = match last {
        Some(last) if value >= last => value - last,
        _ => value,
    };
    if delta > 0 || last.is_none() {
        counter.add(delta, attrs);
    }
}

fn counter(meter: &Meter, d: &MetricDef) -> Counter<u64> {
    meter
        .u64_counter(d.name)
        .with_unit(d.unit)
        .with_description(d.help)
        .build()
}

fn histogram(meter: &Meter, d: &MetricDef) -> Histogram<f64> {
    meter
        .f64_histogram(d.name)
        .with_unit(d.unit)
        .with_description(d.help)
        .with_boundaries(d.buckets.to_vec())
        .build()
}

fn gauge(meter: &Meter, d: &MetricDef) -> Gauge<u64> {
    meter
        .u64_gauge(d.name)
        .with_unit(d.unit)
        .with_description(d.help)
        .build()
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        use defs::*;
        Self {
            sigterm_to_exit: histogram(meter, &SIGTERM_TO_EXIT),
            grace_used: histogram(meter, &GRACE_USED),
            sigkills: counter(meter, &SIGKILLS),
            startup_gap: histogram(meter, &STARTUP_GAP),
            bypass_window: histogram(meter, &BYPASS_WINDOW),
            bypass_connections: counter(meter, &BYPASS_CONNECTIONS),
            findings: counter(meter, &FINDINGS),
            audits: counter(meter, &AUDITS),
            kernel_drops: counter(meter, &KERNEL_DROPS),
            events: counter(meter, &EVENTS),
            decode_errors: counter(meter, &DECODE_ERRORS),
            unattributed: counter(meter, &UNATTRIBUTED),
            unknown_layouts: counter(meter, &UNKNOWN_LAYOUTS),
            summarized_signals: counter(meter, &SUMMARIZED_SIGNALS),
            filtered_signals: counter(meter, &FILTERED_SIGNALS),
            join_records: counter(meter, &JOIN_RECORDS),
            watch_restarts: counter(meter, &WATCH_RESTARTS),
            watch_relists: counter(meter, &WATCH_RELISTS),
            malformed_objects: counter(meter, &MALFORMED_OBJECTS),
            objects_applied: counter(meter, &OBJECTS_APPLIED),
            pods: gauge(meter, &PODS),
            exported: counter(meter, &EXPORTED),
            export_failed: counter(meter, &EXPORT_FAILED),
            export_retries: counter(meter, &EXPORT_RETRIES),
            export_dropped: counter(meter, &EXPORT_DROPPED),
            export_queue: gauge(meter, &EXPORT_QUEUE),
            ready: gauge(meter, &READY),
            recovered: gauge(meter, &RECOVERED),
            audits_in_progress: gauge(meter, &AUDITS_IN_PROGRESS),
            journal_lines: counter(meter, &JOURNAL_LINES),
            journal_write_errors: counter(meter, &JOURNAL_WRITE_ERRORS),
            journal_rotations: counter(meter, &JOURNAL_ROTATIONS),
            k8s_events_posted: counter(meter, &K8S_EVENTS_POSTED),
            k8s_events_failed: counter(meter, &K8S_EVENTS_FAILED),
            k8s_events_retries: counter(meter, &K8S_EVENTS_RETRIES),
            k8s_events_dropped: counter(meter, &K8S_EVENTS_DROPPED),
            k8s_events_filtered: counter(meter, &K8S_EVENTS_FILTERED),
            k8s_events_queue: gauge(meter, &K8S_EVENTS_QUEUE),
        }
    }
}

/// The SDK side: provider, reader and instruments for one resource.
struct SdkPipeline {
    provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    instruments: Instruments,
}

impl SdkPipeline {
    fn new(resource: Resource) -> Self {
        let reader = Arc::new(
            ManualReader::builder()
                .with_temporality(Temporality::Cumulative)
                .build(),
        );
        let provider = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(SharedReader(reader.clone()))
            .build();
        let meter = provider.meter_with_scope(super::spans::scope());
        let instruments = Instruments::new(&meter);
        // Export counters exist from the start (at 0), so a dashboard sees
        // them before the first failure.
        for signal in [Signal::Traces, Signal::Metrics] {
            let s = KeyValue::new(keys::EXPORT_SIGNAL, signal.label());
            instruments.exported.add(0, std::slice::from_ref(&s));
            instruments.export_failed.add(0, std::slice::from_ref(&s));
            instruments.export_retries.add(0, std::slice::from_ref(&s));
            for reason in [
                DropReason::QueueFull,
                DropReason::RetriesExhausted,
                DropReason::Shutdown,
            ] {
                instruments.export_dropped.add(
                    0,
                    &[
                        s.clone(),
                        KeyValue::new(keys::EXPORT_REASON, reason.label()),
                    ],
                );
            }
        }
        // The housekeeping signals exist from the start too: with the
        // default signal mask the kernel filters them and they never count.
        for number in crate::event_loop::housekeeping::HOUSEKEEPING_SIGNALS {
            instruments.summarized_signals.add(
                0,
                &[KeyValue::new(
                    keys::SIGNAL_NAME,
                    crate::event::names::signal_name(number),
                )],
            );
        }
        instruments.export_queue.record(0, &[]);
        instruments.ready.record(0, &[]);
        Self {
            provider,
            reader,
            instruments,
        }
    }
}

impl Drop for SdkPipeline {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

struct Inner {
    pipeline: SdkPipeline,
    options: MetricOptions,
    /// Last cumulative value seen per `Stats` series.
    stats_seen: Mutex<HashMap<String, u64>>,
    /// Pods whose startup was already recorded.
    startups: Mutex<SeenSet>,
}

/// The metric registry (cheap to clone; clones share it).
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// The registry for resolved settings: labels, service name, resource
    /// attributes and the node in the resource, fixed for its lifetime.
    pub fn from_config(config: &ExportConfig, resource: &ResourceInfo) -> Self {
        Self {
            inner: Arc::new(Inner {
                pipeline: SdkPipeline::new(resource.resource(config)),
                options: config.metric_options,
                stats_seen: Mutex::new(HashMap::new()),
                startups: Mutex::new(SeenSet::new(super::seen::DEFAULT_PODS_REMEMBERED)),
            }),
        }
    }

    fn pipeline(&self) -> &SdkPipeline {
        &self.inner.pipeline
    }

    /// The instruments.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Instruments) -> R) -> R {
        f(&self.pipeline().instruments)
    }

    pub fn options(&self) -> MetricOptions {
        self.inner.options
    }

    /// `lifecycle.agent.ready` = 1 or 0.
    pub fn set_ready(&self, ready: bool) {
        self.with(|i| i.ready.record(u64::from(ready), &[]));
    }

    pub(crate) fn exported(&self, signal: Signal, items: u64) {
        self.with(|i| {
            i.exported
                .add(items, &[KeyValue::new(keys::EXPORT_SIGNAL, signal.label())])
        });
    }

    pub(crate) fn export_failed(&self, signal: Signal) {
        self.with(|i| {
            i.export_failed
                .add(1, &[KeyValue::new(keys::EXPORT_SIGNAL, signal.label())])
        });
    }

    pub(crate) fn export_retried(&self, signal: Signal) {
        self.with(|i| {
            i.export_retries
                .add(1, &[KeyValue::new(keys::EXPORT_SIGNAL, signal.label())])
        });
    }

    pub(crate) fn dropped(&self, signal: Signal, reason: DropReason, items: u64) {
        if items == 0 {
            return;
        }
        self.with(|i| {
            i.export_dropped.add(
                items,
                &[
                    KeyValue::new(keys::EXPORT_SIGNAL, signal.label()),
                    KeyValue::new(keys::EXPORT_REASON, reason.label()),
                ],
            )
        });
    }

    pub(crate) fn queue_size(&self, spans: usize) {
        self.with(|i| i.export_queue.record(spans as u64, &[]));
    }

    /// Every metric's current (cumulative) value.
    pub fn collect(&self) -> Result<ResourceMetrics, ExportError> {
        let mut rm = ResourceMetrics::default();
        self.pipeline()
            .reader
            .collect(&mut rm)
            .map_err(ExportError::CollectFailed)?;
        Ok(rm)
    }

    /// The metrics in the Prometheus text exposition format 0.0.4 (serve
    /// with [`super::prometheus::CONTENT_TYPE`]).
    pub fn prometheus_text(&self) -> String {
        match self.collect() {
            Ok(rm) => super::prometheus::render(&rm),
            Err(e) => {
                tracing::warn!(error = %e, "cannot collect metrics for /metrics");
                String::new()
            }
        }
    }
}
