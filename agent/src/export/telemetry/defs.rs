//! Every metric the agent exposes: OpenTelemetry name, instrument, unit,
//! labels and meaning. The Prometheus name is derived from these
//! ([`super::super::prometheus::family_name`]); README lists them all.

use crate::export::keys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instrument {
    Counter,
    Histogram,
    Gauge,
}

#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    /// OpenTelemetry name (OTLP).
    pub name: &'static str,
    pub instrument: Instrument,
    /// UCUM unit as OTLP carries it (`s`, `1`, `{span}`).
    pub unit: &'static str,
    pub help: &'static str,
    /// Attribute keys (Prometheus labels with `.` as `_`). Audit metrics
    /// also take `k8s.pod.name` (and container metrics
    /// `k8s.container.name`) with `--metrics-pod-labels`.
    pub labels: &'static [&'static str],
    /// Histogram bucket bounds.
    pub buckets: &'static [f64],
}

const WORKLOAD: [&str; 3] = [
    keys::K8S_NAMESPACE_NAME,
    keys::WORKLOAD_KIND,
    keys::WORKLOAD_NAME,
];
const CONTAINER: [&str; 5] = [
    WORKLOAD[0],
    WORKLOAD[1],
    WORKLOAD[2],
    keys::CONTAINER_KIND,
    keys::SIDECAR_ROLE,
];

const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const FRACTION: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1];
/// Gaps are negative when the app ran before its sidecar served.
const SIGNED_SECONDS: &[f64] = &[
    -10.0, -1.0, -0.1, -0.01, -0.001, 0.0, 0.001, 0.01, 0.1, 1.0, 10.0, 60.0,
];

