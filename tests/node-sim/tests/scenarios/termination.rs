//! Termination: grace expiry with SIGKILL, a node drain, and the kubelet
//! versions whose sidecar termination differs (1.28 parallel, the 1.29
//! never-started-sidecar bug and its fix), and an API server whose clock
//! runs seconds off the node's, and an app without a SIGTERM handler as
//! PID 1 and outside it.

use crate::{
    Played, SLACK_NS, assert_before, assert_near,
    common::{
        self, play,
        recording::{boot, ms},
    },
};

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
        p.t0(pod) + 5 * p.second_ns(),
        SLACK_NS,
        "SIGKILL at t0 + grace",
    );
    assert!(
        kill - term >= 5 * p.second_ns() - 10_000_000,
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

/// The scenario played as `version` (its findings for 1.31 are under
/// `expect.otherKubelets`).
fn never_started_sidecar(version: &str) -> (Played, u64, u64) {
    let scenario = common::load("kubelet-1.29-never-started-sidecar");
    let options = node_sim::RunOptions {
        kubelet: Some(node_sim::KubeletVersion::parse(version).expect("version")),
        ..node_sim::RunOptions::default()
    };
    let p = common::play_with(scenario, options);
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
        t0 + 6 * p.second_ns(),
        SLACK_NS,
        "1.29: fluent-bit's SIGTERM only when the grace ran out",
    );
}

#[test]
fn kubelet_1_31_fix_stops_the_running_sidecar_at_once() {
    let (_p, t0, shipper) = never_started_sidecar("1.31");
    assert_near(shipper, t0, SLACK_NS, "1.31: fluent-bit's SIGTERM at t0");
}

/// `name` plays istio-legacy-refused with the API server's clock `ahead_s`
/// off the node's: t0 and both stop signals still come from the kernel,
/// the audit reports the skew, and its findings are the file's (`play`
/// asserts them, the same list as without the skew).
fn api_clock_off(name: &str, ahead_s: f64) {
    let p = play(name);
    let pod = "reviews-v1-6f7c9d5b8-kx2qp";
    let t = p
        .audit_of(pod)
        .termination
        .as_ref()
        .expect("a termination audit");
    let t0 = t.t0.expect("t0 from the kernel record");
    for container in ["reviews", "istio-proxy"] {
        let stop = t
            .container(container)
            .and_then(|c| c.stop_signal.as_ref())
            .unwrap_or_else(|| panic!("{container}: no stop signal"));
        assert_eq!(stop.name, "SIGTERM", "{container}");
        assert!(stop.at >= t0, "{container}: stop signal before t0");
    }
    let offset = t
        .api_clock_offset_s
        .unwrap_or_else(|| panic!("{name}: the API clock's skew is not reported"));
    assert!(
        (offset - ahead_s).abs() < 1.0,
        "{name}: measured {offset} s, the API runs {ahead_s} s off"
    );
}

#[test]
fn api_clock_ahead_of_the_node_keeps_the_kernel_evidence() {
    api_clock_off("api-clock-ahead", 3.0);
}

#[test]
fn api_clock_behind_the_node_keeps_the_kernel_evidence() {
    api_clock_off("api-clock-behind", -3.0);
}

/// The SIGTERM record of `container`'s PID 1 (run 0).
fn sigterm_record<'p>(p: &'p Played, pod: &str, container: &str) -> &'p serde_json::Value {
    p.rec
        .signals_to(p.pid(pod, container))
        .into_iter()
        .find(|r| r["signal"] == 15)
        .expect("SIGTERM in the recording")
}

