//! Termination order and timing: T1, T2, T4, X1 (also outside a
//! termination), A1, M1, M2.

use serde_json::json;

use super::{
    ORDERED_STOP_HOLDS, assert_held, istio_legacy, istio_native, one, outcome, problems,
    running_legacy, running_native,
};
use crate::{
    FindingKind, Outcome, RuleId, Severity,
    termination::{ApiOrder, Trigger},
    testing::{By, Script, kinds, manifest},
};

#[test]
fn native_order_kept_has_no_findings() {
    let (mut s, proxy, app) = running_native(30);
    s.at(5000.0).delete(30);
    s.at(5050.0).term(&app);
    s.at(5300.0).exit(&app, 0);
    s.at(5350.0).term(&proxy);
    s.at(5360.0).exit(&proxy, 0);
    s.at(7000.0)
        .api_terminated("app", 0)
        .api_terminated("istio-proxy", 0)
        .deleted();
    let audit = s.audit();

    assert!(audit.findings.is_empty(), "{:#?}", audit.findings);
    assert_held(&audit, ORDERED_STOP_HOLDS);
    assert_eq!(outcome(&audit, RuleId::T4), Outcome::NotApplicable);
    let t = audit.termination.as_ref().unwrap();
    assert!(matches!(t.trigger, Trigger::Deletion { .. }));
    assert_eq!(t.grace_s, 30);
    assert_eq!(t.t0.unwrap().ns, crate::testing::BASE_NS + 5_050_000_000);
    assert_eq!(t.exit_order, vec!["app", "istio-proxy"]);
    let app_t = t.container("app").unwrap();
    assert_eq!(
        app_t.stop_signal.as_ref().unwrap().sender.describe(),
        "container runtime"
    );
    assert!((app_t.grace_used.unwrap() - 0.3 / 30.0).abs() < 1e-6);
    assert!(audit.bypass.as_ref().unwrap().windows.is_empty());
}

#[test]
fn sidecar_signalled_while_app_runs_violates_t2() {
    let (mut s, proxy, app) = running_native(30);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app);
    s.at(1014.0).term(&proxy);
    s.at(1020.0).exit(&proxy, 0);
    s.at(1024.0).exit(&app, 0);
    s.at(1500.0)
        .api_terminated("istio-proxy", 0)
        .api_terminated("app", 0);
    let audit = s.audit();

    assert_eq!(outcome(&audit, RuleId::T2), Outcome::Violated);
    let f = one(&audit, FindingKind::SidecarStoppedEarly);
    assert_eq!(
        f.message,
        "sidecar istio-proxy got SIGTERM 0.004 s after app's, while app was still running (T2 violated)"
    );
    assert_eq!(
        (f.severity, f.container.as_deref()),
        (Severity::Error, Some("istio-proxy"))
    );
    assert_eq!(f.evidence.len(), 3, "both signals and the app's exit");
    assert_eq!(outcome(&audit, RuleId::M1), Outcome::Violated);
    // A1: both exits fall in one API second; the kernel orders them.
    let pair = &audit.termination.as_ref().unwrap().exit_pairs[0];
    assert_eq!(pair.api, ApiOrder::SameSecond);
    assert!((pair.kernel_gap_s.unwrap() + 0.004).abs() < 1e-9);
    assert_eq!(outcome(&audit, RuleId::A1), Outcome::Held);
}

#[test]
fn api_alone_cannot_order_exits_in_one_second() {
    let mut s = Script::new(istio_native(true, 30));
    s.at(0.0)
        .api_running("istio-proxy")
        .api_started("istio-proxy");
    s.at(800.0).api_running("app");
    s.at(1000.0).delete(30);
    s.at(1200.0).api_terminated("istio-proxy", 0);
    s.at(1600.0).api_terminated("app", 0);
    let audit = s.audit();

    let t = audit.termination.as_ref().unwrap();
    assert_eq!(t.t0, None, "no kernel activity: t0 unknown");
    assert_eq!(t.exit_pairs[0].api, ApiOrder::SameSecond);
    assert_eq!(t.exit_pairs[0].kernel_gap_s, None);
    assert_eq!(outcome(&audit, RuleId::A1), Outcome::Unknown);
    assert_eq!(outcome(&audit, RuleId::T2), Outcome::Unknown);
    assert!(
        audit.findings.is_empty(),
        "no claims from API seconds: {:#?}",
        audit.findings
    );
}

