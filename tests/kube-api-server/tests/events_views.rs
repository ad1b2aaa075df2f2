//! One store, two views: events created through events.k8s.io/v1 or core/v1
//! (or by the kubelet driver) read the same through both, converted like the
//! real server converts them; each view has its own field selector labels,
//! watches stream the view's form, kubectl's `Table` request is answered,
//! and discovery lists both groups.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

#[path = "support/events.rs"]
mod events;
#[path = "support/http.rs"]
mod http;

use events::{NS, agent_event, core_events, micro, series_patch, v1_events};
use http::{MERGE, get, patch, post, request, watch_lines, watch_lines_with};
use kube_api_server::{TestApiServer, clock};
use serde_json::{Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().unwrap()
}

#[tokio::test]
async fn v1_events_read_converted_through_core() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    post(
        &server,
        &v1_events(NS),
        &agent_event("web.1", "web", "u1", at),
    )
    .await;
    let path = format!("{}/web.1", v1_events(NS));
    patch(&server, &path, MERGE, &series_patch(2, at + 30)).await;

    let core = get(&server, &format!("{}/web.1", core_events(NS)))
        .await
        .body;
    assert_eq!(
        (core["apiVersion"].as_str(), core["kind"].as_str()),
        (Some("v1"), Some("Event"))
    );
    assert_eq!(
        core["involvedObject"]["fieldPath"],
        "spec.containers{istio-proxy}"
    );
    assert_eq!(core["involvedObject"]["uid"], "u1");
    assert_eq!(core["message"], "istio-proxy exited 1.2 s before app");
    assert_eq!(core["reportingComponent"], "lifecycle-agent");
    assert_eq!(core["reportingInstance"], "node-a");
    assert_eq!(core["source"], json!({}));
    assert!(core["firstTimestamp"].is_null() && core["lastTimestamp"].is_null());
    assert!(core.get("count").is_none() && core.get("note").is_none());
    assert_eq!(core["eventTime"], micro(at));
    assert_eq!(core["series"]["count"], 2);
    assert_eq!(
        (core["action"].as_str(), core["type"].as_str()),
        (Some("Terminating"), Some("Warning"))
    );

    let mut listed = items(&get(&server, &core_events(NS)).await.body)[0].clone();
    listed["kind"] = json!("Event");
    listed["apiVersion"] = json!("v1");
    assert_eq!(listed, core);
    assert_eq!(server.events_core(NS), vec![core]);
    assert_eq!(server.events_v1(NS), vec![get(&server, &path).await.body]);
}

#[tokio::test]
async fn core_events_read_converted_through_v1() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s() - 60;
    server.kubelet_started("node-a", at).unwrap();
    let list = get(&server, &v1_events("default")).await.body;
    let event = &items(&list)[0];
    assert_eq!(
        event["regarding"],
        json!({"kind": "Node", "name": "node-a", "uid": "node-a"})
    );
    assert_eq!(event["note"], "Starting kubelet.");
    assert_eq!(
        event["deprecatedSource"],
        json!({"component": "kubelet", "host": "node-a"})
    );
    assert_eq!(event["deprecatedFirstTimestamp"], clock::rfc3339(at));
    assert_eq!(event["deprecatedCount"], 1);
    assert!(event["eventTime"].is_null());
    assert_eq!(event["reportingController"], "kubelet");
    assert!(event.get("involvedObject").is_none() && event.get("message").is_none());

    // An old-style client posts through core/v1: the lenient rules apply
    // (no eventTime, no action), and the v1 view shows it too.
    let old = json!({"metadata": {"name": "web.2"},
        "involvedObject": {"kind": "Pod", "namespace": NS, "name": "web"},
        "reason": "Pulled", "message": "pulled", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-a"},
        "firstTimestamp": clock::rfc3339(at), "lastTimestamp": clock::rfc3339(at), "count": 1});
    let reply = post(&server, &core_events(NS), &old).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["apiVersion"], "v1");
    let path = format!("{}/web.2", core_events(NS));
    let reply = patch(
        &server,
        &path,
        MERGE,
        &json!({"count": 2, "message": "pulled again"}),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "core/v1 updates are not held to the strict rules"
    );
    let nameless = json!({"involvedObject": {"kind": "Pod", "namespace": NS, "name": "web"}});
    let reply = post(&server, &core_events(NS), &nameless).await;
    assert_eq!(
        (reply.status, reply.body["message"].as_str()),
        (
            422,
            Some(
                "Event \"\" is invalid: metadata.name: Required value: name or generateName is required"
            )
        )
    );
    let v1 = get(&server, &format!("{}/web.2", v1_events(NS))).await.body;
    assert_eq!(
        (v1["deprecatedCount"].as_i64(), v1["note"].as_str()),
        (Some(2), Some("pulled again"))
    );
    // The same event in events.k8s.io/v1 names is refused there.
    let renamed = json!({"metadata": {"name": "web.3"}, "regarding": old["involvedObject"],
        "reason": "Pulled", "note": "pulled", "type": "Normal",
        "deprecatedSource": old["source"], "deprecatedFirstTimestamp": old["firstTimestamp"],
        "deprecatedLastTimestamp": old["lastTimestamp"], "deprecatedCount": 1});
    let reply = post(&server, &v1_events(NS), &renamed).await;
    assert_eq!(
        reply.cause_fields(),
        [
            "eventTime",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "source"
        ]
    );
}

