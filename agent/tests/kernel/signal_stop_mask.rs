//! A container whose pod spec names a stop signal outside `--signals`
//! (`lifecycle.stopSignal: SIGURG` here) has that signal recorded: the
//! agent widens the probes' mask when the pod watch reports the pod.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use lifecycle_testkit::{Driver, FakePod, Recording, spawn_in, workload_path};
use serde_json::{Value, json};

use crate::support::agent::AGENT;
use crate::support::cluster::Cluster;
use crate::support::kernel::exclusive;

const URGS: u64 = 50;

/// Waits until the recording holds the pod's `added` line.
fn wait_for_pod(path: &std::path::Path, uid: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let seen = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|r| r["type"] == "pod" && r["pod_uid"] == uid);
        if seen {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the pod never reached the recording");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_stop_signal_joins_the_mask() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let cluster = Cluster::start().await;
    let uid = cluster.create(json!({
        "metadata": {"name": "httpd-1", "namespace": "shop"},
        "spec": {"nodeName": "node-a", "containers": [
            {"name": "web", "image": "registry.example/shop/web:1.0",
             "lifecycle": {"stopSignal": "SIGURG"}}
        ]}
    }));
    let mut pod = FakePod::with_uid(Driver::Systemd, &uid);
    let web = pod.add_container();
    let args = cluster.record_args();
    let recording = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Recording::start(AGENT.as_ref(), &args)
    })
    .await
    .unwrap();
    let output = recording.output.clone();
    let pod_uid = uid.clone();
    tokio::task::spawn_blocking(move || wait_for_pod(&output, &pod_uid))
        .await
        .unwrap();

    let dir = web.dir.clone();
    let (receiver, sender) = tokio::task::spawn_blocking(move || {
        let mut catch = Command::new(workload_path());
        catch.args(["catch", "23"]).stdout(Stdio::piped());
        let mut receiver = spawn_in(&dir, &mut catch);
        let mut out = BufReader::new(receiver.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let pid = receiver.id().to_string();
        let mut send = Command::new(workload_path());
        send.args(["send", &pid, "23", &URGS.to_string(), "15", "1"])
            .stdout(Stdio::null());
        let mut sender = spawn_in(&dir, &mut send);
        assert!(sender.wait().unwrap().success());
        assert!(receiver.wait().unwrap().success());
        (receiver.id() as u64, sender.id() as u64)
    })
    .await
    .unwrap();
    let records = tokio::task::spawn_blocking(move || recording.stop())
        .await
        .unwrap();

    let urgs = records
        .iter()
        .filter(|r| r["type"] == "signal_generate" && r["signal"] == 23)
        .filter(|r| r["sender"]["pid"] == sender && r["target"]["pid"] == receiver)
        .count() as u64;
    assert_eq!(urgs, URGS, "every SIGURG recorded once the pod was seen");
    let stats = records.last().unwrap();
    assert!(
        stats["filtered_signals"]["signal_generate"]["SIGURG"].is_null(),
        "{stats}"
    );
    let recorded = stats["recorded_signals"].as_array().expect("the mask");
    assert!(recorded.contains(&Value::from("SIGURG")), "{stats}");
    assert_eq!(recorded.len(), 11, "the default ten and SIGURG: {stats}");
}
