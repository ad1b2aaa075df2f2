//! Rate limits on posted Events: a token bucket per pod and one for the
//! node, checked when a finding is submitted (so what is over budget never
//! queues). Time is passed in, for tests.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

/// `burst` tokens, one more every `every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub every: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        if !limit.every.is_zero() {
            let gained = elapsed.as_secs_f64() / limit.every.as_secs_f64();
            self.tokens = (self.tokens + gained).min(f64::from(limit.burst));
        } else {
            self.tokens = f64::from(limit.burst);
        }
        self.at = now;
    }

    fn has_token(&self) -> bool {
        self.tokens >= 1.0
    }
}

/// Which budget said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    Pod,
    Node,
}

/// The per-pod buckets (bounded: the oldest pod is forgotten first) and
/// the node's.
#[derive(Debug)]
pub struct Limiter {
    per_pod: RateLimit,
    node_limit: RateLimit,
    node: Bucket,
    pods: HashMap<String, Bucket>,
    order: VecDeque<String>,
    max_pods: usize,
}

impl Limiter {
    pub fn new(per_pod: RateLimit, node: RateLimit, max_pods: usize, now: Instant) -> Self {
        Self {
            per_pod,
            node_limit: node,
            node: Bucket::full(node, now),
            pods: HashMap::new(),
            order: VecDeque::new(),
            max_pods: max_pods.max(1),
        }
    }

    /// Takes a token from `pod_uid`'s bucket and the node's, or neither.
    pub fn admit(&mut self, pod_uid: &str, now: Instant) -> Result<(), Limited> {
        self.node.refill(self.node_limit, now);
        if !self.pods.contains_key(pod_uid) {
            if self.order.len() == self.max_pods
                && let Some(old) = self.order.pop_front()
            {
                self.pods.remove(&old);
            }
            self.order.push_back(pod_uid.to_owned());
            self.pods
                .insert(pod_uid.to_owned(), Bucket::full(self.per_pod, now));
        }
        let limit = self.per_pod;
        let pod = self
            .pods
            .get_mut(pod_uid)
            .expect("inserted above when missing");
        pod.refill(limit, now);
        if !pod.has_token() {
            return Err(Limited::Pod);
        }
        if !self.node.has_token() {
            return Err(Limited::Node);
        }
        pod.tokens -= 1.0;
        self.node.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(now: Instant) -> Limiter {
        Limiter::new(
            RateLimit {
                burst: 2,
                every: Duration::from_secs(10),
            },
            RateLimit {
                burst: 3,
                every: Duration::from_secs(1),
            },
            2,
            now,
        )
    }

    #[test]
    fn a_pod_gets_its_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let mut l = limiter(t0);
        assert_eq!(l.admit("a", t0), Ok(()));
        assert_eq!(l.admit("a", t0), Ok(()));
        assert_eq!(l.admit("a", t0), Err(Limited::Pod));
        assert_eq!(l.admit("a", t0 + Duration::from_secs(9)), Err(Limited::Pod));
        assert_eq!(l.admit("a", t0 + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn the_node_budget_caps_all_pods_together() {
        let t0 = Instant::now();
        let mut l = limiter(t0);
        assert_eq!(l.admit("a", t0), Ok(()));
        assert_eq!(l.admit("a", t0), Ok(()));
        assert_eq!(l.admit("b", t0), Ok(()));
        assert_eq!(l.admit("b", t0), Err(Limited::Node));
        assert_eq!(l.admit("b", t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_refused_event_takes_no_token() {
        let t0 = Instant::now();
        let mut l = limiter(t0);
        l.admit("a", t0).unwrap();
        l.admit("a", t0).unwrap();
        // Pod a is out; its refusals leave the node's last token for b.
        assert_eq!(l.admit("a", t0), Err(Limited::Pod));
        assert_eq!(l.admit("a", t0), Err(Limited::Pod));
        assert_eq!(l.admit("b", t0), Ok(()));
    }

    #[test]
    fn the_oldest_pod_is_forgotten_past_the_bound() {
        let t0 = Instant::now();
        let mut l = limiter(t0);
        l.admit("a", t0).unwrap();
        l.admit("a", t0).unwrap();
        let later = t0 + Duration::from_secs(5);
        l.admit("b", later).unwrap();
        l.admit("c", later).unwrap();
        // a was forgotten when c came: it starts again with a full bucket.
        assert_eq!(l.admit("a", later), Ok(()));
    }
}
