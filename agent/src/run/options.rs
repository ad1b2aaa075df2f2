//! What `run` is given, how it fails, and what it reports at exit.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use thiserror::Error;

use super::{
    health::HealthError,
    journal::{JournalCounters, JournalError, JournalOptions},
    live::LiveCounters,
};
use crate::{
    api_events::{EventCounts, EventsConfig},
    attribution::CacheConfig,
    audit::AuditConfig,
    event_loop::{LoopError, LoopOptions},
    export::{ExportConfig, ExportError, ExportSummary},
    preflight::PreflightOptions,
};

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Probes, the pod watch (`None`: kernel events and audits without pod
    /// names) and the interval of the `stats` records (self-telemetry,
    /// journal).
    pub event_loop: LoopOptions,
    pub cache: CacheConfig,
    pub audit: AuditConfig,
    /// Resolved at the command line (flags, `LIFECYCLE_AGENT_*` and
    /// `OTEL_*` variables): a bad setting fails before anything starts.
    pub export: ExportConfig,
    /// Findings as Kubernetes Events; `None`: off.
    pub events: Option<EventsConfig>,
    pub preflight: PreflightOptions,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub health_addr: SocketAddr,
    pub journal: Option<JournalOptions>,
    /// Host `/proc` (in a pod: a read-only mount of the host's, e.g.
    /// `/host/proc`), for the recovery of running containers.
    pub proc_root: PathBuf,
    /// How long the stop may take to flush the exporter.
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Error)]
pub enum RunError {
    /// The node checks failed; the report lists each check.
    #[error("this node cannot run the agent:\n{}", .0.render_text())]
    NodeUnsupported(Box<crate::preflight::Report>),
    #[error(transparent)]
    HealthUnavailable(#[from] HealthError),
    #[error(transparent)]
    EventLoopFailed(#[from] LoopError),
    #[error("the exporter could not start")]
    ExporterUnavailable(#[source] ExportError),
    #[error(transparent)]
    JournalUnavailable(#[from] JournalError),
    #[error("cannot reach the Kubernetes API to post Events")]
    EventsUnavailable(#[source] crate::pods::client::ClientError),
}

impl RunError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::NodeUnsupported(_) => "node_unsupported",
            Self::HealthUnavailable(e) => e.label(),
            Self::EventLoopFailed(e) => e.label(),
            Self::ExporterUnavailable(_) => "exporter_unavailable",
            Self::JournalUnavailable(e) => e.label(),
            Self::EventsUnavailable(_) => "events_client_unavailable",
        }
    }
}

/// What a run did, printed at exit.
#[derive(Debug)]
pub struct RunSummary {
    pub live: LiveCounters,
    /// Audits of terminations in flight completed at the stop.
    pub completed_at_stop: u64,
    pub journal: Option<JournalCounters>,
    pub export: ExportSummary,
    /// `None` when Events were off.
    pub events: Option<EventCounts>,
}

impl RunSummary {
    pub fn describe(&self) -> String {
        let mut out = format!(
            "audits: {} startup, {} termination ({} partial), {} findings; {} completed at stop, {} running pods left to the next agent",
            self.live.startup_audits,
            self.live.termination_audits,
            self.live.partial_audits,
            self.live.findings,
            self.completed_at_stop,
            self.live.unfinished_at_stop,
        );
        if let Some(j) = &self.journal {
            out.push_str(&format!(
                "\njournal: {} lines, {} rotations, {} write errors",
                j.lines, j.rotations, j.write_errors
            ));
        }
        out.push_str(&format!("\nexport: {:?}", self.export));
        if let Some(e) = &self.events {
            out.push_str(&format!(
                "\nkubernetes events: {} created, {} repeats patched, {} failed attempts, {} dropped, {} info not posted",
                e.created,
                e.patched,
                e.failed_total(),
                e.dropped_total(),
                e.filtered_info
            ));
        }
        out
    }
}
