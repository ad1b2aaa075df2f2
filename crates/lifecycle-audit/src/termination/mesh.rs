//! Mesh termination rules: M1 (Istio: native proxy outlives the app; a
//! legacy proxy is gone after its drain, so app traffic after its exit is
//! lost) and M2 (Linkerd legacy: the proxy's stop signal waits for
//! `proxy-wait-before-exit-seconds`).

use lifecycle_recording::{pods::MeshMode, time::NS_PER_S};

use super::{ExitMark, StateAtStart, TerminationAudit};
use crate::{
    config::AuditConfig,
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::{offset, secs},
    mesh::{MeshContext, context},
    timeline::PodTimeline,
};

/// Judges M1 and M2 on a measured termination (`not_applicable` without a
/// mesh proxy).
pub fn judge(tl: &PodTimeline, audit: &TerminationAudit, config: &AuditConfig) -> Judgement {
    let mut j = Judgement::default();
    match context(tl) {
        Some(mesh) => {
            m1(&mesh, audit, &mut j);
            m2(&mesh, audit, config, &mut j);
        }
        None => {
            j.verdict(RuleId::M1, Outcome::NotApplicable, "no mesh proxy");
            j.verdict(RuleId::M2, Outcome::NotApplicable, "no mesh proxy");
        }
    }
    j
}

fn m1(mesh: &MeshContext<'_>, audit: &TerminationAudit, j: &mut Judgement) {
    if !mesh.is_istio() {
        j.verdict(RuleId::M1, Outcome::NotApplicable, "not Istio");
        return;
    }
    let proxy = &mesh.proxy.name;
    let Some(exit) = audit.container(proxy).and_then(|p| p.exit) else {
        j.verdict(
            RuleId::M1,
            Outcome::Unknown,
            format!("no exit of {proxy} seen"),
        );
        return;
    };
    let t0 = audit.t0.map_or(exit.at.ns, |t| t.ns);
    // The proxy is gone when its outbound capture listener closes: with
    // Istio's real tree that is Envoy's death (pilot-agent SIGKILLs it),
    // some time before PID 1, the agent, exits.
    let gone = match mesh.info.outbound_capture_port {
        Some(port) => mesh
            .proxy
            .sockets
            .listens
            .iter()
            .filter(|l| l.port == port)
            .filter_map(|l| l.end)
            .filter(|end| end.ns >= t0 && end.ns < exit.at.ns)
            .min()
            .map_or(exit, |closed| ExitMark { at: closed, ..exit }),
        None => exit,
    };
    match mesh.info.mode {
        MeshMode::IstioNative => {
            let running: Vec<&str> = mesh
                .workloads
                .iter()
                .filter(|w| w.is_main() && w.alive_at(gone.at.ns))
                .map(|w| w.name.as_str())
                .collect();
            if let Some(first) = running.first() {
                let main_exit = audit.container(first).and_then(|c| c.exit);
                j.finding(
                    Draft::new(
                        RuleId::M1,
                        FindingKind::ProxyGoneBeforeApp,
                        Severity::Warning,
                        Some(proxy),
                        format!(
                            "native {proxy} was gone (capture listener closed or PID 1 exited) at t0{} while {} still ran (M1: the proxy must outlive the app)",
                            offset(gone.at.ns - t0),
                            running.join(", ")
                        ),
                    )
                    .with_evidence([Some(gone.at.seq), main_exit.map(|x| x.at.seq)]),
                );
                j.verdict(RuleId::M1, Outcome::Violated, "native proxy exited first");
            } else {
                j.verdict(
                    RuleId::M1,
                    Outcome::Held,
                    "native proxy exited after the app",
                );
            }
        }
        _ => {
            let late: Vec<(&str, Vec<u64>)> = mesh
                .workloads
                .iter()
                .filter_map(|w| {
                    let seqs: Vec<u64> = w
                        .sockets
                        .connections
                        .iter()
                        .filter(|c| c.first().is_some_and(|f| f.ns > gone.at.ns))
                        .filter_map(|c| c.first().map(|f| f.seq))
                        .collect();
                    (!seqs.is_empty()).then_some((w.name.as_str(), seqs))
                })
                .collect();
            let drain = mesh
                .info
                .termination_drain
                .as_deref()
                .and_then(|d| humantime::parse_duration(d).ok())
                .map_or(5 * NS_PER_S, |d| {
                    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
                });
            let note = format!(
                "{proxy} gone at t0{} (drain {})",
                offset(gone.at.ns - t0),
                secs(drain)
            );
            for (name, seqs) in &late {
                j.finding(
                    Draft::new(
                        RuleId::M1,
                        FindingKind::ProxyGoneBeforeApp,
                        Severity::Warning,
                        Some(name),
                        format!(
                            "{name} opened {} connection(s) after {proxy} was gone (capture listener closed or PID 1 exited) at t0{} (M1: a legacy proxy is gone after its drain)",
                            seqs.len(),
                            offset(gone.at.ns - t0)
                        ),
                    )
                    .with_evidence([Some(gone.at.seq)])
                    .with_evidence(seqs.iter().take(20).map(|s| Some(*s))),
                );
            }
            let outcome = if late.is_empty() {
                Outcome::Held
            } else {
                Outcome::Violated
            };
            j.verdict(RuleId::M1, outcome, note);
        }
    }
}

fn m2(mesh: &MeshContext<'_>, audit: &TerminationAudit, config: &AuditConfig, j: &mut Judgement) {
    let MeshMode::LinkerdLegacy {
        wait_before_exit_s: Some(wait),
        ..
    } = mesh.info.mode
    else {
        j.verdict(
            RuleId::M2,
            Outcome::NotApplicable,
            "no Linkerd legacy wait-before-exit",
        );
        return;
    };
    let proxy = &mesh.proxy.name;
    let stop = audit
        .container(proxy)
        .filter(|p| p.state_at_start == StateAtStart::Running)
        .and_then(|p| p.stop_signal.as_ref());
    let (Some(t0), Some(stop)) = (audit.t0, stop) else {
        j.verdict(
            RuleId::M2,
            Outcome::Unknown,
            format!("no stop signal of {proxy} seen"),
        );
        return;
    };
    let due = t0.ns + i64::from(wait) * NS_PER_S;
    if stop.at.ns < due - config.kubelet_slack_ns / 2 {
        j.finding(
            Draft::new(
                RuleId::M2,
                FindingKind::ProxyStoppedBeforeWait,
                Severity::Warning,
                Some(proxy),
                format!(
                    "{proxy} got {} at t0{}, before its wait-before-exit of {wait} s (M2)",
                    stop.name,
                    offset(stop.at.ns - t0.ns)
                ),
            )
            .with_evidence([Some(stop.at.seq)]),
        );
        j.verdict(
            RuleId::M2,
            Outcome::Violated,
            format!("wait-before-exit {wait} s"),
        );
    } else {
        j.verdict(
            RuleId::M2,
            Outcome::Held,
            format!("wait-before-exit {wait} s"),
        );
    }
}
