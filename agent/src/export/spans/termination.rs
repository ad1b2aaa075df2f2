//! The termination trace of a pod.
//!
//! Root `pod.termination`: t0 (the first kill activity the kernel saw) to
//! the last container exit. One child `container.termination` per
//! container that was running, signalled or exited: from its preStop start
//! (exec hooks), else its stop signal, else its SIGKILL, to its PID 1's
//! exit. Events: `prestop.start` / `prestop.end`, `signal` (every stop
//! signal, with its sender), `sigkill`, `listener.close`, `restart` on the
//! containers; `bypass.window` and `finding` on the root.

use opentelemetry::KeyValue;

use super::{
    AuditTrace, Draft, PodContext, TraceKind, close_trace, ids, is_startup_rule, run_attributes,
    run_of, secs,
};
use crate::{
    audit::{
        bypass::WindowCause,
        termination::{
            ContainerTermination, PreStop, SignalMark, StateAtStart, TerminationAudit, Trigger,
        },
    },
    export::{keys, labels},
};

const KIND: TraceKind = TraceKind::Termination;

/// When the termination began as far as the audit knows, and whether that
/// is t0 itself.
fn root_start(t: &TerminationAudit, first_ns: i64) -> (i64, bool) {
    if let Some(t0) = t.t0 {
        return (t0.ns, false);
    }
    let fallback = t.kubelet_start.unwrap_or(match t.trigger {
        Trigger::Deletion { observed, .. } => observed.ns,
        Trigger::JobCompletion { at } => at.ns,
        Trigger::Unknown { first_activity } => first_activity.ns,
    });
    (fallback.max(first_ns), true)
}

fn signal_attributes(s: &SignalMark) -> Vec<KeyValue> {
    let mut attrs = vec![
        KeyValue::new(keys::SIGNAL_NAME, s.name.clone()),
        KeyValue::new(keys::SIGNAL_SENDER, labels::name_of(&s.sender)),
        KeyValue::new(keys::SIGNAL_SENDER_COMM, s.sender_comm.clone()),
        KeyValue::new(keys::SIGNAL_SENDER_PID, i64::from(s.sender_pid)),
        KeyValue::new(keys::SIGNAL_RESULT, s.result.clone()),
    ];
    if let Some(h) = &s.handler {
        attrs.push(KeyValue::new(keys::SIGNAL_HANDLER, h.clone()));
    }
    attrs
}

/// Whether the container takes part in the termination story.
fn involved(c: &ContainerTermination) -> bool {
    c.state_at_start == StateAtStart::Running
        || c.stop_signal.is_some()
        || c.sigkill.is_some()
        || c.exit.is_some()
        || matches!(c.prestop, PreStop::Exec { .. })
}

fn container_span(
    ctx: &PodContext<'_>,
    t: &TerminationAudit,
    c: &ContainerTermination,
    root_start: i64,
    root_end: i64,
) -> Draft {
    let uid = &ctx.audit.pod.uid;
    let mut d = Draft::new(
        "container.termination",
        ids::span_id(uid, KIND.label(), ctx.audit.first_ns, Some(&c.container)),
        ids::span_id(uid, KIND.label(), ctx.audit.first_ns, None),
    );
    let prestop_start = match &c.prestop {
        PreStop::Exec { start, .. } => Some(start.ns),
        _ => None,
    };
    let start = prestop_start
        .or(c.stop_signal.as_ref().map(|s| s.at.ns))
        .or(c.sigkill.as_ref().map(|s| s.at.ns));
    d.start_ns = start.unwrap_or(root_start);
    d.end_ns = c.exit.map_or(root_end, |x| x.at.ns);
    d.partial = start.is_none() || c.exit.is_none();

    // The run that was stopped: the one whose exit is this exit, else the
    // one alive at t0.
    let reference = t.t0.map_or(root_start, |t0| t0.ns);
    let run = match c.exit {
        Some(x) => run_of(ctx.audit, &c.container, |r| {
            r.end.is_some_and(|e| e == x.at)
        }),
        None => run_of(ctx.audit, &c.container, |r| {
            r.start.is_none_or(|s| s.ns <= reference) && r.end.is_none_or(|e| e.ns > reference)
        }),
    };
    d.attributes = ctx.pod_attributes();
    d.attributes
        .push(KeyValue::new(keys::K8S_CONTAINER_NAME, c.container.clone()));
    d.attributes.extend(run_attributes(run));
    d.attributes.extend([
        KeyValue::new(keys::CONTAINER_KIND, labels::opt_name(c.kind.as_ref())),
        KeyValue::new(keys::SIDECAR_ROLE, labels::opt_name(c.role.as_ref())),
        KeyValue::new(keys::CONTAINER_MAIN, c.main),
        KeyValue::new(
            keys::TERMINATION_STATE_AT_START,
            labels::name_of(&c.state_at_start),
        ),
        KeyValue::new(keys::PRESTOP_KIND, labels::prestop(&c.prestop)),
    ]);
    if let Some(x) = c.exit {
        d.attributes
            .push(KeyValue::new(keys::PROCESS_EXIT_CODE, i64::from(x.code)));
        if let Some(sig) = x.killed_by {
            d.attributes
                .push(KeyValue::new(keys::EXIT_SIGNAL, labels::signal(sig)));
        }
        if let Some(s) = &c.stop_signal {
            d.attributes.push(KeyValue::new(
                keys::TERMINATION_SIGTERM_TO_EXIT_S,
                secs(s.at.ns, x.at.ns),
            ));
        }
    }
    if let Some(g) = c.grace_used {
        d.attributes
            .push(KeyValue::new(keys::TERMINATION_GRACE_USED, g));
    }

    if let PreStop::Exec {
        start,
        end,
        exit_code,
        filename,
    } = &c.prestop
    {
        d.event(
            "prestop.start",
            start.ns,
            vec![KeyValue::new(keys::PRESTOP_PROGRAM, filename.clone())],
        );
        if let Some(end) = end {
            let mut attrs = Vec::new();
            if let Some(code) = exit_code {
                attrs.push(KeyValue::new(keys::PROCESS_EXIT_CODE, i64::from(*code)));
            }
            d.event("prestop.end", end.ns, attrs);
        }
    }
    for s in c.stop_signal.iter().chain(&c.repeated_stop_signals) {
        d.event("signal", s.at.ns, signal_attributes(s));
    }
    if let Some(s) = &c.sigkill {
        d.event("sigkill", s.at.ns, signal_attributes(s));
    }
    if let Some(lane) = ctx.audit.lanes.iter().find(|l| l.container == c.container) {
        for l in &lane.listens {
            if let Some(end) = l.end.filter(|e| e.ns >= reference) {
                d.event(
                    "listener.close",
                    end.ns,
                    vec![KeyValue::new(keys::SERVER_PORT, i64::from(l.port))],
                );
            }
        }
    }
    for r in &c.restarts {
        d.event("restart", r.ns, Vec::new());
    }
    d
}

