//! The manifests of `deploy/`, parsed into Kubernetes API types (no
//! cluster, no kubectl), and the invariants the docs promise: not
//! privileged, exactly the documented capabilities, read-only RBAC on pods,
//! probes on the agent's real endpoints, every file and mount accounted for.

mod deploy_support;

use std::collections::BTreeSet;

use clap::CommandFactory;
use deploy_support::*;
use k8s_openapi::api::{apps::v1::DaemonSet, core::v1::Container};
use lifecycle_agent::config::{
    Cli, DEFAULT_HEALTH_PORT, HEALTHZ_PATH, METRICS_PATH, READYZ_PATH,
};
use lifecycle_agent::preflight::REQUIREMENTS;
use serde_json::Value;

fn daemonset() -> DaemonSet {
    base_objects()
        .into_iter()
        .find_map(|(_, _, o)| match o {
            Object::DaemonSet(ds) => Some(*ds),
            _ => None,
        })
        .expect("the kustomization has a DaemonSet")
}

fn agent_container(ds: &DaemonSet) -> Container {
    let pod = ds.spec.as_ref().expect("spec").template.spec.clone().expect("pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    assert_eq!(pod.containers[0].name, "agent");
    pod.containers[0].clone()
}

fn env<'a>(c: &'a Container, name: &str) -> &'a k8s_openapi::api::core::v1::EnvVar {
    c.env
        .as_ref()
        .and_then(|e| e.iter().find(|v| v.name == name))
        .unwrap_or_else(|| panic!("env {name} is set"))
}

#[test]
fn kustomizations_list_every_file() {
    let dir = deploy_dir();
    let listed: BTreeSet<String> = kustomization_resources(&dir).into_iter().collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk, "deploy/kustomization.yaml resources");
    let overlay = dir.join("overlays/sys-admin");
    let doc = &documents(&overlay.join("kustomization.yaml"))[0];
    assert_eq!(doc["resources"], serde_json::json!(["../.."]));
    let patches: BTreeSet<String> = doc["patches"]
        .as_array()
        .expect("patches")
        .iter()
        .map(|p| p["path"].as_str().expect("patch path").to_owned())
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(&overlay)
        .expect("overlay dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    assert_eq!(patches, files, "overlay patches");
}

#[test]
fn every_manifest_parses_into_api_types_in_one_namespace() {
    let objects = base_objects();
    let kinds: BTreeSet<&str> = objects.iter().map(|(_, doc, _)| kind(doc)).collect();
    for expected in ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"] {
        assert!(kinds.contains(expected), "{expected} missing: {kinds:?}");
    }
    for expected in ["DaemonSet", "Service", "ConfigMap", "Deployment"] {
        assert!(kinds.contains(expected), "{expected} missing: {kinds:?}");
    }
    for (file, doc, _) in &objects {
        let cluster_scoped = matches!(kind(doc), "Namespace" | "ClusterRole" | "ClusterRoleBinding");
        let ns = doc["metadata"]["namespace"].as_str();
        if cluster_scoped {
            assert_eq!(ns, None, "{file}: {} is cluster-scoped", kind(doc));
        } else {
            assert_eq!(ns, Some(NAMESPACE), "{file}: {} namespace", kind(doc));
        }
    }
}

#[test]
fn daemonset_is_not_privileged_and_runs_everywhere() {
    let ds = daemonset();
    let pod = ds.spec.as_ref().unwrap().template.spec.clone().unwrap();
    assert_ne!(pod.host_pid, Some(true), "no hostPID (host /proc is mounted instead)");
    assert_ne!(pod.host_network, Some(true));
    assert_ne!(pod.host_ipc, Some(true));
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-node-critical"));
    assert_eq!(pod.service_account_name.as_deref(), Some("lifecycle-agent"));
    let tolerations = pod.tolerations.clone().unwrap_or_default();
    assert!(
        tolerations.iter().any(|t| t.operator.as_deref() == Some("Exists")
            && t.key.is_none()
            && t.effect.is_none()),
        "a toleration of every taint: {tolerations:?}"
    );
    let seccomp = pod.security_context.and_then(|s| s.seccomp_profile).expect("seccomp");
    assert_eq!(seccomp.type_, "RuntimeDefault");
    let c = agent_container(&ds);
    let sc = c.security_context.clone().expect("container securityContext");
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_user, Some(0));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let resources = c.resources.expect("resources");
    let requests = resources.requests.expect("requests");
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    assert!(resources.limits.expect("limits").contains_key("memory"));
}

