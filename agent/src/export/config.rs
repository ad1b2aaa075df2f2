//! Export settings: the `ExportArgs` flags (each with a
//! `LIFECYCLE_AGENT_...` variable) and, where a flag is not given, the
//! standard OpenTelemetry variables (`OTEL_EXPORTER_OTLP_*`,
//! `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`), resolved into an [`ExportConfig`].
//!
//! Endpoints follow the OTLP exporter specification: the generic endpoint
//! is a base URL (HTTP appends `/v1/traces` and `/v1/metrics`; gRPC uses it
//! as is), a signal's own endpoint is used as is. No endpoint: OTLP export
//! of that signal is off.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::ExportError;

/// How OTLP is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// OTLP/gRPC (usually port 4317).
    #[value(name = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (usually port 4318).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    pub fn parse(value: &str) -> Result<Self, ExportError> {
        match value.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(ExportError::ProtocolUnsupported(other.to_owned())),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// OpenTelemetry export (OTLP traces and metrics) and the metric labels.
#[derive(Clone, Debug, Args)]
pub struct ExportArgs {
    /// OTLP base endpoint for traces and metrics, e.g.
    /// `http://otel-collector:4318` (HTTP: `/v1/traces` and `/v1/metrics`
    /// are appended) or `http://otel-collector:4317` (gRPC). Default:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; without any endpoint OTLP export is off.
    #[arg(long, env = "LIFECYCLE_AGENT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Endpoint for traces only, used as is. Default:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. `none` turns traces off.
    #[arg(long, env = "LIFECYCLE_AGENT_OTLP_TRACES_ENDPOINT")]
    pub otlp_traces_endpoint: Option<String>,
    /// Endpoint for metrics only, used as is. Default:
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`. `none` turns OTLP metrics off.
    #[arg(long, env = "LIFECYCLE_AGENT_OTLP_METRICS_ENDPOINT")]
    pub otlp_metrics_endpoint: Option<String>,
    /// `grpc` or `http/protobuf`. Default: `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// (or the signal's `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL`),
    /// else `http/protobuf`.
    #[arg(long, env = "LIFECYCLE_AGENT_OTLP_PROTOCOL", value_enum)]
    pub otlp_protocol: Option<Protocol>,
    /// Header sent with every export, `key=value` (repeat the flag, or
    /// comma-separated in the variable). `OTEL_EXPORTER_OTLP_HEADERS` (and
    /// the signal's `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_HEADERS`) are
    /// added by the exporter library and win on the same key.
    #[arg(
        long = "otlp-header",
        env = "LIFECYCLE_AGENT_OTLP_HEADERS",
        value_delimiter = ','
    )]
    pub otlp_headers: Vec<String>,
    /// Longest one export request may take. Default:
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s.
    #[arg(long, env = "LIFECYCLE_AGENT_OTLP_TIMEOUT", value_parser = humantime::parse_duration)]
    pub otlp_timeout: Option<Duration>,
    /// `service.name` of the agent's telemetry. Default: `OTEL_SERVICE_NAME`,
    /// else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else
    /// `lifecycle-agent`.
    #[arg(long, env = "LIFECYCLE_AGENT_SERVICE_NAME")]
    pub service_name: Option<String>,
    /// Most spans waiting for delivery; when full the oldest traces are
    /// dropped (and counted).
    #[arg(
        long,
        env = "LIFECYCLE_AGENT_EXPORT_QUEUE_SPANS",
        default_value_t = DEFAULT_QUEUE_SPANS
    )]
    pub export_queue_spans: usize,
    /// Most spans in one export request.
    #[arg(
        long,
        env = "LIFECYCLE_AGENT_EXPORT_BATCH_SPANS",
        default_value_t = DEFAULT_BATCH_SPANS
    )]
    pub export_batch_spans: usize,
    /// Wait before the first retry of a failed export; doubled at each
    /// retry.
    #[arg(long, env = "LIFECYCLE_AGENT_EXPORT_RETRY_INITIAL", default_value = DEFAULT_RETRY_INITIAL, value_parser = humantime::parse_duration)]
    pub export_retry_initial: Duration,
    /// Longest wait between two retries.
    #[arg(long, env = "LIFECYCLE_AGENT_EXPORT_RETRY_MAX", default_value = DEFAULT_RETRY_MAX, value_parser = humantime::parse_duration)]
    pub export_retry_max: Duration,
    /// Retries of one failed export before its spans are dropped (counted).
    #[arg(
        long,
        env = "LIFECYCLE_AGENT_EXPORT_RETRY_ATTEMPTS",
        default_value_t = DEFAULT_RETRY_ATTEMPTS
    )]
    pub export_retry_attempts: u32,
    /// Interval of OTLP metric exports. Default:
    /// `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds), else 60 s.
    #[arg(long, env = "LIFECYCLE_AGENT_METRICS_EXPORT_INTERVAL", value_parser = humantime::parse_duration)]
    pub metrics_export_interval: Option<Duration>,
    /// Label audit metrics with `k8s.pod.name` and `k8s.container.name`
    /// too (one series per pod: unbounded over time; off by default).
    #[arg(long, env = "LIFECYCLE_AGENT_METRICS_POD_LABELS")]
    pub metrics_pod_labels: bool,
}