#[test]
fn sidecars_stop_in_reverse_spec_order() {
    let build = |proxy_first: bool| {
        let m = manifest(
            json!([{"name": "fluent-bit", "image": "fluent/fluent-bit:3", "restartPolicy": "Always"},
                   {"name": "istio-proxy", "image": "istio/proxyv2:1.28", "restartPolicy": "Always"}]),
            json!([{"name": "app", "image": "shop/app:1"}]),
            json!({}),
        );
        let mut s = Script::new(m);
        s.at(0.0);
        let logs = s.start("fluent-bit", "/fluent-bit");
        let proxy = s.start("istio-proxy", "/pilot-agent");
        s.at(10.0).listen(&proxy, "0.0.0.0", 15001, 1337);
        s.at(100.0);
        let app = s.start("app", "/app");
        s.at(1000.0).delete(30);
        s.at(1010.0).term(&app);
        s.at(1100.0).exit(&app, 0);
        let (first, second) = if proxy_first {
            (&proxy, &logs)
        } else {
            (&logs, &proxy)
        };
        s.at(1110.0).term(first);
        s.at(1115.0).exit(first, 0);
        s.at(1120.0).term(second);
        s.at(1125.0).exit(second, 0);
        s.audit()
    };
    let good = build(true);
    assert_eq!(
        outcome(&good, RuleId::T2),
        Outcome::Held,
        "{:#?}",
        good.findings
    );
    let bad = build(false);
    assert_eq!(outcome(&bad, RuleId::T2), Outcome::Violated);
    let f = one(&bad, FindingKind::SidecarStoppedEarly);
    assert_eq!(f.container.as_deref(), Some("fluent-bit"));
    assert!(f.message.contains("before istio-proxy's"), "{}", f.message);
}

#[test]
fn legacy_order_is_reported_not_judged() {
    let (mut s, proxy, app) = running_legacy(30);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app);
    s.at(1011.0).signal(By::Runtime, &proxy, 15, "default");
    s.at(1020.0).killed(&proxy, 15);
    s.at(1800.0).exit(&app, 0);
    let audit = s.audit();

    assert_eq!(outcome(&audit, RuleId::T2), Outcome::NotApplicable);
    let t4 = audit.verdict(RuleId::T4).unwrap();
    assert_eq!(t4.outcome, Outcome::NotJudged);
    assert!(
        t4.note.contains("exit order: istio-proxy, app"),
        "{}",
        t4.note
    );
    let f = one(&audit, FindingKind::LegacySidecarExitedFirst);
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.message.contains("exited 0.780 s before app"),
        "{}",
        f.message
    );
    assert!(problems(&audit).is_empty(), "{:#?}", audit.findings);
}

#[test]
fn stop_signals_must_come_from_the_runtime() {
    let run = |by: By<'_>| {
        let (mut s, proxy, app) = running_legacy(30);
        s.at(1000.0).delete(30);
        s.at(1010.0).signal(by, &app, 15, "default");
        s.at(1011.0).term(&proxy);
        s.at(1015.0).killed(&app, 15).exit(&proxy, 0);
        s.audit()
    };
    let host = run(By::Host("kill"));
    assert_eq!(outcome(&host, RuleId::X1), Outcome::Violated);
    assert!(
        one(&host, FindingKind::UnexpectedSender)
            .message
            .contains("host process \"kill\"")
    );
    assert_eq!(outcome(&run(By::Runtime), RuleId::X1), Outcome::Held);
}

