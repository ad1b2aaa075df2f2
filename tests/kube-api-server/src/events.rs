//! Driving and reading events: components' core/v1 Events as their
//! recorders post them, and the stored events in either form, for
//! assertions on what a client (the agent) posted.

use serde_json::{Value, json};

use crate::{
    TestApiServer,
    clock::{now_s, rfc3339},
    driver::{DriverError, new_uid},
    event_forms,
    list::in_namespace,
    resource::Resource,
};

impl TestApiServer {
    /// Stores `event` (core/v1 form) in `namespace`, as a component's event
    /// recorder creates one: a `metadata.name` of `<involved name>.<hex>`
    /// when it has none, a uid, a creation time (now unless given),
    /// `kind`/`apiVersion`. Fields an Event does not have are dropped.
    /// Returns the stored object.
    pub fn record_event(&self, namespace: &str, event: Value) -> Result<Value, DriverError> {
        let Value::Object(mut event) = event else {
            return Err(DriverError::ManifestWithoutName);
        };
        let involved = event
            .get("involvedObject")
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            .ok_or(DriverError::ManifestWithoutName)?
            .to_owned();
        let meta = event
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or(DriverError::ManifestWithoutName)?;
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(name) => name.to_owned(),
            None => {
                let suffix: String = new_uid().chars().filter(|c| *c != '-').take(16).collect();
                format!("{involved}.{suffix}")
            }
        };
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(namespace));
        meta.insert("uid".into(), json!(new_uid()));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(rfc3339(now_s())));
        let key = format!("{namespace}/{name}");
        let change = Resource::Events
            .store(&self.shared)
            .put(&key, event_forms::canonical(&event));
        Ok((*change.object).clone())
    }

    /// The event a kubelet posts when it starts on `node` at `at_s` (Unix
    /// seconds): Normal `Starting`, "Starting kubelet.", on the Node (in
    /// `default`, where node events go).
    pub fn kubelet_started(&self, node: &str, at_s: i64) -> Result<Value, DriverError> {
        let at = rfc3339(at_s);
        self.record_event(
            "default",
            json!({
                "metadata": {"creationTimestamp": at},
                "involvedObject": {"kind": "Node", "name": node, "uid": node},
                "reason": "Starting",
                "message": "Starting kubelet.",
                "source": {"component": "kubelet", "host": node},
                "firstTimestamp": at,
                "lastTimestamp": at,
                "count": 1,
                "type": "Normal",
                "eventTime": null,
                "reportingComponent": "kubelet",
                "reportingInstance": node,
            }),
        )
    }

    fn stored_events(&self, namespace: &str) -> Vec<Value> {
        let store = Resource::Events.store(&self.shared);
        let Ok(snapshot) = store.snapshot_at(store.current_rv()) else {
            return Vec::new();
        };
        snapshot
            .objects
            .iter()
            .filter(|(key, _)| in_namespace(key, Some(namespace)))
            .map(|(_, event)| (**event).clone())
            .collect()
    }

    /// The events of `namespace` in the events.k8s.io/v1 form (`regarding`,
    /// `note`, `series`, …), sorted by name, however they were created.
    pub fn events_v1(&self, namespace: &str) -> Vec<Value> {
        self.stored_events(namespace)
            .iter()
            .map(event_forms::to_v1)
            .collect()
    }

    /// The events of `namespace` in the core/v1 form (`involvedObject`,
    /// `message`, …), sorted by name.
    pub fn events_core(&self, namespace: &str) -> Vec<Value> {
        self.stored_events(namespace)
    }

    /// One event in the events.k8s.io/v1 form.
    pub fn event_v1(&self, namespace: &str, name: &str) -> Option<Value> {
        Resource::Events
            .store(&self.shared)
            .get(&format!("{namespace}/{name}"))
            .map(|event| event_forms::to_v1(&event))
    }
}
