//! The node's kubelet restarts, from the API: the kubelet posts a Normal
//! `Starting` Event ("Starting kubelet.") on its Node each time it starts.
//! One kube-rs watcher on `/api/v1/events` with
//! `fieldSelector=involvedObject.kind=Node,involvedObject.name=<node>`;
//! each new `Starting` Event from the kubelet becomes a `kubelet_started`
//! pod event for every live pod of the node (a restart matters to the pods
//! whose termination it interrupts: the new kubelet retries it with the
//! full grace). An Event is reported once per occurrence (its uid and
//! `count`), so a re-list does not repeat it. Watch errors (403 without
//! RBAC on events, the API down) are counted and retried with kube's
//! backoff; the pod watch goes on regardless.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use crate::pods::event::{PodChange, PodEvent};
use crate::pods::store::PodStore;
use crate::pods::time::{ApiTimeSource, Stamp, wall_clock_ns};
use crate::pods::watch::PodWatchError;

/// Watches the Events of Node `node` and sends a `kubelet_started` pod
/// event per live pod for each kubelet start. Returns only when `sink` is
/// closed.
pub async fn run_node_events_watch(
    client: kube::Client,
    node: &str,
    store: PodStore,
    sink: mpsc::Sender<PodEvent>,
) -> Result<(), PodWatchError> {
    if node.trim().is_empty() {
        return Err(PodWatchError::NodeNameMissing);
    }
    let wc = watcher::Config::default().fields(&format!(
        "involvedObject.kind=Node,involvedObject.name={node}"
    ));
    let mut seen: HashSet<(String, i32)> = HashSet::new();
    tracing::info!(node, "watching the node's events for kubelet restarts");
    loop {
        let api: Api<KubeEvent> = Api::all(client.clone());
        let mut stream = watcher::watcher(api, wc.clone()).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(Event::Apply(e) | Event::InitApply(e)) => e,
                Ok(_) => continue,
                Err(error) => {
                    store
                        .counters()
                        .node_event_watch_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node, %error, "node event watch error; retrying");
                    continue;
                }
            };
            let Some(at_s) = kubelet_start(&event) else {
                continue;
            };
            let occurrence = (
                event.metadata.uid.clone().unwrap_or_default(),
                event.count.unwrap_or(1),
            );
            if !seen.insert(occurrence) {
                continue;
            }
            store
                .counters()
                .kubelet_starts
                .fetch_add(1, Ordering::Relaxed);
            let observed_ns = wall_clock_ns();
            let pods = store.live_identities();
            tracing::info!(node, at_s, pods = pods.len(), "the node's kubelet started");
            for pod in pods {
                let record = PodEvent {
                    at: Stamp::with_api(observed_ns, Some(at_s), ApiTimeSource::EventTime),
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    pod_uid: pod.uid.clone(),
                    change: PodChange::KubeletStarted,
                };
                sink.send(record)
                    .await
                    .map_err(|_| PodWatchError::EventSinkClosed)?;
            }
        }
        tracing::warn!(node, "node event watch stream ended; restarting");
    }
}

/// The time (Unix seconds) of a kubelet's `Starting` Event; `None` for
/// any other Event.
fn kubelet_start(event: &KubeEvent) -> Option<i64> {
    let from_kubelet = event
        .source
        .as_ref()
        .and_then(|s| s.component.as_deref())
        .or(event.reporting_component.as_deref())
        == Some("kubelet");
    if event.reason.as_deref() != Some("Starting") || !from_kubelet {
        return None;
    }
    let time = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.as_second()))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0.as_second()))?;
    Some(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, component: &str) -> KubeEvent {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-a.1", "namespace": "default", "uid": "e1"},
            "involvedObject": {"kind": "Node", "name": "node-a"},
            "reason": reason,
            "source": {"component": component, "host": "node-a"},
            "lastTimestamp": "2026-12-03T10:00:05Z",
            "count": 1,
            "type": "Normal",
        }))
        .expect("an Event")
    }

    #[test]
    fn only_the_kubelets_starting_event_counts() {
        assert_eq!(
            kubelet_start(&event("Starting", "kubelet")),
            Some(1_796_292_005)
        );
        assert_eq!(kubelet_start(&event("NodeReady", "kubelet")), None);
        assert_eq!(kubelet_start(&event("Starting", "kube-proxy")), None);
    }
}