#[test]
fn a_namespace_init_without_a_handler_loses_sigterm_to_the_kernel() {
    let p = play("app-pid1-no-handler");
    let pod = "orders-api-7c9d8e6f5a-p4q5r";
    let term = sigterm_record(&p, pod, "orders");
    assert_eq!(
        (
            &term["result"],
            &term["target_action"],
            &term["target_ns_init"]
        ),
        (
            &serde_json::json!("ignored"),
            &serde_json::json!("default"),
            &serde_json::json!(true)
        ),
        "{term}"
    );
    let kill = p.kernel_signal(pod, "orders", 9);
    assert_near(
        kill,
        p.t0(pod) + 5 * p.second_ns(),
        SLACK_NS,
        "SIGKILL at t0 + grace",
    );
    let exit = p.kernel_exit(pod, "orders", 0);
    assert_eq!(exit["container_exit_code"].as_u64(), Some(137), "{exit}");
    let killed = p.finding(pod, lifecycle_audit::FindingKind::Sigkilled);
    assert!(
        killed
            .message
            .contains("PID 1 without a handler; the kernel ignores SIGTERM for a namespace init"),
        "{}",
        killed.message
    );
}

#[test]
fn the_same_app_outside_pid_1_dies_of_sigterm() {
    let p = play("app-no-handler-shared-pid-ns");
    let pod = "orders-api-5b7d9f1a3c-s6t7u";
    let term = sigterm_record(&p, pod, "orders");
    assert_eq!(
        (
            &term["result"],
            &term["target_action"],
            &term["target_ns_init"]
        ),
        (
            &serde_json::json!("delivered"),
            &serde_json::json!("default"),
            &serde_json::json!(false)
        ),
        "{term}"
    );
    let exit = p.kernel_exit(pod, "orders", 0);
    assert_eq!(
        (
            exit["killed_by_signal"].as_u64(),
            exit["container_exit_code"].as_u64()
        ),
        (Some(15), Some(143)),
        "{exit}"
    );
    assert!(
        !p.has_kernel_signal(pod, "orders", 9),
        "no SIGKILL was needed"
    );
}

#[test]
fn a_go_runtimes_sigurg_storm_is_counted_in_the_kernel_not_recorded() {
    let p = play("go-preemption-signals");
    let pod = "inventory-6d8f0b2c4e-m9n8b";
    let in_pod = |r: &&serde_json::Value| {
        [&r["target"], &r["process"]]
            .iter()
            .any(|x| x["k8s"]["pod"] == pod)
    };
    let one_by_one = p
        .rec
        .of_type("signal_generate")
        .chain(p.rec.of_type("signal_deliver"))
        .filter(in_pod)
        .filter(|r| r["signal"] == 23)
        .count();
    assert_eq!(one_by_one, 0, "no SIGURG recorded one by one");
    // SIGURG is outside the default signal mask: the probes count it and
    // write nothing, so nothing is left for userspace to summarize.
    let summaries = p.rec.of_type("signal_summary").filter(in_pod).count();
    assert_eq!(summaries, 0, "no SIGURG summary lines");
    let stats = p.rec.last_stats();
    let filtered = |kind: &str| {
        stats["filtered_signals"][kind]["SIGURG"]
            .as_u64()
            .unwrap_or(0)
    };
    let (generated, delivered) = (filtered("signal_generate"), filtered("signal_deliver"));
    // 400 a second from start to SIGTERM (≥ 5 s); sleeps only stretch the
    // period, so count at least half. The counters are node-wide: runc's
    // own SIGURGs add to them.
    assert!(generated >= 1_000, "{generated} SIGURGs counted: {stats}");
    assert!(
        delivered <= generated && delivered * 2 >= generated,
        "{delivered} of {generated} delivered"
    );
    assert!(
        stats["summarized_signals"]["SIGURG"].is_null(),
        "nothing summarized: {stats}"
    );
    // The stop is still the runtime's SIGTERM, and the audit never names SIGURG.
    p.kernel_signal(pod, "inventory", 15);
    let audit = serde_json::to_string(p.audit_of(pod)).expect("audit as JSON");
    assert!(!audit.contains("SIGURG"), "{audit}");
}

