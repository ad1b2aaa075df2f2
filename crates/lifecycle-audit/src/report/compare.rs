//! Two recordings side by side, per workload: the before/after evidence of
//! a change such as a native-sidecar migration. Per workload and side:
//! startup gaps (percentiles), termination order (T2 violations and
//! sidecars that exited while a main container ran, in any mode), SIGKILLs
//! and bypass-window time with refused and plaintext counts.

use std::{collections::BTreeMap, fmt::Write};

use lifecycle_recording::RecordingInfo;
use serde::Serialize;

use crate::{FindingKind, PodAudit, Workload};

/// Percentiles of a set of values (nearest rank).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// Number of finite values.
    pub n: usize,
    /// Median (nearest rank); `None` without values.
    pub p50: Option<f64>,
    /// 90th percentile (nearest rank); `None` without values.
    pub p90: Option<f64>,
    /// Largest value; `None` without values.
    pub max: Option<f64>,
    /// Values below zero (for startup gaps: the race).
    pub negative: usize,
}

impl Distribution {
    /// The distribution of `values`; NaN and infinities are dropped.
    pub fn of(mut values: Vec<f64>) -> Self {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = values.len();
            (n > 0).then(|| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        Self {
            n: values.len(),
            p50: rank(0.5),
            p90: rank(0.9),
            max: values.last().copied(),
            negative: values.iter().filter(|v| **v < 0.0).count(),
        }
    }
}

/// One workload's figures in one recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkloadMetrics {
    /// Pods of the workload in this recording.
    pub pods: usize,
    /// App first outbound connect − sidecar listening, seconds.
    pub startup_connect_gap_s: Distribution,
    /// App first exec − sidecar listening, seconds.
    pub startup_exec_gap_s: Distribution,
    /// T2 violations (native sidecars stopped while a main container ran).
    pub order_violations: usize,
    /// Sidecar/main pairs where the sidecar exited first (kernel times),
    /// whatever the mode: the hazard native sidecars remove.
    pub sidecar_exited_before_main: usize,
    /// Containers SIGKILLed during termination, over the pods.
    pub sigkills: usize,
    /// Bypass-window time summed over the pods, seconds.
    pub bypass_window_s: f64,
    /// App connections refused by the capture (M4), over the pods.
    pub refused_by_capture: u32,
    /// App flows that bypassed the proxy in plaintext (M3), over the pods.
    pub plaintext_bypass: u32,
}

impl WorkloadMetrics {
    fn add(&mut self, pod: &PodAudit, connect: &mut Vec<f64>, exec: &mut Vec<f64>) {
        self.pods += 1;
        if let Some(s) = &pod.startup {
            connect.extend(s.gaps.iter().filter_map(|g| g.connect_gap_s));
            exec.extend(s.gaps.iter().filter_map(|g| g.exec_gap_s));
        }
        self.order_violations += pod
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::SidecarStoppedEarly)
            .count();
        if let Some(t) = &pod.termination {
            self.sidecar_exited_before_main += t
                .exit_pairs
                .iter()
                .filter(|p| p.kernel_gap_s.is_some_and(|g| g < 0.0))
                .count();
            self.sigkills += t.containers.iter().filter(|c| c.sigkill.is_some()).count();
        }
        if let Some(b) = &pod.bypass {
            self.bypass_window_s += b.window_total_s;
            self.refused_by_capture += b.total.refused_by_capture;
            self.plaintext_bypass += b.total.plaintext_bypass;
        }
    }

    /// The figures of every pod of a workload.
    pub fn of<'a>(pods: impl IntoIterator<Item = &'a PodAudit>) -> Self {
        let mut m = Self::default();
        let (mut connect, mut exec) = (Vec::new(), Vec::new());
        for pod in pods {
            m.add(pod, &mut connect, &mut exec);
        }
        m.startup_connect_gap_s = Distribution::of(connect);
        m.startup_exec_gap_s = Distribution::of(exec);
        m
    }
}

/// One workload's figures in both recordings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadRow {
    /// The owning workload (`Deployment web`, …), as both sides name it.
    pub workload: Workload,
    /// Figures from the before recording; `None` when it has no pod of the
    /// workload.
    pub before: Option<WorkloadMetrics>,
    /// Figures from the after recording; `None` when it has no pod of the
    /// workload.
    pub after: Option<WorkloadMetrics>,
}

/// Two recordings compared per workload
/// (`lifecycle-agent.audit-comparison/v1`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Always `lifecycle-agent.audit-comparison/v1`.
    pub schema: &'static str,
    /// The kubelet version whose rules both sides were judged by.
    pub kubelet_assumed: String,
    /// The before recording: path, record count, skipped lines, kernel drops,
    /// time range.
    pub before: RecordingInfo,
    /// The after recording, likewise.
    pub after: RecordingInfo,
    /// One row per workload seen on either side, ordered by workload.
    pub workloads: Vec<WorkloadRow>,
}

