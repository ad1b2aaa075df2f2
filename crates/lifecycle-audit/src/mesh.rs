//! The mesh picture of a pod as the audits use it: the proxy container,
//! its capture ports and UID, and the workload containers whose traffic it
//! should carry.

use lifecycle_recording::pods::{ContainerKind, MeshInfo, MeshMode, SidecarRole};

use crate::timeline::{ContainerTimeline, PodTimeline};

/// A meshed pod's proxy and workloads.
pub struct MeshContext<'t> {
    /// The mesh facts of the pod's spec: mode, capture ports, proxy UID, exclusions.
    pub info: &'t MeshInfo,
    /// The proxy container.
    pub proxy: &'t ContainerTimeline,
    /// Every container except the proxy and init containers.
    pub workloads: Vec<&'t ContainerTimeline>,
}

impl MeshContext<'_> {
    /// Whether the mesh is Istio, native or legacy.
    pub fn is_istio(&self) -> bool {
        matches!(
            self.info.mode,
            MeshMode::IstioNative | MeshMode::IstioLegacy { .. }
        )
    }

    /// The port outbound app traffic is redirected to (15001 Istio, 4140
    /// Linkerd); `None` when the spec facts do not name it.
    pub fn outbound_port(&self) -> Option<u16> {
        self.info.outbound_capture_port
    }

    /// The port inbound traffic is redirected to (15006 Istio, 4143 Linkerd);
    /// `None` when the spec facts do not name it.
    pub fn inbound_port(&self) -> Option<u16> {
        self.info.inbound_capture_port
    }

    /// The UID the proxy runs as, whose traffic the redirect leaves alone (1337
    /// Istio, 2102 Linkerd); `None` when unknown or not a valid UID.
    pub fn proxy_uid(&self) -> Option<u32> {
        self.info.proxy_uid.and_then(|u| u32::try_from(u).ok())
    }

    /// Whether any workload container ran at `ns`.
    pub fn workload_alive_at(&self, ns: i64) -> bool {
        self.workloads.iter().any(|w| w.alive_at(ns))
    }
}

/// The mesh context, when the pod has a known proxy.
pub fn context(tl: &PodTimeline) -> Option<MeshContext<'_>> {
    let info = &tl.spec.as_ref()?.mesh;
    if info.mode == MeshMode::None {
        return None;
    }
    let proxy = tl.container(info.proxy_container.as_deref()?)?;
    let workloads = tl
        .containers
        .iter()
        .filter(|c| c.name != proxy.name)
        .filter(|c| c.kind != Some(ContainerKind::Init) && c.role != Some(SidecarRole::MeshInit))
        .collect();
    Some(MeshContext {
        info,
        proxy,
        workloads,
    })
}
