//! What happened to the Events: posted, failed attempts, retried, dropped
//! and filtered, by label; shared by the submitting side and the posting
//! task, read by the metrics and the exit summary.

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::export::telemetry::api_events::EventCounts;

/// Why an attempt to post failed (the `lifecycle.k8s_event.error` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostError {
    /// 401: the credentials were refused.
    Unauthorized,
    /// 403: RBAC does not allow it.
    Forbidden,
    /// 400/422: the server found the Event invalid.
    Invalid,
    /// 404: the namespace (on create) or the Event (on patch) is gone.
    NotFound,
    /// 409: the name is taken.
    Conflict,
    /// 429: the server throttled the agent.
    TooManyRequests,
    /// 5xx.
    ServerError,
    /// No answer in time.
    Timeout,
    /// No connection (the API server is down or unreachable).
    Unreachable,
    /// Anything else the client reported.
    Other,
}

impl PostError {
    pub const ALL: [Self; 10] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::Invalid,
        Self::NotFound,
        Self::Conflict,
        Self::TooManyRequests,
        Self::ServerError,
        Self::Timeout,
        Self::Unreachable,
        Self::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::TooManyRequests => "too_many_requests",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Other => "other",
        }
    }

    /// Worth another attempt: the server may take it later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::TooManyRequests | Self::ServerError | Self::Timeout | Self::Unreachable
        )
    }

    /// From an HTTP status code of a failed request.
    pub fn from_code(code: u16) -> Self {
        match code {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            400 | 422 => Self::Invalid,
            404 => Self::NotFound,
            409 => Self::Conflict,
            429 => Self::TooManyRequests,
            500..=599 => Self::ServerError,
            _ => Self::Other,
        }
    }
}

/// Why an Event was never posted (the `lifecycle.k8s_event.drop_reason`
/// label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full: the oldest waiting Event made room.
    QueueFull,
    /// The pod's budget was spent.
    RateLimitedPod,
    /// The node's budget was spent.
    RateLimitedNode,
    /// The server refused it for good (403, 422, ...).
    Rejected,
    /// Every attempt failed.
    RetriesExhausted,
    /// Still waiting when the agent stopped.
    Shutdown,
    /// The audit had no pod name to name in `regarding`.
    NoPod,
}

impl DropReason {
    pub const ALL: [Self; 7] = [
        Self::QueueFull,
        Self::RateLimitedPod,
        Self::RateLimitedNode,
        Self::Rejected,
        Self::RetriesExhausted,
        Self::Shutdown,
        Self::NoPod,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::RateLimitedPod => "rate_limited_pod",
            Self::RateLimitedNode => "rate_limited_node",
            Self::Rejected => "rejected",
            Self::RetriesExhausted => "retries_exhausted",
            Self::Shutdown => "shutdown",
            Self::NoPod => "no_pod",
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Counters {
    created: AtomicU64,
    patched: AtomicU64,
    retries: AtomicU64,
    filtered_info: AtomicU64,
    queued: AtomicU64,
    failed: [AtomicU64; PostError::ALL.len()],
    dropped: [AtomicU64; DropReason::ALL.len()],
}

fn index<T: PartialEq>(all: &[T], item: &T) -> usize {
    all.iter().position(|x| x == item).unwrap_or(0)
}

impl Counters {
    pub fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    pub fn patched(&self) {
        self.patched.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn filtered_info(&self) {
        self.filtered_info.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, error: PostError) {
        self.failed[index(&PostError::ALL, &error)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason, n: u64) {
        self.dropped[index(&DropReason::ALL, &reason)].fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_queued(&self, n: usize) {
        self.queued.store(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> EventCounts {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EventCounts {
            created: load(&self.created),
            patched: load(&self.patched),
            retries: load(&self.retries),
            filtered_info: load(&self.filtered_info),
            queued: load(&self.queued),
            failed: PostError::ALL
                .iter()
                .zip(&self.failed)
                .map(|(e, n)| (e.label(), load(n)))
                .collect(),
            dropped: DropReason::ALL
                .iter()
                .zip(&self.dropped)
                .map(|(r, n)| (r.label(), load(n)))
                .collect(),
        }
    }
}
