//! HTTP routing: discovery documents, pod and event get/list/watch, and errors as
//! `Status` bodies.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::list::list_pods;
use crate::query::{Options, parse_query};
use crate::resource::Resource;
use crate::server::{RequestRecord, Shared};
use crate::status::ApiError;
use crate::watch::open_watch;

/// Body type of every response.
pub type Body = BoxBody<Bytes, io::Error>;

/// Entry point for every request on every connection.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = parse_query(req.uri().query());
    let response = if req.method() == Method::GET {
        route(&shared, &path, &query).await
    } else {
        Err(ApiError::method_not_allowed(req.method().as_str()))
    };
    let response = response.unwrap_or_else(|error| json_response(error.code, &error.to_status()));
    shared.record(RequestRecord {
        method: req.method().to_string(),
        path,
        query,
        status: response.status().as_u16(),
    });
    Ok(response)
}

async fn route(
    shared: &Arc<Shared>,
    path: &str,
    query: &std::collections::BTreeMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => Ok(json_response(200, &version_info(shared))),
        ["api"] => Ok(json_response(200, &api_versions(shared))),
        ["api", "v1"] => Ok(json_response(200, &core_resources())),
        ["apis"] => Ok(json_response(
            200,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        )),
        ["healthz" | "livez" | "readyz"] => Ok(text_response("ok")),
        ["api", "v1", "events"] => listed(shared, Resource::Events, None, query).await,
        ["api", "v1", "namespaces", ns, "events"] => {
            listed(shared, Resource::Events, Some(ns), query).await
        }
        ["api", "v1", "namespaces", ns, "events", name] => {
            let object = Resource::Events.store(shared).get(&format!("{ns}/{name}"));
            object
                .map(|o| json_response(200, &o))
                .ok_or_else(|| ApiError::not_found("events", name))
        }
        ["api", "v1", "pods"] => pods(shared, None, query).await,
        ["api", "v1", "namespaces", ns, "pods"] => pods(shared, Some(ns), query).await,
        ["api", "v1", "namespaces", ns, "pods", name] => {
            let object = shared.store().get(&format!("{ns}/{name}"));
            object
                .map(|o| json_response(200, &o))
                .ok_or_else(|| ApiError::pod_not_found(name))
        }
        _ => Err(ApiError::no_route(path)),
    }
}

async fn pods(
    shared: &Arc<Shared>,
    namespace: Option<&str>,
    query: &std::collections::BTreeMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    listed(shared, Resource::Pods, namespace, query).await
}

/// A list, or with `watch` a watch, of `resource`.
async fn listed(
    shared: &Arc<Shared>,
    resource: Resource,
    namespace: Option<&str>,
    query: &std::collections::BTreeMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let opts = Options::from_params_for(query, resource)?;
    if opts.watch {
        let rx = open_watch(shared.clone(), namespace.map(str::to_owned), opts).await?;
        let chunks = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk.map(Frame::data), rx))
        });
        let body = BodyExt::boxed(StreamBody::new(chunks));
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(body)
            .expect("static response parts"));
    }
    let list = list_pods(&resource.store(shared), namespace, &opts)?;
    Ok(json_response(200, &list))
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(serde_json::to_vec(value).unwrap_or_default()))
        .expect("static response parts")
}

fn text_response(text: &'static str) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(text))
        .expect("static response parts")
}

fn version_info(shared: &Shared) -> Value {
    let git_version = &shared.options.git_version;
    let minor = git_version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .unwrap_or("33");
    json!({
        "major": "1",
        "minor": minor,
        "emulationMajor": "1",
        "emulationMinor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions(shared: &Shared) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}
        ],
    })
}

fn core_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get", "list", "watch"],
                "shortNames": ["po"],
                "categories": ["all"],
            },
            {
                "name": "events",
                "singularName": "event",
                "namespaced": true,
                "kind": "Event",
                "verbs": ["get", "list", "watch"],
                "shortNames": ["ev"],
            },
            {
                "name": "pods/status",
                "singularName": "",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get"],
            },
        ],
    })
}
