//! mTLS-bypass windows of a meshed pod: the intervals in which a workload
//! container ran while the proxy was not running or not listening on its
//! outbound capture port (before it started, between runs, after it
//! exited), and the app's TCP flows classified ([`traffic`]) inside and
//! outside them. Rules M3 (plaintext) and M4 (fail-closed refusals).

pub mod spans;
pub mod traffic;

use serde::{Deserialize, Serialize};

use self::{
    spans::{Edge, Span, subtract, union},
    traffic::{Flow, FlowClass, TrafficCounts},
};
use super::{
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::{secs, to_s},
    mesh::{MeshContext, context},
    timeline::{At, PodTimeline},
};

/// Why the proxy was not serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowCause {
    /// The proxy had not listened yet and no proxy run had exited.
    BeforeProxyStart,
    /// A proxy run ended and a new one began inside the window.
    ProxyRestart,
    /// No proxy run was alive (at the window's middle).
    AfterProxyExit,
    /// A proxy run was alive but not listening on the outbound capture port.
    ProxyNotListening,
}

impl WindowCause {
    fn describe(self) -> &'static str {
        match self {
            Self::BeforeProxyStart => "before the proxy listened",
            Self::ProxyRestart => "while the proxy restarted",
            Self::AfterProxyExit => "after the proxy exited",
            Self::ProxyNotListening => "while the proxy ran but did not listen",
        }
    }
}

/// An interval in which a workload container ran while the proxy was not
/// listening on its outbound capture port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BypassWindow {
    /// Where it opens; `seq: None` when a run that began before the recording
    /// opens it (at the pod's first record).
    pub start: Edge,
    /// Where it closes; `seq: None` when it runs to the end of the input.
    pub end: Edge,
    /// Length in seconds.
    pub duration_s: f64,
    /// Why the proxy was not serving.
    pub cause: WindowCause,
    /// App flows that began inside it, by class.
    pub counts: TrafficCounts,
}

/// The bypass measurement of a meshed pod (`bypass` in the JSON report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BypassAudit {
    /// Name of the proxy container.
    pub proxy: String,
    /// Port outbound app traffic is redirected to (15001 Istio, 4140 Linkerd);
    /// `None` when not known.
    pub outbound_capture_port: Option<u16>,
    /// Port inbound traffic is redirected to (15006 Istio, 4143 Linkerd);
    /// `None` when not known.
    pub inbound_capture_port: Option<u16>,
    /// UID the proxy runs as, whose traffic is not captured; `None` when not
    /// known.
    pub proxy_uid: Option<u32>,
    /// Why windows could not be computed, when they could not.
    pub unknown: Option<String>,
    /// The bypass windows, in time order.
    pub windows: Vec<BypassWindow>,
    /// Sum of the windows' lengths, seconds.
    pub window_total_s: f64,
    /// App flows that began inside any window, by class.
    pub in_windows: TrafficCounts,
    /// All app flows, by class.
    pub total: TrafficCounts,
    /// Every classified app flow, by time.
    pub flows: Vec<Flow>,
}

