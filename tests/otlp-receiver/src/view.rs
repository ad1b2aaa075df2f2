//! Reading decoded OTLP data in tests: attributes by key, metrics by name,
//! data points by label.

use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{Metric, NumberDataPoint, metric::Data, number_data_point},
};

use crate::Received;

/// The value of `key` in `attrs`.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

pub fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

pub fn attr_i64(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        Value::IntValue(v) => Some(*v),
        _ => None,
    }
}

pub fn attr_f64(attrs: &[KeyValue], key: &str) -> Option<f64> {
    match attr(attrs, key)? {
        Value::DoubleValue(v) => Some(*v),
        _ => None,
    }
}

pub fn attr_bool(attrs: &[KeyValue], key: &str) -> Option<bool> {
    match attr(attrs, key)? {
        Value::BoolValue(v) => Some(*v),
        _ => None,
    }
}

/// Whether every `(key, value)` of `filter` is a string attribute of
/// `attrs`.
pub fn matches(attrs: &[KeyValue], filter: &[(&str, &str)]) -> bool {
    filter.iter().all(|(k, v)| attr_str(attrs, k) == Some(*v))
}

/// The metric `name` as last received (cumulative values: the latest
/// request holds the totals).
pub fn latest_metric(
    requests: &[Received<ExportMetricsServiceRequest>],
    name: &str,
) -> Option<Metric> {
    requests.iter().rev().find_map(|r| {
        r.request
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .find(|m| m.name == name)
            .cloned()
    })
}

/// Every metric name received.
pub fn metric_names(requests: &[Received<ExportMetricsServiceRequest>]) -> Vec<String> {
    let mut names: Vec<String> = requests
        .iter()
        .flat_map(|r| &r.request.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| m.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        Some(number_data_point::Value::AsDouble(v)) => v,
        None => 0.0,
    }
}

/// Sum of the points of a sum or gauge whose labels match `filter`.
pub fn number_total(metric: &Metric, filter: &[(&str, &str)]) -> f64 {
    let points: &[NumberDataPoint] = match &metric.data {
        Some(Data::Sum(s)) => &s.data_points,
        Some(Data::Gauge(g)) => &g.data_points,
        _ => &[],
    };
    points
        .iter()
        .filter(|p| matches(&p.attributes, filter))
        .map(number)
        .sum()
}

/// (count, sum) of the histogram points whose labels match `filter`.
pub fn histogram_totals(metric: &Metric, filter: &[(&str, &str)]) -> (u64, f64) {
    match &metric.data {
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .filter(|p| matches(&p.attributes, filter))
            .fold((0, 0.0), |(c, s), p| {
                (c + p.count, s + p.sum.unwrap_or(0.0))
            }),
        _ => (0, 0.0),
    }
}
