//! Events through kube-rs with the typed k8s-openapi events.k8s.io/v1
//! `Event`, the way the agent posts them: create, merge-patch a series, get
//! and list (with `regarding.*` selectors) parse; the server's refusals
//! arrive as `kube::Error::Api` with the real reasons and causes; the core
//! typed view lists the same events.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

#[path = "support/events.rs"]
mod events;

use events::{NS, agent_event, series_patch, with};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_api_server::{TestApiServer, clock};
use serde_json::json;

/// A client from a kubeconfig for `server`; `retry` keeps kube's default
/// retrying of 429, 503 and 504.
async fn client_for(server: &TestApiServer, retry: bool) -> kube::Client {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.default_retry = retry;
    kube::Client::try_from(config).unwrap()
}

fn typed(value: serde_json::Value) -> Event {
    serde_json::from_value(value).unwrap()
}

/// The `Status` of an API failure.
fn status(error: kube::Error) -> Box<kube::core::Status> {
    match error {
        kube::Error::Api(status) => status,
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test]
async fn typed_events_create_patch_get_and_list() {
    let server = TestApiServer::start().await.unwrap();
    let client = client_for(&server, true).await;
    let api: Api<Event> = Api::namespaced(client.clone(), NS);
    let at = clock::now_s();
    let event = typed(agent_event("web.1", "web", "u1", at));
    let created = api.create(&PostParams::default(), &event).await.unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(
        created.event_time, event.event_time,
        "MicroTime round-trips"
    );
    assert_eq!(created.regarding, event.regarding);

    let patched = api
        .patch(
            "web.1",
            &PatchParams::default(),
            &Patch::Merge(series_patch(2, at + 60)),
        )
        .await
        .unwrap();
    let series = patched.series.as_ref().unwrap();
    assert_eq!(series.count, 2);
    assert_eq!(series.last_observed_time.0.as_second(), at + 60);
    assert_eq!(api.get("web.1").await.unwrap(), patched);

    let other = typed(with(agent_event("db.1", "db", "u2", at), json!({})));
    api.create(&PostParams::default(), &other).await.unwrap();
    let web = api
        .list(&ListParams::default().fields("regarding.name=web"))
        .await
        .unwrap();
    let names: Vec<_> = web
        .items
        .iter()
        .map(|e| e.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["web.1"]);
    let page = api.list(&ListParams::default().limit(1)).await.unwrap();
    assert!(page.metadata.continue_.is_some());

    let core: Api<CoreEvent> = Api::namespaced(client, NS);
    let core_web = core.get("web.1").await.unwrap();
    assert_eq!(core_web.involved_object.name.as_deref(), Some("web"));
    assert_eq!(core_web.message, patched.note);
    assert_eq!(
        core_web.reporting_component.as_deref(),
        Some("lifecycle-agent")
    );
    assert_eq!(core_web.series.unwrap().count, Some(2));
}

#[tokio::test]
async fn typed_errors_carry_reasons_and_causes() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Event> = Api::namespaced(client_for(&server, false).await, NS);
    let at = clock::now_s();
    let event = typed(agent_event("web.1", "web", "u1", at));
    let pp = PostParams::default();
    api.create(&pp, &event).await.unwrap();

    let taken = status(api.create(&pp, &event).await.unwrap_err());
    assert!(taken.is_already_exists() && taken.code == 409, "{taken:?}");

    let unset = typed(with(
        agent_event("web.2", "web", "u1", at),
        json!({"reportingController": null, "series": {"count": 1, "lastObservedTime": events::micro(at)}}),
    ));
    let invalid = status(api.create(&pp, &unset).await.unwrap_err());
    assert!(invalid.is_invalid() && invalid.code == 422, "{invalid:?}");
    let fields: Vec<_> = invalid
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(
        fields.contains(&"reportingController".to_owned()),
        "{fields:?}"
    );
    assert!(fields.contains(&"series.count".to_owned()), "{fields:?}");

    let series = Patch::Merge(series_patch(2, at));
    let missing = status(
        api.patch("absent", &PatchParams::default(), &series)
            .await
            .unwrap_err(),
    );
    assert!(missing.is_not_found(), "{missing:?}");

    server.reject_event_writes(403, Some(1));
    let denied = status(
        api.create(&pp, &typed(agent_event("web.3", "web", "u1", at)))
            .await
            .unwrap_err(),
    );
    assert!(denied.is_forbidden(), "{denied:?}");
    server.reject_event_writes(429, Some(1));
    let busy = status(
        api.patch("web.1", &PatchParams::default(), &series)
            .await
            .unwrap_err(),
    );
    assert_eq!((busy.code, busy.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(busy.details.unwrap().retry_after_seconds, 1);
    server.reject_event_writes(503, None);
    let down = status(
        api.patch("web.1", &PatchParams::default(), &series)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (down.code, down.reason.as_str()),
        (503, "ServiceUnavailable")
    );
    server.accept_event_writes();
    api.patch("web.1", &PatchParams::default(), &series)
        .await
        .unwrap();
}

/// kube's default client retries a 429 after the server's `Retry-After`.
#[tokio::test]
async fn default_client_waits_out_a_429() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Event> = Api::namespaced(client_for(&server, true).await, NS);
    let at = clock::now_s();
    server.reject_event_writes(429, Some(1));
    let started = std::time::Instant::now();
    let event = typed(agent_event("web.1", "web", "u1", at));
    api.create(&PostParams::default(), &event).await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let posts: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [429, 201]);
}
