//! Event validation as the real server does it (k8s
//! `pkg/apis/core/validation/events.go`).
//!
//! The checks run on the stored (core/v1) form, so field paths use the core
//! names even for a request to events.k8s.io/v1: a long `note` is reported
//! as `message`, a `deprecatedSource` as `source`, `reportingController` is
//! called that in both. Every event passes the legacy checks; events created
//! or updated through events.k8s.io/v1 also get the strict ones (required
//! `eventTime`, `Normal`/`Warning` types, empty deprecated fields, a valid
//! `series`, immutable fields on update).

use serde_json::{Value, json};

use crate::resource::Resource;
use crate::status::ApiError;
use crate::validation_names::{dns1123_label, dns1123_subdomain, qualified_name};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// One field problem, as `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// `FieldValueRequired` or `FieldValueInvalid`.
    required: bool,
    /// Path of the field, e.g. `series.count`.
    field: String,
    /// The offending value as Go prints it (`"..."` for strings).
    value: String,
    /// What is wrong.
    detail: String,
}

impl FieldError {
    fn required(field: &str, detail: &str) -> Self {
        Self {
            required: true,
            field: field.to_owned(),
            value: String::new(),
            detail: detail.to_owned(),
        }
    }

    fn invalid(field: &str, value: &Value, detail: impl Into<String>) -> Self {
        let value = match value {
            Value::String(text) => format!("{text:?}"),
            Value::Null => "null".to_owned(),
            other => other.to_string(),
        };
        Self {
            required: false,
            field: field.to_owned(),
            value,
            detail: detail.into(),
        }
    }

    /// The message without the field, e.g. `Invalid value: "": ...`.
    fn body(&self) -> String {
        let mut body = if self.required {
            "Required value".to_owned()
        } else {
            format!("Invalid value: {}", self.value)
        };
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }

    fn cause(&self) -> Value {
        let reason = if self.required {
            "FieldValueRequired"
        } else {
            "FieldValueInvalid"
        };
        json!({"reason": reason, "message": self.body(), "field": self.field})
    }
}

/// The 422 for `errors` on the event `name`, worded like the real server
/// (repeated messages appear once in the sentence, every time in `causes`).
pub fn invalid(resource: Resource, name: &str, errors: &[FieldError]) -> ApiError {
    let mut lines: Vec<String> = Vec::new();
    for error in errors {
        let line = format!("{}: {}", error.field, error.body());
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let summary = match lines.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let message = format!(
        "{} \"{name}\" is invalid: {summary}",
        resource.qualified_kind()
    );
    ApiError::invalid(
        resource,
        name,
        message,
        errors.iter().map(FieldError::cause).collect(),
    )
}

fn text<'a>(event: &'a Value, pointer: &str) -> &'a str {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_set(event: &Value, key: &str) -> bool {
    event.get(key).is_some_and(|v| !v.is_null())
}

/// Checks every event gets, whatever API version it came through.
fn legacy(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let namespace = text(event, "/metadata/namespace");
    let involved = &event["involvedObject"]["namespace"];
    let involved_ns = involved.as_str().unwrap_or_default();
    let mismatch = || {
        let value = involved.as_str().map_or(json!(""), |s| json!(s));
        FieldError::invalid(
            "involvedObject.namespace",
            &value,
            "does not match event.namespace",
        )
    };
    if !is_set(event, "eventTime") {
        // Old-style events: the namespaces must agree ("default" for a
        // cluster-scoped object, for old clients).
        let agree = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !agree {
            errors.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errors.push(mismatch());
        }
        let controller = text(event, "/reportingComponent");
        if controller.is_empty() {
            errors.push(FieldError::required("reportingController", ""));
        }
        for msg in qualified_name(controller) {
            errors.push(FieldError::invalid(
                "reportingController",
                &json!(controller),
                msg,
            ));
        }
        for (field, key, limit) in [
            (
                "reportingInstance",
                "/reportingInstance",
                REPORTING_INSTANCE_LIMIT,
            ),
            ("action", "/action", ACTION_LIMIT),
            ("reason", "/reason", REASON_LIMIT),
        ] {
            let value = text(event, key);
            if value.is_empty() {
                errors.push(FieldError::required(field, ""));
            }
            if value.len() > limit {
                errors.push(too_long(field, limit));
            }
        }
        if text(event, "/message").len() > NOTE_LIMIT {
            errors.push(too_long("message", NOTE_LIMIT));
        }
    }
    for msg in dns1123_subdomain(namespace) {
        errors.push(FieldError::invalid("namespace", &json!(namespace), msg));
    }
    errors
}

