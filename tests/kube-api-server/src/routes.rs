//! HTTP routing: discovery documents, pod get/list/watch, event reads and
//! writes in both API versions, and errors as `Status` bodies.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::clock::now_s;
use crate::discovery;
use crate::event_api::{self, Target, Written};
use crate::faults::{body_name, injected};
use crate::list::list_objects;
use crate::query::{Options, parse_query};
use crate::resource::Resource;
use crate::server::{RequestRecord, Shared};
use crate::status::ApiError;
use crate::table::{IncludeObject, event_table, wants_table};
use crate::watch::open_watch;

/// Body type of every response.
pub type Body = BoxBody<Bytes, io::Error>;

type Query = BTreeMap<String, String>;

/// Largest request body accepted, as the real server's limit.
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Entry point for every request on every connection.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parse_query(parts.uri.query());
    let response = route(&shared, &parts, body, &path, &query)
        .await
        .unwrap_or_else(|error| error_response(&error));
    shared.record(RequestRecord {
        method: parts.method.to_string(),
        path,
        query,
        status: response.status().as_u16(),
    });
    Ok(response)
}

/// An events path: which view, and how much of it.
struct EventPath<'a> {
    resource: Resource,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

impl<'a> EventPath<'a> {
    fn parse(segments: &[&'a str]) -> Option<Self> {
        let (resource, rest) = match segments {
            ["api", "v1", rest @ ..] => (Resource::Events, rest),
            ["apis", "events.k8s.io", "v1", rest @ ..] => (Resource::EventsV1, rest),
            _ => return None,
        };
        let (namespace, name) = match rest {
            ["events"] => (None, None),
            ["namespaces", ns, "events"] => (Some(*ns), None),
            ["namespaces", ns, "events", name] => (Some(*ns), Some(*name)),
            _ => return None,
        };
        Some(Self {
            resource,
            namespace,
            name,
        })
    }
}

async fn route(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: Incoming,
    path: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(events) = EventPath::parse(&segments) {
        return if parts.method == Method::GET {
            read_events(shared, &parts.headers, &events, query).await
        } else {
            write_events(shared, parts, body, &events, query).await
        };
    }
    if parts.method != Method::GET {
        return Err(ApiError::method_not_allowed(parts.method.as_str()));
    }
    match segments.as_slice() {
        ["version"] => Ok(json_response(200, &discovery::version_info(shared))),
        ["api"] => Ok(json_response(200, &discovery::api_versions(shared))),
        ["api", "v1"] => Ok(json_response(200, &discovery::core_resources())),
        ["apis"] => Ok(json_response(200, &discovery::group_list())),
        ["apis", "events.k8s.io"] => Ok(json_response(200, &discovery::events_group())),
        ["apis", "events.k8s.io", "v1"] => Ok(json_response(200, &discovery::events_resources())),
        ["healthz" | "livez" | "readyz"] => Ok(text_response("ok")),
        ["api", "v1", "pods"] => listed(shared, Resource::Pods, None, query, None).await,
        ["api", "v1", "namespaces", ns, "pods"] => {
            listed(shared, Resource::Pods, Some(ns), query, None).await
        }
        ["api", "v1", "namespaces", ns, "pods", name] => {
            let object = shared.store().get(&format!("{ns}/{name}"));
            object
                .map(|o| json_response(200, &o))
                .ok_or_else(|| ApiError::pod_not_found(name))
        }
        _ => Err(ApiError::no_route(path)),
    }
}

/// GET on events: one, a list, a watch, or a `Table` of either.
async fn read_events(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    events: &EventPath<'_>,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let resource = events.resource;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let table = wants_table(accept);
    let include = IncludeObject::from_query(query);
    match (events.namespace, events.name) {
        (Some(ns), Some(name)) => {
            let object = resource
                .store(shared)
                .get(&format!("{ns}/{name}"))
                .ok_or_else(|| ApiError::not_found(resource, name))?;
            if table {
                let rv = object["metadata"]["resourceVersion"].clone();
                let meta = json!({"resourceVersion": rv});
                let table = event_table(resource, &[(*object).clone()], meta, include, now_s());
                return Ok(json_response(200, &table));
            }
            Ok(json_response(200, &resource.view(&object)))
        }
        (namespace, _) if table && !is_watch(query) => {
            // The table is printed from the stored (core) form of the list.
            let mut opts = Options::from_params_for(query, resource)?;
            opts.resource = Resource::Events;
            let list = list_objects(&resource.store(shared), namespace, &opts)?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let table = event_table(resource, &items, list["metadata"].clone(), include, now_s());
            Ok(json_response(200, &table))
        }
        (namespace, _) => {
            let table = table.then_some(include);
            listed(shared, resource, namespace, query, table).await
        }
    }
}

fn is_watch(query: &Query) -> bool {
    matches!(query.get("watch").map(String::as_str), Some("true" | "1"))
}

/// POST, PATCH, PUT and DELETE on events.
async fn write_events(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: Incoming,
    events: &EventPath<'_>,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let method = &parts.method;
    let not_allowed = || ApiError::method_not_allowed(method.as_str());
    let (Some(namespace), verb) = (events.namespace, method.as_str()) else {
        return Err(not_allowed());
    };
    let verb = match (verb, events.name) {
        ("POST", None) => "create",
        ("PATCH", Some(_)) => "patch",
        ("PUT", Some(_)) => "update",
        ("DELETE", Some(_)) => "delete",
        _ => return Err(not_allowed()),
    };
    let body = Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map_err(|_| ApiError::too_large(BODY_LIMIT))?
        .to_bytes();
    let name = events.name.unwrap_or_default();
    if let Some(code) = shared.take_event_fault() {
        let name = if name.is_empty() {
            body_name(&body)
        } else {
            name.to_owned()
        };
        return Err(injected(code, events.resource, verb, namespace, &name));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let target = Target {
        resource: events.resource,
        namespace,
        name,
    };
    let json_body = || {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Ok(())
        } else {
            Err(ApiError::unsupported_media_type(
                content_type,
                &["application/json"],
            ))
        }
    };
    let written = match verb {
        "create" => json_body().and_then(|()| event_api::create(shared, target, &body, query))?,
        "update" => json_body().and_then(|()| event_api::replace(shared, target, &body, query))?,
        "patch" => event_api::patch(shared, target, content_type, &body, query)?,
        _ => return Ok(json_response(200, &event_api::delete(shared, target)?)),
    };
    Ok(written_response(&written))
}

/// A list, or with `watch` a watch, of `resource`; a watch sends `Table`s
/// when `table` says so.
async fn listed(
    shared: &Arc<Shared>,
    resource: Resource,
    namespace: Option<&str>,
    query: &Query,
    table: Option<IncludeObject>,
) -> Result<Response<Body>, ApiError> {
    let mut opts = Options::from_params_for(query, resource)?;
    opts.table = table;
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
    let list = list_objects(&resource.store(shared), namespace, &opts)?;
    Ok(json_response(200, &list))
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_builder(code: u16) -> http::response::Builder {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    json_builder(code)
        .body(full(serde_json::to_vec(value).unwrap_or_default()))
        .expect("static response parts")
}

fn written_response(written: &Written) -> Response<Body> {
    let code = if written.created { 201 } else { 200 };
    let mut builder = json_builder(code);
    for warning in &written.warnings {
        // The escaping of RFC 7234 warn-text: quotes inside are escaped.
        let text = warning.replace('\\', "\\\\").replace('"', "\\\"");
        builder = builder.header(header::WARNING, format!("299 - \"{text}\""));
    }
    builder
        .body(full(
            serde_json::to_vec(&written.object).unwrap_or_default(),
        ))
        .expect("static response parts")
}

fn error_response(error: &ApiError) -> Response<Body> {
    let mut builder = json_builder(error.code);
    if let Some(seconds) = error.retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds.to_string());
    }
    builder
        .body(full(
            serde_json::to_vec(&error.to_status()).unwrap_or_default(),
        ))
        .expect("static response parts")
}

fn text_response(text: &'static str) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(text))
        .expect("static response parts")
}
