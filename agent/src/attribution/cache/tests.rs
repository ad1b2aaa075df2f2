//! Cache behaviour against a scripted hierarchy and a hand-moved clock.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::attribution::test_support::ManualClock;

const UID_SD: &str = "1c3e5f0a_7b2d_4e8f_9a10_b2c3d4e5f607";

fn container_path(n: u8) -> String {
    let id = format!("{:064x}", n);
    format!("/kubepods.slice/kubepods-pod{UID_SD}.slice/cri-containerd-{id}.scope")
}

fn dir(id: u64, path: &str) -> CgroupDir {
    CgroupDir {
        id,
        path: path.to_owned(),
    }
}

/// A hierarchy the test edits; counts walks and can be made to fail.
#[derive(Clone, Default)]
struct FakeWalker {
    dirs: Arc<Mutex<Vec<CgroupDir>>>,
    walks: Arc<AtomicUsize>,
    fail: Arc<AtomicBool>,
}

impl FakeWalker {
    fn set(&self, dirs: Vec<CgroupDir>) {
        *self.dirs.lock().expect("lock") = dirs;
    }
    fn walks(&self) -> usize {
        self.walks.load(Ordering::SeqCst)
    }
}

impl HierarchyWalker for FakeWalker {
    fn walk(&mut self) -> Result<Vec<CgroupDir>, CgroupError> {
        self.walks.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(CgroupError::WalkFailed {
                path: PathBuf::from("/fake"),
                source: io::Error::other("scripted failure"),
            });
        }
        Ok(self.dirs.lock().expect("lock").clone())
    }
}

fn config() -> CacheConfig {
    CacheConfig {
        removed_ttl: Duration::from_secs(30),
        max_entries: 100,
        rewalk_interval: Duration::from_secs(10),
    }
}

fn cache_with(
    config: CacheConfig,
    walker: &FakeWalker,
    clock: &ManualClock,
) -> CgroupCache<FakeWalker> {
    CgroupCache::new(config, walker.clone()).with_time_source(clock.source())
}

#[test]
fn populate_classifies_every_cgroup() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    walker.set(vec![
        dir(1, "/"),
        dir(2, "/kubepods.slice"),
        dir(3, &container_path(3)),
    ]);
    let mut cache = cache_with(config(), &walker, &clock);
    assert_eq!(cache.populate().expect("populate"), 3);
    assert_eq!(cache.len(), 3);
    assert_eq!(
        cache.peek(1).map(|e| &e.class),
        Some(&CgroupClass::NotKubernetes)
    );
    let entry = cache.lookup(3).expect("attributed");
    assert_eq!(entry.path, container_path(3));
    assert!(entry.class.container().is_some());
    assert_eq!(cache.counters().hits, 1);
    assert_eq!(cache.counters().rewalks, 1);
}

#[test]
fn mkdir_then_lookup_hits_without_walking() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let mut cache = cache_with(config(), &walker, &clock);
    cache.populate().expect("populate");
    cache.on_mkdir(7, &container_path(7));
    assert!(cache.lookup(7).and_then(|e| e.class.container()).is_some());
    assert_eq!(walker.walks(), 1);
    assert_eq!(cache.counters().misses, 0);
}

#[test]
fn rmdir_keeps_entry_until_ttl_then_expires() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let mut cache = cache_with(config(), &walker, &clock);
    cache.on_mkdir(7, &container_path(7));
    let removed_at = clock.now();
    cache.on_rmdir(7, &container_path(7));
    clock.advance(Duration::from_secs(29));
    let entry = cache.lookup(7).expect("still attributed within the TTL");
    assert_eq!(entry.removed_at, Some(removed_at));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.expire(), 1);
    assert!(cache.peek(7).is_none());
    assert_eq!(cache.counters().expired, 1);
}

#[test]
fn late_rmdir_without_mkdir_is_still_attributed() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let mut cache = cache_with(config(), &walker, &clock);
    cache.on_rmdir(9, &container_path(9));
    let entry = cache.peek(9).expect("kept");
    assert!(entry.removed_at.is_some());
    assert!(entry.class.container().is_some());
}

