//! The pod watch against the protocol-faithful test API server, through the
//! real kube client built from a kubeconfig file: paging, node filtering,
//! live updates, dropped connections, 410 Gone with re-list, bookmarks and
//! malformed objects.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use kube_api_server::{DropMode, RequestRecord, ServerOptions, TestApiServer, containerd_id};
use lifecycle_agent::pods::client::make_client;
use lifecycle_agent::pods::status::ContainerChange;
use lifecycle_agent::pods::{
    DeletedReason, PodChange, PodEvent, PodStore, PodWatchConfig, PodWatchError, run_pod_watch,
    run_pod_watch_with,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const NODE: &str = "node-a";
const WAIT: Duration = Duration::from_secs(20);

fn manifest(name: &str, node: &str) -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pods/istio-native.json");
    let mut pod: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["namespace"] = json!("default");
    pod["spec"]["nodeName"] = json!(node);
    pod
}

struct Harness {
    server: TestApiServer,
    store: PodStore,
    events: mpsc::Receiver<PodEvent>,
    seen: Vec<PodEvent>,
    task: JoinHandle<Result<(), PodWatchError>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn server(options: ServerOptions) -> TestApiServer {
        TestApiServer::start_with(options).await.unwrap()
    }

    /// A default server holding one pod of this node, watched until that
    /// pod's `Added` event is in.
    async fn watching_one(name: &str) -> Self {
        let server = Self::server(ServerOptions::default()).await;
        server.create_pod(manifest(name, NODE)).unwrap();
        let mut h = Self::watch(server, 500).await;
        h.expect_added(&[name.to_owned()]).await;
        h
    }

    async fn watch(server: TestApiServer, page_size: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let client = make_client(Some(kubeconfig)).await.unwrap();
        let store = PodStore::default();
        let (tx, events) = mpsc::channel(1024);
        let config = PodWatchConfig {
            page_size,
            ..PodWatchConfig::for_node(NODE)
        };
        let task = tokio::spawn({
            let store = store.clone();
            async move { run_pod_watch_with(client, &config, store, tx).await }
        });
        Self {
            server,
            store,
            events,
            seen: Vec::new(),
            task,
            _dir: dir,
        }
    }

