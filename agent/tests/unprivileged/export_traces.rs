//! `lifecycle-agent export` sends each recorded termination and startup as
//! a trace to a real OTLP receiver, over gRPC and over HTTP/protobuf: the
//! span tree, the kernel's timestamps (compared with the audit the library
//! computes from the same recording), semantic-convention attributes, and
//! findings as events with their rule ids.

use crate::support::export::*;
use lifecycle_agent::{
    audit::{PodAudit, termination::PreStop},
    export::spans::is_startup_rule,
};
use otlp_receiver::{ReceivedSpan, Receiver, Transport, view};

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// The termination trace of `audit` among `spans` is the audit's story.
fn check_termination(spans: &[ReceivedSpan], audit: &PodAudit, transport: Transport) {
    let t = audit
        .termination
        .as_ref()
        .expect("the fixture has a termination");
    let uid = &audit.pod.uid;
    let roots = spans_named(spans, uid, "pod.termination");
    assert_eq!(roots.len(), 1, "one termination root for {uid}");
    let root = roots[0];
    assert_eq!(root.transport, transport);
    assert!(
        root.span.parent_span_id.is_empty(),
        "the root has no parent"
    );
    assert_eq!(view::attr_str(&root.resource, "k8s.node.name"), Some(NODE));
    assert_eq!(
        view::attr_str(&root.resource, "service.name"),
        Some("lifecycle-agent")
    );
    let a = &root.span.attributes;
    assert_eq!(
        view::attr_str(a, "k8s.namespace.name"),
        Some(audit.pod.namespace.as_str())
    );
    assert_eq!(
        view::attr_str(a, "k8s.pod.name"),
        Some(audit.pod.name.as_str())
    );
    assert_eq!(
        view::attr_str(a, "lifecycle.termination.trigger"),
        Some("deletion")
    );
    assert_eq!(
        view::attr_i64(a, "lifecycle.termination.grace_s"),
        Some(t.grace_s)
    );
    assert_eq!(
        view::attr_str(a, "lifecycle.workload.kind"),
        Some(audit.workload.kind.as_str())
    );

    // Kernel times: t0 to the last exit.
    let t0 = t.t0.expect("t0 measured").ns;
    let last_exit = t
        .containers
        .iter()
        .filter_map(|c| c.exit.map(|x| x.at.ns))
        .max()
        .unwrap();
    assert_eq!(ns(root.span.start_time_unix_nano), t0);
    assert_eq!(ns(root.span.end_time_unix_nano), last_exit);
    assert_eq!(
        view::attr_bool(a, "lifecycle.time.partial"),
        None,
        "measured times are not partial"
    );

    // One child per container, under the root, in the same trace.
    let children = spans_named(spans, uid, "container.termination");
    let involved: Vec<_> = t.containers.iter().filter(|c| c.exit.is_some()).collect();
    assert_eq!(children.len(), involved.len(), "{children:?}");
    for c in involved {
        let span = children
            .iter()
            .find(|s| {
                view::attr_str(&s.span.attributes, "k8s.container.name")
                    == Some(c.container.as_str())
            })
            .unwrap_or_else(|| panic!("a span for {}", c.container));
        assert_eq!(span.span.trace_id, root.span.trace_id);
        assert_eq!(span.span.parent_span_id, root.span.span_id);
        let exit = c.exit.unwrap();
        let start = match &c.prestop {
            PreStop::Exec { start, .. } => start.ns,
            _ => c.stop_signal.as_ref().expect("stop signal").at.ns,
        };
        assert_eq!(ns(span.span.start_time_unix_nano), start, "{}", c.container);
        assert_eq!(
            ns(span.span.end_time_unix_nano),
            exit.at.ns,
            "{}",
            c.container
        );
        let ca = &span.span.attributes;
        assert_eq!(
            view::attr_i64(ca, "process.exit.code"),
            Some(i64::from(exit.code))
        );
        let run = audit
            .lanes
            .iter()
            .find(|l| l.container == c.container)
            .and_then(|l| l.runs.iter().find(|r| r.end == Some(exit.at)))
            .expect("the run that exited");
        assert_eq!(view::attr_i64(ca, "process.pid"), Some(i64::from(run.pid)));
        assert_eq!(
            view::attr_str(ca, "container.id"),
            run.container_id.as_deref()
        );
        assert_eq!(
            view::attr_str(ca, "lifecycle.container.kind"),
            Some(name_of(&c.kind.unwrap()).as_str())
        );
        // Every stop signal is an event at its kernel time, with its sender.
        let signals = events(&span.span, "signal");
        let expected: Vec<_> = c
            .stop_signal
            .iter()
            .chain(&c.repeated_stop_signals)
            .collect();
        assert_eq!(signals.len(), expected.len());
        for (e, s) in signals.iter().zip(expected) {
            assert_eq!(ns(e.time_unix_nano), s.at.ns);
            assert_eq!(
                view::attr_str(&e.attributes, "lifecycle.signal.name"),
                Some(s.name.as_str())
            );
            assert_eq!(
                view::attr_str(&e.attributes, "lifecycle.signal.sender"),
                Some(name_of(&s.sender).as_str())
            );
        }
        assert_eq!(
            events(&span.span, "sigkill").len(),
            usize::from(c.sigkill.is_some())
        );
    }

    // Findings (all but the startup rules) are root events with rule ids.
    let want = count_by(
        audit
            .findings
            .iter()
            .filter(|f| !is_startup_rule(f.rule))
            .map(|f| f.rule.to_string()),
    );
    let got = count_by(events(&root.span, "finding").iter().map(|e| {
        view::attr_str(&e.attributes, "lifecycle.finding.rule")
            .unwrap()
            .to_owned()
    }));
    assert_eq!(got, want);
}

