//! The daemon's optional recording journal: the same NDJSON lines as
//! `record`, in size-bounded files that rotate, so the last hours of a
//! node can be replayed with `report` after an incident.
//!
//! `journal.jsonl` is the file being written; at `max_file_bytes` it
//! becomes `journal.1.jsonl`, older files move up one number, and the file
//! past `max_files` is deleted. Disk use stays below `max_file_bytes ×
//! (max_files + 1)` plus one line. A failed write is counted and logged,
//! and never stops the agent: the journal is a copy, not the pipeline.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use thiserror::Error;
use tracing::warn;

use crate::event::Record;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("cannot create journal directory {path}: {source}")]
    DirectoryUnusable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl JournalError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::DirectoryUnusable { .. } => "journal_directory_unusable",
        }
    }
}

#[derive(Clone, Debug)]
pub struct JournalOptions {
    pub dir: PathBuf,
    pub max_file_bytes: u64,
    /// Rotated files kept besides the current one.
    pub max_files: usize,
}

/// What the journal wrote and failed to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalCounters {
    pub lines: u64,
    pub bytes: u64,
    pub rotations: u64,
    pub write_errors: u64,
    /// Lines lost to write errors.
    pub lines_lost: u64,
}

pub struct Journal {
    options: JournalOptions,
    out: Option<BufWriter<File>>,
    size: u64,
    next_seq: u64,
    counters: JournalCounters,
}

pub const CURRENT: &str = "journal.jsonl";

fn rotated(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("journal.{n}.jsonl"))
}

impl Journal {
    pub fn open(options: JournalOptions) -> Result<Self, JournalError> {
        std::fs::create_dir_all(&options.dir).map_err(|source| {
            JournalError::DirectoryUnusable {
                path: options.dir.clone(),
                source,
            }
        })?;
        let mut journal = Self {
            options,
            out: None,
            size: 0,
            next_seq: 0,
            counters: JournalCounters::default(),
        };
        // A file left by a previous run is kept as the newest rotated one.
        if journal.current_path().exists() {
            journal.rotate();
        }
        Ok(journal)
    }

    pub fn current_path(&self) -> PathBuf {
        self.options.dir.join(CURRENT)
    }

    pub fn counters(&self) -> JournalCounters {
        self.counters
    }

    /// Appends one record (numbered in journal order).
    pub fn write(&mut self, record: &Record) {
        let mut record = record.clone();
        record.seq = self.next_seq;
        let mut line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(error) => {
                self.fail(&error.to_string());
                return;
            }
        };
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.options.max_file_bytes {
            self.rotate();
        }
        if self.out.is_none() {
            match File::create(self.current_path()) {
                Ok(file) => self.out = Some(BufWriter::with_capacity(1 << 16, file)),
                Err(error) => {
                    self.fail(&error.to_string());
                    return;
                }
            }
        }
        let result = self.out.as_mut().map(|out| out.write_all(&line));
        match result {
            Some(Ok(())) => {
                self.size += line.len() as u64;
                self.next_seq += 1;
                self.counters.lines += 1;
                self.counters.bytes += line.len() as u64;
            }
            Some(Err(error)) => {
                self.fail(&error.to_string());
                // Start over with a fresh file on the next write.
                self.out = None;
            }
            None => {}
        }
    }

    pub fn flush(&mut self) {
        if let Some(Err(error)) = self.out.as_mut().map(|o| o.flush()) {
            self.fail(&error.to_string());
            self.out = None;
        }
    }

    fn fail(&mut self, error: &str) {
        self.counters.write_errors += 1;
        self.counters.lines_lost += 1;
        // One warning per power of two, not one per line.
        if self.counters.write_errors.is_power_of_two() {
            warn!(
                error,
                errors = self.counters.write_errors,
                "journal write failed; the agent carries on"
            );
        }
    }

    fn rotate(&mut self) {
        self.flush();
        self.out = None;
        let dir = self.options.dir.clone();
        let keep = self.options.max_files;
        let _ = std::fs::remove_file(rotated(&dir, keep.max(1)));
        for n in (1..keep.max(1)).rev() {
            let _ = std::fs::rename(rotated(&dir, n), rotated(&dir, n + 1));
        }
        if keep == 0 {
            let _ = std::fs::remove_file(self.current_path());
        } else if let Err(error) = std::fs::rename(self.current_path(), rotated(&dir, 1)) {
            self.fail(&error.to_string());
        }
        self.size = 0;
        self.counters.rotations += 1;
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Stats};

    fn record(i: u64) -> Record {
        Record {
            seq: 999,
            time: format!("t{i}"),
            time_ns: i as i64,
            boot_ns: None,
            cpu: None,
            event: Event::Stats(Stats::default()),
        }
    }

    fn files(dir: &Path) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                let len = e.metadata().unwrap().len();
                (e.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn rotation_bounds_disk_use_and_keeps_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let line_len = serde_json::to_vec(&record(0)).unwrap().len() as u64 + 1;
        let mut journal = Journal::open(JournalOptions {
            dir: dir.path().into(),
            max_file_bytes: line_len * 10,
            max_files: 2,
        })
        .unwrap();
        for i in 0..95 {
            journal.write(&record(i));
        }
        journal.flush();
        let found = files(dir.path());
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["journal.1.jsonl", "journal.2.jsonl", "journal.jsonl"]
        );
        let total: u64 = found.iter().map(|(_, len)| len).sum();
        assert!(total <= line_len * 10 * 3, "{total} bytes on disk");
        // The current file ends with the last line written, numbered in order.
        let text = std::fs::read_to_string(dir.path().join(CURRENT)).unwrap();
        let last: Record = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!((last.seq, last.time_ns), (94, 94));
        let c = journal.counters();
        assert_eq!((c.lines, c.write_errors), (95, 0));
        // Ten lines of the first length per file; later lines are a few
        // bytes longer (two-digit numbers), so one or two more rotations.
        assert!((9..=11).contains(&c.rotations), "{c:?}");
    }

    #[test]
    fn a_previous_runs_file_is_kept_as_rotated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CURRENT), b"old\n").unwrap();
        let options = JournalOptions {
            dir: dir.path().into(),
            max_file_bytes: 1 << 20,
            max_files: 3,
        };
        let mut journal = Journal::open(options).unwrap();
        journal.write(&record(1));
        journal.flush();
        let old = std::fs::read_to_string(dir.path().join("journal.1.jsonl")).unwrap();
        assert_eq!(old, "old\n");
    }
}