const fn counter(
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricDef {
    MetricDef {
        name,
        instrument: Instrument::Counter,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
) -> MetricDef {
    MetricDef {
        name,
        instrument: Instrument::Histogram,
        unit,
        help,
        labels,
        buckets,
    }
}

const fn gauge(
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricDef {
    MetricDef {
        name,
        instrument: Instrument::Gauge,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

// Audits.
pub const SIGTERM_TO_EXIT: MetricDef = histogram(
    "lifecycle.termination.sigterm_to_exit",
    "s",
    "Time from a container's stop signal (SIGTERM unless the spec says otherwise) to its PID 1's exit, kernel times",
    &CONTAINER,
    SECONDS,
);
pub const GRACE_USED: MetricDef = histogram(
    "lifecycle.termination.grace_used",
    "1",
    "Fraction of the grace period a container used: (exit - kubelet start) / (deadline - kubelet start)",
    &CONTAINER,
    FRACTION,
);
pub const SIGKILLS: MetricDef = counter(
    "lifecycle.termination.sigkills",
    "{signal}",
    "SIGKILLs sent to a container's PID 1 during a termination",
    &CONTAINER,
);
pub const STARTUP_GAP: MetricDef = histogram(
    "lifecycle.startup.gap",
    "s",
    "App first exec / first connect / first accept minus its sidecar listening (negative: the app ran before the sidecar served)",
    &[
        WORKLOAD[0],
        WORKLOAD[1],
        WORKLOAD[2],
        keys::STARTUP_GAP_KIND,
        keys::CONTAINER_KIND,
        keys::SIDECAR_ROLE,
    ],
    SIGNED_SECONDS,
);
pub const BYPASS_WINDOW: MetricDef = histogram(
    "lifecycle.bypass.window",
    "s",
    "Length of each window in which app containers ran while the mesh proxy did not listen on its capture port",
    &[
        WORKLOAD[0],
        WORKLOAD[1],
        WORKLOAD[2],
        keys::MESH_MODE,
        keys::BYPASS_CAUSE,
    ],
    SECONDS,
);
pub const BYPASS_CONNECTIONS: MetricDef = counter(
    "lifecycle.bypass.connections",
    "{connection}",
    "App connections inside bypass windows by class (refused_by_capture, plaintext_bypass, proxied, excluded, local, other)",
    &[
        WORKLOAD[0],
        WORKLOAD[1],
        WORKLOAD[2],
        keys::MESH_MODE,
        keys::FLOW_CLASS,
    ],
);
pub const FINDINGS: MetricDef = counter(
    "lifecycle.findings",
    "{finding}",
    "Audit findings by lifecycle rule, kind and severity",
    &[
        WORKLOAD[0],
        WORKLOAD[1],
        WORKLOAD[2],
        keys::FINDING_RULE,
        keys::FINDING_KIND,
        keys::FINDING_SEVERITY,
    ],
);
pub const AUDITS: MetricDef = counter(
    "lifecycle.audits",
    "{audit}",
    "Pod audits produced, by why they were produced (terminated, startup_complete, job_stuck, end_of_input)",
    &[
        WORKLOAD[0],
        WORKLOAD[1],
        WORKLOAD[2],
        keys::AUDIT_COMPLETED_BY,
        keys::AUDIT_PARTIAL,
    ],
);

// Self-telemetry.
pub const KERNEL_DROPS: MetricDef = counter(
    "lifecycle.agent.kernel.dropped_events",
    "{event}",
    "Events the probes could not write to the full ring buffer, by kind",
    &[keys::EVENT_KIND],
);
pub const EVENTS: MetricDef = counter(
    "lifecycle.agent.events",
    "{event}",
    "Kernel events decoded, by kind",
    &[keys::EVENT_KIND],
);
pub const DECODE_ERRORS: MetricDef = counter(
    "lifecycle.agent.decode_errors",
    "{record}",
    "Ring-buffer records that could not be decoded, by reason",
    &[keys::ERROR_REASON],
);
pub const UNATTRIBUTED: MetricDef = counter(
    "lifecycle.agent.unattributed_events",
    "{event}",
    "Events whose process or socket cgroup could not be resolved",
    &[],
);
pub const SUMMARIZED_SIGNALS: MetricDef = counter(
    "lifecycle.agent.summarized_signals",
    "{signal}",
    "Housekeeping signals processes sent their own threads (Go's SIGURG preemption, glibc's SIGCANCEL and SIGSETXID), counted into signal_summary records instead of recorded one by one, by signal",
    &[keys::SIGNAL_NAME],
);
pub const FILTERED_SIGNALS: MetricDef = counter(
    "lifecycle.agent.kernel.filtered_signals",
    "{signal}",
    "Signals of watched cgroups outside the signal mask (--signals), counted in the kernel instead of recorded, by signal and event kind (signal_generate, signal_deliver)",
    &[keys::SIGNAL_NAME, keys::EVENT_KIND],
);
pub const UNKNOWN_LAYOUTS: MetricDef = counter(
    "lifecycle.agent.unknown_cgroup_layouts",
    "{cgroup}",
    "Cgroups below a kubepods root whose path layout is not recognised",
    &[],
);
pub const JOIN_RECORDS: MetricDef = counter(
    "lifecycle.agent.join.records",
    "{record}",
    "Records of the join with the pod model by outcome (held, attributed_late, expired_unattributed, expired_likely_sandbox, unknown_pod_not_held)",
    &[keys::JOIN_OUTCOME],
);
pub const WATCH_RESTARTS: MetricDef = counter(
    "lifecycle.agent.pod_watch.restarts",
    "{restart}",
    "Pod watch errors; each one restarts the watch with backoff",
    &[],
);
pub const WATCH_RELISTS: MetricDef = counter(
    "lifecycle.agent.pod_watch.relists",
    "{list}",
    "Full (re-)lists of the node's pods",
    &[],
);
pub const MALFORMED_OBJECTS: MetricDef = counter(
    "lifecycle.agent.pod_watch.malformed_objects",
    "{object}",
    "Pod objects skipped because they did not decode",
    &[],
);
pub const OBJECTS_APPLIED: MetricDef = counter(
    "lifecycle.agent.pod_watch.objects_applied",
    "{object}",
    "Pod objects applied to the pod store (added or modified)",
    &[],
);
pub const PODS: MetricDef = gauge(
    "lifecycle.agent.pods",
    "{pod}",
    "Pods in the pod store (live, deleted and kept for late events)",
    &[keys::POD_STATE],
);
pub const EXPORTED: MetricDef = counter(
    "lifecycle.agent.export.exported",
    "{item}",
    "Items the OTLP receiver accepted: spans (signal=traces) or metric data points (signal=metrics)",
    &[keys::EXPORT_SIGNAL],
);
pub const EXPORT_FAILED: MetricDef = counter(
    "lifecycle.agent.export.failed",
    "{request}",
    "OTLP export requests that failed (each attempt)",
    &[keys::EXPORT_SIGNAL],
);
pub const EXPORT_RETRIES: MetricDef = counter(
    "lifecycle.agent.export.retries",
    "{request}",
    "OTLP export requests retried after a failure",
    &[keys::EXPORT_SIGNAL],
);
pub const EXPORT_DROPPED: MetricDef = counter(
    "lifecycle.agent.export.dropped",
    "{item}",
    "Spans or metric data points never delivered, by reason (queue_full, retries_exhausted, shutdown)",
    &[keys::EXPORT_SIGNAL, keys::EXPORT_REASON],
);
pub const EXPORT_QUEUE: MetricDef = gauge(
    "lifecycle.agent.export.queue_size",
    "{span}",
    "Spans waiting in the export queue",
    &[],
);
pub const READY: MetricDef = gauge(
    "lifecycle.agent.ready",
    "",
    "1 once the agent is ready (probes attached, pod store synced), else 0",
    &[],
);

pub const RECOVERED: MetricDef = gauge(
    "lifecycle.agent.recovered_processes",
    "{process}",
    "Container processes found in /proc when the agent started (restart recovery)",
    &[],
);
pub const AUDITS_IN_PROGRESS: MetricDef = gauge(
    "lifecycle.agent.audits_in_progress",
    "{pod}",
    "Pods with a live audit under way",
    &[],
);
pub const JOURNAL_LINES: MetricDef = counter(
    "lifecycle.agent.journal.lines",
    "{line}",
    "Lines written to the recording journal",
    &[],
);
pub const JOURNAL_WRITE_ERRORS: MetricDef = counter(
    "lifecycle.agent.journal.write_errors",
    "{line}",
    "Journal lines lost to failed writes",
    &[],
);
pub const JOURNAL_ROTATIONS: MetricDef = counter(
    "lifecycle.agent.journal.rotations",
    "{file}",
    "Journal files rotated",
    &[],
);

pub const K8S_EVENTS_POSTED: MetricDef = counter(
    "lifecycle.agent.k8s_events.posted",
    "{event}",
    "Kubernetes Events the API server accepted: created (verb=create) or a repeat added to a series (verb=patch)",
    &[keys::K8S_EVENT_VERB],
);
pub const K8S_EVENTS_FAILED: MetricDef = counter(
    "lifecycle.agent.k8s_events.failed",
    "{request}",
    "Failed attempts to post a Kubernetes Event, by error (forbidden, invalid, too_many_requests, server_error, unreachable, ...)",
    &[keys::K8S_EVENT_ERROR],
);
pub const K8S_EVENTS_RETRIES: MetricDef = counter(
    "lifecycle.agent.k8s_events.retries",
    "{request}",
    "Attempts to post a Kubernetes Event made again after a retryable failure",
    &[],
);
pub const K8S_EVENTS_DROPPED: MetricDef = counter(
    "lifecycle.agent.k8s_events.dropped",
    "{event}",
    "Kubernetes Events never posted, by reason (queue_full, rate_limited_pod, rate_limited_node, rejected, retries_exhausted, shutdown, no_pod)",
    &[keys::K8S_EVENT_DROP_REASON],
);
pub const K8S_EVENTS_FILTERED: MetricDef = counter(
    "lifecycle.agent.k8s_events.filtered",
    "{finding}",
    "Info findings not posted as Events (Normal Events are off: --k8s-events-info)",
    &[],
);
pub const K8S_EVENTS_QUEUE: MetricDef = gauge(
    "lifecycle.agent.k8s_events.queue_size",
    "{event}",
    "Kubernetes Events waiting to be posted",
    &[],
);

/// Every metric, in documentation order.
pub const ALL: &[MetricDef] = &[
    SIGTERM_TO_EXIT,
    GRACE_USED,
    SIGKILLS,
    STARTUP_GAP,
    BYPASS_WINDOW,
    BYPASS_CONNECTIONS,
    FINDINGS,
    AUDITS,
    KERNEL_DROPS,
    EVENTS,
    DECODE_ERRORS,
    UNATTRIBUTED,
    SUMMARIZED_SIGNALS,
    FILTERED_SIGNALS,
    UNKNOWN_LAYOUTS,
    JOIN_RECORDS,
    WATCH_RESTARTS,
    WATCH_RELISTS,
    MALFORMED_OBJECTS,
    OBJECTS_APPLIED,
    PODS,
    EXPORTED,
    EXPORT_FAILED,
    EXPORT_RETRIES,
    EXPORT_DROPPED,
    EXPORT_QUEUE,
    READY,
    RECOVERED,
    AUDITS_IN_PROGRESS,
    JOURNAL_LINES,
    JOURNAL_WRITE_ERRORS,
    JOURNAL_ROTATIONS,
    K8S_EVENTS_POSTED,
    K8S_EVENTS_FAILED,
    K8S_EVENTS_RETRIES,
    K8S_EVENTS_DROPPED,
    K8S_EVENTS_FILTERED,
    K8S_EVENTS_QUEUE,
];