#[test]
fn miss_rewalks_at_most_once_per_interval() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let mut cache = cache_with(config(), &walker, &clock);
    cache.populate().expect("populate");
    // Appears without an event (e.g. created before the probes attached).
    walker.set(vec![dir(5, &container_path(5))]);
    assert!(cache.lookup(5).is_none(), "inside the interval: no re-walk");
    assert_eq!(walker.walks(), 1);
    clock.advance(Duration::from_secs(10));
    assert!(
        cache.lookup(5).is_some(),
        "interval elapsed: re-walk finds it"
    );
    assert_eq!(walker.walks(), 2);
    assert!(cache.lookup(6).is_none());
    assert!(cache.lookup(6).is_none());
    assert_eq!(
        walker.walks(),
        2,
        "second miss right after a walk does not walk"
    );
    let c = cache.counters();
    assert_eq!(
        (c.misses, c.resolved_by_rewalk, c.unattributed, c.rewalks),
        (4, 1, 3, 2)
    );
}

#[test]
fn rewalk_marks_vanished_entries_removed() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    walker.set(vec![dir(1, "/"), dir(4, &container_path(4))]);
    let mut cache = cache_with(config(), &walker, &clock);
    cache.populate().expect("populate");
    walker.set(vec![dir(1, "/")]);
    clock.advance(Duration::from_secs(10));
    let gone_at = clock.now();
    assert!(cache.lookup(99).is_none());
    assert_eq!(cache.peek(4).and_then(|e| e.removed_at), Some(gone_at));
    assert_eq!(cache.peek(1).and_then(|e| e.removed_at), None);
    // A later rmdir event keeps the earlier removal time.
    clock.advance(Duration::from_secs(1));
    cache.on_rmdir(4, &container_path(4));
    assert_eq!(cache.peek(4).and_then(|e| e.removed_at), Some(gone_at));
}

#[test]
fn failed_walk_is_counted_and_rate_limited() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    walker.fail.store(true, Ordering::SeqCst);
    let mut cache = cache_with(config(), &walker, &clock);
    assert!(matches!(
        cache.populate(),
        Err(CgroupError::WalkFailed { .. })
    ));
    assert!(cache.lookup(1).is_none());
    assert_eq!(walker.walks(), 1);
    clock.advance(Duration::from_secs(10));
    assert!(cache.lookup(1).is_none());
    assert_eq!(walker.walks(), 2);
    assert_eq!(cache.counters().walk_failures, 2);
}

#[test]
fn bounded_size_evicts_removed_first_then_oldest_live() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let cfg = CacheConfig {
        max_entries: 3,
        ..config()
    };
    let mut cache = cache_with(cfg, &walker, &clock);
    cache.on_mkdir(1, &container_path(1));
    cache.on_mkdir(2, &container_path(2));
    cache.on_mkdir(3, &container_path(3));
    cache.on_rmdir(2, &container_path(2));
    cache.on_mkdir(4, &container_path(4));
    assert!(cache.peek(2).is_none(), "the removed entry goes first");
    cache.on_mkdir(5, &container_path(5));
    assert!(cache.peek(1).is_none(), "then the oldest live one");
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.counters().evictions, 2);
    assert_eq!(cache.counters().entries, 3);
}

#[test]
fn unknown_layouts_counted_once_per_cgroup() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let odd = "/kubepods.slice/kubepods-guaranteed.slice";
    walker.set(vec![dir(1, "/"), dir(8, odd)]);
    let mut cache = cache_with(config(), &walker, &clock);
    cache.populate().expect("populate");
    cache.on_mkdir(8, odd);
    clock.advance(Duration::from_secs(10));
    cache.populate().expect("populate");
    assert!(cache.peek(8).is_some_and(|e| e.class.is_unknown()));
    assert_eq!(cache.counters().unknown_layouts, 1);
}

#[test]
fn rename_reclassifies() {
    let (walker, clock) = (FakeWalker::default(), ManualClock::new());
    let mut cache = cache_with(config(), &walker, &clock);
    cache.on_mkdir(3, "/system.slice/tmp");
    assert_eq!(
        cache.peek(3).map(|e| &e.class),
        Some(&CgroupClass::NotKubernetes)
    );
    cache.on_mkdir(3, &container_path(3));
    assert!(cache.peek(3).is_some_and(|e| e.class.container().is_some()));
}
