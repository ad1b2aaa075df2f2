//! Pod audits as OpenTelemetry spans: one trace per pod termination and
//! one per pod startup, timed by the kernel's measurements (the recording's
//! wall-clock nanoseconds), never by when they are exported.
//!
//! * [`termination`]: root span from t0 (first kill activity) to the last
//!   container exit; a child per container from its preStop start or stop
//!   signal to its PID 1's exit; events for preStop, every signal (with its
//!   sender), SIGKILL, listener closes, restarts, bypass windows and
//!   findings (rule ids);
//! * [`startup`]: root span over the pod's first execs; a child per
//!   container from its first exec to listening (or started / its exit for
//!   init containers); the startup gaps as attributes and events;
//! * [`ids`]: deterministic trace and span ids from the pod uid.
//!
//! A time the recording does not have (a run that began before it, an
//! exit after it ended) is replaced by the nearest one known and the span
//! or event is marked `lifecycle.time.partial = true`.

pub mod ids;
pub mod startup;
pub mod termination;

use std::{
    borrow::Cow,
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    InstrumentationScope, KeyValue, Value,
    trace::{Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::{keys, labels};
use crate::audit::{Finding, PodAudit, RuleId, Severity, timeline::At};

/// Most events kept on one span; the rest are counted as dropped.
pub const MAX_EVENTS_PER_SPAN: usize = 128;

/// Which story a trace tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceKind {
    Termination,
    Startup,
}

impl TraceKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Termination => "termination",
            Self::Startup => "startup",
        }
    }
}

/// One trace built from an audit: the root span first, then its children.
#[derive(Clone, Debug)]
pub struct AuditTrace {
    pub kind: TraceKind,
    pub trace_id: TraceId,
    pub spans: Vec<SpanData>,
}

/// The traces of one audit: the termination's (when the audit has one)
/// and, when `with_startup`, the startup's. An audit made when the pod
/// became ready (`StartupComplete`) has only a startup trace, with every
/// finding known then: an init container's exit is not a termination.
pub fn traces(audit: &PodAudit, with_startup: bool) -> Vec<AuditTrace> {
    let ctx = PodContext::new(audit);
    let startup_only = audit.completed_by == crate::audit::Completion::StartupComplete;
    let has_termination = audit.termination.is_some() && !startup_only;
    let mut out = Vec::new();
    if (with_startup || startup_only)
        && let Some(t) = startup::build(&ctx, !has_termination)
    {
        out.push(t);
    }
    if has_termination && let Some(t) = termination::build(&ctx) {
        out.push(t);
    }
    out
}

/// Closes a trace: the findings on the root (their count, one event
/// each, the status they give), then the root and its children as spans.
pub(crate) fn close_trace(
    ctx: &PodContext<'_>,
    kind: TraceKind,
    trace_id: TraceId,
    mut root: Draft,
    children: Vec<Draft>,
    findings: &[&Finding],
    fallback_ns: i64,
) -> AuditTrace {
    root.attributes
        .push(KeyValue::new(keys::FINDING_COUNT, findings.len() as i64));
    for f in findings {
        root.events.push(ctx.finding_event(f, fallback_ns));
    }
    root.status_from(findings.iter().copied());
    let scope = scope();
    let mut spans = vec![root.finish(trace_id, &scope)];
    spans.extend(children.into_iter().map(|c| c.finish(trace_id, &scope)));
    AuditTrace {
        kind,
        trace_id,
        spans,
    }
}

/// The instrumentation scope of every span.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("lifecycle-agent")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Wall-clock nanoseconds as a `SystemTime`.
pub fn system_time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// What every span of a pod needs: identity and times of records by seq.
pub(crate) struct PodContext<'a> {
    pub audit: &'a PodAudit,
    times: HashMap<u64, i64>,
}

impl<'a> PodContext<'a> {
    pub fn new(audit: &'a PodAudit) -> Self {
        let mut times = HashMap::new();
        let mut note = |at: &At| {
            times.insert(at.seq, at.ns);
        };
        for lane in &audit.lanes {
            for r in &lane.runs {
                r.start.iter().chain(r.end.iter()).for_each(&mut note);
            }
            for h in &lane.hooks {
                note(&h.start);
                h.end.iter().for_each(&mut note);
            }
            lane.signals.iter().for_each(|s| note(&s.at));
            for l in &lane.listens {
                l.start.iter().chain(l.end.iter()).for_each(&mut note);
            }
        }
        if let Some(b) = &audit.bypass {
            for w in &b.windows {
                for edge in [w.start, w.end] {
                    if let Some(seq) = edge.seq {
                        times.insert(seq, edge.ns);
                    }
                }
            }
            for f in &b.flows {
                times.insert(f.at.seq, f.at.ns);
            }
        }
        Self { audit, times }
    }

