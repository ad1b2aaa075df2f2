//! `lifecycle-agent run` attached to the node simulator: a scenario played
//! at real speed (time scale 1), with the daemon auditing live and
//! exporting to the OTLP test receiver. The findings that arrive as span
//! events must be exactly the scenario file's `expect` list, the same list
//! the offline audit of a recording is held to (tests/scenarios/main.rs).

#![allow(clippy::unwrap_used)]
// a test may unwrap: a panic is its failure

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use lifecycle_audit::{AuditConfig, audit_records};
use lifecycle_recording::read_recording;
use lifecycle_testkit::require_root;
use otlp_receiver::Receiver;

mod events;
mod prometheus;
mod rig;

use rig::*;

#[test]
fn live_audits_of_a_scenario_match_its_expect_list() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rig = Rig::start();
    let Rig {
        scenario,
        receiver,
        api,
        ..
    } = &rig;
    let agent = rig.agent("agent");

    let report = node_sim::scenario::run(scenario, api.server(), real_speed())
        .unwrap_or_else(|e| panic!("scenario failed: {e}"));
    assert_eq!(report.pods.len(), 1);

    let mut expected: Vec<Key> = scenario
        .expect
        .for_kubelet(scenario.kubelet, scenario.kubelet)
        .expect("expectations for the scenario's kubelet")
        .iter()
        .map(|e| {
            (
                e.rule.clone(),
                e.kind.clone(),
                e.severity.clone(),
                e.pod.clone(),
                e.container.clone(),
            )
        })
        .collect();
    expected.sort();
    // The termination audit comes 5 s after the pod object is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = received_findings(receiver);
    while received != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        received = received_findings(receiver);
    }
    let journal = agent.journal.join("journal.jsonl");
    let (status, stderr) = agent.stop();
    let by_span: Vec<(String, String, usize)> = receiver
        .spans()
        .iter()
        .map(|s| {
            (
                s.span.name.clone(),
                format!("{:02x?}", &s.span.trace_id[..4]),
                s.span.events.iter().filter(|e| e.name == "finding").count(),
            )
        })
        .collect();
    assert_eq!(
        received, expected,
        "live findings at the receiver vs the scenario's expect list\nspans (name, trace, findings): {by_span:?}\n{stderr}"
    );
    assert!(status.success(), "exit 0 on SIGTERM\n{stderr}");

    // The daemon's journal, audited offline like `report`, finds the same.
    let (records, _) = read_recording(&journal).expect("the journal reads");
    let config = AuditConfig {
        kubelet: scenario
            .kubelet
            .to_string()
            .parse()
            .expect("kubelet version"),
        ..AuditConfig::default()
    };
    let mut offline: Vec<Key> = audit_records(records, &config)
        .iter()
        .flat_map(|a| &a.findings)
        .map(|f| {
            (
                f.rule.to_string(),
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                f.severity.to_string(),
                f.pod.clone(),
                f.container.clone(),
            )
        })
        .collect();
    offline.sort();
    assert_eq!(offline, expected, "the journal audited offline");
}

