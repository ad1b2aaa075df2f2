//! `metav1.Status` failures, as the API server returns them.
//!
//! The same object appears in two places: as the body of a non-2xx HTTP
//! response, and as the `object` of a watch `ERROR` event (the 410 a client
//! receives when it resumes a watch from a compacted version). Failures about
//! one object carry `details` (its name, group and kind; for `Invalid` the
//! field causes), and a 429 carries `retryAfterSeconds` plus a `Retry-After`
//! header, like the real server's.

use serde_json::{Map, Value, json};

use crate::resource::Resource;

/// An API failure with its HTTP code and machine-readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// `Status.reason`, e.g. `Expired`, `NotFound`, `BadRequest`; empty for
    /// a code without a well-known reason (the field is then omitted).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `Status.details`, if the failure concerns one object.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header.
    pub retry_after: Option<u32>,
}

/// The `details` naming one object of `resource` (`kind` is the plural, as
/// the server writes it for storage errors).
fn object_details(resource: Resource, name: &str) -> Value {
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !resource.group().is_empty() {
        details.insert("group".into(), json!(resource.group()));
    }
    details.insert("kind".into(), json!(resource.plural()));
    Value::Object(details)
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400: the request itself is wrong (bad selector, bad continue token).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 for a named pod.
    pub fn pod_not_found(name: &str) -> Self {
        Self::not_found(Resource::Pods, name)
    }

    /// 404 for a missing object of `resource`.
    pub fn not_found(resource: Resource, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", resource.qualified_resource());
        Self::new(404, "NotFound", message).with_details(object_details(resource, name))
    }

    /// 409 for a create whose name is taken.
    pub fn already_exists(resource: Resource, name: &str) -> Self {
        let message = format!(
            "{} \"{name}\" already exists",
            resource.qualified_resource()
        );
        Self::new(409, "AlreadyExists", message).with_details(object_details(resource, name))
    }

    /// 409 for a write whose `resourceVersion` precondition is stale.
    pub fn conflict(resource: Resource, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            resource.qualified_resource()
        );
        Self::new(409, "Conflict", message).with_details(object_details(resource, name))
    }

    /// 422 with field `causes`; `message` is the full sentence.
    pub fn invalid(resource: Resource, name: &str, message: String, causes: Vec<Value>) -> Self {
        let mut details = json!({"name": name, "kind": resource.kind(), "causes": causes});
        if !resource.group().is_empty() {
            details["group"] = json!(resource.group());
        }
        Self::new(422, "Invalid", message).with_details(details)
    }

    /// 403, as the authorizer words it. `name` is empty for a create.
    pub fn forbidden(resource: Resource, verb: &str, namespace: &str, name: &str) -> Self {
        let subject = if name.is_empty() {
            resource.qualified_resource()
        } else {
            format!("{} \"{name}\"", resource.qualified_resource())
        };
        let message = format!(
            "{subject} is forbidden: User \"tester\" cannot {verb} resource \"{}\" in API group \
             \"{}\" in the namespace \"{namespace}\"",
            resource.plural(),
            resource.group()
        );
        Self::new(403, "Forbidden", message).with_details(object_details(resource, name))
    }

    /// 429 from the server's in-flight limiter, asking to retry in a second.
    pub fn too_many_requests() -> Self {
        let mut error = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(json!({"retryAfterSeconds": 1}));
        error.retry_after = Some(1);
        error
    }

    /// 500 with one cause.
    pub fn internal(cause: &str) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {cause}"),
        )
        .with_details(json!({"causes": [{"message": cause}]}))
    }

    /// 503: the server (or its storage) cannot serve now.
    pub fn service_unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        )
    }

    /// Any other code, with the reason the API machinery associates with it.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Gone",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            504 => "Timeout",
            _ => "",
        };
        Self::new(code, reason, message)
    }

    /// 413 for a body over the server's limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 for a body (or patch) type the endpoint does not take.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted \
                 media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 404 for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 405 for a verb the path does not take.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 410 for a watch or list at a version older than the retained history.
    pub fn too_old_resource_version(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 410 for a continue token whose snapshot was compacted away.
    pub fn continue_token_expired() -> Self {
        Self::new(
            410,
            "Expired",
            "the continue token refers to a list snapshot that is no longer retained; start a \
             new list without it",
        )
    }

    /// 504 for a version the server has not reached.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        )
    }

    /// The `Status` object for this failure.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// The `Status` a successful delete answers with.
pub fn deleted(resource: Resource, name: &str, uid: &str) -> Value {
    let mut details = object_details(resource, name);
    details["uid"] = json!(uid);
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_status_has_code_and_reason() {
        let status = ApiError::too_old_resource_version(10, 20).to_status();
        assert_eq!(status["code"], 410);
        assert_eq!(status["reason"], "Expired");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["kind"], "Status");
        assert!(status.get("details").is_none());
    }

    #[test]
    fn object_failures_name_group_and_kind() {
        let status = ApiError::already_exists(Resource::EventsV1, "e1").to_status();
        assert_eq!(
            status["message"],
            "events.events.k8s.io \"e1\" already exists"
        );
        assert_eq!(
            status["details"],
            json!({"name": "e1", "group": "events.k8s.io", "kind": "events"})
        );
        let status = ApiError::not_found(Resource::Events, "e1").to_status();
        assert_eq!(status["message"], "events \"e1\" not found");
        assert_eq!(status["details"], json!({"name": "e1", "kind": "events"}));
        let busy = ApiError::too_many_requests();
        assert_eq!(busy.retry_after, Some(1));
        assert_eq!(busy.to_status()["details"]["retryAfterSeconds"], 1);
        assert!(
            ApiError::with_code(418, "teapot")
                .to_status()
                .get("reason")
                .is_none()
        );
    }
}
