//! The terminal report: per pod a chronological timeline table, then the
//! termination, startup and bypass tables, the verdicts and the findings.

use std::fmt::Write;

use lifecycle_recording::pods::ContainerKind;

use super::Report;
use crate::{
    PodAudit,
    fmt::{api_time, cell, clock, offset, secs, to_s},
    termination::{PreStop, TerminationAudit, Trigger},
};

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let r = &report.recording;
    let span = match (r.first_ns, r.last_ns) {
        (Some(a), Some(b)) => format!(", {} → {} UTC", clock(a), clock(b)),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "lifecycle-agent audit of {} ({} records{span}; kernel drops {})",
        r.path, r.records, r.kernel_drops
    );
    if let Some(note) = super::damage_note(r) {
        let _ = writeln!(out, "{note}");
    }
    let _ = writeln!(
        out,
        "kubelet semantics assumed: {} (the recording does not say; --kubelet-version)",
        report.kubelet_assumed
    );
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} pod(s): {} error(s), {} warning(s), {} info",
        s.pods, s.errors, s.warnings, s.infos
    );
    for pod in &report.pods {
        out.push('\n');
        pod_section(&mut out, pod);
    }
    out
}

fn pod_section(out: &mut String, pod: &PodAudit) {
    let w = &pod.workload;
    let _ = writeln!(
        out,
        "══ {}/{}  ({} {}, uid {})",
        pod.pod.namespace, pod.pod.name, w.kind, w.name, pod.pod.uid
    );
    let mesh = serde_json::to_value(pod.mesh_mode)
        .ok()
        .and_then(|v| v["mode"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "   mesh: {mesh}; native sidecars: {}; audit: {:?}, {} records{}",
        if pod.native_sidecars { "yes" } else { "no" },
        pod.completed_by,
        pod.records,
        if pod.dropped_records > 0 {
            format!(" ({} dropped)", pod.dropped_records)
        } else {
            String::new()
        }
    );
    if let Some(note) = super::partial_note(pod) {
        let _ = writeln!(out, "   {note}");
    }
    timeline(out, pod);
    if let Some(t) = &pod.termination {
        termination(out, t);
    }
    startup(out, pod);
    bypass(out, pod);
    let verdicts: Vec<String> = pod
        .verdicts
        .iter()
        .map(|v| format!("{} {}", v.rule, v.outcome))
        .collect();
    let _ = writeln!(out, "   verdicts: {}", verdicts.join(" · "));
    if pod.findings.is_empty() {
        let _ = writeln!(out, "   findings: none");
    } else {
        let _ = writeln!(out, "   findings:");
        for f in &pod.findings {
            let seqs: Vec<String> = f.evidence.iter().take(12).map(u64::to_string).collect();
            let more = if f.evidence.len() > 12 { ", …" } else { "" };
            let _ = writeln!(
                out,
                "     {:<7} {:<3} {}  [seq {}{more}]",
                f.severity.to_string().to_uppercase(),
                f.rule,
                f.message,
                seqs.join(", ")
            );
        }
    }
}

fn timeline(out: &mut String, pod: &PodAudit) {
    let mut rows: Vec<(i64, String, String)> = Vec::new();
    for lane in &pod.lanes {
        let c = &lane.container;
        for run in &lane.runs {
            if let Some(at) = run.start {
                rows.push((at.ns, c.clone(), format!("PID 1 started (pid {})", run.pid)));
            }
            if let Some(at) = run.end {
                let code = run
                    .exit_code
                    .map_or_else(String::new, |c| format!(", code {c}"));
                rows.push((at.ns, c.clone(), format!("PID 1 exited{code}")));
            }
        }
        for hook in &lane.hooks {
            let what = if hook.prestop { "preStop" } else { "exec" };
            rows.push((
                hook.start.ns,
                c.clone(),
                format!("{what} {} started", hook.filename),
            ));
            if let Some(end) = hook.end {
                rows.push((end.ns, c.clone(), format!("{what} {} ended", hook.filename)));
            }
        }
        for s in &lane.signals {
            let target = if s.to_pid1 { "" } else { " (not PID 1)" };
            rows.push((
                s.at.ns,
                c.clone(),
                format!("{} from {}{target}", s.name, s.sender.describe()),
            ));
        }
        for l in &lane.listens {
            if let Some(at) = l.start {
                rows.push((at.ns, c.clone(), format!("listening on :{}", l.port)));
            }
            if let Some(at) = l.end {
                rows.push((
                    at.ns,
                    c.clone(),
                    format!("stopped listening on :{}", l.port),
                ));
            }
        }
    }
    if let Some(t) = &pod.termination
        && let Trigger::Deletion {
            observed,
            request_s,
            ..
        } = t.trigger
    {
        rows.push((
            observed.ns,
            "(pod)".into(),
            format!("delete seen (API request at {})", api_time(request_s)),
        ));
    }
    if let Some(b) = &pod.bypass {
        for w in &b.windows {
            rows.push((
                w.start.ns,
                "(mesh)".into(),
                format!("bypass window opens ({:?})", w.cause),
            ));
            rows.push((w.end.ns, "(mesh)".into(), "bypass window closes".into()));
        }
    }
    rows.sort_by_key(|row| row.0);
    let width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let _ = writeln!(
        out,
        "   timeline (s from the pod's first record at {} UTC)",
        clock(pod.first_ns)
    );
    for (ns, container, text) in rows {
        let _ = writeln!(
            out,
            "   {:>10}  {container:<width$}  {text}",
            format!("{:+.3}", to_s(ns - pod.first_ns))
        );
    }
}

fn prestop_cell(p: &PreStop, t: &TerminationAudit) -> String {
    match p {
        PreStop::None => "—".into(),
        PreStop::Exec { start, end, .. } => {
            let end = end
                .map(|e| cell(t.offset_s(e.ns)))
                .unwrap_or_else(|| "…".into());
            format!("{}..{end}", cell(t.offset_s(start.ns)))
        }
        PreStop::ExecNotSeen { .. } => "exec, not seen".into(),
        PreStop::NotObservable { action } => format!("{action} (not visible)"),
        PreStop::Unknown => "?".into(),
    }
}

/// Writes rows as aligned columns.
fn table(out: &mut String, indent: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(indent);
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// The snake_case name of a kind, as in the JSON.
pub fn kind_name(kind: Option<ContainerKind>) -> String {
    kind.and_then(|k| serde_json::to_value(k).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn termination(out: &mut String, t: &TerminationAudit) {
    let trigger = match t.trigger {
        Trigger::Deletion { request_s, .. } => {
            format!("delete requested {} (API, whole s)", api_time(request_s))
        }
        Trigger::JobCompletion { at } => {
            format!("Job main containers completed at {}", clock(at.ns))
        }
        Trigger::Unknown { .. } => "kill activity without a delete in the recording".into(),
    };
    let t0 = match (t.t0, &t.t0_cause) {
        (Some(at), Some(cause)) => format!("t0 = {} UTC ({cause})", clock(at.ns)),
        _ => "t0 unknown (no kill activity in the kernel record)".into(),
    };
    let lag = t
        .t0_after_request_s
        .map(|(lo, hi)| format!(", {lo:.3}..{hi:.3} s after the request"))
        .unwrap_or_default();
    let skew = t
        .api_clock_offset_s
        .map(|offset| {
            let side = if offset > 0.0 { "ahead of" } else { "behind" };
            format!(
                "; API clock {:.1} s {side} the node's (kernel times used)",
                offset.abs()
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "   termination: {trigger}; G = {} s ({}); {t0}{lag}{skew}; stop order {:?}",
        t.grace_s, t.grace_source, t.order
    );
    let rows: Vec<Vec<String>> = t
        .containers
        .iter()
        .map(|c| {
            let stop = c.stop_signal.as_ref().map_or("—".to_owned(), |s| {
                format!(
                    "{} {} ({}, {})",
                    cell(t.offset_s(s.at.ns)),
                    s.name,
                    s.sender.describe(),
                    s.result
                )
            });
            let exit = c.exit.map_or_else(
                || format!("{:?}", c.state_at_start).to_lowercase(),
                |x| format!("{} code {}", cell(t.offset_s(x.at.ns)), x.code),
            );
            vec![
                c.container.clone(),
                kind_name(c.kind),
                prestop_cell(&c.prestop, t),
                stop,
                exit,
                c.sigkill
                    .as_ref()
                    .map_or("—".to_owned(), |k| cell(t.offset_s(k.at.ns))),
                c.grace_used
                    .map_or("—".to_owned(), |g| format!("{:.1} %", g * 100.0)),
            ]
        })
        .collect();
    table(
        out,
        "     ",
        &[
            "container",
            "kind",
            "preStop",
            "stop signal (s from t0)",
            "exit",
            "SIGKILL",
            "grace used",
        ],
        &rows,
    );
    if let (Some(t0), Some(d)) = (t.t0, t.deadline) {
        let basis = match &t.kubelet_restart {
            Some(r) => format!(
                "kubelet restarted at t0{} (its Starting event), retry + G",
                offset(r.earliest_ns() - t0.ns)
            ),
            None => "kubelet start + G".to_owned(),
        };
        let _ = writeln!(
            out,
            "     grace deadline t0{} ({basis}); exit order: {}",
            offset(d - t0.ns),
            t.exit_order.join(", ")
        );
    }
}

fn startup(out: &mut String, pod: &PodAudit) {
    let Some(s) = &pod.startup else { return };
    let base = pod.first_ns;
    let rel = |ns: i64| format!("{:+.3}", to_s(ns - base));
    let _ = writeln!(
        out,
        "   startup (s from the pod's first record; API times whole seconds):"
    );
    let api = |m: Option<crate::startup::ApiMark>| {
        m.and_then(|m| m.api_s).map_or("—".to_owned(), |s| {
            clock(s * lifecycle_recording::time::NS_PER_S)[..8].to_owned()
        })
    };
    let rows: Vec<Vec<String>> = s
        .containers
        .iter()
        .map(|c| {
            let listens: Vec<String> = c
                .listens
                .iter()
                .map(|l| {
                    format!(
                        ":{}@{}",
                        l.port,
                        l.at.map_or("before".to_owned(), |a| rel(a.ns))
                    )
                })
                .collect();
            vec![
                c.container.clone(),
                kind_name(c.kind),
                c.first_exec.map_or("—".to_owned(), |a| rel(a.ns)),
                if listens.is_empty() {
                    "—".into()
                } else {
                    listens.join(" ")
                },
                api(c.running),
                api(c.started),
                api(c.ready),
            ]
        })
        .collect();
    table(
        out,
        "     ",
        &[
            "container",
            "kind",
            "first exec",
            "first listen",
            "running",
            "started",
            "ready",
        ],
        &rows,
    );
    for g in &s.gaps {
        let gap = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:+.3} s"));
        let _ = writeln!(
            out,
            "     gap {} ← {} {:?}: exec {}, connect {}, accept {}; app exec vs ready (API): {:?}",
            g.app,
            g.sidecar,
            g.ports,
            gap(g.exec_gap_s),
            gap(g.connect_gap_s),
            gap(g.accept_gap_s),
            g.exec_vs_ready
        );
    }
}

fn bypass(out: &mut String, pod: &PodAudit) {
    let Some(b) = &pod.bypass else { return };
    if let Some(why) = &b.unknown {
        let _ = writeln!(out, "   bypass windows: unknown ({why})");
        return;
    }
    let port = b
        .outbound_capture_port
        .map_or("?".to_owned(), |p| p.to_string());
    let t = &b.total;
    let _ = writeln!(
        out,
        "   bypass windows ({} on {port}): {} window(s), {}; app flows: proxied {}, refused by capture {}, plaintext {}, excluded {}, local {}, other {}",
        b.proxy,
        b.windows.len(),
        secs((b.window_total_s * 1e9) as i64),
        t.proxied,
        t.refused_by_capture,
        t.plaintext_bypass,
        t.excluded,
        t.local,
        t.other
    );
    for w in &b.windows {
        let c = &w.counts;
        let _ = writeln!(
            out,
            "     {:+.3} → {:+.3}  {:.3} s  {:?}: refused {}, plaintext {}, proxied {}",
            to_s(w.start.ns - pod.first_ns),
            to_s(w.end.ns - pod.first_ns),
            w.duration_s,
            w.cause,
            c.refused_by_capture,
            c.plaintext_bypass,
            c.proxied
        );
    }
}
