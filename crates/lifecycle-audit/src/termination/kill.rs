//! SIGKILLs, deadlines, restarts and senders: T3 (SIGKILL only after the
//! container's timeout; everything dead by t0 + G + 3 s), T5 (Job
//! completion), T6 (no restart once termination began), X2 (one stop
//! signal per stop).

use lifecycle_recording::time::NS_PER_S;

use super::{StateAtStart, TerminationAudit, Trigger};
use crate::{
    config::AuditConfig,
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::{offset, secs},
    timeline::{PodTimeline, SenderClass},
};

/// The kubelet's minimum stop timeout.
pub(crate) const MIN_TIMEOUT_NS: i64 = 2 * NS_PER_S;

/// How long after a Job's completion a legacy sidecar that nothing
/// signalled counts as kept running for good.
pub const LEGACY_JOB_WAIT_NS: i64 = 10 * NS_PER_S;

/// Judges T3, T5, T6 and X2 on a measured termination (X1: `senders`).
pub fn judge(tl: &PodTimeline, audit: &TerminationAudit, config: &AuditConfig) -> Judgement {
    let mut j = Judgement::default();
    t3(tl, audit, config, &mut j);
    t5(tl, audit, &mut j);
    t6(audit, config, &mut j);
    x2(audit, config, &mut j);
    j
}

fn t3(tl: &PodTimeline, audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    let (Some(t0), Some(deadline)) = (audit.t0, audit.deadline) else {
        j.verdict(
            RuleId::T3,
            Outcome::Unknown,
            "no kill activity in the kernel record",
        );
        return;
    };
    let mut violated = false;
    let mut kills = 0;
    for c in &audit.containers {
        if let Some(kill) = &c.sigkill {
            kills += 1;
            let stop = c.stop_signal.as_ref();
            let due = stop.map_or(deadline, |s| deadline.max(s.at.ns + MIN_TIMEOUT_NS));
            if kill.at.ns < due - config.kubelet_slack_ns {
                violated = true;
                j.finding(
                    Draft::new(
                        RuleId::T3,
                        FindingKind::EarlySigkill,
                        Severity::Error,
                        Some(&c.container),
                        format!(
                            "{} got SIGKILL at t0{}, {} before its timeout ran out at t0{} (T3)",
                            c.container,
                            offset(kill.at.ns - t0.ns),
                            secs(due - kill.at.ns),
                            offset(due - t0.ns)
                        ),
                    )
                    .with_evidence([Some(kill.at.seq), stop.map(|s| s.at.seq)]),
                );
            } else {
                let why = match stop.map(|s| (s, s.ignored_because())) {
                    Some((_, Some(reason))) => format!("; {reason}"),
                    Some((s, None)) if s.handler.as_deref() == Some("handler") => {
                        format!("; PID 1 handled {} but kept running", s.name)
                    }
                    Some(_) => String::new(),
                    None => "; no stop signal was seen".to_owned(),
                };
                j.finding(
                    Draft::new(
                        RuleId::T3,
                        FindingKind::Sigkilled,
                        Severity::Warning,
                        Some(&c.container),
                        format!(
                            "{} did not stop within its grace and was SIGKILLed at t0{}{why}",
                            c.container,
                            offset(kill.at.ns - t0.ns)
                        ),
                    )
                    .with_evidence([
                        Some(kill.at.seq),
                        stop.map(|s| s.at.seq),
                        c.exit.map(|x| x.at.seq),
                    ]),
                );
            }
        }
        if c.state_at_start != StateAtStart::Running {
            continue;
        }
        let limit = deadline + 3 * NS_PER_S;
        let late = match c.exit {
            Some(x) if x.at.ns > limit => {
                Some(format!("exited only at t0{}", offset(x.at.ns - t0.ns)))
            }
            None if tl.horizon_ns > limit => {
                Some("was still running when the recording ended".into())
            }
            _ => None,
        };
        if let Some(late) = late {
            violated = true;
            j.finding(
                Draft::new(
                    RuleId::T3,
                    FindingKind::AliveAfterDeadline,
                    Severity::Error,
                    Some(&c.container),
                    format!(
                        "{} {late}, after t0 + G + 3 s (G = {} s) (T3)",
                        c.container, audit.grace_s
                    ),
                )
                .with_evidence([
                    c.exit.map(|x| x.at.seq),
                    c.sigkill.as_ref().map(|k| k.at.seq),
                ]),
            );
        }
    }
    let outcome = if violated {
        Outcome::Violated
    } else if audit
        .containers
        .iter()
        .any(|c| c.state_at_start == StateAtStart::Running && c.exit.is_none())
    {
        Outcome::Unknown
    } else {
        Outcome::Held
    };
    j.verdict(RuleId::T3, outcome, format!("{kills} SIGKILL(s)"));
}

