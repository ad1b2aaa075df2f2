//! A Kubernetes API server for pods and events, for tests.
//!
//! It speaks the real wire protocol on plain HTTP (`127.0.0.1`), so a client
//! built from an ordinary kubeconfig — the agent's `kube::Client`, or the
//! real `kubectl` — exercises its real code paths against it:
//!
//! * `GET /api/v1/pods` and `/api/v1/namespaces/{ns}/pods[/{name}]`: lists
//!   with `resourceVersion` / `resourceVersionMatch`, `limit` + `continue`
//!   (consistent snapshots), `fieldSelector` (`spec.nodeName=…` and the
//!   other pod fields the real server supports), `labelSelector` accepted
//!   and ignored;
//! * the same list paths with `watch=true`: newline-delimited `ADDED`,
//!   `MODIFIED`, `DELETED`, `BOOKMARK` and `ERROR` events honouring
//!   `resourceVersion`, `allowWatchBookmarks` and `timeoutSeconds`;
//! * 410 Gone when a version predates the bounded history: as an `ERROR`
//!   event with an `Expired` status on watches, as HTTP 410 for continue
//!   tokens;
//! * Events in one store with two views, converted like the real server
//!   converts them: core/v1 (`/api/v1/events`,
//!   `/api/v1/namespaces/{ns}/events[/{name}]`: `involvedObject`,
//!   `message`, `source`, …) and events.k8s.io/v1
//!   (`/apis/events.k8s.io/v1/events`,
//!   `/apis/events.k8s.io/v1/namespaces/{ns}/events[/{name}]`: `regarding`,
//!   `note`, `deprecated*`, …). Both take get, list (same paging), watch,
//!   `POST` (201; `generateName`; 409 `AlreadyExists`), `PATCH` as a JSON
//!   merge patch (`application/merge-patch+json`, and
//!   `application/strategic-merge-patch+json` applied the same way; 404,
//!   415 otherwise), `PUT` and `DELETE`, with each view's field selectors
//!   (`involvedObject.*` / `regarding.*`, `reason`, `type`, `source`,
//!   `reportingComponent` / `reportingController`, `metadata.*`). Writes
//!   are validated as the real server does (k8s
//!   `pkg/apis/core/validation/events.go`): 422 `Invalid` with field
//!   `causes`, strict for events.k8s.io/v1, lenient for core/v1;
//! * a server-side `Table` for events when the `Accept` header asks for
//!   one (`as=Table;v=v1;g=meta.k8s.io`, what `kubectl get` sends), with
//!   the real printer's columns, also on watches;
//! * `/version`, `/api`, `/api/v1`, `/apis`, `/apis/events.k8s.io` and
//!   `/apis/events.k8s.io/v1` discovery.
//!
//! Failures are `Status` objects with the real `reason`, `code` and
//! `details`. Tests drive it like a cluster would change:
//! [`TestApiServer::create_pod`], kubelet-style
//! [`TestApiServer::update_status`] edits, graceful
//! [`TestApiServer::request_deletion`], [`TestApiServer::delete_pod`] and
//! [`TestApiServer::inject_raw`] for malformed objects,
//! [`TestApiServer::record_event`] and [`TestApiServer::kubelet_started`]
//! for components' core/v1 events; they read what clients posted with
//! [`TestApiServer::events_v1`] and [`TestApiServer::events_core`] (events
//! outlive their pods, as on a real cluster); and they can break the
//! connection path with [`TestApiServer::drop_watches`],
//! [`TestApiServer::hold_watches`], [`TestApiServer::expire_watches`] and
//! [`TestApiServer::compact`], or make event writes fail with
//! [`TestApiServer::reject_event_writes`] (403, 422, 429 with
//! `Retry-After`, 500, 503, …) until [`TestApiServer::accept_event_writes`].

pub mod clock;
mod discovery;
mod driver;
mod event_api;
mod event_forms;
mod event_validation;
mod events;
mod faults;
mod kubeconfig;
pub use kubeconfig::render as render_kubeconfig;
mod list;
mod merge_patch;
mod objects;
mod pod_status;
mod query;
mod resource;
mod routes;
mod selector;
mod server;
mod status;
mod table;
mod validation_names;
mod watch;

pub use driver::DriverError;
pub use pod_status::StatusEditor;
pub use server::{DropMode, RequestRecord, ServerOptions, StoppedApiServer, TestApiServer};

/// Builds a runtime container id as the kubelet reports it:
/// `containerd://` followed by 64 hex digits derived from `seed`.
pub fn containerd_id(seed: &str) -> String {
    format!("containerd://{}", hex_id(seed))
}

/// 64 lowercase hex digits derived deterministically from `seed`, the shape
/// of a container id in a cgroup path.
pub fn hex_id(seed: &str) -> String {
    let mut out = String::with_capacity(64);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..4u64 {
        for b in seed.bytes() {
            state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        state ^= round.wrapping_mul(0xff51_afd7_ed55_8ccd);
        state = state.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        out.push_str(&format!("{state:016x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_ids_are_64_hex_and_seeded() {
        let a = super::hex_id("a");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, super::hex_id("a"));
        assert_ne!(a, super::hex_id("b"));
        assert!(super::containerd_id("a").starts_with("containerd://"));
    }
}
