//! The pod annotations that change how a pod starts, stops or routes traffic.
//!
//! Only these are kept; every other annotation is dropped when a pod enters
//! the store. Values are parsed here once, leniently: a value that does not
//! parse is treated as absent (and logged at debug level), because the mesh
//! injector that reads the same annotation would also ignore or reject it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Istio: per-pod proxy configuration (YAML or JSON `ProxyConfig`).
pub const ISTIO_PROXY_CONFIG: &str = "proxy.istio.io/config";
/// Istio: opt a pod in or out of sidecar injection.
pub const ISTIO_INJECT: &str = "sidecar.istio.io/inject";
/// Istio: written by the injector, lists the containers it added.
pub const ISTIO_STATUS: &str = "sidecar.istio.io/status";
/// Istio: per-pod override of native-sidecar injection.
pub const ISTIO_NATIVE_SIDECAR: &str = "sidecar.istio.io/nativeSidecar";
/// Istio: outbound ports that bypass the proxy.
pub const ISTIO_EXCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";
/// Istio: inbound ports that bypass the proxy.
pub const ISTIO_EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
/// Istio: destination CIDRs that bypass the proxy.
pub const ISTIO_EXCLUDE_OUTBOUND_CIDRS: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
/// Linkerd: opt in or out of injection (`enabled`, `disabled`, `ingress`).
pub const LINKERD_INJECT: &str = "linkerd.io/inject";
/// Linkerd: written by the injector with the proxy version.
pub const LINKERD_PROXY_VERSION: &str = "linkerd.io/proxy-version";
/// Linkerd: hold the app until the proxy is ready (`enabled`/`disabled`).
pub const LINKERD_PROXY_AWAIT: &str = "config.linkerd.io/proxy-await";
/// Linkerd: preStop sleep of the proxy in legacy mode.
pub const LINKERD_WAIT_BEFORE_EXIT: &str = "config.alpha.linkerd.io/proxy-wait-before-exit-seconds";
/// Linkerd: outbound ports that bypass the proxy.
pub const LINKERD_SKIP_OUTBOUND_PORTS: &str = "config.linkerd.io/skip-outbound-ports";
/// Linkerd: inbound ports that bypass the proxy.
pub const LINKERD_SKIP_INBOUND_PORTS: &str = "config.linkerd.io/skip-inbound-ports";
/// Linkerd: inject the proxy as a native sidecar.
pub const LINKERD_NATIVE_SIDECAR: &str = "config.alpha.linkerd.io/proxy-enable-native-sidecar";

/// An inclusive port range (`15020` is `15020-15020`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (equal to `first` for a single port).
    pub last: u16,
}

impl PortRange {
    /// Whether `port` falls in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// Parses `"15020, 15021,4567-4570"`; malformed items are skipped.
pub fn parse_port_list(text: &str) -> Vec<PortRange> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let range = match item.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let p = item.parse().ok()?;
                    (p, p)
                }
            };
            (range.0 <= range.1).then_some(PortRange {
                first: range.0,
                last: range.1,
            })
        })
        .collect()
}