#[test]
fn capabilities_are_exactly_the_documented_ones() {
    let table = capability_table();
    let ds = daemonset();
    assert_eq!(added_capabilities(&ds), granted(&table, |r| r.daemonset));
    // Each added capability carries a comment naming the kernel check.
    let text = read(&deploy_dir().join("daemonset.yaml"));
    let lines: Vec<&str> = text.lines().collect();
    for cap in added_capabilities(&ds) {
        let at = lines
            .iter()
            .position(|l| l.trim() == format!("- {cap}"))
            .unwrap_or_else(|| panic!("`- {cap}` line in daemonset.yaml"));
        assert!(lines[at - 1].trim_start().starts_with('#'), "no comment above {cap}");
    }
    // Every capability the preflight checks for is in the table, and the
    // sys-admin overlay grants all of them.
    let overlay = granted(&table, |r| r.sys_admin_overlay);
    for (name, _, _) in REQUIREMENTS {
        let k8s = name.trim_start_matches("cap_").to_ascii_uppercase();
        assert!(table.iter().any(|r| r.name == k8s), "{k8s} missing from the table");
        assert!(overlay.contains(&k8s), "the sys-admin overlay lacks {k8s}");
    }
}

#[test]
fn sys_admin_overlay_adds_sys_admin_and_tracefs_mounting_only() {
    let overlay = deploy_dir().join("overlays/sys-admin/add-sys-admin.yaml");
    let ops = documents(&overlay).remove(0);
    let ops: json_patch::Patch = serde_json::from_value(ops).expect("a JSON 6902 patch");
    let base = daemonset_json();
    let mut patched = base.clone();
    json_patch::patch(&mut patched, &ops).expect("the overlay applies to the base");
    let ds: DaemonSet = serde_json::from_value(patched.clone()).expect("still a DaemonSet");
    let table = capability_table();
    assert_eq!(added_capabilities(&ds), granted(&table, |r| r.sys_admin_overlay));
    let c = agent_container(&ds);
    assert_eq!(env(&c, "LIFECYCLE_AGENT_NO_MOUNT_TRACEFS").value.as_deref(), Some("false"));
    // Nothing else changed.
    let container = "/spec/template/spec/containers/0";
    let mut a = base.clone();
    let mut b = patched;
    for v in [&mut a, &mut b] {
        let c = v.pointer_mut(container).unwrap().as_object_mut().unwrap();
        c.remove("env");
        c["securityContext"]["capabilities"].as_object_mut().unwrap().remove("add");
    }
    assert_eq!(a, b, "the overlay changes only capabilities and the tracefs env");
}

#[test]
fn rbac_is_read_only_on_pods() {
    let objects = base_objects();
    let mut rules = Vec::new();
    for (file, _, o) in &objects {
        match o {
            Object::ClusterRole(r) => rules.extend(r.rules.clone().unwrap_or_default()),
            Object::Role(r) => rules.extend(r.rules.clone().unwrap_or_default()),
            Object::RoleBinding(b) => {
                assert_eq!(b.role_ref.kind, "Role", "{file}: a namespaced role");
                let subjects = b.subjects.clone().unwrap_or_default();
                assert!(subjects.iter().all(|s| s.kind == "ServiceAccount"), "{file}");
            }
            Object::ClusterRoleBinding(b) => {
                assert_eq!(b.role_ref.kind, "ClusterRole", "{file}");
                let subjects = b.subjects.clone().unwrap_or_default();
                assert_eq!(subjects.len(), 1, "{file}");
                assert_eq!(subjects[0].kind, "ServiceAccount");
                assert_eq!(subjects[0].name, "lifecycle-agent");
                assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
            }
            _ => {}
        }
    }
    assert!(!rules.is_empty());
    let read = ["get", "list", "watch"];
    for rule in rules {
        assert_eq!(rule.api_groups, Some(vec![String::new()]), "core group only");
        assert_eq!(rule.resources, Some(vec!["pods".to_owned()]), "pods only");
        assert!(rule.verbs.iter().all(|v| read.contains(&v.as_str())), "{:?}", rule.verbs);
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
    }
}

