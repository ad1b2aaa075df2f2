//! Server-side tables for events, the way `kubectl get` asks for them.
//!
//! kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io, …,
//! application/json` and prints whatever `meta.k8s.io/v1` `Table` comes
//! back. For events the real server fills it from its internal printer
//! (k8s `pkg/printers/internalversion/printers.go`, `printEvent`), always
//! with the wide columns; kubectl hides those of priority 1 unless `-o wide`.
//! Ages are rendered like the API machinery's `HumanDuration`. Each row
//! carries the object as `PartialObjectMetadata` (the default
//! `includeObject=Metadata`), whole (`Object`) or not at all (`None`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::parse_rfc3339;
use crate::resource::Resource;

/// What a row's `object` holds (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    /// From the query; anything unknown means the default.
    pub fn from_query(query: &BTreeMap<String, String>) -> Self {
        match query.get("includeObject").map(String::as_str) {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an `Accept` header prefers a `Table` over a plain object: the
/// first clause the server can serve decides.
pub fn wants_table(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
                .map(|(_, v)| v.trim())
        };
        let json = matches!(media, "application/json" | "application/*" | "*/*");
        match param("as") {
            Some("Table")
                if json
                    && param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1" | "v1beta1")) =>
            {
                return true;
            }
            // Another transformation, or a table of an unknown version.
            Some(_) => {}
            None if json => return false,
            // Protobuf, YAML, CBOR: not served; try the next clause.
            None => {}
        }
    }
    false
}

/// The event columns: name, priority, format, description.
const EVENT_COLUMNS: [(&str, u8, &str, &str); 10] = [
    (
        "Last Seen",
        0,
        "",
        "When the event (or its series) was last observed.",
    ),
    ("Type", 0, "", "Normal or Warning."),
    (
        "Reason",
        0,
        "",
        "Short, machine-readable cause of the event.",
    ),
    (
        "Object",
        0,
        "",
        "The object the event is about, as kind/name.",
    ),
    (
        "Subobject",
        1,
        "",
        "Field path within the object, e.g. one container.",
    ),
    (
        "Source",
        1,
        "",
        "Component (and host) that reported the event.",
    ),
    ("Message", 0, "", "Human-readable description."),
    ("First Seen", 1, "", "When the event was first observed."),
    ("Count", 1, "", "How many times it has occurred."),
    ("Name", 1, "name", "Name of the Event object."),
];

/// `HumanDuration` of the API machinery, for whole seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// Seconds since a timestamp field, or `None` when it is unset.
fn age(value: &Value, now_s: i64) -> Option<String> {
    let at = value.as_str().and_then(parse_rfc3339)?;
    Some(human_duration(now_s - at))
}

fn text<'a>(event: &'a Value, pointer: &str) -> &'a str {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The cells of one event (stored, core/v1 form), as `printEvent` fills
/// them for a wide table.
fn event_cells(event: &Value, now_s: i64) -> Vec<Value> {
    let unknown = || "<unknown>".to_owned();
    let first = age(&event["firstTimestamp"], now_s)
        .or_else(|| age(&event["eventTime"], now_s))
        .unwrap_or_else(unknown);
    let mut last = age(&event["lastTimestamp"], now_s).unwrap_or_else(|| first.clone());
    let mut count = event["count"].as_i64().unwrap_or(0);
    if let Some(series) = event.get("series").filter(|s| s.is_object()) {
        last = age(&series["lastObservedTime"], now_s).unwrap_or_else(unknown);
        count = series["count"].as_i64().unwrap_or(0);
    } else if count == 0 {
        // A singleton event of the new API has no count.
        count = 1;
    }
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    let target = match text(event, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let first_non_empty = |a: &'static str, b: &'static str| {
        let a = text(event, a);
        if a.is_empty() { text(event, b) } else { a }
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let source = match first_non_empty("/source/host", "/reportingInstance") {
        "" => component.to_owned(),
        host => format!("{component}, {host}"),
    };
    vec![
        json!(last),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(target),
        json!(text(event, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(event, "/message").trim()),
        json!(first),
        json!(count),
        json!(text(event, "/metadata/name")),
    ]
}

/// A `Table` of `events` (stored, core/v1 form, as list items or whole
/// objects) for a request to `resource`'s view; `metadata` is the list's.
pub fn event_table(
    resource: Resource,
    events: &[Value],
    metadata: Value,
    include: IncludeObject,
    now_s: i64,
) -> Value {
    let columns: Vec<Value> = EVENT_COLUMNS
        .iter()
        .map(|(name, priority, format, description)| {
            json!({"name": name, "type": "string", "format": format,
                   "description": description, "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = events
        .iter()
        .map(|event| {
            let mut row = json!({"cells": event_cells(event, now_s)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({"kind": "PartialObjectMetadata",
                                           "apiVersion": "meta.k8s.io/v1",
                                           "metadata": event["metadata"]});
                }
                IncludeObject::Object => {
                    let mut object = resource.view(event).into_owned();
                    object["kind"] = json!(resource.kind());
                    object["apiVersion"] = json!(resource.api_version());
                    row["object"] = object;
                }
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
           "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_the_api_machinery() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (47 * 3600, "47h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (3 * 365 * 86400, "3y"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn accept_headers() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(wants_table(Some(kubectl)));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(Some(
            "application/vnd.kubernetes.protobuf,application/json"
        )));
        assert!(!wants_table(None));
        assert!(!wants_table(Some(
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
        )));
    }

    #[test]
    fn series_event_row() {
        let now = 1_796_413_500;
        let event = json!({"metadata": {"name": "web.1"}, "type": "Warning",
            "reason": "SidecarStoppedEarly", "message": " stopped \n",
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{p}"},
            "source": {}, "firstTimestamp": null, "lastTimestamp": null,
            "eventTime": "2026-12-04T19:40:00.123456Z",
            "series": {"count": 3, "lastObservedTime": "2026-12-04T19:44:00.000000Z"},
            "reportingComponent": "lifecycle-agent", "reportingInstance": "node-a"});
        let cells = event_cells(&event, now);
        let expected = json!([
            "60s",
            "Warning",
            "SidecarStoppedEarly",
            "pod/web",
            "spec.containers{p}",
            "lifecycle-agent, node-a",
            "stopped",
            "5m",
            3,
            "web.1"
        ]);
        assert_eq!(Value::Array(cells), expected);
        let table = event_table(
            Resource::Events,
            &[event],
            json!({}),
            IncludeObject::Metadata,
            now,
        );
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["columnDefinitions"][4]["priority"], 1);
    }
}
