//! Findings posted as `events.k8s.io/v1` Events by the daemon's posting
//! task, against the test API server over real HTTP: what an Event says,
//! a finding audited twice posted once, repeats counted in a series,
//! refusals counted and not retried, a failing server retried, a server
//! that is down (the queue keeps the newest), budgets, and the stop. The
//! counts add up exactly: every finding is posted, filtered or dropped.

use std::time::{Duration, Instant};

use kube_api_server::TestApiServer;
use lifecycle_agent::{
    api_events::{ApiEvents, DropReason, EventCounts, EventsConfig, PostError, limit::RateLimit},
    audit::{AuditConfig, FindingKind, PodAudit, Severity, audit_records},
    pods::client::make_client_without_retries,
};
use lifecycle_recording::read_recording;
use serde_json::Value;

const NODE: &str = "node-a";

fn fixture_audit() -> PodAudit {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/recordings/legacy-proxy-exits-first.jsonl");
    let mut audits = audit_records(
        read_recording(&path).expect("fixture").0,
        &AuditConfig::default(),
    );
    assert_eq!(audits.len(), 1);
    audits.remove(0)
}

/// The fixture's audit as pod `name` (uid `<name>-uid`).
fn audit_of(name: &str) -> PodAudit {
    let mut a = fixture_audit();
    a.pod.name = name.into();
    a.pod.uid = format!("{name}-uid");
    for f in &mut a.findings {
        f.pod = name.into();
    }
    a
}

fn warnings(a: &PodAudit) -> usize {
    a.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count()
}

struct Rig {
    server: Option<TestApiServer>,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Self {
        let server = TestApiServer::start().await.expect("test API server");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let client = make_client_without_retries(Some(kubeconfig)).await.unwrap();
        Self {
            server: Some(server),
            client,
            _dir: dir,
        }
    }

    fn server(&self) -> &TestApiServer {
        self.server.as_ref().expect("server up")
    }

    fn events(&self, config: EventsConfig) -> ApiEvents {
        ApiEvents::start(self.client.clone(), config)
    }

    /// The stored Events of `ns`, in the events.k8s.io/v1 form.
    fn stored(&self, ns: &str) -> Vec<Value> {
        self.server().events_v1(ns)
    }

    fn writes(&self) -> Vec<(String, u16)> {
        self.server()
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/events") && r.method != "GET")
            .map(|r| (r.method, r.status))
            .collect()
    }
}

fn fast(node: &str) -> EventsConfig {
    EventsConfig {
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        request_timeout: Duration::from_secs(2),
        ..EventsConfig::new(node.into())
    }
}

/// Waits until `done(counts)` or 10 s.
async fn settle(events: &ApiEvents, done: impl Fn(&EventCounts) -> bool) -> EventCounts {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = events.counts();
        if done(&c) || Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

#[tokio::test]
async fn each_warning_becomes_an_event_on_its_pod_and_an_audit_repeated_posts_nothing_more() {
    let rig = Rig::start().await;
    let mut events = rig.events(fast(NODE));
    let audit = audit_of("web-1");
    let want = warnings(&audit);
    assert_eq!(want, 3, "M1, M4, D1 in the fixture");
    events.submit(&audit, now_ns());
    let c = settle(&events, |c| c.created as usize == want).await;
    assert_eq!(c.created as usize, want, "{c:?}");
    assert_eq!(c.filtered_info, 2, "T4 and M3 are info: not posted");

    let stored = rig.stored("shop");
    assert_eq!(stored.len(), want, "{stored:#?}");
    for e in &stored {
        assert_eq!(e["type"], "Warning");
        assert_eq!(e["reportingController"], "lifecycle-agent");
        assert_eq!(e["reportingInstance"], NODE);
        assert_eq!(e["regarding"]["kind"], "Pod");
        assert_eq!(e["regarding"]["name"], "web-1");
        assert_eq!(e["regarding"]["namespace"], "shop");
        assert_eq!(e["regarding"]["uid"], "web-1-uid");
        assert!(
            e["eventTime"].as_str().is_some_and(|t| t.len() == 27),
            "{e}"
        );
        assert!(e["note"].as_str().is_some_and(|n| !n.is_empty()));
    }
    let reasons = |kind: FindingKind| {
        let reason = lifecycle_agent::api_events::draft::reason(kind);
        stored
            .iter()
            .filter(|e| e["reason"] == reason.as_str())
            .cloned()
            .collect::<Vec<_>>()
    };
    let m1 = reasons(FindingKind::ProxyGoneBeforeApp);
    assert_eq!(m1.len(), 1);
    assert_eq!(m1[0]["regarding"]["fieldPath"], "spec.containers{app}");
    assert_eq!(m1[0]["action"], "Terminating");
    let m4 = reasons(FindingKind::RefusedWhileProxyDown);
    assert_eq!(m4.len(), 1);
    assert_eq!(m4[0]["action"], "Connecting");
    assert!(
        m4[0]["regarding"]
            .get("fieldPath")
            .is_none_or(Value::is_null)
    );
    assert_eq!(reasons(FindingKind::SidecarGoneBeforeApp).len(), 1);

    // The same audit again (a startup audit then the final one repeat
    // findings): nothing new is posted.
    let writes = rig.writes().len();
    events.submit(&audit, now_ns());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.writes().len(), writes, "no new request");
    let end = events.shutdown(Duration::from_secs(2)).await;
    assert_eq!(end.created as usize, want);
    assert_eq!(end.dropped_total(), 0);
}

