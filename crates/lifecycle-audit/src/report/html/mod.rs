//! The HTML report: one self-contained page (inline CSS, inline SVG, no
//! script, no external resource) with, per pod, its timeline, the
//! termination and startup tables, the bypass windows, the verdicts and the
//! findings.

pub mod svg;

use std::fmt::Write;

use super::Report;
use crate::{
    PodAudit, Severity,
    fmt::{api_time, cell, clock},
    termination::{PreStop, Trigger},
};

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2430; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 32px; border-top: 2px solid #ccd; padding-top: 12px; }
h3 { font-size: 14px; margin-bottom: 4px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #d4d8e0; padding: 3px 8px; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #f1f3f7; }
.meta { color: #5a6272; }
svg.timeline { display: block; margin: 8px 0; }
.lane-bg { fill: #f7f8fa; }
.label { font-size: 13px; font-weight: 600; fill: #1d2430; }
.sublabel, .tick-label, .marker { font-size: 10px; fill: #5a6272; }
.tick { stroke: #e1e4ea; }
.run { fill: #4c8bd6; }
.hook { fill: #9aa5b8; }
.hook.prestop { fill: #e39b2d; }
.listen { fill: #2f9e58; }
.signal { fill: #444; }
.signal.term { fill: #c2410c; }
.signal.kill { fill: #7f1d1d; }
.bypass { fill: #dc2626; fill-opacity: 0.18; stroke: #dc2626; stroke-opacity: 0.5; }
.t0 { stroke: #111; stroke-dasharray: 4 3; }
.delete { stroke: #6b21a8; stroke-dasharray: 1 3; }
.flow.refused { fill: #fff; stroke: #b91c1c; stroke-width: 1.5; }
.flow.plaintext { fill: #7e22ce; }
.deadline { stroke: #7f1d1d; stroke-dasharray: 2 3; }
.sev-error { color: #991b1b; font-weight: 600; } .sev-warning { color: #92400e; } .sev-info { color: #374151; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; }
"#;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the report as one HTML page.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let r = &report.recording;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Lifecycle audit: {}</title><style>{STYLE}</style></head><body>",
        escape(&r.path)
    );
    let _ = write!(
        out,
        "<h1>Lifecycle audit</h1><p class=\"meta\">Recording <code>{}</code>: {} records, kernel drops {}. Kubelet semantics assumed: <b>{}</b> (not in the recording). {} pod(s): {} error(s), {} warning(s), {} info.</p>",
        escape(&r.path),
        r.records,
        r.kernel_drops,
        escape(&report.kubelet_assumed),
        report.summary.pods,
        report.summary.errors,
        report.summary.warnings,
        report.summary.infos
    );
    if let Some(note) = super::damage_note(r) {
        let _ = write!(out, "<p class=\"meta\">{}</p>", escape(&note));
    }
    out.push_str(
        "<p class=\"legend\"><span><i style=\"background:#4c8bd6\"></i>PID 1 alive</span>\
         <span><i style=\"background:#e39b2d\"></i>preStop</span><span><i style=\"background:#9aa5b8\"></i>other exec</span>\
         <span><i style=\"background:#2f9e58\"></i>listening</span><span><i style=\"background:#c2410c\"></i>SIGTERM</span>\
         <span><i style=\"background:#7f1d1d\"></i>SIGKILL</span><span><i style=\"background:#f5c6c6\"></i>bypass window</span>\
         <span><i style=\"border:2px solid #b91c1c;border-radius:50%;width:6px;height:6px\"></i>refused connect</span>\
         <span><i style=\"background:#7e22ce;border-radius:50%;width:8px;height:8px\"></i>plaintext flow</span></p>",
    );
    for pod in &report.pods {
        pod_section(&mut out, pod);
    }
    out.push_str("</body></html>\n");
    out
}

fn pod_section(out: &mut String, pod: &PodAudit) {
    let _ = write!(
        out,
        "<section class=\"pod\" data-pod=\"{}\"><h2>{}/{}</h2><p class=\"meta\">{} {} · uid {} · native sidecars: {} · audit {:?} · first record {} UTC</p>",
        escape(&pod.pod.uid),
        escape(&pod.pod.namespace),
        escape(&pod.pod.name),
        escape(&pod.workload.kind),
        escape(&pod.workload.name),
        escape(&pod.pod.uid),
        if pod.native_sidecars { "yes" } else { "no" },
        pod.completed_by,
        clock(pod.first_ns)
    );
    if let Some(note) = super::partial_note(pod) {
        let _ = write!(out, "<p class=\"meta\">{}</p>", escape(&note));
    }
    out.push_str(&svg::timeline(pod));
    termination(out, pod);
    startup(out, pod);
    bypass(out, pod);
    findings(out, pod);
    out.push_str("<h3>Verdicts</h3><table><tr><th>rule</th><th>outcome</th><th>note</th></tr>");
    for v in &pod.verdicts {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.rule,
            v.outcome,
            escape(&v.note)
        );
    }
    out.push_str("</table></section>");
}

fn termination(out: &mut String, pod: &PodAudit) {
    let Some(t) = &pod.termination else { return };
    let trigger = match t.trigger {
        Trigger::Deletion { request_s, .. } => {
            format!("delete requested {} (API)", api_time(request_s))
        }
        Trigger::JobCompletion { .. } => "Job main containers completed".into(),
        Trigger::Unknown { .. } => "kill activity without a delete".into(),
    };
    let t0 =
        t.t0.map_or("unknown".to_owned(), |a| format!("{} UTC", clock(a.ns)));
    let _ = write!(
        out,
        "<h3>Termination</h3><p>{} · G = {} s ({}) · t0 = {} ({}) · order {:?}</p>\
         <table><tr><th>container</th><th>kind</th><th>preStop</th><th>stop signal (s from t0)</th><th>sender</th><th>result</th><th>exit</th><th>SIGKILL</th><th>grace used</th></tr>",
        escape(&trigger),
        t.grace_s,
        t.grace_source,
        t0,
        escape(t.t0_cause.as_deref().unwrap_or("—")),
        t.order
    );
    for c in &t.containers {
        let prestop = match &c.prestop {
            PreStop::Exec { start, end, .. } => format!(
                "{} .. {}",
                cell(t.offset_s(start.ns)),
                end.map_or("…".to_owned(), |e| cell(t.offset_s(e.ns)))
            ),
            PreStop::None => "—".into(),
            PreStop::ExecNotSeen { command } => format!("exec {command} (not seen)"),
            PreStop::NotObservable { action } => format!("{action} (invisible)"),
            PreStop::Unknown => "?".into(),
        };
        let (stop, sender, result) = c.stop_signal.as_ref().map_or(
            ("—".to_owned(), "—".to_owned(), "—".to_owned()),
            |s| {
                (
                    format!("{} {}", cell(t.offset_s(s.at.ns)), s.name),
                    format!("{} ({})", s.sender.describe(), s.sender_comm),
                    format!(
                        "{}{}",
                        s.result,
                        s.handler
                            .as_ref()
                            .map_or(String::new(), |h| format!(", {h}"))
                    ),
                )
            },
        );
        let exit = c.exit.map_or_else(
            || format!("{:?}", c.state_at_start),
            |x| format!("{} code {}", cell(t.offset_s(x.at.ns)), x.code),
        );
        let kill = c
            .sigkill
            .as_ref()
            .map_or("—".to_owned(), |k| cell(t.offset_s(k.at.ns)));
        let used = c
            .grace_used
            .map_or("—".to_owned(), |g| format!("{:.1} %", g * 100.0));
        let kind = super::text::kind_name(c.kind);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{kind}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{exit}</td><td>{kill}</td><td>{used}</td></tr>",
            escape(&c.container),
            escape(&prestop),
            escape(&stop),
            escape(&sender),
            escape(&result)
        );
    }
    out.push_str("</table>");
}

fn startup(out: &mut String, pod: &PodAudit) {
    let Some(s) = &pod.startup else { return };
    if s.gaps.is_empty() {
        return;
    }
    out.push_str("<h3>Startup gaps (app − sidecar listening; negative = race)</h3><table><tr><th>app</th><th>sidecar</th><th>ports</th><th>first exec</th><th>first connect</th><th>first accept</th><th>exec vs ready (API)</th></tr>");
    let gap = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:+.3} s"));
    for g in &s.gaps {
        let ports: Vec<String> = g.ports.iter().map(u16::to_string).collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td></tr>",
            escape(&g.app),
            escape(&g.sidecar),
            ports.join(", "),
            gap(g.exec_gap_s),
            gap(g.connect_gap_s),
            gap(g.accept_gap_s),
            g.exec_vs_ready
        );
    }
    out.push_str("</table>");
}

fn bypass(out: &mut String, pod: &PodAudit) {
    let Some(b) = &pod.bypass else { return };
    let t = &b.total;
    let _ = write!(
        out,
        "<h3>mTLS bypass windows ({})</h3><p>{} window(s), {:.3} s in total; app flows: proxied {}, refused by capture {}, plaintext {}, excluded {}, local {}, other {}{}</p>",
        escape(&b.proxy),
        b.windows.len(),
        b.window_total_s,
        t.proxied,
        t.refused_by_capture,
        t.plaintext_bypass,
        t.excluded,
        t.local,
        t.other,
        b.unknown
            .as_ref()
            .map_or(String::new(), |u| format!(" — unknown: {}", escape(u)))
    );
}

fn findings(out: &mut String, pod: &PodAudit) {
    let _ = write!(out, "<h3>Findings ({})</h3>", pod.findings.len());
    if pod.findings.is_empty() {
        out.push_str("<p>None.</p>");
        return;
    }
    out.push_str("<ul class=\"findings\">");
    for f in &pod.findings {
        let class = match f.severity {
            Severity::Error => "sev-error",
            Severity::Warning => "sev-warning",
            Severity::Info => "sev-info",
        };
        let seqs: Vec<String> = f.evidence.iter().map(u64::to_string).collect();
        let _ = write!(
            out,
            "<li class=\"{class}\">{} {} — {} <span class=\"meta\">(evidence seq {})</span></li>",
            f.severity,
            f.rule,
            escape(&f.message),
            seqs.join(", ")
        );
    }
    out.push_str("</ul>");
}
