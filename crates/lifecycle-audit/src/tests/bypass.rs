//! mTLS-bypass windows and traffic classes (M3, M4).

use serde_json::json;

use super::{istio_legacy, istio_native, one, outcome};
use crate::{
    FindingKind, Outcome, RuleId, Severity,
    bypass::{WindowCause, traffic::FlowClass},
    testing::{Proc, Script},
};

fn legacy_running() -> (Script, Proc, Proc, String) {
    let mut s = Script::new(istio_legacy(30));
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.at(30.0);
    let listener = s.listen(&proxy, "0.0.0.0", 15001, 1337);
    s.at(50.0);
    let app = s.start("app", "/app");
    s.at(100.0);
    s.connect(&app, ("10.1.0.5", 40000), ("10.96.0.10", 80), 0);
    s.accept(&proxy, ("10.1.0.5", 15001), ("10.1.0.5", 40000), 1337);
    (s, proxy, app, listener)
}

#[test]
fn refused_connects_after_the_proxy_exited_are_fail_closed() {
    let (mut s, proxy, app, listener) = legacy_running();
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0)
        .listen_stop(&proxy, &listener, "0.0.0.0", 15001);
    s.exit(&proxy, 0);
    for ms in [1100.0, 1200.0, 1300.0] {
        s.at(ms).refused(&app, ("10.96.0.10", 80));
    }
    s.at(1400.0).exit(&app, 0);
    let audit = s.audit();

    let bypass = audit.bypass.as_ref().unwrap();
    assert_eq!(bypass.windows.len(), 1, "{:#?}", bypass.windows);
    let w = &bypass.windows[0];
    assert_eq!(w.cause, WindowCause::AfterProxyExit);
    assert!((w.duration_s - 0.38).abs() < 1e-9);
    assert_eq!(w.counts.refused_by_capture, 3);
    assert_eq!(
        (bypass.total.proxied, bypass.total.plaintext_bypass),
        (1, 0)
    );
    let f = one(&audit, FindingKind::RefusedWhileProxyDown);
    assert_eq!(f.rule, RuleId::M4);
    assert!(f.message.starts_with("3 app connection(s) refused by the capture while istio-proxy was down (after the proxy exited)"));
    assert_eq!(f.evidence.len(), 7, "window start and 3 x (start, failed)");
    assert_eq!(outcome(&audit, RuleId::M3), Outcome::Held);
    assert_eq!(outcome(&audit, RuleId::M4), Outcome::Held);
    let window = one(&audit, FindingKind::BypassWindow);
    assert_eq!(window.severity, Severity::Info);
}

/// The proxy crashes at 1000 ms; its capture listener is closed at
/// 1007 ms (the kernel reports the exit before it closes the files). The
/// app connects at `connect_ms`, established without a proxy accept.
fn connect_while_the_proxy_dies(connect_ms: f64) -> crate::PodAudit {
    let (mut s, proxy, app, listener) = legacy_running();
    s.at(1000.0).killed(&proxy, 6);
    s.at(1007.0)
        .listen_stop(&proxy, &listener, "0.0.0.0", 15001);
    s.at(connect_ms)
        .connect(&app, ("10.1.0.5", 40009), ("10.96.0.10", 80), 0);
    s.at(2000.0).condition("Ready", false);
    s.audit()
}

#[test]
fn handshake_with_the_dead_proxys_listener_is_not_plaintext() {
    let audit = connect_while_the_proxy_dies(1005.0);
    let bypass = audit.bypass.as_ref().unwrap();
    let flow = bypass.flows.last().unwrap();
    assert_eq!(flow.class, FlowClass::Other, "{}", flow.reason);
    assert!(
        flow.reason
            .contains("capture listener after the proxy exited")
    );
    assert_eq!(outcome(&audit, RuleId::M3), Outcome::Held);
    assert!(
        !audit
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::PlaintextBypass),
        "{:#?}",
        audit.findings
    );
    // Once the listener is gone, an established connection without the
    // proxy did leave the pod (no redirect in place).
    let after = connect_while_the_proxy_dies(1100.0);
    assert_eq!(outcome(&after, RuleId::M3), Outcome::Violated);
    one(&after, FindingKind::PlaintextBypass);
}

#[test]
fn egress_no_proxy_accepted_is_plaintext_bypass() {
    let (mut s, _proxy, app, _) = legacy_running();
    s.at(500.0)
        .connect(&app, ("10.1.0.5", 40001), ("10.96.0.11", 443), 0);
    let audit = s.audit();
    assert_eq!(outcome(&audit, RuleId::M3), Outcome::Violated);
    let f = one(&audit, FindingKind::PlaintextBypass);
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("10.1.0.5:40001 -> 10.96.0.11:443"),
        "{}",
        f.message
    );
    assert_eq!(audit.bypass.as_ref().unwrap().total.proxied, 1);
}

