//! Streaming watches.
//!
//! A watch response is HTTP 200 with a chunked body of newline-delimited
//! JSON events `{"type": …, "object": …}`. How it starts depends on the
//! requested resource version:
//!
//! * none or `0`: synthetic `ADDED` events for every matching object, then
//!   live changes;
//! * `N`: every retained change after `N`, then live changes — or, when `N`
//!   predates the retained history, a single `ERROR` event carrying a 410
//!   `Expired` status, after which the stream ends (the status code of the
//!   HTTP response stays 200, as with a real server);
//! * `sendInitialEvents=true`: like "none", followed by a bookmark annotated
//!   `k8s.io/initial-events-end`.
//!
//! Field selectors are applied to the object before and after each change,
//! so a pod that starts matching arrives as `ADDED` and one that stops
//! matching as `DELETED`, like the watch cache does. With
//! `allowWatchBookmarks=true` the stream carries periodic `BOOKMARK` events
//! holding the newest version the stream has accounted for (including
//! changes filtered out), which lets a client resume past them.
//!
//! Objects go out in the view the watch was opened on (events.k8s.io/v1
//! events converted from the stored core form) or, when the `Accept` header
//! asked for tables (`kubectl get -w`), each as a one-row `Table`.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

use crate::clock::now_s;
use crate::list::in_namespace;
use crate::objects::{Change, ChangeKind, VersionProblem};
use crate::query::{Options, RequestedVersion};
use crate::resource::Resource;
use crate::server::{Control, DropMode, Shared};
use crate::status::ApiError;
use crate::table::event_table;

/// A chunk of the response body, or the error that aborts the connection.
pub type BodyChunk = Result<Bytes, io::Error>;

/// Encodes one watch event line.
pub fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark_object(resource: Resource, rv: u64, initial_events_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_events_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    match resource {
        Resource::Pods => json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta,
                                 "spec": {"containers": null}, "status": {}}),
        Resource::Events => json!({"kind": "Event", "apiVersion": "v1", "metadata": meta,
                                   "involvedObject": {}, "source": {}, "firstTimestamp": null,
                                   "lastTimestamp": null, "eventTime": null,
                                   "reportingComponent": "", "reportingInstance": ""}),
        Resource::EventsV1 => json!({"kind": "Event", "apiVersion": "events.k8s.io/v1",
                                     "metadata": meta, "eventTime": null, "regarding": {},
                                     "deprecatedSource": {}, "deprecatedFirstTimestamp": null,
                                     "deprecatedLastTimestamp": null}),
    }
}

/// An object as this watch sends it: in the requested view, or as a one-row
/// `Table` when the client asked for tables.
fn shown<'a>(opts: &Options, object: &'a Value) -> Cow<'a, Value> {
    match opts.table {
        Some(include) => {
            let meta = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            let one = std::slice::from_ref(object);
            Cow::Owned(event_table(opts.resource, one, meta, include, now_s()))
        }
        None => opts.resource.view(object),
    }
}

/// What one watch sees of a change: the event type after filtering.
fn translate(change: &Change, namespace: Option<&str>, opts: &Options) -> Option<&'static str> {
    if !in_namespace(&change.key, namespace) {
        return None;
    }
    let before = change
        .previous
        .as_deref()
        .is_some_and(|p| opts.fields.matches(p));
    let after = opts.fields.matches(&change.object);
    match (change.kind, before, after) {
        (ChangeKind::Deleted, true, _) => Some("DELETED"),
        (ChangeKind::Deleted, false, _) => None,
        (_, true, true) => Some("MODIFIED"),
        (_, true, false) => Some("DELETED"),
        (_, false, true) => Some("ADDED"),
        (_, false, false) => None,
    }
}

/// State handed to the per-watch task.
struct WatchTask {
    shared: Arc<Shared>,
    namespace: Option<String>,
    opts: Options,
    initial: Vec<Bytes>,
    last_rv: u64,
    changes: broadcast::Receiver<Arc<Change>>,
    control: broadcast::Receiver<Control>,
    tx: mpsc::Sender<BodyChunk>,
}

/// Opens a watch: returns the receiver the HTTP body streams from.
pub async fn open_watch(
    shared: Arc<Shared>,
    namespace: Option<String>,
    opts: Options,
) -> Result<mpsc::Receiver<BodyChunk>, ApiError> {
    // While a test holds watches, new ones wait here, as if the server were
    // unreachable.
    let mut hold = shared.hold.subscribe();
    let _ = hold.wait_for(|held| !*held).await;

    let (tx, rx) = mpsc::channel(256);
    let task = {
        let store = opts.resource.store(&shared);
        let current = store.current_rv();
        let ns = namespace.as_deref();
        let mut initial = Vec::new();
        let synthetic = opts.send_initial_events
            || matches!(
                opts.version,
                RequestedVersion::Latest | RequestedVersion::Any
            );
        if synthetic {
            let snapshot = store
                .snapshot_at(current)
                .map_err(|_| ApiError::bad_request("snapshot unavailable"))?;
            for (key, obj) in &snapshot.objects {
                if in_namespace(key, ns) && opts.fields.matches(obj) {
                    initial.push(event_line("ADDED", &shown(&opts, obj)));
                }
            }
            if opts.send_initial_events {
                initial.push(event_line(
                    "BOOKMARK",
                    &bookmark_object(opts.resource, current, true),
                ));
            }
        } else if let RequestedVersion::At(rv) = opts.version {
            match store.changes_since(rv) {
                Ok(changes) => {
                    for change in changes {
                        if let Some(kind) = translate(&change, ns, &opts) {
                            initial.push(event_line(kind, &shown(&opts, &change.object)));
                        }
                    }
                }
                Err(problem) => {
                    let error = match problem {
                        VersionProblem::Compacted { oldest } => {
                            ApiError::too_old_resource_version(rv, oldest)
                        }
                        VersionProblem::InFuture { current } => {
                            ApiError::too_large_resource_version(rv, current)
                        }
                    };
                    drop(store);
                    let _ = tx.try_send(Ok(event_line("ERROR", &error.to_status())));
                    return Ok(rx);
                }
            }
        }
        WatchTask {
            shared: shared.clone(),
            namespace,
            opts,
            initial,
            last_rv: current,
            changes: store.subscribe(),
            control: shared.control.subscribe(),
            tx,
        }
    };
    tokio::spawn(task.run());
    Ok(rx)
}

