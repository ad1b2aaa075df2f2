//! What each container of a pod is: its lifecycle kind (init, native
//! sidecar, legacy sidecar, app) and its role (mesh proxy, log shipper, …),
//! (the mesh mode is [`super::mesh`]'s).
//!
//! Kind follows the spec alone: an init container with `restartPolicy:
//! Always` is a native sidecar, any other init container is an init
//! container; a regular container is a legacy sidecar when its role is
//! recognised (or it is listed in [`ClassificationRules::extra_sidecar_names`]),
//! else the app. Role follows the rules: names first, then images, then
//! declared ports, then the mesh injector's own annotation.

pub mod rules;

#[cfg(feature = "k8s")]
use k8s_openapi::api::core::v1::Container;
use serde::{Deserialize, Serialize};

#[cfg(feature = "k8s")]
use crate::pods::annotations::LifecycleAnnotations;

pub use rules::{ClassificationRules, MeshRule, RoleRule, SidecarRole};

/// Where a container is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// `spec.initContainers`.
    Init,
    /// `spec.containers`.
    Regular,
}

/// How a container takes part in the pod lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    /// Init container with `restartPolicy: Always` (KEP-753 sidecar).
    NativeSidecar,
    /// Regular container acting as a sidecar (the pre-1.28 pattern).
    LegacySidecar,
    /// A regular application container.
    App,
    /// An init container that runs to completion.
    Init,
}

impl ContainerKind {
    /// Whether the kind is a sidecar of either style.
    pub fn is_sidecar(self) -> bool {
        matches!(self, Self::NativeSidecar | Self::LegacySidecar)
    }
}

#[cfg(feature = "k8s")]
fn role_by<F>(rules: &ClassificationRules, matches: F) -> Option<SidecarRole>
where
    F: Fn(&rules::RoleRule) -> bool,
{
    rules.roles.iter().find(|r| matches(r)).map(|r| r.role)
}

/// The role of `container` according to `rules` and the injector annotations.
#[cfg(feature = "k8s")]
pub fn container_role(
    container: &Container,
    section: Section,
    annotations: &LifecycleAnnotations,
    rules: &ClassificationRules,
) -> SidecarRole {
    let image = container.image.as_deref().unwrap_or_default();
    let ports: Vec<u16> = container
        .ports
        .iter()
        .flatten()
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    role_by(rules, |r| r.names.contains(&container.name))
        .or_else(|| {
            role_by(rules, |r| {
                r.images.iter().any(|p| rules::image_matches(image, p))
            })
        })
        .or_else(|| role_by(rules, |r| r.ports.iter().any(|p| ports.contains(p))))
        .or_else(|| {
            let injected = annotations
                .istio_injected
                .iter()
                .any(|n| **n == *container.name);
            injected.then_some(match section {
                Section::Init if container.restart_policy.as_deref() != Some("Always") => {
                    SidecarRole::MeshInit
                }
                _ => SidecarRole::MeshProxy,
            })
        })
        .unwrap_or(SidecarRole::Other)
}

/// The lifecycle kind of `container`, given its role.
#[cfg(feature = "k8s")]
pub fn container_kind(
    container: &Container,
    section: Section,
    role: SidecarRole,
    rules: &ClassificationRules,
) -> ContainerKind {
    match section {
        Section::Init if container.restart_policy.as_deref() == Some("Always") => {
            ContainerKind::NativeSidecar
        }
        Section::Init => ContainerKind::Init,
        Section::Regular
            if !matches!(role, SidecarRole::Other | SidecarRole::MeshInit)
                || rules.extra_sidecar_names.contains(&container.name) =>
        {
            ContainerKind::LegacySidecar
        }
        Section::Regular => ContainerKind::App,
    }
}

#[cfg(test)]
#[cfg(feature = "k8s")]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(value: serde_json::Value) -> Container {
        serde_json::from_value(value).unwrap()
    }

    fn classify(
        c: &Container,
        section: Section,
        a: &LifecycleAnnotations,
    ) -> (ContainerKind, SidecarRole) {
        let rules = ClassificationRules::default();
        let role = container_role(c, section, a, &rules);
        (container_kind(c, section, role, &rules), role)
    }

    #[test]
    fn kinds_follow_section_and_restart_policy() {
        let none = LifecycleAnnotations::default();
        let native = container(
            json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0", "restartPolicy": "Always"}),
        );
        assert_eq!(
            classify(&native, Section::Init, &none),
            (ContainerKind::NativeSidecar, SidecarRole::MeshProxy)
        );
        let legacy =
            container(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0"}));
        assert_eq!(
            classify(&legacy, Section::Regular, &none),
            (ContainerKind::LegacySidecar, SidecarRole::MeshProxy)
        );
        let init = container(json!({"name": "migrate", "image": "example.com/migrate:1"}));
        assert_eq!(
            classify(&init, Section::Init, &none),
            (ContainerKind::Init, SidecarRole::Other)
        );
        let app = container(json!({"name": "web", "image": "nginx:1.27"}));
        assert_eq!(
            classify(&app, Section::Regular, &none),
            (ContainerKind::App, SidecarRole::Other)
        );
    }

    #[test]
    fn role_by_image_then_port_then_annotation() {
        let none = LifecycleAnnotations::default();
        let shipper =
            container(json!({"name": "logs", "image": "cr.fluentbit.io/fluent/fluent-bit:3.2"}));
        assert_eq!(
            classify(&shipper, Section::Regular, &none).1,
            SidecarRole::LogShipper
        );
        let by_port = container(
            json!({"name": "sidecar", "image": "example.com/custom-envoy:1",
                                        "ports": [{"containerPort": 15090}]}),
        );
        assert_eq!(
            classify(&by_port, Section::Regular, &none).1,
            SidecarRole::MeshProxy
        );
        let annotated = LifecycleAnnotations {
            istio_injected: vec![Box::from("proxy"), Box::from("setup")],
            ..LifecycleAnnotations::default()
        };
        let proxy = container(json!({"name": "proxy", "image": "example.com/p:1"}));
        assert_eq!(
            classify(&proxy, Section::Regular, &annotated),
            (ContainerKind::LegacySidecar, SidecarRole::MeshProxy)
        );
        let setup = container(json!({"name": "setup", "image": "example.com/p:1"}));
        assert_eq!(
            classify(&setup, Section::Init, &annotated),
            (ContainerKind::Init, SidecarRole::MeshInit)
        );
    }

    #[test]
    fn extra_sidecar_names_make_legacy_sidecars() {
        let rules = ClassificationRules {
            extra_sidecar_names: vec!["helper".into()],
            ..ClassificationRules::default()
        };
        let helper = container(json!({"name": "helper", "image": "example.com/h:1"}));
        let role = container_role(
            &helper,
            Section::Regular,
            &LifecycleAnnotations::default(),
            &rules,
        );
        assert_eq!(role, SidecarRole::Other);
        assert_eq!(
            container_kind(&helper, Section::Regular, role, &rules),
            ContainerKind::LegacySidecar
        );
    }
}
