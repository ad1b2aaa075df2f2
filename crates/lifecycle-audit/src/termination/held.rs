//! Sidecars held back by their own preStop. With ordered termination a
//! native sidecar is stopped once the main containers exited, but the
//! kubelet starts every container's preStop at t0 and sends the stop signal
//! only after it ended: a `sleep N` left over from the legacy pattern (where
//! it kept the proxy up while the app drained) now keeps the sidecar
//! running N s after t0 for nothing. Correct by the rules, wasteful: an
//! advisory (T2, info) with N, when the sidecar's stop signal came more than
//! a second after the last main container exited and its preStop explains
//! the wait.

use super::{PreStop, StopOrder, TerminationAudit};
use crate::{
    finding::{Draft, FindingKind, Judgement, RuleId, Severity},
    fmt::secs,
};

/// Waits shorter than this after the last main exit are the kubelet's own
/// bookkeeping, not a hook's.
const HELD_NS: i64 = 1_000_000_000;

/// Advisories for native sidecars whose preStop held their stop signal
/// back after the main containers exited.
pub fn judge(audit: &TerminationAudit) -> Judgement {
    let mut j = Judgement::default();
    if audit.order != StopOrder::NativeOrdered {
        return j;
    }
    let mains: Vec<i64> = audit
        .containers
        .iter()
        .filter(|c| c.main)
        .map(|c| c.exit.map(|x| x.at.ns))
        .collect::<Option<_>>()
        .unwrap_or_default();
    let (Some(last_main), Some(start)) = (mains.iter().max().copied(), audit.kubelet_start) else {
        return j;
    };
    for c in audit.containers.iter().filter(|c| !c.main) {
        let Some(stop) = &c.stop_signal else {
            continue;
        };
        let held = stop.at.ns - last_main;
        if held <= HELD_NS {
            continue;
        }
        let (hook_end, what) = match &c.prestop {
            PreStop::Exec {
                start: hook,
                end: Some(end),
                filename,
                ..
            } => (
                end.ns,
                format!("its preStop {filename} ({})", secs(end.ns - hook.ns)),
            ),
            PreStop::NotObservable { action } if action.starts_with("sleep") => {
                let n: f64 = action
                    .trim_start_matches("sleep ")
                    .trim_end_matches('s')
                    .parse()
                    .unwrap_or(0.0);
                (start + (n * 1e9) as i64, format!("its preStop sleep {n} s"))
            }
            _ => continue,
        };
        // The hook, not something else, held it: the stop came as it ended.
        if hook_end < last_main + HELD_NS || stop.at.ns < hook_end - HELD_NS {
            continue;
        }
        j.finding(
            Draft::new(
                RuleId::T2,
                FindingKind::SidecarHeldByPreStop,
                Severity::Info,
                Some(&c.container),
                format!(
                    "sidecar {} kept running {} after the last main container exited, held by {what}: native ordering already keeps it until the app exits, so the hook only delays the pod's end (T2 held)",
                    c.container,
                    secs(held)
                ),
            )
            .with_evidence([Some(stop.at.seq)]),
        );
    }
    j
}