#[tokio::test]
async fn a_repeat_of_the_same_reason_counts_in_the_events_series() {
    let rig = Rig::start().await;
    let mut events = rig.events(fast(NODE));
    let first = audit_of("web-2");
    events.submit(&first, now_ns());
    settle(&events, |c| c.created == 3).await;
    // Another M1 on the same container, later (another message): a repeat.
    let mut again = first.clone();
    again
        .findings
        .retain(|f| f.kind == FindingKind::ProxyGoneBeforeApp);
    again.findings[0].message.push_str(" (again)");
    events.submit(&again, now_ns());
    let c = settle(&events, |c| c.patched == 1).await;
    assert_eq!((c.created, c.patched), (3, 1), "{c:?}");
    let stored = rig.stored("shop");
    assert_eq!(stored.len(), 3, "no new Event");
    let m1 = stored
        .iter()
        .find(|e| e["reason"] == "ProxyGoneBeforeApp")
        .unwrap();
    assert_eq!(m1["series"]["count"], 2, "{m1}");
    assert!(m1["series"]["lastObservedTime"].is_string());
    assert!(
        !m1["note"].as_str().unwrap().ends_with("(again)"),
        "the first note stays"
    );
    let patches = rig
        .writes()
        .into_iter()
        .filter(|(m, s)| m == "PATCH" && *s == 200)
        .count();
    assert_eq!(patches, 1);
}

