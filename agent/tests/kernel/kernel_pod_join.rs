//! Kernel events from kubelet-style cgroups come out with the namespace, pod,
//! container name and role the Kubernetes API (the test API server, driven
//! like a kubelet) gives them, in one stream with the pod events; events of a
//! container the API has not reported yet wait and are attributed late.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use kube_api_server::{TestApiServer, clock::now_s};
use lifecycle_testkit::{Driver, FakePod, Recording, spawn_in, workload_path};
use serde_json::json;

use crate::support::agent::AGENT;
use crate::support::kernel::exclusive;

/// Polls the recording for a `stats` line whose join holds `at_least`
/// records; returns that count (or the last seen after 30 s).
fn wait_for_held(path: &std::path::Path, at_least: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut held = 0;
    while std::time::Instant::now() < deadline {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        held = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["type"] == "stats")
            .filter_map(|r| r["join"]["held"].as_u64())
            .max()
            .unwrap_or(0);
        if held >= at_least {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_events_carry_pod_and_container_names_and_roles() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let server = TestApiServer::start().await.expect("test API server");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let created = server
        .create_pod(json!({
            "metadata": {"name": "shop-7f9", "namespace": "shop",
                         "annotations": {"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"]}"}},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "app", "image": "registry.example/shop/app:1.0"},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0",
                 "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}]}
            ]}
        }))
        .expect("create pod");
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let mut pod = FakePod::with_uid(Driver::Systemd, &uid);
    let (app, proxy) = (pod.add_container(), pod.add_container());
    // Only the proxy is reported running for now.
    server
        .update_status("shop", "shop-7f9", now_s(), |s| {
            s.phase("Running");
            s.running("istio-proxy", &format!("containerd://{}", proxy.id))?;
            Ok(())
        })
        .unwrap();

    let kubeconfig_arg = kubeconfig.to_str().unwrap().to_string();
    let recording = tokio::task::spawn_blocking(move || {
        Recording::start(
            AGENT.as_ref(),
            &[
                "--node-name",
                "node-a",
                "--kubeconfig",
                &kubeconfig_arg,
                "--pending-max-age",
                "60s",
            ],
        )
    })
    .await
    .unwrap();

    let (proxy_dir, app_dir) = (proxy.dir.clone(), app.dir.clone());
    let (listener_pid, app_exit_pid) = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(workload_path());
        cmd.args(["listen", "127.0.0.1:0", "1"])
            .stdout(Stdio::piped());
        let mut listener = spawn_in(&proxy_dir, &mut cmd);
        let mut line = String::new();
        BufReader::new(listener.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().trim_start_matches("ready ").to_string();
        let mut connect = Command::new(workload_path());
        connect
            .args(["connect", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null());
        assert!(spawn_in(&app_dir, &mut connect).wait().unwrap().success());
        assert!(listener.wait().unwrap().success());
        let mut exit = Command::new(workload_path());
        exit.args(["exit", "4"]);
        let mut child = spawn_in(&app_dir, &mut exit);
        let pid = child.id();
        assert_eq!(child.wait().unwrap().code(), Some(4));
        (listener.id(), pid)
    })
    .await
    .unwrap();

    // Wait until the agent says it holds the app's events (the recording is
    // flushed per batch and per stats line), then the kubelet reports the
    // app and the held events are released.
    let output = recording.output.clone();
    let held = tokio::task::spawn_blocking(move || wait_for_held(&output, 7))
        .await
        .unwrap();
    assert!(
        held >= 7,
        "exec, connect start/established, close, exit; exec, exit: {held}"
    );
    server
        .update_status("shop", "shop-7f9", now_s(), |s| {
            s.running("app", &format!("containerd://{}", app.id))?;
            Ok(())
        })
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = tokio::task::spawn_blocking(move || recording.stop())
        .await
        .unwrap();

    let pod_added = records
        .iter()
        .find(|r| {
            r["type"] == "pod" && r["change"]["kind"] == "added" && r["pod_uid"] == uid.as_str()
        })
        .expect("pod added event in the stream");
    assert_eq!(
        (pod_added["namespace"].as_str(), pod_added["pod"].as_str()),
        (Some("shop"), Some("shop-7f9"))
    );

    let listen = records
        .iter()
        .find(|r| {
            r["type"] == "socket"
                && r["op"] == "listen_start"
                && r["owner"]["pid"] == listener_pid as u64
        })
        .expect("listen event");
    for k8s in [&listen["socket_k8s"], &listen["owner"]["k8s"]] {
        assert_eq!(k8s["namespace"], "shop", "{listen}");
        assert_eq!(k8s["pod"], "shop-7f9");
        assert_eq!(k8s["pod_uid"], uid.as_str());
        assert_eq!(k8s["container"], "istio-proxy");
        assert_eq!(k8s["container_role"], "mesh_proxy");
        assert_eq!(k8s["container_kind"], "legacy_sidecar");
    }

    // The app's events waited for its status and were attributed late.
    let exit = records
        .iter()
        .find(|r| r["type"] == "process_exit" && r["process"]["pid"] == app_exit_pid as u64)
        .expect("app exit");
    assert_eq!(exit["exit_status"], 4);
    assert_eq!(exit["process"]["k8s"]["container"], "app", "{exit}");
    assert_eq!(exit["process"]["k8s"]["container_kind"], "app");
    let connect = records
        .iter()
        .find(|r| {
            r["type"] == "socket"
                && r["op"] == "connect_established"
                && r["owner"]["cgroup"]["container_id"] == app.id.as_str()
        })
        .expect("app connect");
    assert_eq!(connect["owner"]["k8s"]["container"], "app");
    assert_eq!(connect["socket_k8s"]["pod"], "shop-7f9");

    let stats = records.last().unwrap();
    assert_eq!(stats["type"], "stats");
    let join = &stats["join"];
    assert!(join["held"].as_u64().unwrap() >= held, "{join}");
    assert_eq!(join["attributed_late"], join["held"], "{join}");
    assert_eq!(join["expired_unattributed"], 0);
    assert_eq!(stats["pod_store"]["malformed_objects"], 0);
}
