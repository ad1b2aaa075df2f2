//! End to end: real processes in kubelet-style cgroups, the real agent
//! recording them with the pod watch on a test API server driven like a
//! kubelet, stop signals sent like containerd sends them, then the audit of
//! the recording.
//!
//! * a legacy pod whose proxy exits before the app, which then fails to
//!   connect: the order is reported, the bypass window holds the refusals;
//! * a native-sidecar pod stopped in the right order: no findings;
//! * a native sidecar without startupProbe whose listener comes up late:
//!   the app connects first (negative startup gap).

use std::time::Duration;

use kube_api_server::clock::now_s;
use lifecycle_agent::audit::{
    FindingKind, Outcome, RuleId, bypass::WindowCause, termination::StopOrder,
    timeline::SenderClass,
};
use lifecycle_audit::testing::{ORDERED_STOP_HOLDS, assert_held, outcome};
use lifecycle_testkit::{Driver, FakePod, Recording};
use serde_json::{Value, json};

use crate::support::agent::{AGENT, agent};
use crate::support::cluster::{
    Cluster, FakeRuntime, app_command, audit_of, proxy_command, save, slow_proxy_command,
    start_pid1, wait,
};
use crate::support::kernel::exclusive;

fn pod_manifest(name: &str, owner: &str, init: Value, containers: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": owner, "uid": "rs-1", "controller": true}]},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 30,
                 "initContainers": init, "containers": containers}
    })
}

fn start_recording(cluster: &Cluster) -> Recording {
    let args = cluster.record_args();
    tokio::task::block_in_place(|| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Recording::start(AGENT.as_ref(), &args)
    })
}

fn stop_recording(recording: Recording) -> Vec<Value> {
    tokio::task::block_in_place(|| recording.stop())
}

