//! The running server: listener, shared state and the test controls that
//! act on connections (dropping, holding and expiring watches).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::faults::WriteFault;
use crate::kubeconfig;
use crate::objects::ObjectStore;
use crate::routes;

/// Tunables of a test server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// How many changes the server remembers; older resource versions get
    /// 410 Gone. Real clusters keep minutes of history; tests use small
    /// numbers or [`TestApiServer::compact`].
    pub history_limit: usize,
    /// Period of `BOOKMARK` events on watches that asked for them.
    pub bookmark_interval: Duration,
    /// Reported `gitVersion` in `/version`.
    pub git_version: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(1),
            git_version: "v1.33.4".to_owned(),
        }
    }
}

/// How [`TestApiServer::drop_watches`] ends open watch streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropMode {
    /// The chunked body ends properly (like a server-side timeout or a load
    /// balancer closing an idle stream).
    Close,
    /// The connection is reset in the middle of the body (like a crashed
    /// API server or a network fault).
    Abort,
}

/// Messages from the test to every open watch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    Drop(DropMode),
    Expire,
    Bookmark,
}

/// One request the server answered, for assertions on client behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: std::collections::BTreeMap<String, String>,
    /// HTTP status code of the response (200 for watches, even those that
    /// only carry an `ERROR` event).
    pub status: u16,
}

impl RequestRecord {
    /// Whether this was a watch request.
    pub fn is_watch(&self) -> bool {
        matches!(
            self.query.get("watch").map(String::as_str),
            Some("true" | "1")
        )
    }

    /// Whether this was a list of pods (not a watch, not a single get).
    pub fn is_pod_list(&self) -> bool {
        !self.is_watch() && self.path.ends_with("/pods")
    }

    /// A query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// State shared by connections, watch tasks and the test driver.
pub(crate) struct Shared {
    pub(crate) store: Mutex<ObjectStore>,
    pub(crate) events: Mutex<ObjectStore>,
    pub(crate) event_faults: Mutex<Option<WriteFault>>,
    pub(crate) control: broadcast::Sender<Control>,
    pub(crate) hold: watch::Sender<bool>,
    pub(crate) open_watches: AtomicUsize,
    pub(crate) closed_watches: AtomicUsize,
    pub(crate) requests: Mutex<Vec<RequestRecord>>,
    pub(crate) options: ServerOptions,
    pub(crate) addr: SocketAddr,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, ObjectStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }
}

/// A Kubernetes API server for pods and events on `127.0.0.1`, plain HTTP.
///
/// Dropping it stops the listener and every connection.
pub struct TestApiServer {
    pub(crate) shared: Arc<Shared>,
    accept_task: tokio::task::JoinHandle<()>,
}

/// A server taken down by [`TestApiServer::shut_down`]: its objects and
/// resource versions survive (as in etcd) for [`Self::start_again`].
pub struct StoppedApiServer {
    shared: Arc<Shared>,
}

impl StoppedApiServer {
    /// Listens again on the same address with the same objects.
    pub async fn start_again(self) -> std::io::Result<TestApiServer> {
        let listener = TcpListener::bind(self.shared.addr).await?;
        let accept_task = tokio::spawn(accept_loop(listener, self.shared.clone()));
        Ok(TestApiServer {
            shared: self.shared,
            accept_task,
        })
    }
}

impl TestApiServer {
    /// Starts a server with default options on an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server with `options` on an ephemeral port.
    pub async fn start_with(options: ServerOptions) -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0".parse().expect("literal address"), options).await
    }

    /// Starts a server on `addr` (the binary uses a fixed port).
    pub async fn bind(addr: SocketAddr, options: ServerOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (control, _) = broadcast::channel(64);
        let (hold, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(ObjectStore::new(options.history_limit)),
            events: Mutex::new(ObjectStore::new(options.history_limit)),
            event_faults: Mutex::new(None),
            control,
            hold,
            open_watches: AtomicUsize::new(0),
            closed_watches: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            options,
            addr,
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(%addr, "test API server listening");
        Ok(Self {
            shared,
            accept_task,
        })
    }

    /// Stops like a crashed API server: the listener closes, every
    /// connection and watch is reset. The objects are kept.
    pub fn shut_down(self) -> StoppedApiServer {
        StoppedApiServer {
            shared: self.shared.clone(),
        }
        // `self` drops here: the accept task (and its connections) abort.
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kubeconfig document pointing at this server.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.url())
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Ends every open watch stream.
    pub fn drop_watches(&self, mode: DropMode) {
        let _ = self.shared.control.send(Control::Drop(mode));
    }

    /// Makes new watch requests wait (without answering) until
    /// [`Self::release_watches`]. Lists keep working. Combined with
    /// [`Self::drop_watches`] this simulates an outage of the watch path.
    pub fn hold_watches(&self) {
        self.shared.hold.send_replace(true);
    }

    /// Lets held and future watch requests proceed.
    pub fn release_watches(&self) {
        self.shared.hold.send_replace(false);
    }

    /// Sends every open watch an `ERROR` event with a 410 `Expired` status
    /// and closes it, as a server does when a watcher fell out of its window.
    pub fn expire_watches(&self) {
        let _ = self.shared.control.send(Control::Expire);
    }

    /// Sends a `BOOKMARK` now on every watch that allowed bookmarks.
    pub fn send_bookmarks(&self) {
        let _ = self.shared.control.send(Control::Bookmark);
    }

    /// Forgets the change history: every resource version before now is too
    /// old (watches from it get 410; continue tokens for it get HTTP 410).
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// The server's current resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().current_rv()
    }

    /// The oldest resource version a watch or continue token may still use.
    pub fn oldest_resource_version(&self) -> u64 {
        self.shared.store().oldest_servable_rv()
    }

    /// Number of pods stored (including injected raw objects).
    pub fn pod_count(&self) -> usize {
        self.shared.store().len()
    }

    /// Number of watch streams currently open.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Number of watch streams that have ended so far (for any reason).
    pub fn closed_watches(&self) -> usize {
        self.shared.closed_watches.load(Ordering::SeqCst)
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Watch tasks end when their connection goes away; closing the
        // control channel ends the ones whose client is still reading.
        let _ = self.shared.control.send(Control::Drop(DropMode::Abort));
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connection tasks live in this set so aborting the accept task (on
    // drop) aborts them all.
    let mut connections = JoinSet::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                continue;
            }
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| routes::handle(shared.clone(), req));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}