#[test]
fn probes_and_ports_are_the_agents_endpoints() {
    let c = agent_container(&daemonset());
    let port = c.ports.clone().unwrap_or_default();
    assert_eq!(port.len(), 1);
    assert_eq!(port[0].name.as_deref(), Some("http-metrics"));
    assert_eq!(port[0].container_port, i32::from(DEFAULT_HEALTH_PORT));
    let addr = env(&c, "LIFECYCLE_AGENT_HEALTH_ADDR").value.clone().expect("value");
    assert_eq!(addr, format!("0.0.0.0:{DEFAULT_HEALTH_PORT}"));
    let probe_path = |p: Option<k8s_openapi::api::core::v1::Probe>| {
        let get = p.and_then(|p| p.http_get).expect("httpGet probe");
        assert_eq!(
            serde_json::to_value(&get.port).unwrap(),
            Value::from("http-metrics")
        );
        get.path.expect("path")
    };
    assert_eq!(probe_path(c.liveness_probe.clone()), HEALTHZ_PATH);
    assert_eq!(probe_path(c.startup_probe.clone()), HEALTHZ_PATH);
    assert_eq!(probe_path(c.readiness_probe.clone()), READYZ_PATH);
    let service = base_objects()
        .into_iter()
        .find_map(|(_, _, o)| match o {
            Object::Service(s) if s.metadata.name.as_deref() == Some("lifecycle-agent-metrics") => {
                Some(s)
            }
            _ => None,
        })
        .expect("metrics Service");
    let spec = service.spec.expect("service spec");
    let sp = &spec.ports.expect("ports")[0];
    assert_eq!(sp.port, i32::from(DEFAULT_HEALTH_PORT));
    assert_eq!(sp.name.as_deref(), Some("http-metrics"));
    assert_eq!(serde_json::to_value(&sp.target_port).unwrap(), Value::from("http-metrics"));
    let labels = daemonset().spec.unwrap().template.metadata.unwrap().labels.unwrap();
    for (k, v) in spec.selector.expect("selector") {
        assert_eq!(labels.get(&k), Some(&v), "selector {k} matches the pods");
    }
    let collector = read(&deploy_dir().join("otel-collector.yaml"));
    assert!(collector.contains(&format!("metrics_path: {METRICS_PATH}")));
    assert!(collector.contains("regex: http-metrics"));
}

#[test]
fn node_name_and_settings_come_from_known_variables() {
    let c = agent_container(&daemonset());
    let node = env(&c, "LIFECYCLE_AGENT_NODE_NAME");
    let field = node.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).expect("fieldRef");
    assert_eq!(field.field_path, "spec.nodeName");
    assert_eq!(c.args, Some(vec!["run".to_owned()]));
    // Every LIFECYCLE_AGENT_* variable is one `run` reads, and `doctor` reads
    // the ones that change what it checks, so `kubectl exec … doctor` checks
    // the pod's own setup.
    let cli = Cli::command();
    let envs = |cmd: &clap::Command| -> BTreeSet<String> {
        cmd.get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    };
    let global = envs(&cli);
    let known = envs(cli.find_subcommand("run").expect("run subcommand"));
    let doctor = envs(cli.find_subcommand("doctor").expect("doctor subcommand"));
    for var in c.env.clone().unwrap_or_default() {
        if var.name.starts_with("LIFECYCLE_AGENT_") {
            assert!(
                known.contains(&var.name) || global.contains(&var.name),
                "{} is not read by the agent",
                var.name
            );
        }
    }
    for var in ["LIFECYCLE_AGENT_PROC_ROOT", "LIFECYCLE_AGENT_NO_MOUNT_TRACEFS"] {
        assert!(doctor.contains(var), "doctor does not read {var}");
    }
}

