//! The resources the server serves: pods (the kubelet's and the agent's
//! subject) and Events (what components report about nodes and pods).
//!
//! Events have one store and two views, as on a real server: the core/v1
//! view (`/api/v1/.../events`, `involvedObject`, `message`, …) and the
//! events.k8s.io/v1 view (`/apis/events.k8s.io/v1/.../events`, `regarding`,
//! `note`, …). Objects are stored in the core form; the events.k8s.io view
//! converts on the way in and out (see `event_forms`).

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::{event_forms, objects::ObjectStore, server::Shared};

/// A served resource, in the API version it is requested through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// core/v1 pods.
    Pods,
    /// core/v1 events.
    Events,
    /// events.k8s.io/v1 events: the same objects as [`Self::Events`].
    EventsV1,
}

impl Resource {
    fn store_of(self, shared: &Shared) -> &Mutex<ObjectStore> {
        match self {
            Self::Pods => &shared.store,
            Self::Events | Self::EventsV1 => &shared.events,
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
            Self::Events | Self::EventsV1 => "Event",
        }
    }

    /// `kind` of a list of them.
    pub fn list_kind(self) -> &'static str {
        match self {
            Self::Pods => "PodList",
            Self::Events | Self::EventsV1 => "EventList",
        }
    }

    /// `apiVersion` of objects and lists in this view.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Pods | Self::Events => "v1",
            Self::EventsV1 => "events.k8s.io/v1",
        }
    }

    /// API group (empty for core).
    pub fn group(self) -> &'static str {
        match self {
            Self::Pods | Self::Events => "",
            Self::EventsV1 => "events.k8s.io",
        }
    }

    /// The resource's plural name in paths.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Pods => "pods",
            Self::Events | Self::EventsV1 => "events",
        }
    }

    /// `events.events.k8s.io`, `pods`: how error messages name the resource.
    pub fn qualified_resource(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// `Event.events.k8s.io`, `Event`: how validation messages name the kind.
    pub fn qualified_kind(self) -> String {
        match self.group() {
            "" => self.kind().to_owned(),
            group => format!("{}.{group}", self.kind()),
        }
    }

    /// A stored object as this view shows it (with `kind`/`apiVersion`).
    pub fn view(self, stored: &Value) -> Cow<'_, Value> {
        match self {
            Self::Pods | Self::Events => Cow::Borrowed(stored),
            Self::EventsV1 => Cow::Owned(event_forms::to_v1(stored)),
        }
    }
}
