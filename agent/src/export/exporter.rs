//! The OTLP exporter handle: `start` spawns the delivery tasks on the
//! current tokio runtime, `submit` queues an audit's spans without ever
//! blocking, `shutdown` flushes within a deadline and reports.

use std::{
    fmt,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use serde::Serialize;
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use super::{
    ExportError, ResourceInfo,
    config::ExportConfig,
    deliver::{self, Shared, add},
    otlp,
    seen::{DEFAULT_PODS_REMEMBERED, SeenSet},
    spans,
    telemetry::{DropReason, Telemetry},
};
use crate::audit::{Completion, PodAudit};

/// What one `submit` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    pub traces: usize,
    pub spans: usize,
    /// Spans dropped to keep the queue bound (older ones or these).
    pub dropped: usize,
}

/// Counts since the exporter started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub spans_submitted: u64,
    pub spans_exported: u64,
    /// All spans given up: queue full + retries exhausted + shutdown.
    pub spans_dropped: u64,
    pub spans_dropped_queue_full: u64,
    pub spans_dropped_retries_exhausted: u64,
    pub spans_dropped_shutdown: u64,
    /// Failed span export requests (every attempt).
    pub span_export_failures: u64,
    pub span_export_retries: u64,
    /// Successful metric export requests.
    pub metric_exports: u64,
    pub metric_points_exported: u64,
    pub metric_points_dropped: u64,
    pub metric_export_failures: u64,
    pub metric_export_retries: u64,
    /// Spans still queued or in flight when the summary was taken.
    pub spans_pending: u64,
}

impl fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = || "off".to_owned();
        writeln!(
            f,
            "traces -> {}: {} span(s) submitted, {} exported, {} dropped (queue full {}, retries exhausted {}, shutdown {}); {} failed request(s), {} retried",
            self.traces_endpoint.clone().unwrap_or_else(off),
            self.spans_submitted,
            self.spans_exported,
            self.spans_dropped,
            self.spans_dropped_queue_full,
            self.spans_dropped_retries_exhausted,
            self.spans_dropped_shutdown,
            self.span_export_failures,
            self.span_export_retries,
        )?;
        write!(
            f,
            "metrics -> {}: {} export(s), {} data point(s) exported, {} dropped; {} failed request(s), {} retried",
            self.metrics_endpoint.clone().unwrap_or_else(off),
            self.metric_exports,
            self.metric_points_exported,
            self.metric_points_dropped,
            self.metric_export_failures,
            self.metric_export_retries,
        )
    }
}

/// Sends audits as spans and the metrics over OTLP.
pub struct Exporter {
    shared: Arc<Shared>,
    traces_on: bool,
    config: ExportConfig,
    startups: Mutex<SeenSet>,
    trace_task: Option<JoinHandle<()>>,
    metric_task: Option<JoinHandle<()>>,
    stop_metrics: watch::Sender<Option<Instant>>,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("traces", &self.config.traces)
            .field("metrics", &self.config.metrics)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Starts the delivery tasks for the configured endpoints on the
    /// current tokio runtime. Without endpoints nothing is spawned and
    /// `submit` does nothing (the metrics stay readable through
    /// `telemetry`). `telemetry` is the registry built from the same
    /// `config` and `resource` ([`Telemetry::from_config`]).
    pub fn from_config(
        config: &ExportConfig,
        resource: &ResourceInfo,
        telemetry: Telemetry,
    ) -> Result<Exporter, ExportError> {
        if config.otlp_enabled() && tokio::runtime::Handle::try_current().is_err() {
            return Err(ExportError::RuntimeMissing);
        }
        let shared = Arc::new(Shared::new(config.queue_spans, telemetry));
        let (stop_metrics, stop_rx) = watch::channel(None);
        let trace_task = match &config.traces {
            Some(endpoint) => {
                let exporter = otlp::span_exporter(endpoint, config, &resource.resource(config))?;
                tracing::info!(endpoint = %endpoint.url, protocol = endpoint.protocol.label(), queue_spans = config.queue_spans, "exporting audit spans over OTLP");
                Some(tokio::spawn(deliver::trace_task(
                    shared.clone(),
                    exporter,
                    config.retry,
                    config.batch_spans,
                    config.timeout,
                )))
            }
            None => None,
        };
        let metric_task = match &config.metrics {
            Some(endpoint) => {
                let exporter = otlp::metric_exporter(endpoint, config)?;
                tracing::info!(endpoint = %endpoint.url, protocol = endpoint.protocol.label(), interval = ?config.metrics_interval, "exporting metrics over OTLP");
                Some(tokio::spawn(deliver::metric_task(
                    shared.clone(),
                    exporter,
                    config.retry,
                    config.metrics_interval,
                    config.timeout,
                    stop_rx,
                )))
            }
            None => None,
        };
        Ok(Exporter {
            traces_on: trace_task.is_some(),
            shared,
            config: config.clone(),
            startups: Mutex::new(SeenSet::new(DEFAULT_PODS_REMEMBERED)),
            trace_task,
            metric_task,
            stop_metrics,
        })
    }

