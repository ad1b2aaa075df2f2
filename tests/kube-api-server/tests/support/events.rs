//! Events shaped like the ones the agent posts through events.k8s.io/v1.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use kube_api_server::clock;
use serde_json::{Value, json};

/// The namespace the event tests use.
pub const NS: &str = "shop";

/// `secs` as a MicroTime (six fractional digits).
pub fn micro(secs: i64) -> String {
    clock::rfc3339(secs).replace('Z', ".000000Z")
}

/// The path of the namespaced events.k8s.io/v1 collection.
pub fn v1_events(namespace: &str) -> String {
    format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events")
}

/// The path of the namespaced core/v1 collection.
pub fn core_events(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/events")
}

/// A Warning the agent would post about container `istio-proxy` of `pod`
/// (whose uid is `pod_uid`), first seen at `at_s`.
pub fn agent_event(name: &str, pod: &str, pod_uid: &str, at_s: i64) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": NS},
        "eventTime": micro(at_s),
        "reportingController": "lifecycle-agent",
        "reportingInstance": "node-a",
        "action": "Terminating",
        "reason": "SidecarStoppedEarly",
        "type": "Warning",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": NS, "name": pod,
                      "uid": pod_uid, "fieldPath": "spec.containers{istio-proxy}"},
        "note": "istio-proxy exited 1.2 s before app",
    })
}

/// The merge patch the agent sends when the event repeats.
pub fn series_patch(count: u32, last_s: i64) -> Value {
    json!({"series": {"count": count, "lastObservedTime": micro(last_s)}})
}

/// `base` with `changes` merged in (RFC 7386: `null` removes a field).
pub fn with(base: Value, changes: Value) -> Value {
    match (base, changes) {
        (Value::Object(mut base), Value::Object(changes)) => {
            for (key, change) in changes {
                if change.is_null() {
                    base.remove(&key);
                } else {
                    let current = base.remove(&key).unwrap_or(Value::Null);
                    base.insert(key, with(current, change));
                }
            }
            Value::Object(base)
        }
        (_, change) => change,
    }
}
