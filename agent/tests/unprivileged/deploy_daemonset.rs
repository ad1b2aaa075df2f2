//! The DaemonSet against what the docs and the agent promise: not
//! privileged, exactly the documented capabilities (docs/operations.md),
//! the overlays (sys-admin, kernel-5.8) adding what the preflight asks
//! for and nothing else, probes on the agent's real endpoints, settings
//! the agent reads.

use std::collections::BTreeSet;

use crate::support::deploy::*;
use clap::CommandFactory;
use k8s_openapi::api::apps::v1::DaemonSet;
use lifecycle_agent::config::{Cli, DEFAULT_HEALTH_PORT, HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
use lifecycle_agent::preflight::{KernelVersion, MEMCG_ACCOUNTING, MIN_KERNEL, Need, REQUIREMENTS};
use serde_json::Value;

#[test]
fn daemonset_is_not_privileged_and_runs_everywhere() {
    let ds = daemonset();
    let pod = ds.spec.as_ref().unwrap().template.spec.clone().unwrap();
    assert_ne!(
        pod.host_pid,
        Some(true),
        "no hostPID (host /proc is mounted instead)"
    );
    assert_ne!(pod.host_network, Some(true));
    assert_ne!(pod.host_ipc, Some(true));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("lifecycle-agent"));
    let tolerations = pod.tolerations.clone().unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.key.is_none()
                && t.effect.is_none()),
        "a toleration of every taint: {tolerations:?}"
    );
    let seccomp = pod
        .security_context
        .and_then(|s| s.seccomp_profile)
        .expect("seccomp");
    assert_eq!(seccomp.type_, "RuntimeDefault");
    let c = agent_container(&ds);
    let sc = c
        .security_context
        .clone()
        .expect("container securityContext");
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
    let text = read(&base_dir().join("daemonset.yaml"));
    let lines: Vec<&str> = text.lines().collect();
    for cap in added_capabilities(&ds) {
        let at = lines
            .iter()
            .position(|l| l.trim() == format!("- {cap}"))
            .unwrap_or_else(|| panic!("`- {cap}` line in daemonset.yaml"));
        assert!(
            lines[at - 1].trim_start().starts_with('#'),
            "no comment above {cap}"
        );
    }
    // One table column per overlay that patches the DaemonSet, and what
    // each builds; the others (prometheus-operator: alert rules) add no
    // capability.
    let (overlays, additions): (BTreeSet<String>, BTreeSet<String>) = overlay_names()
        .into_iter()
        .partition(|n| !patch_files(&deploy_dir().join("overlays").join(n)).is_empty());
    let base: DaemonSet = serde_json::from_value(daemonset_json()).expect("the base DaemonSet");
    for name in &additions {
        let ds: DaemonSet =
            serde_json::from_value(overlay_daemonset_json(name)).expect("still a DaemonSet");
        assert_eq!(
            added_capabilities(&ds),
            added_capabilities(&base),
            "overlay {name}"
        );
    }
    let columns: BTreeSet<String> = table[0].overlays.keys().cloned().collect();
    assert_eq!(columns, overlays, "`<name> overlay` columns");
    for name in &overlays {
        let ds: DaemonSet =
            serde_json::from_value(overlay_daemonset_json(name)).expect("still a DaemonSet");
        assert_eq!(
            added_capabilities(&ds),
            granted_by_overlay(&table, name),
            "overlay {name}"
        );
    }
}

#[test]
fn each_capability_the_agent_uses_is_granted_where_it_is_needed() {
    let table = capability_table();
    let base = granted(&table, |r| r.daemonset);
    let sys_admin = granted_by_overlay(&table, "sys-admin");
    let old_kernels = granted_by_overlay(&table, "kernel-5.8");
    let old_range = |v: KernelVersion| {
        format!(
            "{}.{}–{}.{}",
            MIN_KERNEL.major,
            MIN_KERNEL.minor,
            v.major,
            v.minor - 1
        )
    };
    for (name, need, _) in REQUIREMENTS {
        let k8s = name.trim_start_matches("cap_").to_ascii_uppercase();
        let row = table
            .iter()
            .find(|r| r.name == k8s)
            .unwrap_or_else(|| panic!("{k8s} missing from the table"));
        match need {
            Need::Always => {
                assert!(base.contains(&k8s), "the base lacks {k8s}");
                assert!(row.kernels.starts_with("all"), "{k8s}: {}", row.kernels);
            }
            // Kernels the base does not cover: their overlay grants it.
            Need::Before(v) => {
                assert_eq!(v, MEMCG_ACCOUNTING, "{k8s}");
                assert!(!base.contains(&k8s), "the base grants {k8s}");
                assert!(
                    old_kernels.contains(&k8s),
                    "overlays/kernel-5.8 lacks {k8s}"
                );
                assert_eq!(row.kernels, old_range(v), "{k8s}");
            }
            Need::ToMountTracefs => {
                assert!(!base.contains(&k8s), "the base grants {k8s}");
                assert!(sys_admin.contains(&k8s), "overlays/sys-admin lacks {k8s}");
                assert!(row.kernels.starts_with("all"), "{k8s}: {}", row.kernels);
            }
        }
    }
    // Each overlay is the base plus capabilities, never minus.
    assert!(sys_admin.is_superset(&base) && old_kernels.is_superset(&base));
}

