//! `Telemetry::prometheus_text` is valid Prometheus text (exposition
//! format 0.0.4): parsed by a real parser, checked line by line by a
//! strict checker, with values equal to the audits', and pod names only
//! when asked for.

use std::collections::{BTreeMap, HashSet};

use crate::support::export::*;
use lifecycle_agent::export::{
    ExportArgs, Telemetry,
    config::{ExportConfig, MetricOptions},
    telemetry::defs,
};

fn telemetry(pod_labels: bool) -> Telemetry {
    let mut config = ExportConfig::offline(&ExportArgs::default());
    config.metric_options = MetricOptions { pod_labels };
    let t = Telemetry::from_config(
        &config,
        &lifecycle_agent::export::ResourceInfo {
            node_name: Some(NODE.into()),
        },
    );
    for name in [LEGACY, NATIVE] {
        t.observe_stats(&last_stats(name));
        for a in audits(name) {
            t.record_audit(&a);
        }
    }
    t.set_ready(true);
    t
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{l="v",...} value` -> (name, labels, value); strict about quoting.
fn sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let (head, value) = line.rsplit_once(' ').expect("name and value");
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    let (name, labels) = match head.split_once('{') {
        None => (head.to_owned(), Vec::new()),
        Some((name, rest)) => {
            let body = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels: {line}"));
            let mut labels = Vec::new();
            let mut chars = body.chars().peekable();
            while chars.peek().is_some() {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert!(valid_name(&key), "label name {key:?} in {line}");
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut v = String::new();
                loop {
                    match chars.next().expect("closing quote") {
                        '\\' => match chars.next() {
                            Some('\\') => v.push('\\'),
                            Some('"') => v.push('"'),
                            Some('n') => v.push('\n'),
                            other => panic!("bad escape {other:?} in {line}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline"),
                        c => v.push(c),
                    }
                }
                labels.push((key, v));
                match chars.next() {
                    None => break,
                    Some(',') => {}
                    Some(c) => panic!("unexpected {c:?} in {line}"),
                }
            }
            (name.to_owned(), labels)
        }
    };
    assert!(valid_name(&name), "{name}");
    (name, labels, value)
}

/// Checks HELP/TYPE placement and histogram series; returns family types.
fn check_strictly(text: &str) -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    let mut helped = HashSet::new();
    let mut current: Option<String> = None;
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        assert!(!line.is_empty(), "no blank lines");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helped.insert(name.to_owned()), "HELP once for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE once for {name}"
            );
            current = Some(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (name, labels, value) = sample(line);
        let family = current.clone().expect("samples follow their TYPE");
        match types[&family].as_str() {
            "histogram" => {
                let key = |ls: &[(String, String)]| {
                    ls.iter()
                        .filter(|(k, _)| k != "le")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                if name == format!("{family}_bucket") {
                    let le = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .expect("le")
                        .1
                        .clone();
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    buckets
                        .entry(format!("{family}|{}", key(&labels)))
                        .or_default()
                        .push((le, value));
                } else if name == format!("{family}_count") {
                    counts.insert(format!("{family}|{}", key(&labels)), value);
                } else {
                    assert_eq!(name, format!("{family}_sum"), "{line}");
                }
            }
            "counter" => {
                assert_eq!(name, family);
                assert!(name.ends_with("_total") && value >= 0.0, "{line}");
            }
            _ => assert_eq!(name, family),
        }
    }
    for (series, b) in &buckets {
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{series}: {b:?}"
        );
        assert_eq!(b.last().unwrap().0, f64::INFINITY);
        assert_eq!(Some(&b.last().unwrap().1), counts.get(series), "{series}");
    }
    types
}

#[test]
fn prometheus_text_is_valid_and_holds_the_audit_values() {
    let text = telemetry(false).prometheus_text();
    let types = check_strictly(&text);
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    assert!(!scrape.samples.is_empty());
    assert_eq!(
        types["lifecycle_termination_sigterm_to_exit_seconds"],
        "histogram"
    );
    assert_eq!(types["lifecycle_findings_total"], "counter");
    assert_eq!(types["lifecycle_agent_ready"], "gauge");

    let all: Vec<_> = [LEGACY, NATIVE].into_iter().flat_map(audits).collect();
    let value_of = |metric: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
                prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{other:?}"),
            })
            .sum()
    };
    let rules = count_by(
        all.iter()
            .flat_map(|a| &a.findings)
            .map(|f| f.rule.to_string()),
    );
    for (rule, n) in &rules {
        assert_eq!(
            value_of(
                "lifecycle_findings_total",
                Some(("lifecycle_finding_rule", rule))
            ),
            *n as f64
        );
    }
    let refused: u32 = all
        .iter()
        .filter_map(|a| a.bypass.as_ref())
        .map(|b| b.in_windows.refused_by_capture)
        .sum();
    assert_eq!(
        value_of(
            "lifecycle_bypass_connections_total",
            Some(("lifecycle_flow_class", "refused_by_capture"))
        ),
        f64::from(refused)
    );
    assert_eq!(value_of("lifecycle_audits_total", None), all.len() as f64);
    assert_eq!(value_of("lifecycle_agent_ready", None), 1.0);
    let exits = all
        .iter()
        .filter_map(|a| a.termination.as_ref())
        .flat_map(|t| &t.containers)
        .filter(|c| c.exit.is_some() && c.stop_signal.is_some())
        .count();
    let line = text
        .lines()
        .filter(|l| l.starts_with("lifecycle_termination_sigterm_to_exit_seconds_count"))
        .map(|l| sample(l).2)
        .sum::<f64>();
    assert_eq!(line, exits as f64);

    // Bounded labels by default: no pod or container names.
    assert!(!text.contains("k8s_pod_name"), "no pod names by default");
    assert!(!text.contains("k8s_container_name"));
    for a in &all {
        assert!(!text.contains(&a.pod.name), "{} appears", a.pod.name);
    }
    // Every family is a documented metric.
    for family in types.keys() {
        assert!(
            defs::ALL.iter().any(|d| {
                lifecycle_agent::export::prometheus::family_name(
                    d.name,
                    d.unit,
                    d.instrument == defs::Instrument::Counter,
                ) == *family
            }),
            "{family} is not in defs::ALL"
        );
    }
}

#[test]
fn pod_labels_are_opt_in() {
    let text = telemetry(true).prometheus_text();
    check_strictly(&text);
    let pod = &audits(LEGACY)[0].pod.name;
    assert!(text.contains(&format!("k8s_pod_name=\"{pod}\"")));
    assert!(text.contains("k8s_container_name=\"istio-proxy\""));
}

#[test]
fn readme_documents_every_metric() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for d in defs::ALL {
        let family = lifecycle_agent::export::prometheus::family_name(
            d.name,
            d.unit,
            d.instrument == defs::Instrument::Counter,
        );
        assert!(readme.contains(d.name), "README lacks {}", d.name);
        assert!(readme.contains(&family), "README lacks {family}");
    }
}

#[test]
fn kernel_filtered_signals_are_a_counter_by_signal_and_kind() {
    let t = telemetry(false);
    let mut stats = lifecycle_agent::event::Stats::default();
    let by_kind = |generate: u64, deliver: u64| {
        BTreeMap::from([
            (
                "signal_generate".to_string(),
                BTreeMap::from([("SIGURG".to_string(), generate)]),
            ),
            (
                "signal_deliver".to_string(),
                BTreeMap::from([("SIGURG".to_string(), deliver)]),
            ),
        ])
    };
    stats.filtered_signals = by_kind(40, 30);
    t.observe_stats(&stats);
    // Cumulative in the stats lines: the counter grows by the difference.
    stats.filtered_signals = by_kind(100, 90);
    t.observe_stats(&stats);
    let text = t.prometheus_text();
    let value = |kind: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("lifecycle_agent_kernel_filtered_signals_total{"))
            .find(|l| {
                l.contains(&format!("lifecycle_event_kind=\"{kind}\""))
                    && l.contains("lifecycle_signal_name=\"SIGURG\"")
            })
            .map(|l| sample(l).2)
            .unwrap_or_else(|| panic!("no {kind} series in\n{text}"))
    };
    assert_eq!(value("signal_generate"), 100.0);
    assert_eq!(value("signal_deliver"), 90.0);
    assert!(text.contains("# TYPE lifecycle_agent_kernel_filtered_signals_total counter"));
}
