//! The SVG timeline of one pod: a lane per container with its runs (PID 1
//! alive), runtime execs and preStop hooks, listening periods and signal
//! markers; bypass windows shaded across the lanes; t0 and the grace
//! deadline as vertical lines. Every mark carries a `<title>` tooltip.

use std::fmt::Write;

use super::escape;
use crate::{PodAudit, bypass::traffic::FlowClass, fmt::to_s};

const WIDTH: f64 = 1100.0;
const LABEL: f64 = 190.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 28.0;
const LANE: f64 = 34.0;

struct Scale {
    start: i64,
    end: i64,
    /// Times are labelled relative to this (the pod's first record).
    origin: i64,
}

impl Scale {
    fn x(&self, ns: i64) -> f64 {
        let span = (self.end - self.start).max(1) as f64;
        let clamped = ns.clamp(self.start, self.end);
        LABEL + (clamped - self.start) as f64 / span * (WIDTH - LABEL - RIGHT)
    }

    fn rel(&self, ns: i64) -> String {
        format!("{:+.3} s", to_s(ns - self.origin))
    }
}

/// A tick step giving about eight ticks over `span_s`.
fn tick_step(span_s: f64) -> f64 {
    let steps = [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
        60.0, 120.0, 300.0, 600.0,
    ];
    steps
        .iter()
        .copied()
        .find(|s| span_s / s <= 10.0)
        .unwrap_or(3600.0)
}

fn scale_of(pod: &PodAudit) -> Scale {
    let mut end = pod.last_ns;
    if let Some(d) = pod.termination.as_ref().and_then(|t| t.deadline)
        && d > end
        && d - end < 5_000_000_000
    {
        end = d;
    }
    let span = (end - pod.first_ns).max(1_000_000);
    Scale {
        start: pod.first_ns - span / 50,
        end: pod.first_ns + span + span / 50,
        origin: pod.first_ns,
    }
}

fn rect(out: &mut String, class: &str, x0: f64, x1: f64, y: f64, h: f64, title: &str) {
    let _ = write!(
        out,
        r#"<rect class="{class}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"><title>{}</title></rect>"#,
        (x1 - x0).max(1.5),
        escape(title)
    );
}

/// The SVG of one pod.
pub fn timeline(pod: &PodAudit) -> String {
    let scale = scale_of(pod);
    let lanes_h = LANE * pod.lanes.len() as f64;
    let height = TOP + lanes_h + 24.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline of {}">"#,
        escape(&pod.pod.name)
    );
    axis(&mut out, &scale, height);
    for (i, lane) in pod.lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        let kind = crate::report::text::kind_name(lane.kind);
        let _ = write!(
            out,
            r#"<g class="lane" data-container="{}" data-kind="{}">"#,
            escape(&lane.container),
            escape(&kind)
        );
        rect(
            &mut out,
            "lane-bg",
            LABEL,
            WIDTH - RIGHT,
            y + 2.0,
            LANE - 4.0,
            &lane.container,
        );
        let _ = write!(
            out,
            r#"<text class="label" x="8" y="{:.1}">{}</text><text class="sublabel" x="8" y="{:.1}">{}</text>"#,
            y + 15.0,
            escape(&lane.container),
            y + 28.0,
            escape(&kind)
        );
        for run in &lane.runs {
            let x0 = run.start.map_or(scale.x(scale.start), |a| scale.x(a.ns));
            let x1 = run.end.map_or(scale.x(scale.end), |a| scale.x(a.ns));
            let title = format!(
                "PID 1 (pid {}) {} → {}{}",
                run.pid,
                run.start
                    .map_or("before the recording".to_owned(), |a| scale.rel(a.ns)),
                run.end
                    .map_or("still running".to_owned(), |a| scale.rel(a.ns)),
                run.exit_code
                    .map_or(String::new(), |c| format!(", exit code {c}"))
            );
            rect(&mut out, "run", x0, x1, y + 9.0, 14.0, &title);
        }
        for hook in &lane.hooks {
            let class = if hook.prestop { "hook prestop" } else { "hook" };
            let x1 = hook.end.map_or(scale.x(scale.end), |a| scale.x(a.ns));
            let title = format!(
                "{} {} from {}",
                if hook.prestop { "preStop" } else { "exec" },
                hook.filename,
                scale.rel(hook.start.ns)
            );
            rect(
                &mut out,
                class,
                scale.x(hook.start.ns),
                x1,
                y + 3.0,
                5.0,
                &title,
            );
        }
        for l in &lane.listens {
            let x0 = l.start.map_or(scale.x(scale.start), |a| scale.x(a.ns));
            let x1 = l.end.map_or(scale.x(scale.end), |a| scale.x(a.ns));
            rect(
                &mut out,
                "listen",
                x0,
                x1,
                y + 25.0,
                4.0,
                &format!("listening on :{}", l.port),
            );
        }
        for s in &lane.signals {
            let x = scale.x(s.at.ns);
            let class = match s.name.as_str() {
                "SIGKILL" => "signal kill",
                "SIGTERM" => "signal term",
                _ => "signal",
            };
            let _ = write!(
                out,
                r#"<path class="{class}" d="M{:.1} {:.1} l-5 -8 h10 z"><title>{} from {} at {}{}</title></path>"#,
                x,
                y + 10.0,
                escape(&s.name),
                s.sender.describe(),
                scale.rel(s.at.ns),
                if s.to_pid1 { "" } else { " (not PID 1)" }
            );
        }
        flows(&mut out, pod, &scale, &lane.container, y);
        out.push_str("</g>");
    }
    if let Some(b) = &pod.bypass {
        for w in &b.windows {
            let title = format!(
                "bypass window {:?}: {:.3} s, refused {}, plaintext {}",
                w.cause, w.duration_s, w.counts.refused_by_capture, w.counts.plaintext_bypass
            );
            rect(
                &mut out,
                "bypass",
                scale.x(w.start.ns),
                scale.x(w.end.ns),
                TOP,
                lanes_h,
                &title,
            );
        }
    }
    if let Some(t) = &pod.termination {
        let mut marker = |ns: i64, label: &str, class: &str| {
            let x = scale.x(ns);
            let _ = write!(
                out,
                r#"<line class="{class}" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="marker" x="{:.1}" y="{:.1}">{label}</text>"#,
                TOP - 4.0,
                TOP + lanes_h,
                x + 3.0,
                TOP + lanes_h + 14.0
            );
        };
        if let crate::termination::Trigger::Deletion { observed, .. } = t.trigger {
            marker(observed.ns, "delete", "delete");
        }
        if let Some(t0) = t.t0 {
            marker(t0.ns, "t0", "t0");
        }
        if let Some(d) = t.deadline
            && d <= scale.end
        {
            marker(d, "t0+G", "deadline");
        }
    }
    out.push_str("</svg>");
    out
}

