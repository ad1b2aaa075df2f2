//! `lifecycle-agent export`: audits a recording offline and sends its
//! traces and metrics (forensics, replays, and the end-to-end tests).

use std::{path::Path, time::Duration};

use serde::Serialize;

use super::{ExportConfig, ExportError, ExportSummary, Exporter, ResourceInfo, Telemetry};
use lifecycle_audit::{AuditConfig, audit_records};
use lifecycle_recording::{Event, ReadError, read_recording};

#[derive(Debug, thiserror::Error)]
pub enum RecordingExportError {
    #[error(transparent)]
    RecordingUnreadable(#[from] ReadError),
    #[error(transparent)]
    ExporterFailed(#[from] ExportError),
}

impl RecordingExportError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::RecordingUnreadable(_) => "recording_unreadable",
            Self::ExporterFailed(e) => e.label(),
        }
    }
}

/// What an offline export did.
#[derive(Clone, Debug, Serialize)]
pub struct RecordingExport {
    pub recording: String,
    pub pods: usize,
    pub traces: usize,
    pub export: ExportSummary,
    /// The metrics as Prometheus text after the audits were recorded.
    #[serde(skip)]
    pub prometheus_text: String,
}

/// Audits `path` with `audit`, records the metrics (and the recording's
/// last `stats` line as self-telemetry), submits every audit's traces and
/// shuts the exporter down within `within`.
pub async fn export_recording(
    path: &Path,
    audit: &AuditConfig,
    config: &ExportConfig,
    resource: &ResourceInfo,
    within: Duration,
) -> Result<RecordingExport, RecordingExportError> {
    let (records, info) = read_recording(path)?;
    let telemetry = Telemetry::from_config(config, resource);
    let exporter = Exporter::from_config(config, resource, telemetry.clone())?;
    if let Some(stats) = records.iter().rev().find_map(|r| match &r.event {
        Event::Stats(s) => Some(s.clone()),
        _ => None,
    }) {
        telemetry.observe_stats(&stats);
    }
    let mut audits = audit_records(records, audit);
    for a in &mut audits {
        a.note_damage(&info.damaged);
    }
    if info.damaged_lines > 0 {
        tracing::warn!(
            recording = %info.path,
            damaged_lines = info.damaged_lines,
            first = ?info.damaged_line_numbers,
            cut_last_line = info.cut_last_line,
            "damaged lines skipped; the audits around them are partial"
        );
    }
    let mut traces = 0;
    for a in &audits {
        telemetry.record_audit(a);
        traces += exporter.submit(a).traces;
    }
    tracing::info!(recording = %info.path, pods = audits.len(), traces, "audits submitted");
    let prometheus_text = telemetry.prometheus_text();
    let export = exporter.shutdown(within).await;
    Ok(RecordingExport {
        recording: info.path,
        pods: audits.len(),
        traces,
        export,
        prometheus_text,
    })
}
