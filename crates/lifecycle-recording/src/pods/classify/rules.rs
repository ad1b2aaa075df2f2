//! Configurable recognition rules for sidecars and meshes.
//!
//! The built-in defaults cover the common proxies, log shippers, secret
//! agents and database proxies. Operators can replace them with their own
//! (the struct deserialises from the agent's configuration; any field left
//! out keeps its default).

use serde::{Deserialize, Serialize};

/// What a container is for, beyond running the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SidecarRole {
    /// A service-mesh data-plane proxy (istio-proxy, linkerd-proxy, Envoy).
    MeshProxy,
    /// A mesh's traffic-redirect setup container (istio-init, linkerd-init).
    MeshInit,
    /// A log forwarder (Fluent Bit, Vector, Fluentd).
    LogShipper,
    /// A secrets agent (Vault Agent).
    SecretsAgent,
    /// A database connection proxy (Cloud SQL Auth Proxy).
    DatabaseProxy,
    /// Nothing recognised: the application, or an unknown helper.
    Other,
}

/// One role and the evidence that identifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRule {
    /// The role assigned on a match.
    pub role: SidecarRole,
    /// Exact container names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Image repositories, matched against the image without registry
    /// prefix, tag or digest: `istio/proxyv2` matches
    /// `docker.io/istio/proxyv2:1.28.0`; a pattern matches whole path
    /// segments only.
    #[serde(default)]
    pub images: Vec<String>,
    /// Container ports whose declaration identifies the role.
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// How to recognise one mesh's proxy and what its traffic capture uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshRule {
    /// Proxy container names.
    pub proxy_names: Vec<String>,
    /// Proxy image repositories (same matching as [`RoleRule::images`]).
    pub proxy_images: Vec<String>,
    /// Container ports only this mesh's proxy declares.
    pub proxy_ports: Vec<u16>,
    /// Port the redirect sends outbound traffic to.
    pub outbound_capture_port: u16,
    /// Port the redirect sends inbound traffic to.
    pub inbound_capture_port: u16,
    /// Readiness/health port of the proxy.
    pub health_port: u16,
    /// UID the proxy runs as when its securityContext does not say.
    pub default_uid: i64,
}

/// All recognition rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassificationRules {
    /// Role rules, tried in order: first by name, then by image, then by port.
    pub roles: Vec<RoleRule>,
    /// Regular containers to treat as (legacy) sidecars even without a
    /// recognised role.
    pub extra_sidecar_names: Vec<String>,
    /// Istio.
    pub istio: MeshRule,
    /// Linkerd.
    pub linkerd: MeshRule,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for ClassificationRules {
    fn default() -> Self {
        let rule = |role, names: &[&str], images: &[&str], ports: &[u16]| RoleRule {
            role,
            names: strings(names),
            images: strings(images),
            ports: ports.to_vec(),
        };
        Self {
            roles: vec![
                rule(
                    SidecarRole::MeshInit,
                    &[
                        "istio-init",
                        "istio-validation",
                        "linkerd-init",
                        "linkerd-network-validator",
                    ],
                    &[],
                    &[],
                ),
                rule(
                    SidecarRole::MeshProxy,
                    &[
                        "istio-proxy",
                        "linkerd-proxy",
                        "envoy",
                        "envoy-sidecar",
                        "cilium-envoy",
                    ],
                    &[
                        "istio/proxyv2",
                        "proxyv2",
                        "linkerd/proxy",
                        "envoyproxy/envoy",
                        "envoyproxy/envoy-distroless",
                        "cilium/cilium-envoy",
                    ],
                    &[15001, 15006, 15021, 15090, 4140, 4143, 4191],
                ),
                rule(
                    SidecarRole::LogShipper,
                    &["fluent-bit", "fluentbit", "vector", "fluentd"],
                    &[
                        "fluent/fluent-bit",
                        "fluent-bit",
                        "timberio/vector",
                        "fluent/fluentd",
                        "fluentd",
                    ],
                    &[],
                ),
                rule(
                    SidecarRole::SecretsAgent,
                    &["vault-agent", "vault-agent-init"],
                    &["hashicorp/vault"],
                    &[],
                ),
                rule(
                    SidecarRole::DatabaseProxy,
                    &["cloud-sql-proxy", "cloudsql-proxy"],
                    &[
                        "cloud-sql-connectors/cloud-sql-proxy",
                        "cloud-sql-proxy",
                        "cloudsql-docker/gce-proxy",
                    ],
                    &[],
                ),
            ],
            extra_sidecar_names: Vec::new(),
            istio: MeshRule {
                proxy_names: strings(&["istio-proxy"]),
                proxy_images: strings(&["istio/proxyv2", "proxyv2"]),
                proxy_ports: vec![15090, 15021, 15020],
                outbound_capture_port: 15001,
                inbound_capture_port: 15006,
                health_port: 15021,
                default_uid: 1337,
            },
            linkerd: MeshRule {
                proxy_names: strings(&["linkerd-proxy"]),
                proxy_images: strings(&["linkerd/proxy"]),
                proxy_ports: vec![4143, 4191],
                outbound_capture_port: 4140,
                inbound_capture_port: 4143,
                health_port: 4191,
                default_uid: 2102,
            },
        }
    }
}

