//! The posting task: takes drafts off the queue and creates
//! `events.k8s.io/v1` Events, or adds a repeat to the series of the Event
//! already posted for the same key; retries what may succeed later with
//! backoff, gives up on the rest, counts everything.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tracing::{debug, warn};

use super::{
    EventsConfig,
    counters::{DropReason, PostError},
    draft::{EventDraft, SeriesKey},
    queue::{Queue, Queued},
};

/// `reportingController` of every Event.
pub const CONTROLLER: &str = "lifecycle-agent";

/// How long a posted Event takes repeats into its series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Series remembered at most (the oldest forgotten first).
const MAX_SERIES: usize = 4096;

/// One Event posted, for its repeats.
#[derive(Debug)]
struct Series {
    namespace: String,
    name: String,
    count: u32,
    first: Instant,
}

/// What one attempt did.
enum Attempt {
    Created(String),
    Patched,
    Failed(PostError),
}

pub struct Poster {
    client: kube::Client,
    queue: Arc<Queue>,
    config: EventsConfig,
    series: HashMap<SeriesKey, Series>,
    last_logged: HashMap<PostError, Instant>,
    /// The time in the last Event name: names go strictly up, so the
    /// findings of one audit (submitted at one instant) do not collide.
    last_name_ns: i128,
}

impl Poster {
    pub fn new(client: kube::Client, queue: Arc<Queue>, config: EventsConfig) -> Self {
        Self {
            client,
            queue,
            config,
            series: HashMap::new(),
            last_logged: HashMap::new(),
            last_name_ns: 0,
        }
    }

    /// Until the queue is closed and empty.
    pub async fn run(mut self) {
        while let Some(item) = self.queue.pop().await {
            self.post(item).await;
            self.queue.done();
        }
    }

    async fn post(&mut self, item: Queued) {
        let counters = self.queue.counters.clone();
        let mut delay = self.config.retry_base;
        for attempt in 1..=self.config.max_attempts.max(1) {
            match self.attempt(&item).await {
                Attempt::Created(name) => {
                    counters.created();
                    self.remember(&item.draft, name);
                    return;
                }
                Attempt::Patched => {
                    counters.patched();
                    return;
                }
                Attempt::Failed(error) => {
                    counters.failed(error);
                    self.log_failure(&item.draft, error);
                    if !error.retryable() {
                        counters.dropped(DropReason::Rejected, 1);
                        return;
                    }
                    if attempt == self.config.max_attempts {
                        break;
                    }
                    counters.retried();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.retry_max);
                }
            }
        }
        counters.dropped(DropReason::RetriesExhausted, 1);
    }

    /// A repeat within the window patches the series; anything else (or a
    /// patch of an Event that is gone) creates an Event.
    async fn attempt(&mut self, item: &Queued) -> Attempt {
        let key = item.draft.series_key();
        let now = Instant::now();
        if let Some(s) = self.series.get(&key)
            && now.duration_since(s.first) < SERIES_WINDOW
        {
            let count = s.count + 1;
            let api: Api<Event> = Api::namespaced(self.client.clone(), &s.namespace);
            let patch = serde_json::json!({
                "series": {"count": count, "lastObservedTime": micro_time(item.observed_unix_ns)}
            });
            let name = s.name.clone();
            match self
                .call(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)))
                .await
            {
                Ok(_) => {
                    if let Some(s) = self.series.get_mut(&key) {
                        s.count = count;
                    }
                    return Attempt::Patched;
                }
                Err(PostError::NotFound) => {
                    self.series.remove(&key);
                }
                Err(e) => return Attempt::Failed(e),
            }
        }
        self.last_name_ns = item.observed_unix_ns.max(self.last_name_ns + 1);
        let event = self.event(item, self.last_name_ns);
        let name = event.metadata.name.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &item.draft.namespace);
        match self.call(api.create(&PostParams::default(), &event)).await {
            Ok(_) => Attempt::Created(name),
            Err(e) => Attempt::Failed(e),
        }
    }

    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, PostError> {
        match tokio::time::timeout(self.config.request_timeout, request).await {
            Err(_) => Err(PostError::Timeout),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }

    fn event(&self, item: &Queued, name_ns: i128) -> Event {
        let d = &item.draft;
        Event {
            metadata: ObjectMeta {
                name: Some(event_name(&d.pod, name_ns)),
                namespace: Some(d.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(micro_time(item.observed_unix_ns)),
            reporting_controller: Some(CONTROLLER.to_owned()),
            reporting_instance: Some(self.config.node_name.clone()),
            action: Some(d.action.to_owned()),
            reason: Some(d.reason.clone()),
            type_: Some(d.event_type.as_str().to_owned()),
            note: Some(d.note.clone()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(d.namespace.clone()),
                name: Some(d.pod.clone()),
                uid: Some(d.pod_uid.clone()),
                field_path: d.field_path.clone(),
                ..ObjectReference::default()
            }),
            ..Event::default()
        }
    }

    fn remember(&mut self, draft: &EventDraft, name: String) {
        let now = Instant::now();
        if self.series.len() >= MAX_SERIES {
            self.series
                .retain(|_, s| now.duration_since(s.first) < SERIES_WINDOW);
            if self.series.len() >= MAX_SERIES
                && let Some(oldest) = self
                    .series
                    .iter()
                    .min_by_key(|(_, s)| s.first)
                    .map(|(k, _)| k.clone())
            {
                self.series.remove(&oldest);
            }
        }
        self.series.insert(
            draft.series_key(),
            Series {
                namespace: draft.namespace.clone(),
                name,
                count: 1,
                first: now,
            },
        );
    }

    /// Once per error kind per minute at warn; the rest at debug.
    fn log_failure(&mut self, draft: &EventDraft, error: PostError) {
        let now = Instant::now();
        let due = self
            .last_logged
            .get(&error)
            .is_none_or(|at| now.duration_since(*at) >= Duration::from_secs(60));
        if due {
            self.last_logged.insert(error, now);
            warn!(
                error = error.label(),
                retryable = error.retryable(),
                namespace = %draft.namespace,
                pod = %draft.pod,
                reason = %draft.reason,
                "cannot post a Kubernetes Event (logged once a minute per error)"
            );
        } else {
            debug!(error = error.label(), pod = %draft.pod, "cannot post a Kubernetes Event");
        }
    }
}

/// The error kind of a failed request.
pub fn classify(error: &kube::Error) -> PostError {
    match error {
        kube::Error::Api(status) => PostError::from_code(status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => PostError::Unreachable,
        _ => PostError::Other,
    }
}

/// `<pod>.<unix ns in hex>`, as client-go names Events, within the 253
/// characters of a name.
pub fn event_name(pod: &str, unix_ns: i128) -> String {
    let suffix = format!(".{:x}", unix_ns.max(0));
    let mut end = pod.len().min(253 - suffix.len());
    while !pod.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &pod[..end])
}

fn micro_time(unix_ns: i128) -> MicroTime {
    MicroTime(Timestamp::from_nanosecond(unix_ns).unwrap_or(Timestamp::UNIX_EPOCH))
}