    /// `k8s.namespace.name`, `k8s.pod.name`, `k8s.pod.uid`.
    pub fn pod_attributes(&self) -> Vec<KeyValue> {
        let pod = &self.audit.pod;
        let mut out = Vec::with_capacity(3);
        if !pod.namespace.is_empty() {
            out.push(KeyValue::new(
                keys::K8S_NAMESPACE_NAME,
                pod.namespace.clone(),
            ));
        }
        out.push(KeyValue::new(keys::K8S_POD_NAME, pod.name.clone()));
        out.push(KeyValue::new(keys::K8S_POD_UID, pod.uid.clone()));
        out
    }

    /// What a root span says about the pod as a whole.
    pub fn root_attributes(&self) -> Vec<KeyValue> {
        let a = self.audit;
        let mut out = self.pod_attributes();
        if let Some(key) = keys::workload_key(&a.workload.kind) {
            out.push(KeyValue::new(key, a.workload.name.clone()));
        }
        out.extend([
            KeyValue::new(keys::WORKLOAD_KIND, a.workload.kind.clone()),
            KeyValue::new(keys::WORKLOAD_NAME, a.workload.name.clone()),
            KeyValue::new(keys::MESH_MODE, labels::mesh_mode(&a.mesh_mode)),
            KeyValue::new(keys::NATIVE_SIDECARS, a.native_sidecars),
            KeyValue::new(keys::KUBELET_ASSUMED, a.kubelet_assumed.clone()),
            KeyValue::new(keys::AUDIT_COMPLETED_BY, labels::name_of(&a.completed_by)),
            KeyValue::new(keys::AUDIT_PARTIAL, audit_partial(a)),
            KeyValue::new(keys::AUDIT_RECORDS, a.records as i64),
        ]);
        out
    }

    /// When the record `seq` happened, if the audit shows it.
    pub fn time_of(&self, seq: u64) -> Option<i64> {
        self.times.get(&seq).copied()
    }

    /// A finding as a span event, at the time of its first evidence record
    /// that has one (else `fallback_ns`, marked partial).
    pub fn finding_event(&self, f: &Finding, fallback_ns: i64) -> Event {
        let at = f.evidence.iter().find_map(|s| self.time_of(*s));
        let mut attrs = vec![
            KeyValue::new(keys::FINDING_RULE, f.rule.to_string()),
            KeyValue::new(keys::FINDING_KIND, labels::name_of(&f.kind)),
            KeyValue::new(keys::FINDING_SEVERITY, f.severity.to_string()),
            KeyValue::new(keys::FINDING_MESSAGE, f.message.clone()),
            KeyValue::new(
                keys::FINDING_EVIDENCE,
                Value::Array(
                    f.evidence
                        .iter()
                        .take(64)
                        .map(|s| *s as i64)
                        .collect::<Vec<i64>>()
                        .into(),
                ),
            ),
        ];
        if let Some(c) = &f.container {
            attrs.push(KeyValue::new(keys::FINDING_CONTAINER, c.clone()));
        }
        if at.is_none() {
            attrs.push(KeyValue::new(keys::TIME_PARTIAL, true));
        }
        Event::new("finding", system_time(at.unwrap_or(fallback_ns)), attrs, 0)
    }
}

/// The audit misses part of the story: the agent started during it,
/// records were capped, or the input ended first.
pub fn audit_partial(a: &PodAudit) -> bool {
    a.partial || a.dropped_records > 0 || a.completed_by == crate::audit::Completion::EndOfInput
}

/// Startup rules (S1–S4) belong to the startup trace; every other finding
/// to the termination trace.
pub fn is_startup_rule(rule: RuleId) -> bool {
    matches!(rule, RuleId::S1 | RuleId::S2 | RuleId::S3 | RuleId::S4)
}

