//! An OTLP receiver for tests, built from the OTLP protobuf definitions
//! (`opentelemetry-proto`): the gRPC `TraceService` and `MetricsService`
//! (tonic's generated servers) and OTLP/HTTP `POST /v1/traces` and
//! `POST /v1/metrics` with protobuf bodies, on one port (HTTP/1.1 and
//! HTTP/2). Every decoded request is kept, with the transport it came by,
//! for tests to inspect ([`view`] has helpers).
//!
//! For outage tests it can stop (the port closes, open connections are
//! dropped) and start again on the same port, or stay up and answer
//! `UNAVAILABLE` / `503` while [`Receiver::set_unavailable`] is on.

pub mod server;
pub mod view;

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::KeyValue,
    trace::v1::Span,
};
use tokio::{net::TcpListener, task::JoinHandle};

/// How a request arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    Http,
}

/// One decoded export request.
#[derive(Clone, Debug)]
pub struct Received<T> {
    pub transport: Transport,
    pub request: T,
}

/// A span with the resource and scope it came with.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub transport: Transport,
    pub resource: Vec<KeyValue>,
    pub scope: String,
    pub span: Span,
}

/// What the server tasks share with the handle.
#[derive(Debug, Default)]
pub struct Store {
    pub(crate) traces: Mutex<Vec<Received<ExportTraceServiceRequest>>>,
    pub(crate) metrics: Mutex<Vec<Received<ExportMetricsServiceRequest>>>,
    pub(crate) unavailable: AtomicBool,
    /// Requests answered with UNAVAILABLE / 503.
    pub(crate) refused: AtomicU64,
    /// Requests that could not be decoded (answered 400 / INVALID_ARGUMENT).
    pub(crate) malformed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running (or stopped) receiver.
pub struct Receiver {
    addr: SocketAddr,
    store: Arc<Store>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    /// Listens on `addr`.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let task = tokio::spawn(server::serve(listener, store.clone()));
        Ok(Self {
            addr,
            store,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the gRPC endpoint, and the OTLP/HTTP
    /// base endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint())
    }

    pub fn metrics_url(&self) -> String {
        format!("{}/v1/metrics", self.endpoint())
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Closes the port and drops every open connection; what was received
    /// is kept.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port (retrying while the port is still
    /// being released).
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await;
        let mut last = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    self.task = Some(tokio::spawn(server::serve(listener, self.store.clone())));
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("cannot bind")))
    }

    /// While on, every request is answered UNAVAILABLE (gRPC) or 503
    /// (HTTP) and not kept.
    pub fn set_unavailable(&self, on: bool) {
        self.store.unavailable.store(on, Ordering::SeqCst);
    }

    /// Requests refused while unavailable.
    pub fn refused(&self) -> u64 {
        self.store.refused.load(Ordering::SeqCst)
    }

    /// Requests whose body did not decode.
    pub fn malformed(&self) -> u64 {
        self.store.malformed.load(Ordering::SeqCst)
    }

    pub fn trace_requests(&self) -> Vec<Received<ExportTraceServiceRequest>> {
        lock(&self.store.traces).clone()
    }

    pub fn metric_requests(&self) -> Vec<Received<ExportMetricsServiceRequest>> {
        lock(&self.store.metrics).clone()
    }

    /// Every span received, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let mut out = Vec::new();
        for r in lock(&self.store.traces).iter() {
            for rs in &r.request.resource_spans {
                let resource = rs
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    let scope = ss
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for span in &ss.spans {
                        out.push(ReceivedSpan {
                            transport: r.transport,
                            resource: resource.clone(),
                            scope: scope.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Polls `done` every 20 ms until it holds or `timeout` passes;
    /// returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&Receiver) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
