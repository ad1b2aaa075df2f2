//! Every scenario of `tests/scenarios/` played with `lifecycle-agent
//! record` attached; the recording is checked against the driver's own log
//! (`common::checks::common` for what holds everywhere, each test for what
//! its scenario is about). Times are the kernel's boot clock; tolerances
//! are stated where they are used.
//!
//! Audit findings: each scenario file lists the findings it must produce
//! under `expect` (`Played::scenario.expect`); once the agent's audits
//! exist, one helper comparing them with the report covers every test.

mod common;

use common::{
    Played, play,
    recording::{boot, ms},
};

/// Slack for "right after" / "at about" on this 2-core machine: thread
/// wake-ups, a fork and an exec of runc.
const SLACK_NS: u64 = 300_000_000;

fn assert_before(a: u64, b: u64, what: &str) {
    assert!(a < b, "{what}: {} ms is not before {} ms", ms(a), ms(b));
}

fn assert_near(at: u64, expected: u64, slack: u64, what: &str) {
    assert!(
        at + 10_000_000 >= expected && at <= expected + slack,
        "{what}: at {} ms, expected {} ms (+{} ms)",
        ms(at),
        ms(expected),
        ms(slack)
    );
}

/// The proxy (Envoy) listens on the capture port: its first listen_start.
fn capture_listen(p: &Played, pod: &str, container: &str, port: u16, after: u64) -> u64 {
    boot(
        p.rec
            .listen_start(pod, container, port, after)
            .unwrap_or_else(|| panic!("{container} never listened on {port}")),
    )
}

#[test]
fn istio_legacy_proxy_exits_first_and_app_calls_are_refused() {
    let p = play("istio-legacy-refused");
    let pod = "reviews-v1-6f7c9d5b8-kx2qp";
    let app_term = p.kernel_signal(pod, "reviews", 15);
    let proxy_term = p.kernel_signal(pod, "istio-proxy", 15);
    // Legacy: both at t0, in parallel (no order asserted).
    assert!(
        app_term.abs_diff(proxy_term) < SLACK_NS,
        "SIGTERMs {} / {} ms apart",
        ms(app_term),
        ms(proxy_term)
    );
    let proxy_exit = boot(p.kernel_exit(pod, "istio-proxy", 0));
    let app_exit = boot(p.kernel_exit(pod, "reviews", 0));
    assert_before(
        proxy_exit,
        app_exit,
        "the proxy exits before the app drained",
    );
    // Envoy drains 5 s, the app 10 s: the app's calls after the proxy left are refused.
    // (The app is declared first, so its first calls may also race the
    // proxy's start: those come before the capture port listens.)
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    let refused = p.rec.refused(pod, "reviews");
    let at_shutdown = refused.iter().filter(|r| boot(r) > proxy_exit).count();
    assert!(
        at_shutdown > 0,
        "no refused connects after the proxy exited"
    );
    for r in &refused {
        let (at, t) = (boot(r), ms(boot(r)));
        assert!(
            at < listening || (at > proxy_exit && at < app_exit),
            "refused at {t} ms while the proxy listened: {r}"
        );
        assert_eq!(
            r["remote_addr"], "10.96.0.10",
            "the socket keeps its original destination: {r}"
        );
        assert_eq!(r["remote_port"], 80, "{r}");
    }
    let failed_calls = p
        .events(pod, "reviews", "request")
        .into_iter()
        .filter(|e| e["errno"] == 111)
        .count();
    assert_eq!(
        refused.len(),
        failed_calls,
        "recorded refusals vs the app's own count"
    );
}

/// Asserts no connect of the container was refused.
fn assert_no_refusals(p: &Played, pod: &str, container: &str) {
    let refused = p.rec.refused(pod, container);
    assert!(
        refused.is_empty(),
        "{container}: {} refused connects, first {}",
        refused.len(),
        refused[0]
    );
}

#[test]
fn istio_legacy_hold_starts_the_app_once_the_proxy_is_ready() {
    let p = play("istio-legacy-hold");
    let pod = "checkout-5b9d7c6f4-q8w2e";
    let hook_done = p
        .entries(pod, Some("istio-proxy"))
        .into_iter()
        .find(|e| matches!(e.action, node_sim::Action::HookFinished { ok: true, .. }))
        .expect("pilot-agent wait ran in istio-proxy and succeeded");
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    let app_exec = boot(p.kernel_exec(pod, "checkout", 0));
    assert_before(
        hook_done.at.boot_ns,
        app_exec,
        "the app starts once the postStart hook returned",
    );
    assert_before(
        listening,
        app_exec,
        "the app starts after the proxy listens",
    );
    assert_no_refusals(&p, pod, "checkout");
    let (app_term, proxy_term) = (
        p.kernel_signal(pod, "checkout", 15),
        p.kernel_signal(pod, "istio-proxy", 15),
    );
    assert!(
        app_term.abs_diff(proxy_term) < SLACK_NS,
        "legacy: SIGTERMs together at t0"
    );
}