/// Most spans waiting for delivery.
pub const DEFAULT_QUEUE_SPANS: usize = 4096;
/// Most spans in one export request.
pub const DEFAULT_BATCH_SPANS: usize = 512;
/// First retry delay (humantime text: clap parses it, and so does
/// [`ExportArgs::default`]).
pub const DEFAULT_RETRY_INITIAL: &str = "250ms";
/// Longest retry delay (humantime text).
pub const DEFAULT_RETRY_MAX: &str = "30s";
/// Retries of one export before its spans are dropped.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 8;

/// A default duration written as humantime text.
fn default_duration(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| panic!("default {text:?}: {e}"))
}

impl Default for ExportArgs {
    /// The flags' defaults: no endpoint given.
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            otlp_traces_endpoint: None,
            otlp_metrics_endpoint: None,
            otlp_protocol: None,
            otlp_headers: Vec::new(),
            otlp_timeout: None,
            service_name: None,
            export_queue_spans: DEFAULT_QUEUE_SPANS,
            export_batch_spans: DEFAULT_BATCH_SPANS,
            export_retry_initial: default_duration(DEFAULT_RETRY_INITIAL),
            export_retry_max: default_duration(DEFAULT_RETRY_MAX),
            export_retry_attempts: DEFAULT_RETRY_ATTEMPTS,
            metrics_export_interval: None,
            metrics_pod_labels: false,
        }
    }
}

/// Where one signal goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Full URL (HTTP: including the `/v1/...` path).
    pub url: String,
    pub protocol: Protocol,
}

/// Retries of one export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    pub initial: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub attempts: u32,
}

impl RetryConfig {
    /// The wait before retry `n` (from 1): `initial * 2^(n-1)`, capped.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max_delay)
    }
}

/// Metric labelling choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricOptions {
    /// Add `k8s.pod.name` / `k8s.container.name` to audit metrics.
    pub pod_labels: bool,
}

/// Export settings after flags and environment are combined.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportConfig {
    pub traces: Option<Endpoint>,
    pub metrics: Option<Endpoint>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub queue_spans: usize,
    pub batch_spans: usize,
    pub retry: RetryConfig,
    pub metrics_interval: Duration,
    pub metric_options: MetricOptions,
    pub service_name: String,
    /// From `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource_attributes: Vec<(String, String)>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SERVICE_NAME: &str = "lifecycle-agent";

impl ExportArgs {
    /// Resolves the flags against the process environment.
    pub fn config(&self) -> Result<ExportConfig, ExportError> {
        self.config_with(|name| std::env::var(name).ok())
    }

