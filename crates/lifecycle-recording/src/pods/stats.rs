//! The pod store's counters as the `stats` line of a recording carries them.
//!
//! This is a format type, not the store's live counters: the agent copies
//! its counters into it field by field, so renaming a counter in the agent
//! cannot change the file. Fields missing in older recordings read as 0.

use serde::{Deserialize, Serialize};

/// The pod watch and store at one moment (pod watch on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreStats {
    /// API objects applied (added or modified).
    pub objects_applied: u64,
    /// Pod objects skipped because they did not decode.
    pub malformed_objects: u64,
    /// Errors reported by the watcher (each followed by its own retry).
    pub watch_errors: u64,
    /// Full (re-)lists started.
    pub relists: u64,
    /// Pods found deleted because a re-list no longer had them.
    pub deleted_by_relist: u64,
    /// Deleted pods dropped after their time to live.
    pub deleted_expired: u64,
    /// Deleted pods dropped because too many were kept.
    pub deleted_evicted_over_capacity: u64,
    /// Lists completed (the first one makes the store synced).
    pub lists_completed: u64,
    /// The node's kubelet `Starting` Events seen (kubelet restarts).
    pub kubelet_starts: u64,
    /// Errors reported by the watch of the node's Events.
    pub node_event_watch_errors: u64,
    /// Live pods now.
    pub live_pods: usize,
    /// Deleted pods kept now.
    pub deleted_pods: usize,
}
