//! The optional pod watch of a recording: pod events into the stream, and
//! the pod store the join uses.

use std::path::PathBuf;

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    clock::format_rfc3339_nanos,
    event::{Event, Record},
    kernel::loader::{LoadError, Probes},
    pods::{
        PendingLimits, PodChange, PodEvent, PodStore, PodWatchConfig, StoreConfig,
        client::make_client, node_events::run_node_events_watch, run_pod_watch_with,
    },
};

use super::LoopError;

/// Where the pods come from.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// Kubeconfig file; `None`: in-cluster config (or the usual inference).
    pub kubeconfig: Option<PathBuf>,
    /// This node's name: only its pods are watched.
    pub node_name: String,
    /// How long and how many kernel records wait for their pod or container.
    pub pending: PendingLimits,
    pub store: StoreConfig,
}

/// A running pod watch.
pub struct PodFeed {
    pub store: PodStore,
    pub events: mpsc::Receiver<PodEvent>,
    task: JoinHandle<()>,
}

impl PodFeed {
    pub async fn start(options: &KubeOptions) -> Result<Self, LoopError> {
        let client = make_client(options.kubeconfig.clone()).await?;
        let store = PodStore::new(options.store.clone());
        let (tx, events) = mpsc::channel(1024);
        let config = PodWatchConfig::for_node(&options.node_name);
        let watch_store = store.clone();
        info!(node = %options.node_name, "watching this node's pods");
        let (events_client, events_store, events_tx, node) = (
            client.clone(),
            store.clone(),
            tx.clone(),
            options.node_name.clone(),
        );
        let task = tokio::spawn(async move {
            let node_events = async move {
                if let Err(error) =
                    run_node_events_watch(events_client, &node, events_store, events_tx).await
                {
                    warn!(%error, "node event watch ended");
                }
                // The pod watch goes on without it.
                std::future::pending::<()>().await;
            };
            tokio::select! {
                result = run_pod_watch_with(client, &config, watch_store, tx) => {
                    if let Err(error) = result {
                        warn!(%error, "pod watch ended");
                    }
                }
                () = node_events => {}
            }
        });
        Ok(Self {
            store,
            events,
            task,
        })
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for PodFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A pod event as a recording line, stamped with the time the agent saw it.
pub fn pod_line(event: PodEvent) -> Record {
    let observed = event.at.observed_ns;
    Record {
        seq: 0,
        time: format_rfc3339_nanos(observed as i128),
        time_ns: observed,
        boot_ns: None,
        cpu: None,
        event: Event::Pod(event),
    }
}

/// A container's own stop signal is recorded whatever `--signals` says:
/// the probes' mask widens when the pod is reported, before the container
/// can be stopped with it. It never narrows again.
pub fn widen_for_stop_signals(probes: &mut Probes, event: &PodEvent) -> Result<(), LoadError> {
    let (PodChange::Added { spec } | PodChange::SpecChanged { spec }) = &event.change else {
        return Ok(());
    };
    let mask = probes.signal_mask();
    let stops = spec
        .containers
        .iter()
        .filter_map(|c| c.stop_signal.as_deref());
    let widened = mask.with_names(stops);
    if widened != mask {
        info!(pod = %event.pod, signals = %widened, "signal mask widened by a stop signal");
        probes.set_signal_mask(widened)?;
    }
    Ok(())
}
