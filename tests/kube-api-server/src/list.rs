//! Paged, consistent lists (pods and events, in the requested view).
//!
//! A list without a continue token reads at one resource version; every
//! following page (requested with the `continue` token of the previous one)
//! reads the *same* version, so objects changed between pages still appear
//! as they were — exactly what etcd-backed pagination guarantees. When that
//! version has been compacted away the server answers 410 `Expired`, and the
//! client must start over.
//!
//! Deviations from a real server, on purpose: `resourceVersion=0` lists are
//! served whole, ignoring `limit` (the real watch cache did this for years,
//! and it is what makes `limit` meaningless for "any" lists); `labelSelector`
//! is ignored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::objects::{ObjectStore, Snapshot, VersionProblem};
use crate::query::{Options, RequestedVersion};
use crate::status::ApiError;

/// What a continue token carries (base64 of this JSON, like the real one).
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
}

fn encode_token(rv: u64, after_key: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        // The next page starts at the smallest key after the last one served.
        start: format!("{after_key}\u{0}"),
    };
    STANDARD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_token(token: &str) -> Result<ContinueToken, ApiError> {
    let invalid = || ApiError::bad_request("continue key is not valid: malformed token");
    let bytes = STANDARD.decode(token).map_err(|_| invalid())?;
    let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.v != "meta.k8s.io/v1" {
        return Err(invalid());
    }
    Ok(token)
}

fn version_error(problem: VersionProblem, requested: u64) -> ApiError {
    match problem {
        VersionProblem::Compacted { oldest } => {
            ApiError::too_old_resource_version(requested, oldest)
        }
        VersionProblem::InFuture { current } => {
            ApiError::too_large_resource_version(requested, current)
        }
    }
}

