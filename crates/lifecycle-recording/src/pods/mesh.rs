//! Mesh mode of a pod and the facts the traffic audits need about its proxy.
//!
//! The spec decides, annotations only fill gaps: where the proxy is declared
//! (init container with `restartPolicy: Always` → native, regular container
//! → legacy) is read from the spec; "hold the app until the proxy started" is
//! true when the proxy carries the injector's postStart wait hook (`pilot-agent
//! wait` / `linkerd-await`) or the annotation asks for it.

use serde::{Deserialize, Serialize};

use crate::{
    pods::annotations::{LifecycleAnnotations, PortRange},
    pods::classify::rules::{ClassificationRules, MeshRule, SidecarRole, image_matches},
    pods::container::{ContainerSpecFacts, HookFacts},
};

/// How the pod's mesh proxy is wired into its lifecycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum MeshMode {
    /// No Istio or Linkerd proxy.
    #[default]
    None,
    /// istio-proxy is a native sidecar.
    IstioNative,
    /// istio-proxy is a regular container.
    IstioLegacy {
        /// The app waits for the proxy (`holdApplicationUntilProxyStarts`).
        hold_application_until_proxy_starts: bool,
    },
    /// linkerd-proxy is a native sidecar.
    LinkerdNative,
    /// linkerd-proxy is a regular container.
    LinkerdLegacy {
        /// The app waits for the proxy (`proxy-await`).
        proxy_await: bool,
        /// preStop sleep before the proxy is stopped, seconds.
        wait_before_exit_s: Option<u32>,
    },
}

/// Where the proxy UID came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UidSource {
    /// The proxy container's `securityContext.runAsUser`.
    Container,
    /// The pod's `securityContext.runAsUser`.
    Pod,
    /// The mesh's documented default (1337 for Istio, 2102 for Linkerd).
    MeshDefault,
}

/// The mesh facts of one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshInfo {
    /// The mode.
    pub mode: MeshMode,
    /// Name of the proxy container.
    pub proxy_container: Option<Box<str>>,
    /// UID the proxy runs as (its traffic is not captured).
    pub proxy_uid: Option<i64>,
    /// Where `proxy_uid` came from.
    pub proxy_uid_source: Option<UidSource>,
    /// Outbound capture port (15001 / 4140).
    pub outbound_capture_port: Option<u16>,
    /// Inbound capture port (15006 / 4143).
    pub inbound_capture_port: Option<u16>,
    /// Proxy health port (15021 / 4191).
    pub health_port: Option<u16>,
    /// Outbound destination ports that bypass the proxy.
    pub excluded_outbound_ports: Vec<PortRange>,
    /// Inbound ports that bypass the proxy.
    pub excluded_inbound_ports: Vec<PortRange>,
    /// Outbound destination CIDRs that bypass the proxy.
    pub excluded_outbound_cidrs: Vec<Box<str>>,
    /// Istio `terminationDrainDuration`, as written (default 5s when absent).
    pub termination_drain: Option<Box<str>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mesh {
    Istio,
    Linkerd,
}

fn belongs_to(c: &ContainerSpecFacts, rule: &MeshRule) -> bool {
    rule.proxy_names.iter().any(|n| **n == *c.name)
        || rule.proxy_images.iter().any(|p| image_matches(&c.image, p))
        || c.ports.iter().any(|p| rule.proxy_ports.contains(p))
}

fn exec_contains(hook: Option<&HookFacts>, words: &[&str]) -> bool {
    matches!(hook, Some(HookFacts::Exec { command }) if words.iter().all(|w| command.contains(w)))
}

/// Seconds of a preStop that only sleeps (`sleep` action or `sleep N` exec).
fn prestop_sleep_seconds(hook: Option<&HookFacts>) -> Option<u32> {
    match hook? {
        HookFacts::Sleep { seconds } => u32::try_from(*seconds).ok(),
        HookFacts::Exec { command } => {
            let mut words = command.split_whitespace();
            let program = words.next()?;
            (program.rsplit('/').next() == Some("sleep"))
                .then(|| words.next()?.parse().ok())
                .flatten()
        }
        _ => None,
    }
}

