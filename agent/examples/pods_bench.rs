//! Pod model figures: memory held per pod in the store, and watch-event
//! throughput through the model (JSON decode + tolerant decode + diff +
//! event building), plus the same end to end through the kube watcher
//! against the loopback test API server.
//!
//! Run: `cargo run --release -p lifecycle-agent --example pods_bench`.
//! Memory is counted by a global allocator wrapper (bytes requested by live
//! allocations; the system allocator's own overhead is not included).

// The counting allocator implements GlobalAlloc, an unsafe trait.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_api_server::{TestApiServer, containerd_id};
use lifecycle_agent::pods::client::make_client;
use lifecycle_agent::pods::{PodStore, PodWatchConfig, RawPod, run_pod_watch_with};
use serde_json::{Value, json};
use tokio::sync::mpsc;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

fn delta(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(delta(layout.size()), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(delta(layout.size()), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(delta(new_size) - delta(layout.size()), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const PODS: usize = 500;
const ROUNDS: usize = 10;
const FIXTURES: [&str; 6] = [
    "istio-native.json",
    "istio-legacy.json",
    "linkerd-legacy.json",
    "linkerd-native.json",
    "logging-vault-native.json",
    "job-cloud-sql-proxy.json",
];

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pods")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|l| pod["spec"][*l].as_array())
        .flatten()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Creates `PODS` running pods (every container running, started, ready;
/// conditions set) on the server; returns their names and namespaces.
fn populate(server: &TestApiServer) -> Vec<(String, String, Vec<String>)> {
    let templates: Vec<Value> = FIXTURES.iter().map(|f| fixture(f)).collect();
    (0..PODS)
        .map(|i| {
            let mut pod = templates[i % templates.len()].clone();
            let name = format!("pod-{i:04}");
            pod["metadata"]["name"] = json!(name);
            pod["metadata"]["namespace"] = json!("bench");
            server
                .create_pod_at(pod.clone(), 1_795_300_000)
                .expect("create");
            let containers = container_names(&pod);
            server
                .update_status("bench", &name, 1_795_300_010, |s| {
                    s.pod_started("10.0.0.1", "10.1.0.1").phase("Running");
                    for c in &containers {
                        s.running(c, &containerd_id(&format!("{name}/{c}")))?
                            .started(c, true)?
                            .ready(c, true)?;
                    }
                    for cond in [
                        "PodReadyToStartContainers",
                        "Initialized",
                        "ContainersReady",
                        "Ready",
                    ] {
                        s.condition(cond, true);
                    }
                    Ok(())
                })
                .expect("status");
            ("bench".to_owned(), name, containers)
        })
        .collect()
}

fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn status_updates(server: &TestApiServer, pods: &[(String, String, Vec<String>)]) -> Vec<String> {
    let mut updates = Vec::with_capacity(PODS * ROUNDS);
    for round in 0..ROUNDS {
        for (ns, name, containers) in pods {
            let app = containers.last().expect("a container").clone();
            let object = server
                .update_status(ns, name, 1_795_300_100 + round as i64, |s| {
                    s.ready(&app, round % 2 == 1)?;
                    s.condition("Ready", round % 2 == 1);
                    Ok(())
                })
                .expect("update");
            updates.push(serde_json::to_string(&object).expect("json"));
        }
    }
    updates
}

fn feed(store: &PodStore, texts: &[String]) -> usize {
    let mut emitted = 0;
    for (i, text) in texts.iter().enumerate() {
        let raw: RawPod = serde_json::from_str(text).expect("raw");
        let pod = raw.decode().expect("decode");
        emitted += black_box(store.apply(&pod, i as i64)).len();
    }
    emitted
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = TestApiServer::start().await.expect("server");
    let pods = populate(&server);
    let objects: Vec<String> = pods
        .iter()
        .map(|(ns, name, _)| {
            serde_json::to_string(&server.pod(ns, name).expect("pod")).expect("json")
        })
        .collect();
    let updates = status_updates(&server, &pods);
    let json_bytes: usize = objects.iter().map(String::len).sum();

    // Memory held by the store: everything allocated from here on is
    // transient except the store itself.
    let before = live();
    let store = PodStore::default();
    feed(&store, &objects);
    let held = live() - before;
    let before_typed = live();
    let typed: Vec<Pod> = objects
        .iter()
        .map(|t| serde_json::from_str(t).expect("typed"))
        .collect();
    let typed_held = live() - before_typed;
    drop(black_box(typed));

    println!("pods: {PODS} (6 injected fixture shapes, every container running/started/ready)");
    println!(
        "API JSON per pod:                {:>7.0} bytes",
        json_bytes as f64 / PODS as f64
    );
    println!(
        "k8s-openapi Pod per pod:         {:>7.0} bytes",
        typed_held as f64 / PODS as f64
    );
    println!(
        "store per pod, fresh:            {:>7.0} bytes ({:.2} MiB for {PODS})",
        held as f64 / PODS as f64,
        mib(held)
    );

    // Throughput through the model: MODIFIED objects, decoded and applied.
    let started = Instant::now();
    let emitted = feed(&store, &updates);
    let full = started.elapsed();
    let with_history = live() - before;
    println!(
        "store per pod, +{ROUNDS} updates each: {:>7.0} bytes ({:.2} MiB)",
        with_history as f64 / PODS as f64,
        mib(with_history)
    );

    // The model alone, on pre-decoded objects.
    let decoded: Vec<_> = updates
        .iter()
        .map(|t| {
            serde_json::from_str::<RawPod>(t)
                .expect("raw")
                .decode()
                .expect("decode")
        })
        .collect();
    let fresh = PodStore::default();
    feed(&fresh, &objects);
    let started = Instant::now();
    for (i, pod) in decoded.iter().enumerate() {
        black_box(fresh.apply(pod, i as i64));
    }
    let apply_only = started.elapsed();
    let n = updates.len() as f64;
    println!(
        "updates: {} ({} pod events emitted)",
        updates.len(),
        emitted
    );
    println!(
        "JSON decode + model: {:>8.0} updates/s ({:.1} us each)",
        n / full.as_secs_f64(),
        full.as_secs_f64() * 1e6 / n
    );
    println!(
        "model only:          {:>8.0} updates/s ({:.1} us each)",
        n / apply_only.as_secs_f64(),
        apply_only.as_secs_f64() * 1e6 / n
    );

    end_to_end(&server, &pods).await;
}

/// Status updates made on the server, through HTTP and the kube watcher,
/// until the store has applied them all.
async fn end_to_end(server: &TestApiServer, pods: &[(String, String, Vec<String>)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).expect("kubeconfig");
    // The bench pods have other node names; watch the node they use.
    let node = fixture(FIXTURES[0])["spec"]["nodeName"]
        .as_str()
        .unwrap_or("node-a")
        .to_owned();
    let client = make_client(Some(path)).await.expect("client");
    let store = PodStore::default();
    let (tx, mut rx) = mpsc::channel(65_536);
    let config = PodWatchConfig::for_node(&node);
    let watch = tokio::spawn({
        let store = store.clone();
        async move { run_pod_watch_with(client, &config, store, tx).await }
    });
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    while store.stats().live_pods < pods.len() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let base = store.stats().objects_applied;
    let started = Instant::now();
    for round in 0..ROUNDS {
        for (ns, name, containers) in pods {
            let app = containers.last().expect("a container").clone();
            server
                .update_status(ns, name, 1_795_301_000 + round as i64, |s| {
                    s.ready(&app, round % 2 == 0)?;
                    Ok(())
                })
                .expect("update");
            // Let the server's watch task and the agent keep up.
            tokio::task::yield_now().await;
        }
    }
    let total = (pods.len() * ROUNDS) as u64;
    while store.stats().objects_applied < base + total {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "end to end (test server -> HTTP -> kube watcher -> model, one thread): {:.0} updates/s",
        total as f64 / elapsed.as_secs_f64()
    );
    watch.abort();
    drain.abort();
}
