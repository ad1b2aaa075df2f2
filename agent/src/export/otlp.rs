//! OTLP exporters (opentelemetry-otlp) for one endpoint: gRPC through
//! tonic, or HTTP/protobuf through hyper; TLS with rustls (ring) and the
//! system's root certificates for `https://` endpoints. Their own retries
//! are off: the delivery tasks retry, so every attempt is counted.

use std::{collections::HashMap, time::Duration};

use opentelemetry_otlp::{
    MetricExporter, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
    tonic_types::{metadata::MetadataMap, transport::ClientTlsConfig},
};
use opentelemetry_sdk::{Resource, metrics::Temporality};

use super::{
    ExportError,
    config::{Endpoint, ExportConfig, Protocol},
};

fn metadata(headers: &[(String, String)]) -> Result<MetadataMap, ExportError> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| ExportError::HeaderInvalid(k.clone()))?;
        let value =
            http::HeaderValue::from_str(v).map_err(|_| ExportError::HeaderInvalid(k.clone()))?;
        map.append(name, value);
    }
    Ok(MetadataMap::from_headers(map))
}

fn header_map(headers: &[(String, String)]) -> HashMap<String, String> {
    headers.iter().cloned().collect()
}

fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

fn http_client(
    url: &str,
    timeout: Duration,
) -> Result<std::sync::Arc<dyn opentelemetry_http::HttpClient>, ExportError> {
    use opentelemetry_http::hyper::HyperClient;
    if is_https(url) {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(ExportError::TlsUnavailable)?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(std::sync::Arc::new(HyperClient::new(
            connector, timeout, None,
        )))
    } else {
        Ok(std::sync::Arc::new(HyperClient::with_default_connector(
            timeout, None,
        )))
    }
}

fn build_failed(
    signal: &'static str,
    source: opentelemetry_otlp::ExporterBuildError,
) -> ExportError {
    ExportError::ExporterBuildFailed { signal, source }
}

/// The settings every gRPC exporter gets: endpoint, timeout, headers as
/// metadata, TLS for `https://`, the library's retries off.
fn over_grpc<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    endpoint: &Endpoint,
    config: &ExportConfig,
) -> Result<B, ExportError> {
    let builder = builder
        .with_endpoint(endpoint.url.clone())
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .with_timeout(config.timeout)
        .with_retry_policy(RetryPolicy::disabled())
        .with_metadata(metadata(&config.headers)?);
    Ok(match is_https(&endpoint.url) {
        true => builder.with_tls_config(ClientTlsConfig::new().with_native_roots()),
        false => builder,
    })
}

/// The settings every HTTP/protobuf exporter gets: endpoint, timeout,
/// headers, the shared hyper client, the library's retries off.
fn over_http<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    endpoint: &Endpoint,
    config: &ExportConfig,
) -> Result<B, ExportError> {
    Ok(builder
        .with_endpoint(endpoint.url.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(config.timeout)
        .with_retry_policy(RetryPolicy::disabled())
        .with_headers(header_map(&config.headers))
        .with_shared_http_client(http_client(&endpoint.url, config.timeout)?))
}

/// The span exporter for `endpoint`, carrying `resource`.
pub fn span_exporter(
    endpoint: &Endpoint,
    config: &ExportConfig,
    resource: &Resource,
) -> Result<SpanExporter, ExportError> {
    use opentelemetry_sdk::trace::SpanExporter as _;
    let builder = SpanExporter::builder();
    let mut exporter = match endpoint.protocol {
        Protocol::Grpc => over_grpc(builder.with_tonic(), endpoint, config)?.build(),
        Protocol::HttpProtobuf => over_http(builder.with_http(), endpoint, config)?.build(),
    }
    .map_err(|e| build_failed("traces", e))?;
    exporter.set_resource(resource);
    Ok(exporter)
}

/// The metric exporter for `endpoint` (cumulative temporality; the
/// resource comes with the collected metrics).
pub fn metric_exporter(
    endpoint: &Endpoint,
    config: &ExportConfig,
) -> Result<MetricExporter, ExportError> {
    let builder = MetricExporter::builder();
    match endpoint.protocol {
        Protocol::Grpc => {
            let builder = builder
                .with_tonic()
                .with_temporality(Temporality::Cumulative);
            over_grpc(builder, endpoint, config)?.build()
        }
        Protocol::HttpProtobuf => {
            let builder = builder
                .with_http()
                .with_temporality(Temporality::Cumulative);
            over_http(builder, endpoint, config)?.build()
        }
    }
    .map_err(|e| build_failed("metrics", e))
}
