//! The join between kernel-side ids and pods: (pod uid from the cgroup path,
//! container id from the cgroup path) → namespace, pod, container, kind,
//! role, mesh mode.
//!
//! Three outcomes, so the caller can decide to hold an event and retry:
//!
//! * [`Resolution::Container`]: the id is a run the API reported;
//! * [`Resolution::UnlistedContainer`]: the pod is known but the id is not
//!   (yet) in its statuses. Either the kubelet has not reported the
//!   container yet, or it is the pod sandbox (pause) container, whose id the
//!   API never shows. When every container of the pod already has a
//!   reported id, the second is all that is left: `likely_sandbox` says so;
//! * [`Resolution::PodUnknown`]: the watch has not delivered the pod yet.

use std::sync::Arc;

use crate::pods::classify::{ContainerKind, Section, SidecarRole};
use crate::pods::entry::{PodEntry, PodIdentity};
use crate::pods::ids::{ContainerId, IdKey};
use crate::pods::mesh::MeshMode;
use crate::pods::store::PodStore;

/// A container attributed to its pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedContainer {
    /// The pod.
    pub pod: Arc<PodIdentity>,
    /// Container name.
    pub container: String,
    /// Where it is declared.
    pub section: Section,
    /// Its lifecycle kind.
    pub kind: ContainerKind,
    /// Its role.
    pub role: SidecarRole,
    /// The pod's mesh mode.
    pub mesh: MeshMode,
    /// Whether the pod has been deleted (kept for late events).
    pub pod_deleted: bool,
}

/// Result of [`PodStore::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Fully attributed.
    Container(ResolvedContainer),
    /// The pod is known; this container id is not in its statuses.
    UnlistedContainer {
        /// The pod.
        pod: Arc<PodIdentity>,
        /// The pod's mesh mode.
        mesh: MeshMode,
        /// Every container of the pod has a reported id, so this one is
        /// most likely the sandbox (pause) container.
        likely_sandbox: bool,
        /// Whether the pod has been deleted.
        pod_deleted: bool,
    },
    /// No pod with that uid (yet).
    PodUnknown,
}

impl Resolution {
    /// The attributed container, if fully resolved.
    pub fn container(&self) -> Option<&ResolvedContainer> {
        match self {
            Self::Container(c) => Some(c),
            _ => None,
        }
    }
}

/// Pod uids in cgroup paths use `_` where the API uses `-` (systemd driver).
pub fn normalise_pod_uid(uid: &str) -> String {
    uid.trim().replace('_', "-").to_ascii_lowercase()
}

fn resolved(entry: &PodEntry, index: usize) -> Option<ResolvedContainer> {
    let facts = entry.spec.containers.get(index)?;
    Some(ResolvedContainer {
        pod: entry.identity.clone(),
        container: facts.name.to_string(),
        section: facts.section,
        kind: facts.kind,
        role: facts.role,
        mesh: entry.spec.mesh.mode,
        pod_deleted: entry.is_deleted(),
    })
}

impl PodStore {
    /// Resolves a (pod uid, container id) pair from a cgroup path. The
    /// container id may be bare 64 hex digits, carry a runtime scheme, or be
    /// a `<prefix>-<id>.scope` unit name. When the id belongs to a known
    /// run, that run's pod wins even if `pod_uid` disagrees.
    pub fn resolve(&self, pod_uid: &str, container_id: &str) -> Resolution {
        let key = if container_id.contains("://") {
            ContainerId::parse(container_id).map(|id| id.key)
        } else {
            IdKey::from_cgroup_segment(container_id)
        };
        let inner = self.read();
        if let Some(key) = &key
            && let Some((uid, index)) = inner.by_container.get(key)
            && let Some(found) = inner.pods.get(uid).and_then(|r| resolved(r, *index))
        {
            return Resolution::Container(found);
        }
        let uid = normalise_pod_uid(pod_uid);
        match inner.pods.get(uid.as_str()) {
            Some(entry) => Resolution::UnlistedContainer {
                pod: entry.identity.clone(),
                mesh: entry.spec.mesh.mode,
                likely_sandbox: !entry.containers.is_empty()
                    && entry.containers.iter().all(|c| !c.ids.is_empty()),
                pod_deleted: entry.is_deleted(),
            },
            None => Resolution::PodUnknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_style_uids_are_normalised() {
        assert_eq!(
            normalise_pod_uid("5C1E0A2B_1111_4222_8333_444455556666"),
            "5c1e0a2b-1111-4222-8333-444455556666"
        );
    }

    #[test]
    fn empty_store_knows_nothing() {
        let store = PodStore::default();
        assert_eq!(store.resolve("u", &"a".repeat(64)), Resolution::PodUnknown);
        assert!(store.resolve("u", "").container().is_none());
    }
}