#[test]
fn excluded_ports_and_the_proxy_uid_are_honoured() {
    let mut m = istio_legacy(30);
    m["metadata"]["annotations"] = json!({"traffic.sidecar.istio.io/excludeOutboundPorts": "5432"});
    let mut s = Script::new(m);
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.listen(&proxy, "0.0.0.0", 15001, 1337);
    // The proxy's own upstream connection is not app traffic.
    s.connect(&proxy, ("10.1.0.5", 50000), ("10.96.0.10", 80), 1337);
    s.at(50.0);
    let app = s.start("app", "/app");
    s.at(100.0)
        .connect(&app, ("10.1.0.5", 40002), ("10.0.0.9", 5432), 0);
    let audit = s.audit();
    let bypass = audit.bypass.as_ref().unwrap();
    assert_eq!(bypass.flows.len(), 1);
    assert_eq!(bypass.flows[0].class, FlowClass::Excluded);
    assert_eq!(outcome(&audit, RuleId::M3), Outcome::Held);

    s.at(200.0)
        .connect(&app, ("10.1.0.5", 40003), ("10.96.0.12", 80), 1337);
    let as_proxy_uid = s.audit();
    let f = one(&as_proxy_uid, FindingKind::PlaintextBypass);
    assert!(f.message.contains("proxy UID 1337"), "{}", f.message);
}

#[test]
fn proxy_crash_and_restart_opens_a_window() {
    let mut s = Script::new(istio_native(true, 30));
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.at(10.0);
    let socket = s.listen(&proxy, "0.0.0.0", 15001, 1337);
    s.at(100.0);
    s.start("app", "/app");
    s.at(2000.0).listen_stop(&proxy, &socket, "0.0.0.0", 15001);
    s.exit(&proxy, 1);
    s.at(2300.0);
    let again = s.start("istio-proxy", "/pilot-agent");
    s.at(2400.0).listen(&again, "0.0.0.0", 15001, 1337);
    s.at(3000.0).condition("Ready", true);
    let audit = s.audit();
    let windows = &audit.bypass.as_ref().unwrap().windows;
    assert_eq!(windows.len(), 1, "{windows:#?}");
    assert_eq!(windows[0].cause, WindowCause::ProxyRestart);
    assert!((windows[0].duration_s - 0.4).abs() < 1e-9);
}

#[test]
fn inbound_connections_proxied_or_not() {
    let mut s = Script::new(istio_native(true, 30));
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.listen(&proxy, "0.0.0.0", 15001, 1337);
    s.listen(&proxy, "0.0.0.0", 15006, 1337);
    s.at(100.0);
    let app = s.start("app", "/app");
    s.listen(&app, "0.0.0.0", 8080, 0);
    s.at(200.0)
        .connect(&proxy, ("127.0.0.6", 50000), ("10.1.0.5", 8080), 1337);
    s.accept(&app, ("10.1.0.5", 8080), ("127.0.0.6", 50000), 0);
    s.at(300.0)
        .accept(&app, ("10.1.0.5", 8080), ("10.2.0.9", 1234), 0);
    let audit = s.audit();
    let classes: Vec<FlowClass> = audit
        .bypass
        .as_ref()
        .unwrap()
        .flows
        .iter()
        .map(|f| f.class)
        .collect();
    assert_eq!(
        classes,
        vec![FlowClass::Proxied, FlowClass::PlaintextBypass]
    );
    assert!(
        one(&audit, FindingKind::PlaintextBypass)
            .message
            .contains("accepted without the proxy")
    );
}

/// The proxy closes its listener and the app exits microseconds later (the
/// app's last request told the proxy to quit): the window is measured, but
/// an empty one that short is no finding; 20 ms with no flow still is.
#[test]
fn an_empty_window_of_two_exits_racing_is_measured_not_reported() {
    let run = |gap_ms: f64| {
        let mut s = Script::new(istio_legacy(30));
        s.at(0.0);
        let app = s.start("app", "/app");
        let proxy = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
        let socket = s.listen(&proxy, "0.0.0.0", 15001, 1337);
        s.at(3000.0).listen_stop(&proxy, &socket, "0.0.0.0", 15001);
        s.exit(&proxy, 0);
        s.at(3000.0 + gap_ms).exit(&app, 0);
        s.audit()
    };
    let racing = run(0.05);
    let windows = &racing.bypass.as_ref().unwrap().windows;
    assert_eq!(windows.len(), 1, "{windows:#?}");
    assert!(
        racing.findings.iter().all(|f| f.rule != RuleId::M3),
        "{:#?}",
        racing.findings
    );
    let longer = run(20.0);
    assert!(
        longer
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::BypassWindow),
        "{:#?}",
        longer.findings
    );
}