/// Picks the snapshot a list request reads, plus the key to start at and
/// whether `limit` applies.
fn choose_snapshot(
    store: &ObjectStore,
    opts: &Options,
) -> Result<(Snapshot, Option<String>, bool), ApiError> {
    if let Some(token) = &opts.continue_token {
        if opts.version != RequestedVersion::Latest {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let token = decode_token(token)?;
        let snapshot = store.snapshot_at(token.rv).map_err(|p| match p {
            VersionProblem::Compacted { .. } => ApiError::continue_token_expired(),
            VersionProblem::InFuture { .. } => {
                ApiError::bad_request("continue key is not valid: version in the future")
            }
        })?;
        return Ok((snapshot, Some(token.start), true));
    }
    let current = store.current_rv();
    match (&opts.version, opts.version_match.as_deref()) {
        (RequestedVersion::Latest, _) => Ok((latest(store)?, None, true)),
        (RequestedVersion::Any, _) => Ok((latest(store)?, None, false)),
        (RequestedVersion::At(rv), Some("Exact")) => {
            let snap = store.snapshot_at(*rv).map_err(|p| version_error(p, *rv))?;
            Ok((snap, None, true))
        }
        (RequestedVersion::At(rv), _) if *rv > current => {
            Err(ApiError::too_large_resource_version(*rv, current))
        }
        (RequestedVersion::At(_), _) => Ok((latest(store)?, None, true)),
    }
}

fn latest(store: &ObjectStore) -> Result<Snapshot, ApiError> {
    let rv = store.current_rv();
    store.snapshot_at(rv).map_err(|p| version_error(p, rv))
}

/// Whether the object at `key` belongs to the namespace filter.
pub fn in_namespace(key: &str, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| {
        key.strip_prefix(ns)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Builds the list answer (`PodList`, `EventList`) for a list request, items
/// in the view of `opts.resource`.
pub fn list_objects(
    store: &ObjectStore,
    namespace: Option<&str>,
    opts: &Options,
) -> Result<Value, ApiError> {
    let (snapshot, start, limit_applies) = choose_snapshot(store, opts)?;
    let limit = if limit_applies { opts.limit } else { None };
    let mut matching = snapshot
        .objects
        .iter()
        .filter(|(key, _)| start.as_deref().is_none_or(|s| key.as_str() >= s))
        .filter(|(key, obj)| in_namespace(key, namespace) && opts.fields.matches(obj));

    let mut items = Vec::new();
    let mut last_key = None;
    for (key, obj) in matching.by_ref() {
        if limit.is_some_and(|l| items.len() >= l) {
            // Put back nothing: we only needed to know that one more exists.
            let remaining = 1 + matching.count();
            return Ok(page(
                snapshot.rv,
                items,
                last_key.map(|k: &String| (k.clone(), remaining)),
                opts,
            ));
        }
        items.push(list_item(&opts.resource.view(obj)));
        last_key = Some(key);
    }
    Ok(page(snapshot.rv, items, None, opts))
}

fn page(rv: u64, items: Vec<Value>, more: Option<(String, usize)>, opts: &Options) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    if let Some((last_key, remaining)) = more {
        meta.insert(
            "continue".into(),
            Value::String(encode_token(rv, &last_key)),
        );
        // The real server cannot count remaining items when it filters.
        if opts.fields.is_empty() {
            meta.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    json!({
        "kind": opts.resource.list_kind(),
        "apiVersion": opts.resource.api_version(),
        "metadata": meta,
        "items": items,
    })
}

/// Items of a typed list carry no `kind`/`apiVersion` of their own.
fn list_item(obj: &Value) -> Value {
    let mut item = obj.clone();
    if let Some(map) = item.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_query;

    fn store_with(names: &[(&str, &str)]) -> ObjectStore {
        let mut store = ObjectStore::new(100);
        for (name, node) in names {
            store.put(
                &format!("default/{name}"),
                json!({"kind": "Pod", "apiVersion": "v1",
                       "metadata": {"name": name, "namespace": "default"},
                       "spec": {"nodeName": node}}),
            );
        }
        store
    }

    fn opts(q: &str) -> Options {
        Options::from_params(&parse_query(Some(q))).unwrap()
    }

    fn names(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn pages_are_consistent_with_the_first_one() {
        let mut store = store_with(&[("a", "n"), ("b", "n"), ("c", "n")]);
        let first = list_objects(&store, None, &opts("limit=2")).unwrap();
        assert_eq!(names(&first), vec!["a", "b"]);
        assert_eq!(first["metadata"]["remainingItemCount"], 1);
        assert!(first["items"][0].get("kind").is_none());
        let token = first["metadata"]["continue"].as_str().unwrap().to_owned();

        // Changes after the first page must not show in the second.
        store.remove("default/c");
        store.put(
            "default/d",
            json!({"metadata": {"name": "d"}, "spec": {"nodeName": "n"}}),
        );
        let second =
            list_objects(&store, None, &opts(&format!("limit=2&continue={token}"))).unwrap();
        assert_eq!(names(&second), vec!["c"]);
        assert!(second["metadata"].get("continue").is_none());
        assert_eq!(
            second["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn compacted_continue_token_is_gone() {
        let mut store = store_with(&[("a", "n"), ("b", "n")]);
        let first = list_objects(&store, None, &opts("limit=1")).unwrap();
        let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
        store.put("default/a", json!({"metadata": {"name": "a"}}));
        store.compact();
        let err =
            list_objects(&store, None, &opts(&format!("limit=1&continue={token}"))).unwrap_err();
        assert_eq!((err.code, err.reason), (410, "Expired"));
    }

    #[test]
    fn field_selector_and_namespace_filter() {
        let store = store_with(&[("a", "n1"), ("b", "n2"), ("c", "n1")]);
        let list = list_objects(
            &store,
            Some("default"),
            &opts("fieldSelector=spec.nodeName%3Dn1&limit=1"),
        )
        .unwrap();
        assert_eq!(names(&list), vec!["a"]);
        assert!(list["metadata"].get("remainingItemCount").is_none());
        assert!(list["metadata"]["continue"].is_string());
        let other = list_objects(&store, Some("kube-system"), &opts("")).unwrap();
        assert!(names(&other).is_empty());
    }

    #[test]
    fn any_version_ignores_limit_and_bad_tokens_are_rejected() {
        let store = store_with(&[("a", "n"), ("b", "n")]);
        let list = list_objects(&store, None, &opts("resourceVersion=0&limit=1")).unwrap();
        assert_eq!(names(&list).len(), 2);
        let err = list_objects(&store, None, &opts("continue=bm90IGpzb24=")).unwrap_err();
        assert_eq!(err.code, 400);
        let err = list_objects(
            &store,
            None,
            &opts("resourceVersion=99999&resourceVersionMatch=Exact"),
        )
        .unwrap_err();
        assert_eq!(err.code, 504);
    }
}
