//! The agent's own DaemonSet container on the real runtime: the image that
//! `cargo xtask image` builds runs on the node's containerd with exactly
//! the DaemonSet's settings (deploy/base/daemonset.yaml: capabilities,
//! RuntimeDefault seccomp, read-only root, uid 0, its hostPath mounts, no
//! host network, no host PID), beside an agent on the host, while a
//! scenario plays. The containerised agent's audit must equal the host
//! agent's, and both the scenario's `expect` list.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{NODE, load, record_node, serial};
use lifecycle_audit::{AuditConfig, Finding, PodAudit, audit_records};
use lifecycle_recording::{Record, read_recording};
use lifecycle_testkit::{http_get, require_root};
use node_sim::{
    Node, NodeOptions, SimApi,
    daemonset::pod_configs,
    net::{cluster::NODE_IP, forward::Forwarder},
    runtime::{Qos, cgroups::pod_path, hierarchy},
    scenario::{
        RunOptions,
        run::{peers_of, run_on},
    },
};
use serde_json::Value;

const SCENARIO: &str = "istio-legacy-refused";
const AGENT_UID: &str = "7e3c1a52-0d4b-4f1e-9a2c-5b6d7e8f9a0b";

/// `target/image/lifecycle-agent-<version>.oci.tar`, made by `cargo xtask
/// image` (which `cargo xtask test` runs before the tests).
fn image_archive() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let archive = root.join(format!(
        "target/image/lifecycle-agent-{}.oci.tar",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(
        archive.exists(),
        "{} is missing: run `cargo xtask image` (cargo xtask test does)",
        archive.display()
    );
    archive
}

/// `ctr images import`; returns the image's reference.
fn import(node: &Node, archive: &Path) -> String {
    let out = std::process::Command::new("ctr")
        .arg("--address")
        .arg(node.containerd().address())
        .args(["-n", "k8s.io", "images", "import"])
        .arg(archive)
        .output()
        .expect("ctr");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ctr import: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .skip_while(|w| *w != "unpacking")
        .nth(1)
        .unwrap_or_else(|| panic!("no image name in ctr's output: {text}"))
        .to_owned()
}

type Key = (String, String, String, String, Option<String>);

fn key(f: &Finding) -> Key {
    let text = |v: Value| v.as_str().unwrap_or_default().to_owned();
    (
        f.rule.to_string(),
        text(serde_json::to_value(f.kind).unwrap_or_default()),
        text(serde_json::to_value(f.severity).unwrap_or_default()),
        f.pod.clone(),
        f.container.clone(),
    )
}

fn keys(audits: &[PodAudit]) -> Vec<Key> {
    let mut keys: Vec<Key> = audits
        .iter()
        .flat_map(|a| a.findings.iter().map(key))
        .collect();
    keys.sort();
    keys
}

/// Whether two audits' JSON agree: the same structure and values, record
/// sequence numbers left out (each agent numbers its own lines), and times
/// within 1 ms (each agent puts the kernel's boot-clock times on the wall
/// clock with its own sample of the offset, microseconds apart), except the
/// times each agent's own watch observed, within 100 ms.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in names.into_iter().filter(|k| !k.contains("seq")) {
                let null = Value::Null;
                let (xv, yv) = (x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null));
                same(xv, yv, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (x, y))| same(x, y, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) if is_time(path) => {
            let (x, y) = (x.as_i64().unwrap_or(0), y.as_i64().unwrap_or(0));
            let bound = if from_the_watch(path) {
                100_000_000
            } else {
                1_000_000
            };
            (x.abs_diff(y) < bound)
                .then_some(())
                .ok_or_else(|| format!("{path}: {x} vs {y}"))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            ((x - y).abs() < 1e-3)
                .then_some(())
                .ok_or_else(|| format!("{path}: {x} vs {y}"))
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

fn is_time(path: &str) -> bool {
    path.ends_with(".ns") || path.ends_with(".deadline") || path.ends_with(".kubelet_start")
}

/// Times that come from when the agent's own watch delivered a change (the
/// deletion, a grace change), and what is derived from them.
fn from_the_watch(path: &str) -> bool {
    ["grace_changes", "observed", "deadline", "kubelet_start"]
        .iter()
        .any(|k| path.contains(k))
}

fn audit(records: Vec<Record>, uids: &BTreeSet<String>, kubelet: &str) -> Vec<PodAudit> {
    let config = AuditConfig {
        kubelet: kubelet.parse().expect("kubelet version"),
        ..AuditConfig::default()
    };
    audit_records(records, &config)
        .into_iter()
        .filter(|a| uids.contains(&a.pod.uid))
        .collect()
}

fn daemonset() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base/daemonset.yaml");
    let text = std::fs::read_to_string(&path).expect("daemonset.yaml");
    serde_saphyr::from_str(&text).expect("daemonset yaml")
}

