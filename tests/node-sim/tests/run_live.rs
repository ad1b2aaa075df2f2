//! `lifecycle-agent run` attached to the node simulator: a scenario played
//! at real speed (time scale 1), with the daemon auditing live and
//! exporting to the OTLP test receiver. The findings that arrive as span
//! events must be exactly the scenario file's `expect` list, the same list
//! the offline audit of a recording is held to (tests/scenarios/main.rs).

#![allow(clippy::unwrap_used)]
// a test may unwrap: a panic is its failure

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use lifecycle_audit::{AuditConfig, audit_records};
use lifecycle_recording::read_recording;
use lifecycle_testkit::{free_local_addr, http_get, require_root};
use node_sim::{RunOptions, Scenario, SimApi};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value as AnyValue};
use otlp_receiver::Receiver;
use serde_json::Value;

const NODE: &str = "node-sim-live";

/// One daemon and one scenario at a time: both want the machine's cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn agent_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LIFECYCLE_AGENT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("lifecycle-agent")
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn bool_attr(attrs: &[KeyValue], key: &str) -> Option<bool> {
    match attr(attrs, key)? {
        AnyValue::BoolValue(b) => Some(*b),
        _ => None,
    }
}

fn readyz(addr: SocketAddr) -> Option<u16> {
    http_get(addr, "/readyz").map(|(status, _)| status)
}

type Key = (String, String, String, String, Option<String>);

/// Findings as the receiver got them, from the `finding` events of each
/// pod's termination trace, and the startup rules (S1–S4) from its startup
/// trace (sent when the pod became ready, so it may also carry the bypass
/// findings known then, which the termination trace repeats).
fn received_findings(receiver: &Receiver) -> Vec<Key> {
    let spans = receiver.spans();
    let roots: BTreeMap<Vec<u8>, (String, String)> = spans
        .iter()
        .filter(|s| s.span.parent_span_id.is_empty())
        .filter_map(|s| {
            let pod = text(&s.span.attributes, "k8s.pod.name")?;
            Some((s.span.trace_id.clone(), (s.span.name.clone(), pod)))
        })
        .collect();
    let mut out = Vec::new();
    for s in &spans {
        let Some((root, pod)) = roots.get(&s.span.trace_id) else {
            continue;
        };
        for event in s.span.events.iter().filter(|e| e.name == "finding") {
            let a = &event.attributes;
            let rule = text(a, "lifecycle.finding.rule").unwrap_or_default();
            let keep = match root.as_str() {
                "pod.termination" => !rule.starts_with('S'),
                "pod.startup" => rule.starts_with('S'),
                _ => false,
            };
            if !keep {
                continue;
            }
            out.push((
                rule,
                text(a, "lifecycle.finding.kind").unwrap_or_default(),
                text(a, "lifecycle.finding.severity").unwrap_or_default(),
                pod.clone(),
                text(a, "lifecycle.finding.container"),
            ));
        }
    }
    out.sort();
    out
}

/// A `lifecycle-agent run` child with its endpoints, journal and log.
struct Agent {
    child: Child,
    health: SocketAddr,
    journal: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// Starts the daemon against the simulator's API server and the
    /// receiver, and waits until it is ready.
    fn start(dir: &Path, name: &str, kubeconfig: &Path, otlp: &str, kubelet: &str) -> Self {
        let health = free_local_addr();
        let journal = dir.join(format!("{name}-journal"));
        let log = dir.join(format!("{name}.stderr"));
        let child = Command::new(agent_path())
            .args(["run", "--node-name", NODE, "--otlp-protocol", "grpc"])
            .arg("--journal-dir")
            .arg(&journal)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--health-addr")
            .arg(health.to_string())
            .arg("--otlp-endpoint")
            .arg(otlp)
            .arg("--kubelet-version")
            .arg(kubelet)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("stderr file"))
            .spawn()
            .expect("start lifecycle-agent run");
        let agent = Self {
            child,
            health,
            journal,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while readyz(agent.health) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "agent never ready\n{}",
                agent.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        agent
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Journal records of one type.
    fn journal_of(&self, kind: &str) -> Vec<Value> {
        std::fs::read_to_string(self.journal.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["type"] == kind)
            .collect()
    }

    /// SIGTERM; the exit status.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the agent");
        (status, self.stderr())
    }
}

fn catalogue_scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.yaml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn legacy_scenario() -> Scenario {
    catalogue_scenario("istio-legacy-refused")
}

/// What both tests run against: the legacy scenario, the OTLP receiver on
/// its own runtime, the test API server and a kubeconfig for it. Fields
/// drop in order: the receiver before the runtime it runs on.
struct Rig {
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    api: SimApi,
    receiver: Receiver,
    runtime: tokio::runtime::Runtime,
    scenario: Scenario,
}

impl Rig {
    fn start() -> Self {
        Self::with(legacy_scenario())
    }

    fn with(scenario: Scenario) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let receiver = runtime.block_on(Receiver::start()).expect("receiver");
        let api = SimApi::start(scenario.kubelet).expect("test API server");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Self {
            scenario,
            runtime,
            receiver,
            api,
            dir,
            kubeconfig,
        }
    }

    /// `lifecycle-agent run` named `name`, exporting to the receiver.
    fn agent(&self, name: &str) -> Agent {
        Agent::start(
            self.dir.path(),
            name,
            &self.kubeconfig,
            &self.receiver.endpoint(),
            &self.scenario.kubelet.to_string(),
        )
    }
}

fn real_speed() -> RunOptions {
    RunOptions {
        node_name: Some(NODE.into()),
        ..RunOptions::default()
    }
}

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