#[tokio::test]
async fn each_view_selects_on_its_own_field_names() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    post(
        &server,
        &v1_events(NS),
        &agent_event("web.1", "web", "u1", at),
    )
    .await;
    post(
        &server,
        &v1_events(NS),
        &agent_event("db.1", "db", "u2", at),
    )
    .await;
    let count = |path: String| {
        let server = &server;
        async move {
            let reply = get(server, &path).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            items(&reply.body).len()
        }
    };
    let core = core_events(NS);
    let v1 = v1_events(NS);
    assert_eq!(
        count(format!("{core}?fieldSelector=involvedObject.name%3Dweb")).await,
        1
    );
    assert_eq!(
        count(format!("{v1}?fieldSelector=regarding.name%3Dweb")).await,
        1
    );
    assert_eq!(
        count(format!(
            "{v1}?fieldSelector=regarding.uid%3Du2,type%3DWarning"
        ))
        .await,
        1
    );
    assert_eq!(
        count(format!(
            "{v1}?fieldSelector=reportingController%3Dlifecycle-agent"
        ))
        .await,
        2
    );
    assert_eq!(
        count(format!(
            "{core}?fieldSelector=reportingComponent%3Dlifecycle-agent"
        ))
        .await,
        2
    );
    // `source` falls back to the reporting controller when no source is set.
    assert_eq!(
        count(format!("{core}?fieldSelector=source%3Dlifecycle-agent")).await,
        2
    );
    assert_eq!(
        count(format!("{v1}?fieldSelector=metadata.name%3Ddb.1")).await,
        1
    );
    let wrong = get(
        &server,
        &format!("{v1}?fieldSelector=involvedObject.name%3Dweb"),
    )
    .await;
    assert_eq!((wrong.status, wrong.reason()), (400, "BadRequest"));
    let wrong = get(
        &server,
        &format!("{core}?fieldSelector=regarding.name%3Dweb"),
    )
    .await;
    assert_eq!(wrong.status, 400);
}

