//! Pod status updates through the test API server, as the kubelet writes
//! them: one write per update, whole seconds of the wall clock.

use std::sync::Arc;

use kube_api_server::{DriverError, StatusEditor, TestApiServer};

/// Writes one pod's status.
pub struct StatusWriter {
    api: Arc<TestApiServer>,
    namespace: String,
    name: String,
}

/// Readiness of the pod's containers, for the pod conditions.
pub struct Readiness {
    pub initialized: bool,
    pub containers_ready: bool,
    pub ready: bool,
}

impl StatusWriter {
    pub fn new(api: Arc<TestApiServer>, namespace: &str, name: &str) -> Self {
        Self {
            api,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// One status write stamped with the current second. A refused
    /// write (the pod is already gone) is logged, not fatal: a kubelet
    /// would drop it too.
    pub fn edit(
        &self,
        what: &str,
        f: impl FnOnce(&mut StatusEditor<'_>) -> Result<(), DriverError>,
    ) {
        let at = crate::clock::api_now();
        if let Err(error) = self.api.update_status(&self.namespace, &self.name, at, f) {
            tracing::warn!(%error, pod = self.name, what, "status update refused");
        }
    }

    pub fn sandbox_ready(&self, host_ip: &str, pod_ip: &str, has_init: bool) {
        self.edit("sandbox", |s| {
            s.pod_started(host_ip, pod_ip)
                .condition("PodReadyToStartContainers", true)
                .condition("Initialized", !has_init)
                .condition("Ready", false)
                .condition("ContainersReady", false)
                .condition("PodScheduled", true);
            Ok(())
        });
    }

    pub fn running(&self, container: &str, container_id: &str) {
        self.edit("running", |s| {
            s.running(container, &format!("containerd://{container_id}"))?;
            Ok(())
        });
    }

    /// The runtime's exit code and reason (`Completed`, `Error`, ...).
    pub fn terminated(&self, container: &str, exit_code: i32, reason: &str) {
        self.edit("terminated", |s| {
            s.terminated(container, exit_code, reason, None)?;
            Ok(())
        });
    }

    /// Container flags and the pod conditions that follow from them.
    pub fn flags(&self, container: &str, started: bool, ready: bool, pod: &Readiness) {
        self.edit("flags", |s| {
            s.started(container, started)?.ready(container, ready)?;
            s.condition("Initialized", pod.initialized)
                .condition("ContainersReady", pod.containers_ready)
                .condition("Ready", pod.ready);
            Ok(())
        });
    }

    pub fn initialized(&self) {
        self.edit("initialized", |s| {
            s.condition("Initialized", true);
            Ok(())
        });
    }

    pub fn phase(&self, phase: &str) {
        self.edit("phase", |s| {
            s.phase(phase);
            if phase != "Running" && phase != "Pending" {
                s.condition("Ready", false)
                    .condition("ContainersReady", false);
            }
            Ok(())
        });
    }

    pub fn request_deletion(&self, grace_s: i64) -> Result<(), DriverError> {
        let at = crate::clock::api_now();
        self.api
            .request_deletion(&self.namespace, &self.name, grace_s, at)
            .map(drop)
    }

    /// The final delete, once every container is stopped.
    pub fn delete(&self) {
        if let Err(error) = self.api.delete_pod(&self.namespace, &self.name) {
            tracing::warn!(%error, pod = self.name, "final delete refused");
        }
    }
}