#[test]
fn istio_native_gates_the_app_on_the_startup_probe_and_stops_the_proxy_last() {
    let p = play("istio-native-startup-probe");
    let pod = "ratings-v1-7d8f9b6c5-m4n7p";
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    assert_before(
        listening,
        boot(p.kernel_exec(pod, "ratings", 0)),
        "startupProbe gates the app",
    );
    let t0 = p.t0(pod);
    let drain_hook = p
        .entries(pod, Some("istio-proxy"))
        .into_iter()
        .find(|e| {
            matches!(
                e.action,
                node_sim::Action::HookStarted {
                    hook: node_sim::HookPhase::PreStop,
                    ..
                }
            )
        })
        .expect("the proxy's preStop (drain) ran");
    assert_near(
        drain_hook.at.boot_ns,
        t0,
        SLACK_NS,
        "the sidecar's preStop starts at t0",
    );
    assert_near(
        p.kernel_signal(pod, "ratings", 15),
        t0,
        SLACK_NS,
        "the app's SIGTERM at t0",
    );
    let app_exit = boot(p.kernel_exit(pod, "ratings", 0));
    assert_before(
        app_exit,
        p.kernel_signal(pod, "istio-proxy", 15),
        "ordered: proxy SIGTERM after the app exited",
    );
    assert_no_refusals(&p, pod, "ratings");
}

