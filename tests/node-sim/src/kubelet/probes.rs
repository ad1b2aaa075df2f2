//! Startup, readiness and liveness probes, run by the kubelet against the pod's
//! address from the cluster namespace.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use serde_json::Value;

use super::plan::PlanError;
use crate::net::http;

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    Http { port: u16, path: String },
    Tcp { port: u16 },
}

/// A probe with its timing (scenario seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay_s: f64,
    pub period_s: f64,
    pub timeout_s: f64,
    /// Consecutive failures after which a liveness probe restarts the
    /// container.
    pub failure_threshold: u32,
}

/// A port given as a number or as the name of one of the container's ports.
pub fn resolve_port(port: Option<&Value>, container: &str, spec: &Value) -> Result<u16, PlanError> {
    let unknown = || PlanError::UnknownPort {
        container: container.to_owned(),
        port: port.map(Value::to_string).unwrap_or_default(),
    };
    match port {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(unknown),
        Some(Value::String(name)) => spec
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|p| p.get("containerPort").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok())
            .or_else(|| name.parse().ok())
            .ok_or_else(unknown),
        _ => Err(unknown()),
    }
}

impl Probe {
    pub fn from_spec(probe: &Value, container: &str, spec: &Value) -> Result<Self, PlanError> {
        let action = if let Some(h) = probe.get("httpGet") {
            ProbeAction::Http {
                port: resolve_port(h.get("port"), container, spec)?,
                path: h
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .to_owned(),
            }
        } else if let Some(t) = probe.get("tcpSocket") {
            ProbeAction::Tcp {
                port: resolve_port(t.get("port"), container, spec)?,
            }
        } else {
            return Err(PlanError::UnsupportedProbe {
                container: container.to_owned(),
                probe: probe.to_string(),
            });
        };
        let seconds =
            |k: &str, default: f64| probe.get(k).and_then(Value::as_f64).unwrap_or(default);
        Ok(Self {
            action,
            initial_delay_s: seconds("initialDelaySeconds", 0.0),
            period_s: seconds("periodSeconds", 10.0),
            timeout_s: seconds("timeoutSeconds", 1.0),
            failure_threshold: seconds("failureThreshold", 3.0).max(1.0) as u32,
        })
    }

    /// One check against `pod_ip`; the calling thread must be in a network
    /// namespace that routes to it. The timeout is real time (at least 200 ms).
    pub fn check(&self, pod_ip: Ipv4Addr, timeout: Duration) -> bool {
        let timeout = timeout.max(Duration::from_millis(200));
        match &self.action {
            ProbeAction::Http { port, path } => {
                http::get(SocketAddr::new(pod_ip.into(), *port), path, timeout)
                    .is_ok_and(|status| (200..400).contains(&status))
            }
            ProbeAction::Tcp { port } => {
                http::tcp(SocketAddr::new(pod_ip.into(), *port), timeout).is_ok()
            }
        }
    }
}
