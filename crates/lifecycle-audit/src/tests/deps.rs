//! D1: refusals on another container's loopback listener, blamed on the
//! container whose listener was missing.

use serde_json::json;

use super::{one, outcome};
use crate::{
    AuditConfig, FindingKind, Outcome, RuleId,
    testing::{Proc, Script, manifest},
};

const PROXY_IMAGE: &str = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.3";

/// An app and cloud-sql-proxy on 127.0.0.1:5432, both running; the app
/// has queried through the proxy once.
fn with_db_proxy(native: bool) -> (Script, Proc, Proc, String) {
    let proxy = json!({"name": "cloud-sql-proxy", "image": PROXY_IMAGE, "restartPolicy": "Always"});
    let app = json!({"name": "app", "image": "registry.example.com/shop/orders:5"});
    let m = if native {
        manifest(
            json!([proxy]),
            json!([app]),
            json!({"terminationGracePeriodSeconds": 30}),
        )
    } else {
        let mut legacy = proxy.clone();
        legacy.as_object_mut().map(|o| o.remove("restartPolicy"));
        manifest(
            json!([]),
            json!([app, legacy]),
            json!({"terminationGracePeriodSeconds": 30}),
        )
    };
    let mut s = Script::new(m);
    s.at(0.0);
    let p = s.start("cloud-sql-proxy", "/cloud-sql-proxy");
    s.api_running("cloud-sql-proxy");
    let socket = s.listen(&p, "127.0.0.1", 5432, 65532);
    s.at(50.0);
    let a = s.start("app", "/app");
    s.api_running("app");
    s.at(100.0)
        .connect(&a, ("127.0.0.1", 40100), ("127.0.0.1", 5432), 0);
    (s, a, p, socket)
}

#[test]
fn a_legacy_db_proxy_gone_while_the_app_drains_is_blamed() {
    let (mut s, app, proxy, socket) = with_db_proxy(false);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1012.0).listen_stop(&proxy, &socket, "127.0.0.1", 5432);
    s.at(1015.0).killed(&proxy, 15);
    s.at(1500.0).refused(&app, ("127.0.0.1", 5432));
    s.at(2000.0).refused(&app, ("127.0.0.1", 5432));
    s.at(3000.0).exit(&app, 0);
    let audit = s.audit();
    assert_eq!(outcome(&audit, RuleId::D1), Outcome::Violated);
    let f = one(&audit, FindingKind::SidecarGoneBeforeApp);
    assert_eq!(f.container.as_deref(), Some("cloud-sql-proxy"));
    for part in [
        "cloud-sql-proxy was gone while app drained",
        "2 connection(s) from app to 127.0.0.1:5432 refused",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
}

#[test]
fn a_native_db_proxy_outlives_the_app_and_d1_holds() {
    let (mut s, app, proxy, socket) = with_db_proxy(true);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app);
    s.at(1500.0)
        .connect(&app, ("127.0.0.1", 40102), ("127.0.0.1", 5432), 0);
    s.at(2000.0).exit(&app, 0);
    s.at(2010.0).term(&proxy);
    s.at(2012.0).listen_stop(&proxy, &socket, "127.0.0.1", 5432);
    s.at(2015.0).exit(&proxy, 0);
    let audit = s.audit();
    assert_eq!(outcome(&audit, RuleId::D1), Outcome::Held);
    assert!(
        audit.findings.iter().all(|f| f.rule != RuleId::D1),
        "{:#?}",
        audit.findings
    );
}

/// The native db proxy crashes (SIGSEGV) 0.39 s into the termination,
/// and the draining app's next query is refused.
fn crashed_in_termination() -> (Script, Proc, Proc) {
    let (mut s, app, proxy, socket) = with_db_proxy(true);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app);
    s.at(1400.0).listen_stop(&proxy, &socket, "127.0.0.1", 5432);
    s.at(1401.0).killed(&proxy, 11);
    s.at(1500.0).refused(&app, ("127.0.0.1", 5432));
    (s, app, proxy)
}

/// A native sidecar that crashes during the app's drain is not restarted
/// by kubelets before 1.37; 1.37 (KEP-4438) restarts it.
#[test]
fn a_native_sidecar_crashing_in_termination_is_lost() {
    let run = |kubelet: &str| {
        let (mut s, app, _) = crashed_in_termination();
        s.at(2000.0).exit(&app, 0);
        let config = AuditConfig {
            kubelet: kubelet.parse().expect("a version"),
            ..AuditConfig::default()
        };
        s.audit_with(&config)
    };
    let lost = run("1.33");
    assert_eq!(outcome(&lost, RuleId::D1), Outcome::Violated);
    let f = one(&lost, FindingKind::SidecarLostDuringTermination);
    assert!(
        f.message.contains("not restarted before kubelet 1.37"),
        "{}",
        f.message
    );
    let restarting = run("1.37");
    let f = one(&restarting, FindingKind::SidecarLostDuringTermination);
    assert!(
        f.message.contains("a 1.37+ kubelet restarts it"),
        "{}",
        f.message
    );
}

