//! The rig of the live tests: the test API server, the OTLP receiver, a
//! kubeconfig, and `lifecycle-agent run` children attached to them.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use lifecycle_testkit::{free_local_addr, http_get};
use node_sim::{RunOptions, Scenario, SimApi};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value as AnyValue};
use otlp_receiver::Receiver;
use serde_json::Value;

pub const NODE: &str = "node-sim-live";

/// One daemon and one scenario at a time: both want the machine's cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn agent_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LIFECYCLE_AGENT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("lifecycle-agent")
}

pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

pub fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn bool_attr(attrs: &[KeyValue], key: &str) -> Option<bool> {
    match attr(attrs, key)? {
        AnyValue::BoolValue(b) => Some(*b),
        _ => None,
    }
}

pub fn readyz(addr: SocketAddr) -> Option<u16> {
    http_get(addr, "/readyz").map(|(status, _)| status)
}

pub type Key = (String, String, String, String, Option<String>);

/// Findings as the receiver got them, from the `finding` events of each
/// pod's termination trace, and the startup rules (S1–S4) from its startup
/// trace (sent when the pod became ready, so it may also carry the bypass
/// findings known then, which the termination trace repeats).
pub fn received_findings(receiver: &Receiver) -> Vec<Key> {
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
pub struct Agent {
    pub child: Child,
    pub health: SocketAddr,
    pub journal: PathBuf,
    pub log: PathBuf,
}

impl Agent {
    /// Starts the daemon against the simulator's API server and the
    /// receiver, and waits until it is ready.
    pub fn start(
        dir: &Path,
        name: &str,
        kubeconfig: &Path,
        otlp: &str,
        kubelet: &str,
        extra: &[&str],
    ) -> Self {
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
            .args(extra)
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

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Journal records of one type.
    pub fn journal_of(&self, kind: &str) -> Vec<Value> {
        std::fs::read_to_string(self.journal.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["type"] == kind)
            .collect()
    }

    /// SIGTERM; the exit status.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the agent");
        (status, self.stderr())
    }
}

pub fn catalogue_scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.yaml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn legacy_scenario() -> Scenario {
    catalogue_scenario("istio-legacy-refused")
}

/// What both tests run against: the legacy scenario, the OTLP receiver on
/// its own runtime, the test API server and a kubeconfig for it. Fields
/// drop in order: the receiver before the runtime it runs on.
pub struct Rig {
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
    pub api: SimApi,
    pub receiver: Receiver,
    pub runtime: tokio::runtime::Runtime,
    pub scenario: Scenario,
}

impl Rig {
    pub fn start() -> Self {
        Self::with(legacy_scenario())
    }

    pub fn with(scenario: Scenario) -> Self {
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
    pub fn agent(&self, name: &str) -> Agent {
        self.agent_with(name, &[])
    }

    /// The same with `extra` flags.
    pub fn agent_with(&self, name: &str, extra: &[&str]) -> Agent {
        Agent::start(
            self.dir.path(),
            name,
            &self.kubeconfig,
            &self.receiver.endpoint(),
            &self.scenario.kubelet.to_string(),
            extra,
        )
    }
}

pub fn real_speed() -> RunOptions {
    RunOptions {
        node_name: Some(NODE.into()),
        ..RunOptions::default()
    }
}
