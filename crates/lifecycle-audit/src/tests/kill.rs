//! Deadlines, SIGKILLs, restarts and Job completion: T3, T5, T6, T7, X2,
//! and what is not a termination.

use serde_json::json;

use super::{kinds, one, outcome, problems, running_legacy, running_native};
use crate::{
    AuditConfig, FindingKind, Outcome, RuleId, Severity,
    termination::{ApiOrder, StateAtStart, Trigger},
    testing::{BASE_NS, By, Script, manifest},
};

#[test]
fn grace_expiry_collapses_order_and_sigkills_the_app() {
    let (mut s, proxy, app) = running_native(5);
    s.at(1000.0).delete(5);
    s.at(1010.0).signal(By::Runtime, &app, 15, "ignore");
    s.at(6005.0).term(&proxy);
    s.at(6010.0).kill(&app);
    s.at(6020.0).exit(&proxy, 0);
    let audit = s.audit();

    let t = audit.termination.as_ref().unwrap();
    assert_eq!(
        t.container("app")
            .unwrap()
            .stop_signal
            .as_ref()
            .unwrap()
            .result,
        "ignored"
    );
    assert_eq!(t.deadline, Some(crate::testing::BASE_NS + 6_000_000_000));
    let used = t.container("app").unwrap().grace_used.unwrap();
    assert!((used - 1.002).abs() < 1e-6, "{used}");
    assert_eq!(
        outcome(&audit, RuleId::T2),
        Outcome::Held,
        "deadline, not order"
    );
    let exhausted = one(&audit, FindingKind::GraceExhausted);
    assert_eq!(exhausted.rule, RuleId::T3);
    let killed = one(&audit, FindingKind::Sigkilled);
    assert!(
        killed.message.contains("PID 1 ignored SIGTERM (SIG_IGN)"),
        "{}",
        killed.message
    );
    assert_eq!(outcome(&audit, RuleId::T3), Outcome::Held);
    assert!(!kinds(&audit).contains(&FindingKind::EarlySigkill));
}

/// A namespace init without a SIGTERM handler: the kernel drops the
/// runtime's SIGTERM, and the SIGKILL's finding says so rather than blaming
/// the app for ignoring it.
#[test]
fn sigkill_of_a_bare_namespace_init_names_the_kernel_rule() {
    let (mut s, proxy, app) = running_native(5);
    s.at(1000.0).delete(5);
    s.at(1010.0).signal_to_bare_init(By::Runtime, &app, 15);
    s.at(6005.0).term(&proxy);
    s.at(6010.0).kill(&app);
    s.at(6020.0).exit(&proxy, 0);
    let audit = s.audit();
    let stop = audit
        .termination
        .as_ref()
        .unwrap()
        .container("app")
        .unwrap();
    let stop = stop.stop_signal.as_ref().unwrap();
    assert_eq!(
        (stop.target_action.as_deref(), stop.target_ns_init),
        (Some("default"), Some(true))
    );
    let killed = one(&audit, FindingKind::Sigkilled);
    assert!(
        killed
            .message
            .contains("PID 1 without a handler; the kernel ignores SIGTERM for a namespace init"),
        "{}",
        killed.message
    );
}

#[test]
fn sigkill_before_the_timeout_violates_t3() {
    let (mut s, _proxy, app) = running_legacy(30);
    s.at(1000.0).delete(30);
    s.at(1010.0).signal(By::Runtime, &app, 15, "handler");
    s.at(2010.0).kill(&app);
    let audit = s.audit();
    assert_eq!(outcome(&audit, RuleId::T3), Outcome::Violated);
    let f = one(&audit, FindingKind::EarlySigkill);
    assert!(
        f.message.starts_with("app got SIGKILL at t0+1.000 s"),
        "{}",
        f.message
    );
}

