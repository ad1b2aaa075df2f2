//! Kubelet-shaped status edits.
//!
//! The editor writes `status` the way the kubelet reports it: init
//! containers in `initContainerStatuses` (spec order), regular containers in
//! `containerStatuses` (sorted by name, as the kubelet sorts them), each with
//! `state`, `lastState`, `ready`, `restartCount`, `image`, `imageID`,
//! `containerID` and `started`; conditions with `lastTransitionTime` that only
//! moves when the condition's status changes; every time whole seconds.

use serde_json::{Map, Value, json};

use crate::clock::rfc3339;
use crate::driver::{DriverError, managed_entry};

/// Edits one pod's status for one kubelet update at a fixed time.
pub struct StatusEditor<'a> {
    pod: &'a mut Map<String, Value>,
    key: String,
    at_s: i64,
    init_names: Vec<String>,
    main_names: Vec<String>,
}

fn container_names(spec: &Value, list: &str) -> Vec<String> {
    spec.get(list)
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A deterministic image digest so `imageID` looks like a resolved image.
fn image_id(image: &str) -> String {
    let repo = image.split(['@', ':']).next().unwrap_or(image);
    let mut digest = String::with_capacity(64);
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    while digest.len() < 64 {
        for b in image.bytes() {
            seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        digest.push_str(&format!("{seed:016x}"));
    }
    let host_qualified = if repo.split('/').next().is_some_and(|h| h.contains('.')) {
        repo.to_owned()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!("{host_qualified}@sha256:{digest}")
}

impl<'a> StatusEditor<'a> {
    pub(crate) fn new(
        pod: &'a mut Map<String, Value>,
        key: String,
        at_s: i64,
    ) -> Result<Self, DriverError> {
        let spec = pod
            .get("spec")
            .filter(|s| s.is_object())
            .ok_or_else(|| DriverError::PodWithoutSpec(key.clone()))?;
        let init_names = container_names(spec, "initContainers");
        let main_names = container_names(spec, "containers");
        pod.entry("status").or_insert_with(|| json!({}));
        Ok(Self {
            pod,
            key,
            at_s,
            init_names,
            main_names,
        })
    }

    fn status(&mut self) -> &mut Map<String, Value> {
        self.pod
            .get_mut("status")
            .and_then(Value::as_object_mut)
            .expect("status inserted in new()")
    }

    /// Sets `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`).
    pub fn phase(&mut self, phase: &str) -> &mut Self {
        self.status().insert("phase".into(), json!(phase));
        self
    }

    /// Records the pod sandbox as running: `startTime`, host and pod IPs.
    pub fn pod_started(&mut self, host_ip: &str, pod_ip: &str) -> &mut Self {
        let at = rfc3339(self.at_s);
        let status = self.status();
        status.insert("startTime".into(), json!(at));
        status.insert("hostIP".into(), json!(host_ip));
        status.insert("hostIPs".into(), json!([{"ip": host_ip}]));
        status.insert("podIP".into(), json!(pod_ip));
        status.insert("podIPs".into(), json!([{"ip": pod_ip}]));
        self
    }

    /// Sets a pod condition; `lastTransitionTime` changes only when the
    /// status does.
    pub fn condition(&mut self, kind: &str, value: bool) -> &mut Self {
        let at = rfc3339(self.at_s);
        let wanted = if value { "True" } else { "False" };
        let conditions = self
            .status()
            .entry("conditions")
            .or_insert_with(|| json!([]));
        let Some(list) = conditions.as_array_mut() else {
            return self;
        };
        match list.iter_mut().find(|c| c["type"] == kind) {
            Some(existing) if existing["status"] == wanted => {}
            Some(existing) => {
                existing["status"] = json!(wanted);
                existing["lastTransitionTime"] = json!(at);
            }
            None => list.push(json!({
                "type": kind, "status": wanted,
                "lastProbeTime": null, "lastTransitionTime": at,
            })),
        }
        self
    }

    /// Puts a container into `waiting` with `reason` (e.g. `PodInitializing`).
    pub fn waiting(&mut self, container: &str, reason: &str) -> Result<&mut Self, DriverError> {
        let entry = self.container_entry(container)?;
        entry.insert("state".into(), json!({"waiting": {"reason": reason}}));
        entry.insert("ready".into(), json!(false));
        entry.insert("started".into(), json!(false));
        Ok(self)
    }

    /// The runtime started a container with `container_id` (as reported,
    /// e.g. `containerd://<64 hex>`). A new id for a container that already
    /// had one is a restart: the previous run moves to `lastState` and
    /// `restartCount` grows.
    pub fn running(
        &mut self,
        container: &str,
        container_id: &str,
    ) -> Result<&mut Self, DriverError> {
        let at = rfc3339(self.at_s);
        let entry = self.container_entry(container)?;
        let previous_id = entry
            .get("containerID")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(previous_id) = previous_id.filter(|p| p != container_id) {
            let state = entry.get("state").cloned().unwrap_or_default();
            let last = match state.get("terminated") {
                Some(t) => json!({"terminated": t}),
                None => json!({"terminated": {
                    "exitCode": 1, "reason": "Error",
                    "startedAt": state.pointer("/running/startedAt").cloned().unwrap_or(json!(at)),
                    "finishedAt": at, "containerID": previous_id,
                }}),
            };
            entry.insert("lastState".into(), last);
            let restarts = entry
                .get("restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            entry.insert("restartCount".into(), json!(restarts + 1));
        }
        let image = entry
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        entry.insert("state".into(), json!({"running": {"startedAt": at}}));
        entry.insert("containerID".into(), json!(container_id));
        entry.insert("imageID".into(), json!(image_id(&image)));
        entry.insert("started".into(), json!(false));
        entry.insert("ready".into(), json!(false));
        Ok(self)
    }

    /// Sets the `started` flag (startup probe passed / postStart returned).
    pub fn started(&mut self, container: &str, value: bool) -> Result<&mut Self, DriverError> {
        self.container_entry(container)?
            .insert("started".into(), json!(value));
        Ok(self)
    }

    /// Sets the `ready` flag.
    pub fn ready(&mut self, container: &str, value: bool) -> Result<&mut Self, DriverError> {
        self.container_entry(container)?
            .insert("ready".into(), json!(value));
        Ok(self)
    }

    /// The container's process exited.
    pub fn terminated(
        &mut self,
        container: &str,
        exit_code: i32,
        reason: &str,
        signal: Option<i32>,
    ) -> Result<&mut Self, DriverError> {
        let at = rfc3339(self.at_s);
        let entry = self.container_entry(container)?;
        let started_at = entry
            .get("state")
            .and_then(|s| s.pointer("/running/startedAt"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut terminated = json!({
            "exitCode": exit_code, "reason": reason,
            "startedAt": started_at, "finishedAt": at,
        });
        if let Some(id) = entry.get("containerID") {
            terminated["containerID"] = id.clone();
        }
        if let Some(signal) = signal {
            terminated["signal"] = json!(signal);
        }
        entry.insert("state".into(), json!({"terminated": terminated}));
        entry.insert("ready".into(), json!(false));
        entry.insert("started".into(), json!(false));
        Ok(self)
    }

    /// Finds or creates the status entry of `container`.
    fn container_entry(&mut self, container: &str) -> Result<&mut Map<String, Value>, DriverError> {
        let (list, is_init) = if self.init_names.iter().any(|n| n == container) {
            ("initContainerStatuses", true)
        } else if self.main_names.iter().any(|n| n == container) {
            ("containerStatuses", false)
        } else {
            return Err(DriverError::ContainerNotInSpec {
                pod: self.key.clone(),
                container: container.to_owned(),
            });
        };
        let image = self.spec_image(container);
        let order: Vec<String> = if is_init {
            self.init_names.clone()
        } else {
            let mut names = self.main_names.clone();
            names.sort();
            names
        };
        let statuses = self
            .status()
            .entry(list)
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("status lists are arrays");
        if !statuses.iter().any(|s| s["name"] == container) {
            statuses.push(json!({
                "name": container,
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {},
                "ready": false,
                "restartCount": 0,
                "image": image,
                "imageID": "",
                "started": false,
            }));
            let rank = |s: &Value| order.iter().position(|n| s["name"] == n.as_str());
            statuses.sort_by_key(rank);
        }
        Ok(statuses
            .iter_mut()
            .find(|s| s["name"] == container)
            .and_then(Value::as_object_mut)
            .expect("entry ensured above"))
    }

    fn spec_image(&self, container: &str) -> String {
        ["initContainers", "containers"]
            .iter()
            .filter_map(|list| self.pod.get("spec")?.get(*list)?.as_array())
            .flatten()
            .find(|c| c["name"] == container)
            .and_then(|c| c.get("image").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    }

    /// Stamps the kubelet's `managedFields` entry with this update's time.
    pub(crate) fn finish(self) {
        let at_s = self.at_s;
        let Some(meta) = self.pod.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let fields = meta.entry("managedFields").or_insert_with(|| json!([]));
        if let Some(list) = fields.as_array_mut() {
            list.retain(|e| !(e["manager"] == "kubelet" && e["subresource"] == "status"));
            list.push(managed_entry("kubelet", Some("status"), at_s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_digest_qualified() {
        let id = image_id("nginx:1.27");
        assert!(id.starts_with("docker.io/library/nginx@sha256:"));
        assert_eq!(id.len(), "docker.io/library/nginx@sha256:".len() + 64);
        assert!(image_id("gcr.io/x/y:1").starts_with("gcr.io/x/y@sha256:"));
        assert!(image_id("istio/proxyv2:1.28.0").starts_with("docker.io/istio/proxyv2@"));
    }
}
