//! Writes of Events through either API version: create (POST), merge patch
//! (PATCH), replace (PUT) and delete, each one atomic write of the shared
//! store, in the order the real server's registry does them: decode (400),
//! namespace and name checks (400), server-set metadata, the type's
//! validation then the registry's generic metadata checks (422), then
//! storage (409 for a taken name or a stale `resourceVersion`).
//!
//! Unknown fields follow `fieldValidation`: `Strict` refuses them (400),
//! `Ignore` drops them silently, and the default `Warn` drops them with a
//! `Warning` header each, as the server does since 1.27.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use serde_json::{Map, Value, json};

use crate::clock::{now_s, rfc3339};
use crate::driver::new_uid;
use crate::event_forms::{self, Decoded};
use crate::event_validation::{create_errors, generic_meta_errors, invalid, update_errors};
use crate::merge_patch::{self, PATCH_TYPES, is_merge_patch};
use crate::objects::ObjectStore;
use crate::resource::Resource;
use crate::server::Shared;
use crate::status::{ApiError, deleted};

/// The answer to a successful write.
pub struct Written {
    /// The stored object as the request's view shows it.
    pub object: Value,
    /// Whether the write created the object (201 rather than 200).
    pub created: bool,
    /// `Warning` header values.
    pub warnings: Vec<String>,
}

/// Where a write goes: the view, namespace and (except for a create) name.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub resource: Resource,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Target<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }
}

fn parse_json(resource: Resource, body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"v1\" cannot be handled as a {}: {e}",
            resource.kind(),
            resource.kind()
        ))
    })
}

/// Decodes a body into the stored form, applying `fieldValidation`.
fn decode_checked(
    resource: Resource,
    body: Value,
    query: &BTreeMap<String, String>,
) -> Result<(Value, Vec<String>), ApiError> {
    let Decoded { event, unknown } = event_forms::decode(resource, body)?;
    let described: Vec<String> = unknown
        .iter()
        .map(|field| format!("unknown field \"{field}\""))
        .collect();
    match query.get("fieldValidation").map(String::as_str) {
        Some("Strict") if !described.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            described.join(", ")
        ))),
        Some("Ignore") => Ok((event, Vec::new())),
        _ => Ok((event, described)),
    }
}

fn meta_mut(event: &mut Value) -> &mut Map<String, Value> {
    if !event["metadata"].is_object() {
        event["metadata"] = json!({});
    }
    event["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn meta_text<'a>(event: &'a Value, field: &str) -> &'a str {
    event["metadata"][field].as_str().unwrap_or_default()
}

fn namespace_mismatch() -> ApiError {
    ApiError::bad_request(
        "the namespace of the provided object does not match the namespace sent on the request",
    )
}

/// Five characters from the alphabet the server's name generator uses.
fn generated_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let hex: String = new_uid()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    let mut n = u64::from_str_radix(&hex, 16).unwrap_or_default();
    (0..5)
        .map(|_| {
            let index = usize::try_from(n % 27).unwrap_or_default();
            n /= 27;
            char::from(ALPHABET[index])
        })
        .collect()
}

/// POST: stores a new event in `target.namespace`.
pub fn create(
    shared: &Shared,
    target: Target<'_>,
    body: &[u8],
    query: &BTreeMap<String, String>,
) -> Result<Written, ApiError> {
    let body = parse_json(target.resource, body)?;
    let (mut event, warnings) = decode_checked(target.resource, body, query)?;
    let meta = meta_mut(&mut event);
    match meta.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() && ns != target.namespace => return Err(namespace_mismatch()),
        _ => meta.insert("namespace".into(), json!(target.namespace)),
    };
    let given = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    let prefix = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if given.is_empty() && !prefix.is_empty() {
        let prefix: String = prefix.chars().take(58).collect();
        meta.insert(
            "name".into(),
            json!(format!("{prefix}{}", generated_suffix())),
        );
    }
    for server_set in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        meta.remove(server_set);
    }
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(rfc3339(now_s())));
    let name = meta_text(&event, "name").to_owned();
    let mut errors = create_errors(target.resource, &event);
    if errors.is_empty() {
        errors = generic_meta_errors(&event);
    }
    if !errors.is_empty() {
        return Err(invalid(target.resource, &name, &errors));
    }
    let mut store = target.resource.store(shared);
    let key = target.key(&name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(target.resource, &name));
    }
    let change = store.put(&key, event);
    Ok(Written {
        object: target.resource.view(&change.object).into_owned(),
        created: true,
        warnings,
    })
}

