//! Local dependencies (D1): an app's connections to a sidecar's loopback
//! listener after the sidecar closed it, blamed on the sidecar; and the
//! native form, where the sidecar outlives the app.

use lifecycle_audit::{FindingKind, RuleId};

use crate::{
    Played, assert_before,
    common::{play, recording::boot},
};

/// The app's refused connects to 127.0.0.1:`port`, with the D1 finding's
/// count checked against them.
fn refusals_blamed_on(p: &Played, pod: &str, app: &str, sidecar: &str, port: u16) -> Vec<u64> {
    let refused: Vec<u64> = p
        .rec
        .refused(pod, app)
        .into_iter()
        .filter(|r| r["remote_port"] == port && r["remote_addr"] == "127.0.0.1")
        .map(boot)
        .collect();
    assert!(!refused.is_empty(), "the app's connects to {port} refused");
    let f = p
        .audit_of(pod)
        .findings
        .iter()
        .find(|f| f.rule == RuleId::D1)
        .expect("the D1 finding");
    assert_eq!(f.container.as_deref(), Some(sidecar));
    let count = format!(
        "{} connection(s) from {app} to 127.0.0.1:{port} refused",
        refused.len()
    );
    assert!(f.message.contains(&count), "{count}: {}", f.message);
    // Every refusal came after the sidecar's listener closed, while the app ran.
    let closed = p
        .rec
        .sockets(pod, sidecar, "listen_stop")
        .filter(|r| r["local_port"] == port)
        .map(boot)
        .min()
        .expect("the listener closed");
    let app_exit = boot(p.kernel_exit(pod, app, 0));
    for at in &refused {
        assert_before(closed, *at, "listener closed before the refusal");
        assert_before(*at, app_exit, "refused while the app ran");
    }
    refused
}

#[test]
fn cloud_sql_proxy_closes_at_sigterm_and_the_draining_app_is_refused() {
    let p = play("cloud-sql-proxy-legacy-sigterm");
    let pod = "orders-6b8d0f2a4c-c3v4b";
    let refused = refusals_blamed_on(&p, pod, "orders", "cloud-sql-proxy", 5432);
    assert!(refused[0] > p.t0(pod), "refused only after t0");
    let exit = p.kernel_exit(pod, "cloud-sql-proxy", 0);
    assert_eq!(exit["container_exit_code"], 143, "{exit}");
    let f = p.finding(pod, FindingKind::SidecarGoneBeforeApp);
    assert!(
        f.message
            .contains("cloud-sql-proxy was gone while orders drained"),
        "{}",
        f.message
    );
}

#[test]
fn fluent_bit_pauses_its_inputs_and_the_apps_final_logs_are_lost() {
    let p = play("fluent-bit-legacy-final-logs");
    let pod = "payments-4e6a8c0e2a-f5g6h";
    refusals_blamed_on(&p, pod, "payments", "fluent-bit", 24224);
    let f = p.finding(pod, FindingKind::SidecarGoneBeforeApp);
    assert!(
        f.message
            .contains("log shipper fluent-bit gone before the app: final logs lost"),
        "{}",
        f.message
    );
    // Its Grace: Fluent Bit itself outlived the app by about 2 s.
    assert_before(
        boot(p.kernel_exit(pod, "payments", 0)),
        boot(p.kernel_exit(pod, "fluent-bit", 0)),
        "the shipper exits after its Grace, after the app",
    );
    assert!(!p.events(pod, "fluent-bit", "inputs_paused").is_empty());
}

#[test]
fn native_fluent_bit_takes_every_final_log_line() {
    let p = play("fluent-bit-native-final-logs");
    let pod = "payments-8c0e2a4e6a-j7k8l";
    let refused = p
        .rec
        .refused(pod, "payments")
        .into_iter()
        .filter(|r| r["remote_port"] == 24224)
        .count();
    assert_eq!(refused, 0);
    let last_sent = p
        .rec
        .sockets(pod, "payments", "connect_established")
        .filter(|r| r["remote_port"] == 24224)
        .map(boot)
        .max()
        .expect("logs sent");
    assert!(
        last_sent > p.t0(pod),
        "the draining app's logs were accepted"
    );
}

/// The lost sidecar's finding, with its refusals checked.
fn lost_sidecar(p: &Played, pod: &str) -> String {
    refusals_blamed_on(p, pod, "orders", "cloud-sql-proxy", 5432);
    assert_eq!(p.pids(pod, "cloud-sql-proxy").len(), 1, "never restarted");
    assert!(
        !p.has_kernel_signal(pod, "cloud-sql-proxy", 15),
        "gone before its turn to be stopped"
    );
    let proxy_exit = boot(p.kernel_exit(pod, "cloud-sql-proxy", 0));
    assert_before(p.t0(pod), proxy_exit, "lost during the termination");
    assert_before(
        proxy_exit,
        boot(p.kernel_exit(pod, "orders", 0)),
        "before the app",
    );
    let f = p.finding(pod, FindingKind::SidecarLostDuringTermination);
    assert!(
        f.message.contains("not restarted before kubelet 1.37"),
        "{}",
        f.message
    );
    f.message.clone()
}

#[test]
fn a_native_sidecar_quit_by_its_own_prestop_is_lost_during_termination() {
    let p = play("native-sidecar-prestop-quits");
    let pod = "orders-2a4c6e8a0c-n1m2q";
    lost_sidecar(&p, pod);
    let exit = p.kernel_exit(pod, "cloud-sql-proxy", 0);
    assert_eq!(exit["container_exit_code"], 0, "quit cleanly: {exit}");
}

