//! Cgroup id -> classified cgroup, kept current from the cgroup tracepoints.
//!
//! The cache starts from a full walk of the hierarchy and then follows
//! `cgroup_mkdir` / `cgroup_rmdir` events. A removed cgroup stays known for a
//! grace period so events that are processed after its removal are still
//! attributed. A lookup that misses triggers a re-walk, at most once per
//! configured interval, which also catches removals whose events were lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::CgroupClass;
use super::cgroup_fs::{Cgroup2Walker, CgroupDir, CgroupError, HierarchyWalker};
use super::parse_cgroup_path;

mod types;
pub use types::{CacheConfig, CacheCounters, CgroupEntry};

/// Eviction order: removed entries (tier 0) before live ones (tier 1), each
/// tier oldest first.
type OrderKey = (u8, u64);
const TIER_REMOVED: u8 = 0;
const TIER_LIVE: u8 = 1;

struct Slot {
    entry: CgroupEntry,
    key: OrderKey,
}

/// Cgroup id -> [`CgroupEntry`] map (see the module docs).
pub struct CgroupCache<W = Cgroup2Walker> {
    config: CacheConfig,
    walker: W,
    slots: HashMap<u64, Slot>,
    order: BTreeMap<OrderKey, u64>,
    next_seq: u64,
    last_walk: Option<Instant>,
    counters: CacheCounters,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl<W: HierarchyWalker> CgroupCache<W> {
    /// An empty cache; call [`populate`](Self::populate) to fill it.
    pub fn new(config: CacheConfig, walker: W) -> Self {
        Self {
            config,
            walker,
            slots: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            last_walk: None,
            counters: CacheCounters::default(),
            clock: Arc::new(Instant::now),
        }
    }

    /// Replaces the source of "now" (tests use it to move time by hand).
    pub fn with_time_source(mut self, now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(now);
        self
    }

    /// Walks the whole hierarchy and records every cgroup; returns how many
    /// cgroups the walk found.
    pub fn populate(&mut self) -> Result<usize, CgroupError> {
        let now = (self.clock)();
        self.walk_and_merge(now)
    }

    /// A cgroup was created (or renamed to `path`).
    pub fn on_mkdir(&mut self, id: u64, path: &str) {
        let now = (self.clock)();
        self.expire_at(now);
        self.upsert(id, path, None);
    }

    /// A cgroup was removed: keep it attributable for `removed_ttl`.
    pub fn on_rmdir(&mut self, id: u64, path: &str) {
        let now = (self.clock)();
        self.expire_at(now);
        // Keep the earliest removal time if a walk already noticed it gone.
        let removed_at = self
            .slots
            .get(&id)
            .and_then(|s| s.entry.removed_at)
            .unwrap_or(now);
        self.upsert(id, path, Some(removed_at));
    }

    /// Finds what cgroup `id` is. On a miss the hierarchy is re-walked, at most
    /// once per `rewalk_interval`; `None` means the id is still unknown.
    pub fn lookup(&mut self, id: u64) -> Option<&CgroupEntry> {
        let now = (self.clock)();
        self.expire_at(now);
        if self.slots.contains_key(&id) {
            self.counters.hits += 1;
        } else {
            self.counters.misses += 1;
            let due = self.last_walk.is_none_or(|last| {
                now.saturating_duration_since(last) >= self.config.rewalk_interval
            });
            if due && self.walk_and_merge(now).is_ok() && self.slots.contains_key(&id) {
                self.counters.resolved_by_rewalk += 1;
            } else {
                self.counters.unattributed += 1;
                tracing::debug!(cgroup_id = id, rewalked = due, "cgroup id not attributed");
            }
        }
        self.slots.get(&id).map(|s| &s.entry)
    }

    /// What the cache holds for `id`, without counting or re-walking.
    pub fn peek(&self, id: u64) -> Option<&CgroupEntry> {
        self.slots.get(&id).map(|s| &s.entry)
    }

    /// Every entry held, live and removed, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &CgroupEntry)> {
        self.slots.iter().map(|(id, slot)| (*id, &slot.entry))
    }

    /// Drops removed entries older than `removed_ttl`; returns how many.
    pub fn expire(&mut self) -> usize {
        let now = (self.clock)();
        self.expire_at(now)
    }

