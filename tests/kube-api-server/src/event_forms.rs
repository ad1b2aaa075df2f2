//! The two forms of an Event: core/v1 (how it is stored) and events.k8s.io/v1.
//!
//! The real server keeps one internal Event and converts it for each API
//! version (k8s `pkg/apis/events/v1/conversion.go`): `regarding` is
//! `involvedObject`, `note` is `message`, `reportingController` is
//! `reportingComponent`, the `deprecated*` fields are `source`,
//! `firstTimestamp`, `lastTimestamp` and `count`; everything else keeps its
//! name. Both forms are serialised the way Go's encoder writes the typed
//! structs: some fields are always present (`{}` or `null` when empty),
//! others are left out when empty, and they differ between the versions
//! (core always writes `reportingComponent`, events.k8s.io leaves it out).
//!
//! Decoding a request body checks field types and timestamp formats like the
//! typed decoder does (400 `BadRequest` otherwise) and drops unknown fields,
//! reporting them so the caller can warn or refuse.

use serde_json::{Map, Value, json};

use crate::clock::{normalize_micro_time, normalize_time};
use crate::resource::Resource;
use crate::status::ApiError;

/// Every field of an Event: its core/v1 name and its events.k8s.io/v1 name.
const FIELDS: [(&str, &str); 15] = [
    ("metadata", "metadata"),
    ("involvedObject", "regarding"),
    ("reason", "reason"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("action", "action"),
    ("related", "related"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
];

/// Fields of an `ObjectReference` (`involvedObject`, `related`).
const REFERENCE_FIELDS: [&str; 7] = [
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
];

/// The core name of a field as `resource`'s view spells it.
fn core_name(resource: Resource, key: &str) -> Option<&'static str> {
    FIELDS.iter().find_map(|(core, v1)| {
        let shown = if resource == Resource::EventsV1 {
            v1
        } else {
            core
        };
        (*shown == key).then_some(*core)
    })
}

/// Keeps the non-empty string members of a reference-like object.
fn strings_only(value: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for field in fields {
        if let Some(text) = value.get(*field).and_then(Value::as_str)
            && !text.is_empty()
        {
            out.insert((*field).to_owned(), json!(text));
        }
    }
    Value::Object(out)
}

/// Writes `stored` (core names) as the Go encoder would for one version.
fn serialise(stored: &Map<String, Value>, v1: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let api_version = if v1 { "events.k8s.io/v1" } else { "v1" };
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!(api_version));
    for (core, v1_name) in FIELDS {
        let value = stored.get(core).unwrap_or(&Value::Null);
        let written = match core {
            "metadata" if value.is_object() => value.clone(),
            "metadata" => json!({}),
            "involvedObject" => strings_only(value, &REFERENCE_FIELDS),
            "source" => strings_only(value, &["component", "host"]),
            "firstTimestamp" | "lastTimestamp" | "eventTime" if value.is_string() => value.clone(),
            "firstTimestamp" | "lastTimestamp" | "eventTime" => Value::Null,
            "count" => match value.as_i64() {
                Some(n) if n != 0 => json!(n),
                _ => continue,
            },
            "related" if value.is_object() => strings_only(value, &REFERENCE_FIELDS),
            "series" if value.is_object() => {
                let mut series = Map::new();
                if let Some(n) = value.get("count").and_then(Value::as_i64)
                    && n != 0
                {
                    series.insert("count".into(), json!(n));
                }
                let last = value.get("lastObservedTime").filter(|t| t.is_string());
                series.insert(
                    "lastObservedTime".into(),
                    last.cloned().unwrap_or(Value::Null),
                );
                Value::Object(series)
            }
            "related" | "series" => continue,
            // core/v1 writes the reporting fields even when empty.
            "reportingComponent" | "reportingInstance" if !v1 => {
                json!(value.as_str().unwrap_or_default())
            }
            _ => match value.as_str() {
                Some(text) if !text.is_empty() => value.clone(),
                _ => continue,
            },
        };
        let key = if v1 { v1_name } else { core };
        out.insert(key.to_owned(), written);
    }
    out
}