#[test]
fn process_alive_after_the_deadline_violates_t3_unless_recording_too_short() {
    let run = |end_ms: f64| {
        let (mut s, proxy, app) = running_legacy(2);
        s.at(1000.0).delete(2);
        s.at(1010.0)
            .term(&proxy)
            .signal(By::Runtime, &app, 15, "ignore");
        s.at(1020.0).killed(&proxy, 15);
        s.at(end_ms).condition("Ready", false);
        s.audit()
    };
    let long = run(10_000.0);
    assert_eq!(outcome(&long, RuleId::T3), Outcome::Violated);
    let f = one(&long, FindingKind::AliveAfterDeadline);
    assert_eq!(f.container.as_deref(), Some("app"));
    let short = run(3_500.0);
    assert_eq!(outcome(&short, RuleId::T3), Outcome::Unknown);
}

fn shortened(second_delete: bool) -> crate::PodAudit {
    let (mut s, proxy, app) = running_legacy(30);
    s.at(1000.0).delete(30);
    s.at(1010.0)
        .signal(By::Runtime, &app, 15, "handler")
        .term(&proxy);
    s.at(1020.0).exit(&proxy, 0);
    if second_delete {
        s.at(3000.0).delete(5);
    }
    s.at(3010.0).signal(By::Runtime, &app, 15, "handler");
    s.at(8010.0).kill(&app);
    s.audit()
}

#[test]
fn shortened_grace_explains_a_second_sigterm_and_an_earlier_kill() {
    let audit = shortened(true);
    let t = audit.termination.as_ref().unwrap();
    assert_eq!(t.grace_s, 5);
    assert_eq!(
        t.grace_changes
            .iter()
            .map(|g| g.grace_s)
            .collect::<Vec<_>>(),
        vec![30, 5]
    );
    assert_eq!(t.deadline, Some(crate::testing::BASE_NS + 8_000_000_000));
    assert_eq!(outcome(&audit, RuleId::X2), Outcome::Held);
    assert_eq!(outcome(&audit, RuleId::T3), Outcome::Held);
    assert!(kinds(&audit).contains(&FindingKind::Sigkilled));

    let unexplained = shortened(false);
    assert_eq!(outcome(&unexplained, RuleId::X2), Outcome::Violated);
    assert!(
        one(&unexplained, FindingKind::RepeatedStopSignal)
            .message
            .contains("2.000 s after")
    );
    assert_eq!(outcome(&unexplained, RuleId::T3), Outcome::Violated);
    one(&unexplained, FindingKind::EarlySigkill);
}

fn job(sidecar_stops: bool, sidecar_restarts: bool) -> crate::PodAudit {
    job_with_api(sidecar_stops, sidecar_restarts, false)
}

