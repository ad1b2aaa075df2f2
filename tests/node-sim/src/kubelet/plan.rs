//! What the kubelet reads from a pod spec: containers in start order with
//! their kind, hooks, probes and user, the restart policy, the grace
//! period, the QoS class and the mesh capture.

use serde_json::Value;

use super::{hooks::Hook, probes::Probe};
use crate::{
    net::{CaptureConfig, Mesh},
    runtime::Qos,
    scenario::{ContainerSim, PodEntry, Role},
};

/// Why a pod entry cannot be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the manifest has no metadata.name")]
    ManifestWithoutName,
    #[error("pod {pod}: container {container} has no behaviour in `containers`")]
    ContainerWithoutBehaviour { pod: String, container: String },
    #[error("pod {pod}: `containers` names {container}, which is not in the spec")]
    BehaviourWithoutContainer { pod: String, container: String },
    #[error("pod {pod}: container {container} has no `role`")]
    RoleMissing { pod: String, container: String },
    #[error("container {container}: role {role:?} needs `{parameter}`")]
    RoleNeedsParameter {
        container: String,
        role: Role,
        parameter: &'static str,
    },
    #[error(
        "container {container}: exec hook {command:?} is not one the simulator knows (sleep, pilot-agent wait/request, linkerd-await, quitquitquit)"
    )]
    UnrecognisedExecHook {
        container: String,
        command: Vec<String>,
    },
    #[error("container {container}: hook {handler} is not exec, httpGet or sleep")]
    UnsupportedHook { container: String, handler: String },
    #[error("container {container}: probe {probe} is not httpGet or tcpSocket")]
    UnsupportedProbe { container: String, probe: String },
    #[error("container {container}: port {port:?} is neither a number nor a named container port")]
    UnknownPort { container: String, port: String },
    #[error("container {container}: `{target}` is neither a peer name nor ip:port")]
    UnknownTarget { container: String, target: String },
    #[error(
        "pod {pod}: a mesh-proxy container but no Istio or Linkerd marks (annotations or init container) on the pod"
    )]
    ProxyWithoutMesh { pod: String },
}

/// Where a container stands in the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    /// An init container that runs to completion.
    Init,
    /// An init container with `restartPolicy: Always` (native sidecar).
    Sidecar,
    /// A regular container.
    Main,
}

/// `spec.restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// One container as the kubelet handles it.
#[derive(Clone, Debug)]
pub struct ContainerPlan {
    pub name: String,
    pub kind: ContainerKind,
    pub role: Role,
    pub sim: ContainerSim,
    pub post_start: Option<Hook>,
    pub pre_stop: Option<Hook>,
    pub startup_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
    /// (uid, gid) from `runAsUser` / `runAsGroup` (container, then pod).
    pub user: Option<(u32, u32)>,
    /// The container's entry in the manifest (env, securityContext).
    pub spec: Value,
}

/// A pod as the kubelet will run it.
#[derive(Clone, Debug)]
pub struct PodPlan {
    pub namespace: String,
    pub name: String,
    /// The manifest to create (the entry's, unchanged but for `nodeName`).
    pub manifest: Value,
    pub restart_policy: RestartPolicy,
    pub grace_s: i64,
    /// Init containers (and sidecars) in spec order, then regular ones.
    pub containers: Vec<ContainerPlan>,
    pub qos: Qos,
    /// The mesh capture, and whether an init container installs it
    /// (otherwise the driver does, as a CNI plugin would).
    pub capture: Option<CaptureConfig>,
    pub capture_by_init: bool,
    /// `shareProcessNamespace`: one pid namespace for the pod (pause is
    /// its PID 1) instead of one per container.
    pub share_pid: bool,
}

impl PodPlan {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn container(&self, name: &str) -> Option<&ContainerPlan> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub fn of_kind(&self, kind: ContainerKind) -> impl Iterator<Item = &ContainerPlan> {
        self.containers.iter().filter(move |c| c.kind == kind)
    }

