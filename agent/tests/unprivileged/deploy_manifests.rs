//! The manifests of `deploy/` parsed into Kubernetes API types (no
//! cluster, no kubectl): every file listed, kustomizations kustomize can
//! build, every field known to the API types, one namespace, RBAC
//! that reads pods and events and only creates/patches Events, every mount backed by a volume, the example collector's
//! configuration consistent, probed on its health extension and bounded
//! in memory.

use std::collections::BTreeSet;

use crate::support::deploy::*;

#[test]
fn kustomizations_list_every_file() {
    let deploy = deploy_dir();
    assert_eq!(kustomization_resources(&deploy), ["base"]);
    assert!(yaml_files(&deploy).is_empty(), "manifests belong in base/");
    let listed: BTreeSet<String> = kustomization_resources(&base_dir()).into_iter().collect();
    assert_eq!(listed, yaml_files(&base_dir()), "base resources");
    let overlays = overlay_names();
    assert!(overlays.contains("sys-admin") && overlays.contains("kernel-5.8"));
    for name in overlays {
        let overlay = deploy.join("overlays").join(&name);
        let resources = kustomization_resources(&overlay);
        assert_eq!(resources[0], "../../base", "{name}");
        // Every other file is a patch or a resource of its own.
        let mut listed = patch_files(&overlay);
        listed.extend(resources[1..].iter().cloned());
        assert_eq!(listed, yaml_files(&overlay), "{name}");
    }
}

#[test]
fn no_kustomization_includes_a_directory_containing_itself() {
    // kustomize stops with "cycle detected" when a directory resource
    // contains the kustomization that names it, as a base holding its own
    // overlays would.
    let overlays = deploy_dir().join("overlays");
    let mut dirs = vec![deploy_dir(), base_dir()];
    dirs.extend(overlay_names().iter().map(|n| overlays.join(n)));
    for dir in dirs {
        let dir = dir.canonicalize().expect("kustomization directory");
        for resource in kustomization_resources(&dir) {
            let target = dir.join(&resource);
            if !target.is_dir() {
                continue;
            }
            let target = target.canonicalize().expect("resource directory");
            assert!(
                target.join("kustomization.yaml").is_file(),
                "{}: {resource} has no kustomization.yaml",
                dir.display()
            );
            assert!(
                !dir.starts_with(&target),
                "{}: resource {resource} contains it (kustomize: cycle detected)",
                dir.display()
            );
        }
    }
}

#[test]
fn every_manifest_parses_into_api_types_in_one_namespace() {
    let objects = base_objects();
    let kinds: BTreeSet<&str> = objects.iter().map(|(_, doc, _)| kind(doc)).collect();
    for expected in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    ] {
        assert!(kinds.contains(expected), "{expected} missing: {kinds:?}");
    }
    for expected in ["DaemonSet", "Service", "ConfigMap", "Deployment"] {
        assert!(kinds.contains(expected), "{expected} missing: {kinds:?}");
    }
    for (file, doc, _) in &objects {
        let cluster_scoped = matches!(
            kind(doc),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding"
        );
        let ns = doc["metadata"]["namespace"].as_str();
        if cluster_scoped {
            assert_eq!(ns, None, "{file}: {} is cluster-scoped", kind(doc));
        } else {
            assert_eq!(ns, Some(NAMESPACE), "{file}: {} namespace", kind(doc));
        }
    }
}

