//! `metav1.Status` failures, as the API server returns them.
//!
//! The same object appears in two places: as the body of a non-2xx HTTP
//! response, and as the `object` of a watch `ERROR` event (the 410 a client
//! receives when it resumes a watch from a compacted version).

use serde_json::{Value, json};

/// An API failure with its HTTP code and machine-readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// `Status.reason`, e.g. `Expired`, `NotFound`, `BadRequest`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// 400: the request itself is wrong (bad selector, bad continue token).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    /// 404 for a named pod.
    pub fn pod_not_found(name: &str) -> Self {
        Self::not_found("pods", name)
    }

    /// 404 for a missing object of `resource` (plural).
    pub fn not_found(resource: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{resource} \"{name}\" not found"),
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({path})"),
        }
    }

    /// 405 for verbs other than GET.
    pub fn method_not_allowed(method: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({method})"
            ),
        }
    }

    /// 410 for a watch or list at a version older than the retained history.
    pub fn too_old_resource_version(requested: u64, oldest: u64) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {requested} ({oldest})"),
        }
    }

    /// 410 for a continue token whose snapshot was compacted away.
    pub fn continue_token_expired() -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: "the continue token refers to a list snapshot that is no longer \
                      retained; start a new list without it"
                .to_owned(),
        }
    }

    /// 504 for a version the server has not reached.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self {
            code: 504,
            reason: "Timeout",
            message: format!(
                "Timeout: Too large resource version: {requested}, current: {current}"
            ),
        }
    }

    /// The `Status` object for this failure.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
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
    }
}