async fn settle(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// A graceful deletion (30 s grace) of a pod that has run a while, and a
/// moment for the agent to see it before the kubelet acts.
async fn request_deletion(cluster: &Cluster, name: &str) {
    settle(600).await;
    cluster
        .server
        .request_deletion("shop", name, 30, now_s())
        .unwrap();
    settle(100).await;
}

/// The pod object removed, then the recording stopped once the last events
/// are in.
async fn remove_and_stop(cluster: &Cluster, name: &str, recording: Recording) -> Vec<Value> {
    cluster.server.delete_pod("shop", name).unwrap();
    settle(1500).await;
    stop_recording(recording)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_proxy_exits_first_and_the_app_is_refused() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let cluster = Cluster::start().await;
    let name = "web-5d8f9c7b4-legacy";
    let uid = cluster.create(pod_manifest(
        name,
        "web-5d8f9c7b4",
        json!([]),
        json!([{"name": "app", "image": "registry.example/shop/web:1.0"},
               {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}]),
    ));
    let mut pod = FakePod::with_uid(Driver::Systemd, &uid);
    let (app_c, proxy_c) = (pod.add_container(), pod.add_container());
    let runtime = FakeRuntime::new();
    let recording = start_recording(&cluster);

    cluster.status(name, |s| {
        s.phase("Running");
        s.running("istio-proxy", &format!("containerd://{}", proxy_c.id))?;
        s.running("app", &format!("containerd://{}", app_c.id))?;
        Ok(())
    });
    let addr = "127.0.0.41:15001";
    let mut proxy = start_pid1(&proxy_c.dir, &mut proxy_command(addr));
    let mut app = start_pid1(&app_c.dir, &mut app_command(addr, 4));
    cluster.status(name, |s| {
        s.ready("istio-proxy", true)?.ready("app", true)?;
        s.condition("Ready", true);
        Ok(())
    });
    request_deletion(&cluster, name).await;
    // The kubelet stops both at once; the proxy dies at SIGTERM, the app
    // drains for half a second and keeps connecting.
    runtime.kill(app.id(), 15);
    runtime.kill(proxy.id(), 15);
    assert_eq!(wait(&mut proxy).code(), None, "proxy killed by SIGTERM");
    assert!(wait(&mut app).success());
    cluster.status(name, |s| {
        s.terminated("istio-proxy", 143, "Error", None)?;
        s.terminated("app", 0, "Completed", None)?;
        Ok(())
    });
    let values = remove_and_stop(&cluster, name, recording).await;
    let saved = save("legacy-proxy-exits-first", &values);
    let audit = audit_of(&values, &uid);

    assert_eq!(
        (audit.pod.namespace.as_str(), audit.pod.name.as_str()),
        ("shop", name)
    );
    assert_eq!(audit.workload.name, "web");
    let t = audit.termination.as_ref().expect("termination audit");
    assert_eq!(t.order, StopOrder::Parallel);
    for c in ["app", "istio-proxy"] {
        let stop = t
            .container(c)
            .unwrap()
            .stop_signal
            .as_ref()
            .expect("stop signal");
        assert_eq!(
            (stop.name.as_str(), stop.sender),
            ("SIGTERM", SenderClass::Runtime),
            "{c}"
        );
    }
    assert_eq!(t.exit_order, vec!["istio-proxy", "app"]);
    assert_eq!(t.container("istio-proxy").unwrap().exit.unwrap().code, 143);
    assert_eq!(outcome(&audit, RuleId::T4), Outcome::NotJudged);
    assert_eq!(outcome(&audit, RuleId::X1), Outcome::Held);
    assert!(
        audit
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::LegacySidecarExitedFirst)
    );

    let bypass = audit.bypass.as_ref().expect("bypass audit");
    let after_exit: Vec<_> = bypass
        .windows
        .iter()
        .filter(|w| w.cause == WindowCause::AfterProxyExit)
        .collect();
    assert_eq!(after_exit.len(), 1, "{:#?}", bypass.windows);
    let window = after_exit[0];
    assert!(window.counts.refused_by_capture >= 3, "{window:#?}");
    assert!(
        window.duration_s > 0.3 && window.duration_s < 5.0,
        "{window:#?}"
    );
    assert!(
        bypass.total.proxied >= 3,
        "connections before the delete went through the proxy: {:#?}",
        bypass.total
    );
    assert_eq!(bypass.total.plaintext_bypass, 0);
    assert_eq!(outcome(&audit, RuleId::M3), Outcome::Held);
    let m4 = audit
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::RefusedWhileProxyDown)
        .expect("M4 finding");
    assert!(m4.evidence.len() >= 4);
    assert_eq!(outcome(&audit, RuleId::M1), Outcome::Violated);

    // The CLI says the same about the saved recording.
    let out = agent(&["report", "--format", "json", &saved.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pod_json = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"]["uid"] == uid.as_str())
        .expect("pod in the JSON report");
    assert!(
        pod_json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "refused_while_proxy_down")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sidecar_stopped_in_order_has_no_findings() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let cluster = Cluster::start().await;
    let name = "web-6c7d9f8b5-native";
    let uid = cluster.create(pod_manifest(
        name,
        "web-6c7d9f8b5",
        json!([{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0",
                "restartPolicy": "Always",
                "startupProbe": {"tcpSocket": {"port": 15001}, "periodSeconds": 1}}]),
        json!([{"name": "app", "image": "registry.example/shop/web:1.1"}]),
    ));
    let mut pod = FakePod::with_uid(Driver::Systemd, &uid);
    let (proxy_c, app_c) = (pod.add_container(), pod.add_container());
    let runtime = FakeRuntime::new();
    let recording = start_recording(&cluster);

    let addr = "127.0.0.42:15001";
    cluster.status(name, |s| {
        s.phase("Pending");
        s.running("istio-proxy", &format!("containerd://{}", proxy_c.id))?;
        Ok(())
    });
    let mut proxy = start_pid1(&proxy_c.dir, &mut proxy_command(addr));
    // The startup probe passed: now the kubelet starts the app.
    cluster.status(name, |s| {
        s.started("istio-proxy", true)?.ready("istio-proxy", true)?;
        s.condition("Initialized", true);
        s.phase("Running");
        s.running("app", &format!("containerd://{}", app_c.id))?;
        Ok(())
    });
    let mut app = start_pid1(&app_c.dir, &mut app_command(addr, 0));
    cluster.status(name, |s| {
        s.started("app", true)?.ready("app", true)?;
        Ok(())
    });
    request_deletion(&cluster, name).await;
    runtime.kill(app.id(), 15);
    assert!(wait(&mut app).success());
    // Only once the app is gone does the sidecar get its SIGTERM.
    runtime.kill(proxy.id(), 15);
    wait(&mut proxy);
    cluster.status(name, |s| {
        s.terminated("app", 0, "Completed", None)?;
        s.terminated("istio-proxy", 143, "Error", None)?;
        Ok(())
    });
    let values = remove_and_stop(&cluster, name, recording).await;
    save("native-ordered", &values);
    let audit = audit_of(&values, &uid);

    assert!(audit.findings.is_empty(), "{:#?}", audit.findings);
    let t = audit.termination.as_ref().expect("termination audit");
    assert_eq!(t.order, StopOrder::NativeOrdered);
    assert_eq!(t.exit_order, vec!["app", "istio-proxy"]);
    assert_held(&audit, &[RuleId::S2, RuleId::T1]);
    assert_held(&audit, ORDERED_STOP_HOLDS);
    let bypass = audit.bypass.as_ref().unwrap();
    assert!(bypass.windows.is_empty(), "{:#?}", bypass.windows);
    assert!(bypass.total.proxied >= 3);
    let gap = &audit.startup.as_ref().unwrap().gaps[0];
    assert!(
        gap.exec_gap_s.unwrap() > 0.0 && gap.connect_gap_s.unwrap() > 0.0,
        "{gap:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sidecar_without_startup_probe_races_the_app() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let cluster = Cluster::start().await;
    let name = "api-7f6b8c9d4-race";
    let uid = cluster.create(pod_manifest(
        name,
        "api-7f6b8c9d4",
        json!([{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0",
                "restartPolicy": "Always"}]),
        json!([{"name": "app", "image": "registry.example/shop/api:2.0"}]),
    ));
    let mut pod = FakePod::with_uid(Driver::Systemd, &uid);
    let (proxy_c, app_c) = (pod.add_container(), pod.add_container());
    let recording = start_recording(&cluster);

    let addr = "127.0.0.43:15001";
    cluster.status(name, |s| {
        s.phase("Running");
        s.running("istio-proxy", &format!("containerd://{}", proxy_c.id))?;
        // No startupProbe: started as soon as it runs.
        s.started("istio-proxy", true)?;
        s.running("app", &format!("containerd://{}", app_c.id))?;
        Ok(())
    });
    // The proxy's listener comes up 0.8 s after its PID 1; the app starts
    // at once and connects every 100 ms.
    let mut proxy_cmd = slow_proxy_command(addr, 0.8);
    proxy_cmd.stdout(std::process::Stdio::null());
    let mut proxy = lifecycle_testkit::spawn_in(&proxy_c.dir, &mut proxy_cmd);
    let mut app = start_pid1(&app_c.dir, &mut app_command(addr, 0));
    settle(1800).await;
    let values = stop_recording(recording);
    // Removing the pod's cgroups kills its processes.
    drop(pod);
    wait(&mut proxy);
    wait(&mut app);
    save("native-startup-race", &values);
    let audit = audit_of(&values, &uid);

    let startup = audit.startup.as_ref().expect("startup audit");
    let gap = startup
        .gaps
        .iter()
        .find(|g| g.app == "app" && g.sidecar == "istio-proxy")
        .expect("gap app <- istio-proxy");
    let exec_gap = gap.exec_gap_s.expect("exec gap");
    let connect_gap = gap.connect_gap_s.expect("connect gap");
    assert!((-1.2..-0.4).contains(&exec_gap), "{gap:#?}");
    assert!(connect_gap < 0.0, "{gap:#?}");
    let race = audit
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::StartupRace)
        .expect("startup race finding");
    assert_eq!(race.rule, RuleId::S2);
    assert!(race.message.contains("no startupProbe"), "{}", race.message);
    assert_eq!(
        outcome(&audit, RuleId::S2),
        Outcome::Held,
        "the kubelet kept S2"
    );
    let bypass = audit.bypass.as_ref().unwrap();
    let before = bypass
        .windows
        .iter()
        .find(|w| w.cause == WindowCause::BeforeProxyStart)
        .expect("window before the proxy listened");
    assert!(before.counts.refused_by_capture >= 2, "{before:#?}");
    assert!(bypass.total.proxied >= 3, "{:#?}", bypass.total);
}
