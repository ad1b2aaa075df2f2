//! Self-telemetry from the agent's `Stats` records.
//!
//! `Stats` values are cumulative since the agent started; each series
//! remembers the last value seen and adds the difference to its counter.
//! A value lower than the last one means the source restarted: the new
//! value is counted whole.

use opentelemetry::{KeyValue, metrics::Counter};

use super::{Instruments, Telemetry, add_cumulative};
use crate::{event::Stats, export::keys};

impl Telemetry {
    /// Turns one `Stats` record into counter increments and gauges.
    pub fn observe_stats(&self, stats: &Stats) {
        self.with(|i| self.observe_into(i, stats));
    }

    fn observe_into(&self, i: &Instruments, stats: &Stats) {
        let Ok(mut seen) = self.inner.stats_seen.lock() else {
            return;
        };
        let mut bump = |series: String, value: u64, counter: &Counter<u64>, attrs: &[KeyValue]| {
            add_cumulative(&mut seen, series, value, counter, attrs)
        };
        for (kind, n) in &stats.kernel_drops {
            bump(
                format!("kernel_drops/{kind}"),
                *n,
                &i.kernel_drops,
                &[KeyValue::new(keys::EVENT_KIND, kind.clone())],
            );
        }
        for (kind, n) in &stats.events {
            bump(
                format!("events/{kind}"),
                *n,
                &i.events,
                &[KeyValue::new(keys::EVENT_KIND, kind.clone())],
            );
        }
        for (reason, n) in &stats.decode_errors {
            bump(
                format!("decode_errors/{reason}"),
                *n,
                &i.decode_errors,
                &[KeyValue::new(keys::ERROR_REASON, reason.clone())],
            );
        }
        bump(
            "unattributed".into(),
            stats.unattributed,
            &i.unattributed,
            &[],
        );
        for (signal, n) in &stats.summarized_signals {
            bump(
                format!("summarized_signals/{signal}"),
                *n,
                &i.summarized_signals,
                &[KeyValue::new(keys::SIGNAL_NAME, signal.clone())],
            );
        }
        for (kind, by_signal) in &stats.filtered_signals {
            for (signal, n) in by_signal {
                bump(
                    format!("filtered_signals/{kind}/{signal}"),
                    *n,
                    &i.filtered_signals,
                    &[
                        KeyValue::new(keys::SIGNAL_NAME, signal.clone()),
                        KeyValue::new(keys::EVENT_KIND, kind.clone()),
                    ],
                );
            }
        }
        bump(
            "unknown_layouts".into(),
            stats.unknown_layouts,
            &i.unknown_layouts,
            &[],
        );
        if let Some(j) = &stats.join {
            for (outcome, n) in [
                ("held", j.held),
                ("attributed_late", j.attributed_late),
                ("expired_unattributed", j.expired_unattributed),
                ("expired_likely_sandbox", j.expired_likely_sandbox),
                ("unknown_pod_not_held", j.unknown_pod_not_held),
            ] {
                bump(
                    format!("join/{outcome}"),
                    n,
                    &i.join_records,
                    &[KeyValue::new(keys::JOIN_OUTCOME, outcome)],
                );
            }
        }
        if let Some(p) = &stats.pod_store {
            bump(
                "watch_errors".into(),
                p.watch_errors,
                &i.watch_restarts,
                &[],
            );
            bump("relists".into(), p.relists, &i.watch_relists, &[]);
            bump(
                "malformed".into(),
                p.malformed_objects,
                &i.malformed_objects,
                &[],
            );
            bump("applied".into(), p.objects_applied, &i.objects_applied, &[]);
            i.pods.record(
                p.live_pods as u64,
                &[KeyValue::new(keys::POD_STATE, "live")],
            );
            i.pods.record(
                p.deleted_pods as u64,
                &[KeyValue::new(keys::POD_STATE, "deleted")],
            );
        }
    }
}
