//! Pure parser of kubelet cgroup v2 paths.
//!
//! Input is a path relative to the cgroup2 hierarchy root, as the cgroup
//! tracepoints report it (`/kubepods.slice/...`). The parser first looks for a
//! *kubepods root*, the cgroup under which kubelet puts every pod:
//!
//! * systemd driver: `kubepods.slice`, or `<prefix>-kubepods.slice` inside
//!   `<prefix>.slice` when kubelet runs with `--cgroup-root` (kind uses
//!   `kubelet.slice/kubelet-kubepods.slice`);
//! * cgroupfs driver: a directory called `kubepods`, at any depth.
//!
//! The root may sit below arbitrary other cgroups (a `--cgroup-root` prefix,
//! or a whole node running inside a container as with kind). The first root
//! from the top wins, so a nested Kubernetes inside a container is attributed
//! to the outer container. Below the root every component must match kubelet's
//! naming exactly; anything else is reported as [`CgroupClass::Unknown`] with
//! the reason, never guessed.

use super::{
    class::{CgroupClass, CgroupDriver, ContainerCgroup, PodCgroup, QosClass, Runtime},
    ids::{canonical_pod_uid, is_container_id},
};

/// Classifies one cgroup path (relative to the cgroup2 root).
pub fn parse_cgroup_path(path: &str) -> CgroupClass {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return CgroupClass::unknown("path has a `.` or `..` component");
    }
    for (i, comp) in parts.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| parts[p]);
        match root_marker(parent, comp) {
            RootMarker::None => continue,
            RootMarker::Systemd(prefix) => return parse_systemd(prefix, &parts[i + 1..]),
            RootMarker::Cgroupfs => return parse_cgroupfs(&parts[i + 1..]),
            RootMarker::Misplaced(reason) => return CgroupClass::unknown(reason),
        }
    }
    CgroupClass::NotKubernetes
}

/// Tells whether `path` is itself a kubepods root, and for which driver.
///
/// The agent uses this to pick the subtrees whose events the eBPF side keeps.
pub fn is_watch_root(path: &str) -> Option<CgroupDriver> {
    match parse_cgroup_path(path) {
        CgroupClass::KubepodsRoot { driver } => Some(driver),
        _ => None,
    }
}

/// Depth of a cgroup below the hierarchy root (the root itself is level 0),
/// matching the kernel's `cgroup->level`.
pub fn cgroup_level(path: &str) -> u32 {
    let depth = path.split('/').filter(|c| !c.is_empty()).count();
    u32::try_from(depth).unwrap_or(u32::MAX)
}

enum RootMarker<'a> {
    None,
    /// systemd root; the stem child slices are prefixed with.
    Systemd(&'a str),
    Cgroupfs,
    /// Looks like a root but cannot be one where it is.
    Misplaced(String),
}

fn root_marker<'a>(parent: Option<&str>, comp: &'a str) -> RootMarker<'a> {
    if comp == "kubepods" {
        return RootMarker::Cgroupfs;
    }
    let Some(stem) = comp.strip_suffix(".slice") else {
        return RootMarker::None;
    };
    if stem == "kubepods" {
        return RootMarker::Systemd(stem);
    }
    let Some(outer) = stem.strip_suffix("-kubepods") else {
        return RootMarker::None;
    };
    // systemd nests `a-b.slice` inside `a.slice`; anything else is not a
    // slice systemd could have created.
    let expected_parent = format!("{outer}.slice");
    if parent == Some(expected_parent.as_str()) {
        RootMarker::Systemd(stem)
    } else {
        RootMarker::Misplaced(format!(
            "`{comp}` is not inside its systemd parent `{expected_parent}`"
        ))
    }
}

/// `<parent>-<child>.slice` -> `child`.
fn slice_child<'a>(comp: &'a str, parent_stem: &str) -> Option<&'a str> {
    comp.strip_prefix(parent_stem)?
        .strip_prefix('-')?
        .strip_suffix(".slice")
}

fn parse_systemd(prefix: &str, rest: &[&str]) -> CgroupClass {
    let driver = CgroupDriver::Systemd;
    let Some((first, rest)) = rest.split_first() else {
        return CgroupClass::KubepodsRoot { driver };
    };
    let Some(inner) = slice_child(first, prefix) else {
        return CgroupClass::unknown(format!(
            "expected a `{prefix}-….slice` below `{prefix}.slice`, found `{first}`"
        ));
    };
    let (qos, pod_name, rest) = match QosClass::from_cgroup_name(inner) {
        Some(qos) => {
            let qos_stem = format!("{prefix}-{inner}");
            let Some((pod, rest)) = rest.split_first() else {
                return CgroupClass::QosParent { driver, qos };
            };
            let Some(pod_name) = slice_child(pod, &qos_stem) else {
                return CgroupClass::unknown(format!(
                    "expected `{qos_stem}-pod<uid>.slice`, found `{pod}`"
                ));
            };
            (qos, pod_name, rest)
        }
        None => (QosClass::Guaranteed, inner, rest),
    };
    let Some(raw_uid) = pod_name.strip_prefix("pod") else {
        return CgroupClass::unknown(format!(
            "expected a QoS slice or `{prefix}-pod<uid>.slice`, found `{first}`"
        ));
    };
    let Some(pod_uid) = canonical_pod_uid(raw_uid, '_') else {
        return CgroupClass::unknown(format!("malformed pod uid `{raw_uid}`"));
    };
    let pod = PodCgroup {
        pod_uid,
        qos,
        driver,
    };
    match rest.split_first() {
        None => CgroupClass::Pod(pod),
        Some((leaf, below)) => match systemd_leaf(leaf) {
            Ok(leaf) => leaf.classify(pod, below),
            Err(reason) => CgroupClass::unknown(reason),
        },
    }
}

