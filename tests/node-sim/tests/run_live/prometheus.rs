//! A real Prometheus (Debian's 2.42) scrapes `lifecycle-agent run` every
//! second, with deploy/prometheus/rules.yaml loaded, while the node
//! simulator plays three scenarios. Then every query of the Grafana
//! dashboard (deploy/grafana/lifecycle-agent.json) and every alert rule
//! must answer what the scenarios did, as listed in `WANT` and `ALERTS`:
//! a metric or label renamed in the agent, or misspelt in the dashboard or
//! the rules, fails here instead of leaving a panel blank.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use lifecycle_testkit::{http_get, require_root};
use node_sim::Scenario;

use crate::rig::*;

mod api;
mod checks;

use api::{Prometheus, Series};
use checks::{check_alerts, check_variables, dashboard_queries, judge, show, unknown_names};

/// Termination and mesh findings (legacy Istio), a SIGKILL at the deadline,
/// and Go's preemption signals (counted in the kernel by the default mask).
const SCENARIOS: [&str; 3] = [
    "istio-legacy-refused",
    "app-ignores-sigterm",
    "go-preemption-signals",
];

/// Grafana's built-ins as the test sets them: the windows are longer than
/// the whole run, so every query sees all of it; variables match all.
const BUILTINS: [(&str, &str); 6] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "10m"),
    ("$cluster", ".*"),
    ("$namespace", ".*"),
    ("$workload", ".*"),
];

/// What one dashboard query must return. Series are picked by
/// `label=value` pairs (comma separated).
enum Want {
    /// The findings the scenario files expect (`from_expect`).
    Expected,
    /// Exactly these series.
    Exactly(&'static [(&'static str, Check)]),
    /// At least one series, these among them; every other one passes the check.
    Has(&'static [(&'static str, Check)], Check),
    /// No series, for this reason.
    Empty(&'static str),
}
use Want::*;

#[derive(Clone, Copy, Debug)]
enum Check {
    Eq(f64),
    AtLeast(f64),
    Within(f64, f64),
}
use Check::*;

const POS: Check = AtLeast(1e-9);
const ANY: Check = AtLeast(0.0);
const ZERO: Check = Eq(0.0);

