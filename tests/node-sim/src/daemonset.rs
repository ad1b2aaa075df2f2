//! A DaemonSet's pod template turned into the CRI configs the kubelet
//! would send for it: the container's args and env, its security context
//! (capabilities, seccomp, read-only root, user, no privilege
//! escalation), its hostPath volumes mounted as the template mounts them,
//! and the pod's namespaces (host network and host PID only when the
//! template asks). The agent's own container test runs the real image with
//! exactly these settings on the node's containerd.

use std::collections::BTreeMap;

use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, Mount, MountPropagation, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, SecurityProfile, security_profile::ProfileType,
};
use serde_json::Value;

/// Why a template cannot be run as the kubelet would.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("the DaemonSet has no spec.template.spec.containers[0]")]
    NoContainer,
    #[error("env {name}: only literal values and fieldRef spec.nodeName are supported")]
    UnsupportedEnv { name: String },
    #[error("volumeMount {name} names no hostPath volume")]
    UnknownVolume { name: String },
}

/// The sandbox and container configs of one pod of the DaemonSet.
#[derive(Clone, Debug)]
pub struct PodConfigs {
    pub sandbox: PodSandboxConfig,
    pub container: ContainerConfig,
}

/// Capability names as the kubelet hands them to the runtime: as the
/// manifest writes them (`BPF`, `ALL`); containerd adds the `CAP_` prefix.
pub fn cri_capabilities(names: &Value) -> Vec<String> {
    names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn mode(host: bool) -> i32 {
    if host {
        NamespaceMode::Node as i32
    } else {
        NamespaceMode::Pod as i32
    }
}

/// The configs for the template's first container, on `node_name`, with
/// `image`, as pod `name`/`uid` in `namespace`; `extra_env` and
/// `extra_mounts` (host, container, read-only) are the test's additions
/// (a kubeconfig, a journal directory).
pub fn pod_configs(
    daemonset: &Value,
    image: &str,
    (namespace, name, uid): (&str, &str, &str),
    node_name: &str,
    log_directory: &str,
    extra_env: &[(String, String)],
    extra_mounts: &[(String, String, bool)],
) -> Result<PodConfigs, TemplateError> {
    let spec = daemonset
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_default();
    let container = spec
        .pointer("/containers/0")
        .cloned()
        .ok_or(TemplateError::NoContainer)?;
    let flag = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_bool).unwrap_or(false);
    let (host_network, host_pid) = (flag(&spec, "/hostNetwork"), flag(&spec, "/hostPID"));
    let namespaces = NamespaceOption {
        network: mode(host_network),
        pid: if host_pid {
            NamespaceMode::Node as i32
        } else {
            NamespaceMode::Container as i32
        },
        ipc: NamespaceMode::Pod as i32,
        ..NamespaceOption::default()
    };
    let mut envs = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let key = e["name"].as_str().unwrap_or_default().to_owned();
        let value = match (e.get("value"), e.pointer("/valueFrom/fieldRef/fieldPath")) {
            (Some(v), _) => v.as_str().unwrap_or_default().to_owned(),
            (None, Some(f)) if f == "spec.nodeName" => node_name.to_owned(),
            _ => return Err(TemplateError::UnsupportedEnv { name: key }),
        };
        envs.push(KeyValue { key, value });
    }
    envs.extend(extra_env.iter().map(|(k, v)| KeyValue {
        key: k.clone(),
        value: v.clone(),
    }));
    let host_paths: BTreeMap<&str, &str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["name"].as_str()?, v.pointer("/hostPath/path")?.as_str()?)))
        .collect();
    let mut mounts = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let volume = m["name"].as_str().unwrap_or_default();
        let host = host_paths
            .get(volume)
            .ok_or_else(|| TemplateError::UnknownVolume {
                name: volume.to_owned(),
            })?;
        mounts.push(mount(
            host,
            m["mountPath"].as_str().unwrap_or_default(),
            flag(m, "/readOnly"),
        ));
    }
    mounts.extend(extra_mounts.iter().map(|(h, c, ro)| mount(h, c, *ro)));
    let sc = &container["securityContext"];
    let seccomp = sc
        .pointer("/seccompProfile/type")
        .or_else(|| spec.pointer("/securityContext/seccompProfile/type"))
        .and_then(Value::as_str);
    let int = |p: &str| {
        sc.pointer(p)
            .and_then(Value::as_i64)
            .map(|value| Int64Value { value })
    };
    let security = LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            add_capabilities: cri_capabilities(&sc["capabilities"]["add"]),
            drop_capabilities: cri_capabilities(&sc["capabilities"]["drop"]),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged: flag(sc, "/privileged"),
        namespace_options: Some(namespaces.clone()),
        run_as_user: int("/runAsUser"),
        run_as_group: int("/runAsGroup"),
        readonly_rootfs: flag(sc, "/readOnlyRootFilesystem"),
        no_new_privs: sc
            .get("allowPrivilegeEscalation")
            .and_then(Value::as_bool)
            .is_some_and(|allowed| !allowed),
        seccomp: Some(SecurityProfile {
            profile_type: match seccomp {
                Some("RuntimeDefault") => ProfileType::RuntimeDefault,
                _ => ProfileType::Unconfined,
            } as i32,
            localhost_ref: String::new(),
        }),
        ..LinuxContainerSecurityContext::default()
    };
    let container_name = container["name"].as_str().unwrap_or("agent").to_owned();
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_owned(),
            uid: uid.to_owned(),
            namespace: namespace.to_owned(),
            attempt: 0,
        }),
        hostname: name.to_owned(),
        log_directory: log_directory.to_owned(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/kubepods/burstable/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces),
                seccomp: security.seccomp.clone(),
                ..LinuxSandboxSecurityContext::default()
            }),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    };
    let container = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container_name.clone(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..ImageSpec::default()
        }),
        command: strings(&container["command"]),
        args: strings(&container["args"]),
        envs,
        mounts,
        log_path: format!("{container_name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: None,
            security_context: Some(security),
        }),
        ..ContainerConfig::default()
    };
    Ok(PodConfigs { sandbox, container })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn mount(host: &str, container: &str, readonly: bool) -> Mount {
    Mount {
        container_path: container.to_owned(),
        host_path: host.to_owned(),
        readonly,
        propagation: MountPropagation::PropagationPrivate as i32,
        ..Mount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_template_becomes_the_kubelets_cri_configs() {
        let ds = json!({"spec": {"template": {"spec": {
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "agent", "args": ["run"],
                "env": [{"name": "A", "value": "1"},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "securityContext": {"readOnlyRootFilesystem": true, "runAsUser": 0,
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"], "add": ["BPF", "PERFMON"]}},
                "volumeMounts": [{"name": "btf", "mountPath": "/sys/kernel/btf", "readOnly": true}]}],
            "volumes": [{"name": "btf", "hostPath": {"path": "/sys/kernel/btf"}}]}}}});
        let c = pod_configs(&ds, "img", ("ns", "p", "u"), "node-a", "/logs", &[], &[])
            .unwrap()
            .container;
        let sc = c.linux.unwrap().security_context.unwrap();
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.add_capabilities, ["BPF", "PERFMON"]);
        assert_eq!(caps.drop_capabilities, ["ALL"]);
        assert!(sc.readonly_rootfs && sc.no_new_privs && !sc.privileged);
        assert_eq!(sc.run_as_user.map(|u| u.value), Some(0));
        assert_eq!(
            sc.seccomp.unwrap().profile_type,
            ProfileType::RuntimeDefault as i32
        );
        let ns = sc.namespace_options.unwrap();
        assert_eq!(ns.network, NamespaceMode::Pod as i32, "no host network");
        assert_eq!(ns.pid, NamespaceMode::Container as i32, "no host PID");
        assert_eq!(c.envs[1].value, "node-a");
        assert_eq!(c.mounts[0].host_path, "/sys/kernel/btf");
        assert!(c.mounts[0].readonly);
        let bad = json!({"spec": {"template": {"spec": {"containers": [{"name": "a",
            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {}}}]}]}}}});
        assert_eq!(
            pod_configs(&bad, "i", ("n", "p", "u"), "n", "/l", &[], &[]).unwrap_err(),
            TemplateError::UnsupportedEnv { name: "X".into() }
        );
    }
}