#[test]
fn every_mount_has_its_volume_and_host_paths_are_read_only() {
    for (file, _, o) in base_objects() {
        let spec = match o {
            Object::DaemonSet(ds) => ds.spec.unwrap().template.spec.unwrap(),
            Object::Deployment(d) => d.spec.unwrap().template.spec.unwrap(),
            _ => continue,
        };
        let volumes = spec.volumes.unwrap_or_default();
        for c in &spec.containers {
            assert!(c.resources.is_some(), "{file}: {} has resources", c.name);
            let sc = c.security_context.as_ref().expect("securityContext");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{file}: {}", c.name);
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{file}: {}", c.name);
            for m in c.volume_mounts.clone().unwrap_or_default() {
                let v = volumes.iter().find(|v| v.name == m.name);
                let v = v.unwrap_or_else(|| panic!("{file}: mount {} has no volume", m.name));
                if v.host_path.is_some() {
                    assert_eq!(m.read_only, Some(true), "{file}: {} read-only", m.name);
                }
            }
        }
    }
    let ds = daemonset();
    let c = agent_container(&ds);
    let volumes = ds.spec.unwrap().template.spec.unwrap().volumes.unwrap();
    let host: BTreeSet<(String, String)> = c
        .volume_mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let v = volumes.iter().find(|v| v.name == m.name).unwrap();
            (v.host_path.clone().expect("hostPath").path, m.mount_path)
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("/sys/kernel/btf", "/sys/kernel/btf"),
        ("/sys/kernel/tracing", "/sys/kernel/tracing"),
        ("/sys/fs/cgroup", "/sys/fs/cgroup"),
        ("/proc", "/host/proc"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .into();
    assert_eq!(host, expected);
    let proc_root = env(&c, "LIFECYCLE_AGENT_PROC_ROOT").value.clone();
    assert_eq!(proc_root.as_deref(), Some("/host/proc"));
}

#[test]
fn namespace_accounts_and_collector_config_fit_together() {
    let objects = base_objects();
    let mut accounts = BTreeSet::new();
    let mut collector_config = None;
    for (_, _, o) in &objects {
        match o {
            Object::Namespace(ns) => {
                assert_eq!(ns.metadata.name.as_deref(), Some(NAMESPACE));
                let labels = ns.metadata.labels.clone().unwrap_or_default();
                let level = labels.get("pod-security.kubernetes.io/enforce");
                assert_eq!(level.map(String::as_str), Some("privileged"));
            }
            Object::ServiceAccount(sa) => {
                accounts.insert(sa.metadata.name.clone().unwrap_or_default());
            }
            Object::ConfigMap(cm) => {
                let data = cm.data.clone().unwrap_or_default();
                collector_config = data.get("collector.yaml").cloned();
            }
            _ => {}
        }
    }
    for (file, _, o) in &objects {
        let account = match o {
            Object::DaemonSet(ds) => ds.spec.clone().unwrap().template.spec.unwrap(),
            Object::Deployment(d) => d.spec.clone().unwrap().template.spec.unwrap(),
            _ => continue,
        }
        .service_account_name
        .unwrap_or_default();
        assert!(accounts.contains(&account), "{file}: ServiceAccount {account:?} exists");
    }
    // The collector's pipelines use only receivers, processors and
    // exporters it defines.
    let text = collector_config.expect("collector.yaml in the ConfigMap");
    let config: Value = yaml_serde::from_str(&text).expect("collector config is YAML");
    let pipelines = config["service"]["pipelines"].as_object().expect("pipelines");
    assert!(pipelines.contains_key("traces") && pipelines.contains_key("metrics"));
    for (name, pipeline) in pipelines {
        for section in ["receivers", "processors", "exporters"] {
            for component in pipeline[section].as_array().into_iter().flatten() {
                let component = component.as_str().expect("component name");
                assert!(
                    config[section].get(component).is_some(),
                    "pipeline {name} uses undefined {section} {component}"
                );
            }
        }
    }
    let otlp_http = &config["receivers"]["otlp"]["protocols"]["http"]["endpoint"];
    assert_eq!(otlp_http, "0.0.0.0:4318", "the port the DaemonSet sends to");
}