#[rustfmt::skip]
const WANT: &[(&str, Want)] = &[
    ("Findings by rule/A", Expected),
    ("Findings by severity/A", Expected),
    ("Audits by outcome/A", Exactly(&[
        ("lifecycle_workload_name=reviews-v1,lifecycle_audit_completed_by=startup_complete,lifecycle_audit_partial=false", Eq(1.0)),
        ("lifecycle_workload_name=reviews-v1,lifecycle_audit_completed_by=terminated,lifecycle_audit_partial=false", Eq(1.0)),
        ("lifecycle_workload_name=legacy-batch,lifecycle_audit_completed_by=startup_complete", Eq(1.0)),
        ("lifecycle_workload_name=legacy-batch,lifecycle_audit_completed_by=terminated", Eq(1.0)),
        ("lifecycle_workload_name=inventory,lifecycle_audit_completed_by=startup_complete", Eq(1.0)),
        ("lifecycle_workload_name=inventory,lifecycle_audit_completed_by=terminated", Eq(1.0)),
    ])),
    ("Termination order violations/A", Exactly(&[("lifecycle_workload_name=reviews-v1,lifecycle_finding_kind=proxy_gone_before_app", Eq(1.0))])),
    // No early_sigkill: every SIGKILL came at the deadline.
    ("SIGKILLs: early and at the deadline/A", Exactly(&[("lifecycle_workload_name=legacy-batch,lifecycle_finding_kind=sigkilled", Eq(1.0))])),
    ("SIGKILLs: early and at the deadline/B", Exactly(&[("lifecycle_workload_name=legacy-batch,lifecycle_container_kind=app", Eq(1.0))])),
    // reviews, istio-proxy, batch, inventory; istio-init had exited.
    ("Grace used/A", Has(&[("le=+Inf", Eq(4.0)), ("le=0.01", ZERO)], ANY)),
    // A container killed at the deadline lands in the (1, 1.1] bucket.
    ("Grace used p50 / p90 by container kind/A", Exactly(&[("lifecycle_container_kind=app", Within(0.0, 1.1)), ("lifecycle_container_kind=legacy_sidecar", Within(0.0, 1.0))])),
    ("Grace used p50 / p90 by container kind/B", Exactly(&[("lifecycle_container_kind=app", Within(0.0, 1.1)), ("lifecycle_container_kind=legacy_sidecar", Within(0.0, 1.0))])),
    ("SIGTERM to exit by container kind/A", Exactly(&[("lifecycle_container_kind=app", Within(1.0, 30.0)), ("lifecycle_container_kind=legacy_sidecar,lifecycle_sidecar_role=mesh_proxy", Within(2.5, 10.0))])),
    // Apps: reviews drains 10 s, batch is killed at 5 s, inventory drains 1 s; Envoy drains 5 s.
    ("SIGTERM to exit by container kind/B", Exactly(&[("lifecycle_container_kind=app", Within(5.0, 6.5)), ("lifecycle_container_kind=legacy_sidecar,lifecycle_sidecar_role=mesh_proxy", Within(4.9, 5.5))])),
    // reviews vs Envoy: exec and connect before it listened, accept after.
    ("Startup gap/A", Has(&[("le=+Inf", Eq(3.0)), ("le=0", Eq(2.0)), ("le=-10", ZERO)], ANY)),
    ("Startup gap p50 by kind/A", Exactly(&[("lifecycle_startup_gap_kind=exec", Within(-10.0, 0.0)), ("lifecycle_startup_gap_kind=connect", Within(-10.0, 0.0)), ("lifecycle_startup_gap_kind=accept", Within(0.0, 60.0))])),
    ("Connects before the sidecar listened/A", Exactly(&[("lifecycle_workload_name=reviews-v1,lifecycle_sidecar_role=mesh_proxy", Eq(1.0))])),
    ("Connects before the sidecar listened/B", Exactly(&[("lifecycle_workload_name=reviews-v1,lifecycle_finding_rule=S4", Eq(1.0))])),
    // Envoy listens after 1 s; after its exit the app drains 5 s more.
    ("Bypass window time by cause/A", Exactly(&[("lifecycle_bypass_cause=before_proxy_start", Within(0.5, 3.0)), ("lifecycle_bypass_cause=after_proxy_exit", Within(4.0, 7.0))])),
    ("Bypass window time by cause/B", Exactly(&[("lifecycle_bypass_cause=before_proxy_start", Eq(1.0)), ("lifecycle_bypass_cause=after_proxy_exit", Eq(1.0))])),
    ("Refused vs plaintext flows in bypass windows/A", Exactly(&[("lifecycle_workload_name=reviews-v1", AtLeast(2.0))])),
    ("Refused vs plaintext flows in bypass windows/B", Empty("the capture refused what the app sent while Envoy was down (fail-closed): no flow left in plaintext")),
    ("Agents ready/A", Exactly(&[("", Eq(1.0))])),
    ("Agents ready/B", Exactly(&[("", Eq(1.0))])),
    ("Kernel events decoded/A", Has(&[("lifecycle_event_kind=process_exec", POS), ("lifecycle_event_kind=signal_generate", POS), ("lifecycle_event_kind=socket", POS)], ANY)),
    ("Kernel drops and unattributed events/A", Has(&[], ZERO)),
    ("Kernel drops and unattributed events/B", Has(&[], ANY)),
    ("Kernel drops and unattributed events/C", Has(&[], ZERO)),
    // Go's SIGURG, counted in the kernel by the default mask, at both probes.
    ("Signals not recorded one by one/A", Has(&[("lifecycle_signal_name=SIGURG,lifecycle_event_kind=signal_generate", POS)], ANY)),
    // The default mask filters them in the kernel: nothing is summarized
    // (the series exist at 0 from the start).
    ("Signals not recorded one by one/B", Exactly(&[("lifecycle_signal_name=SIGURG", ZERO), ("lifecycle_signal_name=SIG32", ZERO), ("lifecycle_signal_name=SIG33", ZERO)])),
    ("Join with the pod model/A", Has(&[], ANY)),
    // Deleted pods stay in the store for --deleted-pod-ttl (10 min).
    ("Pod watch and store/A", Exactly(&[("lifecycle_pod_state=live", ZERO), ("lifecycle_pod_state=deleted", Eq(3.0))])),
    ("Pod watch and store/B", Exactly(&[("", ZERO)])),
    ("Pod watch and store/C", Exactly(&[("", ZERO)])),
    ("Pod watch and store/D", Exactly(&[("", ZERO)])),
    // Warnings are posted; the three info findings are not (--k8s-events-info off).
    ("Kubernetes Events/A", Has(&[("lifecycle_k8s_event_verb=create", POS)], ANY)),
    ("Kubernetes Events/B", Has(&[], ANY)),
    ("Kubernetes Events/C", Has(&[], ZERO)),
    // increase() of a counter older than the run is extrapolated a little.
    ("Kubernetes Events/D", Exactly(&[("", Within(3.0, 3.3))])),
    ("Kubernetes Events/E", Exactly(&[("", ZERO)])),
    ("Export queue/A", Exactly(&[("", ANY)])),
    ("Export delivery/A", Has(&[("lifecycle_export_signal=traces", POS)], ANY)),
    ("Export delivery/B", Has(&[], ZERO)),
    ("Export delivery/C", Has(&[], ZERO)),
    ("Journal/A", Exactly(&[("", POS)])),
    ("Journal/B", Exactly(&[("", ZERO)])),
];