#[tokio::test]
async fn watches_stream_their_view_and_events_outlive_pods() {
    let server = TestApiServer::start().await.unwrap();
    let pod = json!({"metadata": {"name": "web", "namespace": NS},
                     "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "a:1"}]}});
    let uid = server.create_pod(pod).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = clock::now_s();
    let rv = get(&server, &v1_events(NS)).await.body["metadata"]["resourceVersion"].clone();
    let rv = rv.as_str().unwrap();
    post(
        &server,
        &v1_events(NS),
        &agent_event("web.1", "web", &uid, at),
    )
    .await;
    post(
        &server,
        &v1_events(NS),
        &agent_event("db.1", "db", "u2", at),
    )
    .await;
    let path = format!("{}/web.1", v1_events(NS));
    patch(&server, &path, MERGE, &series_patch(2, at + 1)).await;

    let selector = format!("watch=true&resourceVersion={rv}&fieldSelector=regarding.name%3Dweb");
    let v1 = watch_lines(&server, &format!("{}?{selector}", v1_events(NS)), 2).await;
    assert_eq!(v1[0]["type"], "ADDED");
    assert_eq!(v1[0]["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1[0]["object"]["regarding"]["uid"], uid.as_str());
    assert_eq!(v1[1]["type"], "MODIFIED");
    assert_eq!(v1[1]["object"]["series"]["count"], 2);
    let all = format!("/api/v1/events?watch=true&resourceVersion={rv}");
    let core = watch_lines(&server, &all, 3).await;
    let seen: Vec<(&str, &str)> = core
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["involvedObject"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("ADDED", "web"), ("ADDED", "db"), ("MODIFIED", "web")]
    );
    assert_eq!(core[2]["object"]["apiVersion"], "v1");

    server.delete_pod(NS, "web").unwrap();
    assert_eq!(
        server.events_v1(NS).len(),
        2,
        "deleting the pod leaves its events"
    );
}

#[tokio::test]
async fn discovery_lists_both_event_groups() {
    let server = TestApiServer::start().await.unwrap();
    let groups = get(&server, "/apis").await.body;
    assert_eq!(groups["groups"][0]["name"], "events.k8s.io");
    assert_eq!(
        groups["groups"][0]["preferredVersion"]["groupVersion"],
        "events.k8s.io/v1"
    );
    let group = get(&server, "/apis/events.k8s.io").await.body;
    assert_eq!(group["kind"], "APIGroup");
    let resources = get(&server, "/apis/events.k8s.io/v1").await.body;
    assert_eq!(resources["groupVersion"], "events.k8s.io/v1");
    let verbs = json!([
        "create", "delete", "get", "list", "patch", "update", "watch"
    ]);
    assert_eq!(resources["resources"][0]["name"], "events");
    assert_eq!(resources["resources"][0]["verbs"], verbs);
    assert_eq!(resources["resources"][0]["shortNames"], json!(["ev"]));
    let core = get(&server, "/api/v1").await.body;
    assert_eq!(core["resources"][1]["verbs"], verbs);
}

#[tokio::test]
async fn tables_answer_kubectl() {
    // Ages of 10 minutes and more print in whole minutes: stable while the
    // test runs.
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    post(
        &server,
        &v1_events(NS),
        &agent_event("web.1", "web", "u1", at - 20 * 60),
    )
    .await;
    let path = format!("{}/web.1", v1_events(NS));
    patch(&server, &path, MERGE, &series_patch(3, at - 12 * 60)).await;
    let accept = [("accept", TABLE)];
    let reply = request(
        &server,
        "GET",
        &format!("{}?limit=500", core_events(NS)),
        &accept,
        Vec::new(),
    )
    .await;
    let table = reply.body;
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let row = &table["rows"][0];
    assert_eq!(
        row["cells"],
        json!([
            "12m",
            "Warning",
            "SidecarStoppedEarly",
            "pod/web",
            "spec.containers{istio-proxy}",
            "lifecycle-agent, node-a",
            "istio-proxy exited 1.2 s before app",
            "20m",
            3,
            "web.1"
        ])
    );
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "web.1");
    assert!(table["metadata"]["resourceVersion"].is_string());

    let whole = format!("{}?includeObject=Object", v1_events(NS));
    let table = request(&server, "GET", &whole, &accept, Vec::new())
        .await
        .body;
    assert_eq!(
        table["rows"][0]["object"]["note"],
        "istio-proxy exited 1.2 s before app"
    );
    let one = request(&server, "GET", &path, &accept, Vec::new())
        .await
        .body;
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    let plain = get(&server, &core_events(NS)).await.body;
    assert_eq!(plain["kind"], "EventList", "no Table unless asked");

    // `kubectl get events -w`: each watch event carries a one-row Table.
    let watch = format!("{}?watch=true", core_events(NS));
    let lines = watch_lines_with(&server, &watch, &accept, 1).await;
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[0]["object"]["kind"], "Table");
    assert_eq!(
        lines[0]["object"]["rows"][0]["cells"][2],
        "SidecarStoppedEarly"
    );
}
