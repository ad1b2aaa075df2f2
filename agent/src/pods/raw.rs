//! A pod as received from the API, decoded tolerantly.
//!
//! Decision: the watcher lists and watches [`RawPod`], not
//! `k8s_openapi::api::core::v1::Pod`. With the typed pod, one object the
//! typed model rejects (a container without a name, a string where a number
//! belongs) makes the whole list page fail to decode, so the watcher never
//! finishes its initial list and retries forever. `RawPod` accepts any JSON
//! object: it reads `metadata` leniently (falling back to the identifying
//! strings when the full metadata does not decode), keeps `spec` and `status`
//! as JSON, and drops `managedFields` straight away. The strict decode into
//! typed spec and status happens per object in [`RawPod::decode`], where a
//! failure affects only that pod: the watch loop counts it, logs it and moves
//! on, keeping whatever it knew about the pod before.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::pods::time::api_seconds;

/// A pod object whose spec and status have not been decoded yet.
#[derive(Clone, Debug, Default)]
pub struct RawPod {
    meta: ObjectMeta,
    spec: Option<Value>,
    status: Option<Value>,
    status_written_s: Option<i64>,
    meta_problem: Option<String>,
}

/// A pod whose spec and status decoded into the typed model.
#[derive(Clone, Debug)]
pub struct DecodedPod {
    /// Metadata without `managedFields`.
    pub meta: ObjectMeta,
    /// The pod spec.
    pub spec: PodSpec,
    /// The pod status (empty when the object had none yet).
    pub status: PodStatus,
    /// Time of the kubelet's (or any status writer's) last status update,
    /// from `managedFields`, Unix seconds.
    pub status_written_s: Option<i64>,
}

/// Why a pod object could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MalformedPod {
    /// `metadata` exists but does not decode (e.g. labels that are not strings).
    #[error("metadata does not decode: {0}")]
    MetadataUnreadable(String),
    /// No `metadata.uid`: the pod cannot be identified.
    #[error("metadata.uid is missing")]
    UidMissing,
    /// No `spec`.
    #[error("spec is missing")]
    SpecMissing,
    /// `spec` does not decode into a pod spec.
    #[error("spec does not decode: {0}")]
    SpecUnreadable(#[source] serde_json::Error),
    /// A container in the spec has no name (the typed model would default it
    /// to an empty string, which cannot be joined to its status).
    #[error("a container in the spec has no name")]
    ContainerWithoutName,
    /// Two containers share a name.
    #[error("container name {0:?} appears twice in the spec")]
    DuplicateContainerName(String),
    /// `status` does not decode into a pod status.
    #[error("status does not decode: {0}")]
    StatusUnreadable(#[source] serde_json::Error),
}

impl Resource for RawPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Latest `time` among `managedFields` entries that wrote the status.
fn status_write_time(managed: &Value) -> Option<i64> {
    managed
        .as_array()?
        .iter()
        .filter(|e| e.get("subresource").and_then(Value::as_str) == Some("status"))
        .filter_map(|e| serde_json::from_value(e.get("time")?.clone()).ok())
        .map(|t| api_seconds(&t))
        .max()
}

/// Reads metadata, falling back to its identifying strings.
fn lenient_meta(value: Value) -> (ObjectMeta, Option<String>) {
    match serde_json::from_value::<ObjectMeta>(value.clone()) {
        Ok(meta) => (meta, None),
        Err(error) => {
            let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
            let meta = ObjectMeta {
                name: text("name"),
                namespace: text("namespace"),
                uid: text("uid"),
                resource_version: text("resourceVersion"),
                ..ObjectMeta::default()
            };
            (meta, Some(error.to_string()))
        }
    }
}

impl<'de> Deserialize<'de> for RawPod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut object = Map::<String, Value>::deserialize(deserializer)?;
        Ok(Self::from_map(&mut object))
    }
}

impl RawPod {
    /// Builds a raw pod from a decoded JSON value (any object is accepted;
    /// anything else yields an empty pod that fails [`Self::decode`]).
    pub fn from_value(value: Value) -> Self {
        match value {
            Value::Object(mut object) => Self::from_map(&mut object),
            _ => Self {
                meta_problem: Some("object is not a JSON object".to_owned()),
                ..Self::default()
            },
        }
    }

    fn from_map(object: &mut Map<String, Value>) -> Self {
        let mut meta_value = object.remove("metadata").unwrap_or(Value::Null);
        let managed = meta_value
            .as_object_mut()
            .and_then(|m| m.remove("managedFields"));
        let status_written_s = managed.as_ref().and_then(status_write_time);
        let (meta, meta_problem) = if meta_value.is_null() {
            (ObjectMeta::default(), None)
        } else {
            lenient_meta(meta_value)
        };
        Self {
            meta,
            spec: object.remove("spec"),
            status: object.remove("status"),
            status_written_s,
            meta_problem,
        }
    }