    pub fn counters(&self) -> CacheCounters {
        CacheCounters {
            entries: self.slots.len() as u64,
            ..self.counters
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn expire_at(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some((&key, &id)) = self.order.first_key_value() {
            if key.0 != TIER_REMOVED {
                break;
            }
            let expired = self
                .slots
                .get(&id)
                .and_then(|s| s.entry.removed_at)
                .is_none_or(|at| now.saturating_duration_since(at) >= self.config.removed_ttl);
            if !expired {
                break;
            }
            self.order.remove(&key);
            self.slots.remove(&id);
            dropped += 1;
        }
        self.counters.expired += dropped as u64;
        dropped
    }

    fn walk_and_merge(&mut self, now: Instant) -> Result<usize, CgroupError> {
        self.last_walk = Some(now);
        self.counters.rewalks += 1;
        let dirs = match self.walker.walk() {
            Ok(dirs) => dirs,
            Err(err) => {
                self.counters.walk_failures += 1;
                tracing::warn!(error = %err, "cgroup hierarchy walk failed");
                return Err(err);
            }
        };
        let found = dirs.len();
        self.merge(dirs, now);
        tracing::debug!(
            cgroups = found,
            entries = self.slots.len(),
            "cgroup hierarchy walked"
        );
        Ok(found)
    }

    /// Records a walk: everything found exists; live entries not found were
    /// removed without us seeing the event.
    fn merge(&mut self, dirs: Vec<CgroupDir>, now: Instant) {
        let seen: HashSet<u64> = dirs.iter().map(|d| d.id).collect();
        for dir in dirs {
            self.upsert(dir.id, &dir.path, None);
        }
        let vanished: Vec<(u64, String)> = self
            .slots
            .iter()
            .filter(|(id, s)| s.entry.removed_at.is_none() && !seen.contains(id))
            .map(|(id, s)| (*id, s.entry.path.clone()))
            .collect();
        for (id, path) in vanished {
            tracing::debug!(cgroup_id = id, path = %path, "cgroup gone without an rmdir event");
            self.upsert(id, &path, Some(now));
        }
    }

    /// Inserts or updates `id`, live when `removed_at` is `None`.
    fn upsert(&mut self, id: u64, path: &str, removed_at: Option<Instant>) {
        let Some(slot) = self.slots.get(&id) else {
            self.insert_new(id, path, removed_at);
            return;
        };
        let renamed = slot.entry.path != path;
        let was_removed = slot.entry.removed_at.is_some();
        let mut key = slot.key;
        let class = renamed.then(|| self.classify(id, path));
        if was_removed != removed_at.is_some() {
            self.order.remove(&key);
            key = self.next_key(removed_at);
            self.order.insert(key, id);
        }
        if let Some(slot) = self.slots.get_mut(&id) {
            if let Some(class) = class {
                slot.entry.path = path.to_owned();
                slot.entry.class = class;
            }
            slot.entry.removed_at = removed_at;
            slot.key = key;
        }
    }

    fn insert_new(&mut self, id: u64, path: &str, removed_at: Option<Instant>) {
        while self.slots.len() >= self.config.max_entries.max(1) {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            self.slots.remove(&victim);
            self.counters.evictions += 1;
        }
        let class = self.classify(id, path);
        let key = self.next_key(removed_at);
        self.order.insert(key, id);
        let entry = CgroupEntry {
            path: path.to_owned(),
            class,
            removed_at,
        };
        self.slots.insert(id, Slot { entry, key });
    }

    /// Parses `path`, counting and reporting layouts the parser rejects.
    fn classify(&mut self, id: u64, path: &str) -> CgroupClass {
        let class = parse_cgroup_path(path);
        if let CgroupClass::Unknown { reason } = &class {
            self.counters.unknown_layouts += 1;
            tracing::warn!(
                cgroup_id = id,
                path,
                reason = %reason,
                "unrecognised cgroup layout below a kubepods root"
            );
        }
        class
    }

    fn next_key(&mut self, removed_at: Option<Instant>) -> OrderKey {
        self.next_seq += 1;
        let tier = if removed_at.is_some() {
            TIER_REMOVED
        } else {
            TIER_LIVE
        };
        (tier, self.next_seq)
    }
}

#[cfg(test)]
mod tests;
