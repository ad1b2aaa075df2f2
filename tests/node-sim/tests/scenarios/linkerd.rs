//! Linkerd: legacy wait-before-exit (longer and shorter than the app's
//! drain, and none: the proxy stops accepting at SIGTERM), native sidecar
//! with the CNI capture, and a Job's `/shutdown` hung on a lingering
//! connection.

use crate::{
    Played, SLACK_NS, assert_before, assert_near, assert_no_refusals, capture_listen,
    common::{play, recording::boot},
};

#[test]
fn linkerd_legacy_proxy_gets_sigterm_after_its_wait_before_exit() {
    let p = play("linkerd-legacy-wait-before-exit");
    let pod = "web-84c6d9f7b5-z9x8c";
    let t0 = p.t0(pod);
    assert_near(
        p.kernel_signal(pod, "web-svc", 15),
        t0,
        SLACK_NS,
        "the app's SIGTERM at t0",
    );
    let wait = 8 * p.second_ns();
    assert_near(
        p.kernel_signal(pod, "linkerd-proxy", 15),
        t0 + wait,
        SLACK_NS,
        "the proxy's SIGTERM at t0 + 8 s",
    );
    let app_exit = boot(p.kernel_exit(pod, "web-svc", 0));
    assert_before(
        app_exit,
        p.kernel_signal(pod, "linkerd-proxy", 15),
        "the app drained through a live proxy",
    );
    assert_no_refusals(&p, pod, "web-svc");
    let listen = p
        .rec
        .listen_start(pod, "linkerd-proxy", 4140, 0)
        .expect("outbound capture port");
    assert_eq!(
        listen["uid"], 2102,
        "the proxy runs as Linkerd's UID: {listen}"
    );
}

#[test]
fn linkerd_native_proxy_is_stopped_after_the_app() {
    let p = play("linkerd-native");
    let pod = "voting-5f6a7b8c9d-p2q3r";
    let listening = capture_listen(&p, pod, "linkerd-proxy", 4140, 0);
    assert_before(
        listening,
        boot(p.kernel_exec(pod, "voting-svc", 0)),
        "startupProbe gates the app",
    );
    let app_exit = boot(p.kernel_exit(pod, "voting-svc", 0));
    assert_before(
        app_exit,
        p.kernel_signal(pod, "linkerd-proxy", 15),
        "wait-before-exit is ignored; ordered stop",
    );
    assert!(
        !p.entries(pod, Some("linkerd-proxy"))
            .iter()
            .any(|e| matches!(e.action, node_sim::Action::HookStarted { .. })),
        "no preStop in native mode"
    );
    assert_no_refusals(&p, pod, "voting-svc");
    // The CNI-installed capture sends the app's calls through the proxy.
    let app_conn = p
        .rec
        .sockets(pod, "voting-svc", "connect_established")
        .find(|r| r["remote_port"] == 8080)
        .expect("an app call");
    let accepted = p
        .rec
        .sockets(pod, "linkerd-proxy", "accept")
        .any(|r| r["local_port"] == 4140 && r["remote_port"] == app_conn["local_port"]);
    assert!(
        accepted,
        "the proxy accepted the app's redirected connection {app_conn}"
    );
}

/// The app's refused outbound connects and the proxy's SIGTERM.
fn refusals_after_the_proxy_stopped(p: &Played, pod: &str) -> (u64, Vec<u64>) {
    let term = p.kernel_signal(pod, "linkerd-proxy", 15);
    let refused: Vec<u64> = p
        .rec
        .refused(pod, "web-svc")
        .into_iter()
        .map(boot)
        .collect();
    assert!(!refused.is_empty(), "the draining app's calls were refused");
    let app_exit = boot(p.kernel_exit(pod, "web-svc", 0));
    for at in &refused {
        assert_before(term, *at, "refused only after the proxy's SIGTERM");
        assert_before(*at, app_exit, "refused while the app drained");
    }
    (term, refused)
}

#[test]
fn linkerd_legacy_proxy_stops_accepting_at_sigterm() {
    let p = play("linkerd-legacy-sigterm-refused");
    let pod = "web-5b7d9f1c3e-k4l5m";
    let t0 = p.t0(pod);
    let (term, refused) = refusals_after_the_proxy_stopped(&p, pod);
    assert_near(
        term,
        t0,
        SLACK_NS,
        "the proxy's SIGTERM at t0, with the app's",
    );
    assert!(
        refused[0] < t0 + p.second_ns(),
        "the first refusal within a call interval of t0"
    );
}

#[test]
fn a_wait_before_exit_shorter_than_the_drain_moves_the_refusals_past_it() {
    let p = play("linkerd-legacy-wait-shorter-than-drain");
    let pod = "web-9d1f3b5d7f-u6v7w";
    let t0 = p.t0(pod);
    let (term, refused) = refusals_after_the_proxy_stopped(&p, pod);
    assert_near(
        term,
        t0 + 3 * p.second_ns(),
        SLACK_NS,
        "SIGTERM when the sleep 3 ends",
    );
    assert!(
        refused[0] > t0 + 3 * p.second_ns(),
        "no refusal before the wait ended"
    );
}

#[test]
fn a_shutdown_hung_on_a_lingering_connection_fails_the_job_by_its_sidecar() {
    let p = play("linkerd-job-shutdown-lingering");
    let pod = "ledger-export-29384900-m3n4b";
    let worker = p.kernel_exit(pod, "export", 0);
    assert_eq!(worker["container_exit_code"], 0, "{worker}");
    assert!(!p.events(pod, "export", "quit_sent").is_empty());
    assert!(
        !p.events(pod, "linkerd-proxy", "shutdown_waiting")
            .is_empty()
    );
    // The shutdown closed the admin port: the liveness probe fails, and the
    // kubelet's stop is SIGTERM, then SIGKILL at the 5 s grace.
    let closed = boot(
        p.rec
            .sockets(pod, "linkerd-proxy", "listen_stop")
            .find(|r| r["local_port"] == 4191)
            .expect("the admin port closed"),
    );
    let term = p.kernel_signal(pod, "linkerd-proxy", 15);
    let kill = p.kernel_signal(pod, "linkerd-proxy", 9);
    assert_before(boot(worker), closed, "the shutdown follows the work");
    assert_before(
        closed + 2 * p.second_ns(),
        term,
        "three failed probes, 1 s apart",
    );
    assert_near(
        kill,
        term + 5 * p.second_ns(),
        SLACK_NS,
        "SIGKILL at the grace",
    );
    assert_eq!(
        p.kernel_exit(pod, "linkerd-proxy", 0)["container_exit_code"],
        137
    );
    assert!(
        p.report
            .log
            .iter()
            .any(|e| matches!(e.action, node_sim::log::Action::LivenessFailed { .. }))
    );
    let phases = p.rec.phases(pod);
    assert_eq!(phases.last(), Some(&"Failed"), "{phases:?}");
    let f = p.finding(pod, lifecycle_audit::FindingKind::JobFailedBySidecar);
    assert!(f.message.contains("it exited 137"), "{}", f.message);
}
