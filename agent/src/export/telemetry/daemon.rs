//! Self-telemetry of the `run` daemon: restart recovery, live audits in
//! progress, the journal.

use super::{Telemetry, add_cumulative};

/// The daemon's state as `run` sees it; journal values are cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DaemonState {
    pub recovered_processes: u64,
    pub audits_in_progress: u64,
    pub journal_lines: u64,
    pub journal_write_errors: u64,
    pub journal_rotations: u64,
}

impl Telemetry {
    /// Sets the daemon's gauges and turns its cumulative journal counts
    /// into counter increments (like [`Telemetry::observe_stats`]).
    pub fn observe_daemon(&self, d: &DaemonState) {
        let Ok(mut seen) = self.inner.stats_seen.lock() else {
            return;
        };
        self.with(|i| {
            i.recovered.record(d.recovered_processes, &[]);
            i.audits_in_progress.record(d.audits_in_progress, &[]);
            for (series, value, counter) in [
                ("daemon/journal_lines", d.journal_lines, &i.journal_lines),
                (
                    "daemon/journal_write_errors",
                    d.journal_write_errors,
                    &i.journal_write_errors,
                ),
                (
                    "daemon/journal_rotations",
                    d.journal_rotations,
                    &i.journal_rotations,
                ),
            ] {
                add_cumulative(&mut seen, series.to_owned(), value, counter, &[]);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{ExportConfig, ResourceInfo};

    #[test]
    fn cumulative_journal_counts_become_counter_increments() {
        let t = Telemetry::from_config(&ExportConfig::default(), &ResourceInfo::default());
        let state = |lines, errors| DaemonState {
            recovered_processes: 3,
            audits_in_progress: 2,
            journal_lines: lines,
            journal_write_errors: errors,
            journal_rotations: 0,
        };
        t.observe_daemon(&state(10, 0));
        t.observe_daemon(&state(25, 1));
        t.observe_daemon(&state(25, 1));
        let text = t.prometheus_text();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse::<f64>().ok())
        };
        assert_eq!(
            value("lifecycle_agent_journal_lines_total"),
            Some(25.0),
            "{text}"
        );
        assert_eq!(
            value("lifecycle_agent_journal_write_errors_total"),
            Some(1.0)
        );
        assert_eq!(value("lifecycle_agent_journal_rotations_total"), Some(0.0));
        assert_eq!(value("lifecycle_agent_recovered_processes"), Some(3.0));
        assert_eq!(value("lifecycle_agent_audits_in_progress"), Some(2.0));
    }
}
