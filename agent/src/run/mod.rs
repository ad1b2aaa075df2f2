//! `lifecycle-agent run`: the node daemon.
//!
//! Start-up, in order: the HTTP endpoints (so a stuck start is visible),
//! the node checks ([`crate::preflight`]), the exporter, the cgroup walk
//! and the recovery of running containers from `/proc` ([`recover`]), the
//! pod watch, the probes. Then one loop: kernel batches and pod events
//! through attribution and the join into the journal ([`journal`]) and the
//! live audit ([`live`]), whose audits go to the metrics and the exporter.
//! `/readyz` turns ready once the probes are attached and the pod list is
//! synced ([`health`]).
//!
//! On SIGTERM: not ready, the probes' reader stops, what was read is
//! processed, the audits of terminations in flight are completed (partial
//! if unfinished), the exporter flushes within `shutdown_timeout`, exit 0.

pub mod health;
pub mod journal;
mod live;
mod options;
pub mod recover;
mod step;

pub use live::LiveCounters;
pub use options::{RunError, RunOptions, RunSummary};

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::{
    attribution::{Cgroup2Walker, CgroupCache},
    export::{Exporter, ResourceInfo, Telemetry},
    join::Joiner,
    preflight,
    record::{attach, pods::PodFeed},
};

use health::Health;
use journal::Journal;
use live::LiveAudit;
use step::Daemon;

/// Runs until `stop` turns true; returns what it did.
pub async fn run(
    options: RunOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<RunSummary, RunError> {
    let health = Health::new(options.kubernetes.is_some());
    let resource = ResourceInfo {
        node_name: options.kubernetes.as_ref().map(|k| k.node_name.clone()),
    };
    let telemetry = Telemetry::for_node(&options.export, &resource);
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
        return Err(RunError::NodeUnsupported(report.render_text()));
    }

    let exporter = Exporter::start(&options.export, resource, telemetry.clone())
        .map_err(|e| RunError::ExporterUnavailable(e.to_string()))?;

    let walker = Cgroup2Walker::discover()?;
    let cgroup_mount = walker.mount().to_path_buf();
    let mut cache = CgroupCache::new(options.cache.clone(), walker);
    let known = cache.populate()?;
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

    let feed = match &options.kubernetes {
        Some(kube) => Some(
            PodFeed::start(kube)
                .await
                .map_err(|e| RunError::KubernetesUnavailable(e.to_string()))?,
        ),
        None => None,
    };
    let joiner = match (&feed, &options.kubernetes) {
        (Some(f), Some(kube)) => Some(Joiner::new(f.store.clone(), kube.pending)),
        _ => None,
    };

    let attached = attach::<RunError>(&options.probes, cache)?;
    let now_ns = attached.pipeline.now_unix_ns();
    health.set_probes_attached(true);
    info!(%health_addr, "probes attached");

    let journal = match &options.journal {
        Some(j) => Some(Journal::open(j.clone())?),
        None => None,
    };
    let reader_stop_tx = attached.reader_stop;
    let reader = attached.reader;
    let mut daemon = Daemon {
        rx: attached.batches,
        pipeline: attached.pipeline,
        probes: attached.probes,
        joiner,
        feed,
        journal,
        live: LiveAudit::new(options.audit.clone()),
        telemetry: telemetry.clone(),
        exporter,
        health: health.clone(),
        recovered: found.processes.len() as u64,
        stats_interval: options.stats_interval,
    };
    for record in recover::records(&found, now_ns) {
        daemon.join(record);
    }

    tokio::select! {
        result = daemon.run_loop() => result?,
        _ = wait_stop(&mut stop) => {}
    }
    // Stop: not ready, no new kernel events, drain what was read.
    health.set_stopping();
    info!("stopping: draining events, finishing audits in flight");
    let _ = reader_stop_tx.send(true);
    // Drain before joining the reader: it may be waiting for room in the
    // channel to hand over its last batch.
    daemon.drain().await;
    match tokio::time::timeout(Duration::from_secs(5), reader).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => error!(error = %e, "ring buffer reader failed"),
        Ok(Err(e)) => error!(error = %e, "ring buffer reader task failed"),
        Err(_) => error!("ring buffer reader did not stop"),
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

/// How often the audit clock moves on without records.
pub(crate) const AUDIT_TICK: Duration = Duration::from_millis(500);