/// The canonical stored (core/v1) form of an event given in core names.
/// Fields the Event type does not have are dropped.
pub fn canonical(event: &Map<String, Value>) -> Value {
    Value::Object(serialise(event, false))
}

/// The events.k8s.io/v1 form of a stored event.
pub fn to_v1(stored: &Value) -> Value {
    let empty = Map::new();
    Value::Object(serialise(stored.as_object().unwrap_or(&empty), true))
}

/// A request body read into core names, with the fields it had that an
/// Event does not.
pub struct Decoded {
    /// The event in its canonical core/v1 form.
    pub event: Value,
    /// Top-level fields that were dropped, as the client spelled them.
    pub unknown: Vec<String>,
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(value: &Value, path: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field Event.{path} of type {go_type}",
        json_type(value)
    )
}

fn check_string(value: &Value, path: &str) -> Result<(), String> {
    match value {
        Value::Null | Value::String(_) => Ok(()),
        other => Err(wrong_type(other, path, "string")),
    }
}

fn check_object<'a>(value: &'a Value, path: &str, go_type: &str) -> Result<&'a Value, String> {
    match value {
        Value::Object(_) => Ok(value),
        other => Err(wrong_type(other, path, go_type)),
    }
}

fn check_count(value: &Value, path: &str) -> Result<Value, String> {
    match value.as_i64().and_then(|n| i32::try_from(n).ok()) {
        Some(n) => Ok(json!(n)),
        None => Err(wrong_type(value, path, "int32")),
    }
}

fn check_time(value: &Value, micro: bool) -> Result<Value, String> {
    let Some(text) = value.as_str() else {
        return Err(format!("{} is not a timestamp string", json_type(value)));
    };
    let normalised = if micro {
        normalize_micro_time(text)
    } else {
        normalize_time(text)
    };
    let layout = if micro {
        "2006-01-02T15:04:05.000000Z07:00"
    } else {
        "2006-01-02T15:04:05Z07:00"
    };
    normalised
        .map(Value::String)
        .ok_or_else(|| format!("parsing time {text:?} as {layout:?}: cannot parse"))
}

/// Checks one field's value (named `shown` by the client) and returns it as
/// stored.
fn check_field(core: &str, shown: &str, value: &Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match core {
        "metadata" => {
            check_object(value, shown, "v1.ObjectMeta")?;
            for field in [
                "name",
                "generateName",
                "namespace",
                "uid",
                "resourceVersion",
            ] {
                check_string(&value[field], &format!("{shown}.{field}"))?;
            }
            Ok(value.clone())
        }
        "involvedObject" | "related" => {
            check_object(value, shown, "v1.ObjectReference")?;
            for field in REFERENCE_FIELDS {
                check_string(&value[field], &format!("{shown}.{field}"))?;
            }
            Ok(value.clone())
        }
        "source" => {
            check_object(value, shown, "v1.EventSource")?;
            for field in ["component", "host"] {
                check_string(&value[field], &format!("{shown}.{field}"))?;
            }
            Ok(value.clone())
        }
        "count" => check_count(value, shown),
        "firstTimestamp" | "lastTimestamp" => check_time(value, false),
        "eventTime" => check_time(value, true),
        "series" => {
            check_object(value, shown, "v1.EventSeries")?;
            let mut series = Map::new();
            if !value["count"].is_null() {
                series.insert(
                    "count".into(),
                    check_count(&value["count"], &format!("{shown}.count"))?,
                );
            }
            if !value["lastObservedTime"].is_null() {
                series.insert(
                    "lastObservedTime".into(),
                    check_time(&value["lastObservedTime"], true)?,
                );
            }
            Ok(Value::Object(series))
        }
        _ => {
            check_string(value, shown)?;
            Ok(value.clone())
        }
    }
}