#[test]
fn three_native_sidecars_squeezed_by_an_app_using_the_whole_grace() {
    let p = play("three-native-sidecars-whole-grace");
    let pod = "checkout-3d5f7b9d1f-x8y9z";
    let t0 = p.t0(pod);
    let s = p.second_ns();
    let app_exit = boot(p.kernel_exit(pod, "checkout", 0));
    assert_eq!(p.kernel_exit(pod, "checkout", 0)["container_exit_code"], 0);
    let shipper_term = p.kernel_signal(pod, "log-shipper", 15);
    assert_before(app_exit, shipper_term, "the log shipper waits for the app");
    let deadline = t0 + 6 * s;
    for sidecar in ["vault-agent", "istio-proxy"] {
        assert_near(
            p.kernel_signal(pod, sidecar, 15),
            deadline,
            SLACK_NS,
            &format!("{sidecar}'s SIGTERM at the deadline"),
        );
    }
    for (sidecar, term) in [
        ("log-shipper", shipper_term),
        ("istio-proxy", p.kernel_signal(pod, "istio-proxy", 15)),
    ] {
        assert_near(
            p.kernel_signal(pod, sidecar, 9),
            term + 2 * s,
            SLACK_NS,
            &format!("{sidecar}'s SIGKILL 2 s after its SIGTERM"),
        );
        assert_eq!(p.kernel_exit(pod, sidecar, 0)["container_exit_code"], 137);
    }
    // Sidecars' 137s do not fail the pod: the phase follows the app's 0,
    // as the API published it and the agent recorded it.
    let phases = p.rec.phases(pod);
    assert_eq!(phases.last(), Some(&"Succeeded"), "phases seen: {phases:?}");
    let audit = p.audit_of(pod);
    assert_eq!(
        audit
            .verdict(lifecycle_audit::RuleId::T2)
            .map(|v| v.outcome),
        Some(lifecycle_audit::Outcome::Held),
        "no order violation"
    );
    let short = audit
        .findings
        .iter()
        .find(|f| f.kind == lifecycle_audit::FindingKind::SidecarsShortOfTime)
        .expect("the advisory");
    assert!(
        short.message.starts_with("3 sidecar(s)"),
        "{}",
        short.message
    );
}

#[test]
fn a_kubelet_restart_retries_the_termination_with_the_full_grace() {
    let p = play("kubelet-restart-during-termination");
    let pod = "ledger-writer-7c9e1a3b5d-k2l3m";
    let t0 = p.t0(pod);
    let s = p.second_ns();
    // The driver's log: the kubelet died 4 s in, came back 1 s later and
    // started the termination over.
    let log = &p.report.log;
    for action in ["KubeletStopped", "KubeletStarted", "TerminationRetried"] {
        assert!(
            log.iter()
                .any(|e| format!("{:?}", e.action).starts_with(action)),
            "{action} in the driver's log"
        );
    }
    // The agent recorded the kubelet's Starting Event for the pod.
    assert_eq!(p.rec.pod_changes(pod, "kubelet_started").count(), 1);
    // containerd 1.6 does not send the stop signal twice: one SIGTERM, no
    // SIGKILL, and the app's own exit 14 s after t0, past G = 10 s.
    let pid = p.pid(pod, "writer");
    let sigterms = p
        .rec
        .signals_to(pid)
        .into_iter()
        .filter(|r| r["signal"] == 15)
        .count();
    assert_eq!(sigterms, 1, "containerd skipped the retry's SIGTERM");
    let runtime_kills = p
        .rec
        .signals_to(pid)
        .into_iter()
        .filter(|r| r["signal"] == 9 && r["sender"]["comm"] == "runc")
        .count();
    assert_eq!(runtime_kills, 0, "no SIGKILL at the first deadline");
    let exit = p.kernel_exit(pod, "writer", 0);
    assert_eq!(exit["container_exit_code"], 0);
    assert_before(t0 + 10 * s, boot(exit), "the termination outlasted G");
    let t = p
        .audit_of(pod)
        .termination
        .as_ref()
        .expect("the termination");
    let restart = t
        .kubelet_restart
        .as_ref()
        .expect("the restart, from the Event");
    assert!(restart.retry.is_none(), "no repeated signal to retry with");
    let retried_deadline = t.deadline.expect("a deadline") - t.t0.expect("t0").ns;
    assert!(
        retried_deadline > 14 * s as i64,
        "the deadline counts from the retry: t0 + {} ms",
        retried_deadline / 1_000_000
    );
}
