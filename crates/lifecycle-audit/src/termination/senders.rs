//! X1: who may stop a container. The container runtime sends a container's
//! stop signal and SIGKILL; so may a process of the same container (a
//! preStop `kill`, tini) and the kernel. Anyone else, at any time, is
//! reported: a host process (an operator's `kill`, systemd at a node
//! shutdown, an agent) or another container of the pod. Outside a pod
//! termination such a signal skips everything the kubelet does for a stop:
//! no preStop hook, no sidecar order, no grace period.

use super::{
    TerminationAudit,
    measure::{SIGKILL, stop_signals},
};
use crate::{
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::offset,
    timeline::{PodTimeline, SenderClass, SignalObs},
};

/// Judges X1 over every stop signal and SIGKILL sent to a container's PID 1
/// in the recording, during a termination or not.
pub fn judge(tl: &PodTimeline, termination: Option<&TerminationAudit>) -> Judgement {
    let mut j = Judgement::default();
    let t0 = termination.and_then(|t| t.t0).map(|at| at.ns);
    let mut checked = 0;
    for s in &tl.signals {
        let Some(c) = tl.container(&s.container) else {
            continue;
        };
        let stops = s.signal == SIGKILL || stop_signals(c).contains(&s.signal);
        if !stops || s.sender == SenderClass::Kernel || !tl.is_pid1(s.target_pid, s.target_start_ns)
        {
            continue;
        }
        checked += 1;
        if !matches!(
            s.sender,
            SenderClass::HostProcess | SenderClass::OtherContainer
        ) {
            continue;
        }
        let when = match t0 {
            Some(t0) if s.at.ns >= t0 => format!(" at t0{}", offset(s.at.ns - t0)),
            _ => "; no pod termination was under way, so no preStop hook, sidecar order or \
                  grace period applied"
                .to_owned(),
        };
        j.finding(
            Draft::new(
                RuleId::X1,
                FindingKind::UnexpectedSender,
                Severity::Warning,
                Some(&s.container),
                format!(
                    "{} got {} from {}, not from the container runtime{when} (X1)",
                    s.container,
                    s.name,
                    sender(s)
                ),
            )
            .with_evidence([Some(s.at.seq)]),
        );
    }
    let outcome = match (j.findings.is_empty(), checked, termination) {
        (false, _, _) => Outcome::Violated,
        (true, 0, Some(_)) => Outcome::Unknown,
        (true, 0, None) => Outcome::NotApplicable,
        (true, _, _) => Outcome::Held,
    };
    j.verdict(
        RuleId::X1,
        outcome,
        format!("{checked} stop/kill signal(s) to a PID 1 checked"),
    );
    j
}

/// `host process "kill" (pid 4242, parent "bash" pid 4200)`.
fn sender(s: &SignalObs) -> String {
    let parent = if s.sender_parent_comm.is_empty() && s.sender_parent_pid == 0 {
        String::new()
    } else {
        format!(
            ", parent {:?} pid {}",
            s.sender_parent_comm, s.sender_parent_pid
        )
    };
    format!(
        "{} {:?} (pid {}{parent})",
        s.sender.describe(),
        s.sender_comm,
        s.sender_pid
    )
}
