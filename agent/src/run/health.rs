//! The daemon's HTTP endpoints: `/healthz` (the process is alive and its
//! event loop turns), `/readyz` (probes attached and, with a pod watch, the
//! pod list synced), `/metrics` (Prometheus text).
//!
//! Three GET endpoints do not need a web framework: requests are read up
//! to a size and time limit, answered, and the connection is closed.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use thiserror::Error;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinHandle,
};
use tracing::{debug, info};

/// Liveness: the event loop turned recently.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness: probes attached and the pod list synced.
pub const READYZ_PATH: &str = "/readyz";
/// The Prometheus text of the metric registry.
pub const METRICS_PATH: &str = "/metrics";

/// Longest request head read.
const MAX_REQUEST_BYTES: usize = 8192;
/// Time a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait.
const MAX_CONNECTIONS: usize = 16;
/// `/healthz` fails when the event loop has not turned for this long.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum HealthError {
    #[error("cannot listen on {addr} for /healthz, /readyz and /metrics: {source}")]
    ListenFailed {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl HealthError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::ListenFailed { .. } => "health_listen_failed",
        }
    }
}

/// What the endpoints report, updated by the daemon.
pub struct Health {
    started: Instant,
    probes_attached: AtomicBool,
    /// `None` at construction when no pod watch is configured.
    pods_synced: Option<AtomicBool>,
    stopping: AtomicBool,
    /// Milliseconds since `started` of the event loop's last turn.
    heartbeat_ms: AtomicU64,
}

impl Health {
    pub fn new(pod_watch: bool) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            probes_attached: AtomicBool::new(false),
            pods_synced: pod_watch.then(|| AtomicBool::new(false)),
            stopping: AtomicBool::new(false),
            heartbeat_ms: AtomicU64::new(0),
        })
    }

    pub fn set_probes_attached(&self, yes: bool) {
        self.probes_attached.store(yes, Ordering::Relaxed);
    }

    pub fn set_pods_synced(&self, yes: bool) {
        if let Some(s) = &self.pods_synced {
            s.store(yes, Ordering::Relaxed);
        }
    }

    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// Why the agent is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.stopping.load(Ordering::Relaxed) {
            Some("stopping")
        } else if !self.probes_attached.load(Ordering::Relaxed) {
            Some("probes not attached")
        } else if self
            .pods_synced
            .as_ref()
            .is_some_and(|s| !s.load(Ordering::Relaxed))
        {
            Some("pod list not synced")
        } else {
            None
        }
    }

    pub fn ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    /// Alive unless the event loop stalled (after it first turned).
    pub fn alive(&self) -> bool {
        let beat = self.heartbeat_ms.load(Ordering::Relaxed);
        beat == 0
            || (self.started.elapsed().as_millis() as u64).saturating_sub(beat)
                < STALL_LIMIT.as_millis() as u64
    }
}

/// Renders `/metrics`.
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// Binds `addr` and serves the endpoints until the task is aborted.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: MetricsText,
) -> Result<(SocketAddr, JoinHandle<()>), HealthError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HealthError::ListenFailed { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HealthError::ListenFailed { addr, source })?;
    info!(addr = %bound, "serving /healthz, /readyz and /metrics");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let health = health.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                if let Err(error) = answer(stream, &health, &metrics).await {
                    debug!(%peer, %error, "health request failed");
                }
                drop(permit);
            });
        }
    });
    Ok((bound, task))
}

async fn answer(
    mut stream: TcpStream,
    health: &Health,
    metrics: &MetricsText,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let (status, content_type, body) = match request_target(&head) {
        Some(("GET", path)) => route(path, health, metrics),
        Some(_) => (405, "text/plain", "only GET is served\n".to_owned()),
        None => (400, "text/plain", "malformed request\n".to_owned()),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn route(path: &str, health: &Health, metrics: &MetricsText) -> (u16, &'static str, String) {
    match path {
        p if p == HEALTHZ_PATH => match health.alive() {
            true => (200, "text/plain", "ok\n".into()),
            false => (503, "text/plain", "event loop stalled\n".into()),
        },
        p if p == READYZ_PATH => match health.not_ready_reason() {
            None => (200, "text/plain", "ready\n".into()),
            Some(why) => (503, "text/plain", format!("not ready: {why}\n")),
        },
        p if p == METRICS_PATH => (200, "text/plain; version=0.0.4; charset=utf-8", metrics()),
        _ => (404, "text/plain", "not found\n".into()),
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST_BYTES {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Method and path (query dropped) of the request line.
pub fn request_target(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    parts.next()?.starts_with("HTTP/").then_some(())?;
    Some((method, target.split('?').next().unwrap_or(target)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_and_queries_dropped() {
        assert_eq!(
            request_target("GET /metrics?x=1 HTTP/1.1\r\nhost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_target("GET /readyz\r\n"), None);
        assert_eq!(request_target(""), None);
    }

    #[test]
    fn ready_needs_probes_and_a_synced_pod_list() {
        let health = Health::new(true);
        assert_eq!(health.not_ready_reason(), Some("probes not attached"));
        health.set_probes_attached(true);
        assert_eq!(health.not_ready_reason(), Some("pod list not synced"));
        health.set_pods_synced(true);
        assert!(health.ready());
        health.set_stopping();
        assert_eq!(health.not_ready_reason(), Some("stopping"));
        let kernel_only = Health::new(false);
        kernel_only.set_probes_attached(true);
        assert!(kernel_only.ready());
    }
}
