//! Delivery: the tasks that send queued spans and periodic metrics, with
//! retries and exponential backoff, and the shared counters.
//!
//! Spans: `submit` pushes traces into a bounded [`TraceQueue`] (a short
//! lock, never an await) and wakes the trace task, which takes a batch
//! (whole traces up to `batch_spans`) and sends it; a failed request is
//! retried after `initial * 2^(n-1)` (capped at `max_delay`) up to
//! `attempts` times, then its spans are dropped. While a batch is retried
//! new traces keep queueing, oldest dropped first when full, so memory
//! stays at the queue bound plus one batch.
//!
//! Metrics: every interval the metric task collects the cumulative values
//! and sends them, retrying within the interval; a collection that could
//! not be sent is dropped (the next one carries the same cumulative totals).

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use opentelemetry_sdk::{
    metrics::{
        data::{AggregatedMetrics, MetricData, ResourceMetrics},
        exporter::PushMetricExporter,
    },
    trace::{SpanData, SpanExporter},
};
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};

use super::{
    config::RetryConfig,
    queue::TraceQueue,
    telemetry::{DropReason, Signal, Telemetry},
};

/// Counters kept next to the Telemetry ones, for the summary.
#[derive(Debug, Default)]
pub struct Counts {
    pub spans_submitted: AtomicU64,
    pub spans_exported: AtomicU64,
    pub spans_dropped_queue_full: AtomicU64,
    pub spans_dropped_retries: AtomicU64,
    pub spans_dropped_shutdown: AtomicU64,
    pub span_failures: AtomicU64,
    pub span_retries: AtomicU64,
    pub metric_exports: AtomicU64,
    pub metric_points_exported: AtomicU64,
    pub metric_points_dropped: AtomicU64,
    pub metric_failures: AtomicU64,
    pub metric_retries: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

pub struct QueueState {
    pub queue: TraceQueue<SpanData>,
    /// Spans taken by the trace task and not yet counted.
    pub in_flight: usize,
    /// Set by shutdown: no new spans, drain until `deadline`.
    pub closing: Option<Instant>,
}

/// What the exporter handle and its tasks share.
pub struct Shared {
    pub state: Mutex<QueueState>,
    pub wake: Notify,
    pub telemetry: Telemetry,
    pub counts: Counts,
}

impl Shared {
    pub fn new(capacity: usize, telemetry: Telemetry) -> Self {
        Self {
            state: Mutex::new(QueueState {
                queue: TraceQueue::new(capacity),
                in_flight: 0,
                closing: None,
            }),
            wake: Notify::new(),
            telemetry,
            counts: Counts::default(),
        }
    }

    /// The queue state; a poisoned lock is taken over (the state stays
    /// consistent: every change is a single step).
    pub fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts dropped spans (callers hold the queue lock, so the counts and
    /// the queue agree for [`super::Exporter::summary`]).
    pub fn drop_spans(&self, reason: DropReason, n: usize) {
        if n == 0 {
            return;
        }
        let counter = match reason {
            DropReason::QueueFull => &self.counts.spans_dropped_queue_full,
            DropReason::RetriesExhausted => &self.counts.spans_dropped_retries,
            DropReason::Shutdown => &self.counts.spans_dropped_shutdown,
        };
        add(counter, n);
        self.telemetry.dropped(Signal::Traces, reason, n as u64);
    }

    /// Counts what is still queued or in flight as dropped at shutdown.
    pub fn abandon(&self) {
        let mut st = self.lock();
        let n = st.queue.clear() + std::mem::take(&mut st.in_flight);
        self.drop_spans(DropReason::Shutdown, n);
        self.telemetry.queue_size(0);
    }
}

/// Sends queued spans until shutdown drained the queue.
pub async fn trace_task<E: SpanExporter>(
    shared: Arc<Shared>,
    exporter: E,
    retry: RetryConfig,
    batch_spans: usize,
    request_timeout: Duration,
) {
    loop {
        let (batch, closing) = {
            let mut st = shared.lock();
            let batch = st.queue.take(batch_spans);
            st.in_flight = batch.len();
            shared.telemetry.queue_size(st.queue.len());
            (batch, st.closing)
        };
        if batch.is_empty() {
            if closing.is_some() {
                break;
            }
            shared.wake.notified().await;
            continue;
        }
        let n = batch.len();
        let mut attempt = 0u32;
        loop {
            let outcome = tokio::time::timeout(
                request_timeout + Duration::from_secs(1),
                exporter.export(batch.clone()),
            )
            .await;
            match outcome {
                Ok(Ok(())) => {
                    // Counted under the lock, so a summary never sees the
                    // spans neither in flight nor exported.
                    let mut st = shared.lock();
                    st.in_flight = 0;
                    add(&shared.counts.spans_exported, n);
                    shared.telemetry.exported(Signal::Traces, n as u64);
                    break;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, spans = n, attempt, "span export failed"),
                Err(_) => tracing::debug!(spans = n, attempt, "span export timed out"),
            }
            add(&shared.counts.span_failures, 1);
            shared.telemetry.export_failed(Signal::Traces);
            let delay = retry.delay(attempt + 1);
            let closing = shared.lock().closing;
            let past_deadline = closing.is_some_and(|d| Instant::now() + delay >= d);
            if attempt >= retry.attempts || past_deadline {
                let reason = if past_deadline {
                    DropReason::Shutdown
                } else {
                    DropReason::RetriesExhausted
                };
                tracing::warn!(
                    spans = n,
                    attempts = attempt + 1,
                    reason = reason.label(),
                    "spans dropped after failed exports"
                );
                let mut st = shared.lock();
                st.in_flight = 0;
                shared.drop_spans(reason, n);
                break;
            }
            attempt += 1;
            add(&shared.counts.span_retries, 1);
            shared.telemetry.export_retried(Signal::Traces);
            tokio::time::sleep(delay).await;
        }
    }
    shared.telemetry.queue_size(0);
}

fn points_of<T>(data: &MetricData<T>) -> usize {
    match data {
        MetricData::Gauge(g) => g.data_points().count(),
        MetricData::Sum(s) => s.data_points().count(),
        MetricData::Histogram(h) => h.data_points().count(),
        MetricData::ExponentialHistogram(e) => e.data_points().count(),
    }
}

/// Data points in a collection.
pub fn data_points(rm: &ResourceMetrics) -> usize {
    rm.scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => points_of(d),
            AggregatedMetrics::U64(d) => points_of(d),
            AggregatedMetrics::I64(d) => points_of(d),
        })
        .sum()
}

