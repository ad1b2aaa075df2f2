//! The versioned object store behind the test server.
//!
//! It behaves like the etcd + watch-cache pair of a real API server, reduced
//! to one resource: every write bumps a global resource version, the last
//! `history_limit` changes are remembered (with the object before and after
//! the change), and anything older is "compacted" away. From that history the
//! store can
//!
//! * rebuild the exact set of objects as they were at any retained version
//!   (consistent paged lists with continue tokens), and
//! * replay the changes after a version (watch resumption),
//!
//! and it answers "too old" for versions that fall before the compaction
//! point, which the HTTP layer turns into 410 Gone.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// The kind of change recorded in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The key did not exist before.
    Added,
    /// The key existed and was replaced.
    Modified,
    /// The key was removed.
    Deleted,
}

/// One remembered write.
#[derive(Debug)]
pub struct Change {
    /// Resource version assigned to this write.
    pub rv: u64,
    /// What happened to the key.
    pub kind: ChangeKind,
    /// Storage key, `namespace/name`.
    pub key: String,
    /// The object after the write; for a delete, the last state (carrying the
    /// deletion's resource version, as a real DELETED event does).
    pub object: Arc<Value>,
    /// The object before the write, if there was one.
    pub previous: Option<Arc<Value>>,
}

/// Why a requested resource version cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionProblem {
    /// The version is older than the oldest retained change.
    Compacted {
        /// Oldest version that can still be served.
        oldest: u64,
    },
    /// The version has not been reached yet.
    InFuture {
        /// The store's current version.
        current: u64,
    },
}

/// Objects as they were at one resource version.
pub struct Snapshot {
    /// The version the snapshot represents.
    pub rv: u64,
    /// Objects by storage key, in key order (the order etcd lists them).
    pub objects: BTreeMap<String, Arc<Value>>,
}

/// The store itself. Not thread-safe on its own; the server wraps it in a mutex.
pub struct ObjectStore {
    objects: BTreeMap<String, Arc<Value>>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Every change with `rv <= compacted_rv` is gone from the history.
    compacted_rv: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

/// Resource version the store starts from, so versions look like a live
/// cluster's rather than small integers.
const FIRST_RV: u64 = 1000;

impl ObjectStore {
    /// An empty store keeping at most `history_limit` changes.
    pub fn new(history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(4096);
        Self {
            objects: BTreeMap::new(),
            rv: FIRST_RV,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: FIRST_RV,
            changes,
        }
    }

    /// The latest resource version.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Oldest version that lists and watches can still start from.
    pub fn oldest_servable_rv(&self) -> u64 {
        self.compacted_rv
    }

    /// A receiver of every future change. Subscribe while holding the store
    /// lock so no change falls between a replay and the live stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// The current object under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.objects.get(key).cloned()
    }

    /// Number of objects stored now.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Writes `object` under `key`, stamping `metadata.resourceVersion`.
    pub fn put(&mut self, key: &str, mut object: Value) -> Arc<Change> {
        self.rv += 1;
        set_resource_version(&mut object, self.rv);
        let object = Arc::new(object);
        let previous = self.objects.insert(key.to_owned(), object.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(Change {
            rv: self.rv,
            kind,
            key: key.to_owned(),
            object,
            previous,
        })
    }

    /// Removes `key`; the returned change carries the final object.
    pub fn remove(&mut self, key: &str) -> Option<Arc<Change>> {
        let previous = self.objects.remove(key)?;
        self.rv += 1;
        let mut last = (*previous).clone();
        set_resource_version(&mut last, self.rv);
        Some(self.record(Change {
            rv: self.rv,
            kind: ChangeKind::Deleted,
            key: key.to_owned(),
            object: Arc::new(last),
            previous: Some(previous),
        }))
    }

    /// Forgets the whole history: any version before now becomes too old.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    /// Checks that `rv` can be served.
    pub fn check_version(&self, rv: u64) -> Result<(), VersionProblem> {
        if rv < self.compacted_rv {
            Err(VersionProblem::Compacted {
                oldest: self.compacted_rv,
            })
        } else if rv > self.rv {
            Err(VersionProblem::InFuture { current: self.rv })
        } else {
            Ok(())
        }
    }

    /// The objects as they were at `rv`, rebuilt by undoing later changes.
    pub fn snapshot_at(&self, rv: u64) -> Result<Snapshot, VersionProblem> {
        self.check_version(rv)?;
        let mut objects = self.objects.clone();
        for change in self.history.iter().rev().take_while(|c| c.rv > rv) {
            match &change.previous {
                Some(before) => {
                    objects.insert(change.key.clone(), before.clone());
                }
                None => {
                    objects.remove(&change.key);
                }
            }
        }
        Ok(Snapshot { rv, objects })
    }

    /// The changes after `rv`, oldest first.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, VersionProblem> {
        self.check_version(rv)?;
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    fn record(&mut self, change: Change) -> Arc<Change> {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(evicted) = self.history.pop_front() {
                self.compacted_rv = evicted.rv;
            }
        }
        // No subscribers is fine: nobody is watching.
        let _ = self.changes.send(change.clone());
        change
    }
}

fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(obj) = object.as_object_mut() {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, marker: u32) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "marker": marker})
    }

    #[test]
    fn snapshot_undoes_later_writes() {
        let mut store = ObjectStore::new(100);
        store.put("ns/a", pod("a", 1));
        let at = store.current_rv();
        store.put("ns/a", pod("a", 2));
        store.put("ns/b", pod("b", 1));
        store.remove("ns/a");

        let snap = store.snapshot_at(at).unwrap();
        assert_eq!(snap.objects.len(), 1);
        assert_eq!(snap.objects["ns/a"]["marker"], 1);
        let now = store.snapshot_at(store.current_rv()).unwrap();
        assert_eq!(now.objects.keys().collect::<Vec<_>>(), vec!["ns/b"]);
    }

    #[test]
    fn versions_before_compaction_are_rejected() {
        let mut store = ObjectStore::new(2);
        let start = store.current_rv();
        for i in 0..3 {
            store.put("ns/a", pod("a", i));
        }
        assert!(matches!(
            store.changes_since(start),
            Err(VersionProblem::Compacted { .. })
        ));
        assert_eq!(store.changes_since(start + 1).unwrap().len(), 2);
        assert!(matches!(
            store.check_version(store.current_rv() + 5),
            Err(VersionProblem::InFuture { .. })
        ));
    }

    #[test]
    fn delete_carries_new_resource_version() {
        let mut store = ObjectStore::new(10);
        store.put("ns/a", pod("a", 1));
        let change = store.remove("ns/a").unwrap();
        assert_eq!(change.kind, ChangeKind::Deleted);
        assert_eq!(
            change.object["metadata"]["resourceVersion"],
            change.rv.to_string()
        );
        assert!(store.remove("ns/a").is_none());
    }
}
