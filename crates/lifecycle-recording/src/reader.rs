//! Reading a recording file (NDJSON, docs/recording.md) back.
//!
//! Lines of a `type` this version does not know are skipped and counted
//! (the format only grows), and so are `stats` lines it cannot decode (only
//! their drop counter is read); any other line that does not parse is an
//! error with its line number.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::event::{Event, Record};

const KNOWN_TYPES: &[&str] = &[
    "signal_generate",
    "signal_deliver",
    "signal_summary",
    "process_exec",
    "process_fork",
    "process_exit",
    "cgroup",
    "socket",
    "pod",
    "stats",
];

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened.
    #[error("cannot open recording {path}")]
    OpenFailed {
        /// The recording's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading a line failed (an I/O error or text that is not UTF-8).
    #[error("cannot read recording {path}")]
    ReadFailed {
        /// The recording's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line that did not parse and cannot be skipped: not JSON, no `type`,
    /// or a known type other than `stats`.
    #[error("{path}:{line}: not a recording line")]
    BadLine {
        /// The recording's path.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What the JSON decoder said.
        source: serde_json::Error,
    },
}

impl ReadError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::OpenFailed { .. } => "open_failed",
            Self::ReadFailed { .. } => "read_failed",
            Self::BadLine { .. } => "bad_line",
        }
    }
}

/// What a recording held besides its records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecordingInfo {
    /// The path read, as text.
    pub path: String,
    /// Number of records read.
    pub records: usize,
    /// Lines of unknown types, and `stats` lines that did not decode: skipped.
    pub skipped_lines: usize,
    /// Kernel ring-buffer drops from the last `stats` line: when non-zero
    /// the audits may miss events.
    pub kernel_drops: u64,
    /// `time_ns` of the earliest record (wall clock, ns since the Unix epoch);
    /// `None` when there are no records.
    pub first_ns: Option<i64>,
    /// `time_ns` of the latest record; `None` when there are no records.
    pub last_ns: Option<i64>,
}

/// Reads every record of a recording, sorted by time (then `seq`).
pub fn read_recording(path: &Path) -> Result<(Vec<Record>, RecordingInfo), ReadError> {
    let file = File::open(path).map_err(|source| ReadError::OpenFailed {
        path: path.to_owned(),
        source,
    })?;
    let mut records = Vec::new();
    let mut info = RecordingInfo {
        path: path.display().to_string(),
        ..RecordingInfo::default()
    };
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ReadError::ReadFailed {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(record) => records.push(record),
            Err(source) => {
                let value: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                let kind = value
                    .as_ref()
                    .and_then(|v| v.get("type"))
                    .and_then(|t| t.as_str());
                match kind {
                    Some(t) if !KNOWN_TYPES.contains(&t) => info.skipped_lines += 1,
                    // Self-telemetry of another format revision: only the
                    // drop counter matters here.
                    Some("stats") => {
                        info.skipped_lines += 1;
                        let drops = value
                            .as_ref()
                            .and_then(|v| v.get("kernel_drops_total"))
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0);
                        info.kernel_drops = info.kernel_drops.max(drops);
                    }
                    _ => {
                        return Err(ReadError::BadLine {
                            path: path.to_owned(),
                            line: index + 1,
                            source,
                        });
                    }
                }
            }
        }
    }
    for record in &records {
        if let Event::Stats(s) = &record.event {
            info.kernel_drops = info.kernel_drops.max(s.kernel_drops_total);
        }
    }
    records.sort_by_key(|r| (r.time_ns, r.seq));
    info.records = records.len();
    info.first_ns = records.first().map(|r| r.time_ns);
    info.last_ns = records.last().map(|r| r.time_ns);
    Ok((records, info))
}