#[test]
fn rbac_reads_pods_and_events_and_only_posts_events() {
    let objects = base_objects();
    // (role, group, resource, verb) for every rule of every role.
    let mut granted: Vec<(String, String, String, String)> = Vec::new();
    for (file, _, o) in &objects {
        let (role, rules) = match o {
            Object::ClusterRole(r) => (
                format!(
                    "ClusterRole/{}",
                    r.metadata.name.clone().unwrap_or_default()
                ),
                r.rules.clone().unwrap_or_default(),
            ),
            Object::Role(r) => (
                format!("Role/{}", r.metadata.name.clone().unwrap_or_default()),
                r.rules.clone().unwrap_or_default(),
            ),
            Object::RoleBinding(b) => {
                assert_eq!(b.role_ref.kind, "Role", "{file}: a namespaced role");
                let subjects = b.subjects.clone().unwrap_or_default();
                assert!(
                    subjects.iter().all(|s| s.kind == "ServiceAccount"),
                    "{file}"
                );
                continue;
            }
            Object::ClusterRoleBinding(b) => {
                assert_eq!(b.role_ref.kind, "ClusterRole", "{file}");
                let subjects = b.subjects.clone().unwrap_or_default();
                assert_eq!(subjects.len(), 1, "{file}");
                assert_eq!(subjects[0].kind, "ServiceAccount");
                assert_eq!(subjects[0].name, "lifecycle-agent");
                assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
                continue;
            }
            _ => continue,
        };
        for rule in rules {
            assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
            for group in rule.api_groups.clone().unwrap_or_default() {
                for resource in rule.resources.clone().unwrap_or_default() {
                    for verb in &rule.verbs {
                        granted.push((role.clone(), group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }
    }
    granted.sort();
    // Exactly: the agent reads pods and core events and creates/patches
    // events.k8s.io Events (its findings); the collector reads pods in its
    // namespace (k8sattributes). Nothing else.
    let expected: Vec<(String, String, String, String)> = [
        ("ClusterRole/lifecycle-agent", "", "events", "list"),
        ("ClusterRole/lifecycle-agent", "", "events", "watch"),
        ("ClusterRole/lifecycle-agent", "", "pods", "get"),
        ("ClusterRole/lifecycle-agent", "", "pods", "list"),
        ("ClusterRole/lifecycle-agent", "", "pods", "watch"),
        (
            "ClusterRole/lifecycle-agent",
            "events.k8s.io",
            "events",
            "create",
        ),
        (
            "ClusterRole/lifecycle-agent",
            "events.k8s.io",
            "events",
            "patch",
        ),
        ("Role/otel-collector", "", "pods", "get"),
        ("Role/otel-collector", "", "pods", "list"),
        ("Role/otel-collector", "", "pods", "watch"),
    ]
    .iter()
    .map(|(r, g, res, v)| (r.to_string(), g.to_string(), res.to_string(), v.to_string()))
    .collect();
    assert_eq!(granted, expected);
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
            assert_eq!(
                sc.read_only_root_filesystem,
                Some(true),
                "{file}: {}",
                c.name
            );
            assert_eq!(
                sc.allow_privilege_escalation,
                Some(false),
                "{file}: {}",
                c.name
            );
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
        assert!(
            accounts.contains(&account),
            "{file}: ServiceAccount {account:?} exists"
        );
    }
    // The collector's pipelines use only receivers, processors and
    // exporters it defines.
    let config = collector_config();
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .expect("pipelines");
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

#[test]
fn collector_is_probed_on_its_health_extension_and_bounded_in_memory() {
    let config = collector_config();
    let c = collector_container();
    // Both probes GET the port and path of the health_check extension,
    // which the service enables and binds where the kubelet reaches it.
    let (host, port, path) = enabled_extension_endpoint(&config, "health_check");
    assert_eq!(host, "0.0.0.0", "the kubelet probes the pod IP");
    for (kind, probe) in [
        ("readiness", c.readiness_probe.clone()),
        ("liveness", c.liveness_probe.clone()),
    ] {
        let get = probe.and_then(|p| p.http_get);
        let get = get.unwrap_or_else(|| panic!("{kind} probe with httpGet"));
        assert_eq!(container_port(&c, &get.port), port, "{kind} probe port");
        assert_eq!(
            get.path.as_deref(),
            Some(path.as_str()),
            "{kind} probe path"
        );
    }
    // CPU and memory requested and limited, requests within the limits.
    let (requests, limits) = (resources(&c, "requests"), resources(&c, "limits"));
    for r in ["cpu", "memory"] {
        let (request, limit) = (requests[r], limits[r]);
        assert!(
            0.0 < request && request <= limit,
            "{r}: {request} > {limit}"
        );
    }
    // The memory_limiter refuses data before the kernel kills the
    // container: its hard limit leaves a fifth of the container's limit
    // to the Go runtime, and it runs first in every pipeline.
    let hard = memory_limiter_bytes(&config, "limit_mib");
    let spike = memory_limiter_bytes(&config, "spike_limit_mib");
    let memory = limits["memory"];
    assert!(hard <= 0.8 * memory, "limit_mib {hard} vs limit {memory}");
    assert!(0.0 < spike && spike < hard, "spike_limit_mib {spike}");
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .expect("pipelines");
    for (name, pipeline) in pipelines {
        assert_eq!(
            pipeline["processors"][0], "memory_limiter",
            "pipeline {name}"
        );
    }
}
