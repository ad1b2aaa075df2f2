//! Configuration, entries and counters of the [`CgroupCache`](super::CgroupCache).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::attribution::CgroupClass;

/// Tuning of a [`CgroupCache`](super::CgroupCache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a removed cgroup stays attributable after its rmdir.
    pub removed_ttl: Duration,
    /// Upper bound on entries; beyond it the oldest removed entries go first,
    /// then the longest-known live ones.
    pub max_entries: usize,
    /// Minimum time between two re-walks triggered by lookup misses.
    pub rewalk_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            removed_ttl: Duration::from_secs(120),
            max_entries: 65_536,
            rewalk_interval: Duration::from_secs(5),
        }
    }
}

/// What the cache knows about one cgroup id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupEntry {
    /// Path relative to the cgroup2 root.
    pub path: String,
    pub class: CgroupClass,
    /// When the cgroup was seen removed; `None` while it exists.
    pub removed_at: Option<Instant>,
}

/// Self-telemetry of a [`CgroupCache`](super::CgroupCache); all counts since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups whose id was not in the cache.
    pub misses: u64,
    /// Misses answered by the re-walk they triggered.
    pub resolved_by_rewalk: u64,
    /// Lookups that returned nothing (the event stays unattributed).
    pub unattributed: u64,
    /// Walks of the hierarchy, the initial one included.
    pub rewalks: u64,
    /// Walks that failed.
    pub walk_failures: u64,
    /// Entries dropped to respect `max_entries`.
    pub evictions: u64,
    /// Removed entries dropped after `removed_ttl`.
    pub expired: u64,
    /// Cgroups below a kubepods root whose layout was not recognised.
    pub unknown_layouts: u64,
    /// Entries currently held.
    pub entries: u64,
}