/// Someone's `kill` on the node, with no delete: no termination to judge,
/// but X1 still names the sender, its pid and its parent.
#[test]
fn a_host_kill_outside_any_termination_is_an_unexpected_sender() {
    let (mut s, proxy, _app) = running_legacy(30);
    s.at(1000.0).signal(By::Host("kill"), &proxy, 15, "handler");
    s.at(1500.0).exit(&proxy, 0);
    let audit = s.audit();
    assert!(audit.termination.is_none(), "a kill is not a pod stop");
    assert_eq!(outcome(&audit, RuleId::X1), Outcome::Violated);
    let f = one(&audit, FindingKind::UnexpectedSender);
    assert_eq!(f.container.as_deref(), Some("istio-proxy"));
    for part in [
        "host process \"kill\" (pid ",
        ", parent \"bash\" pid 1)",
        "no pod termination was under way",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
    let quiet = running_legacy(30).0.audit();
    assert_eq!(outcome(&quiet, RuleId::X1), Outcome::NotApplicable);
}

#[test]
fn prestop_and_stop_timing_t1() {
    let run = |late: bool| {
        let m = manifest(
            json!([]),
            json!([{"name": "app", "image": "shop/app:1",
                    "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 1"]}}}},
                   {"name": "worker", "image": "shop/worker:1",
                    "lifecycle": {"preStop": {"exec": {"command": ["/drain"]}}}}]),
            json!({"terminationGracePeriodSeconds": 2}),
        );
        let mut s = Script::new(m);
        s.at(0.0);
        let app = s.start("app", "/app");
        let worker = s.start("worker", "/worker");
        s.at(1000.0).delete(2);
        s.at(1010.0);
        let app_hook = s.hook("app", "/bin/sh");
        s.at(if late { 4200.0 } else { 1020.0 });
        let worker_hook = s.hook("worker", "/drain");
        s.at(if late { 1500.0 } else { 2020.0 });
        s.term(&app);
        s.at(2020.0).exit(&app_hook, 0);
        s.at(2030.0).exit(&app, 0);
        s.at(if late { 4250.0 } else { 1030.0 })
            .exit(&worker_hook, 0);
        s.at(if late { 4300.0 } else { 1040.0 }).term(&worker);
        s.at(if late { 4310.0 } else { 1050.0 }).exit(&worker, 0);
        s.audit()
    };
    let good = run(false);
    assert_eq!(
        outcome(&good, RuleId::T1),
        Outcome::Held,
        "{:#?}",
        good.findings
    );
    let bad = run(true);
    assert_eq!(outcome(&bad, RuleId::T1), Outcome::Violated);
    assert!(
        one(&bad, FindingKind::PreStopLate)
            .message
            .contains("3.190 s after t0")
    );
    assert_eq!(
        one(&bad, FindingKind::StopSignalLate).container.as_deref(),
        Some("worker")
    );
    assert_eq!(
        one(&bad, FindingKind::StopBeforePreStopEnded)
            .container
            .as_deref(),
        Some("app")
    );
}

#[test]
fn legacy_proxy_gone_while_app_still_sends_violates_m1() {
    let (mut s, proxy, app) = running_legacy(30);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0).exit(&proxy, 0);
    s.at(1100.0).refused(&app, ("10.96.0.10", 80));
    s.at(1200.0).exit(&app, 0);
    let audit = s.audit();
    assert_eq!(outcome(&audit, RuleId::M1), Outcome::Violated);
    assert!(
        one(&audit, FindingKind::ProxyGoneBeforeApp)
            .message
            .contains("app opened 1 connection(s) after istio-proxy was gone")
    );
}

/// Istio's real tree: pilot-agent (PID 1) SIGKILLs its child Envoy after
/// the drain and exits a little later. The proxy is gone when Envoy's
/// capture listener closed, not when the agent exited; the agent's SIGKILL
/// of its own child is no sender or SIGKILL finding.
#[test]
fn a_legacy_proxy_is_gone_when_envoys_listener_closes() {
    let mut s = Script::new(istio_legacy(30));
    s.at(0.0);
    let app = s.start("app", "/app");
    s.api_running("app");
    let agent = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
    s.api_running("istio-proxy");
    let envoy = s.at(10.0).child(&agent, "/usr/local/bin/envoy");
    let capture = s.at(30.0).listen(&envoy, "0.0.0.0", 15001, 1337);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&agent);
    s.at(6010.0)
        .signal(By::Proc(&agent), &envoy, 9, "default")
        .listen_stop(&envoy, &capture, "0.0.0.0", 15001)
        .killed(&envoy, 9);
    s.at(6050.0).refused(&app, ("10.96.0.10", 80));
    s.at(6200.0).exit(&agent, 0);
    s.at(9000.0).exit(&app, 0);
    let audit = s.audit();
    let f = one(&audit, FindingKind::ProxyGoneBeforeApp);
    assert!(
        f.message.contains(
            "after istio-proxy was gone (capture listener closed or PID 1 exited) at t0+5.000 s"
        ),
        "{}",
        f.message
    );
    for kind in [
        FindingKind::UnexpectedSender,
        FindingKind::EarlySigkill,
        FindingKind::Sigkilled,
    ] {
        assert!(
            !kinds(&audit).contains(&kind),
            "{kind:?}: {:#?}",
            audit.findings
        );
    }
}

