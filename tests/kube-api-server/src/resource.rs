//! The resources the server serves: pods (the kubelet's and the agent's
//! subject) and core/v1 events (what components report about nodes and
//! pods, such as the kubelet's "Starting kubelet." on its Node). Each has
//! its own store, list kind and field selector labels.

use std::sync::{Mutex, MutexGuard};

use crate::{objects::ObjectStore, server::Shared};

/// A served resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Pods,
    Events,
}

impl Resource {
    fn store_of(self, shared: &Shared) -> &Mutex<ObjectStore> {
        match self {
            Self::Pods => &shared.store,
            Self::Events => &shared.events,
        }
    }

    /// The resource's objects.
    pub fn store(self, shared: &Shared) -> MutexGuard<'_, ObjectStore> {
        self.store_of(shared)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `kind` of one object.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Pods => "Pod",
            Self::Events => "Event",
        }
    }

    /// `kind` of a list of them.
    pub fn list_kind(self) -> &'static str {
        match self {
            Self::Pods => "PodList",
            Self::Events => "EventList",
        }
    }
}