/// PATCH: merges `body` into the event as the request's view shows it.
pub fn patch(
    shared: &Shared,
    target: Target<'_>,
    content_type: &str,
    body: &[u8],
    query: &BTreeMap<String, String>,
) -> Result<Written, ApiError> {
    if !is_merge_patch(content_type) {
        return Err(ApiError::unsupported_media_type(content_type, &PATCH_TYPES));
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: a merge patch must be a JSON object",
        ));
    }
    let store = target.resource.store(shared);
    let current = store
        .get(&target.key(target.name))
        .ok_or_else(|| ApiError::not_found(target.resource, target.name))?;
    let shown = target.resource.view(&current).into_owned();
    let merged = merge_patch::apply(&shown, &patch);
    update(store, target, &current, merged, query)
}

/// PUT: replaces the event, or creates it when absent (events allow that).
pub fn replace(
    shared: &Shared,
    target: Target<'_>,
    body: &[u8],
    query: &BTreeMap<String, String>,
) -> Result<Written, ApiError> {
    let object = parse_json(target.resource, body)?;
    if let Some(found) = object.pointer("/metadata/name").and_then(Value::as_str)
        && found != target.name
    {
        return Err(name_mismatch(found, target.name));
    }
    let store = target.resource.store(shared);
    match store.get(&target.key(target.name)) {
        Some(current) => update(store, target, &current, object, query),
        None => {
            drop(store);
            let mut object = object;
            meta_mut(&mut object).insert("name".into(), json!(target.name));
            let body = serde_json::to_vec(&object).unwrap_or_default();
            create(shared, target, &body, query)
        }
    }
}

fn name_mismatch(found: &str, name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "the name of the object ({found}) does not match the name on the URL ({name})"
    ))
}

/// The common end of PATCH and PUT: `object` (the request's view) replaces
/// `current` (stored) if it is valid, under the store lock held by `store`.
fn update(
    mut store: MutexGuard<'_, ObjectStore>,
    target: Target<'_>,
    current: &Value,
    object: Value,
    query: &BTreeMap<String, String>,
) -> Result<Written, ApiError> {
    let (mut event, warnings) = decode_checked(target.resource, object, query)?;
    let name = target.name;
    let found = meta_text(&event, "name");
    if !found.is_empty() && found != name {
        return Err(name_mismatch(found, name));
    }
    let ns = meta_text(&event, "namespace");
    if !ns.is_empty() && ns != target.namespace {
        return Err(namespace_mismatch());
    }
    let current_rv = meta_text(current, "resourceVersion");
    let wanted_rv = meta_text(&event, "resourceVersion");
    if !wanted_rv.is_empty() && wanted_rv != current_rv {
        return Err(ApiError::conflict(target.resource, name));
    }
    // Identity and server-set fields stay as stored.
    let meta = meta_mut(&mut event);
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(target.namespace));
    for kept in ["uid", "creationTimestamp", "resourceVersion"] {
        match current["metadata"].get(kept) {
            Some(value) => meta.insert(kept.into(), value.clone()),
            None => meta.remove(kept),
        };
    }
    let errors = update_errors(target.resource, &event, current);
    if !errors.is_empty() {
        return Err(invalid(target.resource, name, &errors));
    }
    let object = if &event == current {
        // Nothing changed: no write, no new resource version.
        target.resource.view(current).into_owned()
    } else {
        let change = store.put(&target.key(name), event);
        target.resource.view(&change.object).into_owned()
    };
    Ok(Written {
        object,
        created: false,
        warnings,
    })
}

/// DELETE: removes the event; answers a success `Status`.
pub fn delete(shared: &Shared, target: Target<'_>) -> Result<Value, ApiError> {
    let change = target
        .resource
        .store(shared)
        .remove(&target.key(target.name))
        .ok_or_else(|| ApiError::not_found(target.resource, target.name))?;
    let uid = meta_text(&change.object, "uid").to_owned();
    Ok(deleted(target.resource, target.name, &uid))
}
