//! Findings as Kubernetes Events, end to end: `run` attached to a scenario
//! on the real runtime posts an `events.k8s.io/v1` Event for each warning
//! of the scenario's expect list (none for a clean pod), and the real
//! kubectl shows them: `describe pod` while the pod exists, `get events`
//! and `kubectl events` after it is gone.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use lifecycle_testkit::require_root;
use serde_json::Value;

use crate::rig::*;

/// `kubectl --kubeconfig … args`: stdout, or the failure with stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's Events in `ns`: reason -> (series count or 1, the Event).
fn agent_events(rig: &Rig, ns: &str) -> BTreeMap<String, (u64, Value)> {
    rig.api
        .server()
        .events_v1(ns)
        .into_iter()
        .filter(|e| e["reportingController"] == "lifecycle-agent")
        .map(|e| {
            let count = e["series"]["count"].as_u64().unwrap_or(1);
            (
                e["reason"].as_str().unwrap_or_default().to_owned(),
                (count, e),
            )
        })
        .collect()
}

/// The Events the scenario's expect list calls for: warnings and errors,
/// by reason (the kind in CamelCase), with how often each occurs.
fn expected_events(rig: &Rig) -> BTreeMap<String, u64> {
    let scenario = &rig.scenario;
    let mut out = BTreeMap::new();
    for e in scenario
        .expect
        .for_kubelet(scenario.kubelet, scenario.kubelet)
        .expect("expectations for the scenario's kubelet")
    {
        if e.severity == "info" {
            continue;
        }
        let reason: String = e
            .kind
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        *out.entry(reason).or_insert(0) += 1;
    }
    out
}

#[test]
fn a_scenarios_warnings_become_events_kubectl_shows() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rig = Rig::with(catalogue_scenario("istio-legacy-refused"));
    let pod = "reviews-v1-6f7c9d5b8-kx2qp";
    let ns = "bookinfo";
    let agent = rig.agent("agent");
    let expected = expected_events(&rig);
    assert!(
        expected.contains_key("StartupRace") && expected.contains_key("ProxyGoneBeforeApp"),
        "{expected:?}"
    );

    // While the pod runs: its startup audit's Event is in `describe pod`.
    let described = std::thread::scope(|scope| {
        let play =
            scope.spawn(|| node_sim::scenario::run(&rig.scenario, rig.api.server(), real_speed()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut described = None;
        while described.is_none() && Instant::now() < deadline && !play.is_finished() {
            if agent_events(&rig, ns).contains_key("StartupRace")
                && rig.api.server().pod(ns, pod).is_some()
            {
                described = Some(kubectl(
                    &rig.kubeconfig,
                    &["describe", "pod", "-n", ns, pod],
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        play.join()
            .expect("scenario thread")
            .unwrap_or_else(|e| panic!("scenario failed: {e}"));
        described
    });
    let described = described
        .unwrap_or_else(|| panic!("no StartupRace Event while the pod ran\n{}", agent.stderr()));
    let section = described
        .split_once("Events:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no Events section:\n{described}"));
    let line = section
        .lines()
        .find(|l| l.contains("StartupRace"))
        .unwrap_or_else(|| panic!("describe shows no StartupRace:\n{section}"));
    assert!(
        line.contains("Warning") && line.contains("lifecycle-agent"),
        "{line}"
    );

    // After the delete: the termination audit's Events (5 s after the pod
    // object is gone).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = agent_events(&rig, ns);
    let counts = |got: &BTreeMap<String, (u64, Value)>| -> BTreeMap<String, u64> {
        got.iter().map(|(r, (n, _))| (r.clone(), *n)).collect()
    };
    while counts(&got) != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        got = agent_events(&rig, ns);
    }
    let metrics = lifecycle_testkit::http_get(agent.health, "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default();
    let (status, stderr) = agent.stop();
    assert!(status.success(), "exit 0 on SIGTERM\n{stderr}");
    assert_eq!(
        counts(&got),
        expected,
        "one Event per warning of the expect list, repeats in the series\n{stderr}"
    );
    for (reason, (_, e)) in &got {
        assert_eq!(e["regarding"]["name"], pod, "{reason}");
        assert_eq!(e["reportingInstance"], NODE, "{reason}");
        assert!(
            e["regarding"]["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{reason}: the deleted pod's uid"
        );
    }
    let posted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("lifecycle_agent_k8s_events_posted_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(posted >= 1.0, "the posted counter moved:\n{metrics}");

    // The pod is gone; its Events are not.
    assert!(rig.api.server().pod(ns, pod).is_none());
    let field = format!("involvedObject.name={pod}");
    let table = kubectl(
        &rig.kubeconfig,
        &["get", "events", "-n", ns, "--field-selector", &field],
    );
    let listed = kubectl(
        &rig.kubeconfig,
        &["events", "-n", ns, "--for", &format!("pod/{pod}")],
    );
    for reason in expected.keys() {
        let row = table
            .lines()
            .find(|l| l.contains(reason.as_str()))
            .unwrap_or_else(|| panic!("kubectl get events shows no {reason}:\n{table}"));
        assert!(
            row.contains("Warning") && row.contains(&format!("pod/{pod}")),
            "{row}"
        );
        assert!(
            listed.lines().any(|l| l.contains(reason.as_str())),
            "kubectl events shows no {reason}:\n{listed}"
        );
    }
}

#[test]
fn a_clean_native_pod_gets_no_event() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rig = Rig::with(catalogue_scenario("istio-pilot-agent-native"));
    let ns = rig.scenario.pods[0]
        .manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let agent = rig.agent("agent");
    node_sim::scenario::run(&rig.scenario, rig.api.server(), real_speed())
        .unwrap_or_else(|e| panic!("scenario failed: {e}"));
    // The termination audit comes 5 s after the pod object is gone; wait
    // for it in the metrics, then look.
    let deadline = Instant::now() + Duration::from_secs(30);
    let audited = || {
        lifecycle_testkit::http_get(agent.health, "/metrics").is_some_and(|(_, body)| {
            body.lines().any(|l| {
                l.starts_with("lifecycle_audits_total{")
                    && l.contains("lifecycle_audit_completed_by=\"terminated\"")
            })
        })
    };
    while !audited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(audited(), "the termination audit\n{}", agent.stderr());
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = agent.stop();
    assert!(status.success(), "exit 0 on SIGTERM\n{stderr}");
    let got = agent_events(&rig, &ns);
    assert!(got.is_empty(), "no Event for a clean pod: {got:?}");
}