/// The values each query variable offers, or why none.
#[rustfmt::skip]
const VARIABLES: &[(&str, Result<&[&str], &str>)] = &[
    ("cluster", Err("the test's target has no cluster label; All (.*) also matches series without it, which every query above shows")),
    ("namespace", Ok(&["bookinfo", "default", "shop"])),
    ("workload", Ok(&["inventory", "legacy-batch", "reviews-v1"])),
];

/// Each alert rule: the labels of the alert the scenarios must fire
/// (rules without `for`), or why it stays silent. The finding alerts can
/// only fire on a workload's first finding if their rule counts a series
/// born inside its window: the agent creates a counter at its first
/// increment, at 1, and `increase()` alone reads such a series as 0.
#[rustfmt::skip]
const ALERTS: &[(&str, Result<&str, &str>)] = &[
    ("LifecycleTerminationOrderViolated", Ok("lifecycle_workload_name=reviews-v1,lifecycle_finding_kind=proxy_gone_before_app")),
    ("LifecycleEarlySigkill", Err("no SIGKILL came before the deadline")),
    ("LifecycleSigkilledAtDeadline", Ok("lifecycle_workload_name=legacy-batch,k8s_namespace_name=default")),
    ("LifecyclePlaintextBypass", Err("no flow left in plaintext")),
    ("LifecycleRefusedWhileProxyDown", Err("a dozen refusals are ~0.02/s over 10 min, under 0.1 (and `for: 10m` could not elapse)")),
    ("LifecycleJobBlockedByLegacySidecar", Err("no Job among the scenarios")),
    ("LifecycleAgentNotReady", Err("the agent is ready (and `for: 5m` could not elapse)")),
    ("LifecycleAgentKernelDrops", Err("the ring buffer dropped nothing")),
    ("LifecycleAgentSignalStorm", Err("a few hundred SIGURG/s for seconds, not 5000/s (and `for: 10m` could not elapse)")),
    ("LifecycleAgentExportDropping", Err("the OTLP receiver took everything")),
    ("LifecycleAgentJournalWriteErrors", Err("the journal wrote every line")),
    ("LifecycleAgentEventsDropped", Err("the test API server took every Event")),
];

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn prometheus_answers_every_dashboard_query_and_alert() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let scenarios: Vec<Scenario> = SCENARIOS.iter().map(|s| catalogue_scenario(s)).collect();
    let rig = Rig::with(scenarios[0].clone());
    let agent = Running(Some(rig.agent("agent")));
    let health = agent.0.as_ref().expect("agent").health;
    // LIFECYCLE_RULES: try a candidate rules file instead of the repo's.
    let rules = std::env::var_os("LIFECYCLE_RULES")
        .map_or_else(|| repo("deploy/prometheus/rules.yaml"), PathBuf::from);
    let prom = Prometheus::start(health, &rules);
    prom.wait_for("up", |v| v == 1.0);
    for s in &scenarios {
        node_sim::scenario::run(s, rig.api.server(), real_speed())
            .unwrap_or_else(|e| panic!("{} failed: {e}", s.name));
    }
    // The last termination audit lands 5 s after its pod object is gone.
    let pods = scenarios.iter().map(|s| s.pods.len()).sum::<usize>() as f64;
    let terminated = r#"sum(lifecycle_audits_total{lifecycle_audit_completed_by="terminated"})"#;
    prom.wait_for(terminated, |v| v == pods);
    // Two more scrapes and rule evaluations.
    std::thread::sleep(Duration::from_secs(3));

    let (_, metrics) = http_get(health, "/metrics").expect("the agent's /metrics");
    let names = prom.names(&metrics);
    let mut failures = Vec::new();
    let mut wanted: BTreeSet<&str> = WANT.iter().map(|w| w.0).collect();
    let dashboard = repo("deploy/grafana/lifecycle-agent.json");
    let queries = dashboard_queries(&dashboard);
    let ids: BTreeSet<&str> = queries.iter().map(|q| q.0.as_str()).collect();
    if ids.len() != queries.len() {
        failures.push("two dashboard queries share a panel title and refId".into());
    }
    for (id, expr) in &queries {
        failures.extend(unknown_names(id, expr, &names));
        let want = WANT.iter().find(|w| w.0 == id).map(|w| &w.1);
        wanted.remove(id.as_str());
        let problem = prom.query(expr).map_or_else(Some, |got| {
            let why = match want {
                Some(Empty(why)) => format!(" (expected empty: {why})"),
                _ => String::new(),
            };
            eprintln!("{id}: {}{why}", show(&got));
            let problem = match want {
                Some(Expected) => from_expect(id, &scenarios, &got),
                Some(want) => judge(want, &got),
                None => Some("no expectation in WANT".into()),
            };
            problem.map(|p| format!("{p}; got {}", show(&got)))
        });
        failures.extend(problem.map(|p| format!("{id}: {p}\n  {expr}")));
    }
    failures.extend(
        wanted
            .iter()
            .map(|id| format!("{id}: in WANT, not in the dashboard")),
    );
    failures.extend(check_variables(&prom, &dashboard, &names));
    failures.extend(check_alerts(&prom, &rules, &names));

    eprintln!("test time {:.1} s", started.elapsed().as_secs_f64());
    let (status, stderr) = agent.take().stop();
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}\nprometheus log:\n{}",
        failures.len(),
        failures.join("\n"),
        prom.log()
    );
    assert!(status.success(), "agent exit 0 on SIGTERM\n{stderr}");
}

