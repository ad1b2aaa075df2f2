//! Jobs with a database proxy (legacy and native) and helper sidecars
//! (log shipper, secrets agent) around the app.

use lifecycle_audit::{Outcome, RuleId, termination::Trigger};

use crate::{
    Played, SLACK_NS, assert_before, assert_near, capture_listen,
    common::{
        play,
        recording::{boot, ms},
    },
};

/// The audit's termination trigger of a pod is a Job completion, and its
/// T5 verdict.
fn job_completion_t5(p: &Played, pod: &str) -> Outcome {
    let audit = p.audit_of(pod);
    let termination = audit.termination.as_ref().expect("a termination");
    assert!(
        matches!(termination.trigger, Trigger::JobCompletion { .. }),
        "{:?}",
        termination.trigger
    );
    audit.verdict(RuleId::T5).expect("T5 judged").outcome
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
        proxy_term > boot(report_exit) + 8 * p.second_ns(),
        "nothing stopped the sidecar when the work was done ({} ms after)",
        ms(proxy_term - boot(report_exit))
    );
    // Started together (legacy): the first query comes before the proxy listens.
    let listening = capture_listen(&p, pod, "cloud-sql-proxy", 5432, 0);
    let refused = p.rec.refused(pod, "report");
    assert!(
        refused.first().is_some_and(|r| boot(r) < listening),
        "the worker's first query is refused: {refused:?}"
    );
    // T5 covers native sidecars: its finding reports the legacy one
    // (warning, in `expect`) without breaking the rule.
    assert_eq!(job_completion_t5(&p, pod), Outcome::Held);
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
    assert_eq!(job_completion_t5(&p, pod), Outcome::Held);
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
fn a_job_kept_running_by_its_legacy_proxy_is_audited_while_it_runs() {
    let p = play("job-istio-legacy-never-completes");
    let pod = "nightly-sync-29384800-q7w8e";
    let done = boot(p.kernel_exit(pod, "sync", 0));
    let audit = p.audit_of(pod);
    assert_eq!(audit.completed_by, lifecycle_audit::Completion::JobStuck);
    // Audited from what came before the cleanup delete (25 s after the
    // exit): nothing of the delete is in it.
    let deletion = p
        .rec
        .pod_changes(pod, "deletion_requested")
        .filter_map(|r| r["time_ns"].as_i64())
        .min()
        .expect("deletion seen");
    assert!(audit.last_ns < deletion, "the audit predates the delete");
    assert!(
        audit
            .termination
            .as_ref()
            .is_some_and(|t| matches!(t.trigger, Trigger::JobCompletion { .. }))
    );
    assert!(
        !p.has_kernel_signal(pod, "istio-proxy", 15)
            || p.kernel_signal(pod, "istio-proxy", 15) > done + 20 * p.second_ns(),
        "nothing signalled the proxy until the cleanup delete"
    );
    assert_eq!(
        job_completion_t5(&p, pod),
        Outcome::Held,
        "legacy: T5 covers native sidecars"
    );
    assert_eq!(phases_before_deletion(&p, pod), ["Pending", "Running"]);
}

/// The worker's last act told `sidecar` to quit: it exited 0 with the
/// worker, unsignalled, and the Job completed.
fn quit_completes(name: &str, pod: &str, worker: &str, sidecar: &str) {
    let p = play(name);
    let worker_exit = boot(p.kernel_exit(pod, worker, 0));
    let exit = p.kernel_exit(pod, sidecar, 0);
    assert_eq!(exit["container_exit_code"], 0, "{exit}");
    assert!(
        boot(exit).abs_diff(worker_exit) < p.second_ns(),
        "{sidecar} quit with the worker's last act"
    );
    assert!(!p.has_kernel_signal(pod, sidecar, 15), "no SIGTERM needed");
    assert!(!p.events(pod, worker, "quit_sent").is_empty());
    assert!(
        phases_before_deletion(&p, pod).contains(&"Succeeded".to_owned()),
        "the Job completed"
    );
}

#[test]
fn the_quitquitquit_workaround_lets_the_job_complete() {
    quit_completes(
        "job-cloud-sql-proxy-quitquitquit",
        "nightly-report-29384722-d4f5g",
        "report",
        "cloud-sql-proxy",
    );
}

#[test]
fn istios_quitquitquit_lets_the_meshed_job_complete() {
    quit_completes(
        "job-istio-legacy-quitquitquit",
        "nightly-sync-29384801-r8t9y",
        "sync",
        "istio-proxy",
    );
}
