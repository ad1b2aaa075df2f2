//! Two clocks for every pod fact.
//!
//! The agent records when it *saw* a change (its own wall clock, in
//! nanoseconds) next to the time the API object itself gives for it (whole
//! seconds, written by the kubelet or the API server, typically 1–2 s after
//! the kernel saw the real event). Audits compare kernel events with the
//! former and may only make whole-second claims from the latter.

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "k8s")]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// Which API field an API time was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiTimeSource {
    /// `metadata.creationTimestamp`.
    CreationTimestamp,
    /// `state.running.startedAt` (or `state.terminated.startedAt`).
    StartedAt,
    /// `state.terminated.finishedAt`.
    FinishedAt,
    /// A condition's `lastTransitionTime`.
    LastTransitionTime,
    /// `metadata.deletionTimestamp − deletionGracePeriodSeconds`: when the
    /// delete request reached the API server.
    DeletionRequest,
    /// The time of the kubelet's last status write (its `managedFields`
    /// entry). Used for changes without a field of their own, such as the
    /// `ready` and `started` flags or the pod phase.
    StatusUpdate,
    /// An Event's `lastTimestamp` (or `eventTime`).
    EventTime,
}

/// When a change was seen by the agent and when the API says it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Agent wall clock (Unix nanoseconds) when the API update revealing the
    /// change was processed.
    pub observed_ns: i64,
    /// The API's own time for the change, Unix seconds, when it has one.
    pub api_time_s: Option<i64>,
    /// Where `api_time_s` came from.
    pub api_time_source: Option<ApiTimeSource>,
}

impl Stamp {
    /// A stamp with only the agent's observation time.
    pub fn observed(observed_ns: i64) -> Self {
        Self {
            observed_ns,
            api_time_s: None,
            api_time_source: None,
        }
    }

    /// A stamp with an API time when `api_time_s` is known.
    pub fn with_api(observed_ns: i64, api_time_s: Option<i64>, source: ApiTimeSource) -> Self {
        Self {
            observed_ns,
            api_time_s,
            api_time_source: api_time_s.map(|_| source),
        }
    }
}

/// The current wall-clock time in Unix nanoseconds.
pub fn wall_clock_ns() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

/// An API `Time` as Unix seconds (the API has no finer precision).
#[cfg(feature = "k8s")]
pub fn api_seconds(time: &Time) -> i64 {
    time.0.as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_source_only_with_api_time() {
        let s = Stamp::with_api(5, None, ApiTimeSource::StartedAt);
        assert_eq!(s.api_time_source, None);
        let s = Stamp::with_api(5, Some(7), ApiTimeSource::StartedAt);
        assert_eq!(s.api_time_source, Some(ApiTimeSource::StartedAt));
        assert_eq!(Stamp::observed(3).api_time_s, None);
    }

    #[test]
    fn wall_clock_is_after_2020() {
        assert!(wall_clock_ns() > 1_577_836_800_000_000_000);
    }

    #[test]
    #[cfg(feature = "k8s")]
    fn api_time_converts_to_seconds() {
        let t: Time = serde_json::from_str("\"2026-11-21T23:57:04Z\"").unwrap();
        assert_eq!(api_seconds(&t), 1_795_305_424);
    }
}