#[test]
fn linkerd_wait_before_exit_m2() {
    let run = |proxy_stop_ms: f64| {
        let mut m = manifest(
            json!([]),
            json!([{"name": "app", "image": "shop/app:1"},
                   {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-25.1.1",
                    "lifecycle": {"preStop": {"sleep": {"seconds": 10}}}}]),
            json!({}),
        );
        m["metadata"]["annotations"] =
            json!({"config.alpha.linkerd.io/proxy-wait-before-exit-seconds": "10"});
        let mut s = Script::new(m);
        s.at(0.0);
        let app = s.start("app", "/app");
        let proxy = s.start("linkerd-proxy", "/linkerd2-proxy");
        s.at(1000.0).delete(30);
        s.at(1010.0).term(&app);
        s.at(1020.0).exit(&app, 0);
        s.at(proxy_stop_ms).term(&proxy);
        s.at(proxy_stop_ms + 5.0).exit(&proxy, 0);
        s.audit()
    };
    let early = run(1110.0);
    assert_eq!(outcome(&early, RuleId::M2), Outcome::Violated);
    assert!(
        one(&early, FindingKind::ProxyStoppedBeforeWait)
            .message
            .contains("t0+0.100 s")
    );
    assert_eq!(outcome(&run(11_010.0), RuleId::M2), Outcome::Held);
}

/// The legacy pod of `legacy_proxy_gone_while_app_still_sends_violates_m1`
/// with the API server's clock `ahead_s` off the node's: the kernel's story
/// is the same, whatever the API's whole seconds say.
fn legacy_stop_with_api_clock(ahead_s: f64) -> crate::PodAudit {
    let (mut s, proxy, app) = running_legacy(30);
    s.api_server_ahead(ahead_s);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0).exit(&proxy, 0);
    s.at(1100.0).refused(&app, ("10.96.0.10", 80));
    s.at(1200.0).exit(&app, 0);
    s.at(1300.0)
        .api_terminated("app", 0)
        .api_terminated("istio-proxy", 0)
        .deleted();
    s.audit()
}

#[test]
fn api_clock_off_by_seconds_keeps_the_kernel_evidence() {
    let base = legacy_stop_with_api_clock(0.0);
    let base_t = base.termination.as_ref().unwrap();
    assert_eq!(base_t.api_clock_offset_s, None);
    for ahead_s in [3.0, -3.0] {
        let audit = legacy_stop_with_api_clock(ahead_s);
        let t = audit.termination.as_ref().unwrap();
        assert_eq!(
            t.t0.unwrap().ns,
            crate::testing::BASE_NS + 1_010_000_000,
            "{ahead_s}"
        );
        for c in ["app", "istio-proxy"] {
            let stop = t.container(c).unwrap().stop_signal.as_ref();
            assert_eq!(stop.map(|s| s.name.as_str()), Some("SIGTERM"), "{c}");
        }
        assert_eq!(kinds(&audit), kinds(&base), "{ahead_s}");
        assert_eq!(outcome(&audit, RuleId::M1), Outcome::Violated);
        let offset = t
            .api_clock_offset_s
            .unwrap_or_else(|| panic!("{ahead_s}: no skew in {t:#?}"));
        assert!(
            (offset - ahead_s).abs() < 0.6,
            "{ahead_s}: measured {offset}"
        );
    }
}

#[test]
fn parallel_stop_signals_within_a_millisecond_name_the_first_container() {
    for (app_ms, cause) in [
        (1010.2, "SIGTERM to app"),
        (1015.0, "SIGTERM to istio-proxy"),
    ] {
        let (mut s, proxy, app) = running_legacy(30);
        s.at(1000.0).delete(30);
        s.at(1010.0).term(&proxy);
        s.at(app_ms).term(&app);
        s.at(1100.0).exit(&proxy, 0).exit(&app, 0);
        let audit = s.audit();
        let t = audit.termination.as_ref().unwrap();
        assert_eq!(t.t0.unwrap().ns, crate::testing::BASE_NS + 1_010_000_000);
        assert_eq!(t.t0_cause.as_deref(), Some(cause), "app at {app_ms} ms");
    }
}
