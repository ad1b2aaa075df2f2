//! Driving events: components' core/v1 Events as their recorders post
//! them, stored and served by list and watch (`/api/v1/events`, field
//! selectors on `involvedObject.*`, `reason`, `source`, `type`).

use serde_json::{Value, json};

use crate::{
    TestApiServer,
    clock::rfc3339,
    driver::{DriverError, new_uid},
    resource::Resource,
};

impl TestApiServer {
    /// Stores `event` in `namespace`, as a component's event recorder
    /// creates one: a `metadata.name` of `<involved name>.<hex>` when it
    /// has none, a uid, `kind`/`apiVersion`. Returns the stored object.
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
        event.insert("apiVersion".into(), json!("v1"));
        event.insert("kind".into(), json!(Resource::Events.kind()));
        let key = format!("{namespace}/{name}");
        let change = Resource::Events
            .store(&self.shared)
            .put(&key, Value::Object(event));
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
}
