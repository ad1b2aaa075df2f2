//! Sidecars squeezed by the grace period. With ordered termination a
//! native sidecar gets its stop signal only after the app (and the later
//! sidecars) exited; an app that uses nearly all of G leaves them less
//! than the kubelet's 2 s minimum, which the kubelet then grants before
//! SIGKILL, so they stop on the minimum and not on their own drain. Not a
//! violation (T3 holds, and at the deadline the order collapses by
//! design): an advisory, one per pod, naming each sidecar and what it had,
//! when the main containers exited less than 2 s before the deadline.

use super::{StopOrder, TerminationAudit, kill::MIN_TIMEOUT_NS};
use crate::{
    finding::{Draft, FindingKind, Judgement, RuleId, Severity},
    fmt::secs,
};

/// The advisory when native sidecars got their stop signal with less than
/// 2 s of the grace left.
pub fn judge(audit: &TerminationAudit) -> Judgement {
    let mut j = Judgement::default();
    let (StopOrder::NativeOrdered, Some(deadline), Some(start)) =
        (audit.order, audit.deadline, audit.kubelet_start)
    else {
        return j;
    };
    let squeezed: Vec<(String, i64, u64)> = audit
        .containers
        .iter()
        .filter(|c| c.kind == Some(lifecycle_recording::pods::ContainerKind::NativeSidecar))
        .filter_map(|c| {
            let stop = c.stop_signal.as_ref()?;
            let left = deadline - stop.at.ns;
            (left < MIN_TIMEOUT_NS).then(|| (c.container.clone(), left.max(0), stop.at.seq))
        })
        .collect();
    let last_main = audit
        .containers
        .iter()
        .filter(|c| c.main)
        .filter_map(|c| c.exit.map(|x| x.at.ns))
        .max();
    // Only when the main containers themselves used the grace up: a sidecar
    // held back by something else (kubelet #125880, T7) is that rule's.
    let used_up = last_main.is_some_and(|x| deadline - x < MIN_TIMEOUT_NS);
    if squeezed.is_empty() || !used_up {
        return j;
    }
    let names: Vec<String> = squeezed
        .iter()
        .map(|(name, left, _)| format!("{name} ({} left)", secs(*left)))
        .collect();
    let used = last_main.map_or_else(String::new, |x| {
        format!(
            "; the main containers used {} of G = {} s",
            secs(x - start),
            audit.grace_s
        )
    });
    j.finding(
        Draft::new(
            RuleId::T3,
            FindingKind::SidecarsShortOfTime,
            Severity::Info,
            None,
            format!(
                "{} sidecar(s) had less than 2 s of the grace left at their stop signal: {}{used}; the kubelet grants each its 2 s minimum, then SIGKILL (T3 held)",
                squeezed.len(),
                names.join(", ")
            ),
        )
        .with_evidence(squeezed.iter().map(|(_, _, seq)| Some(*seq))),
    );
    j
}
