//! Listing and watching this node's pods.
//!
//! One kube-rs watcher on `/api/v1/pods` with `fieldSelector=spec.nodeName=<node>`,
//! bookmarks on, paged lists (`limit`), and kube's default backoff between
//! retries. The loop never ends on a watch error: kube's watcher reports the
//! error (e.g. a 410 Gone, a refused connection) and then recovers by itself
//! — resuming from the last resource version, or re-listing when that
//! version expired. A re-list is bracketed by `Init` … `InitDone`; pods the
//! store holds as live but that the re-list did not contain were deleted
//! while the agent was not watching and are reported as such.
//!
//! The watch decodes [`RawPod`] (see [`crate::pods::raw`]) so one malformed
//! object is counted and skipped instead of breaking the list it is in.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use crate::pods::event::{DeletedReason, PodEvent};
use crate::pods::raw::RawPod;
use crate::pods::store::PodStore;
use crate::pods::time::wall_clock_ns;

/// Watch tunables.
#[derive(Clone, Debug)]
pub struct PodWatchConfig {
    /// The node whose pods are watched (`spec.nodeName`).
    pub node_name: String,
    /// Objects per list page.
    pub page_size: u32,
    /// Server-side watch timeout (`timeoutSeconds`); `None` keeps kube's 290 s.
    pub watch_timeout_s: Option<u32>,
    /// How often deleted pods past their TTL are evicted.
    pub eviction_interval: Duration,
}

impl PodWatchConfig {
    /// Defaults for `node_name`: pages of 500, kube's watch timeout,
    /// eviction every 10 s.
    pub fn for_node(node_name: &str) -> Self {
        Self {
            node_name: node_name.to_owned(),
            page_size: 500,
            watch_timeout_s: None,
            eviction_interval: Duration::from_secs(10),
        }
    }
}

/// Why the watch loop stopped (watch errors never stop it).
#[derive(Debug, thiserror::Error)]
pub enum PodWatchError {
    /// No node name: the agent would watch every pod of the cluster.
    #[error("node name is empty; refusing to watch pods of all nodes")]
    NodeNameMissing,
    /// The receiver of pod events is gone.
    #[error("pod event receiver closed")]
    EventSinkClosed,
}

/// Watches the pods of `node` with default settings; see [`run_pod_watch_with`].
pub async fn run_pod_watch(
    client: kube::Client,
    node: &str,
    store: PodStore,
    sink: mpsc::Sender<PodEvent>,
) -> Result<(), PodWatchError> {
    run_pod_watch_with(client, &PodWatchConfig::for_node(node), store, sink).await
}

/// Watches the pods of `config.node_name`, keeps `store` current and sends
/// every change to `sink`. Returns only when `sink` is closed.
pub async fn run_pod_watch_with(
    client: kube::Client,
    config: &PodWatchConfig,
    store: PodStore,
    sink: mpsc::Sender<PodEvent>,
) -> Result<(), PodWatchError> {
    if config.node_name.trim().is_empty() {
        return Err(PodWatchError::NodeNameMissing);
    }
    let mut wc = watcher::Config::default()
        .fields(&format!("spec.nodeName={}", config.node_name))
        .page_size(config.page_size);
    if let Some(timeout) = config.watch_timeout_s {
        wc = wc.timeout(timeout);
    }
    let mut eviction = tokio::time::interval(config.eviction_interval);
    let mut relist: Option<HashSet<String>> = None;
    tracing::info!(node = %config.node_name, page_size = config.page_size, "pod watch starting");

    // The watcher stream is endless; should it end anyway, start a new one.
    loop {
        let api: Api<RawPod> = Api::all(client.clone());
        let mut stream = watcher::watcher(api, wc.clone()).default_backoff().boxed();
        loop {
            let events = tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(event)) => handle(&store, &mut relist, event),
                    Some(Err(error)) => {
                        store.counters().watch_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(node = %config.node_name, %error, "pod watch error; retrying");
                        Vec::new()
                    }
                    None => {
                        tracing::warn!(node = %config.node_name, "pod watch stream ended; restarting");
                        break;
                    }
                },
                _ = eviction.tick() => {
                    let evicted = store.evict_expired(Instant::now());
                    if evicted > 0 {
                        tracing::debug!(evicted, "deleted pods evicted after TTL");
                    }
                    Vec::new()
                }
            };
            for event in events {
                sink.send(event)
                    .await
                    .map_err(|_| PodWatchError::EventSinkClosed)?;
            }
        }
    }
}

/// Applies one watcher event to the store; returns the resulting pod events.
fn handle(
    store: &PodStore,
    relist: &mut Option<HashSet<String>>,
    event: Event<RawPod>,
) -> Vec<PodEvent> {
    let observed_ns = wall_clock_ns();
    match event {
        Event::Init => {
            store.counters().relists.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("pod list starting");
            *relist = Some(HashSet::new());
            Vec::new()
        }
        Event::InitApply(raw) => {
            if let (Some(seen), Some(uid)) = (relist.as_mut(), raw.uid()) {
                seen.insert(uid.to_owned());
            }
            apply(store, raw, observed_ns)
        }
        Event::InitDone => {
            let seen = relist.take().unwrap_or_default();
            store
                .counters()
                .lists_completed
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(listed = seen.len(), "pod list complete");
            store.finish_relist(&seen, observed_ns, Instant::now())
        }
        Event::Apply(raw) => apply(store, raw, observed_ns),
        Event::Delete(raw) => {
            let Some(uid) = raw.uid().map(str::to_owned) else {
                count_malformed(store, &raw, "deleted object without uid");
                return Vec::new();
            };
            let last = raw.decode().ok();
            store.apply_deleted(
                &uid,
                last.as_ref(),
                DeletedReason::WatchDeleted,
                observed_ns,
                Instant::now(),
            )
        }
    }
}

fn apply(store: &PodStore, raw: RawPod, observed_ns: i64) -> Vec<PodEvent> {
    let name = raw.display_name();
    let uid = raw.uid().unwrap_or_default().to_owned();
    match raw.decode() {
        Ok(pod) => store.apply(&pod, observed_ns),
        Err(error) => {
            store
                .counters()
                .malformed_objects
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(pod = %name, pod_uid = %uid, %error, "skipping malformed pod object");
            Vec::new()
        }
    }
}

fn count_malformed(store: &PodStore, raw: &RawPod, problem: &str) {
    store
        .counters()
        .malformed_objects
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(pod = %raw.display_name(), problem, "skipping malformed pod object");
}
