//! events.k8s.io/v1 writes on the wire, with a bare HTTP client: create,
//! get, list, merge patch, replace and delete; the real server's validation
//! (422 with field causes), conflicts (409), missing objects (404), refused
//! patch types (415), unknown fields, and the injected failures tests use to
//! exercise a client's error handling.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

#[path = "support/events.rs"]
mod events;
#[path = "support/http.rs"]
mod http;

use events::{NS, agent_event, micro, series_patch, v1_events, with};
use http::{MERGE, get, patch, post, request};
use kube_api_server::{TestApiServer, clock};
use serde_json::json;

fn names(list: &serde_json::Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn create_get_list_and_patch_a_series() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    let path = format!("{}/web.1", v1_events(NS));
    let created = post(
        &server,
        &v1_events(NS),
        &agent_event("web.1", "web", "u1", at),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let meta = &created.body["metadata"];
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    let rv: u64 = meta["resourceVersion"].as_str().unwrap().parse().unwrap();
    let stamped = clock::parse_rfc3339(meta["creationTimestamp"].as_str().unwrap()).unwrap();
    assert!((stamped - at).abs() <= 2, "{meta}");
    assert_eq!(created.body["eventTime"], micro(at));
    assert_eq!(created.body["kind"], "Event");
    assert_eq!(created.body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(get(&server, &path).await.body, created.body);

    let elsewhere =
        json!({"metadata": {"namespace": "other"}, "regarding": {"namespace": "other"}});
    let other = with(agent_event("x.1", "x", "u2", at), elsewhere);
    assert_eq!(post(&server, &v1_events("other"), &other).await.status, 201);

    let list = get(&server, &v1_events(NS)).await.body;
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("EventList"), Some("events.k8s.io/v1"))
    );
    assert_eq!(names(&list), vec!["web.1"]);
    assert!(list["items"][0].get("kind").is_none());
    assert_eq!(
        list["items"][0]["note"],
        "istio-proxy exited 1.2 s before app"
    );
    let all = "/apis/events.k8s.io/v1/events";
    assert_eq!(names(&get(&server, all).await.body), vec!["x.1", "web.1"]);
    let page = get(&server, &format!("{all}?limit=1")).await.body;
    assert_eq!(names(&page), vec!["x.1"]);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let rest = get(&server, &format!("{all}?limit=1&continue={token}")).await;
    assert_eq!(names(&rest.body), vec!["web.1"]);

    let patched = patch(&server, &path, MERGE, &series_patch(2, at + 60)).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["series"],
        json!({"count": 2, "lastObservedTime": micro(at + 60)})
    );
    let patched_rv: u64 = patched.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(patched_rv > rv);
    assert_eq!(patched.body["metadata"]["uid"], meta["uid"]);
    let strategic = "application/strategic-merge-patch+json";
    let again = patch(&server, &path, strategic, &series_patch(3, at + 90)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(server.events_v1(NS)[0]["series"]["count"], 3);

    let writes: Vec<(String, u16)> = server
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.status))
        .collect();
    let expected = [("POST", 201), ("POST", 201), ("PATCH", 200), ("PATCH", 200)];
    let expected: Vec<(String, u16)> = expected.iter().map(|(m, s)| ((*m).into(), *s)).collect();
    assert_eq!(writes, expected);
}