/// When the proxy listened on its outbound capture port.
fn proxy_up(tl: &PodTimeline, mesh: &MeshContext<'_>) -> Vec<Span> {
    let Some(port) = mesh.outbound_port() else {
        return Vec::new();
    };
    let spans = mesh
        .proxy
        .sockets
        .listens
        .iter()
        .filter(|l| l.port == port)
        .map(|l| {
            let start = l.start.map_or(
                Edge {
                    ns: tl.first_ns,
                    seq: None,
                },
                edge,
            );
            let run_exit = mesh
                .proxy
                .instance_at(start.ns)
                .and_then(|(_, run)| run.exit)
                .map(|x| edge(x.at));
            let end = match (l.end.map(edge), run_exit) {
                (Some(a), Some(b)) => {
                    if a.ns <= b.ns {
                        a
                    } else {
                        b
                    }
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => Edge {
                    ns: tl.horizon_ns,
                    seq: None,
                },
            };
            Span { start, end }
        })
        .collect();
    union(spans)
}

fn edge(at: At) -> Edge {
    Edge {
        ns: at.ns,
        seq: Some(at.seq),
    }
}

/// When any workload container ran.
fn workloads_alive(tl: &PodTimeline, mesh: &MeshContext<'_>) -> Vec<Span> {
    let spans = mesh
        .workloads
        .iter()
        .flat_map(|w| w.instances.iter())
        .map(|run| Span {
            start: run.exec.map_or(
                Edge {
                    ns: tl.first_ns,
                    seq: None,
                },
                edge,
            ),
            end: run.exit.map_or(
                Edge {
                    ns: tl.horizon_ns,
                    seq: None,
                },
                |x| edge(x.at),
            ),
        })
        .collect();
    union(spans)
}

fn cause(mesh: &MeshContext<'_>, up: &[Span], w: &Span) -> WindowCause {
    let runs = &mesh.proxy.instances;
    let exited_before = runs
        .iter()
        .any(|r| r.exit.is_some_and(|x| x.at.ns <= w.start.ns));
    let served_before = up.iter().any(|u| u.start.ns < w.start.ns);
    if !served_before && !exited_before {
        return WindowCause::BeforeProxyStart;
    }
    let began_inside = runs.iter().any(|r| {
        let began = r.began().ns;
        began > w.start.ns && began < w.end.ns
    });
    let exited_by_end = runs
        .iter()
        .any(|r| r.exit.is_some_and(|x| x.at.ns <= w.end.ns));
    if began_inside && exited_by_end {
        return WindowCause::ProxyRestart;
    }
    let middle = w.start.ns + w.len_ns() / 2;
    if !runs.iter().any(|r| r.alive_at(middle)) {
        return WindowCause::AfterProxyExit;
    }
    WindowCause::ProxyNotListening
}

/// Measures and judges the bypass windows; `None` for pods without a mesh.
pub fn audit(tl: &PodTimeline) -> Option<(BypassAudit, Judgement)> {
    let mesh = context(tl)?;
    let mut j = Judgement::default();
    let mut audit = BypassAudit {
        proxy: mesh.proxy.name.clone(),
        outbound_capture_port: mesh.outbound_port(),
        inbound_capture_port: mesh.inbound_port(),
        proxy_uid: mesh.proxy_uid(),
        unknown: None,
        windows: Vec::new(),
        window_total_s: 0.0,
        in_windows: TrafficCounts::default(),
        total: TrafficCounts::default(),
        flows: Vec::new(),
    };
    let seen_proxy = !mesh.proxy.instances.is_empty() || !mesh.proxy.sockets.listens.is_empty();
    let up = proxy_up(tl, &mesh);
    let windows: Vec<Span> = if seen_proxy {
        subtract(&workloads_alive(tl, &mesh), &up)
    } else {
        audit.unknown = Some(format!(
            "no activity of {} in the recording",
            mesh.proxy.name
        ));
        Vec::new()
    };
    audit.windows = windows
        .iter()
        .map(|w| BypassWindow {
            start: w.start,
            end: w.end,
            duration_s: to_s(w.len_ns()),
            cause: cause(&mesh, &up, w),
            counts: TrafficCounts::default(),
        })
        .collect();
    audit.window_total_s = audit.windows.iter().map(|w| w.duration_s).sum();

    let proxy_side = traffic::ProxySide::of(&mesh);
    for w in &mesh.workloads {
        for c in &w.sockets.connections {
            let down = c
                .first()
                .is_some_and(|at| windows.iter().any(|s| s.contains(at.ns)));
            audit
                .flows
                .extend(traffic::outbound(&mesh, &proxy_side, &w.name, c, down));
        }
        for a in &w.sockets.accepts {
            audit
                .flows
                .push(traffic::inbound(&mesh, &proxy_side, &w.name, a));
        }
    }
    audit.flows.sort_by_key(|f| f.at);
    for flow in &audit.flows {
        audit.total.add(flow.class);
        if let Some(i) = windows.iter().position(|s| s.contains(flow.at.ns)) {
            audit.windows[i].counts.add(flow.class);
            audit.in_windows.add(flow.class);
        }
    }
    judge(&mesh, &audit, &mut j);
    Some((audit, j))
}

/// A window shorter than this with no app flow in it is two processes
/// ending together (a proxy told to quit by the app's last request, the
/// app exiting microseconds after the listener closed): measured, not
/// reported.
const NEGLIGIBLE_EMPTY_WINDOW_NS: i64 = 10_000_000;

fn judge(mesh: &MeshContext<'_>, audit: &BypassAudit, j: &mut Judgement) {
    let proxy = &mesh.proxy.name;
    let port = audit
        .outbound_capture_port
        .map_or_else(String::new, |p| format!(" on {p}"));
    for w in &audit.windows {
        if w.counts.total() == 0 && w.end.ns - w.start.ns < NEGLIGIBLE_EMPTY_WINDOW_NS {
            continue;
        }
        j.finding(
            Draft::new(
                RuleId::M3,
                FindingKind::BypassWindow,
                Severity::Info,
                Some(proxy),
                format!(
                    "{proxy} was not listening{port} for {} while app containers ran ({}); {} app flow(s) in it",
                    secs(w.end.ns - w.start.ns),
                    w.cause.describe(),
                    w.counts.total()
                ),
            )
            .with_evidence([w.start.seq, w.end.seq]),
        );
        if w.counts.refused_by_capture > 0 {
            let seqs = audit
                .flows
                .iter()
                .filter(|f| f.class == FlowClass::RefusedByCapture)
                .filter(|f| w.start.ns <= f.at.ns && f.at.ns < w.end.ns)
                .flat_map(|f| f.evidence.iter().copied().map(Some))
                .take(40);
            j.finding(
                Draft::new(
                    RuleId::M4,
                    FindingKind::RefusedWhileProxyDown,
                    Severity::Warning,
                    None,
                    format!(
                        "{} app connection(s) refused by the capture while {proxy} was down ({}): fail-closed, requests lost, not a bypass (M4)",
                        w.counts.refused_by_capture,
                        w.cause.describe()
                    ),
                )
                .with_evidence([w.start.seq])
                .with_evidence(seqs),
            );
        }
    }
    let mut containers: Vec<&str> = audit
        .flows
        .iter()
        .filter(|f| f.class == FlowClass::PlaintextBypass)
        .map(|f| f.container.as_str())
        .collect();
    containers.dedup();
    containers.sort_unstable();
    containers.dedup();
    for name in &containers {
        let flows: Vec<&Flow> = audit
            .flows
            .iter()
            .filter(|f| f.class == FlowClass::PlaintextBypass && f.container == *name)
            .collect();
        let example = flows[0];
        j.finding(
            Draft::new(
                RuleId::M3,
                FindingKind::PlaintextBypass,
                Severity::Error,
                Some(name),
                format!(
                    "{name}: {} flow(s) bypassed {proxy} in plaintext, e.g. {} -> {} ({}) (M3)",
                    flows.len(),
                    example.local,
                    example.remote,
                    example.reason
                ),
            )
            .with_evidence(
                flows
                    .iter()
                    .flat_map(|f| f.evidence.iter().copied().map(Some))
                    .take(40),
            ),
        );
    }
    let m3 = match (&audit.unknown, containers.is_empty()) {
        (_, false) => Outcome::Violated,
        (Some(_), true) => Outcome::Unknown,
        (None, true) => Outcome::Held,
    };
    j.verdict(
        RuleId::M3,
        m3,
        format!(
            "{} window(s), {:.3} s; {} flow(s) classified",
            audit.windows.len(),
            audit.window_total_s,
            audit.total.total()
        ),
    );
    let refused = audit.total.refused_by_capture;
    if refused == 0 {
        j.verdict(
            RuleId::M4,
            Outcome::NotApplicable,
            "no connection refused by the capture",
        );
    } else {
        j.verdict(
            RuleId::M4,
            Outcome::Held,
            format!("{refused} refused connection(s) counted as fail-closed, not as bypass"),
        );
    }
}