    /// `namespace/name` for logs (empty parts when unknown).
    pub fn display_name(&self) -> String {
        format!(
            "{}/{}",
            self.meta.namespace.as_deref().unwrap_or_default(),
            self.meta.name.as_deref().unwrap_or_default()
        )
    }

    /// The uid, when the object carries one.
    pub fn uid(&self) -> Option<&str> {
        self.meta.uid.as_deref()
    }

    /// Decodes spec and status strictly.
    pub fn decode(self) -> Result<DecodedPod, MalformedPod> {
        if let Some(problem) = self.meta_problem {
            return Err(MalformedPod::MetadataUnreadable(problem));
        }
        if self.meta.uid.as_deref().is_none_or(str::is_empty) {
            return Err(MalformedPod::UidMissing);
        }
        let spec = self.spec.ok_or(MalformedPod::SpecMissing)?;
        let spec: PodSpec = serde_json::from_value(spec).map_err(MalformedPod::SpecUnreadable)?;
        check_container_names(&spec)?;
        let status = match self.status {
            None | Some(Value::Null) => PodStatus::default(),
            Some(status) => {
                serde_json::from_value(status).map_err(MalformedPod::StatusUnreadable)?
            }
        };
        Ok(DecodedPod {
            meta: self.meta,
            spec,
            status,
            status_written_s: self.status_written_s,
        })
    }
}

/// Container names must be present and unique: they are the join key
/// between spec and status.
fn check_container_names(spec: &PodSpec) -> Result<(), MalformedPod> {
    let mut seen = std::collections::HashSet::new();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for container in all {
        if container.name.is_empty() {
            return Err(MalformedPod::ContainerWithoutName);
        }
        if !seen.insert(container.name.as_str()) {
            return Err(MalformedPod::DuplicateContainerName(container.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                "managedFields": [
                    {"manager": "kubectl", "operation": "Update", "time": "2026-01-01T00:00:00Z"},
                    {"manager": "kubelet", "operation": "Update", "subresource": "status",
                     "time": "2026-01-01T00:00:09Z"}
                ]
            },
            "spec": {"containers": containers},
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn decodes_and_drops_managed_fields() {
        let raw: RawPod = serde_json::from_value(pod(json!([{"name": "a"}]))).unwrap();
        assert_eq!(raw.uid(), Some("u1"));
        assert_eq!(raw.display_name(), "ns/p");
        let decoded = raw.decode().unwrap();
        assert!(decoded.meta.managed_fields.is_none());
        assert_eq!(decoded.meta.resource_version.as_deref(), Some("7"));
        assert_eq!(decoded.status_written_s, Some(1_767_225_609));
        assert_eq!(decoded.status.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn nameless_container_fails_only_at_decode() {
        let raw: RawPod = serde_json::from_value(pod(json!([{"image": "x"}]))).unwrap();
        assert_eq!(raw.meta().resource_version.as_deref(), Some("7"));
        assert!(matches!(
            raw.decode(),
            Err(MalformedPod::ContainerWithoutName)
        ));
        let twice = RawPod::from_value(pod(json!([{"name": "a"}, {"name": "a"}])));
        assert!(matches!(twice.decode(), Err(MalformedPod::DuplicateContainerName(n)) if n == "a"));
        let wrong_type = RawPod::from_value(pod(json!([{"name": "a", "ports": "80"}])));
        assert!(matches!(
            wrong_type.decode(),
            Err(MalformedPod::SpecUnreadable(_))
        ));
    }

    #[test]
    fn bad_metadata_keeps_identity() {
        let mut value = pod(json!([{"name": "a"}]));
        value["metadata"]["labels"] = json!({"app": 5});
        let raw: RawPod = serde_json::from_value(value).unwrap();
        assert_eq!(raw.uid(), Some("u1"));
        assert_eq!(raw.meta().resource_version.as_deref(), Some("7"));
        assert!(matches!(
            raw.decode(),
            Err(MalformedPod::MetadataUnreadable(_))
        ));
    }

    #[test]
    fn wrong_typed_status_is_malformed() {
        let mut value = pod(json!([{"name": "a"}]));
        value["status"] = json!({"containerStatuses": [{"name": "a", "restartCount": "three"}]});
        let raw = RawPod::from_value(value);
        assert!(matches!(
            raw.decode(),
            Err(MalformedPod::StatusUnreadable(_))
        ));
        assert!(matches!(
            RawPod::from_value(json!(3)).decode(),
            Err(MalformedPod::MetadataUnreadable(_))
        ));
    }
}
