//! `lifecycle-agent run` attached to the node simulator: a scenario played
//! at real speed (time scale 1), with the daemon auditing live and
//! exporting to the OTLP test receiver. The findings that arrive as span
//! events must be exactly the scenario file's `expect` list, the same list
//! the offline audit of a recording is held to (tests/scenarios/main.rs).

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use lifecycle_agent::audit::{AuditConfig, audit_records, read_recording};
use lifecycle_testkit::require_root;
use node_sim::{RunOptions, Scenario, SimApi, TimeScale};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value as AnyValue};
use otlp_receiver::Receiver;

const NODE: &str = "node-sim-live";

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

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .and_then(|v| match v {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

fn readyz(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    write!(stream, "GET /readyz HTTP/1.1\r\nhost: t\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
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

#[test]
fn live_audits_of_a_scenario_match_its_expect_list() {
    require_root();
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/istio-legacy-refused.yaml");
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = runtime.block_on(Receiver::start()).expect("receiver");
    let api = SimApi::start(scenario.kubelet).expect("test API server");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let health = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let stderr_path = dir.path().join("agent.stderr");
    let mut agent = Command::new(agent_path())
        .args(["run", "--node-name", NODE, "--otlp-protocol", "grpc"])
        .arg("--journal-dir")
        .arg(dir.path().join("journal"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--health-addr")
        .arg(health.to_string())
        .arg("--otlp-endpoint")
        .arg(receiver.endpoint())
        .arg("--kubelet-version")
        .arg(scenario.kubelet.to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start lifecycle-agent run");
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while readyz(health) != Some(200) {
        assert!(Instant::now() < deadline, "agent never ready\n{}", stderr());
        std::thread::sleep(Duration::from_millis(100));
    }

    let report = node_sim::scenario::run(
        &scenario,
        api.server(),
        RunOptions {
            node_name: Some(NODE.into()),
            scale: Some(TimeScale::new(1.0)),
            ..RunOptions::default()
        },
    )
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
    let mut received = received_findings(&receiver);
    while received != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        received = received_findings(&receiver);
    }
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let status = agent.wait().expect("wait for the agent");
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
        received,
        expected,
        "live findings at the receiver vs the scenario's expect list\nspans (name, trace, findings): {by_span:?}\n{}",
        stderr()
    );
    assert!(status.success(), "exit 0 on SIGTERM\n{}", stderr());

    // The daemon's journal, audited offline like `report`, finds the same.
    let (records, _) =
        read_recording(&dir.path().join("journal/journal.jsonl")).expect("the journal reads");
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
