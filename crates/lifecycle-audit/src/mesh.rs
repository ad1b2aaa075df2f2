//! The mesh picture of a pod as the audits use it: the proxy container,
//! its capture ports and UID, and the workload containers whose traffic it
//! should carry.

use lifecycle_recording::pods::{ContainerKind, MeshInfo, MeshMode, SidecarRole};

use crate::timeline::{ContainerTimeline, PodTimeline};

/// A meshed pod's proxy and workloads.
pub struct MeshContext<'t> {
    pub info: &'t MeshInfo,
    pub proxy: &'t ContainerTimeline,
    /// Every container except the proxy and init containers.
    pub workloads: Vec<&'t ContainerTimeline>,
}

impl MeshContext<'_> {
    pub fn is_istio(&self) -> bool {
        matches!(
            self.info.mode,
            MeshMode::IstioNative | MeshMode::IstioLegacy { .. }
        )
    }

    pub fn outbound_port(&self) -> Option<u16> {
        self.info.outbound_capture_port
    }

    pub fn inbound_port(&self) -> Option<u16> {
        self.info.inbound_capture_port
    }

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
