//! The accept loop and the request routing: gRPC requests
//! (`content-type: application/grpc...`) go to tonic's generated
//! `TraceServiceServer` / `MetricsServiceServer`; `POST /v1/traces` and
//! `POST /v1/metrics` are decoded with prost. Connections are tasks of a
//! `JoinSet` owned by the accept loop, so aborting the loop closes them all.

use std::{convert::Infallible, sync::Arc, sync::atomic::Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use opentelemetry_proto::tonic::collector::{
    metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};
use prost::Message;
use tokio::{net::TcpListener, task::JoinSet};
use tonic::{Status, body::Body, codegen::Service};

use crate::{Received, Store, Transport, lock};

/// The gRPC services over the shared store.
#[derive(Clone)]
struct Grpc(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        if self.0.unavailable.load(Ordering::SeqCst) {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unavailable("receiver unavailable (test)"));
        }
        lock(&self.0.traces).push(Received {
            transport: Transport::Grpc,
            request: request.into_inner(),
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        if self.0.unavailable.load(Ordering::SeqCst) {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unavailable("receiver unavailable (test)"));
        }
        lock(&self.0.metrics).push(Received {
            transport: Transport::Grpc,
            request: request.into_inner(),
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::new(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    r
}

/// OTLP/HTTP: decode, keep, answer with an empty protobuf response.
async fn http_export(store: &Store, req: Request<Incoming>) -> Response<Body> {
    if req.method() != http::Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, Vec::new());
    }
    let path = req.uri().path().to_owned();
    if path != "/v1/traces" && path != "/v1/metrics" {
        return reply(StatusCode::NOT_FOUND, Vec::new());
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, Vec::new()),
    };
    if store.unavailable.load(Ordering::SeqCst) {
        store.refused.fetch_add(1, Ordering::SeqCst);
        return reply(StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    }
    if path == "/v1/traces" {
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                lock(&store.traces).push(Received {
                    transport: Transport::Http,
                    request,
                });
                reply(
                    StatusCode::OK,
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
            Err(_) => {
                store.malformed.fetch_add(1, Ordering::SeqCst);
                reply(StatusCode::BAD_REQUEST, Vec::new())
            }
        }
    } else {
        match ExportMetricsServiceRequest::decode(body) {
            Ok(request) => {
                lock(&store.metrics).push(Received {
                    transport: Transport::Http,
                    request,
                });
                reply(
                    StatusCode::OK,
                    ExportMetricsServiceResponse::default().encode_to_vec(),
                )
            }
            Err(_) => {
                store.malformed.fetch_add(1, Ordering::SeqCst);
                reply(StatusCode::BAD_REQUEST, Vec::new())
            }
        }
    }
}

fn is_grpc(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

async fn route(store: Arc<Store>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if !is_grpc(&req) {
        return Ok(http_export(&store, req).await);
    }
    let grpc = Grpc(store);
    let path = req.uri().path().to_owned();
    let response = if path.starts_with("/opentelemetry.proto.collector.trace.v1.TraceService/") {
        TraceServiceServer::new(grpc).call(req).await
    } else if path.starts_with("/opentelemetry.proto.collector.metrics.v1.MetricsService/") {
        MetricsServiceServer::new(grpc).call(req).await
    } else {
        Ok(Status::unimplemented(format!("no service for {path}")).into_http())
    };
    Ok(response.unwrap_or_else(|never| match never {}))
}

/// Serves `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, store: Arc<Store>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let store = store.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| route(store.clone(), req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
