//! Reports on the audits of a recording: a terminal timeline ([`text`]),
//! a documented JSON document (the [`Report`] itself, docs/audits.md), a
//! self-contained HTML page with an SVG timeline per pod ([`html`]), and
//! the before/after comparison of two recordings ([`compare`]).

pub mod compare;
pub mod html;
pub mod text;

#[cfg(test)]
mod tests;

use std::{fmt, path::Path, str::FromStr};

use lifecycle_recording::{ReadError, RecordingInfo, read_recording};
use serde::{Deserialize, Serialize};

use crate::AuditConfig;
use crate::PodAudit;
use crate::Severity;
use crate::audit_records;

/// Identifies the JSON schema of a report.
pub const REPORT_SCHEMA: &str = "lifecycle-agent.audit-report/v1";

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Timeline tables for the terminal.
    Text,
    /// The JSON document (`lifecycle-agent.audit-report/v1`).
    Json,
    /// One self-contained HTML page with an SVG timeline per pod.
    Html,
}

impl FromStr for Format {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            other => Err(ReportError::UnknownFormat(other.to_owned())),
        }
    }
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The recording could not be read.
    #[error(transparent)]
    RecordingUnreadable(#[from] ReadError),
    /// A format name other than `text`, `json` or `html`.
    #[error("unknown report format {0:?} (text, json, html)")]
    UnknownFormat(String),
    /// A format the command cannot write (`compare` has no HTML).
    #[error("the {0} format is not available for this command")]
    FormatNotSupported(&'static str),
    /// JSON serialisation failed.
    #[error("cannot serialise the report")]
    SerialiseFailed(#[from] serde_json::Error),
}

impl ReportError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::RecordingUnreadable(e) => e.label(),
            Self::UnknownFormat(_) => "unknown_format",
            Self::FormatNotSupported(_) => "format_not_supported",
            Self::SerialiseFailed(_) => "serialise_failed",
        }
    }
}

/// Counts of findings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Pods audited.
    pub pods: usize,
    /// Findings of severity error, over all pods.
    pub errors: usize,
    /// Findings of severity warning, over all pods.
    pub warnings: usize,
    /// Findings of severity info, over all pods.
    pub infos: usize,
}

/// The audits of one recording.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// Package version of the audit code that wrote the report.
    pub tool_version: &'static str,
    /// The kubelet version whose rules were applied (not in the recording).
    pub kubelet_assumed: String,
    /// The recording read: path, record count, skipped lines, kernel drops,
    /// first and last wall-clock ns.
    pub recording: RecordingInfo,
    /// Finding counts by severity over all pods.
    pub summary: Summary,
    /// One audit per pod, by namespace, name and first record.
    pub pods: Vec<PodAudit>,
}

impl Report {
    /// Assembles the report, counting the pods' findings by severity.
    pub fn new(recording: RecordingInfo, pods: Vec<PodAudit>, config: &AuditConfig) -> Self {
        let count = |s: Severity| {
            pods.iter()
                .flat_map(|p| &p.findings)
                .filter(|f| f.severity == s)
                .count()
        };
        let summary = Summary {
            pods: pods.len(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        };
        Self {
            schema: REPORT_SCHEMA,
            tool_version: env!("CARGO_PKG_VERSION"),
            kubelet_assumed: config.kubelet.to_string(),
            recording,
            summary,
            pods,
        }
    }

    /// The report in `format`; JSON is pretty-printed and ends with a newline.
    pub fn render(&self, format: Format) -> Result<String, ReportError> {
        Ok(match format {
            Format::Text => text::render(self),
            Format::Json => serde_json::to_string_pretty(self)? + "\n",
            Format::Html => html::render(self),
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Html => "html",
        })
    }
}

/// What the reader skipped as damaged, in a sentence; `None` when nothing.
pub fn damage_note(r: &RecordingInfo) -> Option<String> {
    if r.damaged_lines == 0 {
        return None;
    }
    let mut lines: Vec<String> = r
        .damaged_line_numbers
        .iter()
        .map(usize::to_string)
        .collect();
    if r.damaged_lines > lines.len() {
        lines.push("…".into());
    }
    let cut = if r.cut_last_line {
        "; the last line was cut short, as the journal of an agent killed mid-write ends"
    } else {
        ""
    };
    Some(format!(
        "{} damaged line(s) skipped (line {}){cut}; the pods they may have held are audited as partial",
        r.damaged_lines,
        lines.join(", ")
    ))
}

/// Why a pod's audit is partial, in a few words; `None` when it is whole.
pub fn partial_note(pod: &PodAudit) -> Option<String> {
    if !pod.partial {
        return None;
    }
    Some(match pod.damaged_lines {
        0 => "partial: processes recovered at the agent's start".to_owned(),
        n => format!("partial: {n} damaged recording line(s) in its span"),
    })
}

/// Reads a recording and audits every pod in it.
pub fn audit_file(path: &Path, config: &AuditConfig) -> Result<Report, ReportError> {
    let (records, info) = read_recording(path)?;
    let mut pods = audit_records(records, config);
    for pod in &mut pods {
        pod.note_damage(&info.damaged);
    }
    Ok(Report::new(info, pods, config))
}