/// The startup trace: a child per container from its first exec.
fn check_startup(spans: &[ReceivedSpan], audit: &PodAudit) {
    let s = audit.startup.as_ref().expect("the fixture has a startup");
    let uid = &audit.pod.uid;
    let roots = spans_named(spans, uid, "pod.startup");
    assert_eq!(roots.len(), 1);
    let root = roots[0];
    assert_eq!(ns(root.span.start_time_unix_nano), s.first_exec.unwrap().ns);
    let children = spans_named(spans, uid, "container.startup");
    let started: Vec<_> = s
        .containers
        .iter()
        .filter(|c| c.first_exec.is_some())
        .collect();
    assert_eq!(children.len(), started.len());
    for c in started {
        let span = children
            .iter()
            .find(|x| {
                view::attr_str(&x.span.attributes, "k8s.container.name")
                    == Some(c.container.as_str())
            })
            .expect("a startup span per container");
        assert_eq!(span.span.parent_span_id, root.span.span_id);
        assert_ne!(
            span.span.trace_id,
            spans_named(spans, uid, "pod.termination")[0].span.trace_id
        );
        assert_eq!(ns(span.span.start_time_unix_nano), c.first_exec.unwrap().ns);
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
        assert!(span.span.end_time_unix_nano <= root.span.end_time_unix_nano);
    }
    for g in &s.gaps {
        let app = children
            .iter()
            .find(|x| {
                view::attr_str(&x.span.attributes, "k8s.container.name") == Some(g.app.as_str())
            })
            .unwrap();
        if let Some(gap) = g.exec_gap_s {
            assert_eq!(
                view::attr_f64(&app.span.attributes, "lifecycle.startup.gap_s"),
                Some(gap)
            );
        }
    }
}

async fn export_both_fixtures(receiver: &Receiver, protocol: &str) {
    for name in [LEGACY, NATIVE] {
        let out = export_cli(
            name,
            &[
                "--otlp-endpoint",
                &receiver.endpoint(),
                "--otlp-protocol",
                protocol,
            ],
        )
        .await;
        let summary = summary_json(&out);
        assert_eq!(summary["export"]["spans_dropped"], 0, "{summary}");
        assert_eq!(
            summary["export"]["spans_exported"],
            summary["export"]["spans_submitted"]
        );
    }
}

fn check_both(receiver: &Receiver, transport: Transport) {
    let spans = receiver.spans();
    for name in [LEGACY, NATIVE] {
        for audit in audits(name) {
            check_termination(&spans, &audit, transport);
            check_startup(&spans, &audit);
        }
    }
    assert!(spans.iter().all(|s| s.transport == transport));
    assert!(spans.iter().all(|s| s.scope == "lifecycle-agent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_and_startup_traces_arrive_over_grpc() {
    let receiver = Receiver::start().await.unwrap();
    export_both_fixtures(&receiver, "grpc").await;
    check_both(&receiver, Transport::Grpc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_and_startup_traces_arrive_over_http_protobuf() {
    let receiver = Receiver::start().await.unwrap();
    export_both_fixtures(&receiver, "http/protobuf").await;
    check_both(&receiver, Transport::Http);
    assert_eq!(receiver.malformed(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_export_carries_the_same_trace_ids() {
    let receiver = Receiver::start().await.unwrap();
    for _ in 0..2 {
        export_cli(
            LEGACY,
            &[
                "--otlp-endpoint",
                &receiver.endpoint(),
                "--otlp-protocol",
                "grpc",
            ],
        )
        .await;
    }
    let spans = receiver.spans();
    let uid = &audits(LEGACY)[0].pod.uid;
    let roots = spans_named(&spans, uid, "pod.termination");
    assert_eq!(roots.len(), 2);
    assert_eq!(hex(&roots[0].span.trace_id), hex(&roots[1].span.trace_id));
    assert_eq!(roots[0].span.span_id, roots[1].span.span_id);
}
