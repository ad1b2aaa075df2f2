//! A Job pod failed by its legacy sidecar. A legacy sidecar is a regular
//! container, so its exit status counts toward the pod's phase: when it
//! ends non-zero (SIGKILLed after a Linkerd `/shutdown` hung on a lingering
//! connection and the liveness probe killed it, linkerd/linkerd2#8033; or
//! a crash), the pod fails with restartPolicy Never although every main
//! container exited 0, and the Job counts a failure that is not the
//! work's. A native sidecar's exit does not count (KEP-753). Reported
//! under T5, whose verdict it leaves alone (T5 covers native sidecars).

use lifecycle_recording::pods::ContainerKind;

use super::{SenderClass, TerminationAudit, Trigger};
use crate::{
    finding::{Draft, FindingKind, Judgement, RuleId, Severity},
    fmt::secs,
    timeline::PodTimeline,
};

/// The finding for each legacy sidecar whose non-zero exit failed a Job
/// pod whose main containers all exited 0.
pub fn judge(tl: &PodTimeline, audit: &TerminationAudit) -> Judgement {
    let mut j = Judgement::default();
    let Trigger::JobCompletion { at: done } = audit.trigger else {
        return j;
    };
    let mut apps = audit
        .containers
        .iter()
        .filter(|c| c.main && !c.kind.is_some_and(|k| k.is_sidecar()))
        .peekable();
    if apps.peek().is_none() || !apps.all(|c| c.exit.is_some_and(|x| x.code == 0)) {
        return j;
    }
    let failed = tl
        .phases
        .iter()
        .rev()
        .find(|(at, _)| at.ns >= done.ns)
        .is_some_and(|(_, phase)| phase == "Failed");
    for c in audit
        .containers
        .iter()
        .filter(|c| c.kind == Some(ContainerKind::LegacySidecar))
    {
        let Some(exit) = c.exit.filter(|x| x.code != 0) else {
            continue;
        };
        let how = match (&c.sigkill, &c.stop_signal) {
            (Some(kill), Some(stop)) if kill.sender == SenderClass::Runtime => {
                let asked = tl.deletions.iter().any(|d| d.at.ns <= stop.at.ns);
                let why = if asked || stop.sender != SenderClass::Runtime {
                    ""
                } else {
                    "; no delete asked for that stop, and the kubelet never stops a legacy sidecar of a Job: a probe kill"
                };
                format!(
                    "SIGKILL from the container runtime {} after its {}{why}",
                    secs(kill.at.ns - stop.at.ns),
                    stop.name
                )
            }
            (Some(kill), _) => format!("{} from {}", kill.name, kill.sender_comm),
            (None, _) => "by itself".to_owned(),
        };
        let phase = if failed {
            "; the API reports the pod Failed"
        } else {
            ""
        };
        j.finding(
            Draft::new(
                RuleId::T5,
                FindingKind::JobFailedBySidecar,
                Severity::Warning,
                Some(&c.container),
                format!(
                    "the Job pod failed because of its legacy sidecar {}: it exited {} ({how}) {} after the main containers all exited 0{phase}; a legacy sidecar's exit counts toward the phase, a native sidecar's would not (T5)",
                    c.container,
                    exit.code,
                    secs(exit.at.ns - done.ns)
                ),
            )
            .with_evidence([
                Some(done.seq),
                c.stop_signal.as_ref().map(|s| s.at.seq),
                Some(exit.at.seq),
            ]),
        );
    }
    j
}
