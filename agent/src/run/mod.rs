//! `lifecycle-agent run`: the node daemon.
//!
//! Start-up, in order: the HTTP endpoints (so a stuck start is visible),
//! the node checks ([`crate::preflight`]), the exporter, the cgroup walk
//! and the recovery of running containers from `/proc` ([`recover`]), the
//! pod watch, the probes. Then the shared event loop
//! ([`crate::event_loop`]) hands every record to the daemon's consumer
//! (`daemon.rs`): the journal ([`journal`]) and the live audit (`live.rs`),
//! whose audits go to the metrics, the exporter and, as Kubernetes Events,
//! the API server ([`crate::api_events`]).
//! `/readyz` turns ready once the probes are attached and the pod list is
//! synced ([`health`]).
//!
//! On SIGTERM: not ready, the probes' reader stops, what was read is
//! processed, the audits of terminations in flight are completed (partial
//! if unfinished), the exporter and the Events flush within
//! `shutdown_timeout`, exit 0.

mod daemon;
pub mod health;
pub mod journal;
mod live;
mod options;
// Reads other processes' start times and namespaces with raw system calls.
#[allow(unsafe_code)]
pub mod recover;

pub use live::LiveCounters;
pub use options::{RunError, RunOptions, RunSummary};

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    api_events::ApiEvents,
    attribution::{Cgroup2Walker, CgroupCache},
    event_loop::{Ended, EventLoop, LoopError},
    export::{Exporter, ResourceInfo, Telemetry},
    preflight,
};

use daemon::Daemon;

/// Records the daemon keeps per pod by default: a node runs many pods for
/// a long time, so far fewer than an offline audit's
/// ([`crate::audit::config::DEFAULT_MAX_RECORDS_PER_POD`]); past it a pod's
/// older socket records go first.
pub const LIVE_MAX_RECORDS_PER_POD: usize = 2_000;
use health::Health;
use journal::Journal;
use live::LiveAudit;

/// Runs until `stop` turns true; returns what it did.
pub async fn run(
    options: RunOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<RunSummary, RunError> {
    let health = Health::new(options.event_loop.kubernetes.is_some());
    let resource = ResourceInfo {
        node_name: options
            .event_loop
            .kubernetes
            .as_ref()
            .map(|k| k.node_name.clone()),
    };
    let telemetry = Telemetry::from_config(&options.export, &resource);
    let text = {
        let telemetry = telemetry.clone();
        Arc::new(move || telemetry.prometheus_text())
    };
    let (health_addr, health_task) =
        health::serve(options.health_addr, health.clone(), text).await?;

    let report = preflight::run_checks(&options.preflight);
    for check in &report.checks {
        info!(check = %check.name, status = ?check.status, detail = %check.detail, "node check");
    }
    if report.failed() {
        health_task.abort();
        return Err(RunError::NodeUnsupported(Box::new(report)));
    }

    let exporter = Exporter::from_config(&options.export, &resource, telemetry.clone())
        .map_err(RunError::ExporterUnavailable)?;

    let walker = Cgroup2Walker::discover().map_err(LoopError::from)?;
    let cgroup_mount = walker.mount().to_path_buf();
    let mut cache = CgroupCache::new(options.cache.clone(), walker);
    let known = cache.populate().map_err(LoopError::from)?;
    let found = match recover::scan(&options.proc_root, &cgroup_mount, &mut cache) {
        Ok(scan) => scan,
        Err(error) => {
            warn!(%error, "cannot recover running containers; audits of pods already running will lack their start");
            recover::Scan::default()
        }
    };
    info!(
        cgroups = known,
        container_processes = found.processes.len(),
        unreadable = found.unreadable,
        unresolved = found.unresolved,
        runtime_setup = found.runtime_setup,
        "running containers recovered from cgroups and /proc"
    );

    let mut event_loop = EventLoop::start(&options.event_loop, cache).await?;
    let now_ns = event_loop.now_unix_ns();
    health.set_probes_attached(true);
    info!(%health_addr, "probes attached");

    let events = match &options.events {
        Some(config) => {
            let kubeconfig = options
                .event_loop
                .kubernetes
                .as_ref()
                .and_then(|k| k.kubeconfig.clone());
            let client = crate::pods::client::make_client_without_retries(kubeconfig)
                .await
                .map_err(RunError::EventsUnavailable)?;
            info!(
                node = %config.node_name,
                info_findings = config.include_info,
                "findings are posted as Kubernetes Events"
            );
            Some(ApiEvents::start(client, config.clone()))
        }
        None => None,
    };

    let journal = match &options.journal {
        Some(j) => Some(Journal::open(j.clone())?),
        None => None,
    };
    let mut daemon = Daemon {
        journal,
        live: LiveAudit::new(options.audit.clone()),
        telemetry: telemetry.clone(),
        exporter,
        events,
        health: health.clone(),
        recovered: found.processes.len() as u64,
    };
    for record in recover::records(&found, now_ns) {
        event_loop.inject(record, &mut daemon)?;
    }

    if event_loop.run(&mut daemon, wait_stop(&mut stop)).await? == Ended::ReaderClosed {
        health_task.abort();
        return Err(LoopError::ReaderStopped.into());
    }
    let counts = event_loop.finish(&mut daemon).await?;
    if let Some(error) = counts.reader_error {
        tracing::error!(%error, label = error.label(), "ring buffer reader failed");
    }
    let summary = daemon.finish(options.shutdown_timeout).await;
    health_task.abort();
    Ok(summary)
}

async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
