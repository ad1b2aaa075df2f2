//! A bare HTTP/1.1 client for the wire-level tests: one connection per
//! request, any method, JSON bodies, the reply's status, headers and body.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::HeaderMap;
use hyper_util::rt::TokioIo;
use kube_api_server::TestApiServer;
use serde_json::Value;
use tokio::net::TcpStream;

/// What the server answered.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// `status.reason` of a failure body.
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }

    /// The fields named by an `Invalid` body's causes.
    pub fn cause_fields(&self) -> Vec<&str> {
        self.body["details"]["causes"]
            .as_array()
            .map(|causes| causes.iter().filter_map(|c| c["field"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// Sends one request; `headers` are extra headers, `body` raw bytes.
pub async fn request(
    server: &TestApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", server.addr().to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(server: &TestApiServer, path: &str) -> Reply {
    request(server, "GET", path, &[], Vec::new()).await
}

pub async fn post(server: &TestApiServer, path: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    request(
        server,
        "POST",
        path,
        &[("content-type", "application/json")],
        bytes,
    )
    .await
}

/// PATCH with `content_type` (a merge patch type, or one the server refuses).
pub async fn patch(server: &TestApiServer, path: &str, content_type: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    request(
        server,
        "PATCH",
        path,
        &[("content-type", content_type)],
        bytes,
    )
    .await
}

pub const MERGE: &str = "application/merge-patch+json";

/// The first `count` non-bookmark events of a watch on `path`, waiting at
/// most five seconds for each.
pub async fn watch_lines(server: &TestApiServer, path: &str, count: usize) -> Vec<Value> {
    watch_lines_with(server, path, &[], count).await
}

/// [`watch_lines`] with extra request headers.
pub async fn watch_lines_with(
    server: &TestApiServer,
    path: &str,
    headers: &[(&str, &str)],
    count: usize,
) -> Vec<Value> {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header("host", server.addr().to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();
    let (mut buf, mut events) = (Vec::new(), Vec::new());
    while events.len() < count {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let event: Value = serde_json::from_slice(&line).unwrap();
            if event["type"] != "BOOKMARK" {
                events.push(event);
            }
            continue;
        }
        let wait = std::time::Duration::from_secs(5);
        let frame = tokio::time::timeout(wait, body.frame()).await;
        let frame = frame
            .expect("a watch event within 5 s")
            .expect("an open stream");
        if let Ok(data) = frame.unwrap().into_data() {
            buf.extend_from_slice(&data);
        }
    }
    events
}