/// Reads a request body sent to `resource`'s view into the stored form.
pub fn decode(resource: Resource, body: Value) -> Result<Decoded, ApiError> {
    let cannot = |problem: String| {
        ApiError::bad_request(format!(
            "Event in version \"v1\" cannot be handled as a Event: {problem}"
        ))
    };
    let Value::Object(body) = body else {
        return Err(cannot(format!(
            "json: cannot unmarshal {} into Go value of type Event",
            json_type(&body)
        )));
    };
    if let Some(found) = body.get("apiVersion").and_then(Value::as_str)
        && found != resource.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({found}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    if let Some(found) = body.get("kind").and_then(Value::as_str)
        && found != "Event"
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({found}) does not match the expected kind (Event)"
        )));
    }
    let mut event = Map::new();
    let mut unknown = Vec::new();
    for (key, value) in &body {
        if key == "apiVersion" || key == "kind" {
            continue;
        }
        let Some(core) = core_name(resource, key) else {
            unknown.push(key.clone());
            continue;
        };
        event.insert(
            core.to_owned(),
            check_field(core, key, value).map_err(cannot)?,
        );
    }
    Ok(Decoded {
        event: canonical(&event),
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_event() -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
               "metadata": {"name": "web.1", "namespace": "shop"},
               "eventTime": "2026-12-04T19:40:00.123456Z",
               "reportingController": "lifecycle-agent", "reportingInstance": "node-a",
               "action": "Terminating", "reason": "SidecarStoppedEarly", "type": "Warning",
               "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "shop",
                             "name": "web", "uid": "u1", "fieldPath": "spec.containers{istio-proxy}"},
               "note": "stopped", "extra": 1})
    }

    #[test]
    fn v1_body_is_stored_in_core_names_and_round_trips() {
        let decoded = decode(Resource::EventsV1, agent_event()).unwrap();
        assert_eq!(decoded.unknown, vec!["extra"]);
        let core = &decoded.event;
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "stopped");
        assert_eq!(core["reportingComponent"], "lifecycle-agent");
        assert_eq!(core["source"], json!({}));
        assert!(core["firstTimestamp"].is_null() && core.get("count").is_none());

        let v1 = to_v1(core);
        let mut expected = agent_event();
        expected.as_object_mut().unwrap().remove("extra");
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&v1[key], value, "{key}");
        }
        assert_eq!(v1["deprecatedSource"], json!({}));
        assert!(v1["deprecatedLastTimestamp"].is_null());
        assert!(v1.get("deprecatedCount").is_none() && v1.get("series").is_none());
    }

    #[test]
    fn core_event_shows_deprecated_fields_in_v1() {
        let core = canonical(
            json!({"metadata": {"name": "n.1"}, "involvedObject": {"kind": "Node", "name": "n"},
                   "reason": "Starting", "message": "Starting kubelet.",
                   "source": {"component": "kubelet", "host": "n"}, "count": 1,
                   "firstTimestamp": "2026-11-21T23:57:04Z", "eventTime": null, "type": "Normal"})
            .as_object()
            .unwrap(),
        );
        assert_eq!(core["reportingComponent"], "");
        let v1 = to_v1(&core);
        assert_eq!(v1["regarding"]["kind"], "Node");
        assert_eq!(v1["note"], "Starting kubelet.");
        assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
        assert_eq!(v1["deprecatedCount"], 1);
        assert_eq!(v1["deprecatedFirstTimestamp"], "2026-11-21T23:57:04Z");
        assert!(v1["eventTime"].is_null());
        assert!(v1.get("reportingController").is_none());
    }

    #[test]
    fn wrong_types_and_times_are_bad_requests() {
        let mut bad = agent_event();
        bad["series"] = json!({"count": "two"});
        let err = decode(Resource::EventsV1, bad).err().unwrap();
        assert_eq!(err.code, 400);
        assert!(
            err.message.contains("Event.series.count of type int32"),
            "{}",
            err.message
        );
        let mut bad = agent_event();
        bad["eventTime"] = json!("2026-12-04T19:40:00Z");
        let err = decode(Resource::EventsV1, bad).err().unwrap();
        assert!(err.message.contains("2006-01-02T15:04:05.000000Z07:00"));
        let err = decode(Resource::Events, agent_event()).err().unwrap();
        assert!(
            err.message
                .contains("does not match the expected API version (v1)")
        );
    }
}
