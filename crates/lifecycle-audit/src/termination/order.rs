//! Stop order and timing: T1 (preStop at t0, main stop signal after its
//! own preStop and by t0 + G), T2 (native sidecars stopped after the main
//! containers and later sidecars), T4 (legacy order measured, not judged),
//! T7 (a never-started sidecar must not hold back the others).

use super::{ContainerTermination, PreStop, StateAtStart, StopOrder, TerminationAudit};
use crate::{
    config::{AuditConfig, Fix},
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::{offset, secs},
    timeline::{PodTimeline, SenderClass},
};

/// Judges T1, T2, T4 and T7 on a measured termination; a sidecar stopped
/// only at the deadline is reported as grace exhaustion under T3.
pub fn judge(tl: &PodTimeline, audit: &TerminationAudit, config: &AuditConfig) -> Judgement {
    let mut j = Judgement::default();
    t1(audit, config, &mut j);
    t2(tl, audit, config, &mut j);
    t4(audit, &mut j);
    t7(audit, config, &mut j);
    j
}

fn running(c: &ContainerTermination) -> bool {
    c.state_at_start == StateAtStart::Running
}

fn t1(audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    let (Some(t0), Some(deadline)) = (audit.t0, audit.deadline) else {
        j.verdict(
            RuleId::T1,
            Outcome::Unknown,
            "no kill activity in the kernel record",
        );
        return;
    };
    let before = j.findings.len();
    let mut checked = 0;
    for c in audit.containers.iter().filter(|c| running(c)) {
        if let PreStop::Exec { start, .. } = &c.prestop {
            checked += 1;
            let late = start.ns - t0.ns;
            if late > config.prestop_start_slack_ns {
                j.finding(
                    Draft::new(
                        RuleId::T1,
                        FindingKind::PreStopLate,
                        Severity::Warning,
                        Some(&c.container),
                        format!(
                            "preStop of {} started {} after t0; hooks should all start at t0 (T1)",
                            c.container,
                            secs(late)
                        ),
                    )
                    .with_evidence([Some(start.seq)]),
                );
            }
        }
        let judged_as_main = c.main || audit.order == StopOrder::Parallel;
        let Some(stop) = c.stop_signal.as_ref().filter(|_| judged_as_main) else {
            continue;
        };
        checked += 1;
        if stop.at.ns > deadline + config.kubelet_slack_ns {
            j.finding(
                Draft::new(
                    RuleId::T1,
                    FindingKind::StopSignalLate,
                    Severity::Error,
                    Some(&c.container),
                    format!(
                        "{} got {} at t0{}, later than t0 + G ({} s) + 1 s (T1)",
                        c.container,
                        stop.name,
                        offset(stop.at.ns - t0.ns),
                        audit.grace_s
                    ),
                )
                .with_evidence([Some(stop.at.seq)]),
            );
        }
        if let PreStop::Exec { end: Some(end), .. } = &c.prestop
            && stop.at.ns < end.ns
            && end.ns <= deadline
            && stop.sender != SenderClass::SameContainer
        {
            j.finding(
                Draft::new(
                    RuleId::T1,
                    FindingKind::StopBeforePreStopEnded,
                    Severity::Warning,
                    Some(&c.container),
                    format!(
                        "{} got {} {} before its preStop hook finished (T1)",
                        c.container,
                        stop.name,
                        secs(end.ns - stop.at.ns)
                    ),
                )
                .with_evidence([Some(stop.at.seq), Some(end.seq)]),
            );
        }
    }
    let outcome = match (j.findings.len() > before, checked) {
        (true, _) => Outcome::Violated,
        (false, 0) => Outcome::Unknown,
        (false, _) => Outcome::Held,
    };
    j.verdict(
        RuleId::T1,
        outcome,
        format!("{checked} hook/stop timings checked"),
    );
}