/// The lifecycle-relevant annotations of one pod, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleAnnotations {
    /// `sidecar.istio.io/inject`.
    pub istio_inject: Option<bool>,
    /// Containers named in `sidecar.istio.io/status` (init and regular).
    pub istio_injected: Vec<Box<str>>,
    /// `sidecar.istio.io/nativeSidecar`.
    pub istio_native_sidecar: Option<bool>,
    /// `holdApplicationUntilProxyStarts` from `proxy.istio.io/config`.
    pub istio_hold_application: Option<bool>,
    /// `terminationDrainDuration` from `proxy.istio.io/config`, as written.
    pub istio_termination_drain: Option<Box<str>>,
    /// `EXIT_ON_ZERO_ACTIVE_CONNECTIONS` from `proxy.istio.io/config`'s proxyMetadata.
    pub istio_exit_on_zero_connections: Option<bool>,
    /// `traffic.sidecar.istio.io/excludeOutboundPorts`.
    pub istio_exclude_outbound_ports: Vec<PortRange>,
    /// `traffic.sidecar.istio.io/excludeInboundPorts`.
    pub istio_exclude_inbound_ports: Vec<PortRange>,
    /// `traffic.sidecar.istio.io/excludeOutboundIPRanges`.
    pub istio_exclude_outbound_cidrs: Vec<Box<str>>,
    /// `linkerd.io/inject`, as written.
    pub linkerd_inject: Option<Box<str>>,
    /// `linkerd.io/proxy-version` is present (the injector ran).
    pub linkerd_injected: bool,
    /// `config.linkerd.io/proxy-await`.
    pub linkerd_proxy_await: Option<bool>,
    /// `config.alpha.linkerd.io/proxy-wait-before-exit-seconds`.
    pub linkerd_wait_before_exit_s: Option<u32>,
    /// `config.linkerd.io/skip-outbound-ports`.
    pub linkerd_skip_outbound_ports: Vec<PortRange>,
    /// `config.linkerd.io/skip-inbound-ports`.
    pub linkerd_skip_inbound_ports: Vec<PortRange>,
    /// `config.alpha.linkerd.io/proxy-enable-native-sidecar`.
    pub linkerd_native_sidecar: Option<bool>,
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "enabled" | "yes" | "y" | "1" => Some(true),
        "false" | "disabled" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Reads top-level (and nested) `key: value` pairs of a `ProxyConfig`
/// written as JSON or as simple YAML (block or flow style).
fn proxy_config_value(text: &str, key: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        return find_json_key(&json, key);
    }
    text.split(['\n', ',', '{', '}'])
        .filter_map(|piece| piece.split_once(':'))
        .find(|(k, _)| k.trim().trim_matches(['"', '\'']) == key)
        .map(|(_, v)| v.trim().trim_matches(['"', '\'']).to_owned())
}

