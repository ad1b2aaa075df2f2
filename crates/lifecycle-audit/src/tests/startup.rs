//! Startup rules S1–S4, the startup race and its gaps.

use serde_json::json;

use super::{istio_native, one, outcome};
use crate::{
    FindingKind, Outcome, RuleId, Severity,
    startup::ApiCompare,
    testing::{Script, manifest},
};

fn with_inits(b_ms: f64, app_ms: f64) -> crate::PodAudit {
    let m = manifest(
        json!([{"name": "init-a", "image": "shop/migrate:1"}, {"name": "init-b", "image": "shop/seed:1"}]),
        json!([{"name": "app", "image": "shop/app:1"}]),
        json!({}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    let a = s.start("init-a", "/migrate");
    s.at(b_ms);
    let b = s.start("init-b", "/seed");
    s.at(100.0).exit(&a, 0);
    s.at(200.0).exit(&b, 0);
    s.at(app_ms);
    s.start("app", "/app");
    s.audit()
}

#[test]
fn init_containers_one_at_a_time_s1_and_mains_after_them_s3() {
    let good = with_inits(150.0, 300.0);
    assert_eq!(outcome(&good, RuleId::S1), Outcome::Held);
    assert_eq!(outcome(&good, RuleId::S3), Outcome::Held);
    assert!(good.findings.is_empty(), "{:#?}", good.findings);

    let overlapping = with_inits(50.0, 300.0);
    assert_eq!(outcome(&overlapping, RuleId::S1), Outcome::Violated);
    assert_eq!(
        one(&overlapping, FindingKind::InitOutOfOrder).message,
        "init-b started 0.050 s before init container init-a completed (S1)"
    );

    let early_main = with_inits(150.0, 180.0);
    assert_eq!(outcome(&early_main, RuleId::S3), Outcome::Violated);
    let f = one(&early_main, FindingKind::MainBeforeInitialized);
    assert_eq!(f.container.as_deref(), Some("app"));
    assert_eq!(f.evidence.len(), 2);
}

fn native(probe: bool, app_ms: f64, connect_ms: f64) -> crate::PodAudit {
    let mut s = Script::new(istio_native(probe, 30));
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
    s.api_running("istio-proxy");
    s.at(50.0).api_started("istio-proxy");
    s.at(app_ms);
    let app = s.start("app", "/app");
    s.at(connect_ms.min(500.0));
    if connect_ms < 500.0 {
        s.refused(&app, ("10.96.0.10", 80));
    }
    s.at(500.0);
    for port in [15021, 15001, 15006] {
        s.listen(&proxy, "0.0.0.0", port, 1337);
    }
    s.at(1200.0).api_ready("istio-proxy");
    s.at(connect_ms.max(600.0));
    s.connect(&app, ("10.1.0.5", 40000), ("10.96.0.10", 80), 0);
    s.accept(&proxy, ("10.1.0.5", 15001), ("10.1.0.5", 40000), 1337);
    s.audit()
}

#[test]
fn app_started_before_the_startup_probe_could_pass_violates_s2() {
    let early = native(true, 100.0, 650.0);
    assert_eq!(outcome(&early, RuleId::S2), Outcome::Violated);
    let f = one(&early, FindingKind::StartedBeforeSidecar);
    assert!(
        f.message.contains("startupProbe port 15021"),
        "{}",
        f.message
    );
    assert_eq!(f.severity, Severity::Error);

    let after = native(true, 600.0, 650.0);
    assert_eq!(outcome(&after, RuleId::S2), Outcome::Held);
    assert!(after.findings.is_empty(), "{:#?}", after.findings);
}

#[test]
fn startup_race_without_probe_has_negative_gaps() {
    let race = native(false, 100.0, 150.0);
    assert_eq!(
        outcome(&race, RuleId::S2),
        Outcome::Held,
        "the kubelet kept S2"
    );
    let startup = race.startup.as_ref().unwrap();
    let gap = &startup.gaps[0];
    assert_eq!(
        (gap.app.as_str(), gap.sidecar.as_str()),
        ("app", "istio-proxy")
    );
    assert_eq!(gap.ports, vec![15001, 15006]);
    assert!((gap.exec_gap_s.unwrap() + 0.4).abs() < 1e-9);
    assert!((gap.connect_gap_s.unwrap() + 0.35).abs() < 1e-9);
    let f = one(&race, FindingKind::StartupRace);
    assert_eq!(
        f.message,
        "app connected 0.350 s before istio-proxy listened on 15001, 15006 (startup race; the sidecar has no startupProbe)"
    );
    assert_eq!(f.rule, RuleId::S2);
    // The refused connect fell in the window before the proxy listened.
    let bypass = race.bypass.as_ref().unwrap();
    assert_eq!(bypass.windows.len(), 1);
    assert_eq!(bypass.windows[0].counts.refused_by_capture, 1);

    let calm = native(false, 600.0, 650.0);
    let gap = &calm.startup.as_ref().unwrap().gaps[0];
    assert!(gap.exec_gap_s.unwrap() > 0.0 && gap.connect_gap_s.unwrap() > 0.0);
    assert!(calm.findings.is_empty(), "{:#?}", calm.findings);
}

#[test]
fn app_exec_against_ready_is_judged_in_whole_seconds() {
    let same = native(false, 600.0, 650.0);
    // ready at API second 1; the app exec'd in second 0.
    assert_eq!(
        same.startup.as_ref().unwrap().gaps[0].exec_vs_ready,
        ApiCompare::Before
    );
    let mut s = Script::new(istio_native(false, 30));
    s.at(0.0);
    s.start("istio-proxy", "/pilot-agent");
    s.at(1200.0).api_ready("istio-proxy");
    s.at(1900.0);
    s.start("app", "/app");
    let audit = s.audit();
    assert_eq!(
        audit.startup.as_ref().unwrap().gaps[0].exec_vs_ready,
        ApiCompare::SameSecond,
        "1.2 s and 1.9 s are one API second: the API cannot order them"
    );
}

fn legacy_hold(app_ms: f64) -> crate::PodAudit {
    let m = manifest(
        json!([]),
        json!([{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0",
                "lifecycle": {"postStart": {"exec": {"command": ["pilot-agent", "wait"]}}}},
               {"name": "app", "image": "shop/app:1"}]),
        json!({}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.at(200.0).listen(&proxy, "0.0.0.0", 15001, 1337);
    s.at(app_ms);
    s.start("app", "/app");
    s.audit()
}

#[test]
fn hold_application_until_proxy_starts_s4() {
    let early = legacy_hold(100.0);
    assert_eq!(outcome(&early, RuleId::S4), Outcome::Violated);
    assert!(
        one(&early, FindingKind::StartedBeforeProxyReady)
            .message
            .contains("0.100 s before istio-proxy listened")
    );
    assert_eq!(outcome(&legacy_hold(300.0), RuleId::S4), Outcome::Held);
}