    pub fn build(entry: &PodEntry, node_name: &str) -> Result<Self, PlanError> {
        let mut manifest = entry.manifest.clone();
        let meta = manifest.get("metadata").cloned().unwrap_or(Value::Null);
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .ok_or(PlanError::ManifestWithoutName)?
            .to_owned();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        if let Some(spec) = manifest.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), Value::String(node_name.to_owned()));
        }
        let spec = manifest.get("spec").cloned().unwrap_or(Value::Null);
        let pod_user = run_as(spec.get("securityContext"), None);

        let mut containers = Vec::new();
        for (list, regular) in [("initContainers", false), ("containers", true)] {
            for c in spec
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let cname = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let sim = entry.containers.get(&cname).cloned().ok_or_else(|| {
                    PlanError::ContainerWithoutBehaviour {
                        pod: name.clone(),
                        container: cname.clone(),
                    }
                })?;
                let role = sim.role.ok_or_else(|| PlanError::RoleMissing {
                    pod: name.clone(),
                    container: cname.clone(),
                })?;
                let kind = if regular {
                    ContainerKind::Main
                } else if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
                    ContainerKind::Sidecar
                } else {
                    ContainerKind::Init
                };
                let hook = |which: &str| {
                    c.pointer(&format!("/lifecycle/{which}"))
                        .map(|h| Hook::from_handler(h, &cname, c))
                        .transpose()
                };
                let probe = |which: &str| {
                    c.get(which)
                        .map(|p| Probe::from_spec(p, &cname, c))
                        .transpose()
                };
                // The mesh init stands in for a NET_ADMIN container: root.
                let user = if role == Role::MeshInit {
                    None
                } else {
                    run_as(c.get("securityContext"), pod_user)
                };
                containers.push(ContainerPlan {
                    post_start: hook("postStart")?,
                    pre_stop: hook("preStop")?,
                    startup_probe: probe("startupProbe")?,
                    readiness_probe: probe("readinessProbe")?,
                    liveness_probe: probe("livenessProbe")?,
                    spec: c.clone(),
                    name: cname,
                    kind,
                    role,
                    sim,
                    user,
                });
            }
        }
        if let Some(extra) = entry
            .containers
            .keys()
            .find(|k| !containers.iter().any(|c| &c.name == *k))
        {
            return Err(PlanError::BehaviourWithoutContainer {
                pod: name,
                container: extra.clone(),
            });
        }

        let (capture, capture_by_init) = capture_of(&spec, &meta, &containers);
        if capture.is_none() && containers.iter().any(|c| c.role == Role::MeshProxy) {
            return Err(PlanError::ProxyWithoutMesh { pod: name });
        }
        let restart_policy = match spec.get("restartPolicy").and_then(Value::as_str) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        };
        Ok(Self {
            grace_s: spec
                .get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30),
            qos: Qos::of_pod(&spec),
            namespace,
            name,
            manifest,
            restart_policy,
            containers,
            capture,
            capture_by_init,
            share_pid: spec
                .get("shareProcessNamespace")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

fn run_as(context: Option<&Value>, fallback: Option<(u32, u32)>) -> Option<(u32, u32)> {
    let field = |k: &str| {
        context
            .and_then(|c| c.get(k))
            .and_then(Value::as_u64)
            .map(|v| v as u32)
    };
    match (field("runAsUser"), field("runAsGroup")) {
        (Some(uid), gid) => Some((uid, gid.unwrap_or(uid))),
        (None, Some(gid)) => fallback.map(|(uid, _)| (uid, gid)),
        (None, None) => fallback,
    }
}

/// The pod's mesh: from its mesh-init container's arguments, or from the
/// injector's annotations (CNI mode, no init container).
fn capture_of(
    spec: &Value,
    meta: &Value,
    containers: &[ContainerPlan],
) -> (Option<CaptureConfig>, bool) {
    let annotations = meta.get("annotations").cloned().unwrap_or(Value::Null);
    let args_of = |name: &str| -> Vec<String> {
        ["initContainers", "containers"]
            .iter()
            .filter_map(|l| spec.get(*l)?.as_array())
            .flatten()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            .map(|c| {
                ["command", "args"]
                    .iter()
                    .filter_map(|k| c.get(*k)?.as_array())
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mesh_of_pod = if annotations.get("sidecar.istio.io/status").is_some() {
        Some(Mesh::Istio)
    } else if annotations.get("linkerd.io/inject").and_then(Value::as_str) == Some("enabled")
        || annotations.get("linkerd.io/proxy-version").is_some()
    {
        Some(Mesh::Linkerd)
    } else {
        None
    };
    if let Some(init) = containers.iter().find(|c| c.role == Role::MeshInit) {
        let args = args_of(&init.name);
        let mesh = if init.name.contains("linkerd")
            || args.iter().any(|a| a.starts_with("--outgoing-proxy-port"))
        {
            Mesh::Linkerd
        } else {
            mesh_of_pod.unwrap_or(Mesh::Istio)
        };
        return (
            Some(CaptureConfig::from_args(mesh, &args).with_annotations(&annotations)),
            true,
        );
    }
    (
        mesh_of_pod.map(|m| CaptureConfig::defaults(m).with_annotations(&annotations)),
        false,
    )
}
