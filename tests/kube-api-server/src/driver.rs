//! The test driver: what users, the scheduler and the kubelet would do to
//! pods, as calls on the server. Every call is one write, so it produces
//! exactly one watch event, like one API request would.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::clock::{now_s, rfc3339};
use crate::pod_status::StatusEditor;
use crate::server::TestApiServer;

/// Why a driver call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DriverError {
    /// The manifest is not a JSON object with `metadata.name`.
    #[error("manifest is not a pod object with metadata.name")]
    ManifestWithoutName,
    /// A pod with that namespace/name exists already.
    #[error("pod {0} already exists")]
    PodAlreadyExists(String),
    /// No pod with that namespace/name.
    #[error("pod {0} not found")]
    PodNotFound(String),
    /// The container is in neither `initContainers` nor `containers`.
    #[error("container {container} is not in the spec of pod {pod}")]
    ContainerNotInSpec {
        /// `namespace/name` of the pod.
        pod: String,
        /// The container asked for.
        container: String,
    },
    /// The stored object has no usable `spec` (e.g. an injected raw object).
    #[error("pod {0} has no usable spec")]
    PodWithoutSpec(String),
}

fn key_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// A fresh UUIDv4-shaped uid.
pub(crate) fn new_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = RandomState::new();
    let word = |salt: u64| {
        let mut h = state.build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 + (b >> 62),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// A `managedFields` entry like the ones the API server records per writer.
pub(crate) fn managed_entry(manager: &str, subresource: Option<&str>, at_s: i64) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": "Update",
        "apiVersion": "v1",
        "time": rfc3339(at_s),
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {}},
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
        entry["fieldsV1"] = json!({"f:status": {}});
    }
    entry
}

fn default_container_fields(container: &mut Value) {
    let Some(c) = container.as_object_mut() else {
        return;
    };
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let latest =
        !image.rsplit('/').next().unwrap_or_default().contains(':') || image.ends_with(":latest");
    let pull = if latest { "Always" } else { "IfNotPresent" };
    c.entry("imagePullPolicy").or_insert_with(|| json!(pull));
    c.entry("terminationMessagePath")
        .or_insert_with(|| json!("/dev/termination-log"));
    c.entry("terminationMessagePolicy")
        .or_insert_with(|| json!("File"));
    c.entry("resources").or_insert_with(|| json!({}));
}

/// Applies the defaults the API server adds to a created pod.
fn default_pod(pod: &mut Map<String, Value>) {
    let spec = pod
        .entry("spec")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(spec) = spec else { return };
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("serviceAccountName", json!("default")),
        ("serviceAccount", json!("default")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
        ("priority", json!(0)),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        (
            "tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}
            ]),
        ),
    ] {
        spec.entry(field).or_insert(value);
    }
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(default_container_fields);
        }
    }
}

impl TestApiServer {
    /// Creates a pod from a manifest (as `kubectl create` would), with the
    /// server's defaults, a new uid, `creationTimestamp` now and a pending
    /// status. Returns the stored object.
    pub fn create_pod(&self, manifest: Value) -> Result<Value, DriverError> {
        self.create_pod_at(manifest, now_s())
    }