/// The two findings panels must count what the scenario files expect:
/// per workload, rule, kind and severity, and in sum per severity.
fn from_expect(id: &str, scenarios: &[Scenario], got: &Series) -> Option<String> {
    let by_severity = id.starts_with("Findings by severity");
    let key = |rule: &str, kind: &str, severity: &str, workload: &str| {
        if by_severity {
            severity.to_owned()
        } else {
            format!("{workload} {rule} {kind} {severity}")
        }
    };
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for s in scenarios {
        let expected = s.expect.for_kubelet(s.kubelet, s.kubelet).expect("expect");
        for f in expected {
            let owner = s
                .pods
                .iter()
                .map(|p| &p.manifest)
                .find(|m| m["metadata"]["name"] == f.pod.as_str())
                .and_then(|m| m.pointer("/metadata/ownerReferences/0/name")?.as_str())
                .expect("the pod's ReplicaSet");
            let deployment = owner.rsplit_once('-').map_or(owner, |d| d.0);
            *want
                .entry(key(&f.rule, &f.kind, &f.severity, deployment))
                .or_default() += 1.0;
        }
    }
    let l = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    let have: BTreeMap<String, f64> = got
        .iter()
        .map(|(m, v)| {
            let k = key(
                &l(m, "lifecycle_finding_rule"),
                &l(m, "lifecycle_finding_kind"),
                &l(m, "lifecycle_finding_severity"),
                &l(m, "lifecycle_workload_name"),
            );
            (k, *v)
        })
        .collect();
    (have != want).then(|| format!("the expect lists say {want:?}"))
}

/// The agent, killed and reaped if the test panics before it is stopped.
struct Running(Option<Agent>);

impl Running {
    fn take(mut self) -> Agent {
        self.0.take().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(agent) = &mut self.0 {
            let _ = agent.child.kill();
            let _ = agent.child.wait();
        }
    }
}