/// Works out the mesh mode and proxy facts of a pod from its classified
/// containers.
pub fn detect(
    containers: &[ContainerSpecFacts],
    pod_run_as_user: Option<i64>,
    annotations: &LifecycleAnnotations,
    rules: &ClassificationRules,
) -> MeshInfo {
    let proxies = containers
        .iter()
        .filter(|c| c.kind.is_sidecar() && c.role == SidecarRole::MeshProxy);
    let found = proxies
        .clone()
        .find_map(|c| {
            let istio = belongs_to(c, &rules.istio) || annotations.istio_injected.contains(&c.name);
            istio.then_some((c, Mesh::Istio))
        })
        .or_else(|| {
            proxies
                .clone()
                .find(|c| belongs_to(c, &rules.linkerd))
                .map(|c| (c, Mesh::Linkerd))
        });
    let Some((proxy, mesh)) = found else {
        return MeshInfo::default();
    };
    let native = proxy.kind == crate::pods::classify::ContainerKind::NativeSidecar;
    let rule = match mesh {
        Mesh::Istio => &rules.istio,
        Mesh::Linkerd => &rules.linkerd,
    };
    let mode = match (mesh, native) {
        (Mesh::Istio, true) => MeshMode::IstioNative,
        (Mesh::Istio, false) => MeshMode::IstioLegacy {
            hold_application_until_proxy_starts: exec_contains(
                proxy.post_start.as_ref(),
                &["pilot-agent", "wait"],
            ) || annotations.istio_hold_application
                == Some(true),
        },
        (Mesh::Linkerd, true) => MeshMode::LinkerdNative,
        (Mesh::Linkerd, false) => MeshMode::LinkerdLegacy {
            proxy_await: exec_contains(proxy.post_start.as_ref(), &["linkerd-await"])
                || annotations.linkerd_proxy_await == Some(true),
            wait_before_exit_s: annotations
                .linkerd_wait_before_exit_s
                .or_else(|| prestop_sleep_seconds(proxy.pre_stop.as_ref())),
        },
    };
    let (proxy_uid, uid_source) = match (proxy.run_as_user, pod_run_as_user) {
        (Some(uid), _) => (uid, UidSource::Container),
        (None, Some(uid)) => (uid, UidSource::Pod),
        (None, None) => (rule.default_uid, UidSource::MeshDefault),
    };
    let (excluded_outbound_ports, excluded_inbound_ports, excluded_outbound_cidrs) = match mesh {
        Mesh::Istio => (
            annotations.istio_exclude_outbound_ports.clone(),
            annotations.istio_exclude_inbound_ports.clone(),
            annotations.istio_exclude_outbound_cidrs.clone(),
        ),
        Mesh::Linkerd => (
            annotations.linkerd_skip_outbound_ports.clone(),
            annotations.linkerd_skip_inbound_ports.clone(),
            Vec::new(),
        ),
    };
    MeshInfo {
        mode,
        proxy_container: Some(proxy.name.clone()),
        proxy_uid: Some(proxy_uid),
        proxy_uid_source: Some(uid_source),
        outbound_capture_port: Some(rule.outbound_capture_port),
        inbound_capture_port: Some(rule.inbound_capture_port),
        health_port: Some(rule.health_port),
        excluded_outbound_ports,
        excluded_inbound_ports,
        excluded_outbound_cidrs,
        termination_drain: (mesh == Mesh::Istio)
            .then(|| annotations.istio_termination_drain.clone())
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prestop_sleep_forms() {
        let exec = |c: &str| HookFacts::Exec { command: c.into() };
        assert_eq!(
            prestop_sleep_seconds(Some(&exec("/bin/sleep 20"))),
            Some(20)
        );
        assert_eq!(prestop_sleep_seconds(Some(&exec("sleep x"))), None);
        assert_eq!(
            prestop_sleep_seconds(Some(&exec("/usr/bin/drain 20"))),
            None
        );
        assert_eq!(
            prestop_sleep_seconds(Some(&HookFacts::Sleep { seconds: 7 })),
            Some(7)
        );
        assert_eq!(prestop_sleep_seconds(None), None);
    }

    #[test]
    fn mode_serialises_with_a_tag() {
        let mode = MeshMode::LinkerdLegacy {
            proxy_await: true,
            wait_before_exit_s: Some(10),
        };
        let json = serde_json::to_value(mode).unwrap();
        assert_eq!(json["mode"], "linkerd_legacy");
        assert_eq!(json["wait_before_exit_s"], 10);
        assert_eq!(
            serde_json::to_value(MeshMode::None).unwrap()["mode"],
            "none"
        );
    }
}