#[test]
fn native_sidecar_without_startup_probe_lets_the_app_race_the_proxy() {
    let p = play("native-sidecar-no-startup-probe");
    let pod = "details-v1-65cb7f8d9c-2rkwq";
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    assert_before(
        boot(p.kernel_exec(pod, "details", 0)),
        listening,
        "the app starts before Envoy listens",
    );
    let refused = p.rec.refused(pod, "details");
    assert!(!refused.is_empty(), "the app's first calls are refused");
    for r in &refused {
        assert!(boot(r) < listening, "refused after the proxy listened: {r}");
    }
    let established = p
        .rec
        .sockets(pod, "details", "connect_established")
        .filter(|r| r["remote_port"] == 80)
        .count();
    assert!(established > 0, "calls succeed once Envoy listens");
    let app_exit = boot(p.kernel_exit(pod, "details", 0));
    assert_before(
        app_exit,
        p.kernel_signal(pod, "istio-proxy", 15),
        "termination is still ordered",
    );
}

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
    let wait = 20 * p.second_ns();
    assert_near(
        p.kernel_signal(pod, "linkerd-proxy", 15),
        t0 + wait,
        SLACK_NS,
        "the proxy's SIGTERM at t0 + 20 s",
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

/// Phases the agent saw before the pod's delete request.
fn phases_before_deletion(p: &Played, pod: &str) -> Vec<String> {
    let seq = |r: &serde_json::Value| r["seq"].as_u64().unwrap_or(0);
    let deletion = p
        .rec
        .pod_changes(pod, "deletion_requested")
        .map(seq)
        .min()
        .expect("deletion seen");
    p.rec
        .pod_changes(pod, "phase_changed")
        .filter(|r| seq(r) < deletion)
        .map(|r| r["change"]["phase"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn legacy_job_sidecar_keeps_the_pod_running_after_the_work_is_done() {
    let p = play("job-cloud-sql-proxy-legacy");
    let pod = "nightly-report-29384720-7kq2x";
    let report_exit = p.kernel_exit(pod, "report", 0);
    assert_eq!(report_exit["container_exit_code"], 0);
    let proxy_term = p.kernel_signal(pod, "cloud-sql-proxy", 15);
    assert!(
        proxy_term > boot(report_exit) + 5 * p.second_ns(),
        "nothing stopped the sidecar when the work was done ({} ms after)",
        ms(proxy_term - boot(report_exit))
    );
    assert_eq!(
        phases_before_deletion(&p, pod),
        ["Pending", "Running"],
        "the Job never completed"
    );
    let queries = p
        .rec
        .sockets(pod, "cloud-sql-proxy", "connect_established")
        .filter(|r| r["remote_port"] == 5432)
        .count();
    assert!(
        queries > 0,
        "the worker's queries went through the proxy to the database"
    );
}

#[test]
fn native_job_sidecar_is_stopped_and_the_pod_succeeds() {
    let p = play("job-cloud-sql-proxy-native");
    let pod = "nightly-report-29384721-b5m9t";
    let report_exit = boot(p.kernel_exit(pod, "report", 0));
    let proxy_term = p.kernel_signal(pod, "cloud-sql-proxy", 15);
    assert_before(
        report_exit,
        proxy_term,
        "the sidecar is stopped after the main container",
    );
    assert!(
        proxy_term - report_exit < SLACK_NS,
        "right after: {} ms",
        ms(proxy_term - report_exit)
    );
    assert_eq!(
        p.kernel_exit(pod, "cloud-sql-proxy", 0)["container_exit_code"],
        0
    );
    let phases = phases_before_deletion(&p, pod);
    assert_eq!(
        phases.last().map(String::as_str),
        Some("Succeeded"),
        "phases before the delete: {phases:?}"
    );
}

#[test]
fn fluent_bit_outlives_the_app_and_flushes_last() {
    let p = play("fluent-bit-outlives-app");
    let pod = "orders-7c9d8e6f5a-h4j6k";
    let t0 = p.t0(pod);
    let app_term = p.kernel_signal(pod, "orders", 15);
    assert!(
        app_term >= t0 + 5 * p.second_ns(),
        "the app's SIGTERM follows its 5 s preStop"
    );
    let app_exit = boot(p.kernel_exit(pod, "orders", 0));
    let shipper_term = p.kernel_signal(pod, "fluent-bit", 15);
    assert_before(
        app_exit,
        shipper_term,
        "the log shipper is stopped after the app",
    );
    let last_flush = p
        .rec
        .sockets(pod, "fluent-bit", "connect_established")
        .filter(|r| r["remote_port"] == 24224)
        .map(boot)
        .max()
        .expect("shipments");
    assert_before(
        app_exit,
        last_flush,
        "the last shipment leaves after the app's exit",
    );
}

#[test]
fn vault_init_and_envoy_start_in_order_and_stop_in_reverse() {
    let p = play("vault-init-envoy-ordering");
    let pod = "payments-6c8e0a2c4e-t5u6v";
    let init_exit = boot(p.kernel_exit(pod, "vault-agent-init", 0));
    let vault_exec = boot(p.kernel_exec(pod, "vault-agent", 0));
    let envoy_exec = boot(p.kernel_exec(pod, "envoy", 0));
    let envoy_listen = capture_listen(&p, pod, "envoy", 15001, 0);
    let app_exec = boot(p.kernel_exec(pod, "payments", 0));
    assert_before(
        boot(p.kernel_exec(pod, "vault-agent-init", 0)),
        init_exit,
        "init runs",
    );
    assert_before(
        init_exit,
        vault_exec,
        "vault-agent after vault-agent-init completed",
    );
    assert_before(vault_exec, envoy_exec, "envoy after vault-agent started");
    assert_before(envoy_listen, app_exec, "the app after envoy's startupProbe");
    let t0 = p.t0(pod);
    let vault_hook = p
        .entries(pod, Some("vault-agent"))
        .into_iter()
        .find(|e| matches!(e.action, node_sim::Action::HookStarted { .. }))
        .expect("vault-agent's preStop");
    assert_near(vault_hook.at.boot_ns, t0, SLACK_NS, "sidecar preStop at t0");
    let app_exit = boot(p.kernel_exit(pod, "payments", 0));
    let envoy_term = p.kernel_signal(pod, "envoy", 15);
    let envoy_exit = boot(p.kernel_exit(pod, "envoy", 0));
    let vault_term = p.kernel_signal(pod, "vault-agent", 15);
    assert_before(app_exit, envoy_term, "envoy after the app");
    assert_before(envoy_exit, vault_term, "vault-agent after envoy");
}

#[test]
fn app_ignoring_sigterm_is_killed_when_the_grace_period_ends() {
    let p = play("app-ignores-sigterm");
    let pod = "legacy-batch-5d6f7a8b9c-x1y2z";
    let term = p.kernel_signal(pod, "batch", 15);
    let record = p
        .rec
        .signals_to(p.pid(pod, "batch"))
        .into_iter()
        .find(|r| r["signal"] == 15)
        .cloned()
        .expect("SIGTERM");
    assert_eq!(record["result"], "ignored", "{record}");
    let kill = p.kernel_signal(pod, "batch", 9);
    assert_near(
        kill,
        p.t0(pod) + 30 * p.second_ns(),
        SLACK_NS,
        "SIGKILL at t0 + grace",
    );
    assert!(
        kill - term >= 30 * p.second_ns() - 10_000_000,
        "a full grace between SIGTERM and SIGKILL"
    );
    let exit = p.kernel_exit(pod, "batch", 0);
    assert_eq!(
        (
            exit["killed_by_signal"].as_u64(),
            exit["container_exit_code"].as_u64()
        ),
        (Some(9), Some(137))
    );
    let reported = p.rec.pod_changes(pod, "container_transition").any(|r| {
        r["change"]["transition"]["type"] == "terminated"
            && r["change"]["transition"]["exit_code"] == 137
    });
    assert!(reported, "the API reported exit code 137");
}

#[test]
fn proxy_crash_refuses_the_apps_calls_until_the_restart_listens() {
    let p = play("proxy-crash-restart");
    let pod = "productpage-v1-5d9f7c6b8a-k2l3m";
    let crash = p.kernel_exit(pod, "istio-proxy", 0);
    assert_eq!(
        (
            crash["killed_by_signal"].as_u64(),
            crash["container_exit_code"].as_u64()
        ),
        (Some(6), Some(134))
    );
    let restart = p.kernel_exec(pod, "istio-proxy", 1);
    let first = p.kernel_exec(pod, "istio-proxy", 0);
    assert_ne!(
        restart["process"]["cgroup"]["container_id"], first["process"]["cgroup"]["container_id"],
        "a new container"
    );
    // The restarted run's events wait until the kubelet reports its new
    // container id, then carry the container name like the first run's.
    let relisten = p
        .rec
        .of_type("socket")
        .filter(|r| {
            r["op"] == "listen_start"
                && r["local_port"] == 15001
                && r["owner"]["pid"] == restart["process"]["pid"]
        })
        .inspect(|r| assert_eq!(r["owner"]["k8s"]["container"], "istio-proxy", "{r}"))
        .map(boot)
        .next()
        .expect("the restarted proxy listens on 15001");
    let refused = p.rec.refused(pod, "productpage");
    assert!(
        !refused.is_empty(),
        "calls refused while the proxy was down"
    );
    for r in &refused {
        assert!(
            boot(r) > boot(crash) && boot(r) < relisten,
            "refused outside the outage: {r}"
        );
    }
    let after = p
        .rec
        .sockets(pod, "productpage", "connect_established")
        .any(|r| boot(r) > relisten && r["remote_port"] == 80);
    assert!(after, "calls succeed again after the restart");
    let restarted = p.rec.pod_changes(pod, "container_transition").any(|r| {
        r["change"]["container"] == "istio-proxy"
            && r["change"]["transition"]["type"] == "running"
            && r["change"]["transition"]["restart_count"] == 1
    });
    assert!(restarted, "the API reported the restart");
}

#[test]
fn excluded_port_leaves_the_pod_without_the_proxy() {
    let p = play("excluded-port-plaintext");
    let pod = "inventory-6b8d0f2a4c-n7p8q";
    let ip = p
        .report
        .log
        .iter()
        .find_map(|e| match &e.action {
            node_sim::Action::SandboxStarted { pod_ip, .. } => Some(pod_ip.clone()),
            _ => None,
        })
        .expect("pod ip");
    let accepts: Vec<&serde_json::Value> = p
        .rec
        .sockets(pod, "istio-proxy", "accept")
        .filter(|r| r["local_port"] == 15001)
        .collect();
    let proxied_by = |port: &serde_json::Value| accepts.iter().any(|a| &a["remote_port"] == port);
    let app = |remote: u16| -> Vec<&serde_json::Value> {
        p.rec
            .sockets(pod, "inventory", "connect_established")
            .filter(|r| r["remote_port"] == remote)
            .collect()
    };
    let (http, db) = (app(80), app(5432));
    assert!(!http.is_empty() && !db.is_empty(), "the app called both");
    for r in &http {
        assert!(
            proxied_by(&r["local_port"]),
            "an HTTP call not through Envoy: {r}"
        );
        assert_eq!(r["uid"], 0);
    }
    let upstream = p
        .rec
        .sockets(pod, "istio-proxy", "connect_established")
        .find(|r| r["remote_addr"] == "10.96.0.18" && r["remote_port"] == 80)
        .expect("Envoy's upstream connection");
    assert_eq!(
        upstream["uid"], 1337,
        "Envoy's own traffic is not captured: {upstream}"
    );
    let served = p.events("cluster", "peers", "served");
    for r in &db {
        assert!(
            !proxied_by(&r["local_port"]),
            "a database call went through Envoy: {r}"
        );
        let peer = format!("{ip}:{}", r["local_port"]);
        assert!(
            served
                .iter()
                .any(|s| s["service"] == "10.96.0.22:5432" && s["peer"] == peer.as_str()),
            "the database saw the app's own socket {peer}"
        );
    }
}

#[test]
fn node_drain_stops_every_pod_through_its_own_shim() {
    let p = play("node-drain");
    let pods = [
        "cart-7f8e9d0c1b-a1b2c",
        "search-4a5b6c7d8e-d3e4f",
        "thumbnailer-2c3d4e5f6a-g5h6i",
    ];
    let requested: Vec<u64> = pods
        .iter()
        .map(|pod| {
            p.entries(pod, None)
                .into_iter()
                .find(|e| matches!(e.action, node_sim::Action::DeletionRequested { .. }))
                .expect("delete request")
                .at
                .boot_ns
        })
        .collect();
    let spread = requested.iter().max().unwrap() - requested.iter().min().unwrap();
    assert!(spread < 50_000_000, "deletes {} ms apart", ms(spread));
    let shims: std::collections::BTreeSet<String> = pods
        .iter()
        .map(|pod| {
            p.rec
                .of_type("signal_generate")
                .find(|r| r["target"]["k8s"]["pod"] == *pod && r["signal"] == 15)
                .map(|r| r["sender_parent_pid"].to_string())
                .expect("a SIGTERM per pod")
        })
        .collect();
    assert_eq!(shims.len(), 3, "one shim per pod");
    let (cart, search, thumb) = (pods[0], pods[1], pods[2]);
    let cart_app = p.kernel_signal(cart, "cart", 15);
    assert!(
        cart_app.abs_diff(p.kernel_signal(cart, "istio-proxy", 15)) < SLACK_NS,
        "legacy pod: parallel"
    );
    assert_near(
        p.kernel_signal(search, "search", 15),
        cart_app,
        SLACK_NS,
        "pods stop together",
    );
    assert_before(
        boot(p.kernel_exit(search, "search", 0)),
        p.kernel_signal(search, "istio-proxy", 15),
        "native pod: ordered",
    );
    let thumb_term = p.kernel_signal(thumb, "thumbnailer", 15);
    assert!(
        thumb_term >= p.t0(thumb) + 4 * p.second_ns(),
        "the sleep preStop delays the SIGTERM by 4 s"
    );
}

#[test]
fn kubelet_1_28_stops_native_sidecars_in_parallel() {
    let p = play("kubelet-1.28-parallel-sidecars");
    let pod = "reviews-v2-8b7c6d5e4f-r5s6t";
    let app_term = p.kernel_signal(pod, "reviews", 15);
    let proxy_term = p.kernel_signal(pod, "istio-proxy", 15);
    assert!(
        app_term.abs_diff(proxy_term) < SLACK_NS,
        "1.28: sidecar SIGTERM with the app"
    );
    let app_exit = boot(p.kernel_exit(pod, "reviews", 0));
    assert_before(
        proxy_term,
        app_exit,
        "the sidecar is stopped before the app finished",
    );
    let proxy_exit = boot(p.kernel_exit(pod, "istio-proxy", 0));
    assert!(
        p.rec
            .refused(pod, "reviews")
            .iter()
            .any(|r| boot(r) > proxy_exit),
        "the app's last calls are refused"
    );
}

fn never_started_sidecar(version: &str) -> (Played, u64, u64) {
    let mut scenario = common::load("kubelet-1.29-never-started-sidecar");
    scenario.kubelet = node_sim::KubeletVersion::parse(version).expect("version");
    let p = common::play_with(scenario, node_sim::RunOptions::default());
    let pod = "ledger-3e4f5a6b7c-u7v8w";
    assert!(p.pids(pod, "envoy").is_empty(), "envoy never started");
    let t0 = p.t0(pod);
    assert_near(
        p.kernel_signal(pod, "db-migrate", 15),
        t0,
        SLACK_NS,
        "the running init container at t0",
    );
    let shipper = p.kernel_signal(pod, "fluent-bit", 15);
    (p, t0, shipper)
}

#[test]
fn kubelet_1_29_bug_never_started_sidecar_holds_back_the_running_one() {
    let (p, t0, shipper) = never_started_sidecar("1.29");
    assert_near(
        shipper,
        t0 + 20 * p.second_ns(),
        SLACK_NS,
        "1.29: fluent-bit's SIGTERM only when the grace ran out",
    );
}

#[test]
fn kubelet_1_31_fix_stops_the_running_sidecar_at_once() {
    let (_p, t0, shipper) = never_started_sidecar("1.31");
    assert_near(shipper, t0, SLACK_NS, "1.31: fluent-bit's SIGTERM at t0");
}