#[test]
fn the_agent_in_its_daemonset_container_audits_like_the_host_agent() {
    require_root();
    let _serial = serial();
    let scenario = load(SCENARIO);
    let archive = image_archive();
    let api = SimApi::start(scenario.kubelet).expect("API server");
    let node = Node::start(
        NodeOptions {
            node_name: NODE.into(),
            version: scenario.kubelet,
            peers: peers_of(&scenario).expect("peers"),
            workdir: None,
        },
        api.server(),
    )
    .expect("node");
    let dir = node.workdir().join("agent-pod");
    let (kube_dir, journal_dir, logs) = (dir.join("kube"), dir.join("journal"), dir.join("logs"));
    for d in [&kube_dir, &journal_dir, &logs] {
        std::fs::create_dir_all(d).expect("dirs");
    }
    // The API server listens on the host's loopback; pods reach it at the
    // node's bridge address. (The forwarder listens on every address of
    // the node namespace: the bridge gets its own with the first sandbox.)
    let api_addr = api
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    let forward =
        Forwarder::start(node.netns(), ([0, 0, 0, 0], 0).into(), api_addr).expect("forwarder");
    let via_bridge = format!("http://{NODE_IP}:{}", forward.local_addr().port());
    let kubeconfig = api
        .server()
        .kubeconfig_yaml()
        .replace(&api.url(), &via_bridge);
    std::fs::write(kube_dir.join("config"), kubeconfig).expect("kubeconfig");
    let host_kubeconfig = dir.join("host-kubeconfig");
    api.write_kubeconfig(&host_kubeconfig).expect("kubeconfig");

    // The host agent first: it mounts tracefs if this machine has none yet,
    // and the container's hostPath mount of /sys/kernel/tracing needs it.
    let host = record_node(&host_kubeconfig);

    let daemonset = daemonset();
    let image = import(&node, &archive);
    let configs = pod_configs(
        &daemonset,
        &image,
        ("lifecycle-agent", "lifecycle-agent-x7k2p", AGENT_UID),
        NODE,
        logs.to_str().expect("utf-8"),
        &[
            ("LIFECYCLE_AGENT_KUBECONFIG".into(), "/kube/config".into()),
            ("LIFECYCLE_AGENT_JOURNAL_DIR".into(), "/journal".into()),
        ],
        &[
            (kube_dir.display().to_string(), "/kube".into(), true),
            (journal_dir.display().to_string(), "/journal".into(), false),
        ],
    )
    .expect("the DaemonSet's pod");
    let cgroup = pod_path(Qos::Burstable, AGENT_UID);
    hierarchy::create_pod_cgroup(&cgroup).expect("pod cgroup");
    node.containerd().track_cgroup(&cgroup);
    let cri = node.cri();
    let sandbox = cri
        .run_pod_sandbox("agent", configs.sandbox.clone())
        .expect("RunPodSandbox");
    let pod_ip = cri.sandbox_status("agent", &sandbox).expect("status").ip;
    let agent = cri
        .create_container("agent", &sandbox, configs.container, configs.sandbox)
        .expect("CreateContainer");
    cri.start_container("agent", &agent)
        .expect("StartContainer");
    let agent_log = || std::fs::read_to_string(logs.join("agent.log")).unwrap_or_default();

    // Ready: probes attached and the pod list synced, as the kubelet's
    // readiness probe would see it.
    let readyz = format!("{pod_ip}:9464").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = node
            .netns()
            .run_in(|| http_get(readyz, "/readyz").map(|r| r.0))
            .ok()
            .flatten();
        if status == Some(200) {
            break;
        }
        let info = cri.container_status("agent", &agent).expect("status");
        assert!(
            Instant::now() < deadline && info.finished_at_ns == 0,
            "the containerised agent never got ready ({info:?}); its log:\n{}",
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let options = RunOptions {
        node_name: Some(NODE.into()),
        ..RunOptions::default()
    };
    let report = run_on(&node, &scenario, &options);
    std::thread::sleep(Duration::from_millis(600));
    let host_records = host.stop();
    // SIGTERM with the pod's grace: the agent drains, finishes its audits
    // and closes its journal (its collector is not reachable here: the
    // export gives up at the agent's shutdown timeout, within the grace).
    let grace = daemonset
        .pointer("/spec/template/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    cri.stop_container("agent", &agent, grace)
        .expect("StopContainer");
    let exit = cri.container_status("agent", &agent).expect("status");
    let log = agent_log();
    let _ = cri.remove_container("agent", &agent);
    let _ = cri.stop_pod_sandbox("agent", &sandbox);
    let _ = cri.remove_pod_sandbox("agent", &sandbox);
    let _ = hierarchy::remove_pod_cgroup(&cgroup);
    let report = report.unwrap_or_else(|e| panic!("scenario {SCENARIO} failed: {e}"));
    assert_eq!(
        exit.exit_code, 0,
        "the agent's exit on SIGTERM; its log:\n{log}"
    );

    let uids: BTreeSet<String> = report.pods.iter().map(|p| p.uid.clone()).collect();
    let kubelet = scenario.kubelet.to_string();
    let host_records: Vec<Record> = host_records
        .into_iter()
        .map(|r| serde_json::from_value(r).expect("a recording line"))
        .collect();
    let (journal, _) =
        read_recording(&journal_dir.join("journal.jsonl")).expect("the container's journal");
    let from_host = audit(host_records, &uids, &kubelet);
    let from_container = audit(journal, &uids, &kubelet);
    let mut expected: Vec<Key> = scenario
        .expect
        .findings
        .iter()
        .map(|e| {
            let (rule, kind) = (e.rule.clone(), e.kind.clone());
            (
                rule,
                kind,
                e.severity.clone(),
                e.pod.clone(),
                e.container.clone(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(keys(&from_host), expected, "the host agent's findings");
    assert_eq!(
        keys(&from_container),
        keys(&from_host),
        "the containerised agent's findings; its log:\n{log}"
    );
    assert_eq!(from_container.len(), from_host.len(), "one audit per pod");
    for (h, c) in from_host.iter().zip(&from_container) {
        assert!(
            h.termination.is_some(),
            "{}: a termination audit",
            h.pod.name
        );
        let h_json = serde_json::to_value(&h.termination).expect("json");
        let c_json = serde_json::to_value(&c.termination).expect("json");
        if let Err(difference) = same(&c_json, &h_json, "termination") {
            panic!(
                "{}: the containerised agent's termination audit differs from the host agent's at {difference}",
                h.pod.name
            );
        }
    }
}