fn parse_cgroupfs(rest: &[&str]) -> CgroupClass {
    let driver = CgroupDriver::Cgroupfs;
    let Some((first, rest)) = rest.split_first() else {
        return CgroupClass::KubepodsRoot { driver };
    };
    let (qos, pod_name, rest) = match QosClass::from_cgroup_name(first) {
        Some(qos) => match rest.split_first() {
            None => return CgroupClass::QosParent { driver, qos },
            Some((pod, rest)) => (qos, *pod, rest),
        },
        None => (QosClass::Guaranteed, *first, rest),
    };
    let Some(raw_uid) = pod_name.strip_prefix("pod") else {
        return CgroupClass::unknown(format!(
            "expected `burstable`, `besteffort` or `pod<uid>` below `kubepods`, found `{pod_name}`"
        ));
    };
    let Some(pod_uid) = canonical_pod_uid(raw_uid, '-') else {
        return CgroupClass::unknown(format!("malformed pod uid `{raw_uid}`"));
    };
    let pod = PodCgroup {
        pod_uid,
        qos,
        driver,
    };
    match rest.split_first() {
        None => CgroupClass::Pod(pod),
        Some((leaf, below)) => match cgroupfs_leaf(leaf) {
            Ok(leaf) => leaf.classify(pod, below),
            Err(reason) => CgroupClass::unknown(reason),
        },
    }
}

/// A cgroup directly inside a pod cgroup.
enum Leaf<'a> {
    Container(Runtime, &'a str),
    Conmon(&'a str),
}

impl Leaf<'_> {
    fn classify(self, pod: PodCgroup, below: &[&str]) -> CgroupClass {
        let PodCgroup {
            pod_uid,
            qos,
            driver,
        } = pod;
        match self {
            Leaf::Conmon(id) => CgroupClass::ConmonMonitor {
                container_id: id.to_owned(),
                pod_uid,
                qos,
                driver,
            },
            Leaf::Container(runtime, id) => CgroupClass::Container(ContainerCgroup {
                runtime,
                container_id: id.to_owned(),
                pod_uid,
                qos,
                driver,
                sub_path: (!below.is_empty()).then(|| below.join("/")),
            }),
        }
    }
}

fn checked_id<'a>(id: &'a str, comp: &str) -> Result<&'a str, String> {
    if is_container_id(id) {
        Ok(id)
    } else {
        Err(format!(
            "malformed container id in `{comp}` (want 64 lowercase hex digits)"
        ))
    }
}

fn systemd_leaf(comp: &str) -> Result<Leaf<'_>, String> {
    let Some(stem) = comp.strip_suffix(".scope") else {
        return Err(format!(
            "expected a container `.scope` in the pod slice, found `{comp}`"
        ));
    };
    if let Some(id) = stem.strip_prefix("cri-containerd-") {
        return Ok(Leaf::Container(Runtime::Containerd, checked_id(id, comp)?));
    }
    // `crio-conmon-` must be tested before the shorter `crio-`.
    if let Some(id) = stem.strip_prefix("crio-conmon-") {
        return Ok(Leaf::Conmon(checked_id(id, comp)?));
    }
    if let Some(id) = stem.strip_prefix("crio-") {
        return Ok(Leaf::Container(Runtime::CriO, checked_id(id, comp)?));
    }
    if let Some(id) = stem.strip_prefix("docker-") {
        return Ok(Leaf::Container(Runtime::Docker, checked_id(id, comp)?));
    }
    Err(format!("unrecognised container scope `{comp}`"))
}

fn cgroupfs_leaf(comp: &str) -> Result<Leaf<'_>, String> {
    if let Some(id) = comp.strip_prefix("crio-conmon-") {
        return Ok(Leaf::Conmon(checked_id(id, comp)?));
    }
    if let Some(id) = comp.strip_prefix("crio-") {
        return Ok(Leaf::Container(Runtime::CriO, checked_id(id, comp)?));
    }
    Ok(Leaf::Container(
        Runtime::Unspecified,
        checked_id(comp, comp)?,
    ))
}

#[cfg(test)]
mod tests;
