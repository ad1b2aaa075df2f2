//! Wire-level tests of the test API server with a bare HTTP/1.1 client: what
//! exactly goes over the socket for lists, watches, bookmarks and 410s.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kube_api_server::{DropMode, ServerOptions, TestApiServer, clock, containerd_id};
use serde_json::{Value, json};
use tokio::net::TcpStream;

#[path = "support/kubectl.rs"]
mod kubectl;
use kubectl::Kubectl;

async fn send(server: &TestApiServer, path: &str) -> hyper::Response<Incoming> {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", server.addr().to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    sender.send_request(req).await.unwrap()
}

async fn get(server: &TestApiServer, path: &str) -> (u16, Value) {
    let resp = send(server, path).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Reads newline-delimited events from a watch response.
struct Events {
    body: Incoming,
    buf: Vec<u8>,
}

impl Events {
    async fn open(server: &TestApiServer, path: &str) -> Self {
        let resp = send(server, path).await;
        assert_eq!(resp.status(), 200);
        Self {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` when the stream ended (or `wait` passed).
    async fn next(&mut self, wait: Duration) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let frame = tokio::time::timeout(wait, self.body.frame()).await.ok()??;
            if let Ok(data) = frame.ok()?.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    async fn next_non_bookmark(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let event = self.next(wait).await?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

fn manifest(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [{"name": "web", "image": "nginx:1.27"},
                           {"name": "app", "image": "example.com/app:2"}],
        }
    })
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn created_pod_is_serialised_like_an_api_server() {
    let server = TestApiServer::start().await.unwrap();
    server
        .create_pod_at(manifest("p1", "node-a"), 1_795_305_424)
        .unwrap();
    let id = containerd_id("p1/web");
    server
        .update_status("default", "p1", 1_795_305_430, |s| {
            s.pod_started("10.0.0.1", "10.1.0.7").phase("Running");
            s.running("web", &id)?
                .started("web", true)?
                .ready("web", true)?;
            s.condition("Ready", true);
            Ok(())
        })
        .unwrap();

    let (code, pod) = get(&server, "/api/v1/namespaces/default/pods/p1").await;
    assert_eq!(code, 200);
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert!(pod["metadata"]["resourceVersion"].is_string());
    assert_eq!(pod["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert_eq!(pod["metadata"]["creationTimestamp"], "2026-11-21T23:57:04Z");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["spec"]["restartPolicy"], "Always");

    // Regular containers are sorted by name, the way the kubelet reports them.
    let statuses = pod["status"]["containerStatuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 1);
    let web = &statuses[0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["containerID"], id.as_str());
    assert_eq!(web["state"]["running"]["startedAt"], "2026-11-21T23:57:10Z");
    assert_eq!(web["lastState"], json!({}));
    assert_eq!(web["restartCount"], 0);
    assert_eq!(
        (web["started"].clone(), web["ready"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(web["image"], "nginx:1.27");
    assert!(
        web["imageID"]
            .as_str()
            .unwrap()
            .starts_with("docker.io/library/nginx@sha256:")
    );
    let ready = &pod["status"]["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True"))
    );
    assert_eq!(ready["lastTransitionTime"], "2026-11-21T23:57:10Z");
    let managers: Vec<_> = pod["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, vec!["kubectl-create", "kubelet"]);

    // Restart, termination: lastState, restartCount, whole-second times.
    let second = containerd_id("p1/web#2");
    server
        .update_status("default", "p1", 1_795_305_440, |s| {
            s.terminated("web", 137, "OOMKilled", None)?;
            Ok(())
        })
        .unwrap();
    let pod = server
        .update_status("default", "p1", 1_795_305_441, |s| {
            s.running("web", &second)?;
            Ok(())
        })
        .unwrap();
    let web = &pod["status"]["containerStatuses"][0];
    assert_eq!(web["restartCount"], 1);
    assert_eq!(web["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(web["lastState"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(web["lastState"]["terminated"]["containerID"], id.as_str());
    assert_eq!(
        web["lastState"]["terminated"]["finishedAt"],
        "2026-11-21T23:57:20Z"
    );
    assert_eq!(web["containerID"], second.as_str());
}

#[tokio::test]
async fn paged_list_with_field_selector_and_expired_continue() {
    let server = TestApiServer::start().await.unwrap();
    for i in 0..5 {
        server
            .create_pod(manifest(&format!("a{i}"), "node-a"))
            .unwrap();
    }
    server.create_pod(manifest("b0", "node-b")).unwrap();

    let path = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a&limit=2";
    let (code, first) = get(&server, path).await;
    assert_eq!(code, 200);
    assert_eq!(first["kind"], "PodList");
    assert_eq!(names(&first), vec!["a0", "a1"]);
    let token = first["metadata"]["continue"].as_str().unwrap().to_owned();

    server.delete_pod("default", "a3").unwrap();
    let (_, second) = get(&server, &format!("{path}&continue={token}")).await;
    assert_eq!(
        names(&second),
        vec!["a2", "a3"],
        "pages read the first page's snapshot"
    );
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );

    server.compact();
    let token = second["metadata"]["continue"].as_str().unwrap();
    let (code, status) = get(&server, &format!("{path}&continue={token}")).await;
    assert_eq!(code, 410);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["code"], 410);

    let (code, status) = get(&server, "/api/v1/pods?fieldSelector=spec.image%3Dx").await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn watch_replays_history_then_streams_live_changes() {
    let server = TestApiServer::start().await.unwrap();
    server.create_pod(manifest("a", "node-a")).unwrap();
    let (_, list) = get(&server, "/api/v1/pods").await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    server.create_pod(manifest("b", "node-b")).unwrap();
    server.create_pod(manifest("c", "node-a")).unwrap();

    let mut events = Events::open(
        &server,
        &format!(
            "/api/v1/pods?watch=true&resourceVersion={rv}&fieldSelector=spec.nodeName%3Dnode-a"
        ),
    )
    .await;
    let replayed = events.next(WAIT).await.unwrap();
    assert_eq!(replayed["type"], "ADDED");
    assert_eq!(replayed["object"]["metadata"]["name"], "c");
    assert_eq!(replayed["object"]["kind"], "Pod");

    server
        .update_status("default", "a", clock::now_s(), |s| {
            s.phase("Running");
            Ok(())
        })
        .unwrap();
    server
        .update_status("default", "b", clock::now_s(), |s| {
            s.phase("Running");
            Ok(())
        })
        .unwrap();
    server.delete_pod("default", "a").unwrap();
    let modified = events.next(WAIT).await.unwrap();
    assert_eq!(
        (
            modified["type"].as_str(),
            modified["object"]["metadata"]["name"].as_str()
        ),
        (Some("MODIFIED"), Some("a"))
    );
    let deleted = events.next(WAIT).await.unwrap();
    assert_eq!(deleted["type"], "DELETED");
    assert_eq!(
        deleted["object"]["metadata"]["resourceVersion"],
        server.resource_version().to_string()
    );
}

#[tokio::test]
async fn unscheduled_pod_enters_a_node_watch_when_bound() {
    let server = TestApiServer::start().await.unwrap();
    let mut events = Events::open(
        &server,
        "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dnode-a",
    )
    .await;
    let mut pending = manifest("p", "x");
    pending["spec"].as_object_mut().unwrap().remove("nodeName");
    server.create_pod(pending).unwrap();
    server.bind_pod("default", "p", "node-a").unwrap();
    let added = events.next(WAIT).await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["spec"]["nodeName"], "node-a");
}

#[tokio::test]
async fn too_old_watch_gets_a_410_error_event() {
    let server = TestApiServer::start_with(ServerOptions {
        history_limit: 2,
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    let start = server.resource_version();
    for i in 0..4 {
        server
            .create_pod(manifest(&format!("p{i}"), "node-a"))
            .unwrap();
    }
    let mut events = Events::open(
        &server,
        &format!("/api/v1/pods?watch=true&resourceVersion={start}"),
    )
    .await;
    let error = events.next(WAIT).await.unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        events.next(WAIT).await.is_none(),
        "stream ends after the error"
    );
}

#[tokio::test]
async fn bookmarks_only_when_allowed_and_carry_latest_version() {
    let server = TestApiServer::start_with(ServerOptions {
        bookmark_interval: Duration::from_secs(3600),
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    let rv = server.resource_version();
    let mut with = Events::open(
        &server,
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&fieldSelector=spec.nodeName%3Dnode-a"),
    )
    .await;
    let mut without = Events::open(
        &server,
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
    )
    .await;
    // A change the first watch filters out still advances its bookmark.
    server.create_pod(manifest("elsewhere", "node-b")).unwrap();
    let seen = without.next(WAIT).await.unwrap();
    assert_eq!(seen["type"], "ADDED");
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.send_bookmarks();
    let bookmark = with.next(WAIT).await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        server.resource_version().to_string()
    );
    assert!(without.next(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn timeout_and_dropping_end_streams() {
    let server = TestApiServer::start().await.unwrap();
    let mut timed = Events::open(&server, "/api/v1/pods?watch=true&timeoutSeconds=1").await;
    let started = std::time::Instant::now();
    assert!(timed.next(WAIT).await.is_none());
    assert!(started.elapsed() >= Duration::from_millis(900));

    let mut closed = Events::open(&server, "/api/v1/pods?watch=true").await;
    let mut other = Events::open(&server, "/api/v1/pods?watch=true").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.open_watches(), 2);
    server.drop_watches(DropMode::Close);
    assert!(closed.next(WAIT).await.is_none());
    assert!(other.next(WAIT).await.is_none());

    let resp = send(&server, "/api/v1/pods?watch=true").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.drop_watches(DropMode::Abort);
    let outcome = resp.into_body().collect().await;
    assert!(
        outcome.is_err(),
        "an aborted stream is a body error, not a clean end"
    );

    let mut expired = Events::open(&server, "/api/v1/pods?watch=true").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.expire_watches();
    let error = expired.next(WAIT).await.unwrap();
    assert_eq!(error["object"]["code"], 410);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.open_watches(), 0);
}

#[tokio::test]
async fn held_watches_wait_until_released() {
    let server = TestApiServer::start().await.unwrap();
    server.hold_watches();
    let srv = &server;
    let opening = async { Events::open(srv, "/api/v1/pods?watch=true").await };
    tokio::pin!(opening);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut opening)
            .await
            .is_err()
    );
    server.create_pod(manifest("p", "node-a")).unwrap();
    server.release_watches();
    let mut events = opening.await;
    let added = events.next_non_bookmark(WAIT).await.unwrap();
    assert_eq!(added["object"]["metadata"]["name"], "p");
}

#[tokio::test]
async fn discovery_documents_and_unknown_paths() {
    let server = TestApiServer::start().await.unwrap();
    let (code, version) = get(&server, "/version").await;
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));
    assert_eq!(version["minor"], "33");
    let (_, api) = get(&server, "/api").await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, core) = get(&server, "/api/v1").await;
    assert_eq!(core["resources"][0]["name"], "pods");
    let (code, status) = get(&server, "/apis/apps/v1/deployments").await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (code, _) = get(&server, "/api/v1/namespaces/default/pods/missing").await;
    assert_eq!(code, 404);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path == "/version" && r.status == 200)
    );
}

#[tokio::test]
async fn raw_objects_are_stored_verbatim() {
    let server = TestApiServer::start().await.unwrap();
    let raw = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "default", "uid": "u-bad"},
        "spec": {"nodeName": "node-a", "containers": [{"image": "nameless"}]}});
    let rv = server.inject_raw(raw).unwrap();
    let (_, pod) = get(&server, "/api/v1/namespaces/default/pods/bad").await;
    assert_eq!(pod["metadata"]["resourceVersion"], rv.to_string());
    assert_eq!(pod["spec"]["containers"][0], json!({"image": "nameless"}));
    assert!(pod.get("status").is_none());
}

/// A kubelet's "Starting kubelet." on its Node is served as a core/v1
/// Event: listed and watched with the field selectors on
/// `involvedObject.*` and `reason` the real server supports, refused with
/// 400 on a field events do not have, and shown by the real kubectl.
#[tokio::test]
async fn node_events_are_listed_watched_and_shown_by_kubectl() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    server.kubelet_started("node-a", at).unwrap();
    server.kubelet_started("node-b", at).unwrap();
    let path =
        "/api/v1/events?fieldSelector=involvedObject.kind%3DNode,involvedObject.name%3Dnode-a";
    let (status, list) = get(&server, path).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "EventList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["reason"], "Starting");
    assert_eq!(items[0]["source"]["component"], "kubelet");
    assert_eq!(items[0]["metadata"]["namespace"], "default");
    let (status, _) = get(
        &server,
        "/api/v1/events?fieldSelector=spec.nodeName%3Dnode-a",
    )
    .await;
    assert_eq!(status, 400, "spec.nodeName is a pod field");
    let (status, _) = get(&server, "/api/v1/pods?fieldSelector=reason%3DStarting").await;
    assert_eq!(status, 400, "reason is an event field");

    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = Events::open(&server, &format!("{path}&watch=true&resourceVersion={rv}")).await;
    server.kubelet_started("node-b", at + 5).unwrap();
    server.kubelet_started("node-a", at + 10).unwrap();
    let event = watch
        .next(Duration::from_secs(5))
        .await
        .expect("a watch event");
    assert_eq!(event["type"], "ADDED");
    assert_eq!(
        event["object"]["involvedObject"]["name"], "node-a",
        "{event}"
    );
    assert_eq!(event["object"]["lastTimestamp"], clock::rfc3339(at + 10));

    let text = Kubectl::for_server(&server)
        .run(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "involvedObject.name=node-a",
            "-o",
            "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message",
        ])
        .await;
    assert_eq!(text.matches("Starting kubelet.").count(), 2, "{text}");
    assert_eq!(text.matches("node-a   Starting").count(), 2, "{text}");
}
