//! `lifecycle-agent run` end to end, as root with the real probes, the
//! Kubernetes API test server driven like a kubelet, kubelet-style cgroups
//! with real processes, and the OTLP test receiver:
//!
//! * ready only once the pod list is synced; alive and recovering through
//!   an API server restart and an OTLP receiver outage;
//! * stopped (SIGTERM, exit 0) and started again in the middle of a pod
//!   termination: the second agent recovers the running container from
//!   `/proc` and exports a partial termination audit.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use kube_api_server::{ServerOptions, TestApiServer, clock::now_s, render_kubeconfig};
use lifecycle_testkit::{Driver, FakeContainer, FakePod, spawn_in, workload_path};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value as AnyValue};
use otlp_receiver::{ReceivedSpan, Receiver};
use serde_json::{Value, json};

use crate::support::daemon::{Daemon, free_addr, journal, sum_of, wait_for};
use crate::support::kernel::exclusive;

/// One daemon at a time: each attaches the probes and needs the 2 cores.
fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn spans_of_pod(receiver: &Receiver, uid: &str) -> Vec<ReceivedSpan> {
    receiver
        .spans()
        .into_iter()
        .filter(|s| {
            attr_str(&s.span.attributes, "k8s.pod.uid").as_deref() == Some(uid)
                || attr_str(&s.resource, "k8s.pod.uid").as_deref() == Some(uid)
        })
        .collect()
}

/// A legacy Istio pod on `node` whose two containers run `handle-term`.
struct Pod {
    name: String,
    uid: String,
    _cgroups: FakePod,
    app: (FakeContainer, Child),
    proxy: (FakeContainer, Child),
}

fn start_pod(server: &TestApiServer, node: &str, name: &str) -> Pod {
    let created = server
        .create_pod(json!({
            "metadata": {"name": name, "namespace": "shop",
                         "annotations": {"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"]}"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30, "containers": [
                {"name": "app", "image": "registry.example/shop/app:1.0"},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}
            ]}
        }))
        .expect("create pod");
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    let mut cgroups = FakePod::with_uid(Driver::Systemd, &uid);
    let run = |c: &FakeContainer| {
        let mut cmd = Command::new(workload_path());
        cmd.arg("handle-term").stdout(Stdio::null());
        spawn_in(&c.dir, &mut cmd)
    };
    let proxy = cgroups.add_container();
    let proxy_child = run(&proxy);
    let app = cgroups.add_container();
    let app_child = run(&app);
    server
        .update_status("shop", name, now_s(), |s| {
            s.phase("Running");
            s.running("istio-proxy", &format!("containerd://{}", proxy.id))?;
            s.running("app", &format!("containerd://{}", app.id))?;
            s.ready("istio-proxy", true)?;
            s.ready("app", true)?;
            s.condition("ContainersReady", true);
            s.condition("Ready", true);
            Ok(())
        })
        .expect("status");
    Pod {
        name: name.to_owned(),
        uid,
        _cgroups: cgroups,
        app: (app, app_child),
        proxy: (proxy, proxy_child),
    }
}

fn sigterm(child: &mut Child) {
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().expect("wait").success());
}