    /// [`Self::create_pod`] with an explicit creation time (Unix seconds).
    pub fn create_pod_at(&self, manifest: Value, created_s: i64) -> Result<Value, DriverError> {
        let Value::Object(mut pod) = manifest else {
            return Err(DriverError::ManifestWithoutName);
        };
        let meta = pod
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or(DriverError::ManifestWithoutName)?;
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .ok_or(DriverError::ManifestWithoutName)?
            .to_owned();
        let namespace = meta
            .entry("namespace")
            .or_insert_with(|| json!("default"))
            .as_str()
            .unwrap_or("default")
            .to_owned();
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(rfc3339(created_s)));
        meta.insert(
            "managedFields".into(),
            json!([managed_entry("kubectl-create", None, created_s)]),
        );
        pod.insert("apiVersion".into(), json!("v1"));
        pod.insert("kind".into(), json!("Pod"));
        default_pod(&mut pod);
        pod.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": "BestEffort"}),
        );

        let key = key_of(&namespace, &name);
        let mut store = self.shared.store();
        if store.get(&key).is_some() {
            return Err(DriverError::PodAlreadyExists(key));
        }
        Ok((*store.put(&key, Value::Object(pod)).object).clone())
    }

    /// The stored pod, if any.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .store()
            .get(&key_of(namespace, name))
            .map(|o| (*o).clone())
    }

    /// Applies one kubelet status update at `at_s` (Unix seconds): `edit`
    /// changes the status through a [`StatusEditor`]; the result is stored as
    /// one write (one `MODIFIED` event).
    pub fn update_status(
        &self,
        namespace: &str,
        name: &str,
        at_s: i64,
        edit: impl FnOnce(&mut StatusEditor<'_>) -> Result<(), DriverError>,
    ) -> Result<Value, DriverError> {
        self.modify(namespace, name, |pod| {
            let key = key_of(namespace, name);
            let mut editor = StatusEditor::new(pod, key, at_s)?;
            edit(&mut editor)?;
            editor.finish();
            Ok(())
        })
    }

    /// Binds an unscheduled pod to `node` (what the scheduler does).
    pub fn bind_pod(&self, namespace: &str, name: &str, node: &str) -> Result<Value, DriverError> {
        self.modify(namespace, name, |pod| {
            pod.entry("spec")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or_else(|| DriverError::PodWithoutSpec(key_of(namespace, name)))?
                .insert("nodeName".into(), json!(node));
            Ok(())
        })
    }

    /// A graceful delete request at `at_s`: sets `deletionTimestamp` to
    /// `at_s + grace_s` and `deletionGracePeriodSeconds` to `grace_s`. A
    /// second call may only shorten the deadline, like the real server.
    pub fn request_deletion(
        &self,
        namespace: &str,
        name: &str,
        grace_s: i64,
        at_s: i64,
    ) -> Result<Value, DriverError> {
        self.modify(namespace, name, |pod| {
            let meta = pod
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| DriverError::PodNotFound(key_of(namespace, name)))?;
            let current = meta
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if current.is_none_or(|g| grace_s < g) {
                meta.insert("deletionTimestamp".into(), json!(rfc3339(at_s + grace_s)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace_s));
            }
            Ok(())
        })
    }

    /// Removes the pod (the final delete once the kubelet reported it gone).
    /// Returns the last state, as carried by the `DELETED` event.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> Result<Value, DriverError> {
        let key = key_of(namespace, name);
        let mut store = self.shared.store();
        let change = store.remove(&key).ok_or(DriverError::PodNotFound(key))?;
        Ok((*change.object).clone())
    }

    /// Stores `object` exactly as given (only `metadata.resourceVersion` is
    /// stamped), creating or replacing the pod at its namespace/name. Use it
    /// for malformed objects. Returns the resource version of the write.
    pub fn inject_raw(&self, object: Value) -> Result<u64, DriverError> {
        let text = |field: &str| {
            object
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let name = text("name").ok_or(DriverError::ManifestWithoutName)?;
        let namespace = text("namespace").unwrap_or_else(|| "default".to_owned());
        let change = self.shared.store().put(&key_of(&namespace, &name), object);
        Ok(change.rv)
    }

    fn modify(
        &self,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Map<String, Value>) -> Result<(), DriverError>,
    ) -> Result<Value, DriverError> {
        let key = key_of(namespace, name);
        let mut store = self.shared.store();
        let current = store
            .get(&key)
            .ok_or_else(|| DriverError::PodNotFound(key.clone()))?;
        let Value::Object(mut pod) = (*current).clone() else {
            return Err(DriverError::PodWithoutSpec(key));
        };
        edit(&mut pod)?;
        Ok((*store.put(&key, Value::Object(pod)).object).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_uuid_shaped_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        let parts: Vec<_> = a.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn defaults_fill_container_fields() {
        let mut c = json!({"name": "app", "image": "nginx"});
        default_container_fields(&mut c);
        assert_eq!(c["imagePullPolicy"], "Always");
        let mut c = json!({"name": "app", "image": "registry:5000/nginx:1.27"});
        default_container_fields(&mut c);
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    }
}
