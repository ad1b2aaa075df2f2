//! The example collector of `deploy/base/otel-collector.yaml`: its
//! configuration and its container.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{Object, base_objects, quantity};

/// The collector's own configuration (`collector.yaml` of its ConfigMap).
pub fn collector_config() -> Value {
    let text = base_objects()
        .into_iter()
        .find_map(|(_, _, o)| match o {
            Object::ConfigMap(cm) => cm.data.and_then(|d| d.get("collector.yaml").cloned()),
            _ => None,
        })
        .expect("collector.yaml in a ConfigMap");
    yaml_serde::from_str(&text).expect("collector config is YAML")
}

/// The `collector` container of the `otel-collector` Deployment.
pub fn collector_container() -> Container {
    base_objects()
        .into_iter()
        .find_map(|(_, _, o)| match o {
            Object::Deployment(d) if d.metadata.name.as_deref() == Some("otel-collector") => d
                .spec?
                .template
                .spec?
                .containers
                .into_iter()
                .find(|c| c.name == "collector"),
            _ => None,
        })
        .expect("otel-collector Deployment with a collector container")
}

/// The number of a container port given by number or by name.
pub fn container_port(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{}: no port named {name}", c.name))
                .container_port
        }
    }
}

/// `(host, port, path)` of the extension `name`, which the service must
/// enable (`service.extensions`) and which must have an `endpoint`.
pub fn enabled_extension_endpoint(config: &Value, name: &str) -> (String, i32, String) {
    let enabled = config["service"]["extensions"].as_array();
    assert!(
        enabled.is_some_and(|e| e.contains(&Value::from(name))),
        "extension {name} is not in service.extensions"
    );
    let extension = &config["extensions"][name];
    let endpoint = extension["endpoint"].as_str();
    let endpoint = endpoint.unwrap_or_else(|| panic!("extension {name} has no endpoint"));
    let (host, port) = endpoint.rsplit_once(':').expect("host:port");
    let port = port.parse().expect("port number");
    let path = extension["path"].as_str().unwrap_or("/");
    (host.to_owned(), port, path.to_owned())
}

/// `memory_limiter.<key>` (a MiB setting) in bytes.
pub fn memory_limiter_bytes(config: &Value, key: &str) -> f64 {
    let value = config["processors"]["memory_limiter"][key].as_f64();
    value.unwrap_or_else(|| panic!("memory_limiter.{key} in MiB")) * 1024.0 * 1024.0
}

/// The container's `resources.<which>` (`requests` or `limits`) as
/// numbers: CPUs and bytes.
pub fn resources(c: &Container, which: &str) -> BTreeMap<String, f64> {
    let r = c.resources.clone().unwrap_or_default();
    let map = match which {
        "requests" => r.requests,
        "limits" => r.limits,
        other => panic!("resources.{other}"),
    };
    let map = map.unwrap_or_else(|| panic!("{}: no resources.{which}", c.name));
    let out: BTreeMap<String, f64> = map.into_iter().map(|(k, q)| (k, quantity(&q.0))).collect();
    for r in ["cpu", "memory"] {
        assert!(out.contains_key(r), "{}: resources.{which}.{r}", c.name);
    }
    out
}