/// The repository part of an image reference, lower-cased, without
/// registry host, tag or digest: `gcr.io/a/b:1@sha256:…` → `a/b`.
pub fn image_repository(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (path, last) = match without_digest.rsplit_once('/') {
        Some((path, last)) => (Some(path), last),
        None => (None, without_digest),
    };
    let last = last.split(':').next().unwrap_or(last);
    let mut segments: Vec<&str> = path.map(|p| p.split('/').collect()).unwrap_or_default();
    // A first segment with a dot, a colon or "localhost" is a registry host.
    if segments
        .first()
        .is_some_and(|h| h.contains('.') || h.contains(':') || *h == "localhost")
    {
        segments.remove(0);
    }
    segments.push(last);
    segments.join("/").to_ascii_lowercase()
}

/// Whether `image` matches a repository pattern on whole path segments.
pub fn image_matches(image: &str, pattern: &str) -> bool {
    let repo = image_repository(image);
    let pattern = pattern.to_ascii_lowercase();
    repo == pattern
        || repo
            .strip_suffix(pattern.as_str())
            .is_some_and(|head| head.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_drop_registry_tag_and_digest() {
        assert_eq!(
            image_repository("docker.io/istio/proxyv2:1.28.0"),
            "istio/proxyv2"
        );
        assert_eq!(
            image_repository("cr.l5d.io/linkerd/proxy:edge-26.1.1"),
            "linkerd/proxy"
        );
        assert_eq!(image_repository("localhost:5000/app@sha256:abc"), "app");
        assert_eq!(image_repository("nginx"), "nginx");
        assert_eq!(
            image_repository("gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1"),
            "cloud-sql-connectors/cloud-sql-proxy"
        );
    }

    #[test]
    fn matching_is_on_whole_segments() {
        assert!(image_matches("docker.io/istio/proxyv2:1.28.0", "proxyv2"));
        assert!(image_matches(
            "docker.io/istio/proxyv2:1.28.0",
            "istio/proxyv2"
        ));
        assert!(!image_matches("example.com/myproxyv2:1", "proxyv2"));
        assert!(!image_matches(
            "example.com/linkerd/proxy-init:1",
            "linkerd/proxy"
        ));
    }

    #[test]
    fn partial_config_keeps_defaults() {
        let rules: ClassificationRules =
            serde_json::from_str(r#"{"extra_sidecar_names": ["helper"]}"#).unwrap();
        assert_eq!(rules.extra_sidecar_names, vec!["helper"]);
        assert_eq!(rules.istio.default_uid, 1337);
        assert_eq!(
            rules.roles.len(),
            ClassificationRules::default().roles.len()
        );
        let custom: ClassificationRules = serde_json::from_str(
            r#"{"roles": [{"role": "log_shipper", "names": ["otel-collector"]}]}"#,
        )
        .unwrap();
        assert_eq!(custom.roles[0].role, SidecarRole::LogShipper);
        assert!(custom.roles[0].images.is_empty());
    }
}
