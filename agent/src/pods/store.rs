//! The pod store: every pod of this node, live or recently deleted, indexed
//! by uid and by container id.
//!
//! Deleted pods stay resolvable for a while (late kernel events of a dying
//! pod still need attribution); they leave after [`StoreConfig::deleted_ttl`]
//! or, oldest first, when more than [`StoreConfig::max_deleted`] are kept.
//! Both kinds of eviction are counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::pods::StoreStats;
use crate::pods::classify::ClassificationRules;
use crate::pods::entry::{HistoryLimits, PodEntry, PodIdentity};
use crate::pods::event::{DeletedReason, PodEvent};
use crate::pods::ids::IdKey;
use crate::pods::raw::DecodedPod;

/// Store tunables.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// How long a deleted pod stays resolvable.
    pub deleted_ttl: Duration,
    /// Most deleted pods kept at once.
    pub max_deleted: usize,
    /// History caps per pod.
    pub history: HistoryLimits,
    /// Sidecar / mesh recognition rules.
    pub rules: ClassificationRules,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            deleted_ttl: Duration::from_secs(600),
            max_deleted: 1024,
            history: HistoryLimits {
                per_container: 64,
                per_pod: 64,
            },
            rules: ClassificationRules::default(),
        }
    }
}

/// Counters kept by the store and the watch loop feeding it.
#[derive(Debug, Default)]
pub struct StoreCounters {
    /// API objects applied (added or modified).
    pub objects_applied: AtomicU64,
    /// Pod objects skipped because they did not decode.
    pub malformed_objects: AtomicU64,
    /// Errors reported by the watcher (each followed by its own retry).
    pub watch_errors: AtomicU64,
    /// Full (re-)lists started.
    pub relists: AtomicU64,
    /// Pods found deleted because a re-list no longer had them.
    pub deleted_by_relist: AtomicU64,
    /// Deleted pods dropped after their TTL.
    pub deleted_expired: AtomicU64,
    /// Deleted pods dropped because too many were kept.
    pub deleted_evicted_over_capacity: AtomicU64,
    /// Lists completed (the first one makes the store synced).
    pub lists_completed: AtomicU64,
    /// The node's kubelet `Starting` Events seen (kubelet restarts).
    pub kubelet_starts: AtomicU64,
    /// Errors reported by the watch of the node's Events.
    pub node_event_watch_errors: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) pods: HashMap<Arc<str>, PodEntry>,
    /// Container id → (pod uid, index into the pod's containers).
    pub(crate) by_container: HashMap<IdKey, (Arc<str>, usize)>,
    deleted_order: VecDeque<(Instant, Arc<str>)>,
}

/// Shared handle to the pod store (cheap to clone).
#[derive(Clone)]
pub struct PodStore {
    inner: Arc<RwLock<Inner>>,
    config: Arc<StoreConfig>,
    counters: Arc<StoreCounters>,
}

impl Default for PodStore {
    fn default() -> Self {
        Self::new(StoreConfig::default())
    }
}

