//! Classification of realistic injected pod specs (fixtures under
//! tests/fixtures/pods/): container kind and role, mesh mode, capture ports,
//! proxy UID and exclusions.

use k8s_openapi::api::core::v1::Pod;
use lifecycle_agent::pods::annotations::PortRange;
use lifecycle_agent::pods::classify::{ClassificationRules, ContainerKind, SidecarRole};
use lifecycle_agent::pods::mesh::{MeshMode, UidSource};
use lifecycle_agent::pods::spec::{HookFacts, PodSpecFacts, PortRef};
use lifecycle_testkit::pod_fixture;
use serde_json::Value;

fn facts_of(value: Value) -> PodSpecFacts {
    facts_with(value, &ClassificationRules::default())
}

fn facts_with(value: Value, rules: &ClassificationRules) -> PodSpecFacts {
    let pod: Pod = serde_json::from_value(value).unwrap();
    PodSpecFacts::from_pod(&pod.metadata, pod.spec.as_ref().unwrap(), rules)
}

/// (name, kind, role) of every container, init containers first.
fn layout(facts: &PodSpecFacts) -> Vec<(&str, ContainerKind, SidecarRole)> {
    facts
        .containers
        .iter()
        .map(|c| (&*c.name, c.kind, c.role))
        .collect()
}

fn ports(list: &[(u16, u16)]) -> Vec<PortRange> {
    list.iter()
        .map(|&(first, last)| PortRange { first, last })
        .collect()
}

#[test]
fn istio_legacy_injected() {
    let facts = facts_of(pod_fixture("istio-legacy.json"));
    assert_eq!(
        layout(&facts),
        vec![
            ("istio-init", ContainerKind::Init, SidecarRole::MeshInit),
            ("reviews", ContainerKind::App, SidecarRole::Other),
            (
                "istio-proxy",
                ContainerKind::LegacySidecar,
                SidecarRole::MeshProxy
            ),
        ]
    );
    let mesh = &facts.mesh;
    assert_eq!(
        mesh.mode,
        MeshMode::IstioLegacy {
            hold_application_until_proxy_starts: false
        }
    );
    assert_eq!(mesh.proxy_container.as_deref(), Some("istio-proxy"));
    assert_eq!(
        (mesh.proxy_uid, mesh.proxy_uid_source),
        (Some(1337), Some(UidSource::Container))
    );
    assert_eq!(
        (
            mesh.outbound_capture_port,
            mesh.inbound_capture_port,
            mesh.health_port
        ),
        (Some(15001), Some(15006), Some(15021))
    );
    assert_eq!(
        mesh.excluded_outbound_ports,
        ports(&[(3306, 3306), (9000, 9002)])
    );
    assert_eq!(
        mesh.excluded_outbound_cidrs,
        vec![Box::from("169.254.169.254/32")]
    );
    assert!(mesh.excluded_inbound_ports.is_empty());
    let owner = facts.owner.as_ref().unwrap();
    assert_eq!((&*owner.kind, owner.is_job()), ("ReplicaSet", false));
    assert!(!facts.has_native_sidecars());
}