    /// Resolves the flags against `env` (a variable lookup).
    pub fn config_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ExportConfig, ExportError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let protocol_for = |signal: &str| -> Result<Protocol, ExportError> {
            if let Some(p) = self.otlp_protocol {
                return Ok(p);
            }
            match env(&format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"))
                .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            {
                Some(p) => Protocol::parse(&p),
                None => Ok(Protocol::HttpProtobuf),
            }
        };
        let base = self
            .otlp_endpoint
            .clone()
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let endpoint = |own: &Option<String>, signal: &str, path: &str| {
            let protocol = protocol_for(signal)?;
            let url = match own
                .clone()
                .or_else(|| env(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
            {
                Some(url) => Some(url),
                None => base.as_ref().map(|b| match protocol {
                    Protocol::Grpc => b.clone(),
                    Protocol::HttpProtobuf => format!("{}{path}", b.trim_end_matches('/')),
                }),
            };
            match url.map(|u| u.trim().to_owned()) {
                None => Ok(None),
                Some(u) if u.is_empty() || u == "none" => Ok(None),
                Some(u) => {
                    check_url(&u)?;
                    Ok(Some(Endpoint { url: u, protocol }))
                }
            }
        };
        let traces = endpoint(&self.otlp_traces_endpoint, "TRACES", "/v1/traces")?;
        let metrics = endpoint(&self.otlp_metrics_endpoint, "METRICS", "/v1/metrics")?;

        // The exporter library applies OTEL_EXPORTER_OTLP_HEADERS after the
        // configured headers, so on the same key the variable wins; the
        // resolved list says what will really be sent.
        let mut headers: Vec<(String, String)> = Vec::new();
        let from_env = match env("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(h) => parse_pairs(&h, "OTEL_EXPORTER_OTLP_HEADERS")?,
            None => Vec::new(),
        };
        for flag in &self.otlp_headers {
            headers.extend(parse_pairs(flag, "--otlp-header")?);
        }
        for (k, v) in from_env {
            headers.retain(|(key, _)| !key.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
        let millis = |name: &str| -> Result<Option<Duration>, ExportError> {
            env(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|_| ExportError::SettingInvalid {
                            setting: name.to_owned(),
                            value: v,
                        })
                })
                .transpose()
        };
        let timeout = match self.otlp_timeout {
            Some(t) => t,
            None => millis("OTEL_EXPORTER_OTLP_TIMEOUT")?.unwrap_or(DEFAULT_TIMEOUT),
        };
        let metrics_interval = match self.metrics_export_interval {
            Some(t) => t,
            None => millis("OTEL_METRIC_EXPORT_INTERVAL")?.unwrap_or(DEFAULT_METRICS_INTERVAL),
        };
        if metrics_interval.is_zero() {
            return Err(ExportError::SettingInvalid {
                setting: "metrics export interval".into(),
                value: "0".into(),
            });
        }
        let resource_attributes = match env("OTEL_RESOURCE_ATTRIBUTES") {
            Some(a) => parse_pairs(&a, "OTEL_RESOURCE_ATTRIBUTES")?,
            None => Vec::new(),
        };
        let service_name = self
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME"))
            .or_else(|| {
                resource_attributes
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        if self.export_queue_spans == 0 || self.export_batch_spans == 0 {
            return Err(ExportError::SettingInvalid {
                setting: "export queue / batch size".into(),
                value: "0".into(),
            });
        }
        Ok(ExportConfig {
            traces,
            metrics,
            headers,
            timeout,
            queue_spans: self.export_queue_spans,
            batch_spans: self.export_batch_spans.min(self.export_queue_spans),
            retry: RetryConfig {
                initial: self.export_retry_initial,
                max_delay: self.export_retry_max.max(self.export_retry_initial),
                attempts: self.export_retry_attempts,
            },
            metrics_interval,
            metric_options: MetricOptions {
                pod_labels: self.metrics_pod_labels,
            },
            service_name,
            resource_attributes,
        })
    }
}

impl Default for ExportConfig {
    /// The flags' defaults, offline.
    fn default() -> Self {
        Self::offline(&ExportArgs::default())
    }
}

impl ExportConfig {
    /// The settings of `args` without any OTLP endpoint and without the
    /// environment (tests, benchmarks, offline exports of metrics text).
    pub fn offline(args: &ExportArgs) -> Self {
        Self {
            traces: None,
            metrics: None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            queue_spans: args.export_queue_spans.max(1),
            batch_spans: args.export_batch_spans.max(1),
            retry: RetryConfig {
                initial: args.export_retry_initial,
                max_delay: args.export_retry_max,
                attempts: args.export_retry_attempts,
            },
            metrics_interval: DEFAULT_METRICS_INTERVAL,
            metric_options: MetricOptions {
                pod_labels: args.metrics_pod_labels,
            },
            service_name: args
                .service_name
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned()),
            resource_attributes: Vec::new(),
        }
    }

    /// Whether anything is sent over OTLP.
    pub fn otlp_enabled(&self) -> bool {
        self.traces.is_some() || self.metrics.is_some()
    }
}

fn check_url(url: &str) -> Result<(), ExportError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(ExportError::EndpointInvalid(url.to_owned())),
    }
}

/// `k1=v1,k2=v2` with percent-encoded values (W3C baggage style, as the
/// OpenTelemetry variables use).
pub fn parse_pairs(text: &str, setting: &str) -> Result<Vec<(String, String)>, ExportError> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| ExportError::SettingInvalid {
                    setting: setting.to_owned(),
                    value: pair.to_owned(),
                })?;
            let k = k.trim();
            if k.is_empty() {
                return Err(ExportError::SettingInvalid {
                    setting: setting.to_owned(),
                    value: pair.to_owned(),
                });
            }
            Ok((percent_decode(k.trim()), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        export: ExportArgs,
    }

    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<ExportConfig, ExportError> {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cli.export.config_with(|k| env.get(k).cloned())
    }

    #[test]
    fn nothing_configured_means_no_otlp() {
        let c = resolve(&[], &[]).unwrap();
        assert!(!c.otlp_enabled());
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.service_name, "lifecycle-agent");
        assert!(!c.metric_options.pod_labels);
    }

    #[test]
    fn generic_endpoint_gets_signal_paths_over_http_only() {
        let c = resolve(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://col:4318/")]).unwrap();
        assert_eq!(c.traces.unwrap().url, "http://col:4318/v1/traces");
        assert_eq!(c.metrics.unwrap().url, "http://col:4318/v1/metrics");
        let c = resolve(
            &["--otlp-protocol", "grpc"],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://col:4317")],
        )
        .unwrap();
        let t = c.traces.unwrap();
        assert_eq!(
            (t.url.as_str(), t.protocol),
            ("http://col:4317", Protocol::Grpc)
        );
    }

    #[test]
    fn flags_win_over_standard_variables() {
        let c = resolve(
            &[
                "--otlp-traces-endpoint",
                "https://traces.example:443/x",
                "--otlp-metrics-endpoint",
                "none",
                "--otlp-header",
                "authorization=Bearer b",
                "--otlp-timeout",
                "3s",
                "--service-name",
                "agent-a",
            ],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://col:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "Authorization=a,x-tenant=t%201",
                ),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
                ("OTEL_SERVICE_NAME", "other"),
            ],
        )
        .unwrap();
        let t = c.traces.unwrap();
        assert_eq!(t.url, "https://traces.example:443/x");
        assert_eq!(t.protocol, Protocol::Grpc);
        assert!(c.metrics.is_none());
        assert_eq!(
            c.headers,
            vec![
                ("Authorization".to_owned(), "a".to_owned()),
                ("x-tenant".to_owned(), "t 1".to_owned()),
            ],
            "the variable wins on a key, as the exporter library applies it last"
        );
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.service_name, "agent-a");
    }

    #[test]
    fn standard_variables_fill_in() {
        let c = resolve(
            &[],
            &[
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://m:4318/v1/metrics",
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=from-attrs,deployment.environment=prod",
                ),
            ],
        )
        .unwrap();
        assert!(c.traces.is_none());
        assert_eq!(c.metrics.unwrap().url, "http://m:4318/v1/metrics");
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.metrics_interval, Duration::from_secs(15));
        assert_eq!(c.service_name, "from-attrs");
        assert_eq!(c.resource_attributes.len(), 2);
    }

    #[test]
    fn bad_settings_are_refused_with_what_failed() {
        let e = resolve(
            &[],
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ],
        );
        assert!(matches!(e, Err(ExportError::ProtocolUnsupported(_))));
        let e = resolve(&["--otlp-endpoint", "col:4317"], &[]);
        assert!(matches!(e, Err(ExportError::EndpointInvalid(_))));
        let e = resolve(&["--otlp-header", "novalue"], &[]);
        assert!(matches!(e, Err(ExportError::SettingInvalid { .. })));
        let e = resolve(&[], &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]);
        assert!(matches!(e, Err(ExportError::SettingInvalid { .. })));
    }

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let r = RetryConfig {
            initial: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            attempts: 5,
        };
        let d: Vec<u128> = (1..=5).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 700, 700]);
    }
}
