//! A kubelet restart during a termination. The kubelet does not remember
//! a termination across a restart: its new run finds the pod deleting and
//! stops its containers again, from the start, with the full grace ("If
//! the kubelet or the container runtime's management service is restarted
//! while waiting for processes to terminate, the cluster retries from the
//! start including the full original grace period", Kubernetes docs, Pod
//! Lifecycle, "Termination of Pods"), and the whole termination may last
//! longer than G. Whether PID 1 gets its stop signal a second time is the
//! runtime's choice: containerd 1.6 remembers it sent one and skips it
//! ("Skipping the sending of signal … because a prior stop with timeout>0
//! request already sent the signal", measured here), others send it again.
//! Evidence: the kubelet's `Starting` Event on the Node (recorded as
//! `kubelet_started` for each of the node's pods). The deadline then counts
//! from the retry (the repeated stop signal, else the restart's whole
//! second, rounded up); X2 does not report a repeated signal.

use lifecycle_recording::time::NS_PER_S;
use serde::{Deserialize, Serialize};

use super::ContainerTermination;
use crate::timeline::{At, PodTimeline, SenderClass};

/// The agent may see the Event this long after the restart (API latency
/// and the watch), besides its whole-second time.
const EVENT_LAG_NS: i64 = 10 * NS_PER_S;

/// A kubelet restart during a termination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeletRestart {
    /// When the agent saw the kubelet's `Starting` Event.
    pub seen: At,
    /// The Event's time, whole Unix seconds.
    pub event_s: Option<i64>,
    /// The restarted kubelet's retry: the first repeated stop signal from
    /// the runtime after the restart; `None` when every container had
    /// stopped before it.
    pub retry: Option<At>,
}

impl KubeletRestart {
    /// The earliest instant the restart may have happened.
    pub fn earliest_ns(&self) -> i64 {
        match self.event_s {
            Some(s) => s * NS_PER_S,
            None => self.seen.ns - EVENT_LAG_NS,
        }
    }

    /// When the retry began, as late as the evidence allows: the repeated
    /// stop signal, else the end of the Event's whole second (or when the
    /// agent saw it).
    pub fn retry_ns(&self) -> i64 {
        match (self.retry, self.event_s) {
            (Some(retry), _) => retry.ns,
            (None, Some(s)) => (s + 1) * NS_PER_S,
            (None, None) => self.seen.ns,
        }
    }
}

/// The first kubelet start between `start` (less `slack_ns`) and `deadline`,
/// with the retry it led to.
pub fn find(
    tl: &PodTimeline,
    start: i64,
    deadline: i64,
    slack_ns: i64,
    containers: &[ContainerTermination],
) -> Option<KubeletRestart> {
    let (seen, event_s) = tl
        .kubelet_starts
        .iter()
        .copied()
        .find(|(seen, s)| match s {
            Some(s) => (s + 1) * NS_PER_S >= start - slack_ns && s * NS_PER_S <= deadline,
            None => seen.ns >= start - slack_ns && seen.ns <= deadline + EVENT_LAG_NS,
        })?;
    let mut restart = KubeletRestart {
        seen,
        event_s,
        retry: None,
    };
    let from = restart.earliest_ns() - slack_ns;
    restart.retry = containers
        .iter()
        .flat_map(|c| &c.repeated_stop_signals)
        .filter(|s| s.sender == SenderClass::Runtime && s.at.ns >= from)
        .map(|s| s.at)
        .min_by_key(|at| (at.ns, at.seq));
    Some(restart)
}