#[test]
fn an_agent_restarted_during_a_termination_exports_a_partial_audit() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pod = "reviews-v1-6f7c9d5b8-kx2qp";
    let rig = Rig::start();
    let Rig {
        scenario,
        runtime,
        receiver,
        api,
        ..
    } = &rig;
    let start = |name: &str| rig.agent(name);
    let first = start("agent-1");

    let second = std::thread::scope(|scope| {
        let play = scope.spawn(|| node_sim::scenario::run(scenario, api.server(), real_speed()));
        // The delete reaches the first agent; SIGTERMs follow at once, the
        // proxy drains 5 s and the app 10 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !first
            .journal_of("pod")
            .iter()
            .any(|r| r["pod"] == pod && r["change"]["kind"] == "deletion_requested")
        {
            assert!(
                Instant::now() < deadline,
                "no delete seen\n{}",
                first.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        let (status, stderr) = first.stop();
        assert!(status.success(), "exit 0 on SIGTERM\n{stderr}");
        let second = start("agent-2");
        play.join()
            .expect("scenario thread")
            .unwrap_or_else(|e| panic!("scenario failed: {e}"));
        second
    });

    // The second agent found the containers running in /proc.
    let recovered = second
        .journal_of("process_exec")
        .into_iter()
        .filter(|r| r["recovered"]["source"] == "proc" && r["process"]["k8s"]["pod"] == pod)
        .count();
    assert!(
        recovered >= 2,
        "app and proxy recovered: {recovered}\n{}",
        second.stderr()
    );
    // It saw the proxy exit; its termination trace is partial and the
    // proxy's span ends at that exit.
    let proxy_exit = second
        .journal_of("process_exit")
        .into_iter()
        .find(|r| r["process"]["k8s"]["container"] == "istio-proxy")
        .unwrap_or_else(|| panic!("the proxy's exit\n{}", second.stderr()));
    let exit_ns = proxy_exit["time_ns"].as_u64().expect("time_ns");
    let proxy_span = |r: &Receiver| {
        r.spans().into_iter().find(|s| {
            text(&s.span.attributes, "k8s.container.name").as_deref() == Some("istio-proxy")
                && s.span.name == "container.termination"
                && s.span.end_time_unix_nano == exit_ns
        })
    };
    let arrived =
        runtime.block_on(receiver.wait_until(Duration::from_secs(30), |r| proxy_span(r).is_some()));
    assert!(
        arrived,
        "the second agent's termination trace\n{}",
        second.stderr()
    );
    let trace = proxy_span(receiver).expect("span").span.trace_id;
    let spans: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.span.trace_id == trace)
        .collect();
    let root = spans
        .iter()
        .find(|s| s.span.parent_span_id.is_empty())
        .expect("root span");
    assert_eq!(
        bool_attr(&root.span.attributes, "lifecycle.audit.partial"),
        Some(true)
    );
    let rules: Vec<String> = spans
        .iter()
        .flat_map(|s| &s.span.events)
        .filter(|e| e.name == "finding")
        .filter_map(|e| text(&e.attributes, "lifecycle.finding.rule"))
        .collect();
    assert!(
        rules.iter().any(|r| r == "M1"),
        "the app's traffic after the proxy exited is still found: {rules:?}"
    );
    // The first agent's view (stopped during the termination) is another
    // trace, also partial.
    let other_roots: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.span.name == "pod.termination" && s.span.trace_id != trace)
        .collect();
    assert!(
        other_roots
            .iter()
            .all(|s| bool_attr(&s.span.attributes, "lifecycle.audit.partial") == Some(true)),
        "the first agent's in-flight audit is marked partial"
    );
    let (status, stderr) = second.stop();
    assert!(status.success(), "exit 0 on SIGTERM\n{stderr}");
}

/// A Job whose legacy proxy keeps it Running: the T5 finding reaches the
/// receiver while the pod still runs, within 30 s of the worker's exit,
/// not at the cleanup delete 25 s after it.
#[test]
fn a_job_stuck_on_its_legacy_sidecar_is_reported_while_it_runs() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pod = "nightly-sync-29384800-q7w8e";
    let rig = Rig::with(catalogue_scenario("job-istio-legacy-never-completes"));
    let Rig {
        scenario,
        receiver,
        api,
        ..
    } = &rig;
    let agent = rig.agent("agent");
    let t5 = |r: &Receiver| {
        received_findings(r)
            .iter()
            .any(|k| k.0 == "T5" && k.1 == "job_sidecars_kept_running" && k.3 == pod)
    };
    let (report, reported_at) = std::thread::scope(|scope| {
        let play = scope.spawn(|| node_sim::scenario::run(scenario, api.server(), real_speed()));
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut reported_at = None;
        while reported_at.is_none() && Instant::now() < deadline && !play.is_finished() {
            if t5(receiver) {
                reported_at = Some(node_sim::clock::Stamp::now().boot_ns);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let report = play
            .join()
            .expect("scenario thread")
            .unwrap_or_else(|e| panic!("scenario failed: {e}"));
        (report, reported_at)
    });
    let (status, stderr) = agent.stop();
    assert!(status.success(), "exit 0 on SIGTERM\n{stderr}");
    let reported_at = reported_at.unwrap_or_else(|| panic!("no T5 finding arrived live\n{stderr}"));
    let at = |want: &dyn Fn(&node_sim::Action) -> bool| {
        report
            .log
            .iter()
            .find(|e| want(&e.action) && e.container.as_deref().is_none_or(|c| c == "sync"))
            .map(|e| e.at.boot_ns)
            .expect("in the driver's log")
    };
    let exited = at(&|a| matches!(a, node_sim::Action::ContainerExited { .. }));
    let deleted = at(&|a| matches!(a, node_sim::Action::DeletionRequested { .. }));
    assert!(
        reported_at < deleted,
        "reported {} ms after the delete",
        (reported_at - deleted) / 1_000_000
    );
    let after = reported_at - exited;
    assert!(
        after < 30_000_000_000,
        "reported {} ms after the worker's exit",
        after / 1_000_000
    );
}