fn find_json_key(value: &Value, key: &str) -> Option<String> {
    let object = value.as_object()?;
    if let Some(found) = object.get(key) {
        return Some(match found {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    object.values().find_map(|v| find_json_key(v, key))
}

/// Names listed by Istio's injector in `sidecar.istio.io/status`.
fn istio_injected_containers(text: &str) -> Vec<Box<str>> {
    // An unparseable status names no container: classification then falls
    // back to names and images.
    let Ok(status) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| status.get(*list)?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .map(Box::from)
        .collect()
}

impl LifecycleAnnotations {
    /// Extracts the known annotations; everything else is ignored.
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let Some(a) = annotations else {
            return Self::default();
        };
        let get = |key: &str| a.get(key).map(String::as_str);
        let proxy_config = get(ISTIO_PROXY_CONFIG).unwrap_or_default();
        let config = |key: &str| proxy_config_value(proxy_config, key);
        Self {
            istio_inject: get(ISTIO_INJECT).and_then(parse_bool),
            istio_injected: get(ISTIO_STATUS)
                .map(istio_injected_containers)
                .unwrap_or_default(),
            istio_native_sidecar: get(ISTIO_NATIVE_SIDECAR).and_then(parse_bool),
            istio_hold_application: config("holdApplicationUntilProxyStarts")
                .as_deref()
                .and_then(parse_bool),
            istio_termination_drain: config("terminationDrainDuration").map(Box::from),
            istio_exit_on_zero_connections: config("EXIT_ON_ZERO_ACTIVE_CONNECTIONS")
                .as_deref()
                .and_then(parse_bool),
            istio_exclude_outbound_ports: get(ISTIO_EXCLUDE_OUTBOUND_PORTS)
                .map(parse_port_list)
                .unwrap_or_default(),
            istio_exclude_inbound_ports: get(ISTIO_EXCLUDE_INBOUND_PORTS)
                .map(parse_port_list)
                .unwrap_or_default(),
            istio_exclude_outbound_cidrs: get(ISTIO_EXCLUDE_OUTBOUND_CIDRS)
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(Box::from)
                        .collect()
                })
                .unwrap_or_default(),
            linkerd_inject: get(LINKERD_INJECT).map(Box::from),
            linkerd_injected: get(LINKERD_PROXY_VERSION).is_some(),
            linkerd_proxy_await: get(LINKERD_PROXY_AWAIT).and_then(parse_bool),
            linkerd_wait_before_exit_s: get(LINKERD_WAIT_BEFORE_EXIT)
                .and_then(|t| t.trim().parse().ok()),
            linkerd_skip_outbound_ports: get(LINKERD_SKIP_OUTBOUND_PORTS)
                .map(parse_port_list)
                .unwrap_or_default(),
            linkerd_skip_inbound_ports: get(LINKERD_SKIP_INBOUND_PORTS)
                .map(parse_port_list)
                .unwrap_or_default(),
            linkerd_native_sidecar: get(LINKERD_NATIVE_SIDECAR).and_then(parse_bool),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn port_lists_with_ranges_and_junk() {
        let ports = parse_port_list(" 15020,4567-4570, x, 9-1,,25 ");
        assert_eq!(
            ports,
            vec![
                PortRange {
                    first: 15020,
                    last: 15020
                },
                PortRange {
                    first: 4567,
                    last: 4570
                },
                PortRange {
                    first: 25,
                    last: 25
                },
            ]
        );
        assert!(ports[1].contains(4569) && !ports[1].contains(4571));
    }

    #[test]
    fn istio_proxy_config_in_yaml_json_and_flow_style() {
        for text in [
            "holdApplicationUntilProxyStarts: true\nterminationDrainDuration: 12s\nproxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true'\n",
            r#"{"holdApplicationUntilProxyStarts": true, "terminationDrainDuration": "12s", "proxyMetadata": {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true"}}"#,
            "{ holdApplicationUntilProxyStarts: true, terminationDrainDuration: 12s, proxyMetadata: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"true\" } }",
        ] {
            let a = LifecycleAnnotations::from_annotations(Some(&annotations(&[(
                ISTIO_PROXY_CONFIG,
                text,
            )])));
            assert_eq!(a.istio_hold_application, Some(true), "{text}");
            assert_eq!(a.istio_termination_drain.as_deref(), Some("12s"), "{text}");
            assert_eq!(a.istio_exit_on_zero_connections, Some(true), "{text}");
        }
    }

    #[test]
    fn linkerd_and_istio_flags() {
        let a = LifecycleAnnotations::from_annotations(Some(&annotations(&[
            (LINKERD_PROXY_AWAIT, "enabled"),
            (LINKERD_WAIT_BEFORE_EXIT, "20"),
            (LINKERD_SKIP_OUTBOUND_PORTS, "3306,5432"),
            (LINKERD_PROXY_VERSION, "edge-26.1.1"),
            (ISTIO_INJECT, "false"),
            (
                ISTIO_STATUS,
                r#"{"initContainers":["istio-init"],"containers":["istio-proxy"]}"#,
            ),
            (
                ISTIO_EXCLUDE_OUTBOUND_CIDRS,
                "169.254.169.254/32, 10.0.0.0/8",
            ),
            ("unrelated", "x"),
        ])));
        assert_eq!(a.linkerd_proxy_await, Some(true));
        assert_eq!(a.linkerd_wait_before_exit_s, Some(20));
        assert_eq!(a.linkerd_skip_outbound_ports.len(), 2);
        assert!(a.linkerd_injected);
        assert_eq!(a.istio_inject, Some(false));
        assert_eq!(
            a.istio_injected,
            vec![Box::from("istio-init"), Box::from("istio-proxy")]
        );
        assert_eq!(a.istio_exclude_outbound_cidrs.len(), 2);
        assert_eq!(
            LifecycleAnnotations::from_annotations(None),
            LifecycleAnnotations::default()
        );
    }
}