    /// Waits for the first event (after those already consumed) matching `want`.
    async fn expect(&mut self, what: &str, want: impl Fn(&PodEvent) -> bool) -> PodEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv()).await;
            let event = next
                .unwrap_or_else(|_| {
                    let requests: Vec<String> = self
                        .requests()
                        .iter()
                        .map(|r| format!("{} {:?} -> {}", r.path, r.query, r.status))
                        .collect();
                    panic!(
                        "timed out waiting for {what}; requests {requests:#?}; saw {:#?}",
                        self.seen
                    )
                })
                .expect("watch task ended");
            self.seen.push(event.clone());
            if want(&event) {
                return event;
            }
        }
    }

    async fn expect_added(&mut self, names: &[String]) {
        let mut missing: HashSet<&String> = names.iter().collect();
        while !missing.is_empty() {
            let event = self
                .expect("added events", |e| {
                    matches!(e.change, PodChange::Added { .. })
                })
                .await;
            missing.remove(&event.pod);
        }
    }

    fn requests(&self) -> Vec<RequestRecord> {
        self.server.requests()
    }

    fn lists(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(RequestRecord::is_pod_list)
            .collect()
    }

    fn watches(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(RequestRecord::is_watch)
            .collect()
    }

    /// The `resourceVersion` the latest resuming watch asked for.
    fn resumed_from(&self) -> u64 {
        self.watches()
            .into_iter()
            .rev()
            .find_map(|r| r.param("resourceVersion").map(str::to_owned))
            .expect("a watch that resumed")
            .parse()
            .expect("a numeric resourceVersion")
    }

    /// Drops every open watch and waits until the server has closed them,
    /// so later writes cannot travel on the old streams.
    async fn drop_watches(&self, mode: DropMode) {
        let target = self.server.closed_watches() + self.server.open_watches();
        self.server.drop_watches(mode);
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.server.closed_watches() < target {
            assert!(tokio::time::Instant::now() < deadline, "watches stay open");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_for_open_watch(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.server.open_watches() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no watch opened");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn is_deleted(event: &PodEvent, name: &str, reason: DeletedReason) -> bool {
    event.pod == name && event.change == PodChange::Deleted { reason }
}

fn is_transition(
    event: &PodEvent,
    name: &str,
    container: &str,
    pred: impl Fn(&ContainerChange) -> bool,
) -> bool {
    event.pod == name
        && matches!(&event.change, PodChange::ContainerTransition { container: c, transition, .. }
            if c == container && pred(transition))
}

#[tokio::test]
async fn initial_list_pages_and_keeps_other_nodes_out() {
    let server = Harness::server(ServerOptions::default()).await;
    let ours: Vec<String> = (0..12).map(|i| format!("mine-{i:02}")).collect();
    for name in &ours {
        server.create_pod(manifest(name, NODE)).unwrap();
    }
    for i in 0..3 {
        server
            .create_pod(manifest(&format!("theirs-{i}"), "node-b"))
            .unwrap();
    }
    let mut h = Harness::watch(server, 5).await;
    h.expect_added(&ours).await;

    let lists = h.lists();
    assert!(
        lists.len() >= 3,
        "12 pods in pages of 5 take 3 lists: {lists:#?}"
    );
    assert!(lists.iter().all(|r| r.param("limit") == Some("5")));
    assert_eq!(
        lists
            .iter()
            .filter(|r| r.param("continue").is_some())
            .count(),
        lists.len() - 1
    );
    h.wait_for_open_watch().await;
    for request in h.lists().iter().chain(&h.watches()) {
        assert_eq!(
            request.param("fieldSelector"),
            Some("spec.nodeName=node-a"),
            "{request:?}"
        );
    }
    assert!(
        h.watches()
            .iter()
            .all(|r| r.param("allowWatchBookmarks") == Some("true"))
    );

    // Live: a pod on another node never shows up, ours does.
    h.server
        .create_pod(manifest("theirs-late", "node-b"))
        .unwrap();
    h.server.create_pod(manifest("mine-late", NODE)).unwrap();
    h.expect("mine-late", |e| e.pod == "mine-late").await;
    assert!(
        h.seen.iter().all(|e| !e.pod.starts_with("theirs")),
        "{:#?}",
        h.seen
    );
    assert_eq!(h.store.live_uids().len(), 13);
    assert!(h.store.find("default", "theirs-late").is_none());
}

#[tokio::test]
async fn status_updates_become_transitions_with_api_times() {
    let mut h = Harness::watching_one("web").await;
    let at = 1_795_305_500;
    h.server
        .update_status("default", "web", at, |s| {
            s.running("istio-proxy", &containerd_id("web/proxy"))?;
            Ok(())
        })
        .unwrap();
    h.server
        .update_status("default", "web", at + 2, |s| {
            s.started("istio-proxy", true)?;
            Ok(())
        })
        .unwrap();
    let running = h
        .expect("proxy running", |e| {
            is_transition(e, "web", "istio-proxy", |t| {
                matches!(t, ContainerChange::Running { .. })
            })
        })
        .await;
    assert_eq!(running.at.api_time_s, Some(at));
    let started = h
        .expect("proxy started", |e| {
            is_transition(e, "web", "istio-proxy", |t| {
                *t == ContainerChange::Started { started: true }
            })
        })
        .await;
    assert_eq!(started.at.api_time_s, Some(at + 2));
    assert!(started.at.observed_ns >= running.at.observed_ns);

    // Graceful deletion, then the final DELETED.
    h.server
        .request_deletion("default", "web", 30, at + 10)
        .unwrap();
    let requested = h
        .expect("deletion request", |e| {
            matches!(e.change, PodChange::DeletionRequested { .. })
        })
        .await;
    assert_eq!(requested.at.api_time_s, Some(at + 10));
    h.server.delete_pod("default", "web").unwrap();
    h.expect("deleted", |e| {
        is_deleted(e, "web", DeletedReason::WatchDeleted)
    })
    .await;
    let record = h.store.find("default", "web").unwrap();
    assert!(record.is_deleted());
    assert_eq!(record.deletion.unwrap().grace_period_s, Some(30));
}

#[tokio::test]
async fn dropped_watch_resumes_without_losing_updates() {
    let server = Harness::server(ServerOptions::default()).await;
    for name in ["a", "b", "c"] {
        server.create_pod(manifest(name, NODE)).unwrap();
    }
    let mut h = Harness::watch(server, 500).await;
    h.expect_added(&["a".into(), "b".into(), "c".into()]).await;
    let lists_before = h.lists().len();

    for (round, mode) in [DropMode::Close, DropMode::Abort].into_iter().enumerate() {
        h.wait_for_open_watch().await;
        let rv_before = h.server.resource_version();
        h.server.hold_watches();
        h.drop_watches(mode).await;
        // Changes while the agent is disconnected.
        let id = containerd_id(&format!("a/app/{round}"));
        h.server
            .update_status("default", "a", 1_795_305_600 + round as i64, |s| {
                if round == 0 {
                    s.running("ratings", &id)?;
                } else {
                    s.terminated("ratings", 143, "Error", None)?;
                }
                Ok(())
            })
            .unwrap();
        let newcomer = format!("new-{round}");
        h.server.create_pod(manifest(&newcomer, NODE)).unwrap();
        let gone = ["b", "c"][round];
        h.server.delete_pod("default", gone).unwrap();
        h.server.release_watches();

        h.expect("missed status", |e| {
            is_transition(e, "a", "ratings", |t| match round {
                0 => matches!(t, ContainerChange::Running { .. }),
                _ => {
                    matches!(t, ContainerChange::Terminated { facts, .. } if facts.exit_code == 143)
                }
            })
        })
        .await;
        h.expect("missed create", |e| {
            e.pod == newcomer && matches!(e.change, PodChange::Added { .. })
        })
        .await;
        h.expect("missed delete", |e| {
            is_deleted(e, gone, DeletedReason::WatchDeleted)
        })
        .await;
        let resumed_rv = h.resumed_from();
        assert!(
            resumed_rv <= rv_before,
            "resumed from the last version seen, {resumed_rv} vs {rv_before}"
        );
    }
    assert_eq!(h.lists().len(), lists_before, "resuming must not re-list");
    assert_eq!(h.store.stats().relists, 1);
}

#[tokio::test]
async fn gone_410_relists_and_reports_pod_deleted_meanwhile() {
    let server = Harness::server(ServerOptions::default()).await;
    for name in ["stays", "vanishes"] {
        server.create_pod(manifest(name, NODE)).unwrap();
    }
    let mut h = Harness::watch(server, 500).await;
    h.expect_added(&["stays".into(), "vanishes".into()]).await;
    h.wait_for_open_watch().await;

    h.server.hold_watches();
    h.drop_watches(DropMode::Close).await;
    h.server.delete_pod("default", "vanishes").unwrap();
    h.server.create_pod(manifest("arrives", NODE)).unwrap();
    h.server.compact();
    h.server.release_watches();

    // The re-list applies what it lists first, then reports what it lacked.
    h.expect("pod created meanwhile", |e| {
        e.pod == "arrives" && matches!(e.change, PodChange::Added { .. })
    })
    .await;
    let deleted = h
        .expect("deletion found by re-list", |e| {
            is_deleted(e, "vanishes", DeletedReason::MissingFromRelist)
        })
        .await;
    assert_eq!(
        deleted.at.api_time_s, None,
        "the API gave no time for a deletion it never showed"
    );
    let stats = h.store.stats();
    assert!(
        stats.watch_errors >= 1,
        "the 410 surfaces as an error: {stats:?}"
    );
    assert_eq!(stats.relists, 2);
    assert_eq!(stats.deleted_by_relist, 1);
    assert!(h.lists().len() >= 2);
    assert!(
        h.seen
            .iter()
            .all(|e| !(e.pod == "stays" && matches!(e.change, PodChange::Deleted { .. })))
    );
    // The watch keeps going after the re-list.
    h.server.create_pod(manifest("later", NODE)).unwrap();
    h.expect("after re-list", |e| e.pod == "later").await;
}

#[tokio::test]
async fn expired_open_watch_relists_without_duplicate_events() {
    let mut h = Harness::watching_one("steady").await;
    h.wait_for_open_watch().await;
    let before = h.seen.len() + h.events.len();
    h.server.expire_watches();
    // Wait for the re-list to complete, marked by a pod created after it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.store.stats().relists < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no re-list after the 410"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.wait_for_open_watch().await;
    h.server.create_pod(manifest("marker", NODE)).unwrap();
    h.expect("marker", |e| e.pod == "marker").await;
    let about_steady: Vec<_> = h.seen[before..]
        .iter()
        .filter(|e| e.pod == "steady")
        .collect();
    assert!(
        about_steady.is_empty(),
        "re-listing an unchanged pod emits nothing: {about_steady:#?}"
    );
    assert!(h.store.stats().watch_errors >= 1);
}

#[tokio::test]
async fn malformed_pods_are_skipped_and_counted() {
    let server = Harness::server(ServerOptions::default()).await;
    let good: Vec<String> = (0..6).map(|i| format!("good-{i}")).collect();
    for name in &good[..3] {
        server.create_pod(manifest(name, NODE)).unwrap();
    }
    // A container without a name, inside the paged initial list.
    let mut nameless = manifest("bad-nameless", NODE);
    nameless["metadata"]["uid"] = json!("00000000-0000-4000-8000-00000000bad1");
    nameless["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    server.inject_raw(nameless).unwrap();
    for name in &good[3..] {
        server.create_pod(manifest(name, NODE)).unwrap();
    }
    // A wrong-typed field.
    let mut wrong = manifest("bad-typed", NODE);
    wrong["metadata"]["uid"] = json!("00000000-0000-4000-8000-00000000bad2");
    wrong["spec"]["terminationGracePeriodSeconds"] = json!("thirty");
    server.inject_raw(wrong).unwrap();

    let mut h = Harness::watch(server, 3).await;
    h.expect_added(&good).await;
    assert_eq!(h.store.stats().malformed_objects, 2);
    assert!(h.store.find("default", "bad-nameless").is_none());

    // A known pod turning malformed in a watch event: counted, old state kept.
    h.wait_for_open_watch().await;
    let mut broken = h.server.pod("default", "good-0").unwrap();
    broken["status"] = json!({"containerStatuses": [{"name": "ratings", "restartCount": "three"}]});
    h.server.inject_raw(broken).unwrap();
    h.server.create_pod(manifest("good-after", NODE)).unwrap();
    h.expect("a good pod after the bad one", |e| e.pod == "good-after")
        .await;
    assert_eq!(h.store.stats().malformed_objects, 3);
    assert!(!h.store.find("default", "good-0").unwrap().is_deleted());
    assert!(h.seen.iter().all(|e| !e.pod.starts_with("bad")));
}

#[tokio::test]
async fn bookmarks_move_the_resume_point_past_filtered_changes() {
    let server = Harness::server(ServerOptions {
        bookmark_interval: Duration::from_secs(3600),
        ..ServerOptions::default()
    })
    .await;
    server.create_pod(manifest("mine", NODE)).unwrap();
    let mut h = Harness::watch(server, 500).await;
    h.expect_added(&["mine".into()]).await;
    h.wait_for_open_watch().await;
    for i in 0..5 {
        h.server
            .create_pod(manifest(&format!("elsewhere-{i}"), "node-b"))
            .unwrap();
    }
    let bookmark_rv = h.server.resource_version();
    // The server writes the bookmark before it closes the stream, so the
    // client has read it when it reconnects.
    h.server.send_bookmarks();
    h.drop_watches(DropMode::Close).await;
    h.server.create_pod(manifest("mine-2", NODE)).unwrap();
    h.expect("after resume", |e| e.pod == "mine-2").await;
    assert_eq!(h.resumed_from(), bookmark_rv);
}

#[tokio::test]
async fn watch_stops_only_when_the_receiver_is_gone() {
    let mut h = Harness::watching_one("one").await;
    h.events.close();
    h.server.create_pod(manifest("two", NODE)).unwrap();
    let ended = tokio::time::timeout(WAIT, &mut h.task)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ended, Err(PodWatchError::EventSinkClosed)));

    let client = make_client(Some(h._dir.path().join("kubeconfig")))
        .await
        .unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let refused = run_pod_watch(client, " ", PodStore::default(), tx).await;
    assert!(matches!(refused, Err(PodWatchError::NodeNameMissing)));
}
