//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/events.k8s.io` and `/apis/events.k8s.io/v1`, in the legacy
//! (unaggregated) form. Clients that ask for aggregated discovery first, as
//! kubectl does, fall back to these because the answer is plain JSON.

use serde_json::{Value, json};

use crate::server::Shared;

/// Verbs served on events, in both API versions.
const EVENT_VERBS: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];

const EVENTS_GROUP: &str = "events.k8s.io";
const EVENTS_GROUP_VERSION: &str = "events.k8s.io/v1";

pub fn version_info(shared: &Shared) -> Value {
    let git_version = &shared.options.git_version;
    let minor = git_version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .unwrap_or("33");
    json!({
        "major": "1",
        "minor": minor,
        "emulationMajor": "1",
        "emulationMinor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(shared: &Shared) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}
        ],
    })
}

fn events_resource() -> Value {
    json!({
        "name": "events",
        "singularName": "event",
        "namespaced": true,
        "kind": "Event",
        "verbs": EVENT_VERBS,
        "shortNames": ["ev"],
    })
}

pub fn core_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get", "list", "watch"],
                "shortNames": ["po"],
                "categories": ["all"],
            },
            events_resource(),
            {
                "name": "pods/status",
                "singularName": "",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get"],
            },
        ],
    })
}

/// The events.k8s.io `APIGroup` entry (also the body of `/apis/events.k8s.io`).
pub fn events_group() -> Value {
    let version = json!({"groupVersion": EVENTS_GROUP_VERSION, "version": "v1"});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": EVENTS_GROUP,
        "versions": [version],
        "preferredVersion": version,
    })
}

pub fn group_list() -> Value {
    let mut group = events_group();
    if let Some(map) = group.as_object_mut() {
        // Entries of a list carry no type of their own.
        map.remove("kind");
        map.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
}

pub fn events_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": EVENTS_GROUP_VERSION,
        "resources": [events_resource()],
    })
}
