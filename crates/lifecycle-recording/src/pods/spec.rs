//! The spec facts of a pod audits need, extracted from a pod spec once:
//! its containers' facts ([`super::container`]) in order, the grace period,
//! the owner, the lifecycle annotations and the mesh picture
//! ([`super::mesh`]). Everything else in the spec is dropped.

#[cfg(feature = "k8s")]
use k8s_openapi::api::core::v1::PodSpec;
#[cfg(feature = "k8s")]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[cfg(feature = "k8s")]
use crate::pods::classify::{ClassificationRules, Section};
use crate::pods::mesh::MeshInfo;
use crate::{pods::annotations::LifecycleAnnotations, pods::classify::ContainerKind};

pub use crate::pods::container::{ContainerSpecFacts, HookFacts, PortRef, ProbeFacts};

/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_PERIOD_S: i64 = 30;

/// The pod's controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerFacts {
    /// Owner kind: `ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`, `Node`
    /// (static pods), … A CronJob's pods are owned by a Job; the CronJob is
    /// not visible on the pod.
    pub kind: Box<str>,
    /// Owner name.
    pub name: Box<str>,
}

impl OwnerFacts {
    /// Whether the pod belongs to a Job (sidecar rules T5 apply).
    pub fn is_job(&self) -> bool {
        &*self.kind == "Job"
    }
}

/// The spec facts of one pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSpecFacts {
    /// `spec.nodeName`.
    pub node_name: Option<Box<str>>,
    /// `spec.restartPolicy` (`Always` when absent).
    pub restart_policy: Box<str>,
    /// `spec.terminationGracePeriodSeconds` (30 when absent).
    pub termination_grace_period_s: i64,
    /// The controlling owner (or the first owner when none is marked).
    pub owner: Option<OwnerFacts>,
    /// Init containers in spec order, then regular containers in spec order.
    pub containers: Vec<ContainerSpecFacts>,
    /// Lifecycle annotations.
    pub annotations: LifecycleAnnotations,
    /// Mesh mode and proxy facts.
    pub mesh: MeshInfo,
}

impl PodSpecFacts {
    /// Extracts the facts of a pod.
    #[cfg(feature = "k8s")]
    pub fn from_pod(meta: &ObjectMeta, spec: &PodSpec, rules: &ClassificationRules) -> Self {
        let annotations = LifecycleAnnotations::from_annotations(meta.annotations.as_ref());
        let init = spec
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| {
                ContainerSpecFacts::from_container(c, Section::Init, i, &annotations, rules)
            });
        let regular = spec.containers.iter().enumerate().map(|(i, c)| {
            ContainerSpecFacts::from_container(c, Section::Regular, i, &annotations, rules)
        });
        let containers: Vec<_> = init.chain(regular).collect();
        let pod_uid = spec.security_context.as_ref().and_then(|s| s.run_as_user);
        let mesh = crate::pods::mesh::detect(&containers, pod_uid, &annotations, rules);
        let owners = meta.owner_references.iter().flatten();
        let owner = owners
            .clone()
            .find(|o| o.controller == Some(true))
            .or_else(|| owners.clone().next())
            .map(|o| OwnerFacts {
                kind: o.kind.as_str().into(),
                name: o.name.as_str().into(),
            });
        Self {
            node_name: spec.node_name.as_deref().map(Box::from),
            restart_policy: spec.restart_policy.as_deref().unwrap_or("Always").into(),
            termination_grace_period_s: spec
                .termination_grace_period_seconds
                .unwrap_or(DEFAULT_GRACE_PERIOD_S),
            owner,
            containers,
            annotations,
            mesh,
        }
    }

    /// The container named `name`, with its position in [`Self::containers`].
    pub fn container(&self, name: &str) -> Option<(usize, &ContainerSpecFacts)> {
        self.containers
            .iter()
            .enumerate()
            .find(|(_, c)| &*c.name == name)
    }

    /// Whether any init container is a native sidecar.
    pub fn has_native_sidecars(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.kind == ContainerKind::NativeSidecar)
    }
}

#[cfg(test)]
#[cfg(feature = "k8s")]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_keep_order_hooks_and_owner() {
        let spec: PodSpec = serde_json::from_value(json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{
                "name": "app", "image": "nginx",
                "lifecycle": {"preStop": {"sleep": {"seconds": 5}},
                              "postStart": {"exec": {"command": ["/bin/sh", "-c", "true"]}}},
                "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}},
                "ports": [{"containerPort": 8080, "name": "http"}]
            }],
            "terminationGracePeriodSeconds": 45
        }))
        .unwrap();
        let meta: ObjectMeta = serde_json::from_value(json!({
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "1"},
                {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "2", "controller": true}
            ]
        }))
        .unwrap();
        let facts = PodSpecFacts::from_pod(&meta, &spec, &ClassificationRules::default());
        assert_eq!(facts.containers.len(), 2);
        assert_eq!(facts.container("app").unwrap().0, 1);
        let app = facts.container("app").unwrap().1;
        assert_eq!(app.pre_stop, Some(HookFacts::Sleep { seconds: 5 }));
        assert_eq!(
            app.post_start,
            Some(HookFacts::Exec {
                command: "/bin/sh -c true".into()
            })
        );
        let ready = app.readiness_probe.as_ref().unwrap();
        assert_eq!(
            ready.action,
            HookFacts::HttpGet {
                port: PortRef::Name("http".into()),
                path: Some("/ready".into())
            }
        );
        assert_eq!((ready.period_s, ready.failure_threshold), (10, 3));
        assert_eq!(facts.termination_grace_period_s, 45);
        assert!(facts.owner.as_ref().unwrap().is_job());
        assert_eq!(&*facts.restart_policy, "Always");
        assert!(!facts.has_native_sidecars());
    }
}