/// Groups both sides by workload.
pub fn compare(
    before: (&RecordingInfo, &[PodAudit]),
    after: (&RecordingInfo, &[PodAudit]),
    kubelet_assumed: &str,
) -> Comparison {
    let mut groups: BTreeMap<Workload, (Vec<&PodAudit>, Vec<&PodAudit>)> = BTreeMap::new();
    for pod in before.1 {
        groups.entry(pod.workload.clone()).or_default().0.push(pod);
    }
    for pod in after.1 {
        groups.entry(pod.workload.clone()).or_default().1.push(pod);
    }
    let side = |pods: Vec<&PodAudit>| (!pods.is_empty()).then(|| WorkloadMetrics::of(pods));
    Comparison {
        schema: "lifecycle-agent.audit-comparison/v1",
        kubelet_assumed: kubelet_assumed.to_owned(),
        before: before.0.clone(),
        after: after.0.clone(),
        workloads: groups
            .into_iter()
            .map(|(workload, (b, a))| WorkloadRow {
                workload,
                before: side(b),
                after: side(a),
            })
            .collect(),
    }
}

fn seconds(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{v:+.3} s"))
}

/// A side-by-side table per workload.
pub fn render_text(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "before: {} ({} records)",
        c.before.path, c.before.records
    );
    let _ = writeln!(
        out,
        "after:  {} ({} records)",
        c.after.path, c.after.records
    );
    let _ = writeln!(out, "kubelet semantics assumed: {}", c.kubelet_assumed);
    for row in &c.workloads {
        let w = &row.workload;
        let _ = writeln!(out, "\n{}/{} {}", w.namespace, w.kind, w.name);
        let line = |out: &mut String, name: &str, f: &dyn Fn(&WorkloadMetrics) -> String| {
            let get = |m: &Option<WorkloadMetrics>| m.as_ref().map_or("—".to_owned(), f);
            let _ = writeln!(
                out,
                "  {name:<38} {:>16} {:>16}",
                get(&row.before),
                get(&row.after)
            );
        };
        let _ = writeln!(out, "  {:<38} {:>16} {:>16}", "", "before", "after");
        line(&mut out, "pods", &|m| m.pods.to_string());
        line(&mut out, "startup connect gap p50", &|m| {
            seconds(m.startup_connect_gap_s.p50)
        });
        line(&mut out, "startup connect gap p90", &|m| {
            seconds(m.startup_connect_gap_s.p90)
        });
        line(&mut out, "startup connect gap max", &|m| {
            seconds(m.startup_connect_gap_s.max)
        });
        line(&mut out, "startup connects before listening", &|m| {
            format!(
                "{}/{}",
                m.startup_connect_gap_s.negative, m.startup_connect_gap_s.n
            )
        });
        line(&mut out, "startup exec gap p50", &|m| {
            seconds(m.startup_exec_gap_s.p50)
        });
        line(&mut out, "startup exec gap p90", &|m| {
            seconds(m.startup_exec_gap_s.p90)
        });
        line(&mut out, "startup exec gap max", &|m| {
            seconds(m.startup_exec_gap_s.max)
        });
        line(&mut out, "termination order violations (T2)", &|m| {
            m.order_violations.to_string()
        });
        line(&mut out, "sidecar exited before main", &|m| {
            m.sidecar_exited_before_main.to_string()
        });
        line(&mut out, "SIGKILLs", &|m| m.sigkills.to_string());
        line(&mut out, "bypass window time", &|m| {
            format!("{:.3} s", m.bypass_window_s)
        });
        line(&mut out, "refused by capture (M4)", &|m| {
            m.refused_by_capture.to_string()
        });
        line(&mut out, "plaintext bypass (M3)", &|m| {
            m.plaintext_bypass.to_string()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = Distribution::of(vec![0.3, -0.2, 0.1, 0.5, 0.4, 0.2, 0.9, 0.8, 0.7, 0.6]);
        assert_eq!(d.n, 10);
        assert_eq!(d.p50, Some(0.4));
        assert_eq!(d.p90, Some(0.8));
        assert_eq!(d.max, Some(0.9));
        assert_eq!(d.negative, 1);
        let empty = Distribution::of(Vec::new());
        assert_eq!((empty.p50, empty.max), (None, None));
        assert_eq!(Distribution::of(vec![2.0]).p90, Some(2.0));
    }
}
