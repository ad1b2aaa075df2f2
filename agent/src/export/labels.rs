//! Stable names of the audit's enums as attribute values (the same
//! snake_case names the JSON report uses).

use serde::Serialize;

use crate::{
    audit::termination::{PreStop, Trigger},
    event::names::signal_name,
    pods::MeshMode,
};

/// The serde name of a unit variant (`ContainerKind::NativeSidecar` ->
/// `native_sidecar`); `unknown` for anything that is not a plain string.
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_owned(),
    }
}

/// `Some(kind)` as its name, `None` as `unknown`.
pub fn opt_name<T: Serialize>(value: Option<&T>) -> String {
    value.map_or_else(|| "unknown".to_owned(), name_of)
}

pub fn mesh_mode(mode: &MeshMode) -> &'static str {
    match mode {
        MeshMode::None => "none",
        MeshMode::IstioNative => "istio_native",
        MeshMode::IstioLegacy { .. } => "istio_legacy",
        MeshMode::LinkerdNative => "linkerd_native",
        MeshMode::LinkerdLegacy { .. } => "linkerd_legacy",
    }
}

pub fn trigger(t: &Trigger) -> &'static str {
    match t {
        Trigger::Deletion { .. } => "deletion",
        Trigger::JobCompletion { .. } => "job_completion",
        Trigger::Unknown { .. } => "unknown",
    }
}

pub fn prestop(p: &PreStop) -> &'static str {
    match p {
        PreStop::None => "none",
        PreStop::Exec { .. } => "exec",
        PreStop::ExecNotSeen { .. } => "exec_not_seen",
        PreStop::NotObservable { .. } => "not_observable",
        PreStop::Unknown => "unknown",
    }
}

/// `SIGKILL` for 9; `SIG<n>` when the number has no name.
pub fn signal(number: i32) -> String {
    signal_name(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::{ContainerKind, SidecarRole};

    #[test]
    fn names_match_the_report() {
        assert_eq!(name_of(&ContainerKind::NativeSidecar), "native_sidecar");
        assert_eq!(opt_name(Some(&SidecarRole::MeshProxy)), "mesh_proxy");
        assert_eq!(opt_name::<SidecarRole>(None), "unknown");
        assert_eq!(
            mesh_mode(&MeshMode::IstioLegacy {
                hold_application_until_proxy_starts: true
            }),
            "istio_legacy"
        );
        assert_eq!(signal(9), "SIGKILL");
    }
}