/// Under 1.37 the crashed sidecar comes back before its turn: the refusals
/// are the crash's window, and the kubelet did what KEP-4438 says.
#[test]
fn a_native_sidecar_restarted_in_termination_under_1_37_is_only_a_window() {
    let (mut s, app, _) = crashed_in_termination();
    s.at(1750.0);
    let again = s.start("cloud-sql-proxy", "/cloud-sql-proxy");
    s.listen(&again, "127.0.0.1", 5432, 65532);
    s.at(1800.0)
        .connect(&app, ("127.0.0.1", 40104), ("127.0.0.1", 5432), 0);
    s.at(2000.0).exit(&app, 0);
    s.at(2010.0).term(&again);
    s.at(2020.0).exit(&again, 0);
    let config = AuditConfig {
        kubelet: "1.37".parse().expect("a version"),
        ..AuditConfig::default()
    };
    let audit = s.audit_with(&config);
    assert_eq!(outcome(&audit, RuleId::D1), Outcome::Held);
    assert_eq!(outcome(&audit, RuleId::T6), Outcome::NotApplicable);
    let f = one(&audit, FindingKind::LocalListenerGone);
    for part in [
        "did not listen on 5432 for 0.350 s during termination",
        "a 1.37+ kubelet restarted it (KEP-4438)",
        "1 connection(s) from app to 127.0.0.1:5432 refused",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
}

/// Envoy's connects to the app's port after the app exited are the app's
/// absence, not the mesh's.
#[test]
fn a_sidecars_refused_connects_to_the_apps_port_blame_the_app() {
    let (mut s, proxy, app) = super::running_legacy(30);
    let socket = s.listen(&app, "0.0.0.0", 9080, 0);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0).listen_stop(&app, &socket, "0.0.0.0", 9080);
    s.at(1021.0).exit(&app, 0);
    s.at(1500.0).refused(&proxy, ("127.0.0.1", 9080));
    // Envoy's inbound forward goes to the pod's own IP (the connecting
    // socket's local address, 10.1.0.5 in the script).
    s.at(1600.0).refused(&proxy, ("10.1.0.5", 9080));
    // Another address of the cluster is not the pod's.
    s.at(1700.0).refused(&proxy, ("10.1.0.9", 9080));
    s.at(4000.0).exit(&proxy, 0);
    let audit = s.audit();
    let f = one(&audit, FindingKind::AppGoneBeforeSidecar);
    assert_eq!(f.container.as_deref(), Some("app"));
    assert!(
        f.message.contains("the app was gone, not istio-proxy"),
        "{}",
        f.message
    );
    assert_eq!(
        outcome(&audit, RuleId::D1),
        Outcome::Held,
        "informative, not a violation"
    );
}

/// Refusals before the listener ever opened are the startup race's, not D1's.
#[test]
fn refusals_before_the_first_listen_are_not_judged() {
    let m = manifest(
        json!([]),
        json!([{"name": "app", "image": "shop/app:1"}, {"name": "cloud-sql-proxy", "image": PROXY_IMAGE}]),
        json!({}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    let app = s.start("app", "/app");
    let proxy = s.start("cloud-sql-proxy", "/cloud-sql-proxy");
    s.at(10.0).refused(&app, ("127.0.0.1", 5432));
    s.at(500.0).listen(&proxy, "127.0.0.1", 5432, 65532);
    let audit = s.audit();
    assert!(
        audit.findings.iter().all(|f| f.rule != RuleId::D1),
        "{:#?}",
        audit.findings
    );
}

/// Envoy forwards an inbound request to the app's port before the app
/// opened it: the app not accepting, blamed on the app, not the mesh.
#[test]
fn a_sidecar_refused_before_the_app_listens_blames_the_app() {
    let (mut s, proxy, app) = super::running_legacy(30);
    s.at(100.0).refused(&proxy, ("127.0.0.1", 9080));
    s.at(350.0).refused(&proxy, ("10.1.0.5", 9080));
    s.at(600.0).listen(&app, "0.0.0.0", 9080, 0);
    let audit = s.audit();
    let f = one(&audit, FindingKind::AppNotAccepting);
    assert_eq!(f.container.as_deref(), Some("app"));
    for part in [
        "app was not accepting on 9080 (it listened there only from",
        "2 connection(s) from istio-proxy to port 9080 (loopback and the pod's IP) refused",
        "not istio-proxy or the mesh",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
    assert_eq!(outcome(&audit, RuleId::D1), Outcome::Held);
}

/// A port the app declares but never opens is the app's, from the spec.
#[test]
fn a_declared_port_never_opened_is_the_apps() {
    let m = manifest(
        json!([]),
        json!([
            {"name": "app", "image": "shop/app:1", "ports": [{"containerPort": 9080}]},
            {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0"}
        ]),
        json!({}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    s.start("app", "/app");
    let proxy = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
    s.at(30.0);
    s.listen(&proxy, "0.0.0.0", 15006, 1337);
    s.at(100.0).refused(&proxy, ("127.0.0.1", 9080));
    // A port nobody declares or opens is no container's: not judged.
    s.at(200.0).refused(&proxy, ("127.0.0.1", 9999));
    let audit = s.audit();
    let f = one(&audit, FindingKind::AppNotAccepting);
    assert!(
        f.message
            .contains("it declares containerPort 9080 and never listened on it"),
        "{}",
        f.message
    );
    assert_eq!(
        audit
            .findings
            .iter()
            .filter(|f| f.rule == RuleId::D1)
            .count(),
        1,
        "{:#?}",
        audit.findings
    );
}