fn t2(tl: &PodTimeline, audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    if audit.order != StopOrder::NativeOrdered {
        let why = if tl.containers.iter().any(|c| c.is_native_sidecar()) {
            format!(
                "kubelet {} stops native sidecars in parallel",
                config.kubelet
            )
        } else {
            "no native sidecars".to_owned()
        };
        j.verdict(RuleId::T2, Outcome::NotApplicable, why);
        return;
    }
    let (Some(t0), Some(deadline)) = (audit.t0, audit.deadline) else {
        j.verdict(
            RuleId::T2,
            Outcome::Unknown,
            "no kill activity in the kernel record",
        );
        return;
    };
    let before = j.findings.len();
    let mut checked = 0;
    for (si, s) in audit.containers.iter().enumerate() {
        if !s
            .kind
            .is_some_and(|k| k == lifecycle_recording::pods::ContainerKind::NativeSidecar)
        {
            continue;
        }
        let Some(stop) = &s.stop_signal else { continue };
        checked += 1;
        let blockers: Vec<&ContainerTermination> = audit
            .containers
            .iter()
            .enumerate()
            .filter(|(bi, b)| {
                let later_sidecar = *bi > si
                    && b.kind.is_some_and(|k| {
                        k == lifecycle_recording::pods::ContainerKind::NativeSidecar
                    });
                (b.main || later_sidecar)
                    && tl
                        .container(&b.container)
                        .is_some_and(|c| c.alive_at(stop.at.ns))
            })
            .map(|(_, b)| b)
            .collect();
        let Some(first) = blockers.first() else {
            continue;
        };
        let names: Vec<&str> = blockers.iter().map(|b| b.container.as_str()).collect();
        let evidence = blockers.iter().flat_map(|b| {
            [
                b.stop_signal.as_ref().map(|x| x.at.seq),
                b.exit.map(|x| x.at.seq),
            ]
        });
        if stop.at.ns >= deadline - config.kubelet_slack_ns {
            j.finding(
                Draft::new(
                    RuleId::T3,
                    FindingKind::GraceExhausted,
                    Severity::Warning,
                    Some(&s.container),
                    format!(
                        "grace period of {} s ran out: sidecar {} got {} at t0{} while {} still ran; \
                         the order collapsed at the deadline (not a T2 violation)",
                        audit.grace_s,
                        s.container,
                        stop.name,
                        offset(stop.at.ns - t0.ns),
                        names.join(", ")
                    ),
                )
                .with_evidence([Some(stop.at.seq)])
                .with_evidence(evidence),
            );
            continue;
        }
        let relation = match &first.stop_signal {
            Some(b) if b.at <= stop.at => format!(
                "{} after {}'s, while {} was still running",
                secs(stop.at.ns - b.at.ns),
                first.container,
                first.container
            ),
            Some(b) => format!(
                "{} before {}'s, while {} was still running",
                secs(b.at.ns - stop.at.ns),
                first.container,
                first.container
            ),
            None => format!(
                "while {} was still running and not yet signalled",
                first.container
            ),
        };
        let others = if names.len() > 1 {
            format!(" (also running: {})", names[1..].join(", "))
        } else {
            String::new()
        };
        j.finding(
            Draft::new(
                RuleId::T2,
                FindingKind::SidecarStoppedEarly,
                Severity::Error,
                Some(&s.container),
                format!(
                    "sidecar {} got {} {relation}{others} (T2 violated)",
                    s.container, stop.name
                ),
            )
            .with_evidence([Some(stop.at.seq)])
            .with_evidence(evidence),
        );
    }
    let outcome = match (
        j.findings.iter().skip(before).any(|f| f.rule == RuleId::T2),
        checked,
    ) {
        (true, _) => Outcome::Violated,
        (false, 0) => Outcome::Unknown,
        (false, _) => Outcome::Held,
    };
    j.verdict(
        RuleId::T2,
        outcome,
        format!("{checked} native sidecar stop signal(s) checked"),
    );
}

