//! Decoded kernel records -> attributed, timestamped recording lines.
//!
//! Keeps the cgroup cache current from the cgroup events it sees (so that a
//! cgroup removed before its events are read is still attributed), notices
//! new kubepods roots for the in-kernel filter, and counts everything it
//! handles for the `stats` lines.

use std::collections::BTreeMap;

use agent_common::{EventKind, KIND_SLOTS, MAX_WATCH_ROOTS, WatchRoot};

use crate::{
    attribution::{CgroupCache, CgroupClass, HierarchyWalker, cgroup_level, is_watch_root},
    clock::{BootClock, format_rfc3339_nanos},
    event::{
        Event, FORMAT_VERSION, Record, Stats,
        build::{Attribute, EventBuilder},
    },
    kernel::decode::{DecodeError, ProbeSample, c_str},
};

/// Attribution through the cgroup cache.
pub struct CacheAttribute<W: HierarchyWalker>(pub CgroupCache<W>);

impl<W: HierarchyWalker> Attribute for CacheAttribute<W> {
    fn class_of(&mut self, cgroup_id: u64) -> Option<CgroupClass> {
        self.0.lookup(cgroup_id).map(|entry| entry.class.clone())
    }
}

pub struct Pipeline<W: HierarchyWalker> {
    builder: EventBuilder<CacheAttribute<W>>,
    clock: BootClock,
    events: [u64; KIND_SLOTS as usize],
    decode_errors: BTreeMap<String, u64>,
    unknown_layouts: u64,
    watch_roots: Vec<WatchRoot>,
    watch_roots_changed: bool,
}

impl<W: HierarchyWalker> Pipeline<W> {
    /// `cache` should already be populated by a walk.
    pub fn new(cache: CgroupCache<W>, clock: BootClock) -> Self {
        let mut pipeline = Self {
            builder: EventBuilder::new(CacheAttribute(cache)),
            clock,
            events: [0; KIND_SLOTS as usize],
            decode_errors: BTreeMap::new(),
            unknown_layouts: 0,
            watch_roots: Vec::new(),
            watch_roots_changed: false,
        };
        let roots: Vec<(u64, String)> = pipeline
            .cache()
            .entries()
            .filter(|(_, entry)| entry.removed_at.is_none())
            .map(|(id, entry)| (id, entry.path.clone()))
            .collect();
        for (id, path) in roots {
            pipeline.consider_watch_root(id, &path);
        }
        pipeline
    }

    /// Wall-clock now, by the conversion the records use.
    pub fn now_unix_ns(&self) -> i64 {
        self.clock.now_unix_ns() as i64
    }

    pub fn cache(&self) -> &CgroupCache<W> {
        &self.builder.attribute.0
    }

    /// The kubepods subtrees found so far.
    pub fn watch_roots(&self) -> &[WatchRoot] {
        &self.watch_roots
    }

    /// `Some(roots)` once after they changed: the caller updates the kernel map.
    pub fn take_changed_watch_roots(&mut self) -> Option<Vec<WatchRoot>> {
        std::mem::take(&mut self.watch_roots_changed).then(|| self.watch_roots.clone())
    }

    fn consider_watch_root(&mut self, id: u64, path: &str) {
        if is_watch_root(path).is_none() || self.watch_roots.iter().any(|r| r.id == id) {
            return;
        }
        if self.watch_roots.len() >= MAX_WATCH_ROOTS as usize {
            tracing::warn!(
                path,
                "more kubepods roots than the kernel filter holds; ignoring this one"
            );
            return;
        }
        tracing::info!(path, id, "watching kubepods root");
        self.watch_roots.push(WatchRoot {
            id,
            level: cgroup_level(path),
            _pad: 0,
        });
        self.watch_roots_changed = true;
    }

    /// Counts a record the decoder rejected.
    pub fn decode_error(&mut self, error: &DecodeError) {
        *self
            .decode_errors
            .entry(error.label().to_string())
            .or_default() += 1;
    }

    fn next_record(&mut self, boot_ns: Option<u64>, cpu: Option<u32>, event: Event) -> Record {
        let unix_ns = match boot_ns {
            Some(boot) => self.clock.to_unix_ns(boot),
            None => self.clock.now_unix_ns(),
        };
        Record {
            // Assigned when the record is written (held records go out later).
            seq: 0,
            time: format_rfc3339_nanos(unix_ns),
            time_ns: unix_ns as i64,
            boot_ns,
            cpu,
            event,
        }
    }

    /// Attributes and timestamps one kernel record.
    pub fn handle(&mut self, record: &ProbeSample) -> Record {
        let header = *record.header();
        if let Some(slot) = self.events.get_mut(header.kind as usize) {
            *slot += 1;
        }
        if let ProbeSample::Cgroup(e) = record {
            let complete = (e.path_len as usize) < agent_common::CGROUP_PATH_LEN;
            let path = c_str(&e.path);
            match record.kind() {
                EventKind::CgroupMkdir if complete => {
                    self.builder.attribute.0.on_mkdir(e.cgroup_id, &path);
                    self.consider_watch_root(e.cgroup_id, &path);
                }
                EventKind::CgroupRmdir if complete => {
                    self.builder.attribute.0.on_rmdir(e.cgroup_id, &path)
                }
                _ => {}
            }
        }
        let event = self.builder.build(record);
        if let Event::Cgroup(change) = &event
            && change.class.is_unknown()
        {
            self.unknown_layouts += 1;
        }
        self.next_record(Some(header.boot_ns), Some(header.cpu), event)
    }

    /// A `stats` line with the kernel's drop counters (`DROPS` map contents).
    pub fn stats(&mut self, kernel_drops: &[u64; KIND_SLOTS as usize], last: bool) -> Record {
        let by_kind = |counts: &[u64; KIND_SLOTS as usize]| -> BTreeMap<String, u64> {
            EventKind::ALL
                .iter()
                .map(|k| (k.name().to_string(), counts[*k as usize]))
                .collect()
        };
        let stats = Stats {
            format_version: FORMAT_VERSION,
            last,
            kernel_drops: by_kind(kernel_drops),
            kernel_drops_total: kernel_drops.iter().sum(),
            events: by_kind(&self.events),
            decode_errors: self.decode_errors.clone(),
            unattributed: self.builder.unattributed,
            unknown_layouts: self.unknown_layouts,
            join: None,
            pod_store: None,
            summarized_signals: BTreeMap::new(),
            filtered_signals: BTreeMap::new(),
            filtered_signals_total: 0,
            recorded_signals: None,
        };
        self.next_record(None, None, Event::Stats(stats))
    }

    /// Events handled so far, by kind.
    pub fn event_counts(&self) -> &[u64; KIND_SLOTS as usize] {
        &self.events
    }
}