fn pod_added(records: &[Value], pod: &str) -> bool {
    records
        .iter()
        .any(|r| r["type"] == "pod" && r["pod"] == pod && r["change"]["kind"] == "added")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_sync_and_alive_through_api_and_receiver_outages() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (api_addr, otlp_addr) = (free_addr(), free_addr());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        render_kubeconfig(&format!("http://{api_addr}")),
    )
    .unwrap();
    let journal_dir = dir.path().join("journal");
    let node = "node-outage";
    let daemon = Daemon::start(
        dir.path(),
        "agent",
        &[
            "--node-name",
            node,
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--journal-dir",
            journal_dir.to_str().unwrap(),
            "--stats-interval",
            "1s",
            "--otlp-endpoint",
            &format!("http://{otlp_addr}"),
            "--otlp-protocol",
            "grpc",
            "--export-retry-initial",
            "200ms",
            "--export-retry-max",
            "1s",
            "--export-retry-attempts",
            "1000",
            "--metrics-export-interval",
            "1s",
        ],
        &[],
    );

    // Nothing answers at the API address yet: alive, probes attached, not ready.
    let body = wait_for(Duration::from_secs(60), || {
        daemon
            .get("/readyz")
            .filter(|(status, body)| *status == 503 && body.contains("pod list not synced"))
    });
    assert!(
        body.is_some(),
        "not ready for lack of a pod list\n{}",
        daemon.stderr()
    );
    assert_eq!(daemon.get("/healthz").map(|(s, _)| s), Some(200));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        daemon.get("/readyz").map(|(s, _)| s),
        Some(503),
        "still no API server, still not ready"
    );

    // The API server comes up with a pod of this node: ready after the list.
    let server = TestApiServer::bind(api_addr, ServerOptions::default())
        .await
        .expect("API server");
    let mut first = start_pod(&server, node, "web-a");
    assert!(
        daemon.wait_readyz(200, Duration::from_secs(60)).is_some(),
        "ready once the pod list is synced\n{}",
        daemon.stderr()
    );

    // The startup audit of web-a goes to a receiver that is not there:
    // retried and counted, nothing else stops.
    let failing = wait_for(Duration::from_secs(30), || {
        let text = daemon.metrics();
        (sum_of(&text, "lifecycle_agent_export_retries_total") > 0.0).then_some(text)
    });
    assert!(
        failing.is_some(),
        "export retries counted while the receiver is down\n{}",
        daemon.metrics()
    );

    // The API server goes down and comes back with its objects.
    let stopped = server.shut_down();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daemon.get("/healthz").map(|(s, _)| s), Some(200));
    let server = stopped.start_again().await.expect("API server again");
    let mut second = start_pod(&server, node, "web-b");
    let seen = wait_for(Duration::from_secs(60), || {
        pod_added(&journal(&journal_dir), "web-b").then_some(())
    });
    assert!(
        seen.is_some(),
        "the watch resumed after the API restart\n{}",
        daemon.stderr()
    );

    // The receiver comes up: the queued and later spans arrive, and the
    // self-telemetry reports the retries.
    let receiver = Receiver::start_on(otlp_addr).await.expect("receiver");
    let arrived = receiver
        .wait_until(Duration::from_secs(60), |r| {
            !spans_of_pod(r, &first.uid).is_empty() && !spans_of_pod(r, &second.uid).is_empty()
        })
        .await;
    assert!(
        arrived,
        "startup traces of both pods arrive once the receiver is up: {} spans\n{}",
        receiver.spans().len(),
        daemon.stderr()
    );
    let retries_exported = receiver
        .wait_until(Duration::from_secs(30), |r| {
            r.metric_requests()
                .iter()
                .any(|m| format!("{:?}", m.request).contains("lifecycle.agent.export.retries"))
        })
        .await;
    assert!(retries_exported, "the retry counter reaches the receiver");

    for pod in [&mut first, &mut second] {
        sigterm(&mut pod.app.1);
        sigterm(&mut pod.proxy.1);
    }
    let (status, stderr) = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit 0 on SIGTERM: {status}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_termination_yields_a_partial_audit() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestApiServer::start().await.expect("API server");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let receiver = Receiver::start().await.expect("receiver");
    let node = "node-restart";
    let args = |journal: &std::path::Path| -> Vec<String> {
        [
            "--node-name",
            node,
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--journal-dir",
            journal.to_str().unwrap(),
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otlp-protocol",
            "grpc",
            "--shutdown-timeout",
            "5s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut pod = start_pod(&server, node, "checkout-1");

    let first_journal = dir.path().join("journal-1");
    let first_args = args(&first_journal);
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let first = Daemon::start(dir.path(), "agent-1", &first_args, &[]);
    assert!(
        first.wait_readyz(200, Duration::from_secs(60)).is_some(),
        "{}",
        first.stderr()
    );

    // The termination starts: delete requested, the app stops.
    server
        .request_deletion("shop", &pod.name, 30, now_s())
        .expect("delete request");
    sigterm(&mut pod.app.1);
    server
        .update_status("shop", &pod.name, now_s(), |s| {
            s.terminated("app", 0, "Completed", None)?;
            Ok(())
        })
        .expect("app terminated");
    std::thread::sleep(Duration::from_secs(2));

    // The agent is stopped in the middle of it.
    let (status, stderr) = first.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit 0 on SIGTERM: {status}\n{stderr}");
    assert!(
        stderr.contains("completed at stop"),
        "the exit summary is printed\n{stderr}"
    );

    // A new agent starts while the proxy is still running.
    let second_journal = dir.path().join("journal-2");
    let second_args = args(&second_journal);
    let second_args: Vec<&str> = second_args.iter().map(String::as_str).collect();
    let second = Daemon::start(dir.path(), "agent-2", &second_args, &[]);
    assert!(
        second.wait_readyz(200, Duration::from_secs(60)).is_some(),
        "{}",
        second.stderr()
    );
    let proxy_pid = pod.proxy.1.id();
    let recovered = journal(&second_journal).into_iter().find(|r| {
        r["type"] == "process_exec"
            && r["process"]["pid"] == proxy_pid
            && r["recovered"].is_object()
    });
    let recovered = recovered
        .unwrap_or_else(|| panic!("the proxy is recovered from /proc\n{}", second.stderr()));
    assert_eq!(recovered["recovered"]["source"], "proc");
    assert_eq!(
        recovered["process"]["cgroup"]["container_id"],
        pod.proxy.0.id.as_str()
    );
    assert_eq!(recovered["process"]["k8s"]["container"], "istio-proxy");

    // The termination finishes under the second agent.
    sigterm(&mut pod.proxy.1);
    server
        .update_status("shop", &pod.name, now_s(), |s| {
            s.terminated("istio-proxy", 0, "Completed", None)?;
            s.phase("Succeeded");
            Ok(())
        })
        .expect("proxy terminated");
    server.delete_pod("shop", &pod.name).expect("delete");

    // The second agent's audit: the proxy's span ends at the exit its
    // probes saw, and the trace says it is partial.
    let exit = wait_for(Duration::from_secs(30), || {
        journal(&second_journal)
            .into_iter()
            .find(|r| r["type"] == "process_exit" && r["process"]["pid"] == proxy_pid)
    })
    .expect("proxy exit in the second journal");
    let exit_ns = exit["time_ns"].as_i64().unwrap() as u64;
    let proxy_span = |r: &Receiver| {
        spans_of_pod(r, &pod.uid).into_iter().find(|s| {
            attr_str(&s.span.attributes, "k8s.container.name").as_deref() == Some("istio-proxy")
                && s.span.end_time_unix_nano == exit_ns
        })
    };
    let arrived = receiver
        .wait_until(Duration::from_secs(60), |r| proxy_span(r).is_some())
        .await;
    assert!(
        arrived,
        "istio-proxy span ending at the kernel's exit time {exit_ns}: {:#?}\n{}",
        spans_of_pod(&receiver, &pod.uid)
            .iter()
            .map(|s| (&s.span.name, s.span.end_time_unix_nano, &s.span.attributes))
            .collect::<Vec<_>>(),
        second.stderr()
    );
    let trace_id = proxy_span(&receiver).unwrap().span.trace_id;
    let root = receiver
        .spans()
        .into_iter()
        .rfind(|s| s.span.trace_id == trace_id && s.span.parent_span_id.is_empty())
        .expect("root span of the termination trace");
    assert_eq!(root.span.name, "pod.termination");
    assert!(
        matches!(
            attr(&root.span.attributes, "lifecycle.audit.partial"),
            Some(AnyValue::BoolValue(true))
        ),
        "the audit is partial: {:?}",
        root.span.attributes
    );
    let metrics = second.metrics();
    let partial_audits: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("lifecycle_audits_total{")
                && l.contains("lifecycle_audit_partial=\"true\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(
        partial_audits >= 1.0,
        "a partial audit is counted\n{metrics}"
    );
    assert!(
        crate::support::daemon::sample(&metrics, "lifecycle_agent_recovered_processes")
            >= Some(1.0),
        "the recovered proxy is counted\n{metrics}"
    );
    let (status, stderr) = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
}
