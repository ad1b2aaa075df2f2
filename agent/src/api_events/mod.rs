//! Findings as Kubernetes Events (`events.k8s.io/v1`), where people look
//! first: `kubectl describe pod`, `kubectl get events`, `kubectl events`.
//!
//! * [`draft`]: which findings of an audit get an Event and what it says
//!   (pure);
//! * [`limit`]: the per-pod and node token buckets, checked on submit;
//! * [`queue`]: the bounded queue the event loop pushes to without
//!   waiting (the oldest is dropped when full);
//! * [`post`]: the task that creates Events, patches repeats into their
//!   `series`, retries with backoff and counts everything ([`counters`]).
//!
//! A pod that is already deleted still gets its Event: `regarding` names
//! its uid, and Events outlive pods by the API server's event TTL.

pub mod config;
pub mod counters;
pub mod draft;
pub mod limit;
pub mod post;
pub mod queue;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use crate::{audit::PodAudit, export::seen::SeenSet};
pub use config::{EventsArgs, EventsConfig};
use counters::Counters;
pub use counters::{DropReason, EventCounts, PostError};
use draft::Skipped;
use limit::{Limited, Limiter};
use queue::{Queue, Queued};

/// Pods whose budgets are remembered at most.
const LIMITED_PODS: usize = 16_384;
/// Findings remembered as posted (an audit repeated is not posted twice).
const POSTED_REMEMBERED: usize = 65_536;

/// The daemon's handle: submit audits, read counts, shut down.
pub struct ApiEvents {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    limiter: Limiter,
    include_info: bool,
    /// Pods whose startup findings went out with their startup audit.
    startups: SeenSet,
    /// Findings already submitted (by a hash of pod, rule, kind, container
    /// and message).
    posted: SeenSet,
    task: JoinHandle<()>,
}

impl ApiEvents {
    /// Starts the posting task on the current tokio runtime.
    pub fn start(client: kube::Client, config: EventsConfig) -> Self {
        let counters = Arc::new(Counters::default());
        let queue = Arc::new(Queue::new(config.queue_capacity, counters.clone()));
        let limiter = Limiter::new(config.per_pod, config.node, LIMITED_PODS, Instant::now());
        let include_info = config.include_info;
        let task = tokio::spawn(post::Poster::new(client, queue.clone(), config).run());
        Self {
            queue,
            counters,
            limiter,
            include_info,
            startups: SeenSet::new(LIMITED_PODS),
            posted: SeenSet::new(POSTED_REMEMBERED),
            task,
        }
    }

    /// Queues the Events `audit`'s findings call for; never waits.
    pub fn submit(&mut self, audit: &PodAudit, now_unix_ns: i128) {
        let startup_posted = self.startups.contains(&audit.pod.uid);
        if audit.completed_by == crate::audit::Completion::StartupComplete {
            self.startups.insert(&audit.pod.uid);
        }
        let (drafts, skipped) = draft::drafts(audit, self.include_info, startup_posted);
        for s in skipped {
            match s {
                Skipped::Info => self.counters.filtered_info(),
                Skipped::NoPod => self.counters.dropped(DropReason::NoPod, 1),
            }
        }
        let now = Instant::now();
        for d in drafts {
            if !self.posted.insert(&format!("{:016x}", d.identity)) {
                continue;
            }
            match self.limiter.admit(&d.pod_uid, now) {
                Ok(()) => self.queue.push(Queued {
                    draft: d,
                    observed_unix_ns: now_unix_ns,
                }),
                Err(Limited::Pod) => self.counters.dropped(DropReason::RateLimitedPod, 1),
                Err(Limited::Node) => self.counters.dropped(DropReason::RateLimitedNode, 1),
            }
        }
    }

    pub fn counts(&self) -> EventCounts {
        self.counters.snapshot()
    }

    /// Posts what waits within `within`; what is left is dropped
    /// (`shutdown`). The final counts.
    pub async fn shutdown(mut self, within: Duration) -> EventCounts {
        self.queue.close();
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            self.task.abort();
            let left = self.queue.drain();
            self.counters.dropped(DropReason::Shutdown, left as u64);
        }
        self.counters.snapshot()
    }
}
