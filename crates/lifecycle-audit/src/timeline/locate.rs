//! Which container of a pod a process or socket belongs to.
//!
//! The join's `k8s` names come first. When they are missing (a recording
//! without the pod watch, or a record written before its container was
//! reported), the cgroup's container id is looked up in the ids the API
//! reported for the pod's containers. A container id the API never named
//! is the pod's sandbox when the API reported the pod, and an unnamed
//! container otherwise.

use std::collections::HashMap;

use lifecycle_recording::cgroup::CgroupClass;
use lifecycle_recording::event::Process;
use lifecycle_recording::join::K8sRef;
use lifecycle_recording::pods::{ContainerKind, SidecarRole};

/// Where a process or socket lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Container name: the join's, the API's for the cgroup's container id, or
    /// `container-<first 12 hex>`.
    pub container: String,
    /// One run of the container: its container id, or its cgroup id when
    /// the cgroup path did not carry one.
    pub instance: String,
    /// Container kind the join named; `None` without join names.
    pub kind: Option<ContainerKind>,
    /// Container role the join named; `None` without join names.
    pub role: Option<SidecarRole>,
}

/// Locates processes and sockets of one pod.
pub struct Locator<'a> {
    /// UID of the pod whose processes and sockets are wanted.
    pub uid: &'a str,
    /// Container id (lower-case hex) to container name, as the API reported
    /// them.
    pub names_by_id: &'a HashMap<String, String>,
    /// The API reported this pod: ids it never named are the sandbox.
    pub api_known: bool,
}

/// The pod uid a cgroup or a join result names.
pub fn pod_uid_of<'r>(class: Option<&'r CgroupClass>, k8s: Option<&'r K8sRef>) -> Option<&'r str> {
    if let Some(k8s) = k8s {
        return Some(&k8s.pod_uid);
    }
    match class? {
        CgroupClass::Container(c) => Some(&c.pod_uid),
        CgroupClass::Pod(p) => Some(&p.pod_uid),
        CgroupClass::ConmonMonitor { pod_uid, .. } => Some(pod_uid),
        _ => None,
    }
}

impl Locator<'_> {
    /// The container of a process, from its cgroup and join names; `None` when
    /// it is not in one of this pod's containers.
    pub fn process(&self, p: &Process) -> Option<Located> {
        self.cgroup(p.cgroup.as_ref(), p.cgroup_id, p.k8s.as_ref())
    }

    /// The container behind a cgroup (its class, id and join names); `None` for
    /// another pod, the sandbox or a pod-level cgroup.
    pub fn cgroup(
        &self,
        class: Option<&CgroupClass>,
        cgroup_id: u64,
        k8s: Option<&K8sRef>,
    ) -> Option<Located> {
        if pod_uid_of(class, k8s)? != self.uid {
            return None;
        }
        let container_id = match class {
            Some(CgroupClass::Container(c)) => Some(c.container_id.to_ascii_lowercase()),
            _ => None,
        };
        let instance = container_id
            .clone()
            .unwrap_or_else(|| format!("cgroup:{cgroup_id}"));
        if let Some(k8s) = k8s {
            return k8s.container.as_ref().map(|name| Located {
                container: name.clone(),
                instance,
                kind: k8s.container_kind,
                role: k8s.container_role,
            });
        }
        let id = container_id?;
        let container = match self.names_by_id.get(&id) {
            Some(name) => name.clone(),
            None if self.api_known => return None,
            None => format!("container-{}", &id[..id.len().min(12)]),
        };
        Some(Located {
            container,
            instance,
            kind: None,
            role: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle_recording::{
        cgroup::{CgroupDriver, ContainerCgroup, QosClass, Runtime},
        pods::MeshMode,
    };

    fn container_class(id: &str, pod: &str) -> CgroupClass {
        CgroupClass::Container(ContainerCgroup {
            runtime: Runtime::Containerd,
            container_id: id.into(),
            pod_uid: pod.into(),
            qos: QosClass::Burstable,
            driver: CgroupDriver::Systemd,
            sub_path: None,
        })
    }

    #[test]
    fn k8s_names_first_then_api_ids_then_sandbox() {
        let names = HashMap::from([("aa".to_string(), "app".to_string())]);
        let locator = Locator {
            uid: "u1",
            names_by_id: &names,
            api_known: true,
        };
        let by_id = locator.cgroup(Some(&container_class("AA", "u1")), 7, None);
        assert_eq!(by_id.unwrap().container, "app");
        assert_eq!(
            locator.cgroup(Some(&container_class("bb", "u1")), 7, None),
            None,
            "an id the API never named is the sandbox"
        );
        assert_eq!(
            locator.cgroup(Some(&container_class("aa", "u2")), 7, None),
            None,
            "another pod"
        );
        let k8s = K8sRef {
            namespace: "ns".into(),
            pod: "p".into(),
            pod_uid: "u1".into(),
            container: Some("proxy".into()),
            container_kind: Some(ContainerKind::NativeSidecar),
            container_role: Some(SidecarRole::MeshProxy),
            mesh_mode: MeshMode::IstioNative,
            pod_deleted: false,
        };
        let joined = locator
            .cgroup(Some(&container_class("aa", "u1")), 7, Some(&k8s))
            .unwrap();
        assert_eq!(joined.container, "proxy");
        assert_eq!(joined.instance, "aa");
        let unnamed = Locator {
            api_known: false,
            ..locator
        };
        let guessed = unnamed
            .cgroup(Some(&container_class("0123456789abcdef", "u1")), 7, None)
            .unwrap();
        assert_eq!(guessed.container, "container-0123456789ab");
    }
}