/// A span before it gets its trace.
pub(crate) struct Draft {
    pub name: &'static str,
    pub span_id: SpanId,
    pub parent: SpanId,
    pub start_ns: i64,
    pub end_ns: i64,
    pub attributes: Vec<KeyValue>,
    pub events: Vec<Event>,
    pub status: Status,
    /// A start or end is not a measured time.
    pub partial: bool,
}

impl Draft {
    pub fn new(name: &'static str, span_id: SpanId, parent: SpanId) -> Self {
        Self {
            name,
            span_id,
            parent,
            start_ns: 0,
            end_ns: 0,
            attributes: Vec::new(),
            events: Vec::new(),
            status: Status::Unset,
            partial: false,
        }
    }

    /// A bypass window as an event at its start.
    pub fn window_event(&mut self, w: &crate::audit::bypass::BypassWindow) {
        self.event(
            "bypass.window",
            w.start.ns,
            vec![
                KeyValue::new(keys::BYPASS_CAUSE, labels::name_of(&w.cause)),
                KeyValue::new(keys::BYPASS_WINDOW_S, w.duration_s),
                KeyValue::new(keys::BYPASS_REFUSED, i64::from(w.counts.refused_by_capture)),
                KeyValue::new(keys::BYPASS_PLAINTEXT, i64::from(w.counts.plaintext_bypass)),
                KeyValue::new(keys::BYPASS_PROXIED, i64::from(w.counts.proxied)),
            ],
        );
    }

    pub fn event(&mut self, name: &'static str, ns: i64, attributes: Vec<KeyValue>) {
        self.events
            .push(Event::new(name, system_time(ns), attributes, 0));
    }

    /// Error status from the most severe finding among `findings`.
    pub fn status_from<'f>(&mut self, findings: impl Iterator<Item = &'f Finding>) {
        let errors: Vec<&Finding> = findings.filter(|f| f.severity == Severity::Error).collect();
        if let Some(first) = errors.first() {
            self.status = Status::error(format!(
                "{} error finding(s); first: {} {}",
                errors.len(),
                first.rule,
                first.message
            ));
        }
    }

    pub fn finish(mut self, trace_id: TraceId, scope: &InstrumentationScope) -> SpanData {
        if self.end_ns < self.start_ns {
            self.end_ns = self.start_ns;
            self.partial = true;
        }
        if self.partial {
            self.attributes
                .push(KeyValue::new(keys::TIME_PARTIAL, true));
        }
        self.events.sort_by_key(|e| e.timestamp);
        let mut events = SpanEvents::default();
        if self.events.len() > MAX_EVENTS_PER_SPAN {
            events.dropped_count = (self.events.len() - MAX_EVENTS_PER_SPAN) as u32;
            self.events.truncate(MAX_EVENTS_PER_SPAN);
        }
        events.events = self.events;
        SpanData {
            span_context: SpanContext::new(
                trace_id,
                self.span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: self.parent,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(self.name),
            start_time: system_time(self.start_ns),
            end_time: system_time(self.end_ns),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: self.status,
            instrumentation_scope: scope.clone(),
        }
    }
}

/// Seconds between two wall-clock nanosecond instants.
pub fn secs(from_ns: i64, to_ns: i64) -> f64 {
    (to_ns - from_ns) as f64 / lifecycle_recording::time::NS_PER_S as f64
}

/// The PID 1 run of `container` that `pick` selects, from the audit's lanes.
pub(crate) fn run_of<'a>(
    audit: &'a PodAudit,
    container: &str,
    pick: impl Fn(&crate::audit::pod::RunSpan) -> bool,
) -> Option<&'a crate::audit::pod::RunSpan> {
    audit
        .lanes
        .iter()
        .find(|l| l.container == container)
        .and_then(|l| l.runs.iter().find(|r| pick(r)))
}

/// `container.id` and `process.pid` of a run.
pub(crate) fn run_attributes(run: Option<&crate::audit::pod::RunSpan>) -> Vec<KeyValue> {
    let mut out = Vec::new();
    if let Some(r) = run {
        if let Some(id) = &r.container_id {
            out.push(KeyValue::new(keys::CONTAINER_ID, id.clone()));
        }
        out.push(KeyValue::new(keys::PROCESS_PID, i64::from(r.pid)));
    }
    out
}

#[cfg(test)]
mod runc_tests;
