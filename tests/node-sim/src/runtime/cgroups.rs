//! Pod and container cgroups named as the kubelet and containerd name them.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Deserialize;

/// The kubelet's cgroup driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope`
    #[default]
    Systemd,
    /// `kubepods/besteffort/pod<uid>/<id>`
    Cgroupfs,
}

/// The pod's QoS class, which picks the parent cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    /// The class of a pod spec: Guaranteed when every container has equal
    /// cpu and memory requests and limits, BestEffort when none has any,
    /// Burstable otherwise.
    pub fn of_pod(spec: &serde_json::Value) -> Self {
        let containers: Vec<&serde_json::Value> = ["initContainers", "containers"]
            .iter()
            .filter_map(|list| spec.get(*list)?.as_array())
            .flatten()
            .collect();
        let resources = |c: &serde_json::Value, kind: &str, what: &str| {
            c.pointer(&format!("/resources/{kind}/{what}")).cloned()
        };
        let any = containers.iter().any(|c| {
            ["requests", "limits"].iter().any(|k| {
                c.pointer(&format!("/resources/{k}"))
                    .is_some_and(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            })
        });
        if !any {
            return Self::BestEffort;
        }
        let guaranteed = containers.iter().all(|c| {
            ["cpu", "memory"].iter().all(|what| {
                let limit = resources(c, "limits", what);
                limit.is_some() && resources(c, "requests", what).is_none_or(|r| Some(r) == limit)
            })
        });
        if guaranteed {
            Self::Guaranteed
        } else {
            Self::Burstable
        }
    }

    fn word(self) -> Option<&'static str> {
        match self {
            Self::Guaranteed => None,
            Self::Burstable => Some("burstable"),
            Self::BestEffort => Some("besteffort"),
        }
    }
}

/// What failed with a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 mount on this machine (looked in /proc/self/mounts)")]
    NoCgroup2Mount,
    #[error("cannot read /proc/self/mounts: {0}")]
    MountsUnreadable(std::io::Error),
    #[error("cannot create cgroup {path}: {source}")]
    CreateFailed {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` (pure v2) or
/// `/sys/fs/cgroup/unified` (hybrid).
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    lifecycle_testkit::find_cgroup2_mount()
        .map_err(CgroupError::MountsUnreadable)?
        .ok_or(CgroupError::NoCgroup2Mount)
}

/// The directory of a pod's cgroup, relative to the cgroup2 mount.
pub fn pod_path(driver: CgroupDriver, qos: Qos, uid: &str) -> PathBuf {
    match (driver, qos.word()) {
        (CgroupDriver::Systemd, Some(q)) => PathBuf::from(format!(
            "kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod{}.slice",
            uid.replace('-', "_")
        )),
        (CgroupDriver::Systemd, None) => PathBuf::from(format!(
            "kubepods.slice/kubepods-pod{}.slice",
            uid.replace('-', "_")
        )),
        (CgroupDriver::Cgroupfs, Some(q)) => PathBuf::from(format!("kubepods/{q}/pod{uid}")),
        (CgroupDriver::Cgroupfs, None) => PathBuf::from(format!("kubepods/pod{uid}")),
    }
}

/// The name of a containerd container's cgroup inside its pod's.
pub fn container_name(driver: CgroupDriver, container_id: &str) -> String {
    match driver {
        CgroupDriver::Systemd => format!("cri-containerd-{container_id}.scope"),
        CgroupDriver::Cgroupfs => container_id.to_owned(),
    }
}

/// A cgroup directory this driver created; removed on drop. Any process
/// still inside is killed first (only on error paths: the driver stops its
/// containers through the runtime before it drops their cgroups).
#[derive(Debug)]
pub struct CgroupDir {
    pub path: PathBuf,
}

impl CgroupDir {
    pub fn create(path: PathBuf) -> Result<Self, CgroupError> {
        fs::create_dir_all(&path).map_err(|source| CgroupError::CreateFailed {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }

    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Processes currently inside.
    pub fn pids(&self) -> Vec<u32> {
        fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The cgroup id the kernel reports (the directory's inode).
    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0)
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        remove_cgroup(&self.path);
    }
}

/// Kills what is left in `dir` (cgroup.kill) and removes it.
pub fn remove_cgroup(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let busy =
        |d: &Path| fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty());
    if busy(dir) {
        tracing::warn!(dir = %dir.display(), "killing processes left in a cgroup");
        let _ = fs::write(dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        while busy(dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_paths_follow_the_kubelet_drivers() {
        let uid = "0b7e4a52-1c7d-4a0e-9d55-3a9c1f2b7e10";
        assert_eq!(
            pod_path(CgroupDriver::Systemd, Qos::BestEffort, uid),
            PathBuf::from(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b7e4a52_1c7d_4a0e_9d55_3a9c1f2b7e10.slice"
            )
        );
        assert_eq!(
            pod_path(CgroupDriver::Systemd, Qos::Guaranteed, uid),
            PathBuf::from("kubepods.slice/kubepods-pod0b7e4a52_1c7d_4a0e_9d55_3a9c1f2b7e10.slice")
        );
        assert_eq!(
            pod_path(CgroupDriver::Cgroupfs, Qos::Burstable, uid),
            PathBuf::from(format!("kubepods/burstable/pod{uid}"))
        );
        assert_eq!(
            pod_path(CgroupDriver::Cgroupfs, Qos::Guaranteed, uid),
            PathBuf::from(format!("kubepods/pod{uid}"))
        );
        assert_eq!(
            container_name(CgroupDriver::Systemd, "ab12"),
            "cri-containerd-ab12.scope"
        );
        assert_eq!(container_name(CgroupDriver::Cgroupfs, "ab12"), "ab12");
    }

    #[test]
    fn qos_class_from_resources() {
        assert_eq!(
            Qos::of_pod(&json!({"containers": [{"name": "a"}]})),
            Qos::BestEffort
        );
        let equal = json!({"cpu": "1", "memory": "1Gi"});
        assert_eq!(
            Qos::of_pod(
                &json!({"containers": [{"name": "a", "resources": {"limits": equal, "requests": equal}}]})
            ),
            Qos::Guaranteed
        );
        assert_eq!(
            Qos::of_pod(
                &json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]})
            ),
            Qos::Burstable
        );
    }
}