/// Decrements the open-watch gauge when a watch ends, however it ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
        self.0.closed_watches.fetch_add(1, Ordering::SeqCst);
    }
}

impl WatchTask {
    async fn run(mut self) {
        self.shared.open_watches.fetch_add(1, Ordering::SeqCst);
        let _guard = OpenGuard(self.shared.clone());
        for line in std::mem::take(&mut self.initial) {
            if self.tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let deadline = self
            .opts
            .timeout_seconds
            .map(|s| Instant::now() + Duration::from_secs(s));
        let period = self.shared.options.bookmark_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            // Changes go first: a bookmark or drop requested after a write
            // must not overtake that write.
            let line = tokio::select! {
                biased;
                () = self.tx.closed() => return,
                change = self.changes.recv() => match change {
                    Ok(change) => {
                        self.last_rv = change.rv;
                        translate(&change, self.namespace.as_deref(), &self.opts)
                            .map(|kind| event_line(kind, &shown(&self.opts, &change.object)))
                    }
                    // A watcher that fell too far behind is closed; the
                    // client resumes from the last version it saw.
                    Err(_) => return,
                },
                control = self.control.recv() => match control {
                    Ok(Control::Drop(DropMode::Close)) | Err(broadcast::error::RecvError::Closed) => return,
                    Ok(Control::Drop(DropMode::Abort)) => {
                        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "watch aborted by test");
                        let _ = self.tx.send(Err(reset)).await;
                        return;
                    }
                    Ok(Control::Expire) => {
                        let error = ApiError::too_old_resource_version(self.last_rv, self.last_rv + 1);
                        let _ = self.tx.send(Ok(event_line("ERROR", &error.to_status()))).await;
                        return;
                    }
                    Ok(Control::Bookmark) => self.bookmark(),
                    Err(broadcast::error::RecvError::Lagged(_)) => None,
                },
                _ = ticker.tick() => self.bookmark(),
                () = sleep_until_opt(deadline) => return,
            };
            if let Some(line) = line
                && self.tx.send(Ok(line)).await.is_err()
            {
                return;
            }
        }
    }

    fn bookmark(&self) -> Option<Bytes> {
        self.opts.bookmarks.then(|| {
            event_line(
                "BOOKMARK",
                &bookmark_object(self.opts.resource, self.last_rv, false),
            )
        })
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_query;

    fn change(kind: ChangeKind, before: Option<&str>, after: &str) -> Change {
        let pod = |node: &str| Arc::new(json!({"spec": {"nodeName": node}}));
        Change {
            rv: 1,
            kind,
            key: "default/p".into(),
            object: pod(after),
            previous: before.map(pod),
        }
    }

    #[test]
    fn field_selector_turns_changes_into_added_and_deleted() {
        let opts =
            Options::from_params(&parse_query(Some("fieldSelector=spec.nodeName%3Da"))).unwrap();
        let t = |c: &Change| translate(c, None, &opts);
        assert_eq!(t(&change(ChangeKind::Added, None, "a")), Some("ADDED"));
        assert_eq!(t(&change(ChangeKind::Added, None, "b")), None);
        assert_eq!(
            t(&change(ChangeKind::Modified, Some(""), "a")),
            Some("ADDED")
        );
        assert_eq!(
            t(&change(ChangeKind::Modified, Some("a"), "a")),
            Some("MODIFIED")
        );
        assert_eq!(
            t(&change(ChangeKind::Modified, Some("a"), "b")),
            Some("DELETED")
        );
        assert_eq!(
            t(&change(ChangeKind::Deleted, Some("a"), "a")),
            Some("DELETED")
        );
        assert_eq!(t(&change(ChangeKind::Deleted, Some("b"), "b")), None);
        assert_eq!(
            translate(&change(ChangeKind::Added, None, "a"), Some("other"), &opts),
            None
        );
    }

    #[test]
    fn bookmark_lines_are_newline_terminated_pods() {
        let line = event_line("BOOKMARK", &bookmark_object(Resource::Pods, 42, true));
        assert!(line.ends_with(b"\n"));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], "BOOKMARK");
        assert_eq!(v["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(
            v["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
    }
}