/// Collects and sends the metrics once, retrying until `deadline`.
pub async fn export_metrics_once<E: PushMetricExporter>(
    shared: &Shared,
    exporter: &E,
    retry: RetryConfig,
    request_timeout: Duration,
    deadline: Instant,
) {
    let rm = match shared.telemetry.collect() {
        Ok(rm) => rm,
        Err(e) => {
            tracing::warn!(error = %e, "cannot collect metrics");
            return;
        }
    };
    let n = data_points(&rm);
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(
            request_timeout.min(left.max(Duration::from_millis(50))),
            exporter.export(&rm),
        )
        .await;
        match outcome {
            Ok(Ok(())) => {
                add(&shared.counts.metric_exports, 1);
                add(&shared.counts.metric_points_exported, n);
                shared.telemetry.exported(Signal::Metrics, n as u64);
                return;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, points = n, attempt, "metric export failed"),
            Err(_) => tracing::debug!(points = n, attempt, "metric export timed out"),
        }
        add(&shared.counts.metric_failures, 1);
        shared.telemetry.export_failed(Signal::Metrics);
        let delay = retry.delay(attempt + 1);
        if attempt >= retry.attempts || Instant::now() + delay >= deadline {
            tracing::warn!(
                points = n,
                attempts = attempt + 1,
                "metric collection dropped after failed exports"
            );
            add(&shared.counts.metric_points_dropped, n);
            shared
                .telemetry
                .dropped(Signal::Metrics, DropReason::RetriesExhausted, n as u64);
            return;
        }
        attempt += 1;
        add(&shared.counts.metric_retries, 1);
        shared.telemetry.export_retried(Signal::Metrics);
        tokio::time::sleep(delay).await;
    }
}

/// Sends the metrics every `interval` until `stop`; then once more,
/// within the shutdown deadline it is given.
pub async fn metric_task<E: PushMetricExporter>(
    shared: Arc<Shared>,
    exporter: E,
    retry: RetryConfig,
    interval: Duration,
    request_timeout: Duration,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopped = tokio::select! {
            _ = ticker.tick() => false,
            _ = stop.wait_for(Option::is_some) => true,
        };
        if stopped {
            break;
        }
        let deadline = Instant::now() + interval;
        // A retry in progress does not hold back the final export.
        let stopped = tokio::select! {
            _ = export_metrics_once(&shared, &exporter, retry, request_timeout, deadline) => false,
            _ = stop.wait_for(Option::is_some) => true,
        };
        if stopped {
            break;
        }
    }
    // `None`: the exporter went away without a shutdown.
    let final_deadline = *stop.borrow();
    if let Some(deadline) = final_deadline {
        export_metrics_once(&shared, &exporter, retry, request_timeout, deadline).await;
    }
    let _ = exporter.shutdown();
}