#[tokio::test]
async fn a_refusal_is_counted_once_and_not_retried_and_posting_carries_on() {
    let rig = Rig::start().await;
    let mut events = rig.events(fast(NODE));
    rig.server().reject_event_writes(403, None);
    let audit = audit_of("web-3");
    events.submit(&audit, now_ns());
    let c = settle(&events, |c| c.dropped_total() == 3).await;
    assert_eq!(c.failed_for(PostError::Forbidden.label()), 3, "{c:?}");
    assert_eq!(c.dropped_for(DropReason::Rejected.label()), 3);
    assert_eq!(c.retries, 0, "a 403 is not retried");
    assert_eq!(rig.writes().len(), 3, "one request per Event");

    // 422 likewise; then the server takes them again.
    rig.server().reject_event_writes(422, Some(1));
    let other = audit_of("web-4");
    events.submit(&other, now_ns());
    let c = settle(&events, |c| c.created == 2).await;
    assert_eq!(c.failed_for(PostError::Invalid.label()), 1, "{c:?}");
    assert_eq!(c.dropped_for(DropReason::Rejected.label()), 4);
    assert_eq!(c.created, 2);
    assert_eq!(rig.stored("shop").len(), 2);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_backoff() {
    let rig = Rig::start().await;
    let mut events = rig.events(fast(NODE));
    rig.server().reject_event_writes(429, Some(2));
    let mut audit = audit_of("web-5");
    audit
        .findings
        .retain(|f| f.kind == FindingKind::ProxyGoneBeforeApp);
    events.submit(&audit, now_ns());
    let c = settle(&events, |c| c.created == 1).await;
    assert_eq!(c.created, 1, "{c:?}");
    assert_eq!(c.failed_for(PostError::TooManyRequests.label()), 2);
    assert_eq!(c.retries, 2);

    rig.server().reject_event_writes(503, None);
    let mut other = audit_of("web-6");
    other
        .findings
        .retain(|f| f.kind == FindingKind::ProxyGoneBeforeApp);
    let mut events_few = rig.events(EventsConfig {
        max_attempts: 3,
        ..fast(NODE)
    });
    events_few.submit(&other, now_ns());
    let c = settle(&events_few, |c| c.dropped_total() == 1).await;
    assert_eq!(c.failed_for(PostError::ServerError.label()), 3, "{c:?}");
    assert_eq!(c.retries, 2);
    assert_eq!(c.dropped_for(DropReason::RetriesExhausted.label()), 1);
    drop(events);
}

#[tokio::test]
async fn while_the_server_is_down_the_queue_keeps_the_newest_and_the_sums_are_exact() {
    let mut rig = Rig::start().await;
    let stopped = rig.server.take().unwrap().shut_down();
    let mut events = rig.events(EventsConfig {
        queue_capacity: 3,
        max_attempts: 1000,
        ..fast(NODE)
    });
    // Ten pods with one warning each; the posting task has not run yet
    // (one-thread runtime), so the queue takes them all at once.
    let mut submitted = 0;
    for n in 0..10 {
        let mut a = audit_of(&format!("down-{n}"));
        a.findings
            .retain(|f| f.kind == FindingKind::ProxyGoneBeforeApp);
        submitted += 1;
        events.submit(&a, now_ns());
    }
    let c = events.counts();
    assert_eq!(c.dropped_for(DropReason::QueueFull.label()), 7, "{c:?}");
    assert_eq!(c.queued, 3);
    // The task tries the oldest kept one against the closed port.
    let c = settle(&events, |c| {
        c.failed_for(PostError::Unreachable.label()) >= 2
    })
    .await;
    assert!(c.failed_for(PostError::Unreachable.label()) >= 2, "{c:?}");
    rig.server = Some(stopped.start_again().await.unwrap());
    let c = settle(&events, |c| c.created == 3).await;
    assert_eq!(c.created, 3, "{c:?}");
    let names: Vec<String> = rig
        .stored("shop")
        .iter()
        .map(|e| e["regarding"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["down-7", "down-8", "down-9"], "the newest kept");
    let end = events.shutdown(Duration::from_secs(2)).await;
    assert_eq!(end.created + end.dropped_total(), submitted);
}

#[tokio::test]
async fn budgets_drop_what_is_over_them_and_the_stop_counts_what_was_left() {
    let mut rig = Rig::start().await;
    let mut events = rig.events(EventsConfig {
        per_pod: RateLimit {
            burst: 2,
            every: Duration::from_secs(3600),
        },
        ..fast(NODE)
    });
    let audit = audit_of("web-7");
    events.submit(&audit, now_ns());
    let c = settle(&events, |c| c.created == 2).await;
    assert_eq!(c.created, 2, "{c:?}");
    assert_eq!(c.dropped_for(DropReason::RateLimitedPod.label()), 1);

    // A node budget of one: the second pod's first Event passes, the rest not.
    let mut node_limited = rig.events(EventsConfig {
        node: RateLimit {
            burst: 1,
            every: Duration::from_secs(3600),
        },
        ..fast(NODE)
    });
    node_limited.submit(&audit_of("web-8"), now_ns());
    let c = settle(&node_limited, |c| c.created == 1).await;
    assert_eq!(
        c.dropped_for(DropReason::RateLimitedNode.label()),
        2,
        "{c:?}"
    );

    // The stop while the server is down: what waits is dropped as shutdown.
    let _stopped = rig.server.take().unwrap().shut_down();
    let mut last = rig.events(EventsConfig {
        max_attempts: 1000,
        ..fast(NODE)
    });
    last.submit(&audit_of("web-9"), now_ns());
    let end = last.shutdown(Duration::from_millis(300)).await;
    assert_eq!(end.created, 0);
    assert_eq!(end.dropped_for(DropReason::Shutdown.label()), 3, "{end:?}");
    drop(events);
}

#[tokio::test]
async fn a_long_message_is_cut_to_what_the_server_accepts() {
    let rig = Rig::start().await;
    let mut events = rig.events(fast(NODE));
    let mut audit = audit_of("web-10");
    audit
        .findings
        .retain(|f| f.kind == FindingKind::ProxyGoneBeforeApp);
    audit.findings[0].message = "ü\u{7}".repeat(1000);
    events.submit(&audit, now_ns());
    let c = settle(&events, |c| c.created + c.dropped_total() == 1).await;
    assert_eq!(c.created, 1, "the server took it: {c:?}");
    let note = rig.stored("shop")[0]["note"].as_str().unwrap().to_owned();
    assert!(note.len() <= 1024, "{} bytes", note.len());
    assert!(note.ends_with('…'));
    assert!(!note.contains('\u{7}'), "control characters replaced");
}
