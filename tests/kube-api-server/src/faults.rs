//! Injected failures of event writes, for testing how a client copes with
//! an API server that refuses, throttles or breaks.
//!
//! While armed, every write to events (POST, PATCH, PUT or DELETE, through
//! either API version) is answered with the chosen code and a `Status` body
//! shaped like the real server's for that code, before the request is
//! decoded or validated; nothing is stored. Reads are not affected. The requests still appear
//! in [`TestApiServer::requests`].

use serde_json::{Value, json};

use crate::resource::Resource;
use crate::server::{Shared, TestApiServer};
use crate::status::ApiError;

/// What the test asked event writes to answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteFault {
    code: u16,
    /// Writes still to reject; `None` until cleared.
    remaining: Option<usize>,
}

impl Shared {
    /// Consumes one injected failure, if any is armed.
    pub(crate) fn take_event_fault(&self) -> Option<u16> {
        let mut armed = self.event_faults.lock().unwrap_or_else(|e| e.into_inner());
        let fault = (*armed)?;
        match fault.remaining {
            None => {}
            Some(0) => {
                *armed = None;
                return None;
            }
            Some(1) => *armed = None,
            Some(n) => {
                *armed = Some(WriteFault {
                    remaining: Some(n - 1),
                    ..fault
                });
            }
        }
        Some(fault.code)
    }
}

impl TestApiServer {
    /// Makes the next `count` writes to events (all of them until
    /// [`Self::accept_event_writes`] when `count` is `None`) fail with HTTP
    /// `code` and the matching `Status`: 403 `Forbidden` (RBAC denial), 422
    /// `Invalid` (a cause on `metadata.name`), 429 `TooManyRequests` (with
    /// `Retry-After: 1`), 500 `InternalError`, 503 `ServiceUnavailable`;
    /// other codes get the reason the API machinery gives them.
    ///
    /// # Panics
    ///
    /// If `code` is not a 4xx or 5xx status.
    pub fn reject_event_writes(&self, code: u16, count: Option<usize>) {
        assert!(
            (400..600).contains(&code),
            "an injected failure needs a 4xx or 5xx code, not {code}"
        );
        let fault = WriteFault {
            code,
            remaining: count,
        };
        *self
            .shared
            .event_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = (count != Some(0)).then_some(fault);
    }

    /// Ends [`Self::reject_event_writes`]: writes are served again.
    pub fn accept_event_writes(&self) {
        *self
            .shared
            .event_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The failure a write answers with while `code` is injected. `name` is
/// empty when the request does not name the object (a create whose body
/// could not be read).
pub(crate) fn injected(
    code: u16,
    resource: Resource,
    verb: &str,
    namespace: &str,
    name: &str,
) -> ApiError {
    match code {
        403 => ApiError::forbidden(resource, verb, namespace, name),
        422 => {
            let cause = json!({"reason": "FieldValueInvalid", "field": "metadata.name",
                               "message": format!("Invalid value: {name:?}: rejected by the test server")});
            let message = format!(
                "{} \"{name}\" is invalid: metadata.name: Invalid value: {name:?}: rejected by \
                 the test server",
                resource.qualified_kind()
            );
            ApiError::invalid(resource, name, message, vec![cause])
        }
        429 => ApiError::too_many_requests(),
        500 => ApiError::internal("injected by the test server"),
        503 => ApiError::service_unavailable(),
        other => ApiError::with_code(other, format!("injected failure with code {other}")),
    }
}

/// The object name a create body carries, for error messages.
pub(crate) fn body_name(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