impl PodStore {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner {
                pods: HashMap::new(),
                by_container: HashMap::new(),
                deleted_order: VecDeque::new(),
            })),
            config: Arc::new(config),
            counters: Arc::new(StoreCounters::default()),
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters, for the watch loop and for metrics.
    pub fn counters(&self) -> &StoreCounters {
        &self.counters
    }

    /// Adds or updates a pod; returns the events describing what changed.
    /// Updates for a pod already marked deleted are ignored.
    pub fn apply(&self, pod: &DecodedPod, observed_ns: i64) -> Vec<PodEvent> {
        self.counters
            .objects_applied
            .fetch_add(1, Ordering::Relaxed);
        let uid: Arc<str> = Arc::from(pod.meta.uid.as_deref().unwrap_or_default());
        let mut new_ids = Vec::new();
        let mut inner = self.write();
        let events = match inner.pods.get_mut(&uid) {
            Some(entry) if entry.is_deleted() => {
                tracing::debug!(pod_uid = %uid, "update for a deleted pod ignored");
                Vec::new()
            }
            Some(entry) => entry.update(
                pod,
                &self.config.rules,
                self.config.history,
                observed_ns,
                &mut new_ids,
            ),
            None => {
                let (entry, events) = PodEntry::first_seen(
                    pod,
                    &self.config.rules,
                    self.config.history,
                    observed_ns,
                    &mut new_ids,
                );
                inner.pods.insert(uid.clone(), entry);
                events
            }
        };
        for (key, index) in new_ids {
            inner.by_container.insert(key, (uid.clone(), index));
        }
        events
    }

    /// Marks a pod deleted, first folding in its last state when given.
    /// A pod never seen before is recorded from `last` and then deleted.
    pub fn apply_deleted(
        &self,
        uid: &str,
        last: Option<&DecodedPod>,
        reason: DeletedReason,
        observed_ns: i64,
        now: Instant,
    ) -> Vec<PodEvent> {
        let mut events = match last {
            Some(pod) if pod.meta.uid.as_deref() == Some(uid) => self.apply(pod, observed_ns),
            _ => Vec::new(),
        };
        let mut inner = self.write();
        let Some(key) = inner.pods.get_key_value(uid).map(|(k, _)| k.clone()) else {
            return events;
        };
        let Some(entry) = inner.pods.get_mut(&key) else {
            return events;
        };
        if entry.is_deleted() {
            return events;
        }
        events.push(entry.mark_deleted(reason, observed_ns));
        inner.deleted_order.push_back((now, key));
        self.enforce_capacity(&mut inner);
        events
    }

    /// Ends a re-list: live pods not in `seen` (uids) were deleted meanwhile.
    pub fn finish_relist(
        &self,
        seen: &HashSet<String>,
        observed_ns: i64,
        now: Instant,
    ) -> Vec<PodEvent> {
        let missing: Vec<String> = self
            .read()
            .pods
            .iter()
            .filter(|(uid, entry)| !entry.is_deleted() && !seen.contains(&***uid))
            .map(|(uid, _)| uid.to_string())
            .collect();
        self.counters
            .deleted_by_relist
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        missing
            .iter()
            .flat_map(|uid| {
                self.apply_deleted(
                    uid,
                    None,
                    DeletedReason::MissingFromRelist,
                    observed_ns,
                    now,
                )
            })
            .collect()
    }

    /// Drops deleted pods older than the TTL; returns how many went.
    pub fn evict_expired(&self, now: Instant) -> usize {
        let mut inner = self.write();
        let mut evicted = 0;
        while let Some((at, _)) = inner.deleted_order.front() {
            if now.saturating_duration_since(*at) < self.config.deleted_ttl {
                break;
            }
            if let Some((_, uid)) = inner.deleted_order.pop_front() {
                remove_pod(&mut inner, &uid);
                evicted += 1;
            }
        }
        self.counters
            .deleted_expired
            .fetch_add(evicted as u64, Ordering::Relaxed);
        evicted
    }

    fn enforce_capacity(&self, inner: &mut Inner) {
        while inner.deleted_order.len() > self.config.max_deleted {
            if let Some((_, uid)) = inner.deleted_order.pop_front() {
                remove_pod(inner, &uid);
                self.counters
                    .deleted_evicted_over_capacity
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A copy of the pod with `uid`.
    pub fn get(&self, uid: &str) -> Option<PodEntry> {
        self.read().pods.get(uid).cloned()
    }

    /// A copy of the pod called `namespace/name`, preferring a live one.
    pub fn find(&self, namespace: &str, name: &str) -> Option<PodEntry> {
        let inner = self.read();
        let mut matches = inner
            .pods
            .values()
            .filter(|r| r.identity.namespace == namespace && r.identity.name == name);
        let first = matches.clone().find(|r| !r.is_deleted());
        first.or_else(|| matches.next()).cloned()
    }

    /// Identities of the live pods.
    pub fn live_identities(&self) -> Vec<Arc<PodIdentity>> {
        self.read()
            .pods
            .values()
            .filter(|r| !r.is_deleted())
            .map(|r| r.identity.clone())
            .collect()
    }

    /// Uids of live pods.
    pub fn live_uids(&self) -> Vec<String> {
        self.read()
            .pods
            .iter()
            .filter(|(_, r)| !r.is_deleted())
            .map(|(uid, _)| uid.to_string())
            .collect()
    }

    /// Whether a full list of the node's pods has completed: until then
    /// the store does not know every pod.
    pub fn synced(&self) -> bool {
        self.counters.lists_completed.load(Ordering::Relaxed) > 0
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> StoreStats {
        let (live_pods, deleted_pods) = {
            let inner = self.read();
            (
                inner.pods.len() - inner.deleted_order.len(),
                inner.deleted_order.len(),
            )
        };
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            objects_applied: load(&c.objects_applied),
            malformed_objects: load(&c.malformed_objects),
            watch_errors: load(&c.watch_errors),
            relists: load(&c.relists),
            deleted_by_relist: load(&c.deleted_by_relist),
            deleted_expired: load(&c.deleted_expired),
            deleted_evicted_over_capacity: load(&c.deleted_evicted_over_capacity),
            lists_completed: load(&c.lists_completed),
            kubelet_starts: load(&c.kubelet_starts),
            node_event_watch_errors: load(&c.node_event_watch_errors),
            live_pods,
            deleted_pods,
        }
    }
}

fn remove_pod(inner: &mut Inner, uid: &str) {
    if let Some(entry) = inner.pods.remove(uid) {
        for id in entry.containers.iter().flat_map(|c| &c.ids) {
            if inner
                .by_container
                .get(&id.key)
                .is_some_and(|(owner, _)| &**owner == uid)
            {
                inner.by_container.remove(&id.key);
            }
        }
    }
}