fn t5(tl: &PodTimeline, audit: &TerminationAudit, j: &mut Judgement) {
    let Trigger::JobCompletion { at: done } = audit.trigger else {
        j.verdict(RuleId::T5, Outcome::NotApplicable, "not a Job completion");
        return;
    };
    let limit = done.ns + (audit.grace_s + 3) * NS_PER_S;
    let mut violated = false;
    for c in audit
        .containers
        .iter()
        .filter(|c| c.kind.is_some_and(|k| k.is_sidecar()))
    {
        let native = c.kind == Some(lifecycle_recording::pods::ContainerKind::NativeSidecar);
        let restart = tl.container(&c.container).and_then(|t| {
            t.instances
                .iter()
                .filter_map(|i| i.exec)
                .find(|e| e.ns > done.ns)
        });
        if native && let Some(restart) = restart {
            violated = true;
            j.finding(
                Draft::new(
                    RuleId::T5,
                    FindingKind::JobSidecarRestarted,
                    Severity::Error,
                    Some(&c.container),
                    format!(
                        "sidecar {} restarted {} after the Job's main containers completed (T5)",
                        c.container,
                        secs(restart.ns - done.ns)
                    ),
                )
                .with_evidence([Some(restart.seq)]),
            );
        }
        // The kubelet never stops a legacy sidecar of a Job: one still
        // running, never signalled, LEGACY_JOB_WAIT after the completion
        // will not stop, and saying so need not wait for G + 3 s.
        let never_stopped = !native
            && c.exit.is_none()
            && c.stop_signal.is_none()
            && c.sigkill.is_none()
            && tl.horizon_ns > done.ns + LEGACY_JOB_WAIT_NS;
        let kept = c.state_at_start == StateAtStart::Running
            && (never_stopped
                || match c.exit {
                    Some(x) => x.at.ns > limit,
                    None => tl.horizon_ns > limit,
                });
        if kept {
            violated |= native;
            let (severity, note) = if native {
                (Severity::Error, "(T5)")
            } else {
                (
                    Severity::Warning,
                    "(a legacy sidecar is never stopped for a Job; T5 covers native sidecars)",
                )
            };
            j.finding(
                Draft::new(
                    RuleId::T5,
                    FindingKind::JobSidecarsKeptRunning,
                    severity,
                    Some(&c.container),
                    if never_stopped && tl.horizon_ns <= limit {
                        format!(
                            "legacy sidecar {} still ran {} after the Job's main containers completed, and nothing signalled it: the kubelet never stops a legacy sidecar, so the pod stays Running {note}",
                            c.container,
                            secs(tl.horizon_ns - done.ns)
                        )
                    } else {
                        format!(
                            "sidecar {} kept the completed Job pod running past completion + G + 3 s {note}",
                            c.container
                        )
                    },
                )
                .with_evidence([Some(done.seq), c.exit.map(|x| x.at.seq)]),
            );
        }
    }
    let outcome = if violated {
        Outcome::Violated
    } else {
        Outcome::Held
    };
    j.verdict(
        RuleId::T5,
        outcome,
        "main containers completed by themselves",
    );
}

fn t6(audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    if config.kubelet.allows_restart_during_termination() {
        j.verdict(
            RuleId::T6,
            Outcome::NotApplicable,
            format!(
                "kubelet {} may restart sidecars while terminating",
                config.kubelet
            ),
        );
        return;
    }
    if matches!(audit.trigger, Trigger::JobCompletion { .. }) {
        j.verdict(RuleId::T6, Outcome::NotApplicable, "Job completion: see T5");
        return;
    }
    let Some(t0) = audit.t0 else {
        j.verdict(
            RuleId::T6,
            Outcome::Unknown,
            "no kill activity in the kernel record",
        );
        return;
    };
    let mut violated = false;
    for c in audit
        .containers
        .iter()
        .filter(|c| c.kind.is_some_and(|k| k.is_sidecar()))
    {
        for restart in &c.restarts {
            violated = true;
            let what = if c.state_at_start == StateAtStart::NeverStarted {
                "started"
            } else {
                "restarted"
            };
            j.finding(
                Draft::new(
                    RuleId::T6,
                    FindingKind::RestartDuringTermination,
                    Severity::Error,
                    Some(&c.container),
                    format!(
                        "sidecar {} {what} at t0{}, after termination began (T6)",
                        c.container,
                        offset(restart.ns - t0.ns)
                    ),
                )
                .with_evidence([Some(restart.seq)]),
            );
        }
    }
    let outcome = if violated {
        Outcome::Violated
    } else {
        Outcome::Held
    };
    j.verdict(RuleId::T6, outcome, "runs begun after t0 checked");
}

fn x2(audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    let before = j.findings.len();
    let mut checked = 0;
    let mut retried = 0;
    // A restarted kubelet stops the containers again: its repeated stop
    // signals are the retry the docs describe, not a runtime fault.
    let restarted_from = audit
        .kubelet_restart
        .as_ref()
        .map(|r| r.earliest_ns() - config.kubelet_slack_ns);
    for c in &audit.containers {
        let Some(first) = &c.stop_signal else {
            continue;
        };
        checked += 1;
        let mut previous = first;
        for again in &c.repeated_stop_signals {
            let regraced = audit.grace_changes.iter().skip(1).any(|g| {
                g.at.ns > previous.at.ns - config.kubelet_slack_ns
                    && g.at.ns <= again.at.ns + config.kubelet_slack_ns
            });
            let from_runtime = again.sender == SenderClass::Runtime;
            let by_restart = restarted_from.is_some_and(|from| again.at.ns >= from);
            retried += usize::from(from_runtime && by_restart);
            if from_runtime && again.signal == first.signal && !regraced && !by_restart {
                j.finding(
                    Draft::new(
                        RuleId::X2,
                        FindingKind::RepeatedStopSignal,
                        Severity::Warning,
                        Some(&c.container),
                        format!(
                            "{} got {} again {} after the previous one, without a grace change (X2)",
                            c.container,
                            again.name,
                            secs(again.at.ns - previous.at.ns)
                        ),
                    )
                    .with_evidence([Some(previous.at.seq), Some(again.at.seq)]),
                );
            }
            previous = again;
        }
    }
    let outcome = match (j.findings.len() > before, checked) {
        (true, _) => Outcome::Violated,
        (false, 0) => Outcome::NotApplicable,
        (false, _) => Outcome::Held,
    };
    let note = match retried {
        0 => format!("{checked} container(s) with a stop signal"),
        n => format!(
            "{checked} container(s) with a stop signal; {n} repeated by the restarted kubelet's retry"
        ),
    };
    j.verdict(RuleId::X2, outcome, note);
}
