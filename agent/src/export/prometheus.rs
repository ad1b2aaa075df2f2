//! The metrics as Prometheus text (exposition format 0.0.4).
//!
//! Names follow OpenTelemetry's Prometheus compatibility rules, the same a
//! Collector's Prometheus exporter applies: `.` and other invalid
//! characters become `_`; the unit adds a suffix (`s` -> `_seconds`, `1`
//! -> `_ratio` on gauges and histograms; `{...}` units none); counters end
//! in `_total`. So `lifecycle.termination.sigterm_to_exit` (unit `s`) is
//! `lifecycle_termination_sigterm_to_exit_seconds`, and
//! `lifecycle.findings` is `lifecycle_findings_total`. Attribute keys
//! become labels the same way (`k8s.namespace.name` ->
//! `k8s_namespace_name`).

use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// `Content-Type` of the text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn label_name(key: &str) -> String {
    sanitize(key).replace(':', "_")
}

/// The Prometheus family name of an OpenTelemetry metric.
pub fn family_name(name: &str, unit: &str, counter: bool) -> String {
    let mut out = sanitize(name);
    let suffix = match unit {
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "By" => Some("bytes"),
        "1" if !counter => Some("ratio"),
        _ => None,
    };
    if let Some(s) = suffix
        && !out.ends_with(s)
    {
        out.push('_');
        out.push_str(s);
    }
    if counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// `{a="x",b="y"}` with `extra` appended (e.g. `le`); empty without labels.
fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<(String, String)> = attrs
        .map(|kv| (label_name(kv.key.as_str()), kv.value.as_str().into_owned()))
        .collect();
    pairs.sort();
    if let Some((k, v)) = extra {
        pairs.push((k.to_owned(), v.to_owned()));
    }
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
        .collect();
    format!("{{{}}}", body.join(","))
}

trait AsF64: Copy {
    fn as_f64(self) -> f64;
}
impl AsF64 for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}
impl AsF64 for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}
impl AsF64 for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

fn family<T: AsF64>(out: &mut String, m: &Metric, data: &MetricData<T>) {
    let (kind, counter) = match data {
        MetricData::Sum(s) if s.is_monotonic() => ("counter", true),
        MetricData::Sum(_) | MetricData::Gauge(_) => ("gauge", false),
        MetricData::Histogram(_) => ("histogram", false),
        // Not used by the agent; Prometheus text has no equivalent.
        MetricData::ExponentialHistogram(_) => return,
    };
    let name = family_name(m.name(), m.unit(), counter);
    let _ = writeln!(out, "# HELP {name} {}", escape_help(m.description()));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let mut lines: Vec<String> = Vec::new();
    match data {
        MetricData::Sum(s) => {
            for p in s.data_points() {
                lines.push(format!(
                    "{name}{} {}",
                    labels(p.attributes(), None),
                    number(p.value().as_f64())
                ));
            }
        }
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                lines.push(format!(
                    "{name}{} {}",
                    labels(p.attributes(), None),
                    number(p.value().as_f64())
                ));
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                let mut block = String::new();
                let mut cumulative = 0u64;
                let bounds: Vec<f64> = p.bounds().collect();
                for (i, count) in p.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| number(*b));
                    let _ = writeln!(
                        block,
                        "{name}_bucket{} {cumulative}",
                        labels(p.attributes(), Some(("le", &le)))
                    );
                }
                if bounds.len() + 1 != p.bucket_counts().count() {
                    let _ = writeln!(
                        block,
                        "{name}_bucket{} {}",
                        labels(p.attributes(), Some(("le", "+Inf"))),
                        p.count()
                    );
                }
                let l = labels(p.attributes(), None);
                let _ = writeln!(block, "{name}_sum{l} {}", number(p.sum().as_f64()));
                let _ = write!(block, "{name}_count{l} {}", p.count());
                lines.push(block);
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
    lines.sort();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}

/// Renders every metric of `rm`.
pub fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::new();
    let mut metrics: Vec<&Metric> = rm.scope_metrics().flat_map(|s| s.metrics()).collect();
    metrics.sort_by_key(|m| m.name());
    for m in metrics {
        match m.data() {
            AggregatedMetrics::F64(d) => family(&mut out, m, d),
            AggregatedMetrics::U64(d) => family(&mut out, m, d),
            AggregatedMetrics::I64(d) => family(&mut out, m, d),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_prometheus_rules() {
        assert_eq!(
            family_name("lifecycle.termination.sigterm_to_exit", "s", false),
            "lifecycle_termination_sigterm_to_exit_seconds"
        );
        assert_eq!(
            family_name("lifecycle.termination.grace_used", "1", false),
            "lifecycle_termination_grace_used_ratio"
        );
        assert_eq!(
            family_name("lifecycle.findings", "{finding}", true),
            "lifecycle_findings_total"
        );
        assert_eq!(
            family_name("lifecycle.agent.ready", "", false),
            "lifecycle_agent_ready"
        );
        assert_eq!(label_name("k8s.namespace.name"), "k8s_namespace_name");
        assert_eq!(escape_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(0.005), "0.005");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
