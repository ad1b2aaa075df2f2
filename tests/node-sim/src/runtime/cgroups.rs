//! Pod cgroups named as the kubelet's cgroupfs driver names them.

use std::path::PathBuf;

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
    MountsUnreadable(#[source] std::io::Error),
}

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` (pure v2) or
/// `/sys/fs/cgroup/unified` (hybrid).
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    lifecycle_testkit::find_cgroup2_mount()
        .map_err(CgroupError::MountsUnreadable)?
        .ok_or(CgroupError::NoCgroup2Mount)
}

/// The pod's cgroup as the kubelet's cgroupfs driver names it, relative to
/// each hierarchy's root: `kubepods/<qos>/pod<uid>` (Guaranteed pods
/// directly under `kubepods`). runc puts each container at `<it>/<id>`.
/// (runc's systemd driver needs systemd, which does not run here; the
/// systemd layout is covered by the testkit's kubelet-style cgroups.)
pub fn pod_path(qos: Qos, uid: &str) -> PathBuf {
    match qos.word() {
        Some(q) => PathBuf::from(format!("kubepods/{q}/pod{uid}")),
        None => PathBuf::from(format!("kubepods/pod{uid}")),
    }
}
