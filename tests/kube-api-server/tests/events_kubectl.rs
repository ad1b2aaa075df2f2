//! The real kubectl (installed on the machine) against events the agent
//! would post through events.k8s.io/v1: `kubectl get events` (the server's
//! Table), `kubectl events --for` and `kubectl describe pod` (kubectl's own
//! tables from the core/v1 view) show them, a repeated one as a series.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

#[path = "support/events.rs"]
mod events;
#[path = "support/http.rs"]
mod http;
#[path = "support/kubectl.rs"]
mod kubectl;

use events::{NS, agent_event, series_patch, v1_events, with};
use http::{MERGE, patch, post};
use kube_api_server::{TestApiServer, clock};
use kubectl::Kubectl;
use serde_json::json;

const POD: &str = "web-7d9c-abcde";

/// A pod and two agent events about it: a single Warning 20 minutes ago, and
/// a Normal one first seen 40 minutes ago that repeated twice since (a
/// series of 3, last 12 minutes ago). Ages of ten minutes and more print in
/// whole minutes, so the output does not change while the test runs.
async fn server_with_events() -> TestApiServer {
    let server = TestApiServer::start().await.unwrap();
    let pod = json!({"metadata": {"name": POD, "namespace": NS},
        "spec": {"nodeName": "node-a",
                 "containers": [{"name": "app", "image": "example.com/app:2"},
                                {"name": "istio-proxy", "image": "istio/proxyv2:1.28.0"}]}});
    let created = server.create_pod(pod).unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let now = clock::now_s();
    let warning = agent_event(&format!("{POD}.18a2f3c4d5e6f708"), POD, uid, now - 20 * 60);
    let reply = post(&server, &v1_events(NS), &warning).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let name = format!("{POD}.18a2f3c4d5e6f709");
    let repeated = with(
        agent_event(&name, POD, uid, now - 40 * 60),
        json!({"type": "Normal", "reason": "GraceUsed", "action": "Stopping",
               "note": "app used 4.1 s of its 30 s grace", "regarding": {"fieldPath": null}}),
    );
    assert_eq!(post(&server, &v1_events(NS), &repeated).await.status, 201);
    let path = format!("{}/{name}", v1_events(NS));
    assert_eq!(
        patch(&server, &path, MERGE, &series_patch(2, now - 30 * 60))
            .await
            .status,
        200
    );
    assert_eq!(
        patch(&server, &path, MERGE, &series_patch(3, now - 12 * 60))
            .await
            .status,
        200
    );
    server
}

/// The line of `text` that mentions `reason`.
fn line_of<'a>(text: &'a str, reason: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(reason))
        .unwrap_or_else(|| panic!("no {reason} in:\n{text}"))
}

fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test]
async fn kubectl_get_events_prints_the_server_table() {
    let server = server_with_events().await;
    let kubectl = Kubectl::for_server(&server);
    let selector = format!("involvedObject.name={POD}");
    let text = kubectl
        .run(&["get", "events", "-n", NS, "--field-selector", &selector])
        .await;
    println!("kubectl get events:\n{text}");
    let header = columns(text.lines().next().unwrap());
    assert_eq!(header, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    let object = format!("pod/{POD}");
    let warning = columns(line_of(&text, "SidecarStoppedEarly"));
    assert_eq!(
        warning[1..],
        [
            "Warning",
            "SidecarStoppedEarly",
            &object,
            "istio-proxy exited 1.2 s before app"
        ]
    );
    let repeated = columns(line_of(&text, "GraceUsed"));
    assert_eq!(warning[0], "20m");
    assert_eq!(
        repeated[0], "12m",
        "a series is last seen at lastObservedTime"
    );
    assert_eq!(repeated[4], "app used 4.1 s of its 30 s grace");

    let wide = kubectl
        .run(&[
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            &selector,
            "-o",
            "wide",
        ])
        .await;
    println!("kubectl get events -o wide:\n{wide}");
    let repeated = columns(line_of(&wide, "GraceUsed"));
    assert_eq!(repeated[4], "lifecycle-agent, node-a", "SOURCE");
    assert_eq!(
        &repeated[6..],
        ["40m", "3", &format!("{POD}.18a2f3c4d5e6f709")]
    );
    let warning = columns(line_of(&wide, "SidecarStoppedEarly"));
    assert_eq!(warning[4], "spec.containers{istio-proxy}", "SUBOBJECT");
}

#[tokio::test]
async fn kubectl_events_for_the_pod() {
    let server = server_with_events().await;
    let target = format!("pod/{POD}");
    let text = Kubectl::for_server(&server)
        .run(&["events", "-n", NS, "--for", &target])
        .await;
    println!("kubectl events --for:\n{text}");
    let header = columns(text.lines().next().unwrap());
    assert_eq!(header, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    let object = format!("Pod/{POD}");
    let warning = columns(line_of(&text, "SidecarStoppedEarly"));
    assert_eq!(
        warning[1..],
        [
            "Warning",
            "SidecarStoppedEarly",
            &object,
            "istio-proxy exited 1.2 s before app"
        ]
    );
    let repeated = columns(line_of(&text, "GraceUsed"));
    assert_eq!(warning[0], "20m");
    assert_eq!(repeated[0], "12m (x3 over 40m)");
    assert_eq!(
        repeated[1..],
        [
            "Normal",
            "GraceUsed",
            &object,
            "app used 4.1 s of its 30 s grace"
        ]
    );
}

#[tokio::test]
async fn kubectl_describe_pod_lists_its_events() {
    let server = server_with_events().await;
    let text = Kubectl::for_server(&server)
        .run(&["describe", "pod", "-n", NS, POD])
        .await;
    println!("kubectl describe pod:\n{text}");
    assert!(
        text.starts_with(&format!("Name:             {POD}\n")),
        "{text}"
    );
    let events = &text[text.find("\nEvents:").expect("an Events section") + 1..];
    let header = columns(events.lines().nth(1).unwrap());
    assert_eq!(header, ["Type", "Reason", "Age", "From", "Message"]);
    let warning = columns(line_of(events, "SidecarStoppedEarly"));
    assert_eq!(
        warning,
        [
            "Warning",
            "SidecarStoppedEarly",
            "20m",
            "lifecycle-agent",
            "istio-proxy exited 1.2 s before app"
        ]
    );
    let repeated = columns(line_of(events, "GraceUsed"));
    assert_eq!(repeated[..2], ["Normal", "GraceUsed"]);
    assert_eq!(repeated[2], "12m (x3 over 40m)");
    assert_eq!(
        repeated[3..],
        ["lifecycle-agent", "app used 4.1 s of its 30 s grace"]
    );
}
