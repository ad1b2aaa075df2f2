//! Metrics of the Kubernetes Events the daemon posts: the posting task's
//! cumulative counts turned into counter increments on every tick.

use opentelemetry::KeyValue;

use super::{Telemetry, add_cumulative};
use crate::export::keys;

/// The Kubernetes Events counters at one moment (the posting task's,
/// `crate::api_events`); cumulative except `queued`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Events created (POST accepted).
    pub created: u64,
    /// Repeats added to an Event's series (PATCH accepted).
    pub patched: u64,
    /// Attempts made again after a retryable failure.
    pub retries: u64,
    /// Info findings not posted (Normal Events are off).
    pub filtered_info: u64,
    /// Events waiting to be posted.
    pub queued: u64,
    /// Failed attempts by error label.
    pub failed: Vec<(&'static str, u64)>,
    /// Events never posted, by reason.
    pub dropped: Vec<(&'static str, u64)>,
}

impl EventCounts {
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().map(|(_, n)| n).sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }

    /// One drop reason's count, by its label.
    pub fn dropped_for(&self, label: &str) -> u64 {
        self.dropped
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, n)| *n)
    }

    /// One error's count, by its label.
    pub fn failed_for(&self, label: &str) -> u64 {
        self.failed
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, n)| *n)
    }
}

impl Telemetry {
    /// Adds what changed since the last call; every label exists from the
    /// first call (at 0), so a dashboard sees it before the first failure.
    pub fn observe_api_events(&self, c: &EventCounts) {
        let Ok(mut seen) = self.inner.stats_seen.lock() else {
            return;
        };
        self.with(|i| {
            let mut add = |series: String, value: u64, counter, attrs: &[KeyValue]| {
                add_cumulative(&mut seen, series, value, counter, attrs)
            };
            for (verb, value) in [("create", c.created), ("patch", c.patched)] {
                add(
                    format!("k8s_events/posted/{verb}"),
                    value,
                    &i.k8s_events_posted,
                    &[KeyValue::new(keys::K8S_EVENT_VERB, verb)],
                );
            }
            for (error, value) in &c.failed {
                add(
                    format!("k8s_events/failed/{error}"),
                    *value,
                    &i.k8s_events_failed,
                    &[KeyValue::new(keys::K8S_EVENT_ERROR, *error)],
                );
            }
            for (reason, value) in &c.dropped {
                add(
                    format!("k8s_events/dropped/{reason}"),
                    *value,
                    &i.k8s_events_dropped,
                    &[KeyValue::new(keys::K8S_EVENT_DROP_REASON, *reason)],
                );
            }
            add(
                "k8s_events/retries".into(),
                c.retries,
                &i.k8s_events_retries,
                &[],
            );
            add(
                "k8s_events/filtered".into(),
                c.filtered_info,
                &i.k8s_events_filtered,
                &[],
            );
            i.k8s_events_queue.record(c.queued, &[]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{ExportConfig, ResourceInfo};

    #[test]
    fn cumulative_event_counts_become_labelled_increments() {
        let t = Telemetry::from_config(&ExportConfig::default(), &ResourceInfo::default());
        let counts = |created, forbidden, full| EventCounts {
            created,
            patched: 1,
            retries: 0,
            filtered_info: 2,
            queued: 4,
            failed: vec![("forbidden", forbidden), ("unreachable", 0)],
            dropped: vec![("queue_full", full), ("rejected", forbidden)],
        };
        t.observe_api_events(&counts(3, 0, 0));
        t.observe_api_events(&counts(5, 2, 1));
        t.observe_api_events(&counts(5, 2, 1));
        let text = t.prometheus_text();
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{series} ")))
                .and_then(|v| v.parse::<f64>().ok())
        };
        let posted = "lifecycle_agent_k8s_events_posted_total";
        assert_eq!(
            value(&format!("{posted}{{lifecycle_k8s_event_verb=\"create\"}}")),
            Some(5.0),
            "{text}"
        );
        assert_eq!(
            value(&format!("{posted}{{lifecycle_k8s_event_verb=\"patch\"}}")),
            Some(1.0)
        );
        let failed = "lifecycle_agent_k8s_events_failed_total";
        assert_eq!(
            value(&format!(
                "{failed}{{lifecycle_k8s_event_error=\"forbidden\"}}"
            )),
            Some(2.0)
        );
        assert_eq!(
            value(&format!(
                "{failed}{{lifecycle_k8s_event_error=\"unreachable\"}}"
            )),
            Some(0.0),
            "present at 0"
        );
        let dropped = "lifecycle_agent_k8s_events_dropped_total";
        assert_eq!(
            value(&format!(
                "{dropped}{{lifecycle_k8s_event_drop_reason=\"queue_full\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            value("lifecycle_agent_k8s_events_filtered_total"),
            Some(2.0)
        );
        assert_eq!(value("lifecycle_agent_k8s_events_queue_size"), Some(4.0));
    }
}