/// The termination trace, when the audit has a termination.
pub(crate) fn build(ctx: &PodContext<'_>) -> Option<AuditTrace> {
    let audit = ctx.audit;
    let t = audit.termination.as_ref()?;
    let uid = &audit.pod.uid;
    let trace_id = ids::trace_id(uid, KIND.label(), audit.first_ns);

    let (mut start, mut partial) = root_start(t, audit.first_ns);
    let last_exit = t
        .containers
        .iter()
        .filter_map(|c| c.exit.map(|x| x.at.ns))
        .max();
    let running_left = t
        .containers
        .iter()
        .any(|c| c.state_at_start == StateAtStart::Running && c.exit.is_none());
    let end = match last_exit {
        Some(e) if !running_left => e,
        Some(e) => {
            partial = true;
            e.max(audit.last_ns)
        }
        None => {
            partial = true;
            audit.last_ns.max(start)
        }
    };
    let children: Vec<Draft> = t
        .containers
        .iter()
        .filter(|c| involved(c))
        .map(|c| container_span(ctx, t, c, start, end))
        .collect();
    start = children.iter().map(|c| c.start_ns).fold(start, i64::min);
    let end = children.iter().map(|c| c.end_ns).fold(end, i64::max);

    let mut root = Draft::new(
        "pod.termination",
        ids::span_id(uid, KIND.label(), ctx.audit.first_ns, None),
        opentelemetry::trace::SpanId::INVALID,
    );
    root.start_ns = start;
    root.end_ns = end;
    root.partial = partial;
    root.attributes = ctx.root_attributes();
    root.attributes.extend([
        KeyValue::new(keys::TERMINATION_TRIGGER, labels::trigger(&t.trigger)),
        KeyValue::new(keys::TERMINATION_ORDER, labels::name_of(&t.order)),
        KeyValue::new(keys::TERMINATION_GRACE_S, t.grace_s),
        KeyValue::new(keys::TERMINATION_GRACE_SOURCE, t.grace_source.clone()),
        KeyValue::new(
            keys::TERMINATION_EXIT_ORDER,
            opentelemetry::Value::Array(
                t.exit_order
                    .iter()
                    .map(|n| opentelemetry::StringValue::from(n.clone()))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        ),
    ]);
    if let Trigger::Deletion { request_s, .. } = t.trigger {
        root.attributes
            .push(KeyValue::new(keys::TERMINATION_REQUEST_S, request_s));
    }
    if let Some(cause) = &t.t0_cause {
        root.attributes
            .push(KeyValue::new(keys::TERMINATION_T0_CAUSE, cause.clone()));
    }
    if let Some(deadline) = t.deadline {
        root.attributes.push(KeyValue::new(
            keys::TERMINATION_DEADLINE_S,
            secs(start, deadline),
        ));
    }
    if let Some(b) = &audit.bypass {
        root.attributes.extend([
            KeyValue::new(keys::BYPASS_WINDOW_S, b.window_total_s),
            KeyValue::new(keys::BYPASS_WINDOWS, b.windows.len() as i64),
            KeyValue::new(
                keys::BYPASS_REFUSED,
                i64::from(b.in_windows.refused_by_capture),
            ),
            KeyValue::new(
                keys::BYPASS_PLAINTEXT,
                i64::from(b.in_windows.plaintext_bypass),
            ),
        ]);
        for w in b
            .windows
            .iter()
            .filter(|w| w.cause != WindowCause::BeforeProxyStart)
        {
            root.window_event(w);
        }
    }
    let findings: Vec<_> = audit
        .findings
        .iter()
        .filter(|f| !is_startup_rule(f.rule))
        .collect();
    Some(close_trace(
        ctx, KIND, trace_id, root, children, &findings, start,
    ))
}
