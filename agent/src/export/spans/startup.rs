//! The startup trace of a pod.
//!
//! Root `pod.startup`: the pod's first container exec to the last child's
//! end. One child `container.startup` per container whose first exec the
//! recording shows: to its exit for init containers, else to when it
//! listened on all its first-listen ports (kernel), else to the API's
//! `started`, `ready` or `running` (the agent's observation time, marked
//! `lifecycle.time.source = api`). The startup gaps (app exec / connect /
//! accept minus the sidecar listening, negative = race) are attributes of
//! the app's span and of the root (the smallest), and one `startup.gap`
//! event per (app, sidecar) pair.

use opentelemetry::{KeyValue, trace::SpanId};

use super::{
    AuditTrace, Draft, PodContext, TraceKind, close_trace, ids, is_startup_rule, run_attributes,
    run_of,
};
use crate::{
    audit::{
        bypass::WindowCause,
        startup::{ContainerStartup, StartupAudit, StartupGap},
    },
    export::{keys, labels},
    pods::ContainerKind,
};

const KIND: TraceKind = TraceKind::Startup;

fn min_gap(gaps: &[&StartupGap], pick: impl Fn(&StartupGap) -> Option<f64>) -> Option<f64> {
    gaps.iter().filter_map(|g| pick(g)).reduce(f64::min)
}

fn container_span(
    ctx: &PodContext<'_>,
    s: &StartupAudit,
    c: &ContainerStartup,
    start: i64,
) -> Draft {
    let uid = &ctx.audit.pod.uid;
    let mut d = Draft::new(
        "container.startup",
        ids::span_id(uid, KIND.label(), ctx.audit.first_ns, Some(&c.container)),
        ids::span_id(uid, KIND.label(), ctx.audit.first_ns, None),
    );
    d.start_ns = start;
    let listening = (!c.listens.is_empty())
        .then(|| {
            c.listens
                .iter()
                .map(|l| l.at.map(|a| a.ns))
                .collect::<Option<Vec<_>>>()
        })
        .flatten()
        .and_then(|v| v.into_iter().max());
    let (end, cause, source) = if c.kind == Some(ContainerKind::Init)
        && let Some(x) = c.first_exit
    {
        (Some(x.at.ns), "exit", "kernel")
    } else if let Some(l) = listening {
        (Some(l), "listening", "kernel")
    } else if let Some(m) = c.started {
        (Some(m.at.ns), "started", "api")
    } else if let Some(m) = c.ready {
        (Some(m.at.ns), "ready", "api")
    } else if let Some(m) = c.running {
        (Some(m.at.ns), "running", "api")
    } else if let Some(x) = c.first_exit {
        (Some(x.at.ns), "exit", "kernel")
    } else {
        (None, "none", "none")
    };
    d.end_ns = end.unwrap_or(start);
    d.partial = end.is_none();

    let run = run_of(ctx.audit, &c.container, |r| {
        r.start.is_some_and(|a| Some(a) == c.first_exec)
    });
    d.attributes = ctx.pod_attributes();
    d.attributes
        .push(KeyValue::new(keys::K8S_CONTAINER_NAME, c.container.clone()));
    d.attributes.extend(run_attributes(run));
    d.attributes.extend([
        KeyValue::new(keys::CONTAINER_KIND, labels::opt_name(c.kind.as_ref())),
        KeyValue::new(keys::SIDECAR_ROLE, labels::opt_name(c.role.as_ref())),
        KeyValue::new(keys::STARTUP_END, cause),
        KeyValue::new(keys::TIME_SOURCE, source),
    ]);
    if let Some(x) = c.first_exit {
        d.attributes
            .push(KeyValue::new(keys::PROCESS_EXIT_CODE, i64::from(x.code)));
    }
    let gaps: Vec<&StartupGap> = s.gaps.iter().filter(|g| g.app == c.container).collect();
    let attr_gaps = [
        (keys::STARTUP_GAP_S, min_gap(&gaps, |g| g.exec_gap_s)),
        (
            keys::STARTUP_CONNECT_GAP_S,
            min_gap(&gaps, |g| g.connect_gap_s),
        ),
        (
            keys::STARTUP_ACCEPT_GAP_S,
            min_gap(&gaps, |g| g.accept_gap_s),
        ),
    ];
    for (key, value) in attr_gaps {
        if let Some(v) = value {
            d.attributes.push(KeyValue::new(key, v));
        }
    }
    for g in &gaps {
        let mut attrs = vec![KeyValue::new(keys::STARTUP_SIDECAR, g.sidecar.clone())];
        for (key, value) in [
            (keys::STARTUP_GAP_S, g.exec_gap_s),
            (keys::STARTUP_CONNECT_GAP_S, g.connect_gap_s),
            (keys::STARTUP_ACCEPT_GAP_S, g.accept_gap_s),
        ] {
            if let Some(v) = value {
                attrs.push(KeyValue::new(key, v));
            }
        }
        let at = g.sidecar_listening.map_or(start, |l| l.ns);
        d.event("startup.gap", at, attrs);
    }
    for l in &c.listens {
        if let Some(at) = l.at {
            d.event(
                "listen",
                at.ns,
                vec![KeyValue::new(keys::SERVER_PORT, i64::from(l.port))],
            );
        }
    }
    for (name, mark) in [("api.started", c.started), ("api.ready", c.ready)] {
        if let Some(m) = mark {
            d.event(name, m.at.ns, vec![KeyValue::new(keys::TIME_SOURCE, "api")]);
        }
    }
    d
}