/// Refused and plaintext flows of a lane's container, as small marks.
fn flows(out: &mut String, pod: &PodAudit, scale: &Scale, container: &str, y: f64) {
    let Some(b) = &pod.bypass else { return };
    for f in b.flows.iter().filter(|f| f.container == container) {
        let class = match f.class {
            FlowClass::RefusedByCapture => "flow refused",
            FlowClass::PlaintextBypass => "flow plaintext",
            _ => continue,
        };
        let _ = write!(
            out,
            r#"<circle class="{class}" cx="{:.1}" cy="{:.1}" r="3"><title>{:?} {} -> {} at {}: {}</title></circle>"#,
            scale.x(f.at.ns),
            y + 16.0,
            f.class,
            escape(&f.local),
            escape(&f.remote),
            scale.rel(f.at.ns),
            escape(&f.reason)
        );
    }
}

fn axis(out: &mut String, scale: &Scale, height: f64) {
    let step = tick_step(to_s(scale.end - scale.start));
    let from = to_s(scale.start - scale.origin);
    let to = to_s(scale.end - scale.origin);
    let mut k = (from / step).ceil() as i64;
    while (k as f64) * step <= to {
        let t = k as f64 * step;
        let x = scale.x(scale.origin + (t * 1e9) as i64);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick-label" x="{x:.1}" y="14">{}</text>"#,
            TOP - 6.0,
            height - 24.0,
            format_tick(t, step)
        );
        k += 1;
    }
}

fn format_tick(t: f64, step: f64) -> String {
    if step < 0.01 {
        format!("{:.3} s", t)
    } else if step < 1.0 {
        format!("{:.2} s", t)
    } else {
        format!("{t:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(0.05), 0.005);
        assert_eq!(tick_step(7.0), 1.0);
        assert_eq!(tick_step(45.0), 5.0);
        assert_eq!(format_tick(0.25, 0.05), "0.25 s");
        assert_eq!(format_tick(12.0, 2.0), "12 s");
    }

    #[test]
    fn scale_clamps_to_the_plot() {
        let s = Scale {
            start: 0,
            end: 1000,
            origin: 0,
        };
        assert_eq!(s.x(0), LABEL);
        assert_eq!(s.x(2000), WIDTH - RIGHT);
        assert_eq!(s.x(-5), LABEL);
    }
}