/// With `api`, the API reports both exits in the same whole second.
fn job_with_api(sidecar_stops: bool, sidecar_restarts: bool, api: bool) -> crate::PodAudit {
    let mut m = manifest(
        json!([{"name": "cloud-sql-proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2",
                "restartPolicy": "Always"}]),
        json!([{"name": "migrate", "image": "shop/migrate:1"}]),
        json!({"restartPolicy": "Never"}),
    );
    m["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "migrate-29", "uid": "j", "controller": true}]);
    let mut s = Script::new(m);
    s.at(0.0);
    let proxy = s.start("cloud-sql-proxy", "/cloud-sql-proxy");
    s.at(10.0).listen(&proxy, "127.0.0.1", 5432, 0);
    s.at(500.0);
    let app = s.start("migrate", "/migrate");
    s.at(3000.0).exit(&app, 0);
    if api {
        s.api_running("cloud-sql-proxy").api_running("migrate");
        s.at(3001.0).api_terminated("migrate", 0);
    }
    if sidecar_restarts {
        s.at(3010.0).exit(&proxy, 1);
        s.at(3500.0);
        let again = s.start("cloud-sql-proxy", "/cloud-sql-proxy");
        s.at(3600.0).term(&again);
        s.at(3610.0).exit(&again, 0);
    } else if sidecar_stops {
        s.at(3020.0).term(&proxy);
        s.at(3040.0).exit(&proxy, 0);
        if api {
            s.at(3041.0).api_terminated("cloud-sql-proxy", 0);
        }
    }
    s.at(40_000.0).condition("Ready", false);
    s.audit()
}

#[test]
fn job_whose_main_container_exits_by_itself() {
    let audit = job(true, false);
    let t = audit.termination.as_ref().unwrap();
    assert!(matches!(t.trigger, Trigger::JobCompletion { .. }));
    let migrate = t.container("migrate").unwrap();
    assert_eq!(migrate.state_at_start, StateAtStart::Exited);
    // The exit that completed the Job is the main container's exit: the
    // kernel orders the sidecar's exit after it.
    let exit = migrate.exit.expect("the completing exit");
    assert_eq!((exit.at.ns, exit.code), (BASE_NS + 3_000_000_000, 0));
    assert_eq!(t.exit_order, ["migrate", "cloud-sql-proxy"]);
    assert_eq!(t.exit_pairs.len(), 1);
    assert_eq!(t.exit_pairs[0].kernel_gap_s, Some(0.04));
    assert_eq!(outcome(&audit, RuleId::T5), Outcome::Held);
    assert_eq!(outcome(&audit, RuleId::T6), Outcome::NotApplicable);
    assert!(problems(&audit).is_empty(), "{:#?}", audit.findings);

    let stuck = job(false, false);
    assert_eq!(outcome(&stuck, RuleId::T5), Outcome::Violated);
    one(&stuck, FindingKind::JobSidecarsKeptRunning);

    let restarted = job(true, true);
    assert_eq!(outcome(&restarted, RuleId::T5), Outcome::Violated);
    let f = one(&restarted, FindingKind::JobSidecarRestarted);
    assert!(f.message.contains("0.500 s after"), "{}", f.message);
}

#[test]
fn job_exits_in_one_api_second_are_ordered_by_the_kernel() {
    let audit = job_with_api(true, false, true);
    let pair = &audit.termination.as_ref().unwrap().exit_pairs[0];
    assert_eq!(pair.api, ApiOrder::SameSecond);
    assert_eq!(pair.kernel_gap_s, Some(0.04));
    assert_eq!(
        outcome(&audit, RuleId::A1),
        Outcome::Held,
        "{:#?}",
        audit.verdicts
    );
}

fn never_started(stop_ms: f64, config: &AuditConfig) -> crate::PodAudit {
    let m = manifest(
        json!([{"name": "vault-agent", "image": "hashicorp/vault:1.17", "restartPolicy": "Always"},
               {"name": "fluent-bit", "image": "fluent/fluent-bit:3", "restartPolicy": "Always"}]),
        json!([{"name": "app", "image": "shop/app:1"}]),
        json!({"terminationGracePeriodSeconds": 10}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    let vault = s.start("vault-agent", "/vault");
    s.api_running("vault-agent");
    s.at(1000.0).delete(10);
    s.at(stop_ms).term(&vault);
    s.at(stop_ms + 10.0).exit(&vault, 0);
    s.audit_with(config)
}

#[test]
fn never_started_sidecar_must_not_hold_back_the_others() {
    let config = AuditConfig::default();
    let blocked = never_started(11_000.0, &config);
    assert_eq!(outcome(&blocked, RuleId::T7), Outcome::Violated);
    let f = one(&blocked, FindingKind::BlockedByNeverStartedSidecar);
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("never-started sidecar fluent-bit"),
        "{}",
        f.message
    );
    assert_eq!(outcome(&blocked, RuleId::T2), Outcome::Held);

    let prompt = never_started(1_050.0, &config);
    assert_eq!(outcome(&prompt, RuleId::T7), Outcome::Held);
    assert!(problems(&prompt).is_empty(), "{:#?}", prompt.findings);

    let old = AuditConfig {
        kubelet: "1.30".parse().unwrap(),
        ..AuditConfig::default()
    };
    let on_130 = never_started(11_000.0, &old);
    let f = one(&on_130, FindingKind::BlockedByNeverStartedSidecar);
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("later patch releases"));
}

#[test]
fn sidecar_restart_during_termination_violates_t6() {
    let run = |config: &AuditConfig| {
        let (mut s, proxy, app) = running_native(30);
        s.at(1000.0).delete(30);
        s.at(1010.0).term(&app);
        s.at(1500.0).exit(&proxy, 1);
        s.at(1800.0);
        let again = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
        s.at(3000.0).exit(&app, 0);
        s.at(3050.0).term(&again);
        s.at(3060.0).exit(&again, 0);
        s.audit_with(config)
    };
    let audit = run(&AuditConfig::default());
    assert_eq!(outcome(&audit, RuleId::T6), Outcome::Violated);
    let f = one(&audit, FindingKind::RestartDuringTermination);
    assert_eq!(
        f.message,
        "sidecar istio-proxy restarted at t0+0.790 s, after termination began (T6)"
    );
    let future = AuditConfig {
        kubelet: "1.37".parse().unwrap(),
        ..AuditConfig::default()
    };
    assert_eq!(outcome(&run(&future), RuleId::T6), Outcome::NotApplicable);
}

#[test]
fn a_probe_kill_and_restart_is_not_a_pod_termination() {
    let (mut s, proxy, app) = running_legacy(30);
    // A liveness probe failed: the runtime stops the app, the kubelet
    // starts it again. No delete.
    s.at(5000.0).term(&app);
    s.at(5010.0).exit(&app, 143);
    s.at(6000.0);
    let again = s.start("app", "/app");
    s.at(7000.0).condition("Ready", true);
    let audit = s.audit();
    assert!(audit.termination.is_none(), "{:#?}", audit.termination);
    assert_eq!(outcome(&audit, RuleId::T6), Outcome::NotApplicable);

    // The whole pod stopped by the runtime without a delete in the
    // recording (an eviction): audited with an unknown trigger.
    s.at(8000.0).term(&again).term(&proxy);
    s.at(8010.0).exit(&again, 0).exit(&proxy, 0);
    let evicted = s.audit();
    let t = evicted.termination.as_ref().expect("termination");
    assert!(matches!(t.trigger, Trigger::Unknown { .. }));
    assert_eq!(t.exit_order, vec!["app", "istio-proxy"]);
}

/// A native sidecar whose leftover preStop `sleep 10` holds its stop signal
/// until t0 + 10 s, though the app exited at t0 + 2 s: an advisory with N.
#[test]
fn a_leftover_prestop_sleep_holding_a_native_sidecar_is_an_advisory() {
    let run = |prestop: bool| {
        let mut proxy = json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0",
                               "restartPolicy": "Always"});
        if prestop {
            proxy["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 10}}});
        }
        let m = manifest(
            json!([proxy]),
            json!([{"name": "app", "image": "shop/app:1"}]),
            json!({"terminationGracePeriodSeconds": 30}),
        );
        let mut s = Script::new(m);
        s.at(0.0);
        let proxy = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
        s.api_running("istio-proxy");
        s.at(20.0).listen(&proxy, "0.0.0.0", 15001, 1337);
        s.at(600.0);
        let app = s.start("app", "/app");
        s.api_running("app");
        s.at(1000.0).delete(30);
        s.at(1010.0).term(&app);
        s.at(3000.0).exit(&app, 0);
        let stop_ms = if prestop { 11_000.0 } else { 3_050.0 };
        s.at(stop_ms).term(&proxy);
        s.at(stop_ms + 20.0).exit(&proxy, 0);
        s.audit()
    };
    let held = run(true);
    let f = one(&held, FindingKind::SidecarHeldByPreStop);
    assert_eq!((f.rule, f.severity), (RuleId::T2, Severity::Info));
    assert!(
        f.message
            .contains("kept running 8.000 s after the last main container exited")
            && f.message.contains("preStop sleep 10 s"),
        "{}",
        f.message
    );
    assert_eq!(outcome(&held, RuleId::T2), Outcome::Held);
    assert!(!kinds(&run(false)).contains(&FindingKind::SidecarHeldByPreStop));
}

