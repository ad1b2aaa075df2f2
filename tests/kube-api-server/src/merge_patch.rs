//! JSON merge patch (RFC 7386), and which patch types a PATCH may carry.
//!
//! The server takes `application/merge-patch+json` and, for the types it
//! serves (which have no list merge keys that matter here),
//! `application/strategic-merge-patch+json` applied the same way. JSON
//! Patch (`application/json-patch+json`) and server-side apply are not
//! served: 415.

use serde_json::{Map, Value};

/// Patch content types the server applies.
pub const PATCH_TYPES: [&str; 2] = [
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Whether a `Content-Type` header (parameters ignored) names a patch type
/// the server applies.
pub fn is_merge_patch(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    PATCH_TYPES.iter().any(|t| t.eq_ignore_ascii_case(essence))
}

/// `target` with `patch` merged in: objects merge member by member, `null`
/// removes a member, anything else replaces.
pub fn apply(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut merged = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            let current = merged.get(key).unwrap_or(&Value::Null);
            let next = apply(current, value);
            merged.insert(key.clone(), next);
        }
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        let patch = json!({"a": "z", "c": {"f": null}});
        assert_eq!(apply(&target, &patch), json!({"a": "z", "c": {"d": "e"}}));
        assert_eq!(
            apply(&json!({"a": [1]}), &json!({"a": [2, 3]})),
            json!({"a": [2, 3]})
        );
        assert_eq!(apply(&json!({"a": 1}), &json!(["x"])), json!(["x"]));
        assert_eq!(
            apply(&json!({"e": null}), &json!({"a": 1})),
            json!({"e": null, "a": 1})
        );
    }

    #[test]
    fn content_types() {
        assert!(is_merge_patch("application/merge-patch+json"));
        assert!(is_merge_patch(
            "application/strategic-merge-patch+json; charset=utf-8"
        ));
        assert!(!is_merge_patch("application/json-patch+json"));
        assert!(!is_merge_patch("application/json"));
    }
}