/// The startup trace, when the recording shows a container start. With
/// `all_findings` every finding goes on it (the audit has no termination
/// trace to carry them), else only the startup rules' (S1–S4).
pub(crate) fn build(ctx: &PodContext<'_>, all_findings: bool) -> Option<AuditTrace> {
    let audit = ctx.audit;
    let s = audit.startup.as_ref()?;
    let uid = &audit.pod.uid;
    let trace_id = ids::trace_id(uid, KIND.label(), audit.first_ns);
    let (first, partial) = match s.first_exec {
        Some(at) => (at.ns, false),
        None => (audit.first_ns, true),
    };
    let children: Vec<Draft> = s
        .containers
        .iter()
        .filter_map(|c| c.first_exec.map(|at| container_span(ctx, s, c, at.ns)))
        .collect();
    let end = children.iter().map(|c| c.end_ns).fold(first, i64::max);

    let mut root = Draft::new(
        "pod.startup",
        ids::span_id(uid, KIND.label(), ctx.audit.first_ns, None),
        SpanId::INVALID,
    );
    root.start_ns = children.iter().map(|c| c.start_ns).fold(first, i64::min);
    root.end_ns = end;
    root.partial = partial || children.iter().any(|c| c.partial);
    root.attributes = ctx.root_attributes();
    let gaps: Vec<&StartupGap> = s.gaps.iter().collect();
    for (key, value) in [
        (keys::STARTUP_GAP_S, min_gap(&gaps, |g| g.exec_gap_s)),
        (
            keys::STARTUP_CONNECT_GAP_S,
            min_gap(&gaps, |g| g.connect_gap_s),
        ),
        (
            keys::STARTUP_ACCEPT_GAP_S,
            min_gap(&gaps, |g| g.accept_gap_s),
        ),
    ] {
        if let Some(v) = value {
            root.attributes.push(KeyValue::new(key, v));
        }
    }
    if let Some(b) = &audit.bypass {
        for w in b
            .windows
            .iter()
            .filter(|w| all_findings || w.cause == WindowCause::BeforeProxyStart)
        {
            root.window_event(w);
        }
    }
    let findings: Vec<_> = audit
        .findings
        .iter()
        .filter(|f| all_findings || is_startup_rule(f.rule))
        .collect();
    let fallback_ns = root.start_ns;
    Some(close_trace(
        ctx,
        KIND,
        trace_id,
        root,
        children,
        &findings,
        fallback_ns,
    ))
}
