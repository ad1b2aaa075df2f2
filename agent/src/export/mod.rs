//! OpenTelemetry export: audits as traces, metrics over OTLP and as
//! Prometheus text, with bounded, retrying delivery.
//!
//! * [`config`]: the `ExportArgs` flags and the standard `OTEL_*`
//!   variables, resolved into an [`ExportConfig`];
//! * [`spans`]: a [`PodAudit`](crate::audit::PodAudit) as a termination
//!   trace and a startup trace, timed by the kernel;
//! * [`telemetry`]: the metric registry ([`Telemetry`]): audit histograms
//!   and counters, self-telemetry from `Stats` records, the exporter's own
//!   counters; [`prometheus`] renders it as text;
//! * [`exporter`]: the [`Exporter`] handle (`start`, non-blocking
//!   `submit`, `shutdown` with a deadline), [`queue`] and [`deliver`] its
//!   bounded queue and retrying tasks, [`otlp`] the opentelemetry-otlp
//!   exporters (gRPC or HTTP/protobuf, rustls);
//! * [`recording`]: the `export` command (a recording's audits, offline).
//!
//! The resource of everything exported is the agent: `service.name`,
//! `service.version`, `k8s.node.name` and `OTEL_RESOURCE_ATTRIBUTES`; the
//! pods are attributes of the spans (one export carries many pods).

pub mod config;
pub mod deliver;
pub mod exporter;
pub mod keys;
pub mod labels;
pub mod otlp;
pub mod prometheus;
pub mod queue;
pub mod recording;
pub mod seen;
pub mod spans;
pub mod telemetry;

#[cfg(test)]
mod tests;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

pub use config::{ExportArgs, ExportConfig, MetricOptions, Protocol};
pub use exporter::{ExportSummary, Exporter, Submitted};
pub use telemetry::{Telemetry, daemon::DaemonState};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unsupported OTLP protocol {0:?} (grpc, http/protobuf)")]
    ProtocolUnsupported(String),
    #[error("invalid OTLP endpoint {0:?}: expected http://host:port or https://host:port")]
    EndpointInvalid(String),
    #[error("invalid {setting}: {value:?}")]
    SettingInvalid { setting: String, value: String },
    #[error("invalid OTLP header {0:?}")]
    HeaderInvalid(String),
    #[error("cannot load root certificates for TLS")]
    TlsUnavailable(#[source] std::io::Error),
    #[error("cannot build the OTLP {signal} exporter")]
    ExporterBuildFailed {
        signal: &'static str,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("OTLP export needs a tokio runtime")]
    RuntimeMissing,
    #[error("cannot collect metrics")]
    CollectFailed(#[source] opentelemetry_sdk::error::OTelSdkError),
}

impl ExportError {
    /// Short stable name for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ProtocolUnsupported(_) => "protocol_unsupported",
            Self::EndpointInvalid(_) => "endpoint_invalid",
            Self::SettingInvalid { .. } => "setting_invalid",
            Self::HeaderInvalid(_) => "header_invalid",
            Self::TlsUnavailable(_) => "tls_unavailable",
            Self::ExporterBuildFailed { .. } => "exporter_build_failed",
            Self::RuntimeMissing => "runtime_missing",
            Self::CollectFailed(_) => "collect_failed",
        }
    }
}

/// Who the telemetry comes from, besides what the configuration says
/// (`service.name`, `OTEL_RESOURCE_ATTRIBUTES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceInfo {
    /// This node (`k8s.node.name`).
    pub node_name: Option<String>,
}

impl ResourceInfo {
    /// The OpenTelemetry resource: `service.name`, `service.version`,
    /// `k8s.node.name`, then the configured resource attributes (which
    /// never replace those).
    pub fn resource(&self, config: &ExportConfig) -> Resource {
        let mut attrs = vec![
            KeyValue::new(keys::SERVICE_NAME, config.service_name.clone()),
            KeyValue::new(keys::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
        ];
        if let Some(node) = &self.node_name {
            attrs.push(KeyValue::new(keys::K8S_NODE_NAME, node.clone()));
        }
        for (k, v) in &config.resource_attributes {
            if !attrs.iter().any(|a| a.key.as_str() == k) {
                attrs.push(KeyValue::new(k.clone(), v.clone()));
            }
        }
        Resource::builder_empty().with_attributes(attrs).build()
    }
}