#[tokio::test]
async fn each_validation_rule_is_a_422_with_its_field() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    let last = micro(at);
    let cases = [
        (json!({"eventTime": null}), "eventTime", "Required value"),
        (
            json!({"reportingController": null}),
            "reportingController",
            "Required value",
        ),
        (
            json!({"reportingInstance": "i".repeat(129)}),
            "reportingInstance",
            "can have at most 128 characters",
        ),
        (json!({"action": null}), "action", "Required value"),
        (json!({"reason": null}), "reason", "Required value"),
        // 513 characters, 1026 bytes: the limit counts bytes.
        (
            json!({"note": "é".repeat(513)}),
            "message",
            "can have at most 1024 characters",
        ),
        (json!({"type": "Info"}), "type", "has invalid value: Info"),
        (
            json!({"deprecatedSource": {"component": "me"}}),
            "source",
            "needs to be unset",
        ),
        (
            json!({"deprecatedFirstTimestamp": clock::rfc3339(at)}),
            "firstTimestamp",
            "needs to be unset",
        ),
        (
            json!({"deprecatedLastTimestamp": clock::rfc3339(at)}),
            "lastTimestamp",
            "needs to be unset",
        ),
        (json!({"deprecatedCount": 2}), "count", "needs to be unset"),
        (
            json!({"series": {"count": 1, "lastObservedTime": last}}),
            "series.count",
            "should be at least 2",
        ),
        (
            json!({"series": {"count": 2}}),
            "series.lastObservedTime",
            "Required value",
        ),
        (
            json!({"regarding": {"namespace": null}}),
            "involvedObject.namespace",
            "does not match event.namespace",
        ),
        (
            json!({"metadata": {"name": "Bad_Name"}}),
            "metadata.name",
            "RFC 1123 subdomain",
        ),
    ];
    for (change, field, words) in cases {
        let body = with(agent_event("e.1", "web", "u1", at), change.clone());
        let reply = post(&server, &v1_events(NS), &body).await;
        assert_eq!(
            (reply.status, reply.reason()),
            (422, "Invalid"),
            "{change}: {}",
            reply.body
        );
        assert_eq!(reply.cause_fields()[0], field, "{change}: {}", reply.body);
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.starts_with("Event.events.k8s.io \""), "{message}");
        assert!(
            message.contains(&format!("{field}: ")) && message.contains(words),
            "{message}"
        );
        assert_eq!(reply.body["details"]["group"], "events.k8s.io");
    }
    assert!(
        server.events_v1(NS).is_empty(),
        "nothing invalid was stored"
    );

    let two = with(
        agent_event("e.1", "web", "u1", at),
        json!({"action": null, "type": "x"}),
    );
    let reply = post(&server, &v1_events(NS), &two).await;
    assert_eq!(
        reply.body["message"],
        "Event.events.k8s.io \"e.1\" is invalid: [action: Required value, type: Invalid value: \
         \"\": has invalid value: x]"
    );

    // Decoding problems come before validation: 400.
    let bad_time = with(
        agent_event("e.1", "web", "u1", at),
        json!({"eventTime": clock::rfc3339(at)}),
    );
    let reply = post(&server, &v1_events(NS), &bad_time).await;
    assert_eq!(
        (reply.status, reply.reason()),
        (400, "BadRequest"),
        "{}",
        reply.body
    );
    let core_typed = with(
        agent_event("e.1", "web", "u1", at),
        json!({"apiVersion": "v1"}),
    );
    assert_eq!(post(&server, &v1_events(NS), &core_typed).await.status, 400);
    let moved = with(
        agent_event("e.1", "web", "u1", at),
        json!({"metadata": {"namespace": "x"}}),
    );
    assert_eq!(post(&server, &v1_events(NS), &moved).await.status, 400);
}

#[tokio::test]
async fn names_conflicts_and_missing_events() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    let event = agent_event("e.1", "web", "u1", at);
    assert_eq!(post(&server, &v1_events(NS), &event).await.status, 201);
    let taken = post(&server, &v1_events(NS), &event).await;
    assert_eq!((taken.status, taken.reason()), (409, "AlreadyExists"));
    assert_eq!(
        taken.body["details"],
        json!({"name": "e.1", "group": "events.k8s.io", "kind": "events"})
    );
    let generated = with(
        event.clone(),
        json!({"metadata": {"name": null, "generateName": "web."}}),
    );
    let reply = post(&server, &v1_events(NS), &generated).await;
    let name = reply.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("web.") && name.len() == 9, "{name}");

    let missing = format!("{}/absent", v1_events(NS));
    let reply = patch(&server, &missing, MERGE, &series_patch(2, at)).await;
    assert_eq!((reply.status, reply.reason()), (404, "NotFound"));
    assert_eq!(
        reply.body["message"],
        "events.events.k8s.io \"absent\" not found"
    );

    let path = format!("{}/e.1", v1_events(NS));
    let json_patch = json!([{"op": "add", "path": "/series", "value": {}}]);
    let reply = patch(&server, &path, "application/json-patch+json", &json_patch).await;
    assert_eq!(
        (reply.status, reply.reason()),
        (415, "UnsupportedMediaType")
    );
    let reply = patch(&server, &path, MERGE, &json!({"note": "rewritten"})).await;
    assert_eq!((reply.status, reply.cause_fields()), (422, vec!["message"]));
    let reply = patch(&server, &path, MERGE, &series_patch(1, at)).await;
    assert_eq!(
        (reply.status, reply.cause_fields()),
        (422, vec!["series.count"])
    );
    let stale = json!({"metadata": {"resourceVersion": "1"}, "series": {"count": 2}});
    let reply = patch(&server, &path, MERGE, &stale).await;
    assert_eq!((reply.status, reply.reason()), (409, "Conflict"));

    // PUT replaces (and keeps identity), DELETE removes.
    let current = get(&server, &path).await.body;
    let replaced = with(current.clone(), series_patch(2, at + 5));
    let bytes = serde_json::to_vec(&replaced).unwrap();
    let json_type = [("content-type", "application/json")];
    let reply = request(&server, "PUT", &path, &json_type, bytes.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["metadata"]["uid"], current["metadata"]["uid"]);
    let reply = request(&server, "PUT", &path, &json_type, bytes).await;
    assert_eq!(
        (reply.status, reply.reason()),
        (409, "Conflict"),
        "stale resourceVersion"
    );
    let reply = request(&server, "DELETE", &path, &[], Vec::new()).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("Success"))
    );
    assert_eq!(get(&server, &path).await.status, 404);
}

