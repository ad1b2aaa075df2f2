//! Query-string parameters of list and watch requests.

use std::collections::BTreeMap;

use crate::resource::Resource;
use crate::selector::FieldSelector;
use crate::status::ApiError;
use crate::table::IncludeObject;

/// Decodes an `application/x-www-form-urlencoded` query into a map. Repeated
/// keys keep the last value, which is what the API server's decoder does for
/// the scalar options used here.
pub fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex_value(bytes[i + 1])? * 16 + hex_value(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// How a list or watch request wants its resource version interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestedVersion {
    /// No `resourceVersion`: the most recent data (a consistent read).
    Latest,
    /// `resourceVersion=0`: any data the server has (served from its cache).
    Any,
    /// An explicit version.
    At(u64),
}

/// Options shared by list and watch requests.
#[derive(Clone, Debug)]
pub struct Options {
    /// What is listed or watched.
    pub resource: Resource,
    /// Parsed `fieldSelector`.
    pub fields: FieldSelector,
    /// `resourceVersion` interpretation.
    pub version: RequestedVersion,
    /// `resourceVersionMatch` (`Exact` / `NotOlderThan`), if given.
    pub version_match: Option<String>,
    /// `limit` (lists only).
    pub limit: Option<usize>,
    /// `continue` token (lists only).
    pub continue_token: Option<String>,
    /// `watch=true` / `watch=1`.
    pub watch: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// Objects go out as one-row `Table`s (the `Accept` header asked for
    /// them), holding this much of the object.
    pub table: Option<IncludeObject>,
}

fn flag(params: &BTreeMap<String, String>, key: &str) -> bool {
    matches!(params.get(key).map(String::as_str), Some("true" | "1"))
}

fn number<T: std::str::FromStr>(
    params: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<T>, ApiError> {
    match params.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
    }
}

impl Options {
    /// Reads the options from a decoded query. `labelSelector` is accepted
    /// and ignored: the agent does not use it.
    #[cfg(test)]
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Self, ApiError> {
        Self::from_params_for(params, Resource::Pods)
    }

    /// [`Self::from_params`] for a list or watch of `resource`.
    pub fn from_params_for(
        params: &BTreeMap<String, String>,
        resource: Resource,
    ) -> Result<Self, ApiError> {
        let fields = FieldSelector::parse_for(
            params.get("fieldSelector").map_or("", String::as_str),
            resource,
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let version =
            match params.get("resourceVersion").map(String::as_str) {
                None | Some("") => RequestedVersion::Latest,
                Some("0") => RequestedVersion::Any,
                Some(v) => RequestedVersion::At(v.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version {v:?}"))
                })?),
            };
        Ok(Self {
            resource,
            fields,
            version,
            version_match: params.get("resourceVersionMatch").cloned(),
            limit: number::<usize>(params, "limit")?.filter(|l| *l > 0),
            continue_token: params.get("continue").filter(|c| !c.is_empty()).cloned(),
            watch: flag(params, "watch"),
            bookmarks: flag(params, "allowWatchBookmarks"),
            timeout_seconds: number(params, "timeoutSeconds")?,
            send_initial_events: flag(params, "sendInitialEvents"),
            table: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_and_plus() {
        let q = parse_query(Some(
            "fieldSelector=spec.nodeName%3Dnode-a&watch=true&x=a+b&y=%zz",
        ));
        assert_eq!(q["fieldSelector"], "spec.nodeName=node-a");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "a b");
        assert_eq!(q["y"], "%zz");
    }

    #[test]
    fn options_interpret_resource_versions() {
        let o = Options::from_params(&parse_query(Some("resourceVersion=0&limit=5"))).unwrap();
        assert_eq!(o.version, RequestedVersion::Any);
        assert_eq!(o.limit, Some(5));
        let o = Options::from_params(&parse_query(Some("resourceVersion=1234"))).unwrap();
        assert_eq!(o.version, RequestedVersion::At(1234));
        let o = Options::from_params(&parse_query(None)).unwrap();
        assert_eq!(o.version, RequestedVersion::Latest);
        assert!(Options::from_params(&parse_query(Some("resourceVersion=abc"))).is_err());
        assert!(Options::from_params(&parse_query(Some("limit=x"))).is_err());
    }
}
