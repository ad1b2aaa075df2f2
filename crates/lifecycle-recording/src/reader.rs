//! Reading a recording file (NDJSON, docs/recording.md) back.
//!
//! Lines of a `type` this version does not know are skipped and counted
//! (the format only grows), and so are `stats` lines it cannot decode (only
//! their drop counter is read). Any other line that does not parse (cut,
//! garbled, not UTF-8) is damaged: skipped, counted and located (its line
//! number and the times of the records around it), so that the audits can
//! say which pods it may have belonged to, and everything else is read. A
//! cut last line is how the journal of an agent killed mid-write ends.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::event::{Event, Record};

/// How many damaged line numbers a [`RecordingInfo`] lists.
pub const DAMAGED_LINES_LISTED: usize = 10;

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
}

impl ReadError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::OpenFailed { .. } => "open_failed",
            Self::ReadFailed { .. } => "read_failed",
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
    /// Lines that did not parse (cut, garbled, not UTF-8): skipped, their
    /// records lost.
    pub damaged_lines: usize,
    /// The first [`DAMAGED_LINES_LISTED`] of them, by line number (from 1).
    pub damaged_line_numbers: Vec<usize>,
    /// The last line was damaged and had no newline: a write cut short (an
    /// agent killed mid-write), the usual end of such a journal.
    pub cut_last_line: bool,
    /// Every damaged line with the times of the readable records around it.
    #[serde(skip)]
    pub damaged: Vec<DamagedLine>,
    /// Kernel ring-buffer drops from the last `stats` line: when non-zero
    /// the audits may miss events.
    pub kernel_drops: u64,
    /// `time_ns` of the earliest record (wall clock, ns since the Unix epoch);
    /// `None` when there are no records.
    pub first_ns: Option<i64>,
    /// `time_ns` of the latest record; `None` when there are no records.
    pub last_ns: Option<i64>,
}

/// A line that did not parse, between two readable records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DamagedLine {
    /// Line number, from 1.
    pub line: usize,
    /// `time_ns` of the last readable record before it (`None`: none).
    pub after_ns: Option<i64>,
    /// `time_ns` of the first readable record after it (`None`: none).
    pub before_ns: Option<i64>,
}

impl DamagedLine {
    /// Whether the lost record may lie in `[first_ns, last_ns]`.
    pub fn may_fall_in(&self, first_ns: i64, last_ns: i64) -> bool {
        self.after_ns.unwrap_or(i64::MIN) <= last_ns
            && self.before_ns.unwrap_or(i64::MAX) >= first_ns
    }
}

/// Reads every record of a recording, sorted by time (then `seq`).
pub fn read_recording(path: &Path) -> Result<(Vec<Record>, RecordingInfo), ReadError> {
    let file = File::open(path).map_err(|source| ReadError::OpenFailed {
        path: path.to_owned(),
        source,
    })?;
    read_lines(BufReader::new(file), path)
}

/// [`read_recording`] of text that is already open (`path` only names it
/// in the result and in errors). Any bytes at all are accepted: what does
/// not parse is counted as damaged or skipped, never a panic.
pub fn read_lines(
    mut reader: impl BufRead,
    path: &Path,
) -> Result<(Vec<Record>, RecordingInfo), ReadError> {
    let mut records = Vec::new();
    let mut info = RecordingInfo {
        path: path.display().to_string(),
        ..RecordingInfo::default()
    };
    let mut bytes = Vec::new();
    let mut index = 0;
    loop {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| ReadError::ReadFailed {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        index += 1;
        let ended = bytes.last() == Some(&b'\n');
        let Ok(line) = std::str::from_utf8(&bytes) else {
            damaged(&mut info, index, &records, ended);
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => {
                for d in info.damaged.iter_mut().rev() {
                    if d.before_ns.is_some() {
                        break;
                    }
                    d.before_ns = Some(record.time_ns);
                }
                records.push(record);
            }
            Err(_) => {
                let value: Option<serde_json::Value> = serde_json::from_str(line).ok();
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
                    _ => damaged(&mut info, index, &records, ended),
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

/// Counts and locates damaged line `index`.
fn damaged(info: &mut RecordingInfo, index: usize, records: &[Record], ended: bool) {
    info.damaged_lines += 1;
    if info.damaged_line_numbers.len() < DAMAGED_LINES_LISTED {
        info.damaged_line_numbers.push(index);
    }
    // Only the file's last line can lack its newline.
    info.cut_last_line = !ended;
    info.damaged.push(DamagedLine {
        line: index,
        after_ns: records.last().map(|r| r.time_ns),
        before_ns: None,
    });
}