#[tokio::test]
async fn unknown_fields_warn_or_fail_strict() {
    let server = TestApiServer::start().await.unwrap();
    let event = with(
        agent_event("e.1", "web", "u1", clock::now_s()),
        json!({"involvedObject": {}}),
    );
    let reply = post(&server, &v1_events(NS), &event).await;
    assert_eq!(reply.status, 201);
    let warning = reply.headers.get("warning").unwrap().to_str().unwrap();
    assert_eq!(warning, "299 - \"unknown field \\\"involvedObject\\\"\"");
    let strict = format!("{}?fieldValidation=Strict", v1_events(NS));
    let event = with(event, json!({"metadata": {"name": "e.2"}}));
    let reply = post(&server, &strict, &event).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("strict decoding error")
    );
}

#[tokio::test]
async fn injected_failures_answer_like_the_real_server() {
    let server = TestApiServer::start().await.unwrap();
    let at = clock::now_s();
    let path = format!("{}/e.1", v1_events(NS));
    let post_event = |name: &str| {
        let body = agent_event(name, "web", "u1", at);
        let server = &server;
        async move { post(server, &v1_events(NS), &body).await }
    };

    server.reject_event_writes(403, Some(1));
    let reply = post_event("e.1").await;
    assert_eq!((reply.status, reply.reason()), (403, "Forbidden"));
    assert_eq!(
        reply.body["message"],
        "events.events.k8s.io \"e.1\" is forbidden: User \"tester\" cannot create resource \
         \"events\" in API group \"events.k8s.io\" in the namespace \"shop\""
    );
    assert_eq!(
        post_event("e.1").await.status,
        201,
        "only one write was refused"
    );

    server.reject_event_writes(429, Some(2));
    let reply = patch(&server, &path, MERGE, &series_patch(2, at)).await;
    assert_eq!((reply.status, reply.reason()), (429, "TooManyRequests"));
    assert_eq!(reply.headers.get("retry-after").unwrap(), "1");
    assert_eq!(reply.body["details"]["retryAfterSeconds"], 1);
    assert_eq!(post_event("e.2").await.status, 429);
    assert_eq!(post_event("e.2").await.status, 201);

    server.reject_event_writes(503, None);
    for _ in 0..3 {
        let reply = post_event("e.3").await;
        assert_eq!((reply.status, reply.reason()), (503, "ServiceUnavailable"));
    }
    assert_eq!(get(&server, &path).await.status, 200, "reads are served");
    server.accept_event_writes();
    assert_eq!(post_event("e.3").await.status, 201);

    server.reject_event_writes(500, Some(1));
    assert_eq!(post_event("e.4").await.reason(), "InternalError");
    server.reject_event_writes(422, Some(1));
    let reply = post_event("e.4").await;
    assert_eq!(
        (reply.status, reply.cause_fields()),
        (422, vec!["metadata.name"])
    );
    assert_eq!(post_event("e.4").await.status, 201);
    assert_eq!(server.events_v1(NS).len(), 4);
    let refused = server.requests().iter().filter(|r| r.status >= 400).count();
    assert_eq!(refused, 8);
}