#[test]
fn a_native_sidecar_crashing_during_termination_is_not_restarted() {
    let p = play("native-sidecar-crash-in-termination");
    let pod = "orders-4c6e8a0c2a-r3s4t";
    lost_sidecar(&p, pod);
    let exit = p.kernel_exit(pod, "cloud-sql-proxy", 0);
    assert!(
        exit["killed_by_signal"].is_number(),
        "died of a signal: {exit}"
    );
}

#[test]
fn kubelet_1_37_restarts_the_crashed_sidecar_before_its_turn() {
    let options = node_sim::RunOptions {
        kubelet: Some(node_sim::KubeletVersion::parse("1.37").expect("version")),
        ..node_sim::RunOptions::default()
    };
    let p = crate::common::play_with(
        crate::common::load("native-sidecar-crash-in-termination"),
        options,
    );
    let pod = "orders-4c6e8a0c2a-r3s4t";
    let t0 = p.t0(pod);
    let crash = boot(p.kernel_exit(pod, "cloud-sql-proxy", 0));
    assert_before(t0, crash, "the crash came during the termination");
    let again = boot(p.kernel_exec(pod, "cloud-sql-proxy", 1));
    assert_before(crash, again, "started again after the crash");
    let app_exit = boot(p.kernel_exit(pod, "orders", 0));
    assert_before(again, app_exit, "back before the app exited");
    // Its turn comes after the app's exit, and it is the new run that the
    // runtime stops.
    let term = p.kernel_signal(pod, "cloud-sql-proxy", 15);
    assert_before(app_exit, term, "SIGTERM in its turn");
    assert_eq!(
        p.kernel_exit(pod, "cloud-sql-proxy", 1)["container_exit_code"],
        0
    );
    // The app's queries after the restart went through.
    let refused_after = p
        .rec
        .refused(pod, "orders")
        .into_iter()
        .filter(|r| boot(r) > again + p.second_ns())
        .count();
    assert_eq!(refused_after, 0, "no refusal once the proxy was back");
    let f = p.finding(pod, FindingKind::LocalListenerGone);
    assert!(
        f.message
            .contains("a 1.37+ kubelet restarted it (KEP-4438)"),
        "{}",
        f.message
    );
    assert_eq!(
        p.audit_of(pod).verdict(RuleId::T6).map(|v| v.outcome),
        Some(lifecycle_audit::Outcome::NotApplicable)
    );
}

/// Envoy's upstream connects to `port` (loopback or the pod's IP) that
/// the kernel refused, by time.
fn envoy_refusals(p: &Played, pod: &str, port: u16) -> Vec<u64> {
    let mut at: Vec<u64> = p
        .rec
        .refused(pod, "istio-proxy")
        .into_iter()
        .filter(|r| r["remote_port"] == port)
        .map(boot)
        .collect();
    at.sort_unstable();
    at
}

/// The callers' requests that failed (Envoy answered 503) and that went
/// through (200), as the caller outside the pod logged them.
fn inbound_outcomes(p: &Played) -> (usize, usize) {
    let requests = p.events("cluster", "callers", "inbound_request");
    let ok = requests.iter().filter(|e| e["ok"] == true).count();
    (requests.len() - ok, ok)
}

#[test]
fn inbound_requests_before_the_app_listens_are_the_apps_not_the_meshs() {
    let p = play("istio-inbound-before-app-listens");
    let pod = "productpage-v1-5b8c7d6f9-q2w3e";
    let refused = envoy_refusals(&p, pod, 9080);
    assert!(!refused.is_empty(), "Envoy's forwards refused");
    let listened = boot(
        p.rec
            .listen_start(pod, "productpage", 9080, 0)
            .expect("the app listened at last"),
    );
    for at in &refused {
        assert_before(*at, listened, "refused only before the app listened");
    }
    // The callers saw Envoy's 503s first, then answers once the app listened.
    let (failed, ok) = inbound_outcomes(&p);
    assert!(
        failed >= refused.len() && ok > 0,
        "failed {failed}, ok {ok}"
    );
    let f = p.finding(pod, FindingKind::AppNotAccepting);
    assert_eq!(f.container.as_deref(), Some("productpage"));
    let count = format!("{} connection(s) from istio-proxy", refused.len());
    assert!(f.message.contains(&count), "{count}: {}", f.message);
    assert!(
        f.message.contains("not istio-proxy or the mesh"),
        "{}",
        f.message
    );
    // The mesh is not blamed: no M rule reports anything.
    let audit = p.audit_of(pod);
    assert!(
        audit.findings.iter().all(|f| f.rule == RuleId::D1),
        "{:#?}",
        audit.findings
    );
}

#[test]
fn envoys_forwards_after_the_app_exited_are_the_app_gone_before_its_proxy() {
    let p = play("istio-legacy-inbound-after-app-exit");
    let pod = "details-v1-6c9d8b7f5-h6j7k";
    let refused = envoy_refusals(&p, pod, 9080);
    assert!(!refused.is_empty(), "Envoy's forwards refused");
    let app_exit = boot(p.kernel_exit(pod, "details", 0));
    let envoy_killed = boot(crate::istio::agent_kills_envoy(&p, pod).0);
    for at in &refused {
        assert_before(app_exit, *at, "refused after the app exited");
        assert_before(*at, envoy_killed, "while Envoy still drained");
    }
    let f = p.finding(pod, FindingKind::AppGoneBeforeSidecar);
    assert_eq!(f.container.as_deref(), Some("details"));
    assert!(
        f.message
            .contains("the app was gone, not istio-proxy or the mesh"),
        "{}",
        f.message
    );
    let count = format!("{} connection(s) from istio-proxy", refused.len());
    assert!(f.message.contains(&count), "{count}: {}", f.message);
    assert_eq!(
        p.audit_of(pod).verdict(RuleId::D1).map(|v| v.outcome),
        Some(lifecycle_audit::Outcome::Held)
    );
}