/// A legacy Linkerd proxy of a Job, hung in `/shutdown` and killed by its
/// liveness probe (SIGTERM, SIGKILL 5 s later, exit 137), fails the pod
/// although the worker exited 0 (linkerd/linkerd2#8033).
#[test]
fn a_legacy_sidecar_killed_after_the_work_fails_the_job_pod() {
    let run = |proxy_code: Option<i32>| {
        let mut m = manifest(
            json!([]),
            json!([{"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.1.1"},
                   {"name": "export", "image": "finance/export:1"}]),
            json!({"restartPolicy": "Never", "terminationGracePeriodSeconds": 5}),
        );
        m["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "export-1", "uid": "j", "controller": true}]);
        let mut s = Script::new(m);
        s.at(0.0);
        let proxy = s.start("linkerd-proxy", "/usr/lib/linkerd/linkerd2-proxy");
        s.at(500.0);
        let app = s.start("export", "/app/export");
        s.at(3000.0).exit(&app, 0);
        s.at(6000.0).term(&proxy);
        match proxy_code {
            Some(code) => {
                s.at(6010.0).exit(&proxy, code);
            }
            None => {
                s.at(11_000.0).kill(&proxy);
            }
        }
        s.at(11_100.0).phase(if proxy_code == Some(0) {
            "Succeeded"
        } else {
            "Failed"
        });
        s.audit()
    };
    let killed = run(None);
    let f = one(&killed, FindingKind::JobFailedBySidecar);
    assert_eq!(f.container.as_deref(), Some("linkerd-proxy"));
    for part in [
        "the Job pod failed because of its legacy sidecar linkerd-proxy: it exited 137",
        "SIGKILL from the container runtime 5.000 s after its SIGTERM",
        "a probe kill",
        "the API reports the pod Failed",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
    // Exiting 0 on its SIGTERM, the sidecar fails nothing.
    let clean = run(Some(0));
    assert!(
        clean
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::JobFailedBySidecar),
        "{:#?}",
        clean.findings
    );
}

/// The kubelet restarts 4 s into a 10 s grace; its new run stops the app
/// again at 5 s, with the full grace. The app exits at 14 s, past the
/// first deadline and within the retried one.
fn restarted_kubelet(event: bool) -> crate::PodAudit {
    restarted_kubelet_with(event, true)
}

/// `resend`: the runtime sends the stop signal again (containerd 1.6 does
/// not: it remembers having sent it).
fn restarted_kubelet_with(event: bool, resend: bool) -> crate::PodAudit {
    let (mut s, proxy, app) = running_legacy(10);
    s.at(1000.0).delete(10);
    s.at(1010.0)
        .signal(By::Runtime, &app, 15, "handler")
        .term(&proxy);
    s.at(1020.0).exit(&proxy, 0);
    if event {
        s.at(5000.0).kubelet_started();
    }
    if resend {
        s.at(6000.0).signal(By::Runtime, &app, 15, "handler");
    }
    s.at(15_000.0).exit(&app, 0);
    s.audit()
}

#[test]
fn a_kubelet_restart_explains_the_second_sigterm_and_the_longer_termination() {
    let audit = restarted_kubelet(true);
    let t = audit.termination.as_ref().unwrap();
    let restart = t.kubelet_restart.as_ref().expect("the restart");
    assert_eq!(
        restart.retry.map(|r| r.ns),
        Some(crate::testing::BASE_NS + 6_000_000_000)
    );
    assert_eq!(t.deadline, Some(crate::testing::BASE_NS + 16_000_000_000));
    assert_eq!(outcome(&audit, RuleId::X2), Outcome::Held);
    let x2 = audit.verdict(RuleId::X2).unwrap();
    assert!(
        x2.note
            .contains("repeated by the restarted kubelet's retry"),
        "{}",
        x2.note
    );
    assert!(
        !kinds(&audit).contains(&FindingKind::AliveAfterDeadline),
        "{:#?}",
        audit.findings
    );

    // containerd sends no second SIGTERM: the retry counts from the end of
    // the Event's second (5 s), and the exit is still within it.
    let quiet = restarted_kubelet_with(true, false);
    let t = quiet.termination.as_ref().unwrap();
    assert_eq!(t.deadline, Some(crate::testing::BASE_NS + 16_000_000_000));
    assert!(
        !kinds(&quiet).contains(&FindingKind::AliveAfterDeadline),
        "{:#?}",
        quiet.findings
    );
    assert!(
        kinds(&restarted_kubelet_with(false, false)).contains(&FindingKind::AliveAfterDeadline)
    );

    // Without the kubelet's Event, the same signals are unexplained.
    let unexplained = restarted_kubelet(false);
    assert!(
        unexplained
            .termination
            .as_ref()
            .unwrap()
            .kubelet_restart
            .is_none()
    );
    assert_eq!(outcome(&unexplained, RuleId::X2), Outcome::Violated);
    assert!(kinds(&unexplained).contains(&FindingKind::AliveAfterDeadline));
}