fn too_long(field: &str, limit: usize) -> FieldError {
    FieldError::invalid(
        field,
        &json!(""),
        format!("can have at most {limit} characters"),
    )
}

fn series_errors(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(series) = event.get("series").filter(|s| s.is_object()) {
        if series["count"].as_i64().unwrap_or(0) < 2 {
            errors.push(FieldError::invalid(
                "series.count",
                &json!(""),
                "should be at least 2",
            ));
        }
        if series["lastObservedTime"].is_null() {
            errors.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errors
}

fn object_meta(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = text(event, "/metadata/name");
    if name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in dns1123_subdomain(name) {
            errors.push(FieldError::invalid("metadata.name", &json!(name), msg));
        }
    }
    let namespace = text(event, "/metadata/namespace");
    if namespace.is_empty() {
        errors.push(FieldError::required("metadata.namespace", ""));
    } else {
        for msg in dns1123_label(namespace) {
            errors.push(FieldError::invalid(
                "metadata.namespace",
                &json!(namespace),
                msg,
            ));
        }
    }
    errors
}

/// Problems of a new event (stored form) created through `resource`.
pub fn create_errors(resource: Resource, event: &Value) -> Vec<FieldError> {
    let mut errors = legacy(event);
    if resource != Resource::EventsV1 {
        // core/v1 keeps the lenient rules for old clients.
        return errors;
    }
    errors.extend(object_meta(event));
    errors.extend(series_errors(event));
    if !is_set(event, "eventTime") {
        errors.push(FieldError::required("eventTime", ""));
    }
    let kind = text(event, "/type");
    if kind != "Normal" && kind != "Warning" {
        errors.push(FieldError::invalid(
            "type",
            &json!(""),
            format!("has invalid value: {kind}"),
        ));
    }
    for field in ["firstTimestamp", "lastTimestamp", "count"] {
        if is_set(event, field) {
            errors.push(FieldError::invalid(field, &json!(""), "needs to be unset"));
        }
    }
    if !text(event, "/source/component").is_empty() || !text(event, "/source/host").is_empty() {
        errors.push(FieldError::invalid(
            "source",
            &json!(""),
            "needs to be unset",
        ));
    }
    errors
}

/// The registry's own metadata checks, which run (for every resource) only
/// once the type's validation passed: a name is required and must be
/// usable as a path segment.
pub fn generic_meta_errors(event: &Value) -> Vec<FieldError> {
    let name = text(event, "/metadata/name");
    let problem = match name {
        "" => {
            return vec![FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )];
        }
        "." | ".." => format!("may not be '{name}'"),
        _ if name.contains('/') => "may not contain '/'".to_owned(),
        _ if name.contains('%') => "may not contain '%'".to_owned(),
        _ => return Vec::new(),
    };
    vec![FieldError::invalid("metadata.name", &json!(name), problem)]
}

/// Fields an update through events.k8s.io/v1 may not change, with the path
/// the real server reports (`reason` is listed twice there, so it is here).
const IMMUTABLE: [(&str, &str); 14] = [
    ("involvedObject", "involvedObject"),
    ("reason", "reason"),
    ("message", "message"),
    ("source", "source"),
    ("firstTimestamp", "firstTimestamp"),
    ("lastTimestamp", "lastTimestamp"),
    ("count", "count"),
    ("reason", "reason"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
];

/// Problems of an update from `old` to `new` (stored forms) through
/// `resource`.
pub fn update_errors(resource: Resource, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errors = legacy(new);
    if resource != Resource::EventsV1 {
        return errors;
    }
    if new.get("series") != old.get("series") {
        errors.extend(series_errors(new));
    }
    for (key, path) in IMMUTABLE {
        let pointer = format!("/{key}");
        let (after, before) = (new.pointer(&pointer), old.pointer(&pointer));
        if after != before {
            let shown = after.cloned().unwrap_or(Value::Null);
            errors.push(FieldError::invalid(path, &shown, "field is immutable"));
        }
    }
    errors
}

#[cfg(test)]
mod tests;