fn t4(audit: &TerminationAudit, j: &mut Judgement) {
    if audit.order != StopOrder::Parallel {
        j.verdict(
            RuleId::T4,
            Outcome::NotApplicable,
            "native sidecars are ordered (T2)",
        );
        return;
    }
    let stops: Vec<i64> = audit
        .containers
        .iter()
        .filter_map(|c| c.stop_signal.as_ref().map(|s| s.at.ns))
        .collect();
    let spread = match (stops.iter().min(), stops.iter().max()) {
        (Some(a), Some(b)) => format!("stop signals within {}", secs(b - a)),
        _ => "no stop signals seen".to_owned(),
    };
    let exits = if audit.exit_order.is_empty() {
        "no exits seen".to_owned()
    } else {
        format!("exit order: {}", audit.exit_order.join(", "))
    };
    j.verdict(RuleId::T4, Outcome::NotJudged, format!("{spread}; {exits}"));
    for s in audit
        .containers
        .iter()
        .filter(|c| c.kind.is_some_and(|k| k.is_sidecar()))
    {
        let Some(s_exit) = s.exit else { continue };
        let still_running: Vec<&ContainerTermination> = audit
            .containers
            .iter()
            .filter(|m| m.main && !m.kind.is_some_and(|k| k.is_sidecar()) && running(m))
            .filter(|m| m.exit.is_none_or(|x| x.at > s_exit.at))
            .collect();
        if let Some(m) = still_running.first() {
            let gap = m.exit.map_or_else(
                || "while it kept running".to_owned(),
                |x| format!("{} before", secs(x.at.ns - s_exit.at.ns)),
            );
            j.finding(
                Draft::new(
                    RuleId::T4,
                    FindingKind::LegacySidecarExitedFirst,
                    Severity::Info,
                    Some(&s.container),
                    format!(
                        "sidecar {} exited {gap} {} (stop order is not guaranteed without native sidecars; T4, not judged)",
                        s.container, m.container
                    ),
                )
                .with_evidence([Some(s_exit.at.seq), m.exit.map(|x| x.at.seq)]),
            );
        }
    }
}

fn t7(audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    let native = |c: &ContainerTermination| {
        c.kind
            .is_some_and(|k| k == lifecycle_recording::pods::ContainerKind::NativeSidecar)
    };
    let never: Vec<(usize, &ContainerTermination)> = audit
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| native(c) && c.state_at_start == StateAtStart::NeverStarted)
        .collect();
    let fix = config.kubelet.never_started_sidecar_fixed();
    if never.is_empty() || audit.order != StopOrder::NativeOrdered || fix == Fix::NotApplicable {
        j.verdict(
            RuleId::T7,
            Outcome::NotApplicable,
            "no never-started native sidecar",
        );
        return;
    }
    let (Some(t0), Some(deadline)) = (audit.t0, audit.deadline) else {
        j.verdict(
            RuleId::T7,
            Outcome::Unknown,
            "no kill activity in the kernel record",
        );
        return;
    };
    let first_never = never[0].0;
    let before = j.findings.len();
    for (si, s) in audit.containers.iter().enumerate() {
        if !(native(s) && running(s) && si < first_never) {
            continue;
        }
        // Everything it has to wait for, except never-started sidecars.
        let awaited_exit = audit
            .containers
            .iter()
            .enumerate()
            .filter(|(bi, b)| (b.main || (native(b) && *bi > si)) && running(b))
            .map(|(_, b)| b.exit.map(|x| x.at.ns))
            .try_fold(audit.kubelet_start.unwrap_or(t0.ns), |acc, x| {
                x.map(|x| acc.max(x))
            });
        let Some(ready_at) = awaited_exit else {
            continue;
        };
        let stop_at = s.stop_signal.as_ref().map(|x| x.at.ns);
        let blocked = ready_at < deadline - 2 * config.kubelet_slack_ns
            && stop_at.is_none_or(|at| at >= deadline - config.kubelet_slack_ns);
        if !blocked {
            continue;
        }
        let severity = if fix == Fix::Fixed {
            Severity::Error
        } else {
            Severity::Warning
        };
        let patch_note = if fix == Fix::InPatchReleases {
            format!(
                " (kubelet {}: fixed only in later patch releases)",
                config.kubelet
            )
        } else {
            String::new()
        };
        j.finding(
            Draft::new(
                RuleId::T7,
                FindingKind::BlockedByNeverStartedSidecar,
                severity,
                Some(&s.container),
                format!(
                    "sidecar {} got no stop signal until the deadline (t0 + {} s) although what it waits for \
                     had exited at t0{}: held back by never-started sidecar {} (T7, kubelet #125880){patch_note}",
                    s.container,
                    audit.grace_s,
                    offset(ready_at - t0.ns),
                    never[0].1.container
                ),
            )
            .with_evidence([s.stop_signal.as_ref().map(|x| x.at.seq)]),
        );
    }
    let outcome = if j.findings.len() > before {
        Outcome::Violated
    } else {
        Outcome::Held
    };
    j.verdict(
        RuleId::T7,
        outcome,
        format!("never-started sidecar {}", never[0].1.container),
    );
}