/// The base and `patched` differ in the agent container's environment and
/// added capabilities at most.
fn same_but_env_and_capabilities(base: &Value, patched: &Value) {
    let container = "/spec/template/spec/containers/0";
    let mut a = base.clone();
    let mut b = patched.clone();
    for v in [&mut a, &mut b] {
        let c = v.pointer_mut(container).unwrap().as_object_mut().unwrap();
        c.remove("env");
        c["securityContext"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("add");
    }
    assert_eq!(a, b, "the overlay changes only capabilities and env");
}

#[test]
fn sys_admin_overlay_adds_sys_admin_and_tracefs_mounting_only() {
    let base = daemonset_json();
    let patched = overlay_daemonset_json("sys-admin");
    let ds: DaemonSet = serde_json::from_value(patched.clone()).expect("still a DaemonSet");
    let mut expected = added_capabilities(&daemonset());
    expected.insert("SYS_ADMIN".to_owned());
    assert_eq!(added_capabilities(&ds), expected);
    let c = agent_container(&ds);
    assert_eq!(
        env(&c, "LIFECYCLE_AGENT_NO_MOUNT_TRACEFS").value.as_deref(),
        Some("false")
    );
    same_but_env_and_capabilities(&base, &patched);
}

#[test]
fn kernel_5_8_overlay_adds_sys_resource_only_and_stacks_on_sys_admin() {
    let base = daemonset_json();
    let patched = overlay_daemonset_json("kernel-5.8");
    let ds: DaemonSet = serde_json::from_value(patched.clone()).expect("still a DaemonSet");
    let mut expected = added_capabilities(&daemonset());
    assert!(
        !expected.contains("SYS_RESOURCE"),
        "the base needs no SYS_RESOURCE"
    );
    expected.insert("SYS_RESOURCE".to_owned());
    assert_eq!(added_capabilities(&ds), expected);
    let env = |v: &Value| v.pointer("/spec/template/spec/containers/0/env").cloned();
    assert_eq!(env(&patched), env(&base), "no setting changes");
    same_but_env_and_capabilities(&base, &patched);
    // A node needing both (a 5.10 kernel under an old runtime): the
    // kernel-5.8 patch applies on top of the sys-admin overlay too.
    let both = patched_by("kernel-5.8", overlay_daemonset_json("sys-admin"));
    let ds: DaemonSet = serde_json::from_value(both).expect("still a DaemonSet");
    expected.insert("SYS_ADMIN".to_owned());
    assert_eq!(added_capabilities(&ds), expected);
}

#[test]
fn probes_and_ports_are_the_agents_endpoints() {
    let c = agent_container(&daemonset());
    let port = c.ports.clone().unwrap_or_default();
    assert_eq!(port.len(), 1);
    assert_eq!(port[0].name.as_deref(), Some("http-metrics"));
    assert_eq!(port[0].container_port, i32::from(DEFAULT_HEALTH_PORT));
    let addr = env(&c, "LIFECYCLE_AGENT_HEALTH_ADDR")
        .value
        .clone()
        .expect("value");
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
    assert_eq!(
        serde_json::to_value(&sp.target_port).unwrap(),
        Value::from("http-metrics")
    );
    let labels = daemonset()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .labels
        .unwrap();
    for (k, v) in spec.selector.expect("selector") {
        assert_eq!(labels.get(&k), Some(&v), "selector {k} matches the pods");
    }
    let collector = read(&base_dir().join("otel-collector.yaml"));
    assert!(collector.contains(&format!("metrics_path: {METRICS_PATH}")));
    assert!(collector.contains("regex: http-metrics"));
}

#[test]
fn node_name_and_settings_come_from_known_variables() {
    let c = agent_container(&daemonset());
    let node = env(&c, "LIFECYCLE_AGENT_NODE_NAME");
    let field = node
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("fieldRef");
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
    for var in [
        "LIFECYCLE_AGENT_PROC_ROOT",
        "LIFECYCLE_AGENT_NO_MOUNT_TRACEFS",
    ] {
        assert!(doctor.contains(var), "doctor does not read {var}");
    }
}