#[test]
fn istio_legacy_with_hold_application() {
    let facts = facts_of(pod_fixture("istio-legacy-hold.json"));
    assert_eq!(
        facts.containers[1].name.as_ref(),
        "istio-proxy",
        "proxy is the first regular container"
    );
    assert_eq!(
        facts.mesh.mode,
        MeshMode::IstioLegacy {
            hold_application_until_proxy_starts: true
        }
    );
    assert_eq!(facts.mesh.termination_drain.as_deref(), Some("20s"));
    assert_eq!(facts.mesh.excluded_inbound_ports, ports(&[(8081, 8081)]));
    assert_eq!(facts.termination_grace_period_s, 45);
    let proxy = facts.container("istio-proxy").unwrap().1;
    assert_eq!(
        proxy.post_start,
        Some(HookFacts::Exec {
            command: "pilot-agent wait".into()
        })
    );
    let app = facts.container("checkout").unwrap().1;
    assert_eq!(app.pre_stop, Some(HookFacts::Sleep { seconds: 5 }));

    // The hook alone (annotation removed) still means "hold"…
    let mut hook_only = pod_fixture("istio-legacy-hold.json");
    hook_only["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("proxy.istio.io/config");
    assert_eq!(
        facts_of(hook_only.clone()).mesh.mode,
        MeshMode::IstioLegacy {
            hold_application_until_proxy_starts: true
        }
    );
    // …and without hook or annotation there is no hold.
    hook_only["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("lifecycle");
    assert_eq!(
        facts_of(hook_only).mesh.mode,
        MeshMode::IstioLegacy {
            hold_application_until_proxy_starts: false
        }
    );
}

#[test]
fn istio_native_sidecar() {
    let facts = facts_of(pod_fixture("istio-native.json"));
    assert_eq!(
        layout(&facts),
        vec![
            ("istio-init", ContainerKind::Init, SidecarRole::MeshInit),
            (
                "istio-proxy",
                ContainerKind::NativeSidecar,
                SidecarRole::MeshProxy
            ),
            ("ratings", ContainerKind::App, SidecarRole::Other),
        ]
    );
    assert_eq!(facts.mesh.mode, MeshMode::IstioNative);
    let proxy = facts.container("istio-proxy").unwrap().1;
    let startup = proxy
        .startup_probe
        .as_ref()
        .expect("native istio-proxy has a startup probe");
    assert_eq!(
        startup.action,
        HookFacts::HttpGet {
            port: PortRef::Number(15021),
            path: Some("/healthz/ready".into())
        }
    );
    assert_eq!((startup.period_s, startup.failure_threshold), (1, 600));
    assert_eq!(
        proxy.pre_stop,
        Some(HookFacts::HttpGet {
            port: PortRef::Number(15020),
            path: Some("/drain".into())
        })
    );
    assert!(facts.has_native_sidecars());
}

#[test]
fn linkerd_legacy_with_await_and_wait_before_exit() {
    let facts = facts_of(pod_fixture("linkerd-legacy.json"));
    assert_eq!(
        layout(&facts),
        vec![
            ("linkerd-init", ContainerKind::Init, SidecarRole::MeshInit),
            (
                "linkerd-proxy",
                ContainerKind::LegacySidecar,
                SidecarRole::MeshProxy
            ),
            ("web-svc", ContainerKind::App, SidecarRole::Other),
        ]
    );
    let mesh = &facts.mesh;
    assert_eq!(
        mesh.mode,
        MeshMode::LinkerdLegacy {
            proxy_await: true,
            wait_before_exit_s: Some(20)
        }
    );
    assert_eq!(
        (mesh.proxy_uid, mesh.proxy_uid_source),
        (Some(2102), Some(UidSource::Container))
    );
    assert_eq!(
        (
            mesh.outbound_capture_port,
            mesh.inbound_capture_port,
            mesh.health_port
        ),
        (Some(4140), Some(4143), Some(4191))
    );
    assert_eq!(
        mesh.excluded_outbound_ports,
        ports(&[(3306, 3306), (5432, 5432)])
    );
    assert_eq!(mesh.excluded_inbound_ports, ports(&[(9990, 9990)]));
    assert_eq!(facts.termination_grace_period_s, 60);

    // Without the annotations, the injected hooks carry the same facts.
    let mut bare = pod_fixture("linkerd-legacy.json");
    let annotations = bare["metadata"]["annotations"].as_object_mut().unwrap();
    annotations.remove("config.linkerd.io/proxy-await");
    annotations.remove("config.alpha.linkerd.io/proxy-wait-before-exit-seconds");
    assert_eq!(
        facts_of(bare.clone()).mesh.mode,
        MeshMode::LinkerdLegacy {
            proxy_await: true,
            wait_before_exit_s: Some(20)
        }
    );
    bare["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("lifecycle");
    assert_eq!(
        facts_of(bare).mesh.mode,
        MeshMode::LinkerdLegacy {
            proxy_await: false,
            wait_before_exit_s: None
        }
    );
}

#[test]
fn linkerd_native_sidecar() {
    let facts = facts_of(pod_fixture("linkerd-native.json"));
    assert_eq!(
        layout(&facts),
        vec![
            (
                "linkerd-network-validator",
                ContainerKind::Init,
                SidecarRole::MeshInit
            ),
            (
                "linkerd-proxy",
                ContainerKind::NativeSidecar,
                SidecarRole::MeshProxy
            ),
            ("voting-svc", ContainerKind::App, SidecarRole::Other),
        ]
    );
    assert_eq!(facts.mesh.mode, MeshMode::LinkerdNative);
    assert_eq!(facts.annotations.linkerd_native_sidecar, Some(true));
    assert_eq!(facts.mesh.proxy_uid, Some(2102));

    // Without its own runAsUser the proxy inherits the pod's.
    let mut inherit = pod_fixture("linkerd-native.json");
    inherit["spec"]["initContainers"][1]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    let mesh = facts_of(inherit).mesh;
    assert_eq!(
        (mesh.proxy_uid, mesh.proxy_uid_source),
        (Some(1000), Some(UidSource::Pod))
    );
}

#[test]
fn job_with_cloud_sql_proxy_native_sidecar() {
    let facts = facts_of(pod_fixture("job-cloud-sql-proxy.json"));
    assert_eq!(
        layout(&facts),
        vec![
            (
                "cloud-sql-proxy",
                ContainerKind::NativeSidecar,
                SidecarRole::DatabaseProxy
            ),
            ("report", ContainerKind::App, SidecarRole::Other),
        ]
    );
    assert!(facts.owner.as_ref().unwrap().is_job());
    assert_eq!(&*facts.restart_policy, "Never");
    assert_eq!(facts.mesh.mode, MeshMode::None);
    assert_eq!(facts.mesh.proxy_uid, None);
    let proxy = facts.container("cloud-sql-proxy").unwrap().1;
    assert!(proxy.startup_probe.is_some());
}

#[test]
fn log_shipper_and_secrets_agent_around_a_regular_init() {
    let facts = facts_of(pod_fixture("logging-vault-native.json"));
    assert_eq!(
        layout(&facts),
        vec![
            (
                "fluent-bit",
                ContainerKind::NativeSidecar,
                SidecarRole::LogShipper
            ),
            ("db-migrate", ContainerKind::Init, SidecarRole::Other),
            (
                "vault-agent",
                ContainerKind::NativeSidecar,
                SidecarRole::SecretsAgent
            ),
            ("payments", ContainerKind::App, SidecarRole::Other),
        ]
    );
    let indexes: Vec<u16> = facts.containers.iter().map(|c| c.index).collect();
    assert_eq!(
        indexes,
        vec![0, 1, 2, 0],
        "index is the position within the section"
    );
    assert_eq!(facts.mesh.mode, MeshMode::None);
    assert_eq!(facts.termination_grace_period_s, 40);
    // Unrelated annotations are not kept.
    let kept = serde_json::to_string(&facts.annotations).unwrap();
    assert!(!kept.contains("vault.hashicorp.com"));
}

#[test]
fn plain_pod_and_opt_out() {
    let facts = facts_of(pod_fixture("plain.json"));
    assert_eq!(
        layout(&facts),
        vec![("nginx", ContainerKind::App, SidecarRole::Other)]
    );
    assert_eq!(facts.annotations.istio_inject, Some(false));
    assert_eq!(facts.mesh.mode, MeshMode::None);
    assert_eq!(
        facts.termination_grace_period_s, 30,
        "API default when unset"
    );
}

#[test]
fn rules_are_configurable() {
    let rules: ClassificationRules = serde_json::from_str(
        r#"{"roles": [{"role": "secrets_agent", "names": ["db-migrate"]}],
            "extra_sidecar_names": ["nginx"]}"#,
    )
    .unwrap();
    let facts = facts_with(pod_fixture("logging-vault-native.json"), &rules);
    // Only the configured rule applies: fluent-bit is no longer recognised.
    assert_eq!(facts.containers[0].role, SidecarRole::Other);
    assert_eq!(facts.containers[1].role, SidecarRole::SecretsAgent);
    let plain = facts_with(pod_fixture("plain.json"), &rules);
    assert_eq!(plain.containers[0].kind, ContainerKind::LegacySidecar);
}