    /// Builds the audit's traces and queues them; never waits. A pod's
    /// startup trace is sent once (from its startup audit, or from its
    /// final audit when there was none): the exporter remembers the last
    /// 16 384 pods whose startup it sent. A partial audit (the agent found
    /// the pod running) sends none: its start was not seen.
    pub fn submit(&self, audit: &PodAudit) -> Submitted {
        if !self.traces_on {
            return Submitted::default();
        }
        let with_startup = audit.startup.is_some()
            && !audit.partial
            && self
                .startups
                .lock()
                .is_ok_and(|mut s| s.insert(&audit.pod.uid));
        self.submit_audit(audit, with_startup)
    }

    /// Like [`Exporter::submit`], with the caller deciding whether the
    /// audit's startup trace is sent (`with_startup`); its termination
    /// trace is sent whenever it has a termination.
    pub fn submit_audit(&self, audit: &PodAudit, with_startup: bool) -> Submitted {
        if !self.traces_on {
            return Submitted::default();
        }
        if audit.completed_by == Completion::StartupComplete && !with_startup {
            return Submitted::default();
        }
        let traces = spans::traces(audit, with_startup);
        let mut out = Submitted::default();
        let mut closed = 0;
        {
            let mut st = self.shared.lock();
            for t in traces {
                out.traces += 1;
                out.spans += t.spans.len();
                if st.closing.is_some() {
                    closed += t.spans.len();
                } else {
                    out.dropped += st.queue.push(t.spans);
                }
            }
            self.shared.telemetry.queue_size(st.queue.len());
            add(&self.shared.counts.spans_submitted, out.spans);
            self.shared.drop_spans(DropReason::QueueFull, out.dropped);
            self.shared.drop_spans(DropReason::Shutdown, closed);
        }
        out.dropped += closed;
        self.shared.wake.notify_one();
        out
    }

    /// Spans queued now.
    pub fn queue_len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Most spans ever queued at once (never above `queue_capacity`).
    pub fn queue_high_water(&self) -> usize {
        self.shared.lock().queue.high_water()
    }

    pub fn queue_capacity(&self) -> usize {
        self.shared.lock().queue.capacity()
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.shared.telemetry
    }

    /// The counts so far.
    pub fn summary(&self) -> ExportSummary {
        let c = &self.shared.counts;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        // Span counts change under the queue lock: read them under it.
        let st = self.shared.lock();
        let (queued, in_flight) = (st.queue.len(), st.in_flight);
        let (qf, re, sd) = (
            get(&c.spans_dropped_queue_full),
            get(&c.spans_dropped_retries),
            get(&c.spans_dropped_shutdown),
        );
        let summary = ExportSummary {
            traces_endpoint: self.config.traces.as_ref().map(|e| e.url.clone()),
            metrics_endpoint: self.config.metrics.as_ref().map(|e| e.url.clone()),
            spans_submitted: get(&c.spans_submitted),
            spans_exported: get(&c.spans_exported),
            spans_dropped: qf + re + sd,
            spans_dropped_queue_full: qf,
            spans_dropped_retries_exhausted: re,
            spans_dropped_shutdown: sd,
            span_export_failures: get(&c.span_failures),
            span_export_retries: get(&c.span_retries),
            metric_exports: get(&c.metric_exports),
            metric_points_exported: get(&c.metric_points_exported),
            metric_points_dropped: get(&c.metric_points_dropped),
            metric_export_failures: get(&c.metric_failures),
            metric_export_retries: get(&c.metric_retries),
            spans_pending: (queued + in_flight) as u64,
        };
        drop(st);
        summary
    }

    /// Flushes within `within`: queued spans first (two thirds of the time
    /// when metrics are exported too), then one last metric export that
    /// carries the final counts. Whatever is left is counted as dropped.
    pub async fn shutdown(mut self, within: Duration) -> ExportSummary {
        let start = Instant::now();
        let end = start + within;
        let trace_end = if self.metric_task.is_some() {
            start + within.mul_f64(2.0 / 3.0)
        } else {
            end
        };
        self.shared.lock().closing = Some(trace_end);
        self.shared.wake.notify_one();
        if let Some(mut task) = self.trace_task.take() {
            let wait = trace_end.saturating_duration_since(Instant::now());
            if tokio::time::timeout(wait, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
                tracing::warn!("span export did not finish within the shutdown deadline");
            }
        }
        self.shared.abandon();
        if let Some(mut task) = self.metric_task.take() {
            let _ = self.stop_metrics.send(Some(end));
            let wait = end.saturating_duration_since(Instant::now()) + Duration::from_millis(200);
            if tokio::time::timeout(wait, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
                tracing::warn!("final metric export did not finish within the shutdown deadline");
            }
        }
        self.summary()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        for task in [self.trace_task.take(), self.metric_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
